/*===- kvc/Runtime/Compress.h - KV-cache compression library (C ABI) --------===*
 *
 * Per (layer, KV head) compression of one head's KV cache: StreamingLLM, SnapKV, H2O,
 * Select+Fit (attention-score selection + ridge least-squares values) and KVSculpt
 * (L-BFGS on keys alternating with closed-form values), plus the building blocks the
 * evaluation needs: synthetic future queries (RoPE-aware), pilot budget allocation and
 * attention output / log-sum-exp of a query batch. See docs/compression-library.md.
 *
 * Conventions
 *  - All arrays are row-major float32: keys K[T][d], values V[T][dv], queries Q[m][d].
 *  - Keys and queries are post-RoPE. Logits are scale * q.k (scale <= 0 means 1/sqrt(d)).
 *  - GQA: the query set of one KV head is the union of its query heads' queries, passed as
 *    n_query_heads contiguous blocks of m / n_query_heads rows each (rows in position order
 *    inside a block). Only SnapKV's observation window looks at the block structure.
 *  - The budget t of a head counts every output pair, including the n_sink first tokens
 *    and the n_recent last tokens that are always kept exact. budget >= T returns an exact
 *    copy of the cache (stats.exact_copy = 1, n_out = T). A budget smaller than
 *    n_sink + n_recent (each clamped to T) is an error; budget 0 with n_sink = n_recent = 0
 *    is valid and yields an empty output.
 *  - Every function returns 0 on success or a KVC_COMPRESS_ERR_* code; the message of the
 *    last failure on the calling thread is kvc_compress_last_error() (thread-local, valid
 *    until the next call from that thread).
 *===----------------------------------------------------------------------===*/
#ifndef KVC_RUNTIME_COMPRESS_H
#define KVC_RUNTIME_COMPRESS_H

#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define KVC_COMPRESS_API __attribute__((visibility("default")))
#else
#define KVC_COMPRESS_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum {
  KVC_COMPRESS_OK = 0,
  KVC_COMPRESS_ERR_INVALID_ARGUMENT = 1, /* bad shape, null pointer, bad option value */
  KVC_COMPRESS_ERR_NONFINITE_INPUT = 2,  /* NaN or Inf in keys, values, queries or targets */
  KVC_COMPRESS_ERR_BUDGET = 3,           /* budget infeasible (e.g. < n_sink + n_recent) */
  KVC_COMPRESS_ERR_NO_QUERIES = 4,       /* method needs queries but m == 0 */
  KVC_COMPRESS_ERR_NUMERIC = 5,          /* result would not be finite (e.g. float overflow) */
  KVC_COMPRESS_ERR_INTERNAL = 6,         /* unexpected exception / allocation failure */
};

typedef enum {
  KVC_COMPRESS_STREAMING = 0,  /* sinks + the most recent tokens */
  KVC_COMPRESS_SNAPKV = 1,     /* observation-window attention, pooled, top-t */
  KVC_COMPRESS_H2O = 2,        /* accumulated attention over all queries, top-t */
  KVC_COMPRESS_SELECT_FIT = 3, /* top-t keys by attention score + ridge LS values */
  KVC_COMPRESS_SCULPT = 4,     /* KVSculpt: Select+Fit start, L-BFGS keys / LS values */
} kvc_compress_method;

typedef enum { KVC_COMPRESS_POOL_MAX = 0, KVC_COMPRESS_POOL_AVG = 1 } kvc_compress_pool;
typedef enum { KVC_COMPRESS_SCORE_RMS = 0, KVC_COMPRESS_SCORE_SUM = 1 } kvc_compress_score;

/* Options shared by all methods. Always start from kvc_compress_default_options(). */
typedef struct {
  int32_t method;          /* kvc_compress_method; default SCULPT */
  float scale;             /* logit scale; <= 0: 1/sqrt(d) (default 0) */
  int64_t n_sink;          /* first tokens kept exact (default 4) */
  int64_t n_recent;        /* last tokens kept exact (default 64) */
  int64_t n_query_heads;   /* GQA group size g: Q holds g blocks of m/g rows (default 1) */
  /* SnapKV */
  int64_t snapkv_window;   /* observation queries: the last rows of each block (default 64) */
  int64_t snapkv_kernel;   /* pooling kernel over the sequence, odd (default 5) */
  int32_t snapkv_pool;     /* kvc_compress_pool (default AVG, as SnapKV/kvpress) */
  /* Select+Fit and the KVSculpt start */
  int32_t select_score;    /* kvc_compress_score: RMS (default) or SUM of attention weights */
  double ridge_lambda;     /* relative ridge: lambda = ridge_lambda * trace(G)/t (1e-3) */
  /* KVSculpt */
  double lse_weight;       /* weight of the LSE-matching term (default 1, see docs) */
  int32_t sculpt_rounds;   /* outer rounds: key_iters L-BFGS steps, then a value solve (5) */
  int32_t sculpt_key_iters;/* L-BFGS iterations per round (default 10) */
  int32_t lbfgs_memory;    /* L-BFGS history length (default 6) */
  /* Pilot run used by kvc_compress_pilot (a short KVSculpt) */
  int32_t pilot_rounds;    /* default 1 */
  int32_t pilot_key_iters; /* default 10 */
  /* Test hook: from this objective evaluation on (0-based), the KVSculpt objective returns
     NaN, simulating a diverging optimization. < 0 disables it (default -1). */
  int32_t debug_nan_after_evals;
} kvc_compress_options;

/* Per-head diagnostics. Losses are the KVSculpt training loss on the given queries:
   mean_i ||o_i - y_i||^2 + lse_weight * mean_i (lse_i - z_i)^2, where y, z are the full-cache
   output and LSE. NaN when not computable (m == 0). rel_mse = sum ||o-y||^2 / sum ||y||^2. */
typedef struct {
  int64_t n_out;           /* rows written: min(budget, T) */
  int32_t exact_copy;      /* 1: budget >= T, the cache was copied */
  int32_t fell_back;       /* 1: a non-finite objective was met; best iterate returned */
  double initial_loss;     /* loss at the start (Select+Fit for sculpt; the result otherwise) */
  double final_loss;       /* loss of the returned pairs */
  double initial_rel_mse;
  double final_rel_mse;
  int32_t rounds;          /* sculpt rounds run */
  int32_t iterations;      /* L-BFGS iterations, all rounds (a round ended early by a
                              line-search failure counts in full) */
  int32_t evaluations;     /* objective evaluations (loss + gradient) */
  int32_t value_solves;    /* ridge value solves, the initial one included */
  double seconds;          /* wall time of this head */
} kvc_compress_stats;

/* One head of a batch. out_* hold budget rows (out_indices budget entries, may be NULL). */
typedef struct {
  const float* keys;       /* [seq_len][head_dim] */
  const float* values;     /* [seq_len][value_dim] */
  const float* queries;    /* [n_queries][head_dim]; may be NULL when n_queries == 0 */
  int64_t seq_len;
  int64_t head_dim;
  int64_t value_dim;
  int64_t n_queries;
  int64_t budget;
  float* out_keys;         /* [budget][head_dim] */
  float* out_values;       /* [budget][value_dim] */
  int64_t* out_indices;    /* [budget]: source token, or -1 for a synthesized (sculpt) slot */
  kvc_compress_stats stats;/* written */
  int32_t status;          /* written: 0 or KVC_COMPRESS_ERR_* */
} kvc_compress_job;

KVC_COMPRESS_API const char* kvc_compress_last_error(void);
KVC_COMPRESS_API void kvc_compress_default_options(kvc_compress_options* opts);

/* The GEMM backend: "eigen", or "openblas <core>" with the kernel family OpenBLAS chose at
   load time. When OpenBLAS picked pre-AVX2 kernels on a CPU with AVX2 (it does so on some
   virtual CPUs, costing ~3x), the string ends with a hint to set OPENBLAS_CORETYPE. */
KVC_COMPRESS_API const char* kvc_compress_backend(void);

/* Compresses one KV head. Output layout: [sinks; middle; recent] in that order, t rows.
   Selection methods keep original tokens in ascending position; KVSculpt's middle rows are
   synthesized (out_indices = -1). stats may be NULL. */
KVC_COMPRESS_API int kvc_compress_head(const float* keys, const float* values, int64_t seq_len,
                                       int64_t head_dim, int64_t value_dim,
                                       const float* queries, int64_t n_queries, int64_t budget,
                                       const kvc_compress_options* opts, float* out_keys,
                                       float* out_values, int64_t* out_indices,
                                       kvc_compress_stats* stats);

/* Select+Fit or KVSculpt started from a GIVEN kept set instead of the method's own selection,
   e.g. the per-head set GVote chose (kvc/Runtime/Vote.h): GVote picks which tokens and how many,
   this distils into them. kept[n_kept]: ascending, distinct token indices in [0, seq_len).
   Kept rows with index < opts->n_sink or >= seq_len - opts->n_recent are retained exact; the
   other kept rows are the slots: they start from their own keys, their values are refit by the
   ridge solve (opts->ridge_lambda) and, with opts->method == SCULPT, opts->sculpt_rounds rounds
   of L-BFGS key steps alternating with value solves follow, exactly as in kvc_compress_head.
   opts->method must be SELECT_FIT (value refit only) or SCULPT. anchor_values = 0: the ridge
   penalty is lambda ||Cv||^2, as kvc_compress_head; anchor_values != 0: lambda ||Cv - V_kept||^2
   (anchored ridge, in every value solve), so slots that the queries hardly attend to keep their
   own values instead of shrinking toward zero. Output: n_kept rows in the
   order of kept; out_indices (nullable) = kept[i], or -1 for a sculpted (synthesized) slot.
   n_kept == seq_len copies the cache (stats.exact_copy = 1); n_queries == 0 or no slot left
   after the retained ranges gathers the rows unchanged. On the method's own selection
   (sinks + its middle + recent) the result equals kvc_compress_head's. */
KVC_COMPRESS_API int kvc_compress_head_from_kept(const float* keys, const float* values,
                                                 int64_t seq_len, int64_t head_dim,
                                                 int64_t value_dim, const float* queries,
                                                 int64_t n_queries, const int64_t* kept,
                                                 int64_t n_kept, int32_t anchor_values,
                                                 const kvc_compress_options* opts,
                                                 float* out_keys, float* out_values,
                                                 int64_t* out_indices, kvc_compress_stats* stats);

/* Compresses jobs[0..n) on num_threads worker threads (<= 0: $KVC_NUM_THREADS, else the
   hardware concurrency), largest heads first. Each job gets its own status; the return value
   is the first failing job's status (0 if all succeeded). */
KVC_COMPRESS_API int kvc_compress_heads(kvc_compress_job* jobs, int64_t n_jobs,
                                        const kvc_compress_options* opts, int32_t num_threads);

/* Attention of Q[m][d] against the concatenation [K; K_extra] / [V; V_extra] (extra may be
   NULL with n_extra = 0): out[m][dv] = softmax(scale Q K^T) V, lse[m] (may be NULL) =
   log sum_j exp(scale q.k_j). With no keys at all, out = 0 and lse = -inf. */
KVC_COMPRESS_API int kvc_compress_attention(const float* queries, int64_t n_queries,
                                            const float* keys, const float* values,
                                            int64_t seq_len, const float* keys_extra,
                                            const float* values_extra, int64_t n_extra,
                                            int64_t head_dim, int64_t value_dim, float scale,
                                            float* out, float* lse);

/* Ridge least-squares values for fixed keys: with A = softmax over [Ck; K_ret] split into
   A_c (first t_c columns) and A_r, returns Cv = (A_c^T A_c + lambda I)^{-1} A_c^T (Y - A_r V_ret),
   lambda = ridge_lambda * trace(A_c^T A_c) / t_c. */
KVC_COMPRESS_API int kvc_compress_fit_values(const float* queries, int64_t n_queries,
                                             const float* comp_keys, int64_t n_comp,
                                             const float* ret_keys, const float* ret_values,
                                             int64_t n_ret, const float* targets,
                                             int64_t head_dim, int64_t value_dim, float scale,
                                             double ridge_lambda, float* comp_values_out);

/* KVSculpt training loss of (Ck, Cv) plus retained exact pairs against targets Y (and LSE
   targets z, needed when lse_weight != 0), and optionally its gradient w.r.t. Ck. */
KVC_COMPRESS_API int kvc_compress_sculpt_loss(
    const float* queries, int64_t n_queries, const float* comp_keys, const float* comp_values,
    int64_t n_comp, const float* ret_keys, const float* ret_values, int64_t n_ret,
    const float* targets, const float* lse_targets, int64_t head_dim, int64_t value_dim,
    float scale, double lse_weight, double* loss_out, float* grad_comp_keys /* nullable */);

/* Synthetic future queries (NeoX / half-split RoPE, as HF Llama, Gemma, Qwen): Q holds
   n_query_heads blocks of n_queries rows at positions[n_queries]. Each row is de-rotated at
   its position, n_out rows are subsampled evenly per block (index floor(k*n_queries/n_out),
   repeating when n_out > n_queries) and re-rotated at ref_position+1 .. ref_position+n_out.
   Output: n_query_heads blocks of n_out rows; out_positions[n_out] may be NULL.
   The rotary angle of pair (i, i+rotary_dim/2) at position p is
   p * position_scale * theta^(-2i/rotary_dim); rotary_dim <= 0 means head_dim;
   position_scale is 1/factor for linear RoPE scaling (1 otherwise). */
KVC_COMPRESS_API int kvc_compress_synthetic_queries(
    const float* queries, const int64_t* positions, int64_t n_queries, int64_t n_query_heads,
    int64_t head_dim, int64_t rotary_dim, double theta, double position_scale,
    int64_t ref_position, int64_t n_out, float* out_queries, int64_t* out_positions);

/* Integer budgets t_c with sum t_c == total and min(t_min, T_c) <= t_c <= T_c, following
   t_c proportional to T_c * e_c^alpha (water-filling over the bounds, then largest remainder).
   spread_out (nullable) = max e / min e over components (inf when min e == 0). */
KVC_COMPRESS_API int kvc_compress_allocate_budgets(const double* difficulty,
                                                   const int64_t* sizes, int64_t n_components,
                                                   int64_t total, int64_t t_min, double alpha,
                                                   int64_t* budgets_out, double* spread_out);

/* Pilot run + allocation: compresses every job's head with a short KVSculpt (opts->pilot_*)
   at the uniform budget (total split proportionally to seq_len), takes e_c = the pilot's
   relative reconstruction MSE on the training queries, and allocates total over the jobs
   with kvc_compress_allocate_budgets(e, seq_len, t_min', alpha), where t_min' is at least
   n_sink + n_recent. Job out_* buffers and budget are ignored; the budgets are written to
   budgets_out and each job's budget field. */
KVC_COMPRESS_API int kvc_compress_pilot(kvc_compress_job* jobs, int64_t n_jobs, int64_t total,
                                        int64_t t_min, double alpha,
                                        const kvc_compress_options* opts, int32_t num_threads,
                                        double* difficulty_out, int64_t* budgets_out,
                                        double* spread_out);

#ifdef __cplusplus
}
#endif

#endif /* KVC_RUNTIME_COMPRESS_H */
