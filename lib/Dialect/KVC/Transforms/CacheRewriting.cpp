//===- CacheRewriting.cpp - moving cache consumers between cache kinds ------===//
#include "kvc/Dialect/KVC/Transforms/CacheRewriting.h"
#include "kvc/Dialect/KVC/IR/KVC.h"

using namespace mlir;
using namespace mlir::kvc;

static RankedTensorType withSeq(RankedTensorType t, int64_t seq) {
  SmallVector<int64_t> shape(t.getShape());
  shape[2] = seq;
  return RankedTensorType::get(shape, t.getElementType());
}

Type mlir::kvc::cacheTypeWithSeq(Type cacheType, int64_t seq) {
  MLIRContext *ctx = cacheType.getContext();
  if (auto c = dyn_cast<CacheType>(cacheType))
    return CacheType::get(ctx, withSeq(c.getKeyType(), seq), withSeq(c.getValueType(), seq));
  if (auto r = dyn_cast<RaggedCacheType>(cacheType))
    return RaggedCacheType::get(ctx, withSeq(r.getKeyType(), seq), withSeq(r.getValueType(), seq),
                                r.getSinks(), r.getRecent());
  auto e = cast<EncodedCacheType>(cacheType);
  return EncodedCacheType::get(ctx, withSeq(e.getKeyType(), seq), withSeq(e.getValueType(), seq),
                               e.getCodec(), e.getRagged());
}

bool mlir::kvc::isRaggedCacheType(Type cacheType) {
  if (isa<RaggedCacheType>(cacheType))
    return true;
  auto e = dyn_cast<EncodedCacheType>(cacheType);
  return e && e.getRagged();
}

static int64_t addDims(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) ? ShapedType::kDynamic : a + b;
}

void mlir::kvc::retargetCacheUses(Value oldCache, Value newCache, Operation *skip) {
  OpBuilder b(newCache.getContext());
  SmallVector<std::pair<Value, Value>> worklist{{oldCache, newCache}};
  while (!worklist.empty()) {
    auto [from, to] = worklist.pop_back_val();
    auto toType = cast<KVCacheTypeInterface>(to.getType());
    for (OpOperand &use : llvm::make_early_inc_range(from.getUses())) {
      Operation *user = use.getOwner();
      if (user == skip)
        continue;
      if (auto append = dyn_cast<CacheAppendOp>(user)) {
        int64_t n = append.getKeys().getType().getDimSize(2);
        Type newType = cacheTypeWithSeq(to.getType(), addDims(toType.getSeqLen(), n));
        b.setInsertionPoint(append);
        auto newAppend = CacheAppendOp::create(b, append.getLoc(), newType, to, append.getKeys(),
                                               append.getValues());
        worklist.push_back({append.getResult(), newAppend.getResult()});
      } else if (auto lengths = dyn_cast<CacheLengthsOp>(user)) {
        b.setInsertionPoint(lengths);
        auto newLengths = CacheLengthsOp::create(b, lengths.getLoc(), lengths.getType(), to);
        lengths.getResult().replaceAllUsesWith(newLengths.getResult());
      } else if (auto view = dyn_cast<CacheViewOp>(user)) {
        b.setInsertionPoint(view);
        auto newView = CacheViewOp::create(b, view.getLoc(), toType.getKeyType(),
                                           toType.getValueType(), to);
        Value newLengths;
        for (OpOperand &kUse : llvm::make_early_inc_range(view.getKeys().getUses())) {
          auto attn = dyn_cast<AttentionOp>(kUse.getOwner());
          if (!attn || attn.getKey() != view.getKeys() || attn.getValue() != view.getValues())
            continue;
          Value lengthsOperand = attn.getKvLengths();
          if (!lengthsOperand && isRaggedCacheType(to.getType())) {
            if (!newLengths) {
              auto lengthsType = RankedTensorType::get(
                  {toType.getBatch(), toType.getNumKVHeads()}, b.getI64Type());
              newLengths = CacheLengthsOp::create(b, view.getLoc(), lengthsType, to);
            }
            lengthsOperand = newLengths;
          }
          b.setInsertionPoint(attn);
          auto newAttn = AttentionOp::create(
              b, attn.getLoc(), attn.getType(), attn.getQuery(), newView.getKeys(),
              newView.getValues(), attn.getMask(), lengthsOperand, attn.getScaleAttr(),
              attn.getCausal(), attn.getSoftcapAttr(), attn.getWindowAttr());
          attn.replaceAllUsesWith(newAttn.getResult());
          attn.erase();
        }
      }
    }
  }
}

void mlir::kvc::eraseDeadCacheOps(Operation *root) {
  bool changed = true;
  while (changed) {
    changed = false;
    root->walk([&](Operation *op) {
      if (isa<CacheAppendOp, CacheViewOp, CacheLengthsOp, EncodeOp>(op) && op->use_empty()) {
        op->erase();
        changed = true;
      }
    });
  }
}
