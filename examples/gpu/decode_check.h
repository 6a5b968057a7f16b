/* What examples/gpu/decode_aot.c and decode_ir.c share: the example's shape (GQA 32 query heads
 * over 8 KV heads, D = 128, bf16, B = 2, S = 3000), random inputs, and the float64 host
 * reference they compare the GPU result with (relative L2 error, tolerance 1e-2). */
#ifndef KVC_EXAMPLES_GPU_DECODE_CHECK_H
#define KVC_EXAMPLES_GPU_DECODE_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "example_util.h"

enum { B = 2, HKV = 8, G = 4, HQ = HKV * G, D = 128, S = 3000 };


/* q [B, HQ, 1, D], k/v [B, HKV, S, D] bf16 bits, from a fixed seed. */
static void fill_inputs(uint16_t *q, uint16_t *k, uint16_t *v) {
  unsigned seed = 1;
  for (size_t i = 0; i < (size_t)B * HQ * D; ++i)
    q[i] = to_bf16(2.0f * uniform(&seed));
  for (size_t i = 0; i < (size_t)B * HKV * S * D; ++i)
    k[i] = to_bf16(2.0f * uniform(&seed));
  for (size_t i = 0; i < (size_t)B * HKV * S * D; ++i)
    v[i] = to_bf16(uniform(&seed));
}

/* ||out - ref|| / ||ref|| with ref = softmax(q k^T / sqrt(D)) v per query head (KV head h / G),
 * in float64; -1 if allocation fails. */
static double relative_error(const uint16_t *q, const uint16_t *k, const uint16_t *v,
                             const uint16_t *out) {
  const size_t nq = (size_t)B * HQ * D;
  double *ref = calloc(nq, sizeof(double)), *sc = malloc(S * sizeof(double));
  if (!ref || !sc)
    return -1;
  const double scale = 1.0 / sqrt((double)D);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < HQ; ++h) {
      const uint16_t *qr = q + ((size_t)b * HQ + h) * D;
      const size_t kv = ((size_t)b * HKV + h / G) * S * D;
      double mx = -INFINITY, den = 0;
      for (int j = 0; j < S; ++j) {
        double s = 0;
        for (int d = 0; d < D; ++d)
          s += from_bf16(qr[d]) * from_bf16(k[kv + (size_t)j * D + d]);
        sc[j] = s * scale;
        if (sc[j] > mx)
          mx = sc[j];
      }
      for (int j = 0; j < S; ++j)
        den += (sc[j] = exp(sc[j] - mx));
      double *o = ref + ((size_t)b * HQ + h) * D;
      for (int j = 0; j < S; ++j)
        for (int d = 0; d < D; ++d)
          o[d] += sc[j] / den * from_bf16(v[kv + (size_t)j * D + d]);
    }
  double num = 0, nrm = 0;
  for (size_t i = 0; i < nq; ++i) {
    double e = from_bf16(out[i]) - ref[i];
    num += e * e;
    nrm += ref[i] * ref[i];
  }
  free(ref);
  free(sc);
  return sqrt(num / nrm);
}

#endif
