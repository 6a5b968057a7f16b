/*===- CUDAEncoded.h - KVComp-encoded caches on the GPU (C ABI) --------------===
 *
 * Host side of the encoded-cache decode kernels that convert-kvc-to-gpu emits for
 * kvc.attention over a !kvc.encoded_cache (kernel ABI and device layout:
 * include/kvc/Conversion/KVCToGPU/EncodedKernelGen.h). kvc_cuda_encoded_upload packs B*Hkv
 * codec heads (include/kvc/Runtime/Codec.h; row r = b*Hkv + kvh) into that device form; the
 * plan/launch pair runs split + merge. Kernel names carry the specialisation:
 *   <tag>_d<D>_g<g>_q<Sq>_<bf16|f16|f32>_kb<KB>_vb<VB>_u<U>_enc_split   (and ..._merge)
 *===----------------------------------------------------------------------===*/
#ifndef KVC_RUNTIME_CUDAENCODED_H
#define KVC_RUNTIME_CUDAENCODED_H

#include "kvc/Runtime/CUDA.h"
#include "kvc/Runtime/Codec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int head_dim, group, query_seq, key_block, value_block, unroll;
  int query_type; /* 0 bf16, 1 f16, 2 f32 */
  int query_bytes;
} kvc_encoded_kernel_config;

/* Parses an encoded split or merge kernel name; returns 0 on success. */
int kvc_cuda_encoded_parse_name(const char *name, kvc_encoded_kernel_config *out);

/* The 16 device buffers of the kernel ABI, in parameter order. */
enum {
  KVC_ENC_ROWS = 0, KVC_ENC_AUX, KVC_ENC_SYMS, KVC_ENC_LUT,
  KVC_ENC_KW, KVC_ENC_KBO, KVC_ENC_KVO, KVC_ENC_KMIN, KVC_ENC_KSTEP, KVC_ENC_KREC,
  KVC_ENC_VW, KVC_ENC_VBO, KVC_ENC_VVO, KVC_ENC_VMIN, KVC_ENC_VSTEP, KVC_ENC_VREC,
  KVC_ENC_NUM_BUFFERS
};

typedef struct {
  int64_t batch, hkv, head_dim, key_block, value_block;
  int64_t max_tokens;                         /* longest row */
  kvc_cuda_ptr buf[KVC_ENC_NUM_BUFFERS];
  int64_t len[KVC_ENC_NUM_BUFFERS];           /* elements */
  int64_t elem_bytes[KVC_ENC_NUM_BUFFERS];
  uint64_t device_bytes;    /* all buffers (what one decode step reads at least once) */
  uint64_t table_bytes;     /* LUTs + aux + syms (read by every CTA, from L2) */
  uint64_t tokens;          /* sum of the rows' tokens */
} kvc_cuda_encoded_cache;

/* The device form on the host (no CUDA needed): what kvc_cuda_encoded_upload copies to the GPU.
 * data[i] holds len[i] elements of elem_bytes[i] bytes (malloc'd; kvc_encoded_host_free). */
typedef struct {
  int64_t batch, hkv, head_dim, key_block, value_block, max_tokens;
  uint64_t tokens;
  void *data[KVC_ENC_NUM_BUFFERS];
  int64_t len[KVC_ENC_NUM_BUFFERS];
  int64_t elem_bytes[KVC_ENC_NUM_BUFFERS];
} kvc_encoded_host_form;

/* Packs heads[0 .. batch*hkv) (pointers may repeat: each row still gets its own copy) into the
 * device form on the host. Same requirements and errors as kvc_cuda_encoded_upload. */
int kvc_encoded_pack(const kvc_codec_head *const *heads, int64_t batch, int64_t hkv,
                     kvc_encoded_host_form *out, const char **err);
void kvc_encoded_host_free(kvc_encoded_host_form *f);

/* Packs heads[0 .. batch*hkv) (pointers may repeat: each row still gets its own copy) into the
 * device form and uploads it. Every head must have head_dim D, the key/value block sizes of the
 * kernel, block key grouping, max symbol < 2^16 and 11-bit LUTs. Returns 0, or -1 with
 * kvc_cuda_last_error()-style text in *err (a static buffer) for layout errors, or a CUDA
 * error. */
int kvc_cuda_encoded_upload(const kvc_codec_head *const *heads, int64_t batch, int64_t hkv,
                            kvc_cuda_encoded_cache *out, const char **err);
void kvc_cuda_encoded_free(kvc_cuda_encoded_cache *c);

typedef struct {
  int num_splits;
  size_t workspace_bytes, o_part_offset, ml_part_offset;
} kvc_encoded_plan;

/* num_splits = 0: the split count s <= tiles/2 (a tile = value_block tokens of the longest
 * row) that minimises waves(s)/s, waves = ceil(B*Hkv*s / resident_ctas). */
int kvc_cuda_encoded_make_plan(const kvc_encoded_kernel_config *cfg,
                               const kvc_cuda_encoded_cache *cache, int num_splits,
                               int resident_ctas, kvc_encoded_plan *out);

/* q: [B, Hkv*g, Sq, D] of the kernel's query type; out the same shape and type. */
int kvc_cuda_encoded_launch(kvc_cuda_function split, kvc_cuda_function merge,
                            const kvc_encoded_kernel_config *cfg,
                            const kvc_cuda_encoded_cache *cache, const kvc_encoded_plan *plan,
                            kvc_cuda_ptr q, kvc_cuda_ptr workspace, kvc_cuda_ptr out,
                            kvc_cuda_stream stream);

#ifdef __cplusplus
}
#endif

#endif
