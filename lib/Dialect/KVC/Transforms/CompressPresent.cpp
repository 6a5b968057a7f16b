//===- CompressPresent.cpp - compress an imported prefill graph's present K/V ---===//
//
// ONNX decoder exports split prefill and decode into two graphs joined by the KV cache:
// prefill returns `present.N.{key,value}`, decode takes them back as `past_key_values.N.*`.
// Compressing that cache therefore means compressing the prefill graph's outputs: this pass
// routes each present pair through kvc.cache.from_tensors -> kvc.compress (uniform budget, the
// prefill attention's queries) -> kvc.cache.view, and returns the first `t` pairs of every row.
// With a uniform budget every row holds exactly `t` valid pairs, so the decode graph needs no
// change beyond a shorter past (one attention mask serves all layers and heads).
//
//===----------------------------------------------------------------------===//
#include "kvc/Dialect/KVC/IR/KVC.h"
#include "kvc/Dialect/KVC/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"

#include "llvm/ADT/SmallBitVector.h"

#include <cmath>

namespace mlir {
namespace kvc {
#define GEN_PASS_DEF_KVCCOMPRESSPRESENT
#include "kvc/Dialect/KVC/Transforms/Passes.h.inc"
} // namespace kvc
} // namespace mlir

using namespace mlir;
using namespace mlir::kvc;

namespace {

/// A linalg.generic that only copies or broadcasts its single input (repeat_kv's expand).
/// Returns the output dimensions the input does not index (the broadcast ones).
static std::optional<SmallVector<unsigned>> copyOrBroadcastDims(linalg::GenericOp g) {
  if (g.getNumDpsInputs() != 1 || g.getNumDpsInits() != 1 ||
      g.getNumParallelLoops() != g.getNumLoops())
    return std::nullopt;
  Block &body = g.getRegion().front();
  auto yield = dyn_cast<linalg::YieldOp>(body.getTerminator());
  if (!yield || body.getOperations().size() != 1 || yield.getNumOperands() != 1 ||
      yield.getOperand(0) != body.getArgument(0))
    return std::nullopt;
  AffineMap in = g.getIndexingMapsArray()[0], out = g.getIndexingMapsArray()[1];
  if (!out.isIdentity() || !in.isProjectedPermutation())
    return std::nullopt;
  // The input dims must stay in order (no transpose).
  int64_t last = -1;
  llvm::SmallBitVector used(g.getNumLoops());
  for (AffineExpr e : in.getResults()) {
    int64_t d = cast<AffineDimExpr>(e).getPosition();
    if (d <= last)
      return std::nullopt;
    last = d;
    used.set(d);
  }
  SmallVector<unsigned> bcast;
  for (unsigned d = 0; d < g.getNumLoops(); ++d)
    if (!used.test(d))
      bcast.push_back(d);
  return bcast;
}

/// How a present tensor reaches a kvc.attention operand.
struct Reach {
  AttentionOp attention;
  unsigned operand; // 1 = key, 2 = value
  bool groupedBroadcast = false; // a [B, Hkv, g, S, D] head broadcast (repeat_kv order)
  bool otherBroadcast = false;   // any other broadcast
};

/// Follows `v` forward through reshapes, casts and copy/broadcast generics (transformers'
/// repeat_kv) to the kvc.attention ops that read it as key or value.
static void findAttentions(Value v, Reach path, SmallVectorImpl<Reach> &out, int depth = 0) {
  if (depth > 8)
    return;
  for (OpOperand &use : v.getUses()) {
    Operation *user = use.getOwner();
    if (auto attn = dyn_cast<AttentionOp>(user)) {
      if (use.get() == attn.getKey() || use.get() == attn.getValue()) {
        Reach r = path;
        r.attention = attn;
        r.operand = use.get() == attn.getKey() ? 1 : 2;
        out.push_back(r);
      }
      continue;
    }
    if (isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp, tensor::CastOp>(user)) {
      findAttentions(user->getResult(0), path, out, depth + 1);
      continue;
    }
    Reach next = path;
    std::optional<SmallVector<unsigned>> bcast;
    if (auto g = dyn_cast<linalg::GenericOp>(user); g && use.getOperandNumber() == 0)
      bcast = copyOrBroadcastDims(g);
    else if (auto b = dyn_cast<linalg::BroadcastOp>(user); b && use.get() == b.getInput())
      bcast = SmallVector<unsigned>(b.getDimensions().begin(), b.getDimensions().end());
    if (!bcast)
      continue;
    auto outTy = cast<RankedTensorType>(user->getResult(0).getType());
    if (bcast->size() == 1 && (*bcast)[0] == 2 && outTy.getRank() == 5)
      next.groupedBroadcast = true;
    else if (!bcast->empty())
      next.otherBroadcast = true;
    findAttentions(user->getResult(0), next, out, depth + 1);
  }
}

static bool containsCI(StringRef s, StringRef part) { return s.lower().find(part.lower()) != std::string::npos; }

struct KVCCompressPresentPass
    : public mlir::kvc::impl::KVCCompressPresentBase<KVCCompressPresentPass> {
  using KVCCompressPresentBase::KVCCompressPresentBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    std::optional<CompressMethod> m = symbolizeCompressMethod(method);
    if (!m) {
      func.emitError() << "kvc-compress-present: unknown method '" << method
                       << "' (expected streaming, snapkv, h2o, select_fit or sculpt)";
      return signalPassFailure();
    }
    if ((ratio > 0) == (budget > 0) || ratio > 1.0 || ratio < 0 || budget < 0) {
      func.emitError() << "kvc-compress-present: give exactly one of ratio in (0, 1] and "
                          "budget > 0 (got ratio="
                       << ratio << ", budget=" << static_cast<int64_t>(budget) << ")";
      return signalPassFailure();
    }
    if (!func.getBody().hasOneBlock()) {
      func.emitError() << "kvc-compress-present: expects a single-block function";
      return signalPassFailure();
    }
    auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());

    // Pair the present outputs by name.
    SmallVector<std::pair<unsigned, unsigned>> pairs;
    SmallVector<std::string> names(func.getNumResults());
    for (unsigned i = 0; i < func.getNumResults(); ++i)
      if (auto n = func.getResultAttrOfType<StringAttr>(i, "kvc.onnx.name"))
        names[i] = n.str();
    for (unsigned i = 0; i < names.size(); ++i) {
      StringRef n = names[i];
      if (!containsCI(n, "present"))
        continue;
      size_t at = n.lower().rfind("key");
      if (at == std::string::npos)
        continue;
      std::string want = n.substr(0, at).str() + (n[at] == 'K' ? "Value" : "value") +
                         n.substr(at + 3).str();
      auto it = llvm::find_if(names, [&](const std::string &s) { return StringRef(s).equals_insensitive(want); });
      if (it == names.end()) {
        func.emitError() << "kvc-compress-present: output '" << n << "' has no value partner '"
                         << want << "'";
        return signalPassFailure();
      }
      pairs.push_back({i, unsigned(it - names.begin())});
    }
    if (pairs.empty()) {
      func.emitError() << "kvc-compress-present: no present key/value outputs (results named "
                          "like present.N.key / present.N.value via kvc.onnx.name)";
      return signalPassFailure();
    }

    MLIRContext *ctx = func.getContext();
    OpBuilder b(ret);
    const bool withQueries = *m != CompressMethod::Streaming;
    SmallVector<Value> caches, queries;
    SmallVector<Type> raggedTypes;
    SmallVector<int64_t> budgets;
    for (auto pair : pairs) {
      const unsigned ki = pair.first, vi = pair.second;
      Value k = ret.getOperand(ki), v = ret.getOperand(vi);
      auto kt = dyn_cast<RankedTensorType>(k.getType());
      auto vt = dyn_cast<RankedTensorType>(v.getType());
      auto fail = [&](const Twine &why) {
        func.emitError() << "kvc-compress-present: output '" << names[ki] << "': " << why;
        signalPassFailure();
      };
      if (!kt || !vt || kt.getRank() != 4 || vt.getRank() != 4)
        return fail("present key/value must be rank-4 tensors [B, Hkv, S, D]");
      if (kt.isDynamicDim(2))
        return fail("the sequence length is dynamic; pin the prefill length (kvc-translate "
                    "--shape) so the compressed length is static");
      const int64_t S = kt.getDimSize(2);
      int64_t t = budget > 0 ? int64_t(budget) : std::max<int64_t>(1, std::llround(ratio * S));
      t = std::min(t, S);
      if (t < sinks + recent && t < S)
        return fail("budget " + Twine(t) + " is smaller than sinks + recent = " +
                    Twine(int64_t(sinks)) + " + " + Twine(int64_t(recent)));
      Value q;
      if (withQueries) {
        SmallVector<Reach> kr, vr;
        findAttentions(k, Reach{}, kr);
        findAttentions(v, Reach{}, vr);
        for (Reach &r : kr) {
          if (r.operand != 1 || !llvm::any_of(vr, [&](const Reach &x) {
                return x.attention == r.attention && x.operand == 2;
              }))
            continue;
          auto qt = cast<RankedTensorType>(r.attention.getQuery().getType());
          auto at = cast<RankedTensorType>(r.attention.getKey().getType());
          const int64_t hkv = kt.getDimSize(1), hq = qt.getDimSize(1);
          // Either kvc.attention reads the KV heads directly (its own GQA: query head h uses
          // KV head h / g), or through repeat_kv, which gives the same assignment.
          const bool direct = at.getDimSize(1) == hkv && !r.groupedBroadcast;
          if (r.otherBroadcast || (!direct && hkv != 1 && !r.groupedBroadcast) ||
              ShapedType::isDynamic(hq) || hq % hkv != 0)
            return fail("the prefill attention reads this cache through an unrecognised head "
                        "expansion (expected transformers' repeat_kv: [B, Hkv, g, S, D] "
                        "broadcast then reshape)");
          q = r.attention.getQuery();
          break;
        }
        if (!q)
          return fail("method '" + method + "' needs the prefill queries, but no kvc.attention "
                      "reads this key/value pair (for decomposed exports run "
                      "--kvc-raise-attention first)");
        if (Operation *def = q.getDefiningOp(); def && def->getBlock() != ret->getBlock())
          return fail("the prefill queries are not defined in the function body");
      }
      Value cache = CacheFromTensorsOp::create(b, k.getLoc(),
                                               CacheType::get(ctx, kt, vt), k, v);
      caches.push_back(cache);
      if (withQueries)
        queries.push_back(q);
      raggedTypes.push_back(RaggedCacheType::get(ctx, kt, vt, unsigned(sinks), unsigned(recent)));
      budgets.push_back(t);
    }
    if (llvm::any_of(budgets, [&](int64_t t) { return t != budgets[0]; })) {
      func.emitError() << "kvc-compress-present: the present outputs differ in length, so one "
                          "budget gives different kept counts; use budget=N";
      return signalPassFailure();
    }
    // One kvc.compress for all layers. Queries are defined before the return (same block).
    auto compress = CompressOp::create(
        b, ret.getLoc(), raggedTypes, caches, queries, CompressMethodAttr::get(ctx, *m),
        FloatAttr(), b.getI64IntegerAttr(budgets[0]),
        BudgetModeAttr::get(ctx, BudgetMode::Uniform), b.getI64IntegerAttr(sinks),
        b.getI64IntegerAttr(recent));
    if (failed(mlir::verify(compress)))
      return signalPassFailure();

    SmallVector<Type> resultTypes(func.getResultTypes());
    for (auto [idx, pair] : llvm::enumerate(pairs)) {
      auto [ki, vi] = pair;
      Value r = compress.getResult(idx);
      auto kt = cast<RankedTensorType>(ret.getOperand(ki).getType());
      auto vt = cast<RankedTensorType>(ret.getOperand(vi).getType());
      auto view = CacheViewOp::create(b, ret.getLoc(), TypeRange{kt, vt}, r);
      const int64_t t = budgets[idx];
      for (auto [which, ty, full] : {std::tuple{ki, kt, view.getKeys()},
                                     std::tuple{vi, vt, view.getValues()}}) {
        SmallVector<int64_t> shape(ty.getShape());
        shape[2] = t;
        SmallVector<OpFoldResult> offsets(4, b.getIndexAttr(0));
        SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, ret.getLoc(), full);
        sizes[2] = b.getIndexAttr(t);
        SmallVector<OpFoldResult> strides(4, b.getIndexAttr(1));
        auto sliceTy = RankedTensorType::get(shape, ty.getElementType());
        Value kept = tensor::ExtractSliceOp::create(b, ret.getLoc(), sliceTy, full, offsets, sizes,
                                                    strides);
        ret.setOperand(which, kept);
        resultTypes[which] = sliceTy;
      }
    }
    func.setType(FunctionType::get(ctx, func.getArgumentTypes(), resultTypes));
  }
};

} // namespace
