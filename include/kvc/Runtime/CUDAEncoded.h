/*===- CUDAEncoded.h - KVComp-encoded caches on the GPU (C ABI) --------------===
 *
 * Host side of the encoded-cache decode kernels that convert-kvc-to-gpu emits for
 * kvc.attention over a !kvc.encoded_cache (kernel ABI and device layout:
 * include/kvc/Conversion/KVCToGPU/EncodedKernelGen.h). kvc_cuda_encoded_upload packs B*Hkv
 * codec heads (include/kvc/Runtime/Codec.h; row r = b*Hkv + kvh) into that device form; the
 * plan/launch pair runs split + merge. Kernel names carry the specialisation:
 *   <tag>_d<D>_g<g>_q<Sq>_<bf16|f16|f32>_kb<KB>_vb<VB>_u<U>_enc[_ms<bits>x<slots>]_split (and
 *   ..._merge; _ms..: the multi-symbol decoder, same ABI)
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

/* Device LUT entries (EncodedKernelGen.h, "lut"): bits(float(symbol)) | code length in the
 * low 6 bits (symbols < 2^16: their float has >= 7 zero low mantissa bits). A miss (a longer
 * code or the escape) is KVC_ENC_LUT_MISS, length field 63, so a group of >= 4 chained lookups
 * that meets one sums to more than the 64 window bits and fails its one length check. */
#define KVC_ENC_LUT_LEN_MASK 63u
#define KVC_ENC_LUT_MISS 63u

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

/* num_splits = 0: the smallest split count s <= min(tiles, 32 * resident_ctas / (B*Hkv)) (a
 * tile = value_block tokens of the longest row) that minimises waves(s)/s,
 * waves = ceil(B*Hkv*s / resident_ctas). */
int kvc_cuda_encoded_make_plan(const kvc_encoded_kernel_config *cfg,
                               const kvc_cuda_encoded_cache *cache, int num_splits,
                               int resident_ctas, kvc_encoded_plan *out);

/* q: [B, Hkv*g, Sq, D] of the kernel's query type; out the same shape and type. */
int kvc_cuda_encoded_launch(kvc_cuda_function split, kvc_cuda_function merge,
                            const kvc_encoded_kernel_config *cfg,
                            const kvc_cuda_encoded_cache *cache, const kvc_encoded_plan *plan,
                            kvc_cuda_ptr q, kvc_cuda_ptr workspace, kvc_cuda_ptr out,
                            kvc_cuda_stream stream);


/* ==== Appending tokens on the GPU (KVComp store kernels) ===================================
 *
 * Decoding appends one token (or a few) per step to every row. kvc_cuda_encoded_append keeps
 * the device form equal to what kvc_encoded_pack gives for the CPU codec heads after the same
 * appends (kvc_codec_head_append), with the codec's semantics: a stream (keys: KB, key_recent;
 * values: VB, value_recent) holds its unencoded tokens in the fp16 recent window; as soon as a
 * row has KB + key_recent unencoded keys, its oldest whole key blocks are encoded (so the
 * window holds fewer than key_recent + KB tokens after every append); values likewise.
 * Blocks are encoded by the store kernels (include/kvc/Conversion/KVCToGPU/StoreKernelGen.h)
 * with each stream's existing codebook (the codec builds a codebook once, from the first
 * blocks it encodes), bit-identically to the CPU codec.
 *
 * Device layout of an appendable cache (same buffers and kernel ABI as
 * kvc_cuda_encoded_upload; only where things sit differs, which the decode kernels read from
 * `rows`):
 *  - key block slots: row r's blocks at kblk0 = r * key_block_slots (capacity for its encoded
 *    blocks plus every block max_new_tokens can cut); values likewise;
 *  - kw / vw: the uploaded words first (same order as kvc_encoded_pack), then a zeroed reserve
 *    for the new blocks, allocated by the store kernels' atomic `top` (blocks of one launch
 *    land in no fixed order; the decoder reads only kbo/vbo);
 *  - krec / vrec: row r owns tokens [r*S, (r+1)*S) of the window buffer (S = P + max_new_tokens,
 *    P = the largest unencoded count of any row at upload); its initial window ends at r*S + P,
 *    so after a appended tokens every row writes its next token at r*S + P + a (one stride for
 *    all rows). Encoding a block advances krec0 by KB*D instead of moving the window;
 *  - rows: because every row receives the same number of tokens per call, the row table after
 *    `a` appended tokens is a function of `a` alone (T = T0 + a; NKt, krec0 by the codec's
 *    cut rule). All max_new_tokens + 1 tables (R*8 int32 each) are built at upload and kept
 *    on the device; an append of n tokens copies table `a + n` into `rows` (one stream-ordered
 *    device copy).
 *  - the store jobs (every block that can be cut, with its source = the window's oldest
 *    token, its global block index and its row's encode table) are built and uploaded once,
 *    sorted by the token count at which they fall due, so an append launches a contiguous range
 *    of them: at most one key launch and one value launch per call, for all rows together.
 *
 * Limits: the store kernels must be the fp16-source, key-block-grouped pair for the cache's
 * D/KB/VB (`<prefix>_d<D>_kb<KB>_vb<VB>_f16_kblk_{kstore,vstore}`); all rows must share the
 * key error bound and the value error bound (the kernels take them per launch); a stream that
 * has no codebook yet (its prefill encoded no block) cannot get a block on the GPU: the
 * append that would need one fails (building a codebook needs the CPU codec). New tokens are
 * fp16 (the cache's own form; rounding other types to fp16 is the caller's). Non-finite
 * values are detected when their block is encoded (store status 1), not while they sit in the
 * fp16 window (the CPU codec rejects them at append time). */

/* The encode table of one stream for the store kernels (StoreKernelGen.h): out[2s], out[2s+1] =
 * (code, length) for each symbol s in 0..max_symbol; symbols without a code (and past the coded
 * ones) get (escape_code << raw_bits | s, escape_length + raw_bits). out holds
 * 2 * (max_symbol + 1) int32; *max_bits (if non-null) gets the longest entry. */
void kvc_encoded_encode_table(const kvc_codec_huffman_tables *t, int32_t *out, uint32_t *max_bits);

/* A store kernel pair: grid (jobs), block (threads). */
typedef struct {
  kvc_cuda_function kstore, vstore;
  int kthreads, vthreads; /* threads per CTA (the PTX's .maxntid) */
  int64_t head_dim, key_block, value_block;
} kvc_encoded_store_kernels;

/* Finds `*_d<D>_kb<KB>_vb<VB>_f16_kblk_kstore` / `_vstore` among the `.entry`s of `ptx` (the
 * text module `m` was loaded from) and reads their threads per CTA from `.maxntid`. Returns 0,
 * or -1 with a message in *err. */
int kvc_cuda_encoded_store_kernels_find(kvc_cuda_module m, const char *ptx, int64_t head_dim,
                                        int64_t key_block, int64_t value_block,
                                        kvc_encoded_store_kernels *out, const char **err);

typedef struct kvc_cuda_encoded_appender kvc_cuda_encoded_appender;

typedef struct {
  /* Words reserved per block to encode, 0 = the worst case of each stream's code (every symbol
   * at the longest code or escape length: store status 2 cannot occur, unless blocks of a call
   * that failed in checked mode are encoded again by a later call). A smaller value saves
   * memory; when a launch runs out, append grows the word buffer (checked mode only). */
  int64_t words_per_key_block, words_per_value_block;
} kvc_encoded_reserve_options;

/* Like kvc_cuda_encoded_upload, laid out for max_new_tokens more tokens per row (see above),
 * plus the appender that kvc_cuda_encoded_append needs (*app; free it with
 * kvc_cuda_encoded_appender_free, the cache with kvc_cuda_encoded_free as usual). opts may be
 * NULL. Errors: -1 with text in *err (layout, limits, rows with different error bounds), or a
 * CUDA error. */
int kvc_cuda_encoded_upload_appendable(const kvc_codec_head *const *heads, int64_t batch,
                                       int64_t hkv, int64_t max_new_tokens,
                                       const kvc_encoded_reserve_options *opts,
                                       kvc_cuda_encoded_cache *out,
                                       kvc_cuda_encoded_appender **app, const char **err);

enum {
  /* Synchronize the stream after the store launches of this call and check their statuses:
   * the call then returns the store kernels' errors itself (and grows the word buffers on
   * status 2). Without it nothing synchronizes; statuses are read by
   * kvc_cuda_encoded_append_status. */
  KVC_ENC_APPEND_CHECK = 1
};

/* Appends n tokens to every row: k_new, v_new [B, Hkv, n, D] fp16 on the device (row
 * r = b*Hkv + kvh holds its n tokens contiguously at element r*n*D). Stream-ordered: copies
 * the tokens into the windows (one strided cuMemcpy2DAsync per stream, resolved from the
 * loaded libcuda.so.1; one copy per row and stream where that is unavailable or the
 * environment sets KVC_APPEND_ROW_COPIES), launches the store
 * kernels for the blocks that fall due (one launch per stream at most, all rows), then
 * copies the row table for the new token count into `rows`. Updates cache->max_tokens,
 * cache->tokens (and cache->buf/len[KW or VW] if a word buffer grows). Errors (-1 and *err):
 * n beyond the reserved tokens, a block due for a stream without a codebook, store kernels
 * that do not fit the cache; with KVC_ENC_APPEND_CHECK also non-finite input in an encoded
 * block (store status 1). On those errors the row table is not advanced: the decoder sees
 * the cache as before the call. CUDA errors leave the cache undefined. */
int kvc_cuda_encoded_append(kvc_cuda_encoded_appender *app, kvc_cuda_encoded_cache *cache,
                            const kvc_encoded_store_kernels *sk, kvc_cuda_ptr k_new,
                            kvc_cuda_ptr v_new, int64_t n, kvc_cuda_stream stream, int flags,
                            const char **err);

/* The two halves of kvc_cuda_encoded_append around its copies and launches, for callers that
 * queue those themselves (code compiled by convert-kvc-to-gpu copies the new tokens into the
 * windows and launches the store kernels from IR):
 *  - prepare checks an append of n tokens (the same errors as kvc_cuda_encoded_append) and
 *    says, per stream (0 keys, 1 values), where the tokens go and which store jobs are due;
 *  - the caller copies row r's n tokens (fp16) to element window_offset + r*window_stride of
 *    krec/vrec and launches the stream's store kernel on the due jobs, grid (num_jobs), with
 *    the launch arguments below;
 *  - commit (same n) synchronizes `stream`, checks the due jobs' statuses (a failing block is
 *    an error; there is no re-run, so status 2 needs the default worst-case word reserve) and
 *    advances the row table. */
typedef struct {
  int64_t window_offset;  /* elements: row 0's first new token in krec / vrec */
  int64_t window_stride;  /* elements between consecutive rows' windows */
  kvc_cuda_ptr jobs, res; /* the due jobs (4 int32 each) and their result slots (4 int32) */
  int64_t num_jobs;
  kvc_cuda_ptr enc, top;  /* encode tables; the word allocator (1 int32) */
  int64_t enc_len;        /* int32 elements of enc */
  int64_t word_capacity;  /* int32 elements of kw / vw (the store kernels' %cap) */
  float eps;              /* the stream's relative error bound */
  int32_t max_symbol;
} kvc_encoded_append_stream;

int kvc_cuda_encoded_append_prepare(kvc_cuda_encoded_appender *app,
                                    const kvc_cuda_encoded_cache *cache, int64_t n,
                                    kvc_encoded_append_stream out[2], const char **err);
/* Launches stream st's store kernel f (0 keys, 1 values; `threads` per CTA) on s->num_jobs jobs,
 * grid (s->num_jobs), with the cache's buffers and the arguments in `s` (the StoreKernelGen.h
 * ABI). */
int kvc_cuda_encoded_store_launch(kvc_cuda_function f, int threads,
                                  const kvc_cuda_encoded_cache *cache, int st,
                                  const kvc_encoded_append_stream *s, kvc_cuda_stream stream);
int kvc_cuda_encoded_append_commit(kvc_cuda_encoded_appender *app, kvc_cuda_encoded_cache *cache,
                                   int64_t n, kvc_cuda_stream stream, const char **err);

/* Synchronizes `stream` and checks the statuses of every store job launched so far. Returns 0,
 * or -1 with the first failing job in *err (after an unchecked failure the cache is
 * undefined: rebuild it). */
int kvc_cuda_encoded_append_status(kvc_cuda_encoded_appender *app, kvc_cuda_stream stream,
                                   const char **err);

/* Tokens appended so far and still available; key/value blocks encoded on the GPU so far. */
typedef struct {
  int64_t appended, remaining, key_blocks_stored, value_blocks_stored;
  int64_t key_launches, value_launches, word_buffer_grows;
  int64_t window_copies;  /* device copies issued for the windows (2 per call with
                             cuMemcpy2DAsync, 2*B*Hkv per call row by row) */
  uint64_t reserve_bytes; /* device bytes of the appender (row tables, jobs, statuses, tables) */
} kvc_encoded_append_info;
void kvc_cuda_encoded_append_info(const kvc_cuda_encoded_appender *app,
                                  kvc_encoded_append_info *out);

void kvc_cuda_encoded_appender_free(kvc_cuda_encoded_appender *app);

#ifdef __cplusplus
}
#endif

#endif
