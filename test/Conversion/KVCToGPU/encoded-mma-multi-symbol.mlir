// encoded-mma with the multi-symbol decoder: the lookups write their symbol slots (bf16 bits,
// tables built for bf16: exact up to 256) into a two-chunk staging ring, 16-bit stores at
// (j + k) mod 32, until the chunk is complete; then the warp's mma on that half.
// RUN: kvc-opt %s --convert-kvc-to-gpu="encoded-mma=true encoded-multi-symbol=true" | FileCheck %s --check-prefix=MSW
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #codec>
// MSW: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_enc_mma_ms10x3_split(
// MSW-SAME: memref<10240xi8, #gpu.address_space<workgroup>>
// MSW: arith.cmpf ole, %{{.*}}, %cst{{.*}} : f32
// MSW: arith.truncf %{{.*}} : f32 to bf16
// MSW: scf.for %{{.*}} = %c0{{.*}} to %c8{{.*}} step %c1{{.*}} iter_args({{.*}}) -> (i64, i32, i32, i32, i32, f32, f32, f32, f32, f32, f32, f32, f32)
// MSW:   scf.while
// MSW:     arith.andi %{{.*}}, %c31_i32 : i32
// MSW:     memref.store %{{.*}} : memref<5120xbf16, #gpu.address_space<workgroup>>
// MSW:   nvvm.bar.warp.sync
// MSW:   nvvm.mma.sync
func.func @decode_msw(%q: tensor<?x32x1x128xbf16>, %c: !enc) -> tensor<?x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !enc -> tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}

