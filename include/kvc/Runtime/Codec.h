/* kvc KV-cache codec: KVComp-style error-bounded quantization + Huffman coding of one
 * (layer, KV head), with a KIVI-style fixed-width baseline. C ABI, usable from ctypes.
 *
 * Conventions
 *  - Every function that can fail returns int: 0 (KVC_CODEC_OK) or a kvc_codec_status code.
 *    The message of the last failure on the calling thread is kvc_codec_last_error().
 *  - Matrices are dense row-major float32: K and V are [tokens x head_dim], queries
 *    [num_queries x head_dim], scores and attention weights [num_queries x num_tokens].
 *  - The cache is an fp16 cache: inputs are rounded to fp16 (round-to-nearest-even) on store.
 *    Recent-window tokens are returned bit-exactly as fp16; encoded tokens satisfy the error
 *    bound documented in docs/codec.md section "Guarantees" with respect to the fp16 values.
 *  - Handles are not thread-safe for concurrent mutation; const functions may run concurrently.
 *
 * Format, guarantees and table layouts: docs/codec.md. */
#ifndef KVC_RUNTIME_CODEC_H
#define KVC_RUNTIME_CODEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVC_CODEC_API __attribute__((visibility("default")))

typedef enum kvc_codec_status {
  KVC_CODEC_OK = 0,
  KVC_CODEC_ERR_INVALID_ARGUMENT = 1, /* bad parameter, null pointer, bad shape */
  KVC_CODEC_ERR_NONFINITE_INPUT = 2,  /* NaN or +-Inf in K/V/q/p */
  KVC_CODEC_ERR_OUT_OF_RANGE = 3,     /* finite value that overflows fp16 (|x| >= 65520) */
  KVC_CODEC_ERR_CORRUPT = 4,          /* malformed serialized buffer or bitstream */
  KVC_CODEC_ERR_OUT_OF_MEMORY = 5,
  KVC_CODEC_ERR_BUFFER_TOO_SMALL = 6, /* serialize: capacity too small (size still reported) */
  KVC_CODEC_ERR_INTERNAL = 7
} kvc_codec_status;

/* Grouping of key quantization parameters inside a key block. */
typedef enum kvc_codec_key_grouping {
  KVC_CODEC_KEY_BLOCK = 0,  /* one (min, step) per block of tokens x all channels (KVComp) */
  KVC_CODEC_KEY_CHANNEL = 1 /* one (min, step) per channel per block (KIVI-style) */
} kvc_codec_key_grouping;

/* Which stream of a head: keys or values. */
typedef enum kvc_codec_stream_kind { KVC_CODEC_KEYS = 0, KVC_CODEC_VALUES = 1 } kvc_codec_stream_kind;

typedef struct kvc_codec_params {
  uint32_t head_dim;        /* d, 1..4096 */
  float key_error;          /* epsilon_K, relative to the group range, in [1e-4, 1] */
  float value_error;        /* epsilon_V, in [1e-4, 1] */
  uint32_t key_block_tokens;    /* tokens per key block (default 64) */
  uint32_t value_block_tokens;  /* tokens per value block (default 128) */
  uint32_t key_recent_tokens;   /* fp16 recent window for keys (default 128) */
  uint32_t value_recent_tokens; /* fp16 recent window for values (default 256) */
  uint32_t key_grouping;        /* kvc_codec_key_grouping (default KVC_CODEC_KEY_BLOCK) */
} kvc_codec_params;

/* Byte accounting of everything a head stores (= its serialized size). */
typedef struct kvc_codec_stats {
  uint64_t num_tokens;
  uint64_t head_dim;
  uint64_t key_encoded_tokens, value_encoded_tokens; /* in Huffman-coded blocks */
  uint64_t key_recent_tokens, value_recent_tokens;   /* held in fp16 */
  /* Stored bytes by kind; total_bytes is their sum and equals the serialized size. */
  uint64_t bitstream_bytes;   /* Huffman words of K and V blocks */
  uint64_t offset_bytes;      /* per-block word offsets + per-vector bit offsets */
  uint64_t quant_param_bytes; /* float32 mins and steps */
  uint64_t codebook_bytes;    /* code-length tables (decode tables are derived) */
  uint64_t recent_bytes;      /* fp16 recent windows */
  uint64_t header_bytes;      /* fixed header: magic, version, params, counts */
  uint64_t total_bytes;
  uint64_t fp16_bytes;        /* 2 * num_tokens * head_dim * 2 (K and V in fp16) */
  double bits_per_element;    /* 8 * total_bytes / (2 * num_tokens * head_dim) */
  double compression_ratio;   /* fp16_bytes / total_bytes */
  /* Quantization only vs with Huffman, for the encoded part. Fixed width is
   * ceil(log2(max_symbol + 1)) bits per symbol, max_symbol ~= round(1/epsilon) (see docs). */
  uint64_t key_fixed_width_bits, value_fixed_width_bits;     /* per symbol */
  uint64_t key_huffman_payload_bits, value_huffman_payload_bits; /* coded bits, no padding */
  uint64_t key_escape_count, value_escape_count;           /* symbols sent via escape */
  uint64_t quant_only_total_bytes;    /* fixed-width symbols + params + recent + header */
  double quant_only_compression_ratio; /* fp16_bytes / quant_only_total_bytes */
  double key_encoded_bits_per_element;   /* (bitstream+offsets+params+codebook) of K / encoded */
  double value_encoded_bits_per_element; /* same for V */
} kvc_codec_stats;

/* Canonical Huffman tables of one stream, in the layout the GPU kernels use.
 * Alphabet: symbols 0..num_coded_symbols-1, plus the escape at index escape_symbol
 * (== num_coded_symbols). A code is read MSB-first from the bitstream. After the escape
 * code comes the raw symbol in raw_bits bits (MSB-first). Pointers stay valid until the
 * head is freed or the next append that builds the codebook (built once, at the first
 * block). */
typedef struct kvc_codec_huffman_tables {
  uint32_t num_coded_symbols;
  uint32_t escape_symbol;
  uint32_t raw_bits;        /* width of an escaped raw symbol */
  uint32_t max_symbol;      /* largest symbol value a block may contain */
  uint32_t max_code_length; /* <= 16 */
  uint32_t lut_bits;        /* 11 */
  uint32_t num_codes;       /* symbols with a code (incl. escape) */
  const uint8_t* code_lengths;  /* [num_coded_symbols + 1]; 0 = no code (use escape) */
  const uint32_t* codes;        /* [num_coded_symbols + 1]; code value, right-aligned */
  const uint32_t* length_count; /* [17]: number of codes of each length */
  const uint32_t* first_code;   /* [17]: canonical first code of each length */
  const uint32_t* first_index;  /* [17]: index in sorted_symbols of that first code */
  const uint16_t* sorted_symbols; /* [num_codes]: symbols in canonical order */
  const uint32_t* lut;  /* [1 << lut_bits]: (length << 16) | symbol for codes of length
                           <= lut_bits indexed by the next lut_bits bits; 0 = longer code */
} kvc_codec_huffman_tables;

/* Zero-copy view of one encoded stream (keys or values) of a head. */
typedef struct kvc_codec_stream_view {
  uint32_t num_blocks;
  uint32_t block_tokens;
  uint32_t vectors_per_block;  /* K: block_tokens (rows); V: head_dim (columns) */
  uint32_t symbols_per_vector; /* K: head_dim; V: block_tokens */
  uint32_t params_per_block;   /* K block: 1; K channel: head_dim; V: block_tokens */
  uint32_t has_codebook;       /* 0 until the first block was encoded */
  const float* mins;                 /* [num_blocks * params_per_block] */
  const float* steps;                /* [num_blocks * params_per_block] */
  const uint32_t* block_word_offsets; /* [num_blocks + 1], into words */
  const uint32_t* vector_bit_offsets; /* [num_blocks * vectors_per_block], from block start */
  const uint32_t* words;             /* bitstream, 32-bit words, bits MSB-first */
  uint64_t num_words;
  uint32_t recent_tokens;
  const uint16_t* recent_fp16; /* [recent_tokens * head_dim], fp16 bit patterns */
} kvc_codec_stream_view;

typedef struct kvc_codec_head kvc_codec_head;

KVC_CODEC_API const char* kvc_codec_last_error(void);
KVC_CODEC_API const char* kvc_codec_status_string(int status);

/* Fills the KVComp defaults (eps K 0.05, V 0.1, blocks 64/128, recent 128/256, BlockQuant). */
KVC_CODEC_API void kvc_codec_default_params(kvc_codec_params* params, uint32_t head_dim);

KVC_CODEC_API int kvc_codec_head_create(const kvc_codec_params* params, kvc_codec_head** out);
KVC_CODEC_API void kvc_codec_head_free(kvc_codec_head* head);
/* Appends num_tokens tokens (k, v: [num_tokens x head_dim]); the first call is the prefill.
 * Whole blocks older than the recent window get encoded; the codebook of each stream is built
 * from the first blocks encoded and reused afterwards. On error the head is unchanged. */
KVC_CODEC_API int kvc_codec_head_append(kvc_codec_head* head, const float* k, const float* v,
                                        uint64_t num_tokens);
KVC_CODEC_API int kvc_codec_head_params(const kvc_codec_head* head, kvc_codec_params* out);
KVC_CODEC_API uint64_t kvc_codec_head_num_tokens(const kvc_codec_head* head);
/* Decodes the whole cache: k_out, v_out [num_tokens x head_dim] (either may be NULL). */
KVC_CODEC_API int kvc_codec_head_decode(const kvc_codec_head* head, float* k_out, float* v_out);
/* Symbols of the encoded tokens of one stream, token-major [encoded_tokens x head_dim]. */
KVC_CODEC_API int kvc_codec_head_decode_symbols(const kvc_codec_head* head, int stream,
                                                uint16_t* out, uint64_t out_len);
/* Fused scores[g, t] = sum_c q[g, c] * K^[t, c] for all tokens, from the encoded form. */
KVC_CODEC_API int kvc_codec_head_scores(const kvc_codec_head* head, const float* q,
                                        uint32_t num_queries, float* scores);
/* Fused out[g, c] = sum_t p[g, t] * V^[t, c] for all tokens, from the encoded form. */
KVC_CODEC_API int kvc_codec_head_apply(const kvc_codec_head* head, const float* p,
                                       uint32_t num_queries, float* out);
KVC_CODEC_API int kvc_codec_head_stats(const kvc_codec_head* head, kvc_codec_stats* out);
KVC_CODEC_API int kvc_codec_head_view(const kvc_codec_head* head, int stream,
                                      kvc_codec_stream_view* view,
                                      kvc_codec_huffman_tables* tables);
/* Writes the self-describing byte form. *size receives the needed size; with buffer == NULL
 * or capacity too small nothing is written (the latter returns BUFFER_TOO_SMALL). */
KVC_CODEC_API int kvc_codec_head_serialize(const kvc_codec_head* head, uint8_t* buffer,
                                           size_t capacity, size_t* size);
/* Parses and fully validates (every bitstream is decoded) a serialized head. */
KVC_CODEC_API int kvc_codec_head_deserialize(const uint8_t* buffer, size_t size,
                                             kvc_codec_head** out);

/* ---- KIVI-style baseline: b-bit asymmetric min/max quantization ----
 * K per channel over groups of group_tokens tokens, V per token; tokens within the recent
 * window (and a trailing partial K group) kept in fp16. Codes are bit-packed (LSB-first). */
typedef struct kvc_kivi_params {
  uint32_t head_dim;
  uint32_t key_bits;      /* 2, 3, 4 or 8 */
  uint32_t value_bits;    /* 2, 3, 4 or 8 */
  uint32_t group_tokens;  /* K group size along tokens (default 32) */
  uint32_t recent_tokens; /* fp16 recent window (default 128) */
} kvc_kivi_params;

typedef struct kvc_kivi_head kvc_kivi_head;

KVC_CODEC_API void kvc_kivi_default_params(kvc_kivi_params* params, uint32_t head_dim,
                                           uint32_t bits);
KVC_CODEC_API int kvc_kivi_quantize(const kvc_kivi_params* params, const float* k,
                                    const float* v, uint64_t num_tokens, kvc_kivi_head** out);
KVC_CODEC_API int kvc_kivi_dequantize(const kvc_kivi_head* head, float* k_out, float* v_out);
/* Same struct as the codec: codebook/offset bytes are 0, fixed width == bits. */
KVC_CODEC_API int kvc_kivi_stats(const kvc_kivi_head* head, kvc_codec_stats* out);
KVC_CODEC_API uint64_t kvc_kivi_num_tokens(const kvc_kivi_head* head);
KVC_CODEC_API void kvc_kivi_free(kvc_kivi_head* head);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KVC_RUNTIME_CODEC_H */
