/*===- kvc/Runtime/Vote.h - voting budgets: GVote, AdaKV, PyramidKV, EA (C ABI) ===*
 *
 * Per (layer, KV head) budget-free key selection and the budget baselines it is compared
 * with, in libkvc_runtime.so next to the compression library (kvc/Runtime/Compress.h):
 *  - GVote (methods.md §2, a reconstruction): nucleus step budget from the current
 *    queries, Monte-Carlo future queries from a diagonal Gaussian of the normalized hidden
 *    states projected by the layer's W_q (+ optional QK RMS-norm, + RoPE at future positions),
 *    each voting for its top-B_step keys; the kept set is the union of the votes, the nucleus
 *    set, the sinks and the recent window. The budget is an output; one head
 *    per call (kvc_vote_gvote_head) or a batch on a thread pool (kvc_vote_gvote_heads).
 *  - AdaKV (layer budget pooled across heads, minimum per head), PyramidKV (layer budgets),
 *    top-k selection, and the closed-form Expected Attention scorer (kvpress).
 *  - Select+Fit into a given kept set (composition with the compression library).
 * See docs/voting-budgets.md.
 *
 * Conventions (as kvc/Runtime/Compress.h)
 *  - Row-major float32 arrays. Keys and current queries are post-RoPE, as cached.
 *    Logits are scale * q.k (scale <= 0 means 1/sqrt(head_dim)).
 *  - GQA: the n_query_heads (g) query heads of one KV head vote together; their current
 *    queries are passed as g contiguous blocks of n_current rows.
 *  - Kept index lists are sorted ascending, without duplicates.
 *  - Every function returns 0 or a KVC_COMPRESS_ERR_* code (Compress.h); the message of the
 *    last failure on the calling thread is kvc_vote_last_error() (thread-local, valid until
 *    the next kvc_vote_* call from that thread).
 *===----------------------------------------------------------------------===*/
#ifndef KVC_RUNTIME_VOTE_H
#define KVC_RUNTIME_VOTE_H

#include "kvc/Runtime/Compress.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How the group's per-query nucleus sizes become one step budget B_step. */
typedef enum { KVC_VOTE_STEP_MAX = 0, KVC_VOTE_STEP_MEAN = 1 } kvc_vote_step_reduce;

/* Query RMS-norm applied per query head after the projection (QK-norm models):
   q <- q / sqrt(mean(q^2) + eps) * w   (QWEN: weight as is; NULL weight = 1)
   q <- q / sqrt(mean(q^2) + eps) * (1 + w)   (GEMMA: Gemma 3's convention; NULL = 0). */
typedef enum {
  KVC_VOTE_QNORM_NONE = 0,
  KVC_VOTE_QNORM_QWEN = 1,
  KVC_VOTE_QNORM_GEMMA = 2,
} kvc_vote_qnorm;

/* Always start from kvc_vote_default_options(). */
typedef struct {
  double p;                /* nucleus mass, in (0, 1] (default 0.95) */
  int32_t n_samples;       /* S: Monte-Carlo hidden-state samples (default 8); 0: nucleus only */
  int32_t step_reduce;     /* kvc_vote_step_reduce (default MAX) */
  uint64_t seed;           /* PRNG seed (std::mt19937_64) (default 0) */
  float scale;             /* logit scale; <= 0: 1/sqrt(head_dim) (default 0) */
  int64_t n_sink;          /* first tokens always kept (default 4) */
  int64_t n_recent;        /* last tokens always kept (default 64) */
  /* Future positions: each sample draws its position uniformly from
     position + 1 .. position + n_future (position = the last cached token). */
  int64_t n_future;        /* >= 1 (default 512, as kvpress Expected Attention) */
  /* Query model */
  int32_t q_norm;          /* kvc_vote_qnorm (default NONE) */
  double q_norm_eps;       /* RMS-norm epsilon (default 1e-6) */
  int32_t apply_rope;      /* 1: NeoX half-split RoPE at the future position (default 1) */
  int64_t rotary_dim;      /* rotated leading dims, even; <= 0: head_dim (default 0) */
  double rope_theta;       /* RoPE base (default 10000) */
  double position_scale;   /* angle = pos * position_scale * theta^(-2i/rotary_dim) (1) */
} kvc_vote_options;

/* One KV head of one layer, with its GQA group of n_query_heads query heads. */
typedef struct {
  const float* keys;            /* [seq_len][head_dim], post-RoPE */
  int64_t seq_len;              /* T */
  int64_t head_dim;             /* d */
  const float* current_queries; /* [n_query_heads][n_current][head_dim], post-RoPE */
  int64_t n_current;            /* last real queries per query head (>= 1 when T > 0) */
  int64_t n_query_heads;        /* g >= 1 */
  /* Diagonal Gaussian N(mean, diag(var)) of the normalized hidden states feeding W_q
     (computed by the caller over the context, sinks excluded). May be NULL when
     n_samples == 0. */
  const float* hidden_mean;     /* [d_model] */
  const float* hidden_var;      /* [d_model], >= 0 */
  int64_t d_model;
  const float* w_q;             /* [n_query_heads][head_dim][d_model]: the group's rows of W_q */
  const float* b_q;             /* [n_query_heads][head_dim] or NULL */
  const float* q_norm_weight;   /* [head_dim] (shared by the heads, as HF q_norm) or NULL */
  int64_t position;             /* absolute position of the last cached token; < 0: T - 1 */
} kvc_vote_head;

typedef struct {
  int64_t n_kept;        /* the head's budget: |kept| */
  int64_t step_budget;   /* B_step: keys each synthetic query votes for */
  int64_t nucleus_size;  /* |C0|: union over the current queries of their nucleus sets */
  int64_t vote_size;     /* |union of the synthetic queries' votes| */
  int64_t n_synthetic;   /* synthetic queries that voted: n_samples * n_query_heads */
  int32_t keep_all;      /* 1: n_sink + n_recent >= T, every key kept without voting */
  double current_mass;   /* min over the current queries of their attention mass on kept */
  double seconds;        /* wall time of the call */
} kvc_vote_stats;

KVC_COMPRESS_API const char* kvc_vote_last_error(void);
KVC_COMPRESS_API void kvc_vote_default_options(kvc_vote_options* opts);

/* GVote on one KV head. kept_out[seq_len] receives the kept indices (ascending) in its first
   *n_kept_out entries; stats may be NULL. T == 0: n_kept = 0. */
KVC_COMPRESS_API int kvc_vote_gvote_head(const kvc_vote_head* head, const kvc_vote_options* opts,
                                         int64_t* kept_out, int64_t* n_kept_out,
                                         kvc_vote_stats* stats);

/* One head of a batch (e.g. all KV heads of a layer, or of a model). */
typedef struct {
  kvc_vote_head head;
  int64_t* kept_out;      /* [head.seq_len] */
  int64_t n_kept;         /* written */
  kvc_vote_stats stats;   /* written */
  int32_t status;         /* written: 0 or KVC_COMPRESS_ERR_* */
} kvc_vote_job;

/* GVote on jobs[0..n) on num_threads worker threads (<= 0: $KVC_NUM_THREADS, else the
   hardware concurrency; BLAS is limited to one thread meanwhile), largest heads first. Every
   job uses the same options, seed included: a sample is one hypothetical future token, whose
   hidden state feeds every head of a layer, so the heads of a layer share the draws (each
   job equals a kvc_vote_gvote_head call with these options). Returns the first failing job's
   status (0 if all succeeded); its message, prefixed "job i:", is kvc_vote_last_error(). */
KVC_COMPRESS_API int kvc_vote_gvote_heads(kvc_vote_job* jobs, int64_t n_jobs,
                                          const kvc_vote_options* opts, int32_t num_threads);

/* The synthetic queries GVote votes with (same PRNG stream, same order): out[g][S][d]
   (block per query head), positions_out[S] (nullable). Only hidden_mean/var, w_q, b_q,
   q_norm_weight, n_query_heads, head_dim, d_model and position (T - 1 when < 0) are used. */
KVC_COMPRESS_API int kvc_vote_sample_queries(const kvc_vote_head* head,
                                             const kvc_vote_options* opts, float* out,
                                             int64_t* positions_out);

/* Nucleus (top-p) sets of Q[m][d] over K[T][d]: for each query the smallest set of keys
   (largest weights first, ties to the lower index) whose softmax mass reaches p.
   kept_out[T] gets the union (ascending), *n_kept_out its size, sizes_out[m] (nullable) each
   query's set size. */
KVC_COMPRESS_API int kvc_vote_nucleus(const float* queries, int64_t n_queries, const float* keys,
                                      int64_t seq_len, int64_t head_dim, float scale, double p,
                                      int64_t* kept_out, int64_t* n_kept_out,
                                      int64_t* sizes_out);

/* Top-k selection by score with forced sinks/recent (which count toward the budget):
   kept_out gets min(budget, T) indices, ascending. budget < min(n_sink + n_recent, T) is
   KVC_COMPRESS_ERR_BUDGET. Ties go to the lower index. */
KVC_COMPRESS_API int kvc_vote_select_topk(const float* scores, int64_t seq_len, int64_t budget,
                                          int64_t n_sink, int64_t n_recent, int64_t* kept_out);

/* AdaKV: scores[n_heads][seq_len] (e.g. SnapKV observation-window attention, comparable
   across heads). Each head first gets max(min_per_head, its sinks + recent) (clamped to T)
   keys: the sinks/recent, then its best-scored keys; the rest of layer_budget goes to the
   global top scores pooled over all heads. budgets_out[n_heads] sums to layer_budget;
   kept_out[layer_budget] holds the heads' kept indices back to back (head h's budgets_out[h]
   entries ascending). kvpress's alpha_safeguard a corresponds to
   min_per_head = floor(a * layer_budget / n_heads). */
KVC_COMPRESS_API int kvc_vote_adakv(const float* scores, int64_t n_heads, int64_t seq_len,
                                    int64_t layer_budget, int64_t min_per_head, int64_t n_sink,
                                    int64_t n_recent, int64_t* budgets_out, int64_t* kept_out);

/* PyramidKV layer budgets (kvpress formula): each layer has `window` fixed slots; the rest,
   A = total - n_layers * window, is spread linearly from layer 0 (max) to the last layer
   (min) with a = A / n_layers, min = a / beta, max = 2a - min; integers by largest remainder.
   budgets_out[n_layers] sums to total and is non-increasing. beta >= 1 (kvpress: 20). */
KVC_COMPRESS_API int kvc_vote_pyramid_budgets(int64_t n_layers, int64_t total, int64_t window,
                                              double beta, int64_t* budgets_out);

/* Expected Attention (kvpress) for one KV head: mean_q[g][d] and cov_q[g][d][d] (nullable:
   mean only) of the group's pre-RoPE queries; the RoPE rotation averaged over positions
   position + 1 .. position + n_future (opts: apply_rope, rotary_dim, rope_theta,
   position_scale, n_future) is applied to both. For keys j >= n_sink:
   s_j = softmax_j(scale mu.k_j + scale^2 k_j^T Sigma k_j / 2), averaged over the g heads,
   then (s_j + epsilon) * ||v_j||_2 when values is non-NULL. Sinks (j < n_sink) get the max
   score. scores_out[seq_len]. Uses opts->scale, n_sink, n_future and the RoPE fields. */
KVC_COMPRESS_API int kvc_vote_expected_attention(const float* keys, const float* values,
                                                 int64_t seq_len, int64_t head_dim,
                                                 int64_t value_dim, const float* mean_q,
                                                 const float* cov_q, int64_t n_query_heads,
                                                 int64_t position, double epsilon,
                                                 const kvc_vote_options* opts,
                                                 float* scores_out);

/* Select+Fit into a given kept set: rows kept[0..n_kept) (ascending, distinct) of K are kept
   as they are; the values of the kept rows that are neither sinks (< n_sink) nor recent
   (>= T - n_recent) are refit by ridge least squares (kvc_compress_fit_values' solve, with
   ridge_lambda) so that attention over the kept set reproduces the full-cache output of
   Q[m][d]; sinks/recent keep their exact values. out_keys[n_kept][d], out_values[n_kept][dv]
   in the order of kept. m == 0: values are copied unchanged. */
KVC_COMPRESS_API int kvc_vote_fit_kept(const float* keys, const float* values, int64_t seq_len,
                                       int64_t head_dim, int64_t value_dim,
                                       const float* queries, int64_t n_queries,
                                       const int64_t* kept, int64_t n_kept, float scale,
                                       double ridge_lambda, int64_t n_sink, int64_t n_recent,
                                       float* out_keys, float* out_values);

#ifdef __cplusplus
}
#endif

#endif /* KVC_RUNTIME_VOTE_H */
