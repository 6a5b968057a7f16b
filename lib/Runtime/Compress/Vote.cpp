//===- Vote.cpp - voting budgets: GVote, AdaKV, PyramidKV, Expected Attention ===//
//
// C entry points of kvc/Runtime/Vote.h. Reuses the compression library's internals
// (Internal.h: GEMM wrappers, attention, the ridge value solve, Error/fail/checkFinite).
// See docs/voting-budgets.md for the algorithm and every choice made.
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/Vote.h"

#include "Internal.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <limits>
#include <new>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using namespace kvc::compress;

namespace {

thread_local std::string voteLastError;

template <typename Body>
int guarded(const char* function, Body&& body) {
  try {
    body();
    voteLastError.clear();
    return KVC_COMPRESS_OK;
  } catch (const Error& e) {
    voteLastError = std::string(function) + ": " + e.message;
    return e.code;
  } catch (const std::bad_alloc&) {
    voteLastError = std::string(function) + ": out of memory";
  } catch (const std::exception& e) {
    voteLastError = std::string(function) + ": " + e.what();
  } catch (...) {
    voteLastError = std::string(function) + ": unknown exception";
  }
  return KVC_COMPRESS_ERR_INTERNAL;
}

const kvc_vote_options& optionsOrDefault(const kvc_vote_options* opts, kvc_vote_options& storage) {
  if (opts) return *opts;
  kvc_vote_default_options(&storage);
  return storage;
}

float resolveScale(float scale, Index d) {
  return scale > 0 ? scale : float(1.0 / std::sqrt(double(d)));
}

void invalid(const std::string& message) { fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, message); }

void validateOptions(const kvc_vote_options& o) {
  if (!(o.p > 0.0 && o.p <= 1.0)) invalid("p must be in (0, 1], got " + std::to_string(o.p));
  if (o.n_samples < 0) invalid("n_samples must be >= 0");
  if (o.step_reduce != KVC_VOTE_STEP_MAX && o.step_reduce != KVC_VOTE_STEP_MEAN)
    invalid("unknown step_reduce " + std::to_string(o.step_reduce));
  if (!std::isfinite(o.scale)) invalid("scale must be finite");
  if (o.n_sink < 0 || o.n_recent < 0) invalid("n_sink and n_recent must be >= 0");
  if (o.n_future < 1) invalid("n_future must be >= 1");
  if (o.q_norm < KVC_VOTE_QNORM_NONE || o.q_norm > KVC_VOTE_QNORM_GEMMA)
    invalid("unknown q_norm " + std::to_string(o.q_norm));
  if (!(o.q_norm_eps >= 0) || !std::isfinite(o.q_norm_eps))
    invalid("q_norm_eps must be finite and >= 0");
  if (o.apply_rope) {
    if (!(o.rope_theta > 0) || !std::isfinite(o.rope_theta) || !(o.position_scale > 0) ||
        !std::isfinite(o.position_scale))
      invalid("rope_theta and position_scale must be finite and > 0");
  }
}

//===-- RoPE (NeoX half-split, as HF Llama/Gemma/Qwen rotate_half) --------===//
struct Rope {
  Index rotaryDim = 0, half = 0;
  std::vector<double> invFreq;

  Rope(Index headDim, const kvc_vote_options& o) {
    rotaryDim = o.rotary_dim <= 0 ? headDim : Index(o.rotary_dim);
    if (rotaryDim > headDim || rotaryDim % 2 != 0)
      invalid("rotary_dim must be even and <= head_dim");
    half = rotaryDim / 2;
    invFreq.resize(half);
    for (Index i = 0; i < half; ++i)
      invFreq[i] = o.position_scale * std::pow(o.rope_theta, -2.0 * double(i) / double(rotaryDim));
  }
  void angles(double position, std::vector<double>& c, std::vector<double>& s) const {
    c.resize(half);
    s.resize(half);
    for (Index i = 0; i < half; ++i) {
      c[i] = std::cos(position * invFreq[i]);
      s[i] = std::sin(position * invFreq[i]);
    }
  }
  /// x_i' = c x_i - s x_{i+h}, x_{i+h}' = s x_i + c x_{i+h} (pairs i < rotaryDim/2).
  template <typename T>
  void apply(T* x, const std::vector<double>& c, const std::vector<double>& s) const {
    for (Index i = 0; i < half; ++i) {
      const double x1 = x[i], x2 = x[i + half];
      x[i] = T(x1 * c[i] - x2 * s[i]);
      x[i + half] = T(x2 * c[i] + x1 * s[i]);
    }
  }
};

//===-- Selection helpers --------------------------------------------------===//
/// Order: larger value first, ties to the lower index.
struct ByValueDesc {
  const float* v;
  bool operator()(Index a, Index b) const { return v[a] > v[b] || (v[a] == v[b] && a < b); }
};

/// (logit, index) pairs: sorting these contiguous pairs is ~2x faster than sorting indices
/// with an indirect comparator.
struct Scored {
  float value;
  int32_t index;
};
inline bool operator<(const Scored& a, const Scored& b) {  // better first
  return a.value > b.value || (a.value == b.value && a.index < b.index);
}

/// Marks the `count` best entries of a logit row (ties to the lower index).
void topkRow(const float* logits, Index T, Index count, std::vector<Scored>& scratch,
             std::vector<char>& mark) {
  count = std::min(count, T);
  if (count <= 0) return;
  if (count == T) {
    std::fill(mark.begin(), mark.begin() + T, char(1));
    return;
  }
  scratch.resize(T);
  for (Index j = 0; j < T; ++j) scratch[j] = Scored{logits[j], int32_t(j)};
  std::nth_element(scratch.begin(), scratch.begin() + (count - 1), scratch.end());
  for (Index k = 0; k < count; ++k) mark[scratch[k].index] = 1;
}

/// Nucleus of one logit row: marks the smallest prefix (by logit desc, ties lower index)
/// whose softmax mass (weights exp(l - max) in double) reaches p * total; returns its size.
/// The prefix is sorted incrementally (partial sorts of 32, 128, 512, ... keys), so a small
/// nucleus costs O(T) instead of a full sort. When rounding keeps the running sum just below
/// the target (p = 1), the set is every key of non-zero weight.
Index nucleusRow(const float* logits, Index T, double p, std::vector<Scored>& order,
                 std::vector<double>& weights, std::vector<char>& mark) {
  order.resize(T);
  float maxLogit = logits[0];
  for (Index j = 0; j < T; ++j) {
    order[j] = Scored{logits[j], int32_t(j)};
    maxLogit = std::max(maxLogit, logits[j]);
  }
  weights.resize(T);
  double total = 0;
  for (Index j = 0; j < T; ++j) total += weights[j] = std::exp(double(logits[j]) - maxLogit);
  const double target = p * total;
  double cum = 0;
  Index done = 0, size = -1;
  for (Index upto = std::min<Index>(T, 32); size < 0; upto = std::min<Index>(T, 4 * upto)) {
    std::partial_sort(order.begin() + done, order.begin() + upto, order.end());
    for (Index k = done; k < upto; ++k) {
      cum += weights[order[k].index];
      if (cum >= target) {
        size = k + 1;
        break;
      }
    }
    done = upto;
    if (size < 0 && done == T) {  // rounding: all keys of non-zero weight
      size = 0;
      while (size < T && weights[order[size].index] > 0) ++size;
    }
  }
  for (Index k = 0; k < size; ++k) mark[order[k].index] = 1;
  return size;
}

//===-- Gaussian query model ----------------------------------------------===//
void validateQueryModel(const kvc_vote_head& h) {
  const Index g = h.n_query_heads, d = h.head_dim, D = h.d_model;
  if (D < 1) invalid("d_model must be >= 1");
  if (!h.hidden_mean || !h.hidden_var || !h.w_q)
    invalid("null hidden_mean, hidden_var or w_q (needed when n_samples > 0)");
  checkFinite(h.hidden_mean, D, "hidden_mean");
  checkFinite(h.hidden_var, D, "hidden_var");
  for (Index i = 0; i < D; ++i)
    if (h.hidden_var[i] < 0) invalid("hidden_var must be >= 0");
  checkFinite(h.w_q, g * d * D, "w_q");
  if (h.b_q) checkFinite(h.b_q, g * d, "b_q");
  if (h.q_norm_weight) checkFinite(h.q_norm_weight, d, "q_norm_weight");
}

/// Draws S hidden states, projects, norms and rotates them: out[g][S][d], positions[S].
/// PRNG stream (the documented order): for each sample s, d_model normals (h_s), then its
/// position. A run with S samples is therefore a prefix of a run with S' > S samples.
void sampleQueries(const kvc_vote_head& h, const kvc_vote_options& o, Index S, float* out,
                   int64_t* positions) {
  const Index g = h.n_query_heads, d = h.head_dim, D = h.d_model;
  const int64_t L = h.position >= 0 ? h.position : h.seq_len - 1;
  std::mt19937_64 engine(o.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_int_distribution<int64_t> future(L + 1, L + o.n_future);
  MatF H(S, D);
  std::vector<float> stddev(D);
  for (Index i = 0; i < D; ++i) stddev[i] = std::sqrt(h.hidden_var[i]);
  std::vector<int64_t> pos(S);
  for (Index s = 0; s < S; ++s) {
    for (Index i = 0; i < D; ++i) H(s, i) = float(h.hidden_mean[i] + stddev[i] * normal(engine));
    pos[s] = future(engine);
  }
  // Q[S][g*d] = H W_q^T (+ b): one GEMM for the group.
  MatF Q(S, g * d);
  gemm(false, true, S, g * d, D, 1.f, H.data(), D, h.w_q, D, 0.f, Q.data(), g * d);
  const Rope rope(d, o);
  std::vector<double> c, sn;
  for (Index s = 0; s < S; ++s) {
    if (o.apply_rope) rope.angles(double(pos[s]), c, sn);
    for (Index j = 0; j < g; ++j) {
      float* q = out + (j * S + s) * d;
      const float* src = Q.data() + s * g * d + j * d;
      for (Index i = 0; i < d; ++i) q[i] = src[i] + (h.b_q ? h.b_q[j * d + i] : 0.f);
      if (o.q_norm != KVC_VOTE_QNORM_NONE) {
        double ms = 0;
        for (Index i = 0; i < d; ++i) ms += double(q[i]) * q[i];
        const double inv = 1.0 / std::sqrt(ms / double(d) + o.q_norm_eps);
        for (Index i = 0; i < d; ++i) {
          const double w = h.q_norm_weight ? h.q_norm_weight[i] : 0.0;
          const double gain = o.q_norm == KVC_VOTE_QNORM_GEMMA ? 1.0 + w
                                                               : (h.q_norm_weight ? w : 1.0);
          q[i] = float(q[i] * inv * gain);
        }
      }
      if (o.apply_rope) rope.apply(q, c, sn);
    }
  }
  if (positions) std::copy(pos.begin(), pos.end(), positions);
  if (S > 0 && !Eigen::Map<const VecF>(out, g * S * d).allFinite())
    fail(KVC_COMPRESS_ERR_NUMERIC, "synthetic queries are not finite (overflow?)");
}

void validateHeadShape(const kvc_vote_head* h) {
  if (!h) invalid("null head");
  if (h->seq_len < 0 || h->head_dim < 1 || h->n_query_heads < 1 || h->n_current < 0)
    invalid("need seq_len >= 0, head_dim >= 1, n_query_heads >= 1, n_current >= 0");
  if (h->seq_len > std::numeric_limits<int32_t>::max()) invalid("seq_len must be < 2^31");
}

}  // namespace

extern "C" {

const char* kvc_vote_last_error(void) { return voteLastError.c_str(); }

void kvc_vote_default_options(kvc_vote_options* o) {
  if (!o) return;
  *o = kvc_vote_options{};
  o->p = 0.95;
  o->n_samples = 8;
  o->step_reduce = KVC_VOTE_STEP_MAX;
  o->seed = 0;
  o->scale = 0.f;
  o->n_sink = 4;
  o->n_recent = 64;
  o->n_future = 512;
  o->q_norm = KVC_VOTE_QNORM_NONE;
  o->q_norm_eps = 1e-6;
  o->apply_rope = 1;
  o->rotary_dim = 0;
  o->rope_theta = 10000.0;
  o->position_scale = 1.0;
}

int kvc_vote_sample_queries(const kvc_vote_head* head, const kvc_vote_options* opts, float* out,
                            int64_t* positions_out) {
  kvc_vote_options defaults;
  return guarded("kvc_vote_sample_queries", [&] {
    const kvc_vote_options& o = optionsOrDefault(opts, defaults);
    validateOptions(o);
    validateHeadShape(head);
    if (o.n_samples == 0) return;
    if (!out) invalid("null output");
    validateQueryModel(*head);
    sampleQueries(*head, o, o.n_samples, out, positions_out);
  });
}

int kvc_vote_gvote_head(const kvc_vote_head* head, const kvc_vote_options* opts,
                        int64_t* kept_out, int64_t* n_kept_out, kvc_vote_stats* stats) {
  kvc_vote_options defaults;
  kvc_vote_stats local;
  kvc_vote_stats& st = stats ? *stats : local;
  const auto start = std::chrono::steady_clock::now();
  return guarded("kvc_vote_gvote_head", [&] {
    st = kvc_vote_stats{};
    auto finish = [&] {
      st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    const kvc_vote_options& o = optionsOrDefault(opts, defaults);
    validateOptions(o);
    validateHeadShape(head);
    const kvc_vote_head& h = *head;
    const Index T = h.seq_len, d = h.head_dim, g = h.n_query_heads, m0 = h.n_current;
    const Index S = o.n_samples;
    if (!n_kept_out) invalid("null n_kept_out");
    if (T > 0 && (!h.keys || !kept_out)) invalid("null keys or kept_out");
    if (T > 0 && m0 < 1)
      fail(KVC_COMPRESS_ERR_NO_QUERIES, "n_current must be >= 1 (the current queries)");
    if (m0 > 0 && !h.current_queries) invalid("null current_queries");
    checkFinite(h.keys, T * d, "keys");
    checkFinite(h.current_queries, g * m0 * d, "current queries");
    if (S > 0) validateQueryModel(h);
    *n_kept_out = 0;
    if (T == 0) {
      finish();
      return;
    }
    const Index nSink = std::min<Index>(o.n_sink, T), nRecent = std::min<Index>(o.n_recent, T);
    if (nSink + nRecent >= T) {  // nothing to decide: keep every key
      std::iota(kept_out, kept_out + T, int64_t(0));
      *n_kept_out = st.n_kept = T;
      st.keep_all = 1;
      st.current_mass = 1.0;
      finish();
      return;
    }
    const float scale = resolveScale(o.scale, d);

    // 1. Step budget: nucleus sets of the current queries (all g * m0 rows).
    const Index rows0 = g * m0;
    MatF logits0(rows0, T);
    gemm(false, true, rows0, T, d, scale, h.current_queries, d, h.keys, d, 0.f, logits0.data(), T);
    std::vector<char> nucleus(T, 0), votes(T, 0);
    std::vector<Scored> order;
    std::vector<double> weights;
    Index maxSize = 0;
    double sumSize = 0;
    for (Index r = 0; r < rows0; ++r) {
      const Index size = nucleusRow(logits0.row(r).data(), T, o.p, order, weights, nucleus);
      maxSize = std::max(maxSize, size);
      sumSize += double(size);
    }
    const Index stepBudget = o.step_reduce == KVC_VOTE_STEP_MAX
                                 ? maxSize
                                 : Index(std::ceil(sumSize / double(rows0) - 1e-9));
    st.step_budget = stepBudget;

    // 2-3. Synthetic queries vote for their top-B_step keys.
    if (S > 0) {
      MatF synth(g * S, d);
      sampleQueries(h, o, S, synth.data(), nullptr);
      MatF logits(g * S, T);
      gemm(false, true, g * S, T, d, scale, synth.data(), d, h.keys, d, 0.f, logits.data(), T);
      for (Index r = 0; r < g * S; ++r)
        topkRow(logits.row(r).data(), T, stepBudget, order, votes);
      st.n_synthetic = g * S;
    }

    // 4. Kept = C0 ∪ votes ∪ sinks ∪ recent.
    std::vector<char> kept(T, 0);
    Index nNucleus = 0, nVotes = 0;
    for (Index j = 0; j < T; ++j) {
      nNucleus += nucleus[j];
      nVotes += votes[j];
      kept[j] = nucleus[j] | votes[j] | char(j < nSink) | char(j >= T - nRecent);
    }
    Index n = 0;
    for (Index j = 0; j < T; ++j)
      if (kept[j]) kept_out[n++] = j;
    *n_kept_out = st.n_kept = n;
    st.nucleus_size = nNucleus;
    st.vote_size = nVotes;

    // Diagnostics: the smallest attention mass a current query puts on the kept set.
    double minMass = 1.0;
    for (Index r = 0; r < rows0; ++r) {
      const float* row = logits0.row(r).data();
      const double mx = *std::max_element(row, row + T);
      double all = 0, on = 0;
      for (Index j = 0; j < T; ++j) {
        const double w = std::exp(double(row[j]) - mx);
        all += w;
        if (kept[j]) on += w;
      }
      minMass = std::min(minMass, on / all);
    }
    st.current_mass = minMass;
    finish();
  });
}

int kvc_vote_gvote_heads(kvc_vote_job* jobs, int64_t n_jobs, const kvc_vote_options* opts,
                         int32_t num_threads) {
  if (n_jobs < 0 || (n_jobs > 0 && !jobs)) {
    voteLastError = "kvc_vote_gvote_heads: bad job list";
    return KVC_COMPRESS_ERR_INVALID_ARGUMENT;
  }
  const Index n = n_jobs;
  std::vector<std::string> messages(n);
  std::vector<Index> order(n);
  std::iota(order.begin(), order.end(), Index(0));
  auto cost = [&](Index i) {
    return double(jobs[i].head.seq_len) * double(std::max<int64_t>(jobs[i].head.n_query_heads, 1));
  };
  std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return cost(a) > cost(b); });
  const int threads =
      std::max(1, std::min<int>(resolveThreadCount(num_threads), int(std::max<Index>(n, 1))));
  ScopedSingleThreadedBlas blasGuard(threads > 1);
  parallelFor(n, threads, order, [&](Index i) {
    jobs[i].status = kvc_vote_gvote_head(&jobs[i].head, opts, jobs[i].kept_out, &jobs[i].n_kept,
                                         &jobs[i].stats);
    if (jobs[i].status != 0) messages[i] = voteLastError;
  });
  for (Index i = 0; i < n; ++i)
    if (jobs[i].status != 0) {
      voteLastError = "job " + std::to_string(i) + ": " + messages[i];
      return jobs[i].status;
    }
  voteLastError.clear();
  return KVC_COMPRESS_OK;
}

int kvc_vote_nucleus(const float* queries, int64_t n_queries, const float* keys, int64_t seq_len,
                     int64_t head_dim, float scale, double p, int64_t* kept_out,
                     int64_t* n_kept_out, int64_t* sizes_out) {
  return guarded("kvc_vote_nucleus", [&] {
    if (n_queries < 0 || seq_len < 0 || head_dim < 1) invalid("bad shape");
    if (seq_len > std::numeric_limits<int32_t>::max()) invalid("seq_len must be < 2^31");
    if (!(p > 0.0 && p <= 1.0)) invalid("p must be in (0, 1], got " + std::to_string(p));
    if (!std::isfinite(scale)) invalid("scale must be finite");
    if (!n_kept_out || (n_queries > 0 && !queries) || (seq_len > 0 && (!keys || !kept_out)))
      invalid("null pointer");
    checkFinite(queries, n_queries * head_dim, "queries");
    checkFinite(keys, seq_len * head_dim, "keys");
    *n_kept_out = 0;
    const Index T = seq_len, m = n_queries;
    if (T == 0) {
      if (sizes_out) std::fill(sizes_out, sizes_out + m, int64_t(0));
      return;
    }
    MatF logits(m, T);
    gemm(false, true, m, T, head_dim, resolveScale(scale, head_dim), queries, head_dim, keys,
         head_dim, 0.f, logits.data(), T);
    std::vector<char> mark(T, 0);
    std::vector<Scored> order;
    std::vector<double> weights;
    for (Index r = 0; r < m; ++r) {
      const Index size = nucleusRow(logits.row(r).data(), T, p, order, weights, mark);
      if (sizes_out) sizes_out[r] = size;
    }
    Index n = 0;
    for (Index j = 0; j < T; ++j)
      if (mark[j]) kept_out[n++] = j;
    *n_kept_out = n;
  });
}

int kvc_vote_select_topk(const float* scores, int64_t seq_len, int64_t budget, int64_t n_sink,
                         int64_t n_recent, int64_t* kept_out) {
  return guarded("kvc_vote_select_topk", [&] {
    if (seq_len < 0 || budget < 0 || n_sink < 0 || n_recent < 0) invalid("negative argument");
    const Index T = seq_len;
    if (T > 0 && budget > 0 && (!scores || !kept_out)) invalid("null pointer");
    checkFinite(scores, T, "scores");
    const Index nSink = std::min<Index>(n_sink, T), nRecent = std::min<Index>(n_recent, T);
    const Index forced = std::min(nSink + nRecent, T);
    const Index nOut = std::min<Index>(budget, T);
    if (nOut < forced)
      fail(KVC_COMPRESS_ERR_BUDGET, "budget " + std::to_string(budget) +
                                        " is smaller than n_sink + n_recent = " +
                                        std::to_string(forced));
    if (nOut == T) {
      std::iota(kept_out, kept_out + T, int64_t(0));
      return;
    }
    std::vector<char> mark(T, 0);
    for (Index j = 0; j < nSink; ++j) mark[j] = 1;
    for (Index j = T - nRecent; j < T; ++j) mark[j] = 1;
    const Index middle = nOut - forced;
    std::vector<Index> cand;
    for (Index j = nSink; j < T - nRecent; ++j) cand.push_back(j);
    if (middle > 0) {
      std::nth_element(cand.begin(), cand.begin() + (middle - 1), cand.end(), ByValueDesc{scores});
      for (Index k = 0; k < middle; ++k) mark[cand[k]] = 1;
    }
    Index n = 0;
    for (Index j = 0; j < T; ++j)
      if (mark[j]) kept_out[n++] = j;
  });
}

int kvc_vote_adakv(const float* scores, int64_t n_heads, int64_t seq_len, int64_t layer_budget,
                   int64_t min_per_head, int64_t n_sink, int64_t n_recent, int64_t* budgets_out,
                   int64_t* kept_out) {
  return guarded("kvc_vote_adakv", [&] {
    if (n_heads < 1 || seq_len < 0) invalid("need n_heads >= 1 and seq_len >= 0");
    if (layer_budget < 0 || min_per_head < 0 || n_sink < 0 || n_recent < 0)
      invalid("negative budget, min_per_head, n_sink or n_recent");
    const Index H = n_heads, T = seq_len;
    if (!budgets_out || (T > 0 && !scores) || (layer_budget > 0 && !kept_out))
      invalid("null pointer");
    checkFinite(scores, H * T, "scores");
    const Index nSink = std::min<Index>(n_sink, T), nRecent = std::min<Index>(n_recent, T);
    const Index forced = std::min(nSink + nRecent, T);
    const Index minHead = std::min<Index>(T, std::max<Index>(min_per_head, forced));
    if (layer_budget < H * minHead || layer_budget > H * T)
      fail(KVC_COMPRESS_ERR_BUDGET,
           "layer budget " + std::to_string(layer_budget) + " is outside [n_heads * minimum, " +
               "n_heads * seq_len] = [" + std::to_string(H * minHead) + ", " +
               std::to_string(H * T) + "]");
    std::vector<char> mark(H * T, 0);
    std::vector<Index> cand;
    for (Index h = 0; h < H; ++h) {
      char* mh = mark.data() + h * T;
      for (Index j = 0; j < nSink; ++j) mh[j] = 1;
      for (Index j = T - nRecent; j < T; ++j) mh[j] = 1;
      const Index extra = minHead - forced;  // the head's own best keys up to its minimum
      if (extra > 0) {
        cand.clear();
        for (Index j = nSink; j < T - nRecent; ++j) cand.push_back(j);
        const float* sh = scores + h * T;
        std::nth_element(cand.begin(), cand.begin() + (extra - 1), cand.end(), ByValueDesc{sh});
        for (Index k = 0; k < extra; ++k) mh[cand[k]] = 1;
      }
    }
    // The rest: global top over all unselected (head, key) pairs (ties: lower head, key).
    const Index rest = layer_budget - H * minHead;
    if (rest > 0) {
      cand.clear();
      for (Index f = 0; f < H * T; ++f)
        if (!mark[f]) cand.push_back(f);
      std::nth_element(cand.begin(), cand.begin() + (rest - 1), cand.end(), ByValueDesc{scores});
      for (Index k = 0; k < rest; ++k) mark[cand[k]] = 1;
    }
    Index n = 0;
    for (Index h = 0; h < H; ++h) {
      Index count = 0;
      for (Index j = 0; j < T; ++j)
        if (mark[h * T + j]) {
          kept_out[n++] = j;
          ++count;
        }
      budgets_out[h] = count;
    }
    if (n != layer_budget) fail(KVC_COMPRESS_ERR_INTERNAL, "AdaKV allocation mismatch");
  });
}

int kvc_vote_pyramid_budgets(int64_t n_layers, int64_t total, int64_t window, double beta,
                             int64_t* budgets_out) {
  return guarded("kvc_vote_pyramid_budgets", [&] {
    if (n_layers < 1 || window < 0 || total < 0) invalid("need n_layers >= 1, window, total >= 0");
    if (!(beta >= 1.0) || !std::isfinite(beta)) invalid("beta must be finite and >= 1");
    if (!budgets_out) invalid("null budgets_out");
    const Index L = n_layers;
    if (total < L * window)
      fail(KVC_COMPRESS_ERR_BUDGET, "total " + std::to_string(total) +
                                        " is smaller than n_layers * window = " +
                                        std::to_string(L * window));
    const int64_t A = total - L * window;
    const double a = double(A) / double(L);
    const double mn = a / beta, mx = 2 * a - mn;
    std::vector<double> target(L);
    for (Index l = 0; l < L; ++l)
      target[l] = L == 1 ? a : mx - (mx - mn) * double(l) / double(L - 1);
    std::vector<int64_t> b(L);
    int64_t assigned = 0;
    for (Index l = 0; l < L; ++l) {
      b[l] = std::max<int64_t>(0, int64_t(std::floor(target[l] + 1e-9)));
      assigned += b[l];
    }
    // Largest remainder; ties to the lower layer keep the sequence non-increasing.
    std::vector<Index> order(L);
    std::iota(order.begin(), order.end(), Index(0));
    std::stable_sort(order.begin(), order.end(), [&](Index x, Index y) {
      return target[x] - double(b[x]) > target[y] - double(b[y]) + 1e-12;
    });
    for (Index k = 0; assigned < A; k = (k + 1) % L) {
      ++b[order[k]];
      ++assigned;
    }
    for (Index k = L; assigned > A && k-- > 0;) {  // floors with +1e-9 could overshoot
      const Index l = order[k];
      if (b[l] > 0) {
        --b[l];
        --assigned;
      }
    }
    for (Index l = 0; l < L; ++l) budgets_out[l] = b[l] + window;
  });
}

int kvc_vote_expected_attention(const float* keys, const float* values, int64_t seq_len,
                                int64_t head_dim, int64_t value_dim, const float* mean_q,
                                const float* cov_q, int64_t n_query_heads, int64_t position,
                                double epsilon, const kvc_vote_options* opts, float* scores_out) {
  kvc_vote_options defaults;
  return guarded("kvc_vote_expected_attention", [&] {
    const kvc_vote_options& o = optionsOrDefault(opts, defaults);
    if (!std::isfinite(o.scale)) invalid("scale must be finite");
    if (o.n_sink < 0) invalid("n_sink must be >= 0");
    if (o.n_future < 1) invalid("n_future must be >= 1");
    if (o.apply_rope && (!(o.rope_theta > 0) || !std::isfinite(o.rope_theta) ||
                         !(o.position_scale > 0) || !std::isfinite(o.position_scale)))
      invalid("rope_theta and position_scale must be finite and > 0");
    if (seq_len < 0 || head_dim < 1 || n_query_heads < 1 || (values && value_dim < 1))
      invalid("bad shape");
    if (!(epsilon >= 0) || !std::isfinite(epsilon)) invalid("epsilon must be finite and >= 0");
    const Index T = seq_len, d = head_dim, g = n_query_heads;
    if (!mean_q || (T > 0 && (!keys || !scores_out))) invalid("null pointer");
    checkFinite(keys, T * d, "keys");
    if (values) checkFinite(values, T * value_dim, "values");
    checkFinite(mean_q, g * d, "mean_q");
    if (cov_q) checkFinite(cov_q, g * d * d, "cov_q");
    if (T == 0) return;
    const Index nSink = std::min<Index>(o.n_sink, T);
    if (nSink == T) {
      std::fill(scores_out, scores_out + T, 1.f);
      return;
    }
    const double s = resolveScale(o.scale, d);
    // Average rotation over the future positions: a 2x2 block [[c, -s], [s, c]] per rotary
    // pair (i, i + rotary_dim/2) with c, s the mean cos / sin; identity elsewhere (and
    // without RoPE). Applied in O(d) per vector, O(d^2) per covariance.
    Index hf = 0;
    std::vector<double> cbar, sbar;
    if (o.apply_rope) {
      const Rope rope(d, o);
      hf = rope.half;
      const int64_t L = position >= 0 ? position : T - 1;
      cbar.assign(hf, 0.0);
      sbar.assign(hf, 0.0);
      std::vector<double> c, sn;
      for (int64_t k = 1; k <= o.n_future; ++k) {
        rope.angles(double(L + k), c, sn);
        for (Index i = 0; i < hf; ++i) {
          cbar[i] += c[i] / double(o.n_future);
          sbar[i] += sn[i] / double(o.n_future);
        }
      }
    }
    // x <- R x along a strided dimension (stride 1: a vector / row; stride d: a column).
    auto rotate = [&](double* x, Index stride) {
      for (Index i = 0; i < hf; ++i) {
        const double a = x[i * stride], b = x[(i + hf) * stride];
        x[i * stride] = cbar[i] * a - sbar[i] * b;
        x[(i + hf) * stride] = sbar[i] * a + cbar[i] * b;
      }
    };
    const Index nk = T - nSink;
    const float* K = keys + nSink * d;
    VecD avg = VecD::Zero(nk);
    MatF KS(cov_q ? nk : 0, d);
    MatF SigmaF(cov_q ? d : 0, d);
    for (Index j = 0; j < g; ++j) {
      VecD mu = Eigen::Map<const VecF>(mean_q + j * d, d).cast<double>();
      rotate(mu.data(), 1);
      const VecF muF = mu.cast<float>();
      VecF dot(nk);
      gemm(false, false, nk, 1, d, 1.f, K, d, muF.data(), 1, 0.f, dot.data(), 1);
      VecD logit = s * dot.cast<double>();
      if (cov_q) {
        MatD Sigma = ConstMapF(cov_q + j * d * d, d, d).cast<double>();
        for (Index col = 0; col < d; ++col) rotate(Sigma.data() + col, d);  // R Sigma
        for (Index row = 0; row < d; ++row) rotate(Sigma.data() + row * d, 1);  // (.) R^T
        SigmaF = Sigma.cast<float>();
        gemm(false, false, nk, d, d, 1.f, K, d, SigmaF.data(), d, 0.f, KS.data(), d);
        for (Index t = 0; t < nk; ++t) {
          double q = 0;
          for (Index i = 0; i < d; ++i) q += double(KS(t, i)) * double(K[t * d + i]);
          logit[t] += 0.5 * s * s * q;
        }
      }
      const double mx = logit.maxCoeff();
      VecD w = (logit.array() - mx).exp().matrix();
      avg += w / w.sum();
    }
    avg /= double(g);
    if (values) {
      for (Index j = 0; j < nk; ++j)
        avg[j] = (avg[j] + epsilon) *
                 Eigen::Map<const VecF>(values + (nSink + j) * value_dim, value_dim)
                     .cast<double>()
                     .norm();
    }
    const double top = avg.maxCoeff();
    for (Index j = 0; j < nSink; ++j) scores_out[j] = float(top);
    for (Index j = 0; j < nk; ++j) scores_out[nSink + j] = float(avg[j]);
    if (!Eigen::Map<const VecF>(scores_out, T).allFinite())
      fail(KVC_COMPRESS_ERR_NUMERIC, "expected-attention scores are not finite");
  });
}

int kvc_vote_fit_kept(const float* keys, const float* values, int64_t seq_len, int64_t head_dim,
                      int64_t value_dim, const float* queries, int64_t n_queries,
                      const int64_t* kept, int64_t n_kept, float scale, double ridge_lambda,
                      int64_t n_sink, int64_t n_recent, float* out_keys, float* out_values) {
  return guarded("kvc_vote_fit_kept", [&] {
    if (seq_len < 0 || head_dim < 1 || value_dim < 1 || n_queries < 0 || n_kept < 0 ||
        n_kept > seq_len || n_sink < 0 || n_recent < 0)
      invalid("bad shape");
    const Index T = seq_len, d = head_dim, dv = value_dim, m = n_queries;
    if ((T > 0 && (!keys || !values)) || (m > 0 && !queries) ||
        (n_kept > 0 && (!kept || !out_keys || !out_values)))
      invalid("null pointer");
    if (!std::isfinite(scale)) invalid("scale must be finite");
    if (!(ridge_lambda >= 0) || !std::isfinite(ridge_lambda))
      invalid("ridge_lambda must be finite and >= 0");
    for (Index k = 0; k < n_kept; ++k)
      if (kept[k] < 0 || kept[k] >= T || (k > 0 && kept[k] <= kept[k - 1]))
        invalid("kept indices must be ascending, distinct and in [0, seq_len)");
    checkFinite(keys, T * d, "keys");
    checkFinite(values, T * dv, "values");
    checkFinite(queries, m * d, "queries");
    const ConstMapF K(keys, T, d), V(values, T, dv);
    Eigen::Map<MatF> outK(out_keys, n_kept, d), outV(out_values, n_kept, dv);
    for (Index k = 0; k < n_kept; ++k) {
      outK.row(k) = K.row(kept[k]);
      outV.row(k) = V.row(kept[k]);
    }
    if (m == 0 || n_kept == 0) return;
    const Index nSink = std::min<Index>(n_sink, T), recentBegin = T - std::min<Index>(n_recent, T);
    std::vector<Index> comp, ret;
    for (Index k = 0; k < n_kept; ++k)
      (kept[k] < nSink || kept[k] >= recentBegin ? ret : comp).push_back(k);
    if (comp.empty()) return;
    const float s = resolveScale(scale, d);
    const ConstMapF Q(queries, m, d);
    MatF targets;
    attention(Q, K, V, s, targets, nullptr, nullptr);
    MatF retK(Index(ret.size()), d), retV(Index(ret.size()), dv);
    for (size_t i = 0; i < ret.size(); ++i) {
      retK.row(Index(i)) = outK.row(ret[i]);
      retV.row(Index(i)) = outV.row(ret[i]);
    }
    MatF compK(Index(comp.size()), d), compV = MatF::Zero(Index(comp.size()), dv);
    for (size_t i = 0; i < comp.size(); ++i) compK.row(Index(i)) = outK.row(comp[i]);
    const VecF z = VecF::Zero(m);
    SculptObjective objective(Q, retK, retV, targets, z, s, 0.0);
    objective.evaluate(compK.data(), compV.data(), compK.rows(), nullptr);
    if (!objective.solveValues(compK.rows(), ridge_lambda, compV))
      fail(KVC_COMPRESS_ERR_NUMERIC, "the ridge system could not be solved");
    if (!compV.allFinite()) fail(KVC_COMPRESS_ERR_NUMERIC, "fitted values are not finite");
    for (size_t i = 0; i < comp.size(); ++i) outV.row(comp[i]) = compV.row(Index(i));
  });
}

}  // extern "C"
