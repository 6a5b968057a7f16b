// The whole GPU pipeline to PTX text (format=isa needs no CUDA install): kernels for sm_90a,
// PTX 8.0, 128-bit global loads, warp shuffles, ex2, one CTA barrier; host code keeps the
// launch against the gpu.binary (one: the merge is fused by default; split + merge with
// fuse-merge=false).
// RUN: kvc-opt %s --kvc-gpu-pipeline | FileCheck %s
// RUN: kvc-opt %s --kvc-gpu-pipeline="fuse-merge=false" | FileCheck %s --check-prefix=SPLIT
// RUN: kvc-opt %s --kvc-gpu-pipeline="print-pipeline=1" -o /dev/null 2>&1 | FileCheck %s --check-prefix=PIPE
// With ptxas installed: the PTX assembles for sm_90a (format=bin runs ptxas).
// RUN: %if ptxas %{ env PATH=/usr/local/cuda/bin:%PATH% kvc-opt %s --kvc-gpu-pipeline="format=bin" | FileCheck %s --check-prefix=BIN %}

// PIPE: convert-kvc-to-gpu{block-size=128 {{.*}}fuse-merge=true {{.*}}num-splits=0 output-memory=managed prefetch=true small-rows=8 unroll=4}
// PIPE-SAME: gpu-kernel-outlining
// PIPE-SAME: nvvm-attach-target{O=3 chip=sm_90a
// PIPE-SAME: features=+ptx80
// PIPE-SAME: gpu.module(convert-vector-to-scf
// PIPE-SAME: convert-gpu-to-nvvm
// PIPE-SAME: gpu-module-to-binary{{.*}}format=isa

// The batch is dynamic, so the host code picks the split kernel at run time: B*Hkv <= 8
// (small-rows) launches the block-256 unroll-2 specialisation, more rows the default one.
// CHECK-LABEL: func.func @decode
// CHECK: %[[FEW:.*]] = arith.cmpi ule, %{{.*}}, %c8{{.*}} : index
// CHECK: scf.if %[[FEW]] {
// CHECK: call @kvc_rt_gpu_workspace_i32
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn1_d128_g4_q1_bf16_b256_u2_fm_pf_split
// CHECK: } else {
// CHECK: call @kvc_rt_gpu_workspace_i32
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf_split
// CHECK-NOT: gpu.launch_func
// CHECK: gpu.binary @kvc_gpu [#gpu.object<#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">
// CHECK-SAME: assembly = "
// CHECK-SAME: .version 8.0
// CHECK-SAME: .target sm_90a
// CHECK-SAME: .entry kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf_split(
// CHECK-SAME: ld.global.v4.b32
// CHECK-SAME: cvt.f32.bf16
// CHECK-SAME: shfl.sync.bfly.b32
// CHECK-SAME: ex2.approx.f32
// CHECK-SAME: bar.sync
// CHECK-SAME: atom.acq_rel.gpu.add.u32
// CHECK-SAME: .entry kvc_attn1_d128_g4_q1_bf16_b256_u2_fm_pf_split(
// CHECK-NOT: .entry

// SPLIT-LABEL: func.func @decode
// SPLIT: gpu.launch_func @kvc_gpu::@kvc_attn1_d128_g4_q1_bf16_b256_u2_pf_split
// SPLIT: gpu.launch_func @kvc_gpu::@kvc_attn1_d128_g4_q1_bf16_b256_u2_pf_merge
// SPLIT: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b128_u4_pf_split
// SPLIT: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b128_u4_pf_merge
// SPLIT: .entry kvc_attn0_d128_g4_q1_bf16_b128_u4_pf_split(
// SPLIT-SAME: .entry kvc_attn0_d128_g4_q1_bf16_b128_u4_pf_merge(

// BIN: gpu.binary @kvc_gpu [#gpu.object<#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">
// BIN-SAME: bin = "

func.func @decode(%q: tensor<?x32x1x128xbf16>, %k: tensor<?x8x?x128xbf16>,
                  %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16> {
  %o = kvc.attention %q, %k, %v {causal} : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
