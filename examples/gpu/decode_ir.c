/* The compiled program itself, host code included, called from C: no kvc-bench, no header.
 *
 *   kvc-opt examples/gpu/decode.mlir --kvc-gpu-pipeline="host=llvm" -o decode.llvm.mlir
 *   mlir-translate --mlir-to-llvmir decode.llvm.mlir -o decode_ir.ll
 *   clang -c decode_ir.ll && cc decode_ir.c decode_ir.o <libkvc_runtime's CUDA objects> -ldl
 *
 * (the build does this: target kvc-decode-ir-example). `kvc-gpu-pipeline{host=llvm}` lowers the
 * whole module: the kernels to PTX embedded in the object, the host side of @decode with
 * upstream gpu-to-llvm to mgpu* calls, which libkvc_runtime implements (MgpuABI.cpp), plus a C
 * wrapper _mlir_ciface_decode taking memref descriptors. Inputs live in managed memory (the
 * kernels read them as they are); the result is managed memory gpu.alloc'd by the program.
 * Same shape, data and check as decode_aot.c. Exit status: 0 pass, 1 wrong result, 2 no usable
 * GPU / CUDA error (message on stderr).
 */
#include "decode_check.h"
#include "kvc/Runtime/CUDA.h"

#include <stdio.h>


void _mlir_ciface_decode(MemRef4 *result, MemRef4 *q, MemRef4 *k, MemRef4 *v);


#define CHECK(call) KVC_EXAMPLE_CHECK("decode_ir", call)

int main(void) {
  const size_t nq = (size_t)B * HQ * D, nkv = (size_t)B * HKV * S * D;
  kvc_cuda_ptr dq, dk, dv;
  CHECK(kvc_cuda_init(0));
  CHECK(kvc_cuda_malloc_managed(&dq, nq * 2));
  CHECK(kvc_cuda_malloc_managed(&dk, nkv * 2));
  CHECK(kvc_cuda_malloc_managed(&dv, nkv * 2));
  uint16_t *q = (uint16_t *)(uintptr_t)dq, *k = (uint16_t *)(uintptr_t)dk,
           *v = (uint16_t *)(uintptr_t)dv;
  fill_inputs(q, k, v);

  MemRef4 mq = memref(q, B, HQ, 1, D), mk = memref(k, B, HKV, S, D), mv = memref(v, B, HKV, S, D);
  MemRef4 out;
  _mlir_ciface_decode(&out, &mq, &mk, &mv);

  const double err = relative_error(q, k, v, out.aligned + out.offset);
  const int ok = err >= 0 && err <= 1e-2;
  printf("decode_ir: _mlir_ciface_decode, B=%d Hq=%d Hkv=%d S=%d D=%d, result [%lld, %lld, %lld, "
         "%lld]: rel_l2 = %.3e (tolerance 1e-2) %s\n",
         B, HQ, HKV, S, D, (long long)out.sizes[0], (long long)out.sizes[1],
         (long long)out.sizes[2], (long long)out.sizes[3], err, ok ? "PASS" : "FAIL");

  /* Calls that reuse the program's cached workspaces with fewer and then more rows: batch 1 (the
   * first half of the same inputs; compared with the first call's first half), then batch 2
   * again (compared with the reference), so the fused merge's arrival counters must have been
   * left zero by the calls before. */
  MemRef4 mq1 = memref(q, 1, HQ, 1, D), mk1 = memref(k, 1, HKV, S, D), mv1 = memref(v, 1, HKV, S, D);
  MemRef4 out1, out2;
  _mlir_ciface_decode(&out1, &mq1, &mk1, &mv1);
  double num = 0, nrm = 0;
  for (size_t i = 0; i < (size_t)HQ * D; ++i) {
    const double a = from_bf16(out1.aligned[out1.offset + i]),
                 b = from_bf16(out.aligned[out.offset + i]);
    num += (a - b) * (a - b);
    nrm += b * b;
  }
  const double err1 = sqrt(num / nrm);
  _mlir_ciface_decode(&out2, &mq, &mk, &mv);
  const double err2 = relative_error(q, k, v, out2.aligned + out2.offset);
  const int ok2 = err1 <= 1e-2 && err2 >= 0 && err2 <= 1e-2;
  printf("decode_ir: repeated calls: B=1 vs the first call's batch 0: rel_l2 = %.3e; B=2 again: "
         "rel_l2 = %.3e (tolerance 1e-2) %s\n",
         err1, err2, ok2 ? "PASS" : "FAIL");
  kvc_cuda_free((kvc_cuda_ptr)(uintptr_t)out.allocated);
  kvc_cuda_free((kvc_cuda_ptr)(uintptr_t)out1.allocated);
  kvc_cuda_free((kvc_cuda_ptr)(uintptr_t)out2.allocated);
  kvc_cuda_free(dq);
  kvc_cuda_free(dk);
  kvc_cuda_free(dv);
  return ok && ok2 ? 0 : 1;
}
