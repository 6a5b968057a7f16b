// encoded-lut-l1: the grouped decoder looks codes up in a 32-entry first-level table per
// stream (words 4096..4159 of the workgroup LUT, built in the prologue from the 11-bit LUT's
// entry at k << 6 when that code is <= 5 bits, else 63) and in the 11-bit LUT only where the
// first level says 63. Where it does not apply (the pair decoder) the kernel has no _l1.
// RUN: kvc-opt %s --convert-kvc-to-gpu="encoded-lut-l1=true" | FileCheck %s
// RUN: kvc-opt %s --convert-kvc-to-gpu="encoded-lut-l1=true encoded-unroll=2" | FileCheck %s --check-prefix=PAIR

#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #codec>

// CHECK: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_l1_split(
// CHECK-SAME: workgroup(%[[LUT:.*]] : memref<4160xi32, #gpu.address_space<workgroup>>
// The first levels: threads 0..63, entry = the 11-bit entry if its length <= 5, else 63.
// CHECK: arith.cmpi ult, %{{.*}}, %c64
// CHECK: memref.load %arg4[
// CHECK: arith.andi %{{.*}}, %c63_i32
// CHECK: arith.cmpi ule, %{{.*}}, %c5_i32
// CHECK: arith.select %{{.*}}, %{{.*}}, %c63_i32
// CHECK: memref.store %{{.*}}, %[[LUT]][
// A lookup: the top 5 bits index the first level; a 63 there loads the 11-bit entry.
// CHECK: scf.for %{{.*}} -> (i64, i32, i32, i32, f32, f32, f32, f32)  : i32 {
// CHECK: arith.shrui %{{.*}}, %c27_i32
// CHECK: %[[E1:.*]] = memref.load %[[LUT]][
// CHECK: %[[LONG:.*]] = arith.cmpi eq, %[[E1]], %c63_i32
// CHECK: scf.if %[[LONG]] -> (i32) {
// CHECK:   arith.shrui %{{.*}}, %c21_i32
// CHECK:   memref.load %[[LUT]][
// CHECK: } else {
// CHECK:   scf.yield %[[E1]] : i32

// PAIR: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u2_enc_split(
// PAIR-SAME: memref<4096xi32
func.func @decode(%q: tensor<?x32x1x128xbf16>, %c: !enc) -> tensor<?x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !enc -> tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
