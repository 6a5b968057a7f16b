//===- CompressCache.cpp - prefill cache -> compressed decode cache ---------===//
#include "kvc/Dialect/KVC/IR/KVC.h"
#include "kvc/Dialect/KVC/Transforms/CacheRewriting.h"
#include "kvc/Dialect/KVC/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"

namespace mlir {
namespace kvc {
#define GEN_PASS_DEF_KVCCOMPRESSCACHE
#include "kvc/Dialect/KVC/Transforms/Passes.h.inc"
} // namespace kvc
} // namespace mlir

using namespace mlir;
using namespace mlir::kvc;

namespace {

struct KVCCompressCachePass : public mlir::kvc::impl::KVCCompressCacheBase<KVCCompressCachePass> {
  using KVCCompressCacheBase::KVCCompressCacheBase;

  /// The function argument marked `attr = index`, or null.
  static Value markedArgument(func::FuncOp func, StringRef attr, int64_t index) {
    for (unsigned i = 0; i < func.getNumArguments(); ++i)
      if (auto a = func.getArgAttrOfType<IntegerAttr>(i, attr); a && a.getInt() == index)
        return func.getArgument(i);
    return {};
  }

  /// budget-mode=gvote: kvc.vote + kvc.cache.select per cache (selection, budgets from the data).
  void runGVote(func::FuncOp func) {
    if (ratio != 0.0 || budget != 0 || method.hasValue()) {
      func.emitError() << "kvc-compress-cache: budget-mode=gvote chooses the kept pairs and the "
                          "budget itself; do not give method, ratio or budget";
      return signalPassFailure();
    }
    if (!(p > 0.0 && p <= 1.0) || samples < 0) {
      func.emitError() << "kvc-compress-cache: gvote needs p in (0, 1] and samples >= 0";
      return signalPassFailure();
    }
    SmallVector<std::pair<CacheFromTensorsOp, AttentionOp>> caches;
    bool failedSearch = false;
    func.walk([&](CacheFromTensorsOp from) {
      if (!llvm::any_of(from->getUsers(), [](Operation *u) { return isa<CacheAppendOp>(u); }))
        return;
      AttentionOp prefill;
      for (Operation *user : from.getKeys().getUsers())
        if (auto attn = dyn_cast<AttentionOp>(user))
          if (attn.getKey() == from.getKeys() && attn.getValue() == from.getValues())
            prefill = attn;
      if (!prefill) {
        from.emitError() << "kvc-compress-cache: gvote needs the prefill queries of this cache, "
                            "but no kvc.attention reads its keys and values";
        failedSearch = true;
        return;
      }
      caches.push_back({from, prefill});
    });
    if (failedSearch)
      return signalPassFailure();
    MLIRContext *ctx = func.getContext();
    OpBuilder b(ctx);
    for (auto [index, entry] : llvm::enumerate(caches)) {
      auto [from, prefill] = entry;
      Value mean = markedArgument(func, "kvc.gvote.hidden_mean", index);
      Value var = markedArgument(func, "kvc.gvote.hidden_var", index);
      Value wq = markedArgument(func, "kvc.gvote.w_q", index);
      if (!mean || !var || !wq) {
        from.emitError() << "kvc-compress-cache: gvote needs the query model of cache #" << index
                         << ": function arguments marked kvc.gvote.hidden_mean, "
                            "kvc.gvote.hidden_var and kvc.gvote.w_q = "
                         << index;
        return signalPassFailure();
      }
      auto ct = cast<CacheType>(from.getType());
      Value q = prefill.getQuery();
      auto qT = cast<RankedTensorType>(q.getType());
      if (qT.isDynamicDim(2) || ct.getKeyType().isDynamicDim(2)) {
        from.emitError() << "kvc-compress-cache: gvote needs static sequence lengths";
        return signalPassFailure();
      }
      // Insert after the cache, the prefill attention and the query model are all defined.
      Operation *after = from;
      for (Operation *op : {prefill.getOperation()})
        if (op->getBlock() == after->getBlock() && after->isBeforeInBlock(op))
          after = op;
      b.setInsertionPointAfter(after);
      Location loc = from.getLoc();
      // The current query: the prefill's last query row of every head.
      SmallVector<int64_t> lastShape(qT.getShape());
      lastShape[2] = 1;
      SmallVector<OpFoldResult> offsets{b.getIndexAttr(0), b.getIndexAttr(0),
                                        b.getIndexAttr(qT.getDimSize(2) - 1), b.getIndexAttr(0)};
      SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, q);
      sizes[2] = b.getIndexAttr(1);
      SmallVector<OpFoldResult> strides(4, b.getIndexAttr(1));
      Value current = tensor::ExtractSliceOp::create(
          b, loc, RankedTensorType::get(lastShape, qT.getElementType()), q, offsets, sizes,
          strides);
      int64_t B = ct.getBatch(), H = ct.getNumKVHeads(), S = ct.getSeqLen();
      auto keptType = RankedTensorType::get({B, H, S}, b.getI64Type());
      auto countsType = RankedTensorType::get({B, H}, b.getI64Type());
      auto vote = VoteOp::create(b, loc, keptType, countsType, from.getCache(), current, mean,
                                 var, wq, b.getF64FloatAttr(p), b.getI64IntegerAttr(samples),
                                 b.getI64IntegerAttr(seed), b.getI64IntegerAttr(sinks),
                                 b.getI64IntegerAttr(recent), b.getF64FloatAttr(ropeTheta),
                                 b.getI64IntegerAttr(nFuture));
      if (failed(mlir::verify(vote))) {
        vote.erase();
        return signalPassFailure();
      }
      auto raggedType = RaggedCacheType::get(ctx, ct.getKeyType(), ct.getValueType(),
                                             unsigned(sinks), unsigned(recent));
      auto select = CacheSelectOp::create(b, loc, raggedType, from.getCache(), vote.getKept(),
                                          vote.getCounts());
      retargetCacheUses(from.getCache(), select.getResult(), select);
    }
    eraseDeadCacheOps(func);
  }

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    std::optional<CompressMethod> m = symbolizeCompressMethod(method);
    if (!m) {
      func.emitError() << "kvc-compress-cache: unknown method '" << method
                       << "' (expected streaming, snapkv, h2o, select_fit or sculpt)";
      return signalPassFailure();
    }
    if (budgetMode == "gvote")
      return runGVote(func);
    std::optional<BudgetMode> mode = symbolizeBudgetMode(budgetMode);
    if (!mode) {
      func.emitError() << "kvc-compress-cache: unknown budget-mode '" << budgetMode
                       << "' (expected uniform, pilot or gvote)";
      return signalPassFailure();
    }
    if ((ratio > 0) == (budget > 0) || ratio > 1.0 || ratio < 0 || budget < 0) {
      func.emitError() << "kvc-compress-cache: give exactly one of ratio in (0, 1] and budget > 0 "
                          "(got ratio="
                       << ratio << ", budget=" << static_cast<int64_t>(budget) << ")";
      return signalPassFailure();
    }

    // Caches built from prefill tensors and appended to for decode.
    SmallVector<CacheFromTensorsOp> caches;
    SmallVector<Value> queries;
    bool failedQueries = false;
    func.walk([&](CacheFromTensorsOp from) {
      bool appended = llvm::any_of(from->getUsers(), [](Operation *u) { return isa<CacheAppendOp>(u); });
      if (!appended)
        return;
      // The prefill attention reads exactly these keys and values.
      Value q;
      for (Operation *user : from.getKeys().getUsers())
        if (auto attn = dyn_cast<AttentionOp>(user))
          if (attn.getKey() == from.getKeys() && attn.getValue() == from.getValues() &&
              attn->getBlock() == from->getBlock())
            q = attn.getQuery();
      if (!q && *m != CompressMethod::Streaming) {
        from.emitError() << "kvc-compress-cache: method '" << method
                         << "' needs the prefill queries of this cache, but no kvc.attention reads "
                            "its keys and values";
        failedQueries = true;
        return;
      }
      caches.push_back(from);
      queries.push_back(q);
    });
    if (failedQueries)
      return signalPassFailure();
    if (caches.empty())
      return;
    if (llvm::any_of(caches, [&](CacheFromTensorsOp c) { return c->getBlock() != caches[0]->getBlock(); })) {
      caches[0].emitError() << "kvc-compress-cache: the caches to compress must be built in one block";
      return signalPassFailure();
    }
    bool withQueries = *m != CompressMethod::Streaming;
    // Insert after every cache and query definition (same block, so the latest one).
    Operation *insertAfter = caches[0];
    auto consider = [&](Operation *op) {
      if (op && op->getBlock() == insertAfter->getBlock() && insertAfter->isBeforeInBlock(op))
        insertAfter = op;
    };
    for (auto [c, q] : llvm::zip(caches, queries)) {
      consider(c);
      if (withQueries)
        consider(q.getDefiningOp());
    }
    for (auto [c, q] : llvm::zip(caches, queries)) {
      if (!withQueries)
        continue;
      // Queries defined in another (enclosing) block dominate already; block arguments too.
      if (Operation *def = q.getDefiningOp(); def && def->getBlock() != insertAfter->getBlock()) {
        c.emitError() << "kvc-compress-cache: prefill queries are not defined in the cache's block";
        return signalPassFailure();
      }
    }

    OpBuilder b(insertAfter->getContext());
    b.setInsertionPointAfter(insertAfter);
    SmallVector<Value> cacheValues, queryValues;
    SmallVector<Type> resultTypes;
    for (auto [c, q] : llvm::zip(caches, queries)) {
      auto ct = cast<CacheType>(c.getType());
      cacheValues.push_back(c.getCache());
      if (withQueries)
        queryValues.push_back(q);
      resultTypes.push_back(RaggedCacheType::get(b.getContext(), ct.getKeyType(), ct.getValueType(),
                                                 unsigned(sinks), unsigned(recent)));
    }
    auto compress = CompressOp::create(
        b, caches[0].getLoc(), resultTypes, cacheValues, queryValues,
        CompressMethodAttr::get(b.getContext(), *m), ratio > 0 ? b.getF64FloatAttr(ratio) : FloatAttr(),
        budget > 0 ? b.getI64IntegerAttr(budget) : IntegerAttr(),
        BudgetModeAttr::get(b.getContext(), *mode), b.getI64IntegerAttr(sinks),
        b.getI64IntegerAttr(recent));
    if (failed(mlir::verify(compress))) {
      compress.erase();
      return signalPassFailure();
    }

    // Move decode consumers over to the ragged caches.
    for (auto [c, r] : llvm::zip(cacheValues, compress.getResults()))
      retargetCacheUses(c, r, compress);
    eraseDeadCacheOps(func);
  }
};

} // namespace
