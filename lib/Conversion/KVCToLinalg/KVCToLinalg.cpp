//===- KVCToLinalg.cpp - Lower kvc to Linalg on tensors ---------------------===//
//
// kvc.attention becomes a short chain of linalg.generic ops that mirrors the op's definition:
// scores (f32 contraction), score transform (scale/softcap/mask/causal/window), row max,
// exp(s - max), row sum, P·V, normalise + cast. GQA reads KV head `h floordiv G` through the
// indexing maps, so K/V are never copied per query head.
//
//===----------------------------------------------------------------------===//

#include "kvc/Conversion/Passes.h"
#include "kvc/Conversion/RuntimeFunc.h"
#include "kvc/Dialect/KVC/IR/EncodedCacheUse.h"
#include "kvc/Dialect/KVC/IR/KVC.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
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
    Value kvLengths = adaptor.getKvLengths();
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
    Value offset; // Skv - Sq: absolute position of query row 0 (per row with kv_lengths).
    Value sqIndex;
    if (causal || window)
      sqIndex = getValueOrCreateConstantIndexOp(rewriter, loc, Sq);
    if ((causal || window) && !kvLengths) {
      Value skv = getValueOrCreateConstantIndexOp(rewriter, loc, Skv);
      offset = arith::SubIOp::create(rewriter, loc, skv, sqIndex);
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
    int64_t lengthsArg = -1;
    if (kvLengths) {
      lengthsArg = transformIns.size();
      transformIns.push_back(kvLengths);
      AffineExpr h = getAffineDimExpr(1, ctx);
      transformMaps.push_back(
          AffineMap::get(4, 0, {getAffineDimExpr(0, ctx), group == 1 ? h : h.floorDiv(group)}, ctx));
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
              if (kvLengths) {
                // Keys past the row's length are not there.
                Value len = arith::IndexCastOp::create(b, l, b.getIndexType(), args[lengthsArg]);
                Value j = linalg::IndexOp::create(b, l, 3);
                Value valid = arith::CmpIOp::create(b, l, arith::CmpIPredicate::slt, j, len);
                s = arith::SelectOp::create(b, l, valid, s, ninf);
                if (causal || window)
                  offset = arith::SubIOp::create(b, l, len, sqIndex);
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
    if (isa<EncodedCacheType>(op.getCache().getType()))
      return failure();
    ValueRange cache = adaptor.getCache();
    auto resultType = cast<KVCacheTypeInterface>(op.getResult().getType());
    Location loc = op.getLoc();
    Value newKeys = adaptor.getKeys().front(), newValues = adaptor.getValues().front();
    if (isa<CacheType>(op.getResult().getType())) {
      Value keys = tensor::ConcatOp::create(rewriter, loc, resultType.getKeyType(), /*dim=*/2,
                                            ValueRange{cache[0], newKeys});
      Value values = tensor::ConcatOp::create(rewriter, loc, resultType.getValueType(), /*dim=*/2,
                                              ValueRange{cache[1], newValues});
      rewriter.replaceOpWithMultiple(op, {{keys, values}});
      return success();
    }
    // Ragged: row (b, h) continues at its own length, so the new pairs land at
    // [len, len + N) of that row; positions past the new length are zero.
    Value lengths = cache[2];
    Value keys = appendRagged(rewriter, loc, cache[0], newKeys, lengths, resultType.getKeyType());
    Value values =
        appendRagged(rewriter, loc, cache[1], newValues, lengths, resultType.getValueType());
    auto lT = cast<RankedTensorType>(lengths.getType());
    OpFoldResult n = dimOf(rewriter, loc, newKeys, 2);
    Value nIdx = getValueOrCreateConstantIndexOp(rewriter, loc, n);
    Value nI64 = arith::IndexCastOp::create(rewriter, loc, rewriter.getI64Type(), nIdx);
    Value init = tensor::EmptyOp::create(rewriter, loc, tensor::getMixedSizes(rewriter, loc, lengths),
                                         lT.getElementType());
    auto id2 = AffineMap::getMultiDimIdentityMap(2, rewriter.getContext());
    Value newLengths =
        linalg::GenericOp::create(
            rewriter, loc, init.getType(), ValueRange{lengths}, ValueRange{init},
            SmallVector<AffineMap>{id2, id2},
            SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
            [&](OpBuilder &b, Location l, ValueRange args) {
              linalg::YieldOp::create(b, l, ValueRange{arith::AddIOp::create(b, l, args[0], nI64)});
            })
            .getResult(0);
    rewriter.replaceOpWithMultiple(op, {{keys, values, newLengths}});
    return success();
  }

  static Value appendRagged(OpBuilder &b, Location loc, Value old, Value added, Value lengths,
                            RankedTensorType resultType) {
    MLIRContext *ctx = b.getContext();
    SmallVector<OpFoldResult> sizes;
    for (int64_t i = 0; i < 4; ++i)
      sizes.push_back(i == 2 ? OpFoldResult() : dimOf(b, loc, old, i));
    Value cap = getValueOrCreateConstantIndexOp(b, loc, dimOf(b, loc, old, 2));
    Value n = getValueOrCreateConstantIndexOp(b, loc, dimOf(b, loc, added, 2));
    sizes[2] = resultType.isDynamicDim(2)
                   ? OpFoldResult(arith::AddIOp::create(b, loc, cap, n).getResult())
                   : OpFoldResult(b.getIndexAttr(resultType.getDimSize(2)));
    Value init = tensor::EmptyOp::create(b, loc, sizes, resultType.getElementType());
    AffineExpr d0, d1;
    bindDims(ctx, d0, d1);
    auto id4 = AffineMap::getMultiDimIdentityMap(4, ctx);
    auto row = AffineMap::get(4, 0, {d0, d1}, ctx);
    Type elem = resultType.getElementType();
    return linalg::GenericOp::create(
               b, loc, init.getType(), ValueRange{lengths}, ValueRange{init},
               SmallVector<AffineMap>{row, id4},
               SmallVector<utils::IteratorType>(4, utils::IteratorType::parallel),
               [&](OpBuilder &nb, Location l, ValueRange args) {
                 Value bi = linalg::IndexOp::create(nb, l, 0);
                 Value hi = linalg::IndexOp::create(nb, l, 1);
                 Value j = linalg::IndexOp::create(nb, l, 2);
                 Value d = linalg::IndexOp::create(nb, l, 3);
                 Value len = arith::IndexCastOp::create(nb, l, nb.getIndexType(), args[0]);
                 Value zeroIdx = arith::ConstantIndexOp::create(nb, l, 0);
                 Value one = arith::ConstantIndexOp::create(nb, l, 1);
                 // Clamp both gathers in range; selects pick the right one.
                 Value capM1 = arith::SubIOp::create(nb, l, cap, one);
                 Value jOld = arith::MinSIOp::create(nb, l, j, capM1);
                 Value rel = arith::SubIOp::create(nb, l, j, len);
                 Value nM1 = arith::SubIOp::create(nb, l, n, one);
                 Value jNew = arith::MaxSIOp::create(
                     nb, l, zeroIdx, arith::MinSIOp::create(nb, l, rel, nM1));
                 Value fromOld = tensor::ExtractOp::create(nb, l, old, ValueRange{bi, hi, jOld, d});
                 Value fromNew =
                     tensor::ExtractOp::create(nb, l, added, ValueRange{bi, hi, jNew, d});
                 Value zero = arith::ConstantOp::create(nb, l, nb.getZeroAttr(elem));
                 Value isOld = arith::CmpIOp::create(nb, l, arith::CmpIPredicate::slt, j, len);
                 Value isNew = arith::CmpIOp::create(nb, l, arith::CmpIPredicate::slt, rel, n);
                 Value v = arith::SelectOp::create(
                     nb, l, isOld, fromOld, arith::SelectOp::create(nb, l, isNew, fromNew, zero));
                 linalg::YieldOp::create(nb, l, ValueRange{v});
               })
        .getResult(0);
  }
};

struct CacheViewLowering : OpConversionPattern<CacheViewOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(CacheViewOp op, OneToNOpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    if (isa<EncodedCacheType>(op.getCache().getType()))
      return failure();
    ValueRange cache = adaptor.getCache();
    rewriter.replaceOp(op, {cache[0], cache[1]});
    return success();
  }
};

struct CacheLengthsLowering : OpConversionPattern<CacheLengthsOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(CacheLengthsOp op, OneToNOpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    if (isa<EncodedCacheType>(op.getCache().getType()))
      return failure();
    Value lengths = adaptor.getCache()[2];
    if (lengths.getType() != op.getType())
      lengths = tensor::CastOp::create(rewriter, op.getLoc(), op.getType(), lengths);
    rewriter.replaceOp(op, lengths);
    return success();
  }
};

MemRefType dynMemRef(int64_t rank, Type elem) {
  return MemRefType::get(SmallVector<int64_t>(rank, ShapedType::kDynamic), elem);
}

/// `m` cast to the fully dynamic memref type the runtime functions are declared with.
Value dynamicMemRef(OpBuilder &b, Location loc, Value m) {
  auto t = cast<MemRefType>(m.getType());
  return memref::CastOp::create(b, loc, dynMemRef(t.getRank(), t.getElementType()), m);
}

/// Read-only buffer of a tensor, cast to a fully dynamic memref for the runtime ABI.
Value runtimeBuffer(OpBuilder &b, Location loc, Value tensor) {
  auto t = cast<RankedTensorType>(tensor.getType());
  Value m = bufferization::ToBufferOp::create(
      b, loc, MemRefType::get(t.getShape(), t.getElementType()), tensor, /*readOnly=*/true);
  return dynamicMemRef(b, loc, m);
}

Value tensorOfBuffer(OpBuilder &b, Location loc, Value m) {
  auto mt = cast<MemRefType>(m.getType());
  return bufferization::ToTensorOp::create(
      b, loc, RankedTensorType::get(mt.getShape(), mt.getElementType()), m, /*restrict=*/true,
      /*writable=*/true);
}

Value i64Const(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(v));
}

/// kvc.compress -> calls into libkvc_runtime (include/kvc/Runtime/CompilerABI.h):
/// begin(options) -> handle; add(handle, layer, K, V, Q) per cache; run; get(handle, layer,
/// K', V', lengths) per cache; end. Buffers cross as f32 memrefs (llvm.emit_c_interface).
struct CompressLowering : OpConversionPattern<CompressOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult matchAndRewrite(CompressOp op, OneToNOpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto module = op->getParentOfType<ModuleOp>();
    Type f32 = rewriter.getF32Type(), i64 = rewriter.getI64Type(), f64 = rewriter.getF64Type();
    auto dyn4 = dynMemRef(4, f32);
    auto dyn2i = dynMemRef(2, i64);
    auto begin = declareRuntimeFunc(rewriter, module, "kvc_rt_compress_begin", {i64, f64, i64, i64, i64, i64, i64},
                         {i64});
    auto add = declareRuntimeFunc(rewriter, module, "kvc_rt_compress_add", {i64, i64, dyn4, dyn4, dyn4}, {});
    auto run = declareRuntimeFunc(rewriter, module, "kvc_rt_compress_run", {i64}, {});
    auto get = declareRuntimeFunc(rewriter, module, "kvc_rt_compress_get", {i64, i64, dyn4, dyn4, dyn2i}, {});
    auto end = declareRuntimeFunc(rewriter, module, "kvc_rt_compress_end", {i64}, {});

    auto cst = [&](int64_t v) { return i64Const(rewriter, loc, v); };
    auto toBuffer = [&](Value tensor) { return runtimeBuffer(rewriter, loc, tensor); };
    double ratio = op.getRatioAttr() ? op.getRatioAttr().getValueAsDouble() : 0.0;
    int64_t budget = op.getBudgetAttr() ? op.getBudgetAttr().getInt() : 0;
    Value handle =
        func::CallOp::create(rewriter, loc, begin,
                             ValueRange{cst(int64_t(op.getMethod())),
                                        arith::ConstantOp::create(rewriter, loc,
                                                                  rewriter.getF64FloatAttr(ratio)),
                                        cst(budget), cst(int64_t(op.getBudgetMode())),
                                        cst(op.getSinks()), cst(op.getRecent()),
                                        cst(op.getCaches().size())})
            .getResult(0);
    auto caches = adaptor.getCaches();
    auto queries = adaptor.getQueries();
    for (size_t layer = 0; layer < caches.size(); ++layer) {
      ValueRange kv = caches[layer];
      Value q;
      if (!queries.empty()) {
        q = queries[layer].front();
      } else {
        // No queries (streaming): an empty [B, 1, 0, D] tensor.
        auto kT = cast<RankedTensorType>(kv[0].getType());
        q = tensor::EmptyOp::create(
            rewriter, loc,
            SmallVector<OpFoldResult>{dimOf(rewriter, loc, kv[0], 0), rewriter.getIndexAttr(1),
                                      rewriter.getIndexAttr(0), dimOf(rewriter, loc, kv[0], 3)},
            kT.getElementType());
      }
      func::CallOp::create(rewriter, loc, add,
                           ValueRange{handle, cst(layer), toBuffer(kv[0]), toBuffer(kv[1]),
                                      toBuffer(q)});
    }
    func::CallOp::create(rewriter, loc, run, ValueRange{handle});
    SmallVector<SmallVector<Value>> replacements;
    for (size_t layer = 0; layer < caches.size(); ++layer) {
      ValueRange kv = caches[layer];
      auto alloc = [&](Value like, Type elem, int64_t rank) -> Value {
        SmallVector<Value> dynSizes;
        auto t = cast<RankedTensorType>(like.getType());
        SmallVector<int64_t> shape(t.getShape().take_front(rank));
        for (int64_t i = 0; i < rank; ++i)
          if (ShapedType::isDynamic(shape[i]))
            dynSizes.push_back(tensor::DimOp::create(rewriter, loc, like, i));
        return memref::AllocOp::create(rewriter, loc, MemRefType::get(shape, elem), dynSizes);
      };
      Value outK = alloc(kv[0], f32, 4), outV = alloc(kv[1], f32, 4);
      Value outLen = alloc(kv[0], i64, 2);
      func::CallOp::create(rewriter, loc, get,
                           ValueRange{handle, cst(layer),
                                      dynamicMemRef(rewriter, loc, outK),
                                      dynamicMemRef(rewriter, loc, outV),
                                      dynamicMemRef(rewriter, loc, outLen)});
      auto toTensor = [&](Value m) { return tensorOfBuffer(rewriter, loc, m); };
      replacements.push_back({toTensor(outK), toTensor(outV), toTensor(outLen)});
    }
    func::CallOp::create(rewriter, loc, end, ValueRange{handle});
    SmallVector<ValueRange> ranges(replacements.begin(), replacements.end());
    rewriter.replaceOpWithMultiple(op, ranges);
    return success();
  }
};

/// kvc.vote -> kvc_rt_vote (GVote in libkvc_runtime), outputs in fresh buffers.
struct VoteLowering : OpConversionPattern<VoteOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(VoteOp op, OneToNOpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Type i64 = rewriter.getI64Type(), f64 = rewriter.getF64Type(), f32 = rewriter.getF32Type();
    auto keptType = MemRefType::get(op.getKept().getType().getShape(), i64);
    auto countsType = MemRefType::get(op.getCounts().getType().getShape(), i64);
    if (!keptType.hasStaticShape() || !countsType.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "dynamic vote result shapes");
    auto fn = declareRuntimeFunc(
        rewriter, op->getParentOfType<ModuleOp>(), "kvc_rt_vote",
        {f64, i64, i64, i64, i64, f64, i64, dynMemRef(4, f32), dynMemRef(4, f32),
         dynMemRef(1, f32), dynMemRef(1, f32), dynMemRef(3, f32), dynMemRef(3, i64),
         dynMemRef(2, i64)},
        {});
    Value kept = memref::AllocOp::create(rewriter, loc, keptType);
    Value counts = memref::AllocOp::create(rewriter, loc, countsType);
    auto f64c = [&](double v) -> Value {
      return arith::ConstantOp::create(rewriter, loc, rewriter.getF64FloatAttr(v));
    };
    func::CallOp::create(
        rewriter, loc, fn,
        ValueRange{f64c(op.getP().convertToDouble()), i64Const(rewriter, loc, op.getSamples()),
                   i64Const(rewriter, loc, op.getSeed()), i64Const(rewriter, loc, op.getSinks()),
                   i64Const(rewriter, loc, op.getRecent()),
                   f64c(op.getRopeTheta().convertToDouble()),
                   i64Const(rewriter, loc, op.getNFuture()),
                   runtimeBuffer(rewriter, loc, adaptor.getCache()[0]),
                   runtimeBuffer(rewriter, loc, adaptor.getQueries().front()),
                   runtimeBuffer(rewriter, loc, adaptor.getHiddenMean().front()),
                   runtimeBuffer(rewriter, loc, adaptor.getHiddenVar().front()),
                   runtimeBuffer(rewriter, loc, adaptor.getWQ().front()),
                   dynamicMemRef(rewriter, loc, kept),
                   dynamicMemRef(rewriter, loc, counts)});
    rewriter.replaceOp(op, {tensorOfBuffer(rewriter, loc, kept),
                            tensorOfBuffer(rewriter, loc, counts)});
    return success();
  }
};

/// kvc.cache.select: row (b, h) of the ragged result holds K[b, h, kept[b, h, j]] for
/// j < counts[b, h] and zeros after; lengths = counts.
struct CacheSelectLowering : OpConversionPattern<CacheSelectOp> {
  using OpConversionPattern::OpConversionPattern;

  static Value gatherRows(OpBuilder &b, Location loc, Value src, Value kept, Value counts,
                          RankedTensorType resultType) {
    MLIRContext *ctx = b.getContext();
    SmallVector<OpFoldResult> sizes;
    for (int64_t i = 0; i < 4; ++i)
      sizes.push_back(resultType.isDynamicDim(i) ? OpFoldResult(tensor::DimOp::create(b, loc, src, i).getResult())
                                                 : OpFoldResult(b.getIndexAttr(resultType.getDimSize(i))));
    Value init = tensor::EmptyOp::create(b, loc, sizes, resultType.getElementType());
    AffineExpr d0, d1;
    bindDims(ctx, d0, d1);
    Value srcLen = getValueOrCreateConstantIndexOp(b, loc, dimOf(b, loc, src, 2));
    Value keptLen = getValueOrCreateConstantIndexOp(b, loc, dimOf(b, loc, kept, 2));
    Type elem = resultType.getElementType();
    return linalg::GenericOp::create(
               b, loc, init.getType(), ValueRange{counts}, ValueRange{init},
               SmallVector<AffineMap>{AffineMap::get(4, 0, {d0, d1}, ctx),
                                      AffineMap::getMultiDimIdentityMap(4, ctx)},
               SmallVector<utils::IteratorType>(4, utils::IteratorType::parallel),
               [&](OpBuilder &nb, Location l, ValueRange args) {
                 Value bi = linalg::IndexOp::create(nb, l, 0);
                 Value hi = linalg::IndexOp::create(nb, l, 1);
                 Value j = linalg::IndexOp::create(nb, l, 2);
                 Value d = linalg::IndexOp::create(nb, l, 3);
                 Value zeroIdx = arith::ConstantIndexOp::create(nb, l, 0);
                 Value one = arith::ConstantIndexOp::create(nb, l, 1);
                 Value n = arith::IndexCastOp::create(nb, l, nb.getIndexType(), args[0]);
                 Value jk = arith::MinSIOp::create(nb, l, j, arith::SubIOp::create(nb, l, keptLen, one));
                 Value tok = arith::IndexCastOp::create(
                     nb, l, nb.getIndexType(),
                     tensor::ExtractOp::create(nb, l, kept, ValueRange{bi, hi, jk}));
                 // Clamp the token index into range; the select below discards invalid slots.
                 tok = arith::MaxSIOp::create(
                     nb, l, zeroIdx,
                     arith::MinSIOp::create(nb, l, tok, arith::SubIOp::create(nb, l, srcLen, one)));
                 Value v = tensor::ExtractOp::create(nb, l, src, ValueRange{bi, hi, tok, d});
                 Value valid = arith::AndIOp::create(
                     nb, l, arith::CmpIOp::create(nb, l, arith::CmpIPredicate::slt, j, n),
                     arith::CmpIOp::create(nb, l, arith::CmpIPredicate::slt, j, keptLen));
                 Value zero = arith::ConstantOp::create(nb, l, nb.getZeroAttr(elem));
                 linalg::YieldOp::create(nb, l,
                                         ValueRange{arith::SelectOp::create(nb, l, valid, v, zero)});
               })
        .getResult(0);
  }

  LogicalResult matchAndRewrite(CacheSelectOp op, OneToNOpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    ValueRange cache = adaptor.getCache();
    Value kept = adaptor.getKept().front(), counts = adaptor.getCounts().front();
    auto rt = cast<RaggedCacheType>(op.getType());
    Value keys = gatherRows(rewriter, loc, cache[0], kept, counts, rt.getKeyType());
    Value values = gatherRows(rewriter, loc, cache[1], kept, counts, rt.getValueType());
    auto lengthsType = RankedTensorType::get({rt.getBatch(), rt.getNumKVHeads()},
                                             rewriter.getI64Type());
    if (counts.getType() != lengthsType)
      counts = tensor::CastOp::create(rewriter, loc, lengthsType, counts);
    rewriter.replaceOpWithMultiple(op, {{keys, values, counts}});
    return success();
  }
};

/// Encoded caches are runtime handles (i64): kvc.encode creates one, append updates it,
/// view decodes into fresh buffers, lengths reads the row lengths.
struct EncodeLowering : OpConversionPattern<EncodeOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(EncodeOp op, OneToNOpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    ValueRange in = adaptor.getCache();
    auto module = op->getParentOfType<ModuleOp>();
    Type i64 = rewriter.getI64Type(), f64 = rewriter.getF64Type(), f32 = rewriter.getF32Type();
    auto fn = declareRuntimeFunc(rewriter, module, "kvc_rt_encode",
                                 {i64, i64, i64, f64, i64, f64, i64, i64, i64, dynMemRef(4, f32),
                                  dynMemRef(4, f32), dynMemRef(2, i64)},
                                 {i64});
    CodecAttr c = cast<EncodedCacheType>(op.getType()).getCodec();
    Value lengths;
    if (in.size() == 3) {
      lengths = runtimeBuffer(rewriter, loc, in[2]);
    } else {
      Value empty = memref::AllocOp::create(rewriter, loc, MemRefType::get({0, 0}, i64));
      lengths = dynamicMemRef(rewriter, loc, empty);
    }
    auto f64c = [&](FloatAttr a) -> Value {
      return arith::ConstantOp::create(rewriter, loc, rewriter.getF64FloatAttr(a.getValueAsDouble()));
    };
    Value handle =
        func::CallOp::create(
            rewriter, loc, fn,
            ValueRange{i64Const(rewriter, loc, c.getBits()),
                       i64Const(rewriter, loc, int64_t(c.getKeyGroup())),
                       i64Const(rewriter, loc, c.getKeyBlock()), f64c(c.getKeyError()),
                       i64Const(rewriter, loc, c.getValueBlock()), f64c(c.getValueError()),
                       i64Const(rewriter, loc, int64_t(c.getEntropy())),
                       i64Const(rewriter, loc, c.getRecentKeys()),
                       i64Const(rewriter, loc, c.getRecentValues()),
                       runtimeBuffer(rewriter, loc, in[0]), runtimeBuffer(rewriter, loc, in[1]),
                       lengths})
            .getResult(0);
    rewriter.replaceOpWithMultiple(op, {{handle}});
    return success();
  }
};

struct EncodedAppendLowering : OpConversionPattern<CacheAppendOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(CacheAppendOp op, OneToNOpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    if (!isa<EncodedCacheType>(op.getCache().getType()))
      return failure();
    Location loc = op.getLoc();
    Type i64 = rewriter.getI64Type(), f32 = rewriter.getF32Type();
    auto fn = declareRuntimeFunc(rewriter, op->getParentOfType<ModuleOp>(),
                                 "kvc_rt_encoded_append", {i64, dynMemRef(4, f32), dynMemRef(4, f32)},
                                 {i64});
    Value handle = func::CallOp::create(
                       rewriter, loc, fn,
                       ValueRange{adaptor.getCache().front(),
                                  runtimeBuffer(rewriter, loc, adaptor.getKeys().front()),
                                  runtimeBuffer(rewriter, loc, adaptor.getValues().front())})
                       .getResult(0);
    rewriter.replaceOpWithMultiple(op, {{handle}});
    return success();
  }
};

struct EncodedViewLowering : OpConversionPattern<CacheViewOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(CacheViewOp op, OneToNOpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    auto type = dyn_cast<EncodedCacheType>(op.getCache().getType());
    if (!type)
      return failure();
    Location loc = op.getLoc();
    auto module = op->getParentOfType<ModuleOp>();
    Type i64 = rewriter.getI64Type(), f32 = rewriter.getF32Type();
    Value handle = adaptor.getCache().front();
    SmallVector<Value> dynSizes;
    if (type.getKeyType().isDynamicDim(2)) {
      auto cap = declareRuntimeFunc(rewriter, module, "kvc_rt_encoded_capacity", {i64}, {i64});
      Value c = func::CallOp::create(rewriter, loc, cap, ValueRange{handle}).getResult(0);
      dynSizes.push_back(arith::IndexCastOp::create(rewriter, loc, rewriter.getIndexType(), c));
    }
    if (size_t(type.getKeyType().getNumDynamicDims()) != dynSizes.size())
      return rewriter.notifyMatchFailure(op, "only the sequence dimension may be dynamic");
    auto kType = MemRefType::get(type.getKeyType().getShape(), f32);
    auto vType = MemRefType::get(type.getValueType().getShape(), f32);
    Value k = memref::AllocOp::create(rewriter, loc, kType, dynSizes);
    Value v = memref::AllocOp::create(rewriter, loc, vType, dynSizes);
    auto fn = declareRuntimeFunc(rewriter, module, "kvc_rt_encoded_decode",
                                 {i64, dynMemRef(4, f32), dynMemRef(4, f32)}, {});
    func::CallOp::create(rewriter, loc, fn,
                         ValueRange{handle, dynamicMemRef(rewriter, loc, k),
                                    dynamicMemRef(rewriter, loc, v)});
    rewriter.replaceOp(op, {tensorOfBuffer(rewriter, loc, k), tensorOfBuffer(rewriter, loc, v)});
    return success();
  }
};

struct EncodedLengthsLowering : OpConversionPattern<CacheLengthsOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(CacheLengthsOp op, OneToNOpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    if (!isa<EncodedCacheType>(op.getCache().getType()))
      return failure();
    Location loc = op.getLoc();
    Type i64 = rewriter.getI64Type();
    auto lType = MemRefType::get(op.getType().getShape(), i64);
    if (!lType.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "dynamic batch or head count");
    Value l = memref::AllocOp::create(rewriter, loc, lType);
    auto fn = declareRuntimeFunc(rewriter, op->getParentOfType<ModuleOp>(),
                                 "kvc_rt_encoded_lengths", {i64, dynMemRef(2, i64)}, {});
    func::CallOp::create(
        rewriter, loc, fn,
        ValueRange{adaptor.getCache().front(),
                   dynamicMemRef(rewriter, loc, l)});
    rewriter.replaceOp(op, tensorOfBuffer(rewriter, loc, l));
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
    if (!unsupported.wasInterrupted())
      unsupported = getOperation().walk([](VoteOp op) {
        for (Value v : op->getOperands()) {
          Type elem = isa<KVCacheTypeInterface>(v.getType())
                          ? cast<KVCacheTypeInterface>(v.getType()).getElementType()
                          : getElementTypeOrSelf(v.getType());
          if (!elem.isF32()) {
            op.emitOpError() << "cannot be lowered to the CPU runtime yet: it needs f32 operands, "
                                "got "
                             << v.getType();
            return WalkResult::interrupt();
          }
        }
        return WalkResult::advance();
      });
    if (!unsupported.wasInterrupted())
      unsupported = getOperation().walk([](CompressOp op) {
        for (Value c : op.getCaches())
          if (!cast<CacheType>(c.getType()).getElementType().isF32()) {
            op.emitOpError() << "cannot be lowered to the CPU runtime yet: only f32 caches are "
                                "supported, got "
                             << c.getType();
            return WalkResult::interrupt();
          }
        return WalkResult::advance();
      });
    if (!unsupported.wasInterrupted())
      unsupported = getOperation().walk([](Operation *op) -> WalkResult {
        for (Value r : op->getResults()) {
          auto t = dyn_cast<EncodedCacheType>(r.getType());
          if (!t)
            continue;
          if (!t.getElementType().isF32() || t.getHeadDim() != t.getValueDim() ||
              t.getCodec().getValueGroup() != QuantGroup::Token ||
              (t.getCodec().getBits() == 0 && t.getCodec().getKeyGroup() == QuantGroup::Token)) {
            op->emitOpError() << "produces " << t
                              << ", which the CPU runtime cannot hold: it needs f32, equal key and "
                                 "value head dims, token value groups and block/channel key groups";
            return WalkResult::interrupt();
          }
          // The runtime updates an encoded cache in place on append, so nothing may read the
          // old value afterwards.
          if (t.getCodec().getBits() != 0)
            for (Operation *user : r.getUsers())
              if (isa<CacheAppendOp>(user)) {
                user->emitOpError() << "appends to a fixed-width (bits > 0) encoded cache, which "
                                       "the CPU runtime does not support yet";
                return WalkResult::interrupt();
              }
          if (Operation *other = findReadAfterInPlaceAppend(r)) {
            other->emitOpError() << "reads an encoded cache after (or apart from) the append "
                                    "that updates it in place";
            return WalkResult::interrupt();
          }
          if (Operation *app = findAppendOutsideDefiningBlock(r)) {
            app->emitOpError() << "appends to an encoded cache defined outside its block (e.g. "
                                  "in a loop body), which the runtime's in-place update cannot "
                                  "repeat";
            return WalkResult::interrupt();
          }
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
    target.addIllegalOp<AttentionOp, CacheFromTensorsOp, CacheAppendOp, CacheViewOp,
                        CacheLengthsOp, CompressOp, EncodeOp, VoteOp, CacheSelectOp>();
    target.addLegalDialect<bufferization::BufferizationDialect, memref::MemRefDialect>();
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
  // An encoded cache is a runtime handle (libkvc_runtime's EncodedCache).
  converter.addConversion([](EncodedCacheType type, SmallVectorImpl<Type> &results)
                              -> std::optional<LogicalResult> {
    results.push_back(IntegerType::get(type.getContext(), 64));
    return success();
  });
  // A ragged cache is (keys, values, lengths [B, Hkv] i64) with the capacity as sequence.
  converter.addConversion(
      [](RaggedCacheType type, SmallVectorImpl<Type> &results) -> std::optional<LogicalResult> {
        results.push_back(type.getKeyType());
        results.push_back(type.getValueType());
        results.push_back(RankedTensorType::get({type.getBatch(), type.getNumKVHeads()},
                                                IntegerType::get(type.getContext(), 64)));
        return success();
      });
}

void mlir::kvc::populateKVCToLinalgPatterns(const TypeConverter &converter,
                                            RewritePatternSet &patterns) {
  patterns.add<AttentionOpLowering, CacheFromTensorsLowering, CacheAppendLowering,
               CacheViewLowering, CacheLengthsLowering, CompressLowering, EncodeLowering,
               EncodedAppendLowering, EncodedViewLowering, EncodedLengthsLowering, VoteLowering,
               CacheSelectLowering>(
      converter, patterns.getContext());
}
