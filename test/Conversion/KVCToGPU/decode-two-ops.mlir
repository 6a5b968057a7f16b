// RUN: kvc-opt %s --convert-kvc-to-gpu | FileCheck %s

// Two decode ops in one function share the runtime's workspace slots (f32 0 and 1, i32 0):
// each launch is the blocking form (no async token), so the first op's kernel has finished
// before the second op's host code asks for the slots again. With static batches the
// small-rows choice is made at compile time: B*Hkv = 8 takes the block-256 unroll-2 kernel,
// 16 the default one, and no run-time dispatch is emitted.
// CHECK-LABEL: func.func @two_ops
// CHECK-NOT: scf.if
// CHECK: call @kvc_rt_gpu_workspace_f32(%c0_i64{{.*}}
// CHECK: call @kvc_rt_gpu_workspace_i32(%c0_i64{{.*}}
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b256_u2_fm_pf_split blocks
// CHECK-NOT: async
// CHECK: call @kvc_rt_gpu_workspace_f32(%c0_i64{{.*}}
// CHECK: call @kvc_rt_gpu_workspace_i32(%c0_i64{{.*}}
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn1_d128_g4_q1_bf16_b128_u4_fm_pf_split blocks
// CHECK-NOT: async
// CHECK-NOT: scf.if
// CHECK: return
func.func @two_ops(%q: tensor<1x32x1x128xbf16>, %k: tensor<1x8x?x128xbf16>,
                   %v: tensor<1x8x?x128xbf16>, %q2: tensor<2x32x1x128xbf16>,
                   %k2: tensor<2x8x?x128xbf16>, %v2: tensor<2x8x?x128xbf16>)
    -> (tensor<1x32x1x128xbf16>, tensor<2x32x1x128xbf16>) {
  %o = kvc.attention %q, %k, %v : (tensor<1x32x1x128xbf16>, tensor<1x8x?x128xbf16>, tensor<1x8x?x128xbf16>) -> tensor<1x32x1x128xbf16>
  %o2 = kvc.attention %q2, %k2, %v2 : (tensor<2x32x1x128xbf16>, tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>) -> tensor<2x32x1x128xbf16>
  return %o, %o2 : tensor<1x32x1x128xbf16>, tensor<2x32x1x128xbf16>
}
