//===- QuantizeCache.cpp - kvc-quantize-cache and kvc-entropy-encode --------===//
#include "kvc/Dialect/KVC/IR/KVC.h"
#include "kvc/Dialect/KVC/Transforms/CacheRewriting.h"
#include "kvc/Dialect/KVC/Transforms/Passes.h"

#include "mlir/IR/Builders.h"

namespace mlir {
namespace kvc {
#define GEN_PASS_DEF_KVCQUANTIZECACHE
#define GEN_PASS_DEF_KVCENTROPYENCODE
#include "kvc/Dialect/KVC/Transforms/Passes.h.inc"
} // namespace kvc
} // namespace mlir

using namespace mlir;
using namespace mlir::kvc;

namespace {

/// Caches that decode appends to: dense caches and kvc.compress results.
SmallVector<Value> decodeCaches(func::FuncOp func) {
  SmallVector<Value> caches;
  auto appended = [](Value v) {
    return llvm::any_of(v.getUsers(), [](Operation *u) { return isa<CacheAppendOp>(u); });
  };
  func.walk([&](Operation *op) {
    if (isa<CacheFromTensorsOp, CompressOp>(op))
      for (Value r : op->getResults())
        if (appended(r))
          caches.push_back(r);
  });
  return caches;
}

struct KVCQuantizeCachePass : public mlir::kvc::impl::KVCQuantizeCacheBase<KVCQuantizeCachePass> {
  using KVCQuantizeCacheBase::KVCQuantizeCacheBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    MLIRContext *ctx = &getContext();
    std::optional<QuantGroup> group = symbolizeQuantGroup(keyGroup);
    if (!group || *group == QuantGroup::Token) {
      func.emitError() << "kvc-quantize-cache: key-group must be block or channel, got '"
                       << keyGroup << "'";
      return signalPassFailure();
    }
    unsigned nbits = bits;
    if (nbits != 0 && nbits != 2 && nbits != 3 && nbits != 4 && nbits != 8) {
      func.emitError() << "kvc-quantize-cache: bits must be 0 (error-bounded) or 2, 3, 4, 8, got "
                       << nbits;
      return signalPassFailure();
    }
    // KIVI quantizes keys per channel; its bounds come from the width, not from errors.
    QuantGroup kg = nbits ? QuantGroup::Channel : *group;
    double kErr = nbits ? 0.0 : double(keyError), vErr = nbits ? 0.0 : double(valueError);
    auto codec = CodecAttr::getChecked(
        [&] { return func.emitError() << "kvc-quantize-cache: "; }, ctx, nbits, kg,
        unsigned(keyBlock), FloatAttr::get(Float64Type::get(ctx), kErr), QuantGroup::Token,
        unsigned(valueBlock), FloatAttr::get(Float64Type::get(ctx), vErr), EntropyCode::None,
        unsigned(recentKeys), unsigned(recentValues));
    if (!codec)
      return signalPassFailure();

    OpBuilder b(ctx);
    for (Value cache : decodeCaches(func)) {
      auto ct = cast<KVCacheTypeInterface>(cache.getType());
      b.setInsertionPointAfterValue(cache);
      auto type = EncodedCacheType::get(ctx, ct.getKeyType(), ct.getValueType(), codec,
                                        isRaggedCacheType(cache.getType()));
      auto encode = EncodeOp::create(b, cache.getLoc(), type, cache);
      retargetCacheUses(cache, encode.getResult(), encode);
    }
    eraseDeadCacheOps(func);
  }
};

struct KVCEntropyEncodePass : public mlir::kvc::impl::KVCEntropyEncodeBase<KVCEntropyEncodePass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    MLIRContext *ctx = &getContext();
    SmallVector<EncodeOp> encodes;
    func.walk([&](EncodeOp op) {
      CodecAttr c = cast<EncodedCacheType>(op.getType()).getCodec();
      if (c.getBits() == 0 && c.getEntropy() == EntropyCode::None)
        encodes.push_back(op);
    });
    OpBuilder b(ctx);
    for (EncodeOp op : encodes) {
      auto t = cast<EncodedCacheType>(op.getType());
      CodecAttr c = t.getCodec();
      auto coded = CodecAttr::get(ctx, c.getBits(), c.getKeyGroup(), c.getKeyBlock(),
                                  c.getKeyError(), c.getValueGroup(), c.getValueBlock(),
                                  c.getValueError(), EntropyCode::Huffman, c.getRecentKeys(),
                                  c.getRecentValues());
      b.setInsertionPoint(op);
      auto newOp = EncodeOp::create(
          b, op.getLoc(),
          EncodedCacheType::get(ctx, t.getKeyType(), t.getValueType(), coded, t.getRagged()),
          op.getCache());
      retargetCacheUses(op.getResult(), newOp.getResult(), newOp);
    }
    eraseDeadCacheOps(func);
  }
};

} // namespace
