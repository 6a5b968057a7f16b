// The whole GPU pipeline to PTX for attention over a KVComp-encoded cache: sm_90a, PTX 8.0,
// the register cap (.minnctapersm 8), LUT lookups in shared memory, 64-bit window shifts,
// warp shuffles, ex2, CTA barriers, both entries.
// RUN: kvc-opt %s --kvc-gpu-pipeline | FileCheck %s
// With ptxas installed: the PTX assembles for sm_90a (format=bin runs ptxas), and the AOT path
// (kvc-bench extract + ptxas) gives the split kernel within the 8-CTAs/SM register budget.
// RUN: %if ptxas %{ env PATH=/usr/local/cuda/bin:%PATH% kvc-opt %s --kvc-gpu-pipeline="format=bin" | FileCheck %s --check-prefix=BIN %}
// RUN: %if ptxas %{ kvc-opt %s --kvc-gpu-pipeline -o %t.mlir && kvc-bench extract %t.mlir -o %t.ptx && env PATH=/usr/local/cuda/bin:%PATH% ptxas -arch=sm_90a -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS %}

// encoded-mma: the decoded chunks staged in shared memory and multiplied on tensor cores.
// RUN: kvc-opt %s --kvc-gpu-pipeline="encoded-mma=true" | FileCheck %s --check-prefix=MMA
// MMA: .entry kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_mma_split(
// MMA-SAME: .minnctapersm 8
// MMA-SAME: bar.warp.sync
// MMA-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// MMA-SAME: cvt.rn.bf16x2.f32
// MMA-SAME: st.shared.v4.b32
// MMA-SAME: .entry kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_mma_merge(

// CHECK-LABEL: func.func @decode_encoded(%arg0: tensor<?x32x1x128xbf16>, %arg1: i64)
// CHECK: call @kvc_rt_gpu_encoded_buffer_i32(%arg1, %{{.*}}) : (i64, i64) -> memref<?xi32>
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_split
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_merge
// CHECK: gpu.binary @kvc_gpu [#gpu.object<#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">
// CHECK-SAME: .version 8.0
// CHECK-SAME: .target sm_90a
// CHECK-SAME: .entry kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_split(
// CHECK-SAME: .maxntid 128, 1, 1
// CHECK-SAME: .minnctapersm 8
// CHECK-SAME: cvt.f32.bf16
// CHECK-SAME: bar.sync
// CHECK-SAME: shr.u64
// CHECK-SAME: ld.shared.b32
// CHECK-SAME: shl.b64
// CHECK-SAME: ld.global.v4.b32
// CHECK-SAME: shfl.sync.bfly.b32
// CHECK-SAME: ex2.approx.f32
// CHECK-SAME: .entry kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_merge(

// BIN: gpu.binary @kvc_gpu [#gpu.object<#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">
// BIN-SAME: bin = "

// PTXAS: Compiling entry function 'kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_split' for 'sm_90a'
// PTXAS: Used {{[1-5]?[0-9]|6[0-4]}} registers

#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #codec>
func.func @decode_encoded(%q: tensor<?x32x1x128xbf16>, %c: !enc) -> tensor<?x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !enc -> tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
  %o = kvc.attention %q, %k, %v {causal} : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
