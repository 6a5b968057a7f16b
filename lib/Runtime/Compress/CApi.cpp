//===- CApi.cpp - C entry points, error reporting and the head thread pool ===//
#include "Budget.h"
#include "Internal.h"
#include "Sculpt.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <new>
#include <numeric>
#include <string>
#include <thread>

using namespace kvc::compress;

namespace {

thread_local std::string lastError;

/// Runs body, mapping Error / std::exception to a status code and the thread-local message.
template <typename Body>
int guarded(const char* function, Body&& body) {
  try {
    body();
    lastError.clear();
    return KVC_COMPRESS_OK;
  } catch (const Error& e) {
    lastError = std::string(function) + ": " + e.message;
    return e.code;
  } catch (const std::bad_alloc&) {
    lastError = std::string(function) + ": out of memory";
  } catch (const std::exception& e) {
    lastError = std::string(function) + ": " + e.what();
  } catch (...) {
    lastError = std::string(function) + ": unknown exception";
  }
  return KVC_COMPRESS_ERR_INTERNAL;
}

const kvc_compress_options& optionsOrDefault(const kvc_compress_options* opts,
                                             kvc_compress_options& storage) {
  if (opts) return *opts;
  kvc_compress_default_options(&storage);
  return storage;
}

HeadInput jobInput(const kvc_compress_job& job, Index budget) {
  return HeadInput{job.keys,     job.values,   job.queries, job.seq_len,
                   job.head_dim, job.value_dim, job.n_queries, budget};
}

/// Compresses jobs (with budgets[i]) on a pool; per-job status and message. Returns the
/// first failure's status and sets lastError from it on the calling thread.
int runJobs(kvc_compress_job* jobs, Index n, const std::vector<int64_t>& budgets,
            const std::vector<HeadOutput>& outputs, const kvc_compress_options& opts,
            int numThreads) {
  std::vector<std::string> messages(n);
  std::vector<Index> order(n);
  std::iota(order.begin(), order.end(), Index(0));
  // Largest heads first balances the pool (cost ~ T * m * d per objective evaluation).
  auto cost = [&](Index i) { return double(jobs[i].seq_len) * double(jobs[i].n_queries + 1); };
  std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return cost(a) > cost(b); });
  const int threads = std::max(1, std::min<int>(numThreads, int(std::max<Index>(n, 1))));
  ScopedSingleThreadedBlas blasGuard(threads > 1);
  parallelFor(n, threads, order, [&](Index i) {
    jobs[i].status = guarded("kvc_compress_heads", [&] {
      compressHead(jobInput(jobs[i], budgets[i]), opts, outputs[i], jobs[i].stats);
    });
    if (jobs[i].status != 0) messages[i] = lastError;
  });
  for (Index i = 0; i < n; ++i)
    if (jobs[i].status != 0) {
      lastError = "job " + std::to_string(i) + ": " + messages[i];
      return jobs[i].status;
    }
  lastError.clear();
  return KVC_COMPRESS_OK;
}

}  // namespace

namespace kvc::compress {

int resolveThreadCount(int requested) {
  if (requested > 0) return requested;
  if (const char* env = std::getenv("KVC_NUM_THREADS")) {
    const int fromEnv = std::atoi(env);
    if (fromEnv > 0) return fromEnv;
  }
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

void parallelFor(Index n, int numThreads, const std::vector<Index>& order,
                 const std::function<void(Index)>& fn) {
  if (numThreads <= 1 || n <= 1) {
    for (Index k = 0; k < n; ++k) fn(order[k]);
    return;
  }
  std::atomic<Index> next{0};
  auto worker = [&] {
    for (Index k = next++; k < n; k = next++) fn(order[k]);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < numThreads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
}

}  // namespace kvc::compress

extern "C" {

const char* kvc_compress_last_error(void) { return lastError.c_str(); }

const char* kvc_compress_backend(void) {
  static const std::string description = backendDescription();
  return description.c_str();
}

void kvc_compress_default_options(kvc_compress_options* o) {
  if (!o) return;
  *o = kvc_compress_options{};
  o->method = KVC_COMPRESS_SCULPT;
  o->scale = 0.f;
  o->n_sink = 4;
  o->n_recent = 64;
  o->n_query_heads = 1;
  o->snapkv_window = 64;
  o->snapkv_kernel = 5;
  o->snapkv_pool = KVC_COMPRESS_POOL_AVG;
  o->select_score = KVC_COMPRESS_SCORE_RMS;
  o->ridge_lambda = 1e-3;
  o->lse_weight = 1.0;
  o->sculpt_rounds = 5;
  o->sculpt_key_iters = 10;
  o->lbfgs_memory = 6;
  o->pilot_rounds = 1;
  o->pilot_key_iters = 10;
  o->debug_nan_after_evals = -1;
}

int kvc_compress_head(const float* keys, const float* values, int64_t seq_len, int64_t head_dim,
                      int64_t value_dim, const float* queries, int64_t n_queries, int64_t budget,
                      const kvc_compress_options* opts, float* out_keys, float* out_values,
                      int64_t* out_indices, kvc_compress_stats* stats) {
  kvc_compress_stats localStats;
  kvc_compress_options defaults;
  return guarded("kvc_compress_head", [&] {
    compressHead(HeadInput{keys, values, queries, seq_len, head_dim, value_dim, n_queries, budget},
                 optionsOrDefault(opts, defaults), HeadOutput{out_keys, out_values, out_indices},
                 stats ? *stats : localStats);
  });
}

int kvc_compress_head_from_kept(const float* keys, const float* values, int64_t seq_len,
                                int64_t head_dim, int64_t value_dim, const float* queries,
                                int64_t n_queries, const int64_t* kept, int64_t n_kept,
                                int32_t anchor_values, const kvc_compress_options* opts,
                                float* out_keys,
                                float* out_values, int64_t* out_indices,
                                kvc_compress_stats* stats) {
  kvc_compress_stats localStats;
  kvc_compress_options defaults;
  return guarded("kvc_compress_head_from_kept", [&] {
    compressHeadFromKept(
        HeadInput{keys, values, queries, seq_len, head_dim, value_dim, n_queries, n_kept}, kept,
        n_kept, anchor_values != 0, optionsOrDefault(opts, defaults), HeadOutput{out_keys, out_values, out_indices},
        stats ? *stats : localStats);
  });
}

int kvc_compress_heads(kvc_compress_job* jobs, int64_t n_jobs, const kvc_compress_options* opts,
                       int32_t num_threads) {
  if (n_jobs < 0 || (n_jobs > 0 && !jobs)) {
    lastError = "kvc_compress_heads: bad job list";
    return KVC_COMPRESS_ERR_INVALID_ARGUMENT;
  }
  kvc_compress_options defaults;
  const kvc_compress_options& options = optionsOrDefault(opts, defaults);
  std::vector<int64_t> budgets(n_jobs);
  std::vector<HeadOutput> outputs(n_jobs);
  for (int64_t i = 0; i < n_jobs; ++i) {
    budgets[i] = jobs[i].budget;
    outputs[i] = HeadOutput{jobs[i].out_keys, jobs[i].out_values, jobs[i].out_indices};
  }
  return runJobs(jobs, n_jobs, budgets, outputs, options, resolveThreadCount(num_threads));
}

int kvc_compress_attention(const float* queries, int64_t n_queries, const float* keys,
                           const float* values, int64_t seq_len, const float* keys_extra,
                           const float* values_extra, int64_t n_extra, int64_t head_dim,
                           int64_t value_dim, float scale, float* out, float* lse) {
  return guarded("kvc_compress_attention", [&] {
    if (n_queries < 0 || seq_len < 0 || n_extra < 0 || head_dim < 1 || value_dim < 1)
      fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "bad shape");
    if ((n_queries > 0 && (!queries || !out)) || (seq_len > 0 && (!keys || !values)) ||
        (n_extra > 0 && (!keys_extra || !values_extra)))
      fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "null pointer");
    if (!std::isfinite(scale)) fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "scale must be finite");
    checkFinite(queries, n_queries * head_dim, "queries");
    checkFinite(keys, seq_len * head_dim, "keys");
    checkFinite(values, seq_len * value_dim, "values");
    checkFinite(keys_extra, n_extra * head_dim, "extra keys");
    checkFinite(values_extra, n_extra * value_dim, "extra values");
    const float s = scale > 0 ? scale : float(1.0 / std::sqrt(double(head_dim)));
    const Index T = seq_len + n_extra;
    MatF allKeys(T, head_dim), allValues(T, value_dim);
    if (seq_len > 0) {
      allKeys.topRows(seq_len) = ConstMapF(keys, seq_len, head_dim);
      allValues.topRows(seq_len) = ConstMapF(values, seq_len, value_dim);
    }
    if (n_extra > 0) {
      allKeys.bottomRows(n_extra) = ConstMapF(keys_extra, n_extra, head_dim);
      allValues.bottomRows(n_extra) = ConstMapF(values_extra, n_extra, value_dim);
    }
    MatF result;
    VecF lseResult;
    attention(ConstMapF(queries, n_queries, head_dim), ConstMapF(allKeys.data(), T, head_dim),
              ConstMapF(allValues.data(), T, value_dim), s, result, &lseResult, nullptr);
    if (n_queries > 0) Eigen::Map<MatF>(out, n_queries, value_dim) = result;
    if (lse && n_queries > 0) Eigen::Map<VecF>(lse, n_queries) = lseResult;
  });
}

int kvc_compress_fit_values(const float* queries, int64_t n_queries, const float* comp_keys,
                            int64_t n_comp, const float* ret_keys, const float* ret_values,
                            int64_t n_ret, const float* targets, int64_t head_dim,
                            int64_t value_dim, float scale, double ridge_lambda,
                            float* comp_values_out) {
  return guarded("kvc_compress_fit_values", [&] {
    if (n_queries < 1) fail(KVC_COMPRESS_ERR_NO_QUERIES, "n_queries must be >= 1");
    if (n_comp < 0 || n_ret < 0 || head_dim < 1 || value_dim < 1)
      fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "bad shape");
    if (!queries || !targets || (n_comp > 0 && (!comp_keys || !comp_values_out)) ||
        (n_ret > 0 && (!ret_keys || !ret_values)))
      fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "null pointer");
    if (!(ridge_lambda >= 0) || !std::isfinite(ridge_lambda))
      fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "ridge_lambda must be finite and >= 0");
    checkFinite(queries, n_queries * head_dim, "queries");
    checkFinite(comp_keys, n_comp * head_dim, "compressed keys");
    checkFinite(ret_keys, n_ret * head_dim, "retained keys");
    checkFinite(ret_values, n_ret * value_dim, "retained values");
    checkFinite(targets, n_queries * value_dim, "targets");
    const float s = scale > 0 ? scale : float(1.0 / std::sqrt(double(head_dim)));
    const MatF retK = ConstMapF(ret_keys, n_ret, head_dim);
    const MatF retV = ConstMapF(ret_values, n_ret, value_dim);
    const MatF Y = ConstMapF(targets, n_queries, value_dim);
    const VecF z = VecF::Zero(n_queries);
    SculptObjective objective(ConstMapF(queries, n_queries, head_dim), retK, retV, Y, z, s, 0.0);
    MatF values = MatF::Zero(n_comp, value_dim);
    objective.evaluate(comp_keys, values.data(), n_comp, nullptr);  // attention weights
    if (!objective.solveValues(n_comp, ridge_lambda, values))
      fail(KVC_COMPRESS_ERR_NUMERIC, "the ridge system could not be solved");
    if (n_comp > 0) Eigen::Map<MatF>(comp_values_out, n_comp, value_dim) = values;
  });
}

int kvc_compress_sculpt_loss(const float* queries, int64_t n_queries, const float* comp_keys,
                             const float* comp_values, int64_t n_comp, const float* ret_keys,
                             const float* ret_values, int64_t n_ret, const float* targets,
                             const float* lse_targets, int64_t head_dim, int64_t value_dim,
                             float scale, double lse_weight, double* loss_out,
                             float* grad_comp_keys) {
  return guarded("kvc_compress_sculpt_loss", [&] {
    if (n_queries < 1) fail(KVC_COMPRESS_ERR_NO_QUERIES, "n_queries must be >= 1");
    if (n_comp < 0 || n_ret < 0 || head_dim < 1 || value_dim < 1)
      fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "bad shape");
    if (!queries || !targets || !loss_out || (n_comp > 0 && (!comp_keys || !comp_values)) ||
        (n_ret > 0 && (!ret_keys || !ret_values)) || (lse_weight != 0 && !lse_targets))
      fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "null pointer");
    if (!(lse_weight >= 0) || !std::isfinite(lse_weight))
      fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "lse_weight must be finite and >= 0");
    checkFinite(queries, n_queries * head_dim, "queries");
    checkFinite(comp_keys, n_comp * head_dim, "compressed keys");
    checkFinite(comp_values, n_comp * value_dim, "compressed values");
    checkFinite(ret_keys, n_ret * head_dim, "retained keys");
    checkFinite(ret_values, n_ret * value_dim, "retained values");
    checkFinite(targets, n_queries * value_dim, "targets");
    if (lse_weight != 0) checkFinite(lse_targets, n_queries, "LSE targets");
    const float s = scale > 0 ? scale : float(1.0 / std::sqrt(double(head_dim)));
    const MatF retK = ConstMapF(ret_keys, n_ret, head_dim);
    const MatF retV = ConstMapF(ret_values, n_ret, value_dim);
    const MatF Y = ConstMapF(targets, n_queries, value_dim);
    const VecF z = lse_weight != 0 ? VecF(Eigen::Map<const VecF>(lse_targets, n_queries))
                                   : VecF(VecF::Zero(n_queries));
    SculptObjective objective(ConstMapF(queries, n_queries, head_dim), retK, retV, Y, z, s,
                              lse_weight);
    *loss_out = objective.evaluate(comp_keys, comp_values, n_comp, grad_comp_keys).loss;
  });
}

int kvc_compress_synthetic_queries(const float* queries, const int64_t* positions,
                                   int64_t n_queries, int64_t n_query_heads, int64_t head_dim,
                                   int64_t rotary_dim, double theta, double position_scale,
                                   int64_t ref_position, int64_t n_out, float* out_queries,
                                   int64_t* out_positions) {
  return guarded("kvc_compress_synthetic_queries", [&] {
    if (head_dim < 2) fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "head_dim must be >= 2");
    syntheticQueries(queries, positions, n_queries, n_query_heads, head_dim, rotary_dim, theta,
                     position_scale, ref_position, n_out, out_queries, out_positions);
  });
}

int kvc_compress_allocate_budgets(const double* difficulty, const int64_t* sizes,
                                  int64_t n_components, int64_t total, int64_t t_min,
                                  double alpha, int64_t* budgets_out, double* spread_out) {
  return guarded("kvc_compress_allocate_budgets", [&] {
    if (n_components < 0 || (n_components > 0 && (!difficulty || !sizes || !budgets_out)))
      fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "bad component list");
    std::vector<double> e(difficulty, difficulty + n_components);
    std::vector<int64_t> T(sizes, sizes + n_components);
    const std::vector<int64_t> budgets = allocateBudgets(e, T, total, t_min, alpha);
    std::copy(budgets.begin(), budgets.end(), budgets_out);
    if (spread_out) *spread_out = difficultySpread(e);
  });
}

int kvc_compress_pilot(kvc_compress_job* jobs, int64_t n_jobs, int64_t total, int64_t t_min,
                       double alpha, const kvc_compress_options* opts, int32_t num_threads,
                       double* difficulty_out, int64_t* budgets_out, double* spread_out) {
  kvc_compress_options defaults;
  std::vector<double> difficulty;
  std::vector<int64_t> sizes;
  std::vector<int64_t> uniform;
  int status = guarded("kvc_compress_pilot", [&] {
    if (n_jobs < 1 || !jobs) fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "empty job list");
    const kvc_compress_options& base = optionsOrDefault(opts, defaults);
    for (int64_t i = 0; i < n_jobs; ++i) sizes.push_back(jobs[i].seq_len);
    int64_t retained = 0;  // the per-head minimum: sinks + recent must fit
    for (int64_t i = 0; i < n_jobs; ++i)
      retained = std::max(retained, std::min(sizes[i], base.n_sink + base.n_recent));
    t_min = std::max(t_min, retained);
    // Uniform split (proportional to T) for the pilot: the allocator with alpha = 0.
    uniform = allocateBudgets(std::vector<double>(n_jobs, 1.0), sizes, total, t_min, 0.0);
  });
  if (status != 0) return status;

  kvc_compress_options pilotOptions = optionsOrDefault(opts, defaults);
  pilotOptions.method = KVC_COMPRESS_SCULPT;
  pilotOptions.sculpt_rounds = pilotOptions.pilot_rounds;
  pilotOptions.sculpt_key_iters = pilotOptions.pilot_key_iters;
  // Pilot outputs are scratch; each head gets its own buffers.
  std::vector<std::vector<float>> scratchK(n_jobs), scratchV(n_jobs);
  std::vector<HeadOutput> outputs(n_jobs);
  for (int64_t i = 0; i < n_jobs; ++i) {
    const int64_t rows = std::max<int64_t>(0, std::min(uniform[i], jobs[i].seq_len));
    scratchK[i].resize(rows * std::max<int64_t>(jobs[i].head_dim, 0));
    scratchV[i].resize(rows * std::max<int64_t>(jobs[i].value_dim, 0));
    outputs[i] = HeadOutput{scratchK[i].data(), scratchV[i].data(), nullptr};
  }
  status = runJobs(jobs, n_jobs, uniform, outputs, pilotOptions, resolveThreadCount(num_threads));
  if (status != 0) {
    lastError = "kvc_compress_pilot: " + lastError;
    return status;
  }
  return guarded("kvc_compress_pilot", [&] {
    for (int64_t i = 0; i < n_jobs; ++i) {
      const double e = jobs[i].stats.final_rel_mse;
      difficulty.push_back(std::isfinite(e) ? std::max(e, 0.0) : 0.0);
    }
    const std::vector<int64_t> budgets = allocateBudgets(difficulty, sizes, total, t_min, alpha);
    for (int64_t i = 0; i < n_jobs; ++i) {
      jobs[i].budget = budgets[i];
      if (budgets_out) budgets_out[i] = budgets[i];
      if (difficulty_out) difficulty_out[i] = difficulty[i];
    }
    if (spread_out) *spread_out = difficultySpread(difficulty);
  });
}

}  // extern "C"
