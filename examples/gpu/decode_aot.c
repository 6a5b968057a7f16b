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
#include "decode_check.h"

#include <stdio.h>

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
  if (!q || !k || !v || !out)
    return 2;
  fill_inputs(q, k, v);

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

  /* 4. Compare with the float64 host reference. */
  const double err = relative_error(q, k, v, out);
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
