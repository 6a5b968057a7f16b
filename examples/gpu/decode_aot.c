/* Ahead-of-time use of kvc's GPU decode kernels from plain C.
 *
 *   kvc-opt examples/gpu/decode.mlir --kvc-gpu-pipeline -o decode.gpu.mlir
 *   kvc-bench extract decode.gpu.mlir --header decode_kernels.h
 *   cc decode_aot.c -I include -I . <libkvc_runtime's CUDA objects or libkvc_runtime.so> -ldl
 *
 * (the build does this: target kvc-decode-example). The program loads the kernels, runs one
 * decode step (B = 2, Hq = 32, Hkv = 8, D = 128, S = 3000, bf16) on random data and compares
 * it with a float64 reference on the host: relative L2 error <= 1e-2 (bf16 output rounding is
 * ~2e-3). Exit status: 0 pass, 1 wrong result, 2 no usable GPU / CUDA error (message on stderr).
 */
#include "decode_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, HKV = 8, G = 4, HQ = HKV * G, D = 128, S = 3000 };

static uint16_t to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}
static double from_bf16(uint16_t h) {
  uint32_t x = (uint32_t)h << 16;
  float f;
  memcpy(&f, &x, 4);
  return f;
}
static float uniform(unsigned *state) {
  *state = *state * 1664525u + 1013904223u;
  return (float)((*state >> 8) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
}

#define CHECK(call)                                                                            \
  do {                                                                                         \
    if ((call) != 0) {                                                                         \
      fprintf(stderr, "decode_aot: %s failed: %s\n", #call, kvc_cuda_last_error());           \
      return 2;                                                                                \
    }                                                                                          \
  } while (0)

int main(void) {
  const size_t nq = (size_t)B * HQ * D, nkv = (size_t)B * HKV * S * D;
  uint16_t *q = malloc(nq * 2), *k = malloc(nkv * 2), *v = malloc(nkv * 2), *out = malloc(nq * 2);
  double *ref = calloc(nq, sizeof(double)), *sc = malloc(S * sizeof(double));
  if (!q || !k || !v || !out || !ref || !sc)
    return 2;
  unsigned seed = 1;
  for (size_t i = 0; i < nq; ++i)
    q[i] = to_bf16(2.0f * uniform(&seed));
  for (size_t i = 0; i < nkv; ++i)
    k[i] = to_bf16(2.0f * uniform(&seed));
  for (size_t i = 0; i < nkv; ++i)
    v[i] = to_bf16(uniform(&seed));

  /* 1. Load the module and look up the op's kernels by the name the header defines. */
  kvc_cuda_module m;
  CHECK(kvc_gpu_load(&m));
  kvc_decode_kernel kern;
  CHECK(kvc_cuda_decode_kernel_get(m, KVC_GPU_KVC_ATTN0, &kern));

  /* 2. Plan the split count and the workspace for this shape. */
  kvc_decode_shape shape = {B, HKV, S, 0, 0};
  kvc_decode_plan plan;
  CHECK(kvc_cuda_decode_make_plan(&kern.cfg, &shape, kern.resident_ctas, &plan));

  /* 3. Device buffers, then one launch (split + merge) on the default stream. */
  kvc_cuda_ptr dq, dk, dv, dws, dout;
  CHECK(kvc_cuda_malloc(&dq, nq * 2));
  CHECK(kvc_cuda_malloc(&dk, nkv * 2));
  CHECK(kvc_cuda_malloc(&dv, nkv * 2));
  CHECK(kvc_cuda_malloc(&dout, nq * 2));
  CHECK(kvc_cuda_malloc(&dws, plan.workspace_bytes));
  CHECK(kvc_cuda_memcpy_htod(dq, q, nq * 2));
  CHECK(kvc_cuda_memcpy_htod(dk, k, nkv * 2));
  CHECK(kvc_cuda_memcpy_htod(dv, v, nkv * 2));
  CHECK(kvc_cuda_decode_init_workspace(&kern.cfg, &plan, dws, NULL));
  CHECK(kvc_cuda_decode_launch(kern.split, kern.merge, &kern.cfg, &shape, &plan, dq, dk, dv, 0,
                               dws, dout, NULL));
  CHECK(kvc_cuda_synchronize());
  CHECK(kvc_cuda_memcpy_dtoh(out, dout, nq * 2));

  /* 4. float64 reference: softmax(q k^T / sqrt(D)) v per query head, KV head h / G. */
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
  const double err = sqrt(num / nrm);
  const int ok = err <= 1e-2;
  printf("decode_aot: %s, B=%d Hq=%d Hkv=%d S=%d D=%d, %d splits: rel_l2 = %.3e (tolerance 1e-2) %s\n",
         KVC_GPU_KVC_ATTN0, B, HQ, HKV, S, D, plan.num_splits, err, ok ? "PASS" : "FAIL");
  kvc_cuda_free(dq);
  kvc_cuda_free(dk);
  kvc_cuda_free(dv);
  kvc_cuda_free(dws);
  kvc_cuda_free(dout);
  kvc_cuda_module_unload(m);
  return ok ? 0 : 1;
}
