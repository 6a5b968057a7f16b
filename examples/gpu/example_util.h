/* bf16 conversions and the deterministic uniform generator shared by the GPU examples, and
 * the float64 reference of the compressed-cache examples (encoded_ir.c, fixed_width_ir.c). */
#ifndef KVC_EXAMPLES_GPU_EXAMPLE_UTIL_H
#define KVC_EXAMPLES_GPU_EXAMPLE_UTIL_H

#include "kvc/Runtime/Codec.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* float -> bf16 bits, round to nearest even. */
static inline uint16_t to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}
static inline float from_bf16(uint16_t h) {
  uint32_t x = (uint32_t)h << 16;
  float f;
  memcpy(&f, &x, 4);
  return f;
}
/* U(-1, 1) from a 32-bit LCG state. */
static inline float uniform(unsigned *state) {
  *state = *state * 1664525u + 1013904223u;
  return (float)((*state >> 8) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
}

/* MLIR's descriptor of a rank-4 memref of 16-bit elements, as C wrappers take and return it,
 * and a contiguous one over p. */
typedef struct {
  uint16_t *allocated, *aligned;
  int64_t offset, sizes[4], strides[4];
} MemRef4;
static inline MemRef4 memref(uint16_t *p, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  MemRef4 m = {p, p, 0, {d0, d1, d2, d3}, {d1 * d2 * d3, d2 * d3, d3, 1}};
  return m;
}

/* The CPU codec's parameters (head dim D) of the #kvc.codec in encoded.mlir and
 * fixed_width.mlir: K eps 0.05 per 64-token block, V eps 0.1 per token (blocks of 128), the
 * last 128 keys / 256 values not encoded. */
static inline kvc_codec_params example_codec_params(int D) {
  kvc_codec_params p;
  kvc_codec_default_params(&p, D);
  p.key_error = 0.05f;
  p.value_error = 0.1f;
  p.key_block_tokens = 64;
  p.value_block_tokens = 128;
  p.key_recent_tokens = 128;
  p.value_recent_tokens = 256;
  p.key_grouping = KVC_CODEC_KEY_BLOCK;
  return p;
}

/* Creates R CPU codec rows with parameters p, and appends n tokens to each: k, v bf16
 * [R][n][D] (the examples' [B, HKV, n, D] caches, row r = b*HKV + kh). Both return 0, or 1
 * after printing the codec's error, prefixed with `tag`. */
static inline int codec_rows_create(kvc_codec_head **rows, int R, const kvc_codec_params *p,
                                    const char *tag) {
  for (int r = 0; r < R; ++r)
    if (kvc_codec_head_create(p, &rows[r]) != 0) {
      fprintf(stderr, "%s: reference codec: %s\n", tag, kvc_codec_last_error());
      return 1;
    }
  return 0;
}
static inline int codec_rows_append(kvc_codec_head *const *rows, int R, int D, const uint16_t *k,
                                    const uint16_t *v, size_t n, const char *tag) {
  float *kf = malloc(n * D * sizeof(float)), *vf = malloc(n * D * sizeof(float));
  int rc = 0;
  for (int r = 0; r < R && !rc; ++r) {
    for (size_t i = 0; i < n * D; ++i) {
      kf[i] = from_bf16(k[(size_t)r * n * D + i]);
      vf[i] = from_bf16(v[(size_t)r * n * D + i]);
    }
    if (kvc_codec_head_append(rows[r], kf, vf, n) != 0) {
      fprintf(stderr, "%s: reference codec: %s\n", tag, kvc_codec_last_error());
      rc = 1;
    }
  }
  free(kf);
  free(vf);
  return rc;
}

/* rel. L2 of out against float64 attention over the decoded cache of CPU codec rows: rows[r]
 * (r = b*HKV + kh, `tokens` tokens each) holds KV head kh of batch row b, which query heads
 * kh*G .. kh*G + G-1 of q read. q and out: bf16 [B, HKV*G, 1, D]. */
static inline double codec_rows_rel_l2(kvc_codec_head *const *rows, int B, int HKV, int G, int D,
                                       const uint16_t *q, const uint16_t *out, int64_t tokens) {
  const int HQ = HKV * G;
  float *k = malloc((size_t)tokens * D * sizeof(float)), *v = malloc((size_t)tokens * D * sizeof(float));
  double *sc = malloc((size_t)tokens * sizeof(double)), *o = malloc((size_t)D * sizeof(double));
  double num = 0, nrm = 0;
  const double scale = 1.0 / sqrt((double)D);
  for (int r = 0; r < B * HKV; ++r) {
    kvc_codec_head_decode(rows[r], k, v);
    for (int g = 0; g < G; ++g) {
      const int b = r / HKV, h = (r % HKV) * G + g;
      const uint16_t *qr = q + ((size_t)b * HQ + h) * D;
      double mx = -INFINITY, den = 0;
      for (int d = 0; d < D; ++d)
        o[d] = 0;
      for (int64_t j = 0; j < tokens; ++j) {
        double s = 0;
        for (int d = 0; d < D; ++d)
          s += (double)from_bf16(qr[d]) * k[j * D + d];
        sc[j] = s * scale;
        if (sc[j] > mx)
          mx = sc[j];
      }
      for (int64_t j = 0; j < tokens; ++j)
        den += (sc[j] = exp(sc[j] - mx));
      for (int64_t j = 0; j < tokens; ++j)
        for (int d = 0; d < D; ++d)
          o[d] += sc[j] / den * v[j * D + d];
      for (int d = 0; d < D; ++d) {
        double e = from_bf16(out[((size_t)b * HQ + h) * D + d]) - o[d];
        num += e * e;
        nrm += o[d] * o[d];
      }
    }
  }
  free(k);
  free(v);
  free(sc);
  free(o);
  return sqrt(num / nrm);
}

/* Returns 2 from the calling function with "<prog>: <call> failed: <CUDA error>" on stderr. */
#define KVC_EXAMPLE_CHECK(prog, call)                                                          \
  do {                                                                                         \
    if ((call) != 0) {                                                                         \
      fprintf(stderr, "%s: %s failed: %s\n", prog, #call, kvc_cuda_last_error());              \
      return 2;                                                                                \
    }                                                                                          \
  } while (0)

#endif
