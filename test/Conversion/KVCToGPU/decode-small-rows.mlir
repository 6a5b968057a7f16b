// RUN: kvc-opt %s -convert-kvc-to-gpu | FileCheck %s
// RUN: kvc-opt %s -convert-kvc-to-gpu="fuse-merge=false" | FileCheck %s --check-prefix=SPLIT
// RUN: kvc-opt %s -convert-kvc-to-gpu="small-rows=32" | FileCheck %s --check-prefix=N32
// RUN: kvc-opt %s -convert-kvc-to-gpu="small-rows=0" | FileCheck %s --check-prefix=OFF
// RUN: kvc-opt %s -convert-kvc-to-gpu="block-size=256 unroll=2" | FileCheck %s --check-prefix=SAME
// RUN: kvc-opt %s -convert-kvc-to-gpu="block-size=256 unroll=2 min-ctas=2" | FileCheck %s --check-prefix=CAP
// RUN: not kvc-opt %s -convert-kvc-to-gpu="small-rows=-1" 2>&1 | FileCheck %s --check-prefix=BAD

// Dynamic batch: the host code compares B*Hkv with small-rows at run time and launches the
// block-256 unroll-2 split kernel for few rows (batch 1 on the H100), the default otherwise;
// each branch asks the runtime's plan for its own kernel's split count.
// CHECK-LABEL: func.func @decode
// CHECK: %[[ROWS:.*]] = arith.muli %{{.*}}, %c8{{.*}} : index
// CHECK: %[[FEW:.*]] = arith.cmpi ule, %[[ROWS]], %c8{{.*}} : index
// CHECK: scf.if %[[FEW]] {
// CHECK: memref.get_global @__kvc_name_kvc_attn1_d128_g4_q1_bf16_b256_u2_fm_pf
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn1_d128_g4_q1_bf16_b256_u2_fm_pf_split {{.*}} threads in (%c256
// CHECK: } else {
// CHECK: memref.get_global @__kvc_name_kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf_split {{.*}} threads in (%c128
// CHECK: }
// CHECK: bufferization.to_tensor
// N32: arith.cmpi ule, %{{.*}}, %c32{{.*}} : index
// OFF-LABEL: func.func @decode
// OFF-NOT: scf.if
// OFF-NOT: b256_u2
// OFF: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf_split
// OFF-LABEL: func.func @ragged_static_k
// OFF-NOT: b256
// The requested kernel already is the small-batch one: no second kernel.
// SAME-LABEL: func.func @decode
// SAME-NOT: scf.if
// SAME: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b256_u2_fm_pf_split
// SAME-LABEL: func.func @ragged_static_k
// SAME-NOT: b128
// A requested block-256 unroll-2 kernel with a register cap is used as it is (no uncapped twin).
// CAP-LABEL: func.func @decode
// CAP-NOT: scf.if
// CAP: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b256_u2_fm_pf_m2_split
// CAP-NOT: _b256_u2_fm_pf_split
// BAD: error: convert-kvc-to-gpu: small-rows must be >= 0 (0: off), got -1
// Split + merge: each branch launches its own split and merge kernels.
// SPLIT: scf.if
// SPLIT: gpu.launch_func @kvc_gpu::@kvc_attn1_d128_g4_q1_bf16_b256_u2_pf_split
// SPLIT: gpu.launch_func @kvc_gpu::@kvc_attn1_d128_g4_q1_bf16_b256_u2_pf_merge
// SPLIT: } else {
// SPLIT: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b128_u4_pf_split
// SPLIT: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b128_u4_pf_merge
func.func @decode(%q: tensor<?x32x1x128xbf16>, %k: tensor<?x8x?x128xbf16>,
                  %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16> {
  %o = kvc.attention %q, %k, %v : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}

// A ragged op with Q's batch dynamic and K's static (1): the choice is made at compile time
// from K's batch (8 rows: the small-rows kernel).
// CHECK-LABEL: func.func @ragged_static_k
// CHECK-NOT: scf.if
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn{{[0-9]+}}_d128_g4_q1_bf16_b256_u2_ragged_fm_pf_split
// CHECK-SAME: memref<?xi64>
func.func @ragged_static_k(%q: tensor<?x32x1x128xbf16>, %k: tensor<1x8x?x128xbf16>,
                           %v: tensor<1x8x?x128xbf16>, %l: tensor<1x8xi64>)
    -> tensor<?x32x1x128xbf16> {
  %o = kvc.attention %q, %k, %v lengths(%l) : (tensor<?x32x1x128xbf16>, tensor<1x8x?x128xbf16>, tensor<1x8x?x128xbf16>, tensor<1x8xi64>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
