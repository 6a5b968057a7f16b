// The generated AOT header: PTX, one KVC_GPU_<OP> name per decode-attention op with its shapes,
// and kvc_gpu_load; it compiles as C against the runtime headers.
// REQUIRES: ptxas
// RUN: kvc-opt %s --kvc-gpu-pipeline="small-rows=0" -o %t.mlir
// RUN: kvc-bench extract %t.mlir --header %t.h
// RUN: FileCheck %s < %t.h
// RUN: cc -fsyntax-only -x c -std=c99 -I %S/../../../include %t.h

// CHECK: #include "kvc/Runtime/CUDADecode.h"
// CHECK: /* kvc_attn0: q [B, 4*Hkv, 1, 128], k/v [B, Hkv, S, 128], bf16, fused merge */
// CHECK-NEXT: #define KVC_GPU_KVC_ATTN0 "kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf"
// CHECK: /* kvc_attn1: q [B, 8*Hkv, 1, 64], k/v [B, Hkv, S, 64], f16, lengths [B, Hkv] int64, fused merge */
// CHECK-NEXT: #define KVC_GPU_KVC_ATTN1 "kvc_attn1_d64_g8_q1_f16_b128_u4_ragged_fm_pf"
// CHECK: static const char kvc_gpu_ptx[] = {
// CHECK: static inline int kvc_gpu_load(kvc_cuda_module *m) {
func.func @dense(%q: tensor<?x32x1x128xbf16>, %k: tensor<?x8x?x128xbf16>, %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16> {
  %o = kvc.attention %q, %k, %v : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
func.func @ragged(%q: tensor<?x8x1x64xf16>, %k: tensor<?x1x?x64xf16>, %v: tensor<?x1x?x64xf16>,
                  %len: tensor<?x1xi64>) -> tensor<?x8x1x64xf16> {
  %o = kvc.attention %q, %k, %v lengths(%len) : (tensor<?x8x1x64xf16>, tensor<?x1x?x64xf16>, tensor<?x1x?x64xf16>, tensor<?x1xi64>) -> tensor<?x8x1x64xf16>
  return %o : tensor<?x8x1x64xf16>
}
