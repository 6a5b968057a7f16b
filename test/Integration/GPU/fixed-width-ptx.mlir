// The whole GPU pipeline to PTX for attention over a fixed-width KVComp cache (entropy = none):
// sm_90a, the register cap (.minnctapersm 4), the cp.async ring (16-byte copies bypassing L1,
// read back with 16-byte shared loads), the packed bf16x2/f16x2 fmas of the decode, tensor-core
// mma for keys (bf16) and values/window (f16), both entries.
// RUN: kvc-opt %s --kvc-gpu-pipeline | FileCheck %s
// With ptxas installed: the PTX assembles for sm_90a, and the split kernel fits the 4-CTAs/SM
// register budget (<= 128) without spilling.
// RUN: %if ptxas %{ kvc-opt %s --kvc-gpu-pipeline -o %t.mlir && kvc-bench extract %t.mlir -o %t.ptx && env PATH=/usr/local/cuda/bin:%PATH% ptxas -arch=sm_90a -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS %}

// CHECK-LABEL: func.func @decode_fixed_width(%arg0: tensor<?x32x1x128xbf16>, %arg1: i64)
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_kb64_fw_split
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_kb64_fw_merge
// CHECK: gpu.binary @kvc_gpu [#gpu.object<#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">
// CHECK-SAME: .entry kvc_attn0_d128_g4_q1_bf16_kb64_fw_split(
// CHECK-SAME: .maxntid 128, 1, 1
// CHECK-SAME: .minnctapersm 4
// CHECK-SAME: .entry kvc_attn0_d128_g4_q1_bf16_kb64_fw_merge(

// The split kernel's PTX (extracted; the order of the blocks is LLVM's).
// RUN: kvc-opt %s --kvc-gpu-pipeline -o %t.gpu.mlir && kvc-bench extract %t.gpu.mlir -o %t.all.ptx && FileCheck %s --check-prefix=PTX < %t.all.ptx
// PTX-LABEL: .entry kvc_attn0_d128_g4_q1_bf16_kb64_fw_split(
// PTX-DAG: shfl.sync.idx.b32
// PTX-DAG: cp.async.cg.shared.global [{{.*}}], [{{.*}}], 16;
// PTX-DAG: cp.async.commit_group
// PTX-DAG: cp.async.wait_group 0
// PTX-DAG: ld.shared.v4.b32
// PTX-DAG: fma.rn.bf16x2
// PTX-DAG: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// PTX-DAG: bar.warp.sync
// PTX-DAG: fma.rn.f16x2
// PTX-DAG: mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32
// PTX-LABEL: .entry kvc_attn0_d128_g4_q1_bf16_kb64_fw_merge(

// PTXAS: Compiling entry function 'kvc_attn0_d128_g4_q1_bf16_kb64_fw_split' for 'sm_90a'
// PTXAS-NEXT: Function properties
// PTXAS-NEXT: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT: Used {{[0-9]|[1-9][0-9]|1[01][0-9]|12[0-8]}} registers

#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #codec>
func.func @decode_fixed_width(%q: tensor<?x32x1x128xbf16>, %c: !enc) -> tensor<?x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !enc -> tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
  %o = kvc.attention %q, %k, %v {causal} : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
