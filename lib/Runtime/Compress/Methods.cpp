//===- Methods.cpp - per-head compression: selection methods and KVSculpt ===//
#include "Internal.h"
#include "Sculpt.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

namespace kvc::compress {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool needsQueries(int method) { return method != KVC_COMPRESS_STREAMING; }

/// The `count` highest-scoring indices of [begin, end) (ties: lower index first), ascending.
std::vector<Index> topIndices(const VecD& scores, Index begin, Index end, Index count) {
  std::vector<Index> candidates(end - begin);
  std::iota(candidates.begin(), candidates.end(), begin);
  auto better = [&](Index a, Index b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  };
  std::nth_element(candidates.begin(), candidates.begin() + count, candidates.end(), better);
  candidates.resize(count);
  std::sort(candidates.begin(), candidates.end());
  return candidates;
}

/// SnapKV: mean attention of the observation window (last `window` rows of each query-head
/// block) over all keys, then 1-D pooling along the sequence (same padding; avg divides by
/// the kernel size like torch's avg_pool1d with count_include_pad).
VecD snapkvScores(const MatF& P, Index numHeads, const kvc_compress_options& opts) {
  const Index m = P.rows(), T = P.cols(), perHead = m / numHeads;
  const Index window = std::min<Index>(std::max<Index>(opts.snapkv_window, 1), perHead);
  VecD mean = VecD::Zero(T);
  for (Index h = 0; h < numHeads; ++h)
    for (Index i = perHead - window; i < perHead; ++i)
      mean += P.row(h * perHead + i).transpose().cast<double>();
  mean /= double(window * numHeads);
  const Index half = std::max<Index>(opts.snapkv_kernel, 1) / 2;
  VecD pooled(T);
  for (Index j = 0; j < T; ++j) {
    const Index lo = std::max<Index>(0, j - half), hi = std::min<Index>(T - 1, j + half);
    if (opts.snapkv_pool == KVC_COMPRESS_POOL_MAX)
      pooled[j] = mean.segment(lo, hi - lo + 1).maxCoeff();
    else
      pooled[j] = mean.segment(lo, hi - lo + 1).sum() / double(2 * half + 1);
  }
  return pooled;
}

VecD attentionScores(const MatF& P, int kind) {
  const Index T = P.cols(), m = P.rows();
  VecD scores = VecD::Zero(T);
  for (Index i = 0; i < m; ++i) {
    const auto row = P.row(i).transpose().cast<double>();
    if (kind == KVC_COMPRESS_SCORE_SUM)
      scores += row;
    else
      scores += row.cwiseAbs2();
  }
  if (kind != KVC_COMPRESS_SCORE_SUM) scores = (scores / double(std::max<Index>(m, 1))).cwiseSqrt();
  return scores;
}

MatF gatherRows(const ConstMapF& M, const std::vector<Index>& rows) {
  MatF out(Index(rows.size()), M.cols());
  for (size_t i = 0; i < rows.size(); ++i) out.row(Index(i)) = M.row(rows[i]);
  return out;
}

void validateOptions(const kvc_compress_options& o) {
  if (o.method < KVC_COMPRESS_STREAMING || o.method > KVC_COMPRESS_SCULPT)
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "unknown method " + std::to_string(o.method));
  if (o.n_sink < 0 || o.n_recent < 0)
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "n_sink and n_recent must be >= 0");
  if (o.n_query_heads < 1)
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "n_query_heads must be >= 1");
  if (o.snapkv_window < 1 || o.snapkv_kernel < 1)
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "snapkv_window and snapkv_kernel must be >= 1");
  if (!(o.ridge_lambda >= 0) || !std::isfinite(o.ridge_lambda))
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "ridge_lambda must be finite and >= 0");
  if (!(o.lse_weight >= 0) || !std::isfinite(o.lse_weight))
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "lse_weight must be finite and >= 0");
  if (o.sculpt_rounds < 0 || o.sculpt_key_iters < 1 || o.lbfgs_memory < 1)
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT,
         "sculpt_rounds must be >= 0, sculpt_key_iters and lbfgs_memory >= 1");
  if (!std::isfinite(o.scale)) fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "scale must be finite");
}

void setLossStats(kvc_compress_stats& stats, const LossParts& initial, const LossParts& final,
                  double targetSq) {
  auto rel = [&](const LossParts& p) { return targetSq > 0 ? p.outputSq / targetSq : 0.0; };
  stats.initial_loss = initial.loss;
  stats.final_loss = final.loss;
  stats.initial_rel_mse = rel(initial);
  stats.final_rel_mse = rel(final);
}

/// KVSculpt's alternating key/value optimisation on the options' schedule (value solves
/// anchored to `valueAnchor` when non-null): adds its counters to `stats`, returns the final
/// loss.
LossParts runSculpt(SculptObjective& objective, MatF& compKeys, MatF& compValues,
                    const kvc_compress_options& opts, const MatF* valueAnchor,
                    kvc_compress_stats& stats) {
  SculptSettings settings;
  settings.rounds = opts.sculpt_rounds;
  settings.keyIterations = opts.sculpt_key_iters;
  settings.lbfgsMemory = opts.lbfgs_memory;
  settings.ridgeLambda = opts.ridge_lambda;
  settings.nanAfterEvals = opts.debug_nan_after_evals;
  settings.valueAnchor = valueAnchor;
  SculptTrace trace;
  optimizeSculpt(objective, compKeys, compValues, settings, trace);
  stats.rounds = trace.rounds;
  stats.iterations = trace.iterations;
  stats.evaluations += trace.evaluations;
  stats.value_solves += trace.valueSolves;
  stats.fell_back = trace.sawNonFinite ? 1 : 0;
  return trace.final;
}

}  // namespace

void compressHead(const HeadInput& in, const kvc_compress_options& opts, const HeadOutput& out,
                  kvc_compress_stats& stats) {
  const auto start = std::chrono::steady_clock::now();
  stats = kvc_compress_stats{};
  stats.initial_loss = stats.final_loss = kNaN;
  stats.initial_rel_mse = stats.final_rel_mse = kNaN;
  auto finish = [&] {
    stats.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };

  validateOptions(opts);
  const Index T = in.seqLen, d = in.headDim, dv = in.valueDim, m = in.numQueries;
  if (T < 0 || m < 0 || in.budget < 0)
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "seq_len, n_queries and budget must be >= 0");
  if (d < 1 || dv < 1)
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "head_dim and value_dim must be >= 1");
  if ((T > 0 && (!in.keys || !in.values)) || (m > 0 && !in.queries))
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "null keys, values or queries");
  const Index nOut = std::min(in.budget, T);
  if (nOut > 0 && (!out.keys || !out.values))
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "null output buffers");
  checkFinite(in.keys, T * d, "keys");
  checkFinite(in.values, T * dv, "values");
  checkFinite(in.queries, m * d, "queries");

  if (T == 0) {  // empty head: nothing to keep
    stats.exact_copy = 1;
    finish();
    return;
  }
  if (m == 0 && needsQueries(opts.method))
    fail(KVC_COMPRESS_ERR_NO_QUERIES, "this method needs queries (n_queries == 0)");
  if (m > 0 && m % opts.n_query_heads != 0)
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT,
         "n_queries (" + std::to_string(m) + ") is not a multiple of n_query_heads (" +
             std::to_string(opts.n_query_heads) + ")");

  const ConstMapF K(in.keys, T, d), V(in.values, T, dv);
  if (in.budget >= T) {  // documented fallback: nothing to compress
    Eigen::Map<MatF>(out.keys, T, d) = K;
    Eigen::Map<MatF>(out.values, T, dv) = V;
    if (out.indices) std::iota(out.indices, out.indices + T, int64_t(0));
    stats.n_out = T;
    stats.exact_copy = 1;
    if (m > 0) stats.initial_loss = stats.final_loss = stats.initial_rel_mse = stats.final_rel_mse = 0;
    finish();
    return;
  }

  const Index nSink = std::min<Index>(opts.n_sink, T), nRecent = std::min<Index>(opts.n_recent, T);
  if (nSink + nRecent > in.budget)
    fail(KVC_COMPRESS_ERR_BUDGET, "budget " + std::to_string(in.budget) +
                                      " is smaller than n_sink + n_recent = " +
                                      std::to_string(nSink) + " + " + std::to_string(nRecent));
  // budget < T and sinks + recent <= budget, so the two retained ranges are disjoint.
  const Index middleBegin = nSink, middleEnd = T - nRecent;
  const Index nMiddle = in.budget - nSink - nRecent;
  const float scale = opts.scale > 0 ? opts.scale : float(1.0 / std::sqrt(double(d)));

  // Full-cache targets and weights: Y = softmax(s Q K^T) V, z = LSE, P = weights.
  const ConstMapF Q(in.queries, m, d);
  MatF targets, weights;
  VecF lseTargets;
  if (m > 0) attention(Q, K, V, scale, targets, &lseTargets, &weights);

  std::vector<Index> middle;
  switch (opts.method) {
  case KVC_COMPRESS_STREAMING:
    middle.resize(nMiddle);
    std::iota(middle.begin(), middle.end(), middleEnd - nMiddle);
    break;
  case KVC_COMPRESS_SNAPKV:
    middle = topIndices(snapkvScores(weights, opts.n_query_heads, opts), middleBegin, middleEnd,
                        nMiddle);
    break;
  case KVC_COMPRESS_H2O:
    middle = topIndices(attentionScores(weights, KVC_COMPRESS_SCORE_SUM), middleBegin, middleEnd,
                        nMiddle);
    break;
  default:  // Select+Fit and KVSculpt's start
    middle = topIndices(attentionScores(weights, opts.select_score), middleBegin, middleEnd,
                        nMiddle);
    break;
  }
  weights.resize(0, 0);

  std::vector<Index> retained(nSink + nRecent);
  std::iota(retained.begin(), retained.begin() + nSink, Index(0));
  std::iota(retained.begin() + nSink, retained.end(), middleEnd);
  const MatF retKeys = gatherRows(K, retained), retValues = gatherRows(V, retained);
  MatF compKeys = gatherRows(K, middle), compValues = gatherRows(V, middle);

  if (m > 0) {
    SculptObjective objective(Q, retKeys, retValues, targets, lseTargets, scale, opts.lse_weight);
    LossParts initial = objective.evaluate(compKeys.data(), compValues.data(), nMiddle, nullptr);
    LossParts final = initial;
    if (opts.method == KVC_COMPRESS_SELECT_FIT || opts.method == KVC_COMPRESS_SCULPT) {
      // Select+Fit: refit the kept keys' values; a failed solve keeps the original values.
      if (objective.solveValues(nMiddle, opts.ridge_lambda, compValues)) ++stats.value_solves;
      final = initial = objective.evaluate(compKeys.data(), compValues.data(), nMiddle, nullptr);
      stats.evaluations = 2;
    }
    if (opts.method == KVC_COMPRESS_SCULPT)
      final = runSculpt(objective, compKeys, compValues, opts, nullptr, stats);
    setLossStats(stats, initial, final, objective.targetSq());
  }

  if (!compKeys.allFinite() || !compValues.allFinite())
    fail(KVC_COMPRESS_ERR_NUMERIC, "compressed cache is not finite (overflow in the inputs?)");

  // Output layout: [sinks; middle; recent].
  Eigen::Map<MatF> outK(out.keys, in.budget, d), outV(out.values, in.budget, dv);
  outK.topRows(nSink) = retKeys.topRows(nSink);
  outV.topRows(nSink) = retValues.topRows(nSink);
  outK.middleRows(nSink, nMiddle) = compKeys;
  outV.middleRows(nSink, nMiddle) = compValues;
  outK.bottomRows(nRecent) = retKeys.bottomRows(nRecent);
  outV.bottomRows(nRecent) = retValues.bottomRows(nRecent);
  if (out.indices) {
    for (Index i = 0; i < nSink; ++i) out.indices[i] = i;
    for (Index i = 0; i < nMiddle; ++i)
      out.indices[nSink + i] = opts.method == KVC_COMPRESS_SCULPT ? -1 : middle[i];
    for (Index i = 0; i < nRecent; ++i) out.indices[nSink + nMiddle + i] = middleEnd + i;
  }
  stats.n_out = in.budget;
  finish();
}

}  // namespace kvc::compress

namespace kvc::compress {

void compressHeadFromKept(const HeadInput& in, const int64_t* kept, Index nKept,
                          bool anchorValues, const kvc_compress_options& opts,
                          const HeadOutput& out, kvc_compress_stats& stats) {
  const auto start = std::chrono::steady_clock::now();
  stats = kvc_compress_stats{};
  stats.initial_loss = stats.final_loss = kNaN;
  stats.initial_rel_mse = stats.final_rel_mse = kNaN;
  auto finish = [&] {
    stats.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };

  validateOptions(opts);
  if (opts.method != KVC_COMPRESS_SELECT_FIT && opts.method != KVC_COMPRESS_SCULPT)
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT,
         "a given kept set supports method SELECT_FIT or SCULPT only");
  const Index T = in.seqLen, d = in.headDim, dv = in.valueDim, m = in.numQueries;
  if (T < 0 || m < 0 || nKept < 0 || nKept > T)
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT,
         "seq_len and n_queries must be >= 0 and 0 <= n_kept <= seq_len");
  if (d < 1 || dv < 1)
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "head_dim and value_dim must be >= 1");
  if ((T > 0 && (!in.keys || !in.values)) || (m > 0 && !in.queries) || (nKept > 0 && !kept))
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "null keys, values, queries or kept");
  if (nKept > 0 && (!out.keys || !out.values))
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "null output buffers");
  for (Index k = 0; k < nKept; ++k)
    if (kept[k] < 0 || kept[k] >= T || (k > 0 && kept[k] <= kept[k - 1]))
      fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT,
           "kept indices must be ascending, distinct and in [0, seq_len)");
  checkFinite(in.keys, T * d, "keys");
  checkFinite(in.values, T * dv, "values");
  checkFinite(in.queries, m * d, "queries");

  const ConstMapF K(in.keys, T, d), V(in.values, T, dv);
  Eigen::Map<MatF> outK(out.keys, nKept, d), outV(out.values, nKept, dv);
  for (Index k = 0; k < nKept; ++k) {
    outK.row(k) = K.row(kept[k]);
    outV.row(k) = V.row(kept[k]);
    if (out.indices) out.indices[k] = kept[k];
  }
  stats.n_out = nKept;
  // Everything kept (as kvc_compress_head with budget >= T) or nothing to fit against.
  if (nKept == T) {
    stats.exact_copy = 1;
    if (m > 0) stats.initial_loss = stats.final_loss = stats.initial_rel_mse = stats.final_rel_mse = 0;
    finish();
    return;
  }
  const Index nSink = std::min<Index>(opts.n_sink, T);
  const Index recentBegin = T - std::min<Index>(opts.n_recent, T);
  // Retained rows: sinks, then recent (ascending), as kvc_compress_head orders them.
  std::vector<Index> comp, ret;
  for (Index k = 0; k < nKept; ++k)
    (kept[k] < nSink || kept[k] >= recentBegin ? ret : comp).push_back(k);
  const Index nComp = Index(comp.size());
  if (m == 0 || nComp == 0) {
    finish();
    return;
  }
  const float scale = opts.scale > 0 ? opts.scale : float(1.0 / std::sqrt(double(d)));
  const ConstMapF Q(in.queries, m, d);
  MatF targets;
  VecF lseTargets;
  attention(Q, K, V, scale, targets, &lseTargets, nullptr);
  MatF retKeys(Index(ret.size()), d), retValues(Index(ret.size()), dv);
  for (size_t i = 0; i < ret.size(); ++i) {
    retKeys.row(Index(i)) = outK.row(ret[i]);
    retValues.row(Index(i)) = outV.row(ret[i]);
  }
  MatF compKeys(nComp, d), compValues(nComp, dv);
  for (Index i = 0; i < nComp; ++i) {
    compKeys.row(i) = outK.row(comp[size_t(i)]);
    compValues.row(i) = outV.row(comp[size_t(i)]);
  }

  SculptObjective objective(Q, retKeys, retValues, targets, lseTargets, scale, opts.lse_weight);
  LossParts initial = objective.evaluate(compKeys.data(), compValues.data(), nComp, nullptr);
  // Select+Fit into the kept set; a failed solve keeps the original values.
  const MatF anchor = anchorValues ? compValues : MatF();
  const MatF* anchorPtr = anchorValues ? &anchor : nullptr;
  if (objective.solveValues(nComp, opts.ridge_lambda, compValues, anchorPtr)) ++stats.value_solves;
  initial = objective.evaluate(compKeys.data(), compValues.data(), nComp, nullptr);
  LossParts final = initial;
  stats.evaluations = 2;
  if (opts.method == KVC_COMPRESS_SCULPT)
    final = runSculpt(objective, compKeys, compValues, opts, anchorPtr, stats);
  setLossStats(stats, initial, final, objective.targetSq());
  if (!compKeys.allFinite() || !compValues.allFinite())
    fail(KVC_COMPRESS_ERR_NUMERIC, "compressed cache is not finite (overflow in the inputs?)");
  for (Index i = 0; i < nComp; ++i) {
    const Index row = comp[size_t(i)];
    outK.row(row) = compKeys.row(i);
    outV.row(row) = compValues.row(i);
    if (out.indices && opts.method == KVC_COMPRESS_SCULPT) out.indices[row] = -1;
  }
  finish();
}

}  // namespace kvc::compress
