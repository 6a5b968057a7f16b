// Encoded-cache (KVComp) kernel variants checked by `kvc-bench encoded check` on the GPU:
// bf16 D=128 g=4 (the benchmark's), f32 queries D=128 g=4 (tight tolerance: exposes any decode
// error), f16 D=64 g=8 (two key rows per thread), bf16 D=128 g=2 Sq=2
// (check-encoded-g16.mlir: f16 D=64 g=16).
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
func.func @bf16_d128_g4(%q: tensor<?x32x1x128xbf16>, %c: !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #codec>) -> tensor<?x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #codec> -> tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
  %o = kvc.attention %q, %k, %v {causal} : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
func.func @f32_d128_g4(%q: tensor<?x32x1x128xf32>, %c: !kvc.encoded_cache<tensor<?x8x?x128xf32>, tensor<?x8x?x128xf32>, #codec>) -> tensor<?x32x1x128xf32> {
  %k, %v = kvc.cache.view %c : !kvc.encoded_cache<tensor<?x8x?x128xf32>, tensor<?x8x?x128xf32>, #codec> -> tensor<?x8x?x128xf32>, tensor<?x8x?x128xf32>
  %o = kvc.attention %q, %k, %v : (tensor<?x32x1x128xf32>, tensor<?x8x?x128xf32>, tensor<?x8x?x128xf32>) -> tensor<?x32x1x128xf32>
  return %o : tensor<?x32x1x128xf32>
}
func.func @f16_d64_g8(%q: tensor<?x16x1x64xf16>, %c: !kvc.encoded_cache<tensor<?x2x?x64xf16>, tensor<?x2x?x64xf16>, #codec>) -> tensor<?x16x1x64xf16> {
  %k, %v = kvc.cache.view %c : !kvc.encoded_cache<tensor<?x2x?x64xf16>, tensor<?x2x?x64xf16>, #codec> -> tensor<?x2x?x64xf16>, tensor<?x2x?x64xf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x16x1x64xf16>, tensor<?x2x?x64xf16>, tensor<?x2x?x64xf16>) -> tensor<?x16x1x64xf16>
  return %o : tensor<?x16x1x64xf16>
}
func.func @bf16_d128_g2_q2(%q: tensor<?x8x2x128xbf16>, %c: !kvc.encoded_cache<tensor<?x4x?x128xbf16>, tensor<?x4x?x128xbf16>, #codec>) -> tensor<?x8x2x128xbf16> {
  %k, %v = kvc.cache.view %c : !kvc.encoded_cache<tensor<?x4x?x128xbf16>, tensor<?x4x?x128xbf16>, #codec> -> tensor<?x4x?x128xbf16>, tensor<?x4x?x128xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x8x2x128xbf16>, tensor<?x4x?x128xbf16>, tensor<?x4x?x128xbf16>) -> tensor<?x8x2x128xbf16>
  return %o : tensor<?x8x2x128xbf16>
}
