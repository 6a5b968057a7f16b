//===- KVCToLinalg.cpp - Lower kvc to Linalg on tensors ---------------------===//
//
// kvc.attention becomes a short chain of linalg.generic ops that mirrors the op's definition:
// scores (f32 contraction), score transform (scale/softcap/mask/causal/window), row max,
// exp(s - max), row sum, P·V, normalise + cast. GQA reads KV head `h floordiv G` through the
// indexing maps, so K/V are never copied per query head.
//
//===----------------------------------------------------------------------===//

#include "kvc/Conversion/Passes.h"
#include "kvc/Dialect/KVC/IR/KVC.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Func/Transforms/FuncConversions.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Transforms/DialectConversion.h"

#include <limits>

namespace mlir {
namespace kvc {
#define GEN_PASS_DEF_CONVERTKVCTOLINALG
#include "kvc/Conversion/Passes.h.inc"
} // namespace kvc
} // namespace mlir

using namespace mlir;
using namespace mlir::kvc;

namespace {

/// Size of dimension `dim` of `v` as an OpFoldResult (static attr or tensor.dim).
OpFoldResult dimOf(OpBuilder &b, Location loc, Value v, int64_t dim) {
  auto t = cast<RankedTensorType>(v.getType());
  if (!t.isDynamicDim(dim))
    return b.getIndexAttr(t.getDimSize(dim));
  return tensor::DimOp::create(b, loc, v, dim).getResult();
}

Value emptyTensor(OpBuilder &b, Location loc, ArrayRef<OpFoldResult> sizes, Type elem) {
  return tensor::EmptyOp::create(b, loc, sizes, elem).getResult();
}

Value filledTensor(OpBuilder &b, Location loc, ArrayRef<OpFoldResult> sizes, Type elem,
                   double value) {
  Value init = emptyTensor(b, loc, sizes, elem);
  Value cst = arith::ConstantOp::create(b, loc, b.getFloatAttr(elem, value));
  return linalg::FillOp::create(b, loc, cst, init).getResult(0);
}

Value toAcc(OpBuilder &b, Location loc, Value x, Type accType) {
  if (x.getType() == accType)
    return x;
  if (cast<FloatType>(x.getType()).getWidth() < cast<FloatType>(accType).getWidth())
    return arith::ExtFOp::create(b, loc, accType, x);
  return arith::TruncFOp::create(b, loc, accType, x);
}

struct AttentionOpLowering : OpConversionPattern<AttentionOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult matchAndRewrite(AttentionOp op, OpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *ctx = op.getContext();
    Value q = adaptor.getQuery(), k = adaptor.getKey(), v = adaptor.getValue();
    Value mask = adaptor.getMask();
    auto qT = cast<RankedTensorType>(q.getType());
    auto kT = cast<RankedTensorType>(k.getType());
    auto oT = cast<RankedTensorType>(op.getResult().getType());
    int64_t hq = qT.getDimSize(1), hkv = kT.getDimSize(1);
    if (ShapedType::isDynamic(hq) || ShapedType::isDynamic(hkv))
      return rewriter.notifyMatchFailure(op, "dynamic head counts are not supported");
    if (ShapedType::isDynamic(qT.getDimSize(3)) && !op.getScaleAttr())
      return rewriter.notifyMatchFailure(op, "dynamic head dim needs an explicit scale");
    int64_t group = hq / hkv;

    Type elem = qT.getElementType();
    Type acc = elem.isF64() ? Type(rewriter.getF64Type()) : Type(rewriter.getF32Type());
    const double negInf = -std::numeric_limits<double>::infinity();

    OpFoldResult B = dimOf(rewriter, loc, q, 0), Sq = dimOf(rewriter, loc, q, 2),
                 Skv = dimOf(rewriter, loc, k, 2), D = dimOf(rewriter, loc, q, 3),
                 Dv = dimOf(rewriter, loc, v, 3);
    (void)D;
    OpFoldResult Hq = rewriter.getIndexAttr(hq);

    AffineExpr d0, d1, d2, d3, d4;
    bindDims(ctx, d0, d1, d2, d3, d4);
    AffineExpr kvHead = group == 1 ? d1 : d1.floorDiv(group);
    auto par = utils::IteratorType::parallel, red = utils::IteratorType::reduction;

    // 1. s[b,h,i,j] = sum_d q[b,h,i,d] * k[b,h/G,j,d]      loops (b,h,i,j,d)
    Value scores0 = filledTensor(rewriter, loc, {B, Hq, Sq, Skv}, acc, 0.0);
    auto qkMaps = SmallVector<AffineMap>{AffineMap::get(5, 0, {d0, d1, d2, d4}, ctx),
                                         AffineMap::get(5, 0, {d0, kvHead, d3, d4}, ctx),
                                         AffineMap::get(5, 0, {d0, d1, d2, d3}, ctx)};
    Value scores =
        linalg::GenericOp::create(
            rewriter, loc, scores0.getType(), ValueRange{q, k}, ValueRange{scores0}, qkMaps,
            SmallVector<utils::IteratorType>{par, par, par, par, red},
            [&](OpBuilder &b, Location l, ValueRange args) {
              Value prod = arith::MulFOp::create(b, l, toAcc(b, l, args[0], acc),
                                                 toAcc(b, l, args[1], acc));
              linalg::YieldOp::create(b, l, ValueRange{arith::AddFOp::create(b, l, args[2], prod)});
            })
            .getResult(0);

    // 2. Score transform: scale, softcap, mask, causal/window (elementwise over (b,h,i,j)).
    double scale = op.getEffectiveScale();
    std::optional<double> softcap;
    if (auto c = op.getSoftcapAttr())
      softcap = c.getValueAsDouble();
    std::optional<int64_t> window;
    if (auto w = op.getWindowAttr())
      window = w.getInt();
    bool causal = op.getCausal();
    Value offset; // Skv - Sq: absolute position of query row 0.
    if (causal || window) {
      Value skv = getValueOrCreateConstantIndexOp(rewriter, loc, Skv);
      Value sq = getValueOrCreateConstantIndexOp(rewriter, loc, Sq);
      offset = arith::SubIOp::create(rewriter, loc, skv, sq);
    }
    SmallVector<Value> transformIns{scores};
    SmallVector<AffineMap> transformMaps{AffineMap::getMultiDimIdentityMap(4, ctx)};
    if (mask) {
      auto mT = cast<RankedTensorType>(mask.getType());
      SmallVector<AffineExpr> exprs;
      int64_t rank = mT.getRank();
      for (int64_t i = 0; i < rank; ++i) {
        int64_t loopDim = 4 - rank + i;
        // A static size-1 dimension broadcasts unless the full dimension is 1 as well.
        exprs.push_back(mT.getDimSize(i) == 1 ? getAffineConstantExpr(0, ctx)
                                              : getAffineDimExpr(loopDim, ctx));
      }
      transformIns.push_back(mask);
      transformMaps.push_back(AffineMap::get(4, 0, exprs, ctx));
    }
    Value transformed0 = emptyTensor(rewriter, loc, {B, Hq, Sq, Skv}, acc);
    transformMaps.push_back(AffineMap::getMultiDimIdentityMap(4, ctx));
    Value transformed =
        linalg::GenericOp::create(
            rewriter, loc, transformed0.getType(), transformIns, ValueRange{transformed0},
            transformMaps, SmallVector<utils::IteratorType>(4, par),
            [&](OpBuilder &b, Location l, ValueRange args) {
              Value s = args[0];
              Value ninf = arith::ConstantOp::create(b, l, b.getFloatAttr(acc, negInf));
              s = arith::MulFOp::create(b, l, s,
                                        arith::ConstantOp::create(b, l, b.getFloatAttr(acc, scale)));
              if (softcap) {
                Value cap = arith::ConstantOp::create(b, l, b.getFloatAttr(acc, *softcap));
                s = arith::MulFOp::create(
                    b, l, cap, math::TanhOp::create(b, l, arith::DivFOp::create(b, l, s, cap)));
              }
              if (mask) {
                Value m = args[1];
                if (m.getType().isInteger(1))
                  s = arith::SelectOp::create(b, l, m, s, ninf);
                else
                  s = arith::AddFOp::create(b, l, s, toAcc(b, l, m, acc));
              }
              if (causal || window) {
                Value i = linalg::IndexOp::create(b, l, 2);
                Value j = linalg::IndexOp::create(b, l, 3);
                Value pos = arith::AddIOp::create(b, l, i, offset);
                // dist = pos - j: how far key j lies behind the query's position.
                Value dist = arith::SubIOp::create(b, l, pos, j);
                Value zero = arith::ConstantIndexOp::create(b, l, 0);
                Value keep;
                if (causal)
                  keep = arith::CmpIOp::create(b, l, arith::CmpIPredicate::sge, dist, zero);
                if (window) {
                  Value w = arith::ConstantIndexOp::create(b, l, *window);
                  Value inWindow =
                      arith::CmpIOp::create(b, l, arith::CmpIPredicate::slt, dist, w);
                  keep = keep ? arith::AndIOp::create(b, l, keep, inWindow).getResult() : inWindow;
                }
                s = arith::SelectOp::create(b, l, keep, s, ninf);
              }
              linalg::YieldOp::create(b, l, ValueRange{s});
            })
            .getResult(0);

    // 3. Row max over j.
    auto rowMap4 = AffineMap::get(4, 0, {d0, d1, d2}, ctx);
    auto id4 = AffineMap::getMultiDimIdentityMap(4, ctx);
    Value max0 = filledTensor(rewriter, loc, {B, Hq, Sq}, acc, negInf);
    Value rowMax = linalg::GenericOp::create(
                       rewriter, loc, max0.getType(), ValueRange{transformed}, ValueRange{max0},
                       SmallVector<AffineMap>{id4, rowMap4},
                       SmallVector<utils::IteratorType>{par, par, par, red},
                       [&](OpBuilder &b, Location l, ValueRange args) {
                         linalg::YieldOp::create(
                             b, l, ValueRange{arith::MaximumFOp::create(b, l, args[0], args[1])});
                       })
                       .getResult(0);

    // 4. p = exp(s - max); rows with max = -inf (everything masked) give p = 0.
    Value p0 = emptyTensor(rewriter, loc, {B, Hq, Sq, Skv}, acc);
    Value probs =
        linalg::GenericOp::create(
            rewriter, loc, p0.getType(), ValueRange{transformed, rowMax}, ValueRange{p0},
            SmallVector<AffineMap>{id4, rowMap4, id4}, SmallVector<utils::IteratorType>(4, par),
            [&](OpBuilder &b, Location l, ValueRange args) {
              Value ninf = arith::ConstantOp::create(b, l, b.getFloatAttr(acc, negInf));
              Value zero = arith::ConstantOp::create(b, l, b.getFloatAttr(acc, 0.0));
              Value e = math::ExpOp::create(b, l, arith::SubFOp::create(b, l, args[0], args[1]));
              Value allMasked =
                  arith::CmpFOp::create(b, l, arith::CmpFPredicate::OEQ, args[1], ninf);
              linalg::YieldOp::create(b, l,
                                      ValueRange{arith::SelectOp::create(b, l, allMasked, zero, e)});
            })
            .getResult(0);

    // 5. Row sum over j.
    Value sum0 = filledTensor(rewriter, loc, {B, Hq, Sq}, acc, 0.0);
    Value rowSum = linalg::GenericOp::create(
                       rewriter, loc, sum0.getType(), ValueRange{probs}, ValueRange{sum0},
                       SmallVector<AffineMap>{id4, rowMap4},
                       SmallVector<utils::IteratorType>{par, par, par, red},
                       [&](OpBuilder &b, Location l, ValueRange args) {
                         linalg::YieldOp::create(
                             b, l, ValueRange{arith::AddFOp::create(b, l, args[0], args[1])});
                       })
                       .getResult(0);

    // 6. o[b,h,i,e] = sum_j p[b,h,i,j] * v[b,h/G,j,e]      loops (b,h,i,e,j)
    Value out0 = filledTensor(rewriter, loc, {B, Hq, Sq, Dv}, acc, 0.0);
    auto pvMaps = SmallVector<AffineMap>{AffineMap::get(5, 0, {d0, d1, d2, d4}, ctx),
                                         AffineMap::get(5, 0, {d0, kvHead, d4, d3}, ctx),
                                         AffineMap::get(5, 0, {d0, d1, d2, d3}, ctx)};
    Value unnormalized =
        linalg::GenericOp::create(
            rewriter, loc, out0.getType(), ValueRange{probs, v}, ValueRange{out0}, pvMaps,
            SmallVector<utils::IteratorType>{par, par, par, par, red},
            [&](OpBuilder &b, Location l, ValueRange args) {
              Value prod = arith::MulFOp::create(b, l, args[0], toAcc(b, l, args[1], acc));
              linalg::YieldOp::create(b, l, ValueRange{arith::AddFOp::create(b, l, args[2], prod)});
            })
            .getResult(0);

    // 7. out = o / sum (0 for fully masked rows), cast to the result element type.
    Value res0 = emptyTensor(rewriter, loc, {B, Hq, Sq, Dv}, oT.getElementType());
    Value result =
        linalg::GenericOp::create(
            rewriter, loc, res0.getType(), ValueRange{unnormalized, rowSum}, ValueRange{res0},
            SmallVector<AffineMap>{id4, rowMap4, id4}, SmallVector<utils::IteratorType>(4, par),
            [&](OpBuilder &b, Location l, ValueRange args) {
              Value zero = arith::ConstantOp::create(b, l, b.getFloatAttr(acc, 0.0));
              Value isZero = arith::CmpFOp::create(b, l, arith::CmpFPredicate::OEQ, args[1], zero);
              Value div = arith::DivFOp::create(b, l, args[0], args[1]);
              Value r = arith::SelectOp::create(b, l, isZero, zero, div);
              linalg::YieldOp::create(b, l, ValueRange{toAcc(b, l, r, oT.getElementType())});
            })
            .getResult(0);

    if (result.getType() != op.getResult().getType())
      result = tensor::CastOp::create(rewriter, loc, op.getResult().getType(), result);
    rewriter.replaceOp(op, result);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Dense caches: 1:N conversion to (keys, values)
//===----------------------------------------------------------------------===//

struct CacheFromTensorsLowering : OpConversionPattern<CacheFromTensorsOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(CacheFromTensorsOp op, OneToNOpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    SmallVector<Value> kv;
    for (ValueRange r : adaptor.getOperands())
      llvm::append_range(kv, r);
    rewriter.replaceOpWithMultiple(op, {kv});
    return success();
  }
};

struct CacheAppendLowering : OpConversionPattern<CacheAppendOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(CacheAppendOp op, OneToNOpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    ValueRange cache = adaptor.getCache();
    if (cache.size() != 2)
      return rewriter.notifyMatchFailure(op, "cache was not converted to (keys, values)");
    auto resultType = cast<CacheType>(op.getResult().getType());
    Location loc = op.getLoc();
    Value keys = tensor::ConcatOp::create(rewriter, loc, resultType.getKeyType(), /*dim=*/2,
                                          ValueRange{cache[0], adaptor.getKeys().front()});
    Value values = tensor::ConcatOp::create(rewriter, loc, resultType.getValueType(), /*dim=*/2,
                                            ValueRange{cache[1], adaptor.getValues().front()});
    rewriter.replaceOpWithMultiple(op, {{keys, values}});
    return success();
  }
};

struct CacheViewLowering : OpConversionPattern<CacheViewOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(CacheViewOp op, OneToNOpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    ValueRange cache = adaptor.getCache();
    if (cache.size() != 2)
      return rewriter.notifyMatchFailure(op, "cache was not converted to (keys, values)");
    rewriter.replaceOp(op, {cache[0], cache[1]});
    return success();
  }
};

struct ConvertKVCToLinalgPass
    : public mlir::kvc::impl::ConvertKVCToLinalgBase<ConvertKVCToLinalgPass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    // Say precisely what this lowering cannot handle instead of a generic legalization failure.
    WalkResult unsupported = getOperation().walk([](AttentionOp op) {
      auto qT = op.getQuery().getType(), kT = op.getKey().getType();
      if (qT.isDynamicDim(1) || kT.isDynamicDim(1)) {
        op.emitOpError() << "cannot be lowered to Linalg: query/key head counts must be static";
        return WalkResult::interrupt();
      }
      if (qT.isDynamicDim(3) && !op.getScaleAttr()) {
        op.emitOpError() << "cannot be lowered to Linalg: a dynamic head dim needs an explicit "
                            "scale";
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (unsupported.wasInterrupted())
      return signalPassFailure();
    TypeConverter converter;
    converter.addConversion([](Type t) { return t; });
    populateKVCCacheTypeConversion(converter);

    ConversionTarget target(*ctx);
    target.addLegalDialect<linalg::LinalgDialect, tensor::TensorDialect, arith::ArithDialect,
                           math::MathDialect>();
    target.addIllegalOp<AttentionOp, CacheFromTensorsOp, CacheAppendOp, CacheViewOp>();
    target.addDynamicallyLegalOp<func::FuncOp>([&](func::FuncOp op) {
      return converter.isSignatureLegal(op.getFunctionType()) &&
             converter.isLegal(&op.getBody());
    });
    target.markUnknownOpDynamicallyLegal([&](Operation *op) {
      return isNotBranchOpInterfaceOrReturnLikeOp(op) ||
             isLegalForBranchOpInterfaceTypeConversionPattern(op, converter) ||
             isLegalForReturnOpTypeConversionPattern(op, converter);
    });
    target.addDynamicallyLegalOp<func::CallOp>(
        [&](func::CallOp op) { return converter.isLegal(op); });
    target.addDynamicallyLegalOp<func::ReturnOp>(
        [&](func::ReturnOp op) { return converter.isLegal(op); });

    RewritePatternSet patterns(ctx);
    populateKVCToLinalgPatterns(converter, patterns);
    populateFunctionOpInterfaceTypeConversionPattern<func::FuncOp>(patterns, converter);
    populateCallOpTypeConversionPattern(patterns, converter);
    populateBranchOpInterfaceTypeConversionPattern(patterns, converter);
    populateReturnOpTypeConversionPattern(patterns, converter);

    if (failed(applyPartialConversion(getOperation(), target, std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace

void mlir::kvc::populateKVCCacheTypeConversion(TypeConverter &converter) {
  converter.addConversion(
      [](CacheType type, SmallVectorImpl<Type> &results) -> std::optional<LogicalResult> {
        results.push_back(type.getKeyType());
        results.push_back(type.getValueType());
        return success();
      });
}

void mlir::kvc::populateKVCToLinalgPatterns(const TypeConverter &converter,
                                            RewritePatternSet &patterns) {
  patterns.add<AttentionOpLowering, CacheFromTensorsLowering, CacheAppendLowering,
               CacheViewLowering>(converter, patterns.getContext());
}
