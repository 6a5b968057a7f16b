/* A fixed-width KVComp cache (entropy = none) on the GPU, driven only by compiled code
 * (examples/gpu/fixed_width.mlir, compiled with `kvc-gpu-pipeline{host=llvm}` like
 * encoded_ir.c):
 *   h = _mlir_ciface_prefill(K, V)        kvc.encode: the fixed-width device form of the prompt
 *   out = _mlir_ciface_decode(q, h)       kvc.attention: fixed-width split kernel + merge
 * for prompts of several lengths (partial tiles, a prompt shorter than the fp16 window, one
 * token); and @decode on a handle the host builds from CPU codec heads
 * (kvc_rt_gpu_fixed_width_create), which must give the same output bits. The reference is independent of the GPU path: one CPU codec head per row (Codec.h)
 * gets the same prompt, its decoded cache goes into a float64 attention, and the GPU output
 * must match it within rel. L2 1e-2 (bf16 output rounding; the fixed-width window holds the
 * codec's decoded values rounded to fp16). Exit status: 0 pass, 1 wrong result, 2 no usable
 * GPU / CUDA error.
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

enum { B = 2, HKV = 8, G = 4, HQ = HKV * G, D = 128, MAXS = 4097 };

typedef struct {
  MemRef4 out;
  int64_t cache;
} StepResult;

int64_t _mlir_ciface_prefill(MemRef4 *k, MemRef4 *v);
void _mlir_ciface_decode(MemRef4 *out, MemRef4 *q, int64_t cache);
void _mlir_ciface_step(StepResult *result, MemRef4 *q, int64_t cache, MemRef4 *k, MemRef4 *v);

#define CHECK(call) KVC_EXAMPLE_CHECK("fixed_width_ir", call)

/* Keys with a per-channel offset and a slow drift (so blocks differ), values uniform. */
static void fill_tokens(uint16_t *k, uint16_t *v, size_t tokensPerRow, unsigned *seed) {
  for (int r = 0; r < B * HKV; ++r)
    for (size_t t = 0; t < tokensPerRow; ++t)
      for (int d = 0; d < D; ++d) {
        size_t i = ((size_t)r * tokensPerRow + t) * D + d;
        k[i] = to_bf16(2.0f * uniform(seed) + 0.5f * sinf(0.1f * d + 0.01f * (float)t));
        v[i] = to_bf16(uniform(seed));
      }
}

int main(void) {
  CHECK(kvc_cuda_init(0));
  const kvc_codec_params p = example_codec_params(D);

  const size_t nkv = (size_t)B * HKV * MAXS * D, nq = (size_t)B * HQ * D;
  kvc_cuda_ptr dk, dv, dq;
  CHECK(kvc_cuda_malloc_managed(&dk, nkv * 2));
  CHECK(kvc_cuda_malloc_managed(&dv, nkv * 2));
  CHECK(kvc_cuda_malloc_managed(&dq, nq * 2));
  uint16_t *k = (uint16_t *)(uintptr_t)dk, *v = (uint16_t *)(uintptr_t)dv,
           *q = (uint16_t *)(uintptr_t)dq;
  const int lengths[] = {1, 300, 1000, 1024, 4097};
  int fails = 0;
  double worst = 0;
  unsigned seed = 7;
  for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; ++li) {
    const int S = lengths[li];
    fill_tokens(k, v, (size_t)S, &seed);
    for (size_t i = 0; i < nq; ++i)
      q[i] = to_bf16(2.0f * uniform(&seed));
    kvc_codec_head *rows[B * HKV];
    if (codec_rows_create(rows, B * HKV, &p, "fixed_width_ir") ||
        codec_rows_append(rows, B * HKV, D, k, v, (size_t)S, "fixed_width_ir"))
      return 1;
    MemRef4 mk = memref(k, B, HKV, S, D), mv = memref(v, B, HKV, S, D);
    int64_t cache = _mlir_ciface_prefill(&mk, &mv);
    MemRef4 mq = memref(q, B, HQ, 1, D), out;
    _mlir_ciface_decode(&out, &mq, cache);
    int64_t tokens[B * HKV];
    kvc_rt_gpu_encoded_tokens(cache, tokens);
    int countsOk = 1;
    for (int r = 0; r < B * HKV; ++r)
      countsOk &= tokens[r] == S;
    const double err = codec_rows_rel_l2(rows, B, HKV, G, D, q, out.aligned + out.offset, S);
    /* The same cache built by the host from the reference rows (kvc_rt_gpu_fixed_width_create,
     * for callers that pass their own cache): the same device form, so the same output bits. */
    int64_t own = 0;
    const char *why = NULL;
    if (kvc_rt_gpu_fixed_width_create((const kvc_codec_head *const *)rows, B, HKV, 0, &own,
                                      &why)) {
      fprintf(stderr, "fixed_width_ir: kvc_rt_gpu_fixed_width_create: %s\n", why ? why : "?");
      return 2;
    }
    MemRef4 out2;
    _mlir_ciface_decode(&out2, &mq, own);
    const int same = memcmp(out.aligned + out.offset, out2.aligned + out2.offset, nq * 2) == 0;
    kvc_cuda_free((kvc_cuda_ptr)(uintptr_t)out2.allocated);
    kvc_rt_gpu_encoded_destroy(own);
    const int ok = countsOk && err <= 1e-2 && same;
    worst = err > worst ? err : worst;
    fails += !ok;
    printf("fixed_width_ir: S=%4d: %.2f MB on the device, rel_l2 = %.3e, host-built handle %s: "
           "%s\n",
           S, (double)kvc_rt_gpu_encoded_device_bytes(cache) / 1e6, err,
           same ? "same output" : "DIFFERENT output", ok ? "ok" : "FAIL");
    kvc_cuda_free((kvc_cuda_ptr)(uintptr_t)out.allocated);
    kvc_rt_gpu_encoded_destroy(cache);
    for (int r = 0; r < B * HKV; ++r)
      kvc_codec_head_free(rows[r]);
  }
  printf("fixed_width_ir: %zu prompts (prefill + attention on the fixed-width cache), worst "
         "rel_l2 %.3e (tolerance 1e-2): %s\n",
         sizeof lengths / sizeof lengths[0], worst, fails ? "FAIL" : "PASS");

  /* Generation: a 1000-token prompt, then STEPS steps of append + attention (@step), checked
   * against CPU codec rows that get the same tokens (kvc_codec_head_append). */
  enum { S0 = 1000, STEPS = 300 };
  kvc_codec_head *rows[B * HKV];
  fill_tokens(k, v, S0, &seed);
  if (codec_rows_create(rows, B * HKV, &p, "fixed_width_ir") ||
      codec_rows_append(rows, B * HKV, D, k, v, S0, "fixed_width_ir"))
    return 1;
  MemRef4 mk = memref(k, B, HKV, S0, D), mv = memref(v, B, HKV, S0, D);
  int64_t cache = _mlir_ciface_prefill(&mk, &mv);
  int stepFails = 0, checked = 0;
  double stepWorst = 0;
  for (int s = 1; s <= STEPS; ++s) {
    /* The new token of every row at the start of k/v ([B, HKV, 1, D]). */
    fill_tokens(k, v, 1, &seed);
    for (size_t i = 0; i < nq; ++i)
      q[i] = to_bf16(2.0f * uniform(&seed));
    if (codec_rows_append(rows, B * HKV, D, k, v, 1, "fixed_width_ir"))
      return 1;
    MemRef4 mq = memref(q, B, HQ, 1, D), mkn = memref(k, B, HKV, 1, D),
            mvn = memref(v, B, HKV, 1, D);
    StepResult res;
    _mlir_ciface_step(&res, &mq, cache, &mkn, &mvn);
    cache = res.cache;
    if (s == 1 || s % 50 == 0) {
      int64_t tokens[B * HKV];
      kvc_rt_gpu_encoded_tokens(cache, tokens);
      int countsOk = 1;
      for (int r = 0; r < B * HKV; ++r)
        countsOk &= tokens[r] == S0 + s;
      const double err =
          codec_rows_rel_l2(rows, B, HKV, G, D, q, res.out.aligned + res.out.offset, S0 + s);
      const int ok = countsOk && err <= 1e-2;
      stepWorst = err > stepWorst ? err : stepWorst;
      stepFails += !ok;
      ++checked;
      printf("fixed_width_ir: step %3d: %d tokens per row, rel_l2 = %.3e %s\n", s, S0 + s, err,
             ok ? "ok" : "FAIL");
    }
    kvc_cuda_free((kvc_cuda_ptr)(uintptr_t)res.out.allocated);
  }
  printf("fixed_width_ir: %d steps (append + attention on the fixed-width cache), %d checked, "
         "worst rel_l2 %.3e (tolerance 1e-2): %s\n",
         STEPS, checked, stepWorst, stepFails ? "FAIL" : "PASS");
  kvc_rt_gpu_encoded_destroy(cache);
  for (int r = 0; r < B * HKV; ++r)
    kvc_codec_head_free(rows[r]);
  fails += stepFails;
  kvc_cuda_free(dk);
  kvc_cuda_free(dv);
  kvc_cuda_free(dq);
  return fails ? 1 : 0;
}
