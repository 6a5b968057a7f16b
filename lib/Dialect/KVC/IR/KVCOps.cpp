//===- KVCOps.cpp - kvc operations ------------------------------------------===//
#include "kvc/Dialect/KVC/IR/KVC.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/PatternMatch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::kvc;

static bool dimsConflict(int64_t a, int64_t b) {
  return !ShapedType::isDynamic(a) && !ShapedType::isDynamic(b) && a != b;
}

static std::string dimStr(int64_t d) {
  return ShapedType::isDynamic(d) ? std::string("?") : std::to_string(d);
}

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

double AttentionOp::getEffectiveScale() {
  if (auto s = getScaleAttr())
    return s.getValueAsDouble();
  int64_t d = getQuery().getType().getDimSize(3);
  return ShapedType::isDynamic(d) ? 0.0 : 1.0 / std::sqrt(double(d));
}

int64_t AttentionOp::getGroupSize() {
  int64_t hq = getQuery().getType().getDimSize(1), hkv = getKey().getType().getDimSize(1);
  if (ShapedType::isDynamic(hq) || ShapedType::isDynamic(hkv) || hkv == 0)
    return 0;
  return hq / hkv;
}

LogicalResult AttentionOp::verify() {
  auto qT = getQuery().getType(), kT = getKey().getType(), vT = getValue().getType();
  auto oT = getResult().getType();
  if (qT.getRank() != 4 || kT.getRank() != 4 || vT.getRank() != 4)
    return emitOpError() << "expects rank-4 query [B,Hq,Sq,D], key [B,Hkv,Skv,D] and value "
                            "[B,Hkv,Skv,Dv], got ranks "
                         << qT.getRank() << ", " << kT.getRank() << ", " << vT.getRank();
  if (kT.getElementType() != qT.getElementType() || vT.getElementType() != qT.getElementType())
    return emitOpError() << "query, key and value must have one element type, got "
                         << qT.getElementType() << ", " << kT.getElementType() << ", "
                         << vT.getElementType();
  if (oT.getElementType() != qT.getElementType())
    return emitOpError() << "result element type " << oT.getElementType()
                         << " differs from the query's " << qT.getElementType();
  if (dimsConflict(qT.getDimSize(0), kT.getDimSize(0)) ||
      dimsConflict(kT.getDimSize(0), vT.getDimSize(0)))
    return emitOpError() << "batch sizes differ: query " << dimStr(qT.getDimSize(0)) << ", key "
                         << dimStr(kT.getDimSize(0)) << ", value " << dimStr(vT.getDimSize(0));
  if (dimsConflict(kT.getDimSize(1), vT.getDimSize(1)))
    return emitOpError() << "key and value have different head counts ("
                         << dimStr(kT.getDimSize(1)) << " vs " << dimStr(vT.getDimSize(1)) << ")";
  int64_t hq = qT.getDimSize(1), hkv = kT.getDimSize(1);
  if (!ShapedType::isDynamic(hkv) && hkv == 0)
    return emitOpError() << "key has 0 heads";
  if (!ShapedType::isDynamic(hq) && !ShapedType::isDynamic(hkv) && hq % hkv != 0)
    return emitOpError() << "query heads (" << hq << ") must be a multiple of key/value heads ("
                         << hkv << ")";
  if (dimsConflict(qT.getDimSize(3), kT.getDimSize(3)))
    return emitOpError() << "query head dim " << dimStr(qT.getDimSize(3))
                         << " differs from key head dim " << dimStr(kT.getDimSize(3));
  if (dimsConflict(kT.getDimSize(2), vT.getDimSize(2)))
    return emitOpError() << "key and value sequence lengths differ (" << dimStr(kT.getDimSize(2))
                         << " vs " << dimStr(vT.getDimSize(2)) << ")";
  // Result: [B, Hq, Sq, Dv].
  if (oT.getRank() != 4)
    return emitOpError() << "result must be rank 4 [B,Hq,Sq,Dv], got rank " << oT.getRank();
  int64_t expected[4] = {qT.getDimSize(0), hq, qT.getDimSize(2), vT.getDimSize(3)};
  for (int i = 0; i < 4; ++i)
    if (dimsConflict(oT.getDimSize(i), expected[i]))
      return emitOpError() << "result dimension " << i << " is " << dimStr(oT.getDimSize(i))
                           << ", expected " << dimStr(expected[i]) << " ([B,Hq,Sq,Dv])";
  if (Value mask = getMask()) {
    auto mT = cast<RankedTensorType>(mask.getType());
    if (mT.getRank() > 4)
      return emitOpError() << "mask rank " << mT.getRank() << " exceeds 4";
    if (!mT.getElementType().isInteger(1) && !isa<FloatType>(mT.getElementType()))
      return emitOpError() << "mask must be i1 (true = attend) or float (additive), got "
                           << mT.getElementType();
    int64_t full[4] = {qT.getDimSize(0), hq, qT.getDimSize(2), kT.getDimSize(2)};
    static const char *names[4] = {"B", "Hq", "Sq", "Skv"};
    for (int64_t i = 0; i < mT.getRank(); ++i) {
      int64_t md = mT.getDimSize(mT.getRank() - 1 - i);
      int64_t fd = full[3 - i];
      if (!ShapedType::isDynamic(md) && md != 1 && dimsConflict(md, fd))
        return emitOpError() << "mask of type " << mT << " does not broadcast to [B,Hq,Sq,Skv] = ["
                             << dimStr(full[0]) << "," << dimStr(full[1]) << ","
                             << dimStr(full[2]) << "," << dimStr(full[3]) << "]: dimension "
                             << mT.getRank() - 1 - i << " is " << md << " but " << names[3 - i]
                             << " is " << fd;
    }
  }
  if (Value lengths = getKvLengths()) {
    auto lT = cast<RankedTensorType>(lengths.getType());
    if (lT.getRank() != 2 || dimsConflict(lT.getDimSize(0), kT.getDimSize(0)) ||
        dimsConflict(lT.getDimSize(1), kT.getDimSize(1)))
      return emitOpError() << "lengths must be [B, Hkv] = [" << dimStr(kT.getDimSize(0)) << ", "
                           << dimStr(kT.getDimSize(1)) << "], got " << lT;
  }
  if (auto s = getScaleAttr()) {
    double v = s.getValueAsDouble();
    if (!(v > 0.0) || !std::isfinite(v))
      return emitOpError() << "scale must be positive and finite, got " << v;
  }
  if (auto c = getSoftcapAttr()) {
    double v = c.getValueAsDouble();
    if (!(v > 0.0) || !std::isfinite(v))
      return emitOpError() << "softcap must be positive and finite, got " << v;
  }
  if (auto w = getWindowAttr())
    if (w.getInt() <= 0)
      return emitOpError() << "window must be positive, got " << w.getInt();
  return success();
}

//===----------------------------------------------------------------------===//
// Cache ops
//===----------------------------------------------------------------------===//

/// Checks that tensors `k`, `v` fit `cache` in every dimension except the sequence (dim 2).
static LogicalResult verifyTensorsMatchCache(Operation *op, RankedTensorType k,
                                             RankedTensorType v, KVCacheTypeInterface cache,
                                             bool checkSeq) {
  auto ck = cache.getKeyType(), cv = cache.getValueType();
  if (k.getRank() != 4 || v.getRank() != 4)
    return op->emitOpError() << "expects rank-4 key [B,Hkv,S,D] and value [B,Hkv,S,Dv] tensors";
  if (k.getElementType() != ck.getElementType() || v.getElementType() != cv.getElementType())
    return op->emitOpError() << "element types " << k.getElementType() << "/"
                             << v.getElementType() << " differ from the cache's "
                             << ck.getElementType();
  static const char *names[4] = {"batch", "head", "sequence", "head-dim"};
  for (int i = 0; i < 4; ++i) {
    if (i == 2 && !checkSeq)
      continue;
    if (dimsConflict(k.getDimSize(i), ck.getDimSize(i)))
      return op->emitOpError() << "key " << names[i] << " size " << dimStr(k.getDimSize(i))
                               << " differs from the cache's " << dimStr(ck.getDimSize(i));
    if (dimsConflict(v.getDimSize(i), cv.getDimSize(i)))
      return op->emitOpError() << "value " << names[i] << " size " << dimStr(v.getDimSize(i))
                               << " differs from the cache's " << dimStr(cv.getDimSize(i));
  }
  if (dimsConflict(k.getDimSize(2), v.getDimSize(2)))
    return op->emitOpError() << "keys and values have different token counts ("
                             << dimStr(k.getDimSize(2)) << " vs " << dimStr(v.getDimSize(2))
                             << ")";
  return success();
}

LogicalResult CacheFromTensorsOp::verify() {
  auto cache = cast<CacheType>(getCache().getType());
  if (failed(verifyTensorsMatchCache(*this, getKeys().getType(), getValues().getType(), cache,
                                     /*checkSeq=*/true)))
    return failure();
  // Exact types keep view(from_tensors(k, v)) -> (k, v) type-correct.
  if (getKeys().getType() != cache.getKeyType() || getValues().getType() != cache.getValueType())
    return emitOpError() << "key and value types must equal the cache's "
                         << cache.getKeyType() << " and " << cache.getValueType();
  return success();
}

LogicalResult CacheAppendOp::verify() {
  auto in = cast<KVCacheTypeInterface>(getCache().getType());
  auto out = cast<KVCacheTypeInterface>(getResult().getType());
  if (getCache().getType().getTypeID() != getResult().getType().getTypeID())
    return emitOpError() << "result cache kind differs from the input's (" << getCache().getType()
                         << " vs " << getResult().getType() << ")";
  if (auto inE = dyn_cast<EncodedCacheType>(getCache().getType())) {
    auto outE = cast<EncodedCacheType>(getResult().getType());
    if (inE.getCodec() != outE.getCodec() || inE.getRagged() != outE.getRagged())
      return emitOpError() << "result encoded cache must keep the input's codec and raggedness";
  }
  if (auto inR = dyn_cast<RaggedCacheType>(getCache().getType())) {
    auto outR = cast<RaggedCacheType>(getResult().getType());
    if (inR.getSinks() != outR.getSinks() || inR.getRecent() != outR.getRecent())
      return emitOpError() << "result ragged cache must keep sinks/recent of the input";
  }
  if (failed(verifyTensorsMatchCache(*this, getKeys().getType(), getValues().getType(), in,
                                     /*checkSeq=*/false)))
    return failure();
  for (int i : {0, 1, 3}) {
    if (dimsConflict(in.getKeyType().getDimSize(i), out.getKeyType().getDimSize(i)) ||
        dimsConflict(in.getValueType().getDimSize(i), out.getValueType().getDimSize(i)))
      return emitOpError() << "result cache type " << getResult().getType()
                           << " differs from the input cache type " << getCache().getType()
                           << " outside the sequence dimension";
  }
  if (in.getElementType() != out.getElementType())
    return emitOpError() << "result cache element type differs from the input's";
  int64_t s = in.getSeqLen(), n = getKeys().getType().getDimSize(2), r = out.getSeqLen();
  if (!ShapedType::isDynamic(s) && !ShapedType::isDynamic(n) && !ShapedType::isDynamic(r) &&
      r != s + n)
    return emitOpError() << "result cache length " << r << " must be " << s << " + " << n << " = "
                         << s + n;
  return success();
}

OpFoldResult CacheAppendOp::fold(FoldAdaptor) {
  // Appending zero tokens leaves the cache as it was.
  if (getKeys().getType().getDimSize(2) == 0 && getCache().getType() == getResult().getType())
    return getCache();
  return {};
}

LogicalResult CacheViewOp::verify() {
  auto cache = cast<KVCacheTypeInterface>(getCache().getType());
  if (getKeys().getType() != cache.getKeyType() || getValues().getType() != cache.getValueType())
    return emitOpError() << "result types must be the cache's key and value types "
                         << cache.getKeyType() << " and " << cache.getValueType();
  return success();
}

LogicalResult CacheViewOp::fold(FoldAdaptor, SmallVectorImpl<OpFoldResult> &results) {
  // view(from_tensors(k, v)) == (k, v)
  if (auto from = getCache().getDefiningOp<CacheFromTensorsOp>()) {
    results.push_back(from.getKeys());
    results.push_back(from.getValues());
    return success();
  }
  return failure();
}

LogicalResult CacheLengthsOp::verify() {
  auto encoded = dyn_cast<EncodedCacheType>(getCache().getType());
  if (!isa<RaggedCacheType>(getCache().getType()) && !(encoded && encoded.getRagged()))
    return emitOpError() << "needs a ragged cache (or an encoded cache with ragged = true), got "
                         << getCache().getType();
  auto cache = cast<KVCacheTypeInterface>(getCache().getType());
  auto lT = getLengths().getType();
  if (lT.getRank() != 2 || dimsConflict(lT.getDimSize(0), cache.getBatch()) ||
      dimsConflict(lT.getDimSize(1), cache.getNumKVHeads()))
    return emitOpError() << "lengths must be [B, Hkv] = [" << dimStr(cache.getBatch()) << ", "
                         << dimStr(cache.getNumKVHeads()) << "], got " << lT;
  return success();
}

LogicalResult VoteOp::verify() {
  auto cache = cast<CacheType>(getCache().getType());
  auto qT = getQueries().getType();
  int64_t b = cache.getBatch(), h = cache.getNumKVHeads(), s = cache.getSeqLen(),
          d = cache.getHeadDim();
  if (qT.getRank() != 4 || dimsConflict(qT.getDimSize(0), b) || dimsConflict(qT.getDimSize(3), d))
    return emitOpError() << "queries must be [B, Hq, M, D] with B = " << dimStr(b) << ", D = "
                         << dimStr(d) << ", got " << qT;
  int64_t hq = qT.getDimSize(1);
  if (!ShapedType::isDynamic(hq) && !ShapedType::isDynamic(h) && hq % h != 0)
    return emitOpError() << "query heads (" << hq << ") must be a multiple of KV heads (" << h
                         << ")";
  auto mT = getHiddenMean().getType(), vT = getHiddenVar().getType(), wT = getWQ().getType();
  if (mT.getRank() != 1 || vT != mT)
    return emitOpError() << "hidden_mean and hidden_var must be the same rank-1 [d_model] type";
  if (wT.getRank() != 3 || dimsConflict(wT.getDimSize(0), hq) || dimsConflict(wT.getDimSize(1), d) ||
      dimsConflict(wT.getDimSize(2), mT.getDimSize(0)))
    return emitOpError() << "w_q must be [Hq, D, d_model] = [" << dimStr(hq) << ", " << dimStr(d)
                         << ", " << dimStr(mT.getDimSize(0)) << "], got " << wT;
  auto kT = getKept().getType(), cT = getCounts().getType();
  if (kT.getRank() != 3 || dimsConflict(kT.getDimSize(0), b) || dimsConflict(kT.getDimSize(1), h) ||
      dimsConflict(kT.getDimSize(2), s))
    return emitOpError() << "kept must be [B, Hkv, S] = [" << dimStr(b) << ", " << dimStr(h)
                         << ", " << dimStr(s) << "], got " << kT;
  if (cT.getRank() != 2 || dimsConflict(cT.getDimSize(0), b) || dimsConflict(cT.getDimSize(1), h))
    return emitOpError() << "counts must be [B, Hkv], got " << cT;
  double p = getP().convertToDouble();
  if (!(p > 0.0 && p <= 1.0))
    return emitOpError() << "p (nucleus mass) must be in (0, 1], got " << p;
  if (getSamples() < 0 || getSinks() < 0 || getRecent() < 0 || getNFuture() < 1)
    return emitOpError() << "samples, sinks and recent must be >= 0 and n_future >= 1";
  return success();
}

LogicalResult CacheSelectOp::verify() {
  auto cache = cast<CacheType>(getCache().getType());
  auto out = cast<RaggedCacheType>(getResult().getType());
  if (out.getKeyType() != cache.getKeyType() || out.getValueType() != cache.getValueType())
    return emitOpError() << "result must have the cache's key/value types";
  auto kT = getKept().getType(), cT = getCounts().getType();
  if (kT.getRank() != 3 || dimsConflict(kT.getDimSize(0), cache.getBatch()) ||
      dimsConflict(kT.getDimSize(1), cache.getNumKVHeads()))
    return emitOpError() << "kept must be [B, Hkv, N], got " << kT;
  if (cT.getRank() != 2 || dimsConflict(cT.getDimSize(0), cache.getBatch()) ||
      dimsConflict(cT.getDimSize(1), cache.getNumKVHeads()))
    return emitOpError() << "counts must be [B, Hkv], got " << cT;
  return success();
}

LogicalResult EncodeOp::verify() {
  auto in = cast<KVCacheTypeInterface>(getCache().getType());
  auto out = dyn_cast<EncodedCacheType>(getResult().getType());
  if (!out)
    return emitOpError() << "result must be an !kvc.encoded_cache, got " << getResult().getType();
  if (out.getKeyType() != in.getKeyType() || out.getValueType() != in.getValueType())
    return emitOpError() << "result must have the input's key/value types (" << in.getKeyType()
                         << ", " << in.getValueType() << ")";
  bool ragged = isa<RaggedCacheType>(getCache().getType());
  if (out.getRagged() != ragged)
    return emitOpError() << "result must have ragged = " << (ragged ? "true" : "false")
                         << " for a " << (ragged ? "ragged" : "dense") << " input";
  return success();
}

LogicalResult CompressOp::verify() {
  size_t n = getCaches().size();
  if (n == 0)
    return emitOpError() << "needs at least one cache";
  if (getResults().size() != n)
    return emitOpError() << "has " << getResults().size() << " results for " << n << " caches";
  if (!getQueries().empty() && getQueries().size() != n)
    return emitOpError() << "needs one query tensor per cache (" << n << "), got "
                         << getQueries().size();
  if (getQueries().empty() && getMethod() != CompressMethod::Streaming)
    return emitOpError() << "method '" << stringifyCompressMethod(getMethod())
                         << "' needs queries (only 'streaming' works without them)";
  if (bool(getRatioAttr()) == bool(getBudgetAttr()))
    return emitOpError() << "needs exactly one of 'ratio' and 'budget'";
  if (auto r = getRatioAttr()) {
    double v = r.getValueAsDouble();
    if (!(v > 0.0 && v <= 1.0))
      return emitOpError() << "ratio (fraction of pairs kept) must be in (0, 1], got " << v;
  }
  if (auto b = getBudgetAttr(); b && b.getInt() <= 0)
    return emitOpError() << "budget must be positive, got " << b.getInt();
  if (getSinks() < 0 || getRecent() < 0)
    return emitOpError() << "sinks and recent must be non-negative";
  for (size_t i = 0; i < n; ++i) {
    auto in = cast<CacheType>(getCaches()[i].getType());
    auto out = cast<RaggedCacheType>(getResults()[i].getType());
    if (out.getKeyType() != in.getKeyType() || out.getValueType() != in.getValueType())
      return emitOpError() << "result #" << i << " must have the key/value types of cache #" << i
                           << " (" << in.getKeyType() << ", " << in.getValueType() << ")";
    if (int64_t(out.getSinks()) != getSinks() || int64_t(out.getRecent()) != getRecent())
      return emitOpError() << "result #" << i << " must have sinks = " << getSinks()
                           << " and recent = " << getRecent();
    if (getQueries().empty())
      continue;
    auto qT = cast<RankedTensorType>(getQueries()[i].getType());
    if (qT.getRank() != 4 || dimsConflict(qT.getDimSize(0), in.getBatch()) ||
        dimsConflict(qT.getDimSize(3), in.getHeadDim()))
      return emitOpError() << "queries #" << i << " must be [B, Hq, M, D] with B = "
                           << dimStr(in.getBatch()) << " and D = " << dimStr(in.getHeadDim())
                           << ", got " << qT;
    int64_t hq = qT.getDimSize(1), hkv = in.getNumKVHeads();
    if (!ShapedType::isDynamic(hq) && !ShapedType::isDynamic(hkv) && hq % hkv != 0)
      return emitOpError() << "queries #" << i << " have " << hq
                           << " heads, not a multiple of the cache's " << hkv << " KV heads";
    if (qT.getElementType() != in.getElementType())
      return emitOpError() << "queries #" << i << " element type " << qT.getElementType()
                           << " differs from the cache's " << in.getElementType();
  }
  return success();
}

#define GET_OP_CLASSES
#include "kvc/Dialect/KVC/IR/KVCOps.cpp.inc"
