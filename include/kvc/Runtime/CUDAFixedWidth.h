/*===- CUDAFixedWidth.h - fixed-width (entropy = none) KVComp caches on the GPU (C ABI) -===
 *
 * Host side of the fixed-width decode kernels that convert-kvc-to-gpu emits for kvc.attention
 * over a !kvc.encoded_cache whose codec is error-bounded and not entropy-coded (`bits = 0`,
 * `entropy = none`, key_group = block, value_group = token). The quantization is KVComp's (one
 * (min, step) per key block, one per value token); the symbols are stored at fixed widths,
 * 5 bits for keys and 4 for values, in the register order of the tensor-core fragments
 * (mma.sync m16n8k16) that decode them, so each lane loads exactly its own words and turns
 * two nibbles into a bf16x2/f16x2 pair with one lop3 (docs/gpu.md, "Fixed-width caches").
 *
 * kvc_fw_pack builds the device form from B*Hkv codec heads (include/kvc/Runtime/Codec.h; row
 * r = b*Hkv + kvh) on the host; kvc_cuda_fw_upload copies it to the GPU; plan/launch run
 * split + merge. Kernel names carry the specialisation:
 *   <tag>_d<D>_g<g>_q<Sq>_<bf16|f16>_kb<KB>_fw_split   (and ..._fw_merge), or
 *   <tag>_d<D>_g<g>_q<Sq>_<bf16|f16>_kb<KB>_fw_fm_split (the merge fused into the split kernel)
 *
 * ---- Device form ---------------------------------------------------------------------------
 * A tile is 128 tokens; the split kernel runs 4 warps of 32 lanes, warp w owning tokens
 * [32w, 32w + 32) of every tile. Per row r with T tokens:
 *  - the code part: tokens [0, Tf), Tf = floor(min(nk, nv) / 128) * 128, where nk, nv are the
 *    tokens the codec encoded in each stream (a multiple of 128: whole tiles only);
 *  - the window: tokens [Tf, T) in fp16, the codec's decoded values (kvc_codec_head_decode)
 *    rounded to fp16. Tokens the codec keeps in its recent window are exact; tokens the codec
 *    encoded but that fall past Tf hold their dequantized value rounded to fp16.
 * Buffers, in kernel parameter order after the query:
 *  rows  i32 [R*4]: (T, Tf, tile_base, window_base) per row. tile_base = sum of Tf/128 over
 *        the rows before; window_base = sum of (T - Tf) over the rows before.
 *  kw    i32: key words. For global tile G = tile_base + t, warp w, lane l, word j in
 *        [0, 4*KU4): kw[((G*4 + w)*KU4 + j/4)*128 + 4*l + j%4], KU4 = ceil((D/8 + D/32) / 4)
 *        (a warp's 16-byte loads of one j/4 are contiguous). Word j < D/8 holds the low 4 bits
 *        of fragment j = kk*2 + mt (kk in [0, D/16): channels 16kk..; mt in {0,1}: tokens
 *        32w + 16mt..); word D/8 + p holds the 5th bits of fragments 4p..4p+3; the rest is 0.
 *  vw    i32: value words, vw[((G*4 + w)*VU4 + j/4)*128 + 4*l + j%4], VU4 = D/32, word j in
 *        [0, D/8) = fragment j = kk*(D/16) + mt (kk in {0,1}: tokens 32w + 16kk..; mt in
 *        [0, D/16): channels 16mt..).
 *  kmin, kstep  f32 per key block: index (tile_base*128 + token) / KB for code token `token`
 *        of the row (KB in {32, 64, 128}).
 *  vmin, vstep  f32 per code token: index tile_base*128 + token.
 *  krec, vrec   f16 [window_base + i][D] for window token Tf + i.
 * Fragment elements (PTX m16n8k16 A layout): lane l (gid = l/4, tg = l%4), register i in 0..3,
 * half h in {0,1} is element (row = gid + 8*(i%2), col = 2*tg + h + 8*(i/2)) of the 16x16 A
 * tile. Keys: A = K (row = token 32w + 16mt + row, col = channel 16kk + col). Values: A = V^T
 * (row = channel 16mt + row, col = token 32w + 16kk + col). A nibble word holds element (i, 0)
 * in bits [4i, 4i+4) and (i, 1) in bits [16+4i, 16+4i+4); a key plane word holds bit 4 of
 * element (i, 0) of fragment 4p+f at bit 4f+i and of (i, 1) at bit 16+4f+i.
 * Splits (grid (S, Hkv, B), 128 threads): per row, tiles = ceil(T/128), code tiles
 * F = Tf/128, window tiles W = tiles - F. If S > W, splits s < S - W cut the code tiles into
 * contiguous ranges of ceil(F / (S - W)) and split S - W + i takes window tile F + i; else
 * split s takes tiles [s*p, min(tiles, (s+1)*p)), p = ceil(tiles / S). Workspace (the merge's
 * input, as for the dense and encoded kernels): o_part[(q*S + s)*D + c], ml[(q*S + s)*2 +
 * {0,1}] = (running max in the log2 domain, sum), q = row*g*Sq + query row.
 * Symbol limits: keys <= 31, values <= 15 (the codec's max symbol is round(1/eps): K eps
 * > 1/31.5 = 0.03175, V eps > 1/15.5 = 0.06452); kvc_fw_pack fails otherwise.
 *===------------------------------------------------------------------------------------===*/
#ifndef KVC_RUNTIME_CUDAFIXEDWIDTH_H
#define KVC_RUNTIME_CUDAFIXEDWIDTH_H

#include "kvc/Runtime/CUDA.h"
#include "kvc/Runtime/Codec.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KVC_FW_TILE 128
#define KVC_FW_WARPS 4
#define KVC_FW_THREADS 128
#define KVC_FW_KEY_MAX_SYMBOL 31
#define KVC_FW_VALUE_MAX_SYMBOL 15

typedef struct {
  int head_dim, group, query_seq, key_block;
  int query_type; /* 0 bf16, 1 f16 */
  int query_bytes;
  int fused_merge; /* 1: a _fw_fm split kernel (no merge kernel; the last CTA of a row merges) */
} kvc_fw_kernel_config;

/* Parses a fixed-width split or merge kernel name; returns 0 on success. */
int kvc_cuda_fw_parse_name(const char *name, kvc_fw_kernel_config *out);

/* The device buffers of the kernel ABI, in parameter order (after the query). */
enum {
  KVC_FW_ROWS = 0, KVC_FW_KW, KVC_FW_VW, KVC_FW_KMIN, KVC_FW_KSTEP, KVC_FW_VMIN, KVC_FW_VSTEP,
  KVC_FW_KREC, KVC_FW_VREC, KVC_FW_NUM_BUFFERS
};

/* Words per lane per tile: keys 4*KU4, values 4*VU4 (see the layout above). */
static inline int kvc_fw_key_u4(int head_dim) { return (head_dim / 8 + head_dim / 32 + 3) / 4; }
static inline int kvc_fw_value_u4(int head_dim) { return head_dim / 32; }

/* The device form on the host (no CUDA needed). data[i] holds len[i] elements of
 * elem_bytes[i] bytes (malloc'd; kvc_fw_host_free). */
typedef struct {
  int64_t batch, hkv, head_dim, key_block, max_tokens;
  int64_t max_code_tiles;   /* largest Tf/128 of any row */
  int64_t max_window_tiles; /* largest ceil(T/128) - Tf/128 of any row */
  uint64_t tokens;          /* sum of the rows' tokens */
  uint64_t code_tokens;     /* sum of the rows' Tf */
  void *data[KVC_FW_NUM_BUFFERS];
  int64_t len[KVC_FW_NUM_BUFFERS];
  int64_t elem_bytes[KVC_FW_NUM_BUFFERS];
} kvc_fw_host_form;

/* Packs heads[0 .. batch*hkv) (pointers may repeat) into the device form. Every head must be
 * an error-bounded codec head with block key groups, head_dim D (a multiple of 32, <= 256),
 * the same key block (32, 64 or 128) and symbols within the limits above. Returns 0, or -1
 * with a message in *err (thread-local storage, valid until the next call). */
int kvc_fw_pack(const kvc_codec_head *const *heads, int64_t batch, int64_t hkv,
                kvc_fw_host_form *out, const char **err);
void kvc_fw_host_free(kvc_fw_host_form *f);

/* The inverse of the packing, on the host (tests): row r's keys and values as float
 * [T x D] (T = rows[4r]), code tokens dequantized as min + symbol * step in f32, window
 * tokens from fp16. Returns 0, or -1 with *err. */
int kvc_fw_unpack_row(const kvc_fw_host_form *f, int64_t row, float *k_out, float *v_out,
                      const char **err);

typedef struct {
  int64_t batch, hkv, head_dim, key_block, max_tokens, max_code_tiles, max_window_tiles;
  kvc_cuda_ptr buf[KVC_FW_NUM_BUFFERS];
  int64_t len[KVC_FW_NUM_BUFFERS];
  int64_t elem_bytes[KVC_FW_NUM_BUFFERS];
  uint64_t device_bytes; /* all buffers: what one decode step reads */
  uint64_t tokens, code_tokens;
} kvc_cuda_fw_cache;

int kvc_cuda_fw_upload(const kvc_codec_head *const *heads, int64_t batch, int64_t hkv,
                       kvc_cuda_fw_cache *out, const char **err);
int kvc_cuda_fw_upload_form(const kvc_fw_host_form *form, kvc_cuda_fw_cache *out,
                            const char **err);
void kvc_cuda_fw_free(kvc_cuda_fw_cache *c);

typedef struct {
  int num_splits;
  size_t workspace_bytes, o_part_offset, ml_part_offset;
  size_t counters_offset; /* fused merge: one i32 arrival counter per row, zeroed once
                             (kvc_cuda_fw_init_workspace); the kernel resets it after use */
} kvc_fw_plan;

/* num_splits > 0 is used as given. 0: the encoded plan's rule (kvc_cuda_encoded_make_plan)
 * over the longest row's code tiles, plus one split per window tile (max_window_tiles): the
 * kernel gives each window tile a split of its own when the count allows. */
int kvc_cuda_fw_make_plan(const kvc_fw_kernel_config *cfg, const kvc_cuda_fw_cache *cache,
                          int num_splits, int resident_ctas, kvc_fw_plan *out);

/* Zeroes the fused merge's counters of a new workspace (nothing for split + merge kernels). */
int kvc_cuda_fw_init_workspace(const kvc_fw_kernel_config *cfg, const kvc_fw_plan *plan,
                               kvc_cuda_ptr ws, kvc_cuda_stream stream);

/* q: [B, Hkv*g, Sq, D] of the kernel's query type; out the same shape and type. With a fused
 * merge (cfg->fused_merge), `merge` is not used (may be NULL). */
int kvc_cuda_fw_launch(kvc_cuda_function split, kvc_cuda_function merge,
                       const kvc_fw_kernel_config *cfg, const kvc_cuda_fw_cache *cache,
                       const kvc_fw_plan *plan, kvc_cuda_ptr q, kvc_cuda_ptr workspace,
                       kvc_cuda_ptr out, kvc_cuda_stream stream);

/* ==== Appending tokens (host-assisted) ======================================================
 *
 * A decode step appends n tokens to every row. kvc_fw_appender keeps the device form equal to
 * what kvc_fw_pack gives for the rows' codec heads after the same appends (kvc_codec_head_append),
 * without re-packing: it holds a copy of every row's codec head (the codec decides which
 * blocks to encode and their (min, step)), the symbols of the encoded tokens past Tf and the
 * fp16 bits of the unencoded ones, and re-quantizes only the tokens the codec newly encoded
 * (its own quantizer, so the symbols are the codec's). New code tiles, their parameters, the
 * changed window tokens and the row table are written into a host mirror of the device form
 * and, with kvc_cuda_fw_append, copied to the device as per-row spans.
 *
 * Layout with room for max_new_tokens per row: row r's tiles start at r * tile_capacity; its
 * window tokens sit in [r * window_capacity, (r + 1) * window_capacity), placed so that every
 * row's window at creation ends at the same offset P (the longest window then): the a-th
 * appended token of every row lands at r * window_capacity + P + a (one strided copy for all
 * rows). Rows' window_base moves with Tf; the tokens stay where they are. Tiles past Tf that
 * the codec already encoded in part hold those symbols and parameters from the start (the GPU
 * store kernels below write only the blocks they encode). Here appends are host work: the CPU
 * codec encodes each new block and the new tokens come from host memory (fp16 bits); the GPU
 * path (store kernels) follows below. */
typedef struct kvc_fw_appender kvc_fw_appender;

/* Builds the appendable host form of heads[0 .. batch*hkv) (copied) with room for
 * max_new_tokens tokens per row. The same requirements and errors as kvc_fw_pack. */
int kvc_fw_appender_create(const kvc_codec_head *const *heads, int64_t batch, int64_t hkv,
                           int64_t max_new_tokens, kvc_fw_appender **out, const char **err);
/* Appends n tokens to every row: k, v [batch*hkv][n][head_dim] fp16 bits. Updates the host
 * form. Refuses (appender still usable) past max_new_tokens and non-finite tokens; a codec
 * failure leaves it unusable. kvc_fw_appender_create refuses error bounds whose symbols the
 * fixed widths cannot hold when max_new_tokens > 0. */
int kvc_fw_appender_append(kvc_fw_appender *a, const uint16_t *k, const uint16_t *v, int64_t n,
                           const char **err);
/* The host form (the device form's mirror); valid until the appender is freed. */
const kvc_fw_host_form *kvc_fw_appender_form(const kvc_fw_appender *a);
/* What the last append changed: element range [*lo, *hi) of buffer *buffer for change i;
 * returns the number of changes (what kvc_cuda_fw_append copies to the device). */
int64_t kvc_fw_appender_changes(const kvc_fw_appender *a, int64_t i, int *buffer, int64_t *lo,
                                int64_t *hi);
void kvc_fw_appender_free(kvc_fw_appender *a);

/* Upload of an appender's form, and kvc_fw_appender_append plus the copies of what changed
 * (new tiles and parameters, changed window tokens, the row table) to that cache. */
int kvc_cuda_fw_upload_appendable(const kvc_fw_appender *a, kvc_cuda_fw_cache *out,
                                  const char **err);
int kvc_cuda_fw_append(kvc_fw_appender *a, kvc_cuda_fw_cache *c, const uint16_t *k,
                       const uint16_t *v, int64_t n, const char **err);

/* ==== Appending tokens on the GPU (store kernels) ===========================================
 *
 * The same appends without the host codec: new tokens (fp16, on the device) are copied into
 * the rows' windows, and the store kernels (kvc-bench store gen --fixed-width D,KB;
 * StoreKernelGen.h) quantize the blocks the codec's cut rule makes due (keys: a key block per
 * CTA, one (min, step); values: 16 tokens per CTA, one per token) in place: their symbols go
 * into the reserved code tiles, their parameters next to them, their dequantized fp16 values
 * into the window. When both streams have encoded a whole tile, the row table's Tf moves past
 * it. The cut rule depends on token counts only, so every store job (source, destination,
 * error bound) and the row table after every count are built at creation and uploaded; an
 * append is one launch that copies both streams' new tokens and the row table, and, when
 * blocks fall due, one store launch per stream (all rows at once).
 * The device form after an append equals, in every part the decode kernels read (the row
 * table, code tiles and parameters below Tf, the windows [Tf, T)), the host appender's after
 * the same tokens, and so kvc_fw_pack of the codec heads.
 *
 * Non-finite tokens: the CPU codec refuses them when appended; here they wait in the window
 * (attention reads them) until their block is encoded, whose store job then reports status 1
 * and writes nothing (checked with KVC_FW_APPEND_CHECK, or later by
 * kvc_cuda_fw_gpu_append_status; unchecked, the row table moves on and the cache is undefined
 * from there). Memory besides the cache: the row tables, 16 * rows bytes per reserved token
 * (8 MB for 256 rows and 2048 tokens), and 32 bytes per store job. */
#define KVC_FW_STORE_THREADS 256
#define KVC_FW_APPEND_CHECK 1

typedef struct {
  kvc_cuda_function kstore, vstore, tokens; /* tokens: the new tokens (and row table) copy */
  int64_t head_dim, key_block;
} kvc_fw_store_kernels;

/* The kernels *_d<D>_kb<KB>_fw_{kstore,vstore,tokens} among the .entry names of `ptx` (loaded
 * as `m`). */
int kvc_cuda_fw_store_kernels_find(kvc_cuda_module m, const char *ptx, int64_t D, int64_t KB,
                                   kvc_fw_store_kernels *out, const char **err);

typedef struct kvc_fw_gpu_appender kvc_fw_gpu_appender;

/* From a fresh host appender (nothing appended; it may be freed afterwards) and the cache
 * kvc_cuda_fw_upload_appendable made of it. Refuses value blocks that are not a multiple of
 * 16 tokens. */
int kvc_cuda_fw_gpu_appender_create(const kvc_fw_appender *a, const kvc_cuda_fw_cache *c,
                                    kvc_fw_gpu_appender **out, const char **err);
/* Appends n tokens to every row: k_new, v_new are [batch*hkv][n][head_dim] fp16 on the device.
 * Everything is enqueued on `stream` (decode launches enqueued before on it read the previous
 * state; other streams must be ordered by the caller). flags KVC_FW_APPEND_CHECK: synchronise
 * after the store launches and check their statuses (a failure names the row and tokens and
 * leaves the row table before the call, though the jobs that succeeded have rewritten their
 * window tokens with their dequantized values; the appender is unusable afterwards). Updates
 * the cache's token counts (for kvc_cuda_fw_make_plan). After any failure the appender is
 * unusable, and after a failed launch in an unchecked append the cache is undefined (its row
 * table may already describe the new tokens). */
int kvc_cuda_fw_gpu_append(kvc_fw_gpu_appender *g, kvc_cuda_fw_cache *c,
                           const kvc_fw_store_kernels *sk, kvc_cuda_ptr k_new,
                           kvc_cuda_ptr v_new, int64_t n, kvc_cuda_stream stream, int flags,
                           const char **err);
/* The two halves of kvc_cuda_fw_gpu_append, for callers that copy the tokens and launch the
 * store kernels themselves (code compiled by convert-kvc-to-gpu): prepare checks an append of
 * n tokens and says where the a-th new token of row r goes (element window_offset +
 * r * window_stride + t * D of krec/vrec, t < n) and which jobs fall due (per stream: the
 * device job range, its status array, the count; the kernels take them as %jobs and %res).
 * commit (after those copies and launches on `stream`) does the rest: statuses when
 * KVC_FW_APPEND_CHECK, the row table, the cache's counts. */
typedef struct {
  int64_t window_offset, window_stride;
  kvc_cuda_ptr jobs[2], res[2];
  int64_t num_jobs[2];
} kvc_fw_gpu_append_plan;
int kvc_cuda_fw_gpu_append_prepare(kvc_fw_gpu_appender *g, const kvc_cuda_fw_cache *c,
                                   int64_t n, kvc_fw_gpu_append_plan *out, const char **err);
int kvc_cuda_fw_gpu_append_commit(kvc_fw_gpu_appender *g, kvc_cuda_fw_cache *c, int64_t n,
                                  kvc_cuda_stream stream, int flags, const char **err);
/* Synchronises and checks the statuses of every store job launched so far. */
int kvc_cuda_fw_gpu_append_status(kvc_fw_gpu_appender *g, const char **err);
int64_t kvc_fw_gpu_appender_appended(const kvc_fw_gpu_appender *g);
/* Store jobs launched so far per stream (key blocks; 16-token value groups). */
void kvc_fw_gpu_appender_jobs(const kvc_fw_gpu_appender *g, int64_t *key_jobs,
                              int64_t *value_jobs);
void kvc_fw_gpu_appender_free(kvc_fw_gpu_appender *g);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KVC_RUNTIME_CUDAFIXEDWIDTH_H */
