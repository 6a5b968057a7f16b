// encoded-overlap: the encoded split kernel decodes tile t's value column and tile t+1's key
// row in one loop (two independent LUT chains per thread, one branch per pair of refill
// groups); the first tile's keys before the tile loop, whose iter_args carry the next tile's
// scores. Where it does not apply (the pair decoder, mma) the kernel is the one without it.
// RUN: kvc-opt %s --convert-kvc-to-gpu="encoded-overlap=true" | FileCheck %s
// RUN: kvc-opt %s --convert-kvc-to-gpu="encoded-overlap=true encoded-unroll=2" | FileCheck %s --check-prefix=PAIR
// RUN: kvc-opt %s --convert-kvc-to-gpu="encoded-overlap=true encoded-mma=true" | FileCheck %s --check-prefix=MMA
// RUN: kvc-opt %s --kvc-gpu-pipeline="encoded-overlap=true" | FileCheck %s --check-prefix=PIPE

#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #codec>

// CHECK: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_ov_split(
// The first tile's key rows, before the tile loop.
// CHECK: scf.for %{{.*}} = %c0_i32 to %c128_i32 step %c8_i32{{.*}} -> (i64, i32, i32, i32, f32, f32, f32, f32)  : i32 {
// The tile loop: m, l, b, acc and the next tile's scores (4 query rows each).
// CHECK: scf.for %{{.*}} step %c1 iter_args({{.*}}) -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32) {
// CHECK: gpu.barrier
// CHECK: gpu.barrier
// The fused loop: two decoder states, 4 + 4 accumulators; per refill group both streams'
// 4 chained lookups, then one branch when either group overruns its window, each stream
// re-decoded on its own only if its own group failed.
// CHECK: scf.for %{{.*}} = %c0_i32 to %c128_i32 step %c8_i32{{.*}} -> (i64, i32, i32, i32, i64, i32, i32, i32, f32, f32, f32, f32, f32, f32, f32, f32)  : i32 {
// CHECK-COUNT-4: memref.load %arg19[
// CHECK: %[[MA:.*]] = arith.cmpi sgt
// CHECK-COUNT-4: memref.load %arg19[
// CHECK: %[[MB:.*]] = arith.cmpi sgt
// CHECK: %[[EITHER:.*]] = arith.ori %[[MA]], %[[MB]] : i1
// CHECK: scf.if %[[EITHER]] -> (f32, f32, f32, f32, i64, i32, i32, i32, f32, f32, f32, f32, i64, i32, i32, i32) {
// CHECK: scf.if %[[MA]] -> (f32, f32, f32, f32, i64, i32, i32, i32) {
// CHECK: scf.if %[[MB]] -> (f32, f32, f32, f32, i64, i32, i32, i32) {
// Value weights (probabilities, %arg21) and key weights (queries, %arg20) in the same loop.
// CHECK: vector.load %arg21[
// CHECK: vector.load %arg20[
// CHECK: scf.yield
// Otherwise (recent rows, the last tile): the value phase, then the next tile's key phase.
// CHECK: } else {
// CHECK: scf.for %{{.*}} -> (i64, i32, i32, i32, f32, f32, f32, f32)  : i32 {
// CHECK: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_ov_merge(

// PAIR: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u2_enc_split(
// PAIR-NOT: -> (i64, i32, i32, i32, i64, i32, i32, i32
// MMA: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_mma_split(
// MMA-NOT: _ov
// PIPE: gpu.binary @kvc_gpu
// PIPE: kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_ov_split
func.func @decode(%q: tensor<?x32x1x128xbf16>, %c: !enc) -> tensor<?x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !enc -> tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
