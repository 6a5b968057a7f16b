/* A KVComp-encoded KV cache on the GPU, driven only by compiled code (examples/gpu/encoded.mlir,
 * compiled with `kvc-gpu-pipeline{host=llvm}` like decode_ir.c):
 *   h = _mlir_ciface_prefill(K, V)                    kvc.encode: a device-resident encoded cache
 *   for each step: (out, h) = _mlir_ciface_step(q, h, k_new, v_new)
 *                  kvc.cache.append (window-append + KVComp store kernels) + kvc.attention
 *                  (Huffman-decoding split kernel + merge) on the encoded cache.
 * The reference is independent of the GPU path: one CPU codec head per row (Codec.h) gets the
 * same prompt and the same appended tokens, its decoded cache goes into a float64 attention,
 * and the GPU output must match it within rel. L2 1e-2 (bf16 output rounding) after every
 * checked step; the rows' token counts must match too. Exit status: 0 pass, 1 wrong result,
 * 2 no usable GPU / CUDA error.
 */
#include "example_util.h"
#include "kvc/Runtime/CUDA.h"
#include "kvc/Runtime/Codec.h"
#include "kvc/Runtime/CompilerABI.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, HKV = 8, G = 4, HQ = HKV * G, D = 128, S0 = 1000, STEPS = 300 };

typedef struct {
  MemRef4 out;
  int64_t cache;
} StepResult;

int64_t _mlir_ciface_prefill(MemRef4 *k, MemRef4 *v);
void _mlir_ciface_step(StepResult *result, MemRef4 *q, int64_t cache, MemRef4 *k, MemRef4 *v);


#define CHECK(call) KVC_EXAMPLE_CHECK("encoded_ir", call)

/* Keys with a per-channel offset and a slow drift (so blocks differ), values uniform. */
static void fill_tokens(uint16_t *k, uint16_t *v, size_t tokensPerRow, int64_t t0, unsigned *seed) {
  for (int r = 0; r < B * HKV; ++r)
    for (size_t t = 0; t < tokensPerRow; ++t)
      for (int d = 0; d < D; ++d) {
        size_t i = ((size_t)r * tokensPerRow + t) * D + d;
        k[i] = to_bf16(2.0f * uniform(seed) + 0.5f * sinf(0.1f * d + 0.01f * (float)(t0 + t)));
        v[i] = to_bf16(uniform(seed));
      }
}

/* CPU codec rows: the reference cache. */
static kvc_codec_head *rows[B * HKV];

int main(void) {
  CHECK(kvc_cuda_init(0));
  const kvc_codec_params p = example_codec_params(D);
  if (codec_rows_create(rows, B * HKV, &p, "encoded_ir"))
    return 1;

  const size_t nkv = (size_t)B * HKV * S0 * D, nq = (size_t)B * HQ * D, nnew = (size_t)B * HKV * D;
  kvc_cuda_ptr dk, dv, dq, dkn, dvn;
  CHECK(kvc_cuda_malloc_managed(&dk, nkv * 2));
  CHECK(kvc_cuda_malloc_managed(&dv, nkv * 2));
  CHECK(kvc_cuda_malloc_managed(&dq, nq * 2));
  CHECK(kvc_cuda_malloc_managed(&dkn, nnew * 2));
  CHECK(kvc_cuda_malloc_managed(&dvn, nnew * 2));
  uint16_t *k = (uint16_t *)(uintptr_t)dk, *v = (uint16_t *)(uintptr_t)dv,
           *q = (uint16_t *)(uintptr_t)dq, *kn = (uint16_t *)(uintptr_t)dkn,
           *vn = (uint16_t *)(uintptr_t)dvn;
  unsigned seed = 7;
  fill_tokens(k, v, S0, 0, &seed);
  if (codec_rows_append(rows, B * HKV, D, k, v, S0, "encoded_ir"))
    return 1;

  MemRef4 mk = memref(k, B, HKV, S0, D), mv = memref(v, B, HKV, S0, D);
  int64_t cache = _mlir_ciface_prefill(&mk, &mv);
  printf("encoded_ir: prefill B=%d Hkv=%d S=%d D=%d -> handle, %.1f MB on the device\n", B, HKV,
         S0, D, (double)kvc_rt_gpu_encoded_device_bytes(cache) / 1e6);

  int fails = 0, checked = 0;
  double worst = 0;
  for (int s = 1; s <= STEPS; ++s) {
    fill_tokens(kn, vn, 1, S0 + s - 1, &seed);
    for (size_t i = 0; i < nq; ++i)
      q[i] = to_bf16(2.0f * uniform(&seed));
    if (codec_rows_append(rows, B * HKV, D, kn, vn, 1, "encoded_ir"))
      return 1;
    MemRef4 mq = memref(q, B, HQ, 1, D), mkn = memref(kn, B, HKV, 1, D),
            mvn = memref(vn, B, HKV, 1, D);
    StepResult res;
    _mlir_ciface_step(&res, &mq, cache, &mkn, &mvn);
    cache = res.cache;
    if (s == 1 || s % 25 == 0 || s == STEPS) {
      int64_t tokens[B * HKV];
      kvc_rt_gpu_encoded_tokens(cache, tokens);
      const int64_t want = S0 + s;
      int countsOk = 1;
      for (int r = 0; r < B * HKV; ++r)
        countsOk &= tokens[r] == want && (int64_t)kvc_codec_head_num_tokens(rows[r]) == want;
      const double err = codec_rows_rel_l2(rows, B, HKV, G, D, q, res.out.aligned + res.out.offset,
                                           want);
      const int ok = countsOk && err <= 1e-2;
      if (err > worst)
        worst = err;
      fails += !ok;
      ++checked;
      printf("encoded_ir: step %3d: %lld tokens per row, rel_l2 = %.3e %s\n", s, (long long)want,
             err, ok ? "ok" : "FAIL");
    }
    kvc_cuda_free((kvc_cuda_ptr)(uintptr_t)res.out.allocated);
  }
  printf("encoded_ir: %d steps (append + attention on the encoded cache), %d checked, worst "
         "rel_l2 %.3e (tolerance 1e-2): %s\n",
         STEPS, checked, worst, fails ? "FAIL" : "PASS");
  kvc_rt_gpu_encoded_destroy(cache);
  for (int r = 0; r < B * HKV; ++r)
    kvc_codec_head_free(rows[r]);
  kvc_cuda_free(dk);
  kvc_cuda_free(dv);
  kvc_cuda_free(dq);
  kvc_cuda_free(dkn);
  kvc_cuda_free(dvn);
  return fails ? 1 : 0;
}
