// kvc-gpu-pipeline{host=llvm}: the host side is lowered too (one-shot bufferization at identity
// layouts, C wrappers, gpu-to-llvm), so mlir-translate gives an LLVM module whose host code
// calls the mgpu* ABI (implemented by libkvc_runtime, MgpuABI.cpp) and loads the embedded PTX
// from a global constructor. examples/gpu/decode_ir.c runs such a module (kvc-decode-ir-example).
// RUN: kvc-opt %s --kvc-gpu-pipeline="host=llvm" | FileCheck %s
// RUN: kvc-opt %s --kvc-gpu-pipeline="host=llvm" | mlir-translate --mlir-to-llvmir | FileCheck %s --check-prefix=LLVM
// RUN: not kvc-opt %s --kvc-gpu-pipeline="host=cpu" 2>&1 | FileCheck %s --check-prefix=BADHOST
// Encoded caches too (examples/gpu/encoded.mlir, run by kvc-encoded-ir-example): the cache is
// an i64 handle, kvc.encode and the append's bookkeeping call libkvc_runtime, the window-append,
// store, split and merge kernels are launched through mgpu*.
// RUN: kvc-opt %S/../../../examples/gpu/encoded.mlir --kvc-gpu-pipeline="host=llvm" | mlir-translate --mlir-to-llvmir | FileCheck %s --check-prefix=ENC

// CHECK: llvm.func @decode(
// The workspaces (partials, the fused merge's arrival counters) come from libkvc_runtime's
// per-thread cache through its C interface; only the returned output is allocated (managed
// memory), and nothing is zeroed or freed per call.
// The batch is dynamic: B*Hkv <= 8 branches to the block-256 unroll-2 kernel (small-rows).
// CHECK: llvm.call @mgpuMemAlloc
// CHECK: llvm.icmp "ule"
// CHECK: llvm.cond_br
// CHECK: llvm.call @kvc_rt_gpu_decode_splits(
// CHECK: llvm.call @kvc_rt_gpu_workspace_f32(
// CHECK: llvm.call @kvc_rt_gpu_workspace_f32(
// CHECK: llvm.call @kvc_rt_gpu_workspace_i32(
// CHECK-NOT: mgpuMemset32
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn1_d128_g4_q1_bf16_b256_u2_fm_pf_split
// CHECK: llvm.call @kvc_rt_gpu_decode_splits(
// CHECK: llvm.call @kvc_rt_gpu_workspace_f32(
// CHECK: llvm.call @kvc_rt_gpu_workspace_f32(
// CHECK: llvm.call @kvc_rt_gpu_workspace_i32(
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf_split
// CHECK-NOT: gpu.launch_func
// CHECK-NOT: mgpuMemFree
// CHECK: llvm.func @_mlir_ciface_decode(
// CHECK: gpu.binary @kvc_gpu
// CHECK-NOT: func.func
// CHECK-NOT: memref.alloc

// LLVM: @__kvc_name_kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf = private constant [40 x i8] c"kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf\00"
// LLVM: @__kvc_name_kvc_attn1_d128_g4_q1_bf16_b256_u2_fm_pf = private constant [40 x i8] c"kvc_attn1_d128_g4_q1_bf16_b256_u2_fm_pf\00"
// LLVM: @llvm.global_ctors = appending global {{.*}} @kvc_gpu_load
// LLVM: define {{.*}} @decode(
// LLVM: call i64 @kvc_rt_gpu_decode_splits(ptr {{.*}}, ptr @__kvc_name_kvc_attn1_d128_g4_q1_bf16_b256_u2_fm_pf, i64 0, i64 40, i64 1, i64
// LLVM: call {{.*}} @kvc_rt_gpu_workspace_i32(i64 0, i64
// LLVM: call i64 @kvc_rt_gpu_decode_splits(ptr {{.*}}, ptr @__kvc_name_kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf, i64 0, i64 40, i64 1, i64
// LLVM: call {{.*}} @kvc_rt_gpu_workspace_i32(i64 0, i64
// LLVM: call ptr @mgpuModuleGetFunction(
// LLVM: call void @mgpuLaunchKernel(
// LLVM: call void @mgpuStreamSynchronize(
// LLVM: define void @_mlir_ciface_decode(ptr
// LLVM: call ptr @mgpuModuleLoadJIT(ptr @kvc_gpu_binary

// BADHOST: error: kvc-gpu-pipeline: host must be 'gpu' (stop at gpu.launch_func) or 'llvm' (lower the host code too), got 'cpu'
// ENC-DAG: declare i64 @_mlir_ciface_kvc_rt_gpu_encode_bf16(i64, i64, i64, double, i64, double, i64, i64, i64, i64, ptr, ptr, ptr)
// ENC-DAG: declare void @_mlir_ciface_kvc_rt_gpu_encoded_buffer_i32(ptr, i64, i64)
// ENC-DAG: declare void @_mlir_ciface_kvc_rt_gpu_encoded_append_begin(i64, i64, ptr)
// ENC-DAG: declare void @_mlir_ciface_kvc_rt_gpu_encoded_append_end(i64, i64)
// ENC-DAG: define i64 @_mlir_ciface_prefill(ptr
// ENC-DAG: define void @_mlir_ciface_step(ptr
// ENC-DAG: c"kvc_window_d128_bf16\00"
// ENC-DAG: c"kvc_store_d128_kb64_vb128_f16_kblk_kstore\00"
// ENC-DAG: c"kvc_store_d128_kb64_vb128_f16_kblk_vstore\00"
// ENC-DAG: c"kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_split\00"
// ENC-DAG: c"kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_merge\00"

func.func @decode(%q: tensor<?x32x1x128xbf16>, %k: tensor<?x8x?x128xbf16>,
                  %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16> {
  %o = kvc.attention %q, %k, %v : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
