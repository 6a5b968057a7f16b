/*===- kvc/Runtime/CompilerABI.h - functions compiled kvc code calls -------===*
 *
 * convert-kvc-to-linalg lowers kvc.compress to calls of these functions (declared with
 * llvm.emit_c_interface, so MLIR passes memrefs as pointers to descriptors and calls the
 * `_mlir_ciface_` symbols). They wrap the compression library (Compress.h).
 *
 * Sequence, per kvc.compress op:
 *   h = kvc_rt_compress_begin(method, ratio, budget, budget_mode, sinks, recent, n_layers)
 *   kvc_rt_compress_add(h, layer, K[B,Hkv,S,D], V[B,Hkv,S,Dv], Q[B,Hq,M,D])   per layer (copies)
 *   kvc_rt_compress_run(h)
 *   kvc_rt_compress_get(h, layer, K'[B,Hkv,S,D], V'[B,Hkv,S,Dv], len[B,Hkv])   per layer
 *   kvc_rt_compress_end(h)
 *
 * Budget per (layer, b, KV head): ratio > 0 -> round(ratio * S), else `budget`; clamped to
 * [min(S, sinks + recent), S]. budget_mode 1 (pilot) keeps the sum of those budgets and
 * redistributes it with kvc_compress_pilot. Query heads h*g .. h*g+g-1 train KV head h.
 * Compiled code cannot recover from a failure: errors print the library's message to stderr
 * and exit(1).
 *===----------------------------------------------------------------------===*/
#ifndef KVC_RUNTIME_COMPILERABI_H
#define KVC_RUNTIME_COMPILERABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* MLIR's ranked memref descriptor (see mlir/ExecutionEngine/CRunnerUtils.h). */
typedef struct {
  float *allocated, *aligned;
  int64_t offset, sizes[4], strides[4];
} kvc_memref_f32_4d;
typedef struct {
  int64_t *allocated, *aligned;
  int64_t offset, sizes[2], strides[2];
} kvc_memref_i64_2d;
typedef struct {
  int64_t *allocated, *aligned;
  int64_t offset, sizes[3], strides[3];
} kvc_memref_i64_3d;
typedef struct {
  float *allocated, *aligned;
  int64_t offset, sizes[1], strides[1];
} kvc_memref_f32_1d;
typedef struct {
  float *allocated, *aligned;
  int64_t offset, sizes[3], strides[3];
} kvc_memref_f32_3d;

int64_t _mlir_ciface_kvc_rt_compress_begin(int64_t method, double ratio, int64_t budget,
                                           int64_t budget_mode, int64_t sinks, int64_t recent,
                                           int64_t n_layers);
void _mlir_ciface_kvc_rt_compress_add(int64_t handle, int64_t layer, kvc_memref_f32_4d *keys,
                                      kvc_memref_f32_4d *values, kvc_memref_f32_4d *queries);
void _mlir_ciface_kvc_rt_compress_run(int64_t handle);
void _mlir_ciface_kvc_rt_compress_get(int64_t handle, int64_t layer, kvc_memref_f32_4d *keys,
                                      kvc_memref_f32_4d *values, kvc_memref_i64_2d *lengths);
void _mlir_ciface_kvc_rt_compress_end(int64_t handle);

/* Encoded caches (kvc.encode and the ops on !kvc.encoded_cache). A handle owns one codec head
 * per (batch, KV head) row; it lives until process exit (kvc's IR has no cache lifetime end
 * yet). Appends update the handle in place and return it: the lowering checks that an encoded
 * cache value is not read after it was appended to.
 *   codec: bits (0 = error-bounded KVComp, else KIVI width), key_group (0 block, 2 channel),
 *   key_block, key_error, value_block, value_error, entropy (0 none, 1 huffman), recent_keys,
 *   recent_values. With entropy = none the CPU runtime still stores Huffman-coded blocks (the
 *   decoded values are identical; only the storage accounting differs); the GPU path's
 *   kvc_rt_gpu_encode_* builds the fixed-width form instead (CUDAFixedWidth.h). */
int64_t _mlir_ciface_kvc_rt_encode(int64_t bits, int64_t key_group, int64_t key_block,
                                   double key_error, int64_t value_block, double value_error,
                                   int64_t entropy, int64_t recent_keys, int64_t recent_values,
                                   kvc_memref_f32_4d *keys, kvc_memref_f32_4d *values,
                                   kvc_memref_i64_2d *lengths /* [0,0] for a dense cache */);
int64_t _mlir_ciface_kvc_rt_encoded_append(int64_t handle, kvc_memref_f32_4d *keys,
                                           kvc_memref_f32_4d *values);
int64_t kvc_rt_encoded_capacity(int64_t handle);
int64_t _mlir_ciface_kvc_rt_encoded_capacity(int64_t handle);
void _mlir_ciface_kvc_rt_encoded_decode(int64_t handle, kvc_memref_f32_4d *keys,
                                        kvc_memref_f32_4d *values);
void _mlir_ciface_kvc_rt_encoded_lengths(int64_t handle, kvc_memref_i64_2d *lengths);
/* kvc.vote: GVote (Vote.h) on every (batch, KV head) row of K[B,Hkv,S,D] with the current
 * queries Q[B,Hq,M,D], the hidden-state Gaussian (mean, var [d_model]) and W_q [Hq,D,d_model];
 * kept[B,Hkv,S] gets each row's kept indices (ascending, then -1), counts[B,Hkv] their number. */
void _mlir_ciface_kvc_rt_vote(double p, int64_t samples, int64_t seed, int64_t sinks,
                              int64_t recent, double rope_theta, int64_t n_future,
                              kvc_memref_f32_4d *keys, kvc_memref_f32_4d *queries,
                              kvc_memref_f32_1d *hidden_mean, kvc_memref_f32_1d *hidden_var,
                              kvc_memref_f32_3d *w_q, kvc_memref_i64_3d *kept,
                              kvc_memref_i64_2d *counts);

/* ==== Encoded caches on the GPU (convert-kvc-to-gpu) ======================================
 * In code compiled for the GPU an encoded cache is an i64 handle to a device-resident KVComp
 * cache laid out for appends (CUDAEncoded.h: kvc_cuda_encoded_upload_appendable) plus its
 * appender. Like the CPU handles above, appends update it in place and return it.
 *   - kvc_rt_gpu_encode_<t> (kvc.encode): keys/values [B, Hkv, S, D] of type t (f16, bf16,
 *     f32) in device or managed memory; each row is encoded on the host by the CPU codec
 *     (which builds the row's Huffman codebooks from it) and uploaded with room for
 *     max_new_tokens appended tokens per row.
 *   - kvc_rt_gpu_encoded_buffer_<t>(result, h, i): descriptor of device buffer i: 0..15 are the
 *     decode kernels' buffers (CUDAEncoded.h, KVC_ENC_*), 16 + 4*s + {0 jobs due, 1 their result
 *     slots, 2 encode tables, 3 word allocator} those of stream s's store kernel (0 keys,
 *     1 values) for the append begun last.
 *   - kvc_rt_gpu_encoded_append_begin(h, n, state[12]) checks an append of n tokens and
 *     writes, per stream s: state[s] window offset, state[2+s] window stride (elements),
 *     state[4+s] due jobs, state[6+s] word capacity, state[8+s] max symbol, state[10+s] the
 *     error bound's f32 bits. The compiled code then copies the tokens and launches the store
 *     kernels; kvc_rt_gpu_encoded_append_end(h, n) synchronizes, checks the store statuses and
 *     advances the row table.
 * Errors print a message and exit(1), as above. */
typedef struct {
  void *allocated, *aligned;
  int64_t offset, sizes[1], strides[1];
} kvc_memref_1d;
typedef struct {
  void *allocated, *aligned;
  int64_t offset, sizes[4], strides[4];
} kvc_memref_4d;
typedef struct kvc_codec_head kvc_codec_head;

/* For hosts that build the cache themselves (e.g. from CPU codec heads) and pass it to a
 * compiled function's !kvc.encoded_cache argument. Returns 0 and sets *handle, or -1 with a
 * message in *err. heads[b*hkv + h] is copied, not kept. */
int kvc_rt_gpu_encoded_create(const kvc_codec_head *const *heads, int64_t batch, int64_t hkv,
                              int64_t max_new_tokens, int64_t *handle, const char **err);
/* The same for an `entropy = none` cache argument: the fixed-width device form
 * (CUDAFixedWidth.h) with room for max_new_tokens appended tokens per row. */
int kvc_rt_gpu_fixed_width_create(const kvc_codec_head *const *heads, int64_t batch,
                                  int64_t hkv, int64_t max_new_tokens, int64_t *handle,
                                  const char **err);
void kvc_rt_gpu_encoded_destroy(int64_t handle);
/* Rows' token counts (tokens[b*hkv + h]); the device form's bytes. */
void kvc_rt_gpu_encoded_tokens(int64_t handle, int64_t *tokens);
uint64_t kvc_rt_gpu_encoded_device_bytes(int64_t handle);

int64_t _mlir_ciface_kvc_rt_gpu_encode_f16(int64_t bits, int64_t key_group, int64_t key_block,
                                           double key_error, int64_t value_block,
                                           double value_error, int64_t entropy,
                                           int64_t recent_keys, int64_t recent_values,
                                           int64_t max_new_tokens, kvc_memref_4d *keys,
                                           kvc_memref_4d *values, kvc_memref_i64_2d *lengths);
int64_t _mlir_ciface_kvc_rt_gpu_encode_bf16(int64_t bits, int64_t key_group, int64_t key_block,
                                            double key_error, int64_t value_block,
                                            double value_error, int64_t entropy,
                                            int64_t recent_keys, int64_t recent_values,
                                            int64_t max_new_tokens, kvc_memref_4d *keys,
                                            kvc_memref_4d *values, kvc_memref_i64_2d *lengths);
int64_t _mlir_ciface_kvc_rt_gpu_encode_f32(int64_t bits, int64_t key_group, int64_t key_block,
                                           double key_error, int64_t value_block,
                                           double value_error, int64_t entropy,
                                           int64_t recent_keys, int64_t recent_values,
                                           int64_t max_new_tokens, kvc_memref_4d *keys,
                                           kvc_memref_4d *values, kvc_memref_i64_2d *lengths);
void _mlir_ciface_kvc_rt_gpu_encoded_buffer_i32(kvc_memref_1d *result, int64_t handle,
                                                int64_t index);
void _mlir_ciface_kvc_rt_gpu_encoded_buffer_f32(kvc_memref_1d *result, int64_t handle,
                                                int64_t index);
void _mlir_ciface_kvc_rt_gpu_encoded_buffer_f16(kvc_memref_1d *result, int64_t handle,
                                                int64_t index);
/* The split count of a compiled encoded-cache decode op whose kernels are `name`_split/_merge
 * (NUL-terminated i8 memref): the runtime driver's plan (kvc_cuda_encoded_make_plan, or
 * kvc_cuda_fw_make_plan for fixed-width kernels and caches) at the split kernel's occupancy,
 * measured once, for the cache's current longest row. A bad name or
 * handle exits with status 1; a kernel that is not there, or a CUDA failure, with status 2. */
int64_t _mlir_ciface_kvc_rt_gpu_encoded_splits(kvc_memref_1d *name, int64_t handle);
void _mlir_ciface_kvc_rt_gpu_encoded_append_begin(int64_t handle, int64_t n, kvc_memref_1d *state);
void _mlir_ciface_kvc_rt_gpu_encoded_append_end(int64_t handle, int64_t n);
void _mlir_ciface_kvc_rt_gpu_encoded_lengths(int64_t handle, kvc_memref_i64_2d *lengths);
/* Exits with a message unless the op's batch and KV heads are the cache's and the handle holds
 * the device form the op's kernels read (fixed_width 1: CUDAFixedWidth.h, 0: Huffman-coded);
 * called before every launch on the cache's buffers. */
void _mlir_ciface_kvc_rt_gpu_encoded_check_rows(int64_t handle, int64_t batch, int64_t hkv,
                                                int64_t fixed_width);
/* kvc.cache.append on a fixed-width (entropy = none) cache, on the GPU (value blocks a multiple
 * of 16 tokens; CUDAFixedWidth.h, kvc_cuda_fw_gpu_append_prepare/_commit):
 *   - kvc_rt_gpu_fixed_width_append_begin(h, n, D, KB, state[4]) checks an append of n tokens
 *     (and that the compiled store kernels' D and key block are the cache's) and writes
 *     state[0] window offset, state[1] window stride (elements of krec/vrec), state[2], state[3]
 *     the key and value store jobs due. kvc_rt_gpu_encoded_buffer_i32(h, 9 + 2*s + {0 jobs,
 *     1 statuses}) gives stream s's for that append.
 *   - the compiled code copies the tokens into the windows (the window kernel, rounding to
 *     fp16) and launches the fixed-width store kernels;
 *   - kvc_rt_gpu_fixed_width_append_end(h, n) synchronizes, checks the store statuses and
 *     advances the row table. A non-finite token is caught when its block is encoded (up to
 *     recent + block appends later; it exits naming its row and tokens), not on arrival as on
 *     the CPU: until then it sits in the fp16 window and attention reads it. */
void _mlir_ciface_kvc_rt_gpu_fixed_width_append_begin(int64_t handle, int64_t n, int64_t D,
                                                      int64_t KB, kvc_memref_1d *state);
void _mlir_ciface_kvc_rt_gpu_fixed_width_append_end(int64_t handle, int64_t n);
/* The same with other value blocks: new tokens [B, Hkv, n, D] in device or managed memory,
 * appended through the handle's host-assisted appender (CUDAFixedWidth.h: the CPU codec
 * encodes the blocks that fall due; what changed is copied to the device). */
void _mlir_ciface_kvc_rt_gpu_fixed_width_append_f16(int64_t handle, kvc_memref_4d *keys,
                                                   kvc_memref_4d *values);
void _mlir_ciface_kvc_rt_gpu_fixed_width_append_bf16(int64_t handle, kvc_memref_4d *keys,
                                                    kvc_memref_4d *values);
void _mlir_ciface_kvc_rt_gpu_fixed_width_append_f32(int64_t handle, kvc_memref_4d *keys,
                                                   kvc_memref_4d *values);
/* Frees a handle kvc.encode made in a function that does not return it. */
void _mlir_ciface_kvc_rt_gpu_encoded_release(int64_t handle);

/* ==== Decode workspaces on the GPU (convert-kvc-to-gpu) ===================================
 * kvc_rt_gpu_workspace_<t>(result, slot, elems): a device buffer of at least `elems` elements of
 * t (f32 or i32) for slot 0..7, cached per thread and grown, never shrunk, so a decode step
 * allocates nothing once warm. The host code asks for the split kernels' partials (f32 slots 0
 * and 1) and the fused merge's arrival counters (i32 slot 0) before each decode op; ops share
 * the slots because each finishes its launches before the next starts. An i32 workspace is
 * zeroed when (re)allocated and must be left zero by its users.
 * kvc_rt_gpu_workspace_release() frees the calling thread's workspaces (they are also freed when
 * the thread exits). Errors print a message and exit: status 1 for a bad slot or size, 2
 * for a CUDA failure (as the mgpu* entry points). */
void _mlir_ciface_kvc_rt_gpu_workspace_f32(kvc_memref_1d *result, int64_t slot, int64_t elems);
void _mlir_ciface_kvc_rt_gpu_workspace_i32(kvc_memref_1d *result, int64_t slot, int64_t elems);
void kvc_rt_gpu_workspace_release(void);

/* kvc_rt_gpu_decode_splits(name, batch, hkv, skv): the split count of a compiled dense/ragged
 * decode op whose kernels are `name`_split (and _merge), NUL-terminated in an i8 memref: the
 * kernel is looked up in the program's GPU modules (those registered through libkvc_runtime's
 * mgpu* ABI), its occupancy measured once, and kvc_cuda_decode_make_plan (CUDADecode.h)
 * chooses, as on the AOT runtime path; ragged kernels are planned by the capacity skv (the AOT
 * path can pass the longest row). A bad name or shape exits with status 1; a kernel that is
 * not there, or a CUDA failure, with status 2, after a message. */
int64_t _mlir_ciface_kvc_rt_gpu_decode_splits(kvc_memref_1d *name, int64_t batch, int64_t hkv,
                                              int64_t skv);

/* Total stored bytes of all rows (bitstreams, offsets, quantization parameters, codebooks,
 * recent windows, headers) and the fp16 bytes of the same pairs. */
void kvc_rt_encoded_bytes(int64_t handle, uint64_t *stored, uint64_t *fp16);

#ifdef __cplusplus
}
#endif

#endif
