/*===- CUDADecode.h - launch kvc's decode-attention kernels (C ABI) ----------===
 *
 * Host side of the kernels convert-kvc-to-gpu emits (see
 * include/kvc/Conversion/KVCToGPU/DecodeKernelGen.h for the kernel ABI). Kernel names carry
 * their specialisation:  <tag>_d<D>_g<g>_q<Sq>_<bf16|f16>_b<block>_u<unroll>[_ragged][_fm]_split
 * and the matching ..._merge; kvc_cuda_decode_parse_name reads it back.
 *===----------------------------------------------------------------------===*/
#ifndef KVC_RUNTIME_CUDADECODE_H
#define KVC_RUNTIME_CUDADECODE_H

#include "kvc/Runtime/CUDA.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int head_dim, group, query_seq, block_size, unroll, ragged;
  int elem_bytes;     /* 2 */
  int is_bf16;        /* 1: bf16, 0: f16 */
  int fused_merge;    /* name ends in _fm: the split kernel merges, there is no merge kernel */
} kvc_decode_kernel_config;

/* Parses a split or merge kernel name; returns 0 on success. */
int kvc_cuda_decode_parse_name(const char *name, kvc_decode_kernel_config *out);

/* One decode-attention op's kernels in a loaded module: what a program needs to plan and
 * launch it. */
typedef struct {
  kvc_cuda_function split, merge; /* merge is NULL for fused-merge kernels */
  kvc_decode_kernel_config cfg;
  int resident_ctas;              /* SMs x occupancy of the split kernel (for the plan) */
} kvc_decode_kernel;

/* Resolves `<name>_split` (and `<name>_merge`) in `m`, where `name` is a kernel name without
 * the suffix (e.g. the KVC_GPU_* constants of a `kvc-bench extract --header` header), parses
 * its specialisation and measures its occupancy on the current device. */
int kvc_cuda_decode_kernel_get(kvc_cuda_module m, const char *name, kvc_decode_kernel *out);

typedef struct {
  int64_t batch, hkv, skv; /* skv: capacity (row stride in keys) of the K/V buffers */
  int num_splits;          /* 0: pick from resident_ctas (see kvc_cuda_decode_make_plan) */
  int64_t max_len;         /* ragged kernels: the longest row's length, which the split count
                              is sized by (each row is split by its own length); 0: skv */
} kvc_decode_shape;

typedef struct {
  int num_splits;
  int64_t chunk;           /* keys per split, a multiple of keys-per-iteration */
  size_t workspace_bytes;  /* o_part + ml_part, f32 */
  size_t o_part_offset, ml_part_offset;
  size_t counters_offset;  /* fused-merge kernels: B*Hkv int32 arrival counters */
} kvc_decode_plan;

/* resident_ctas: split CTAs the GPU holds at once (SMs x kvc_cuda_occupancy of the split
 * kernel; <= 0: 4 x 132). With num_splits = 0 the plan picks the split count s (at least 256
 * keys per split, or down to 4 main-loop tiles while the splits fit one wave) that minimises waves(s)/s, waves = ceil(B*Hkv*s / resident_ctas): whole
 * waves, so no half-empty last wave (the smallest such s wins). The keys per row are skv for
 * dense kernels and max_len (if set) for ragged ones. */
int kvc_cuda_decode_make_plan(const kvc_decode_kernel_config *cfg, const kvc_decode_shape *shape,
                              int resident_ctas, kvc_decode_plan *out);

/* Fused-merge kernels count arriving split CTAs in the workspace and leave the counters at 0;
 * call this once after allocating (or overwriting) a workspace, before the first launch. A no-op
 * for the other kernels. */
int kvc_cuda_decode_init_workspace(const kvc_decode_kernel_config *cfg, const kvc_decode_plan *plan,
                                   kvc_cuda_ptr workspace, kvc_cuda_stream stream);

/* Launches split + merge (fused-merge kernels: split only) on `stream`. q: [B, Hkv*g, Sq, D], k/v: [B, Hkv, skv, D], out like q,
 * lengths: [B, Hkv] int64 (ragged kernels only, else 0), workspace: plan.workspace_bytes.
 * merge may be null to launch the split kernel alone (timing diagnostics; `out` is not written). */
/* Threads of a merge kernel (dense, ragged, encoded) for head dim D: D * P with
 * P = clamp(512 / D, 1, 8) slices of the splits merged in parallel. The kernel generator uses
 * the same function (decodeMergeThreads); launches check the kernel's .maxntid against it
 * (or against D, the merge of kernels built before the slices). */
static inline int64_t kvc_decode_merge_threads(int64_t head_dim) {
  int64_t p = head_dim > 0 ? 512 / head_dim : 0;
  if (p < 1)
    p = 1;
  if (p > 8)
    p = 8;
  return head_dim > 0 ? head_dim * p : 0;
}

int kvc_cuda_decode_launch(kvc_cuda_function split, kvc_cuda_function merge,
                           const kvc_decode_kernel_config *cfg, const kvc_decode_shape *shape,
                           const kvc_decode_plan *plan, kvc_cuda_ptr q, kvc_cuda_ptr k,
                           kvc_cuda_ptr v, kvc_cuda_ptr lengths, kvc_cuda_ptr workspace,
                           kvc_cuda_ptr out, kvc_cuda_stream stream);

#ifdef __cplusplus
}
#endif

#endif
