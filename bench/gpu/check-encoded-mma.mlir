// Encoded-cache kernels with tensor-core dot products (encoded-mma) checked by `kvc-bench
// encoded check`: bf16 D=128 g=4 (the benchmark's, causal), f16 D=128 g=8 (all 8 mma rows
// used), bf16 D=128 g=2 Sq=2. encoded-mma needs bf16/f16 queries, g*Sq <= 8 and
// value_block == D, so the f32 and D=64 variants of check-encoded.mlir are not here.
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
func.func @bf16_d128_g4(%q: tensor<?x32x1x128xbf16>, %c: !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #codec>) -> tensor<?x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #codec> -> tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
  %o = kvc.attention %q, %k, %v {causal} : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
func.func @f16_d128_g8(%q: tensor<?x16x1x128xf16>, %c: !kvc.encoded_cache<tensor<?x2x?x128xf16>, tensor<?x2x?x128xf16>, #codec>) -> tensor<?x16x1x128xf16> {
  %k, %v = kvc.cache.view %c : !kvc.encoded_cache<tensor<?x2x?x128xf16>, tensor<?x2x?x128xf16>, #codec> -> tensor<?x2x?x128xf16>, tensor<?x2x?x128xf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x16x1x128xf16>, tensor<?x2x?x128xf16>, tensor<?x2x?x128xf16>) -> tensor<?x16x1x128xf16>
  return %o : tensor<?x16x1x128xf16>
}
func.func @bf16_d128_g2_q2(%q: tensor<?x8x2x128xbf16>, %c: !kvc.encoded_cache<tensor<?x4x?x128xbf16>, tensor<?x4x?x128xbf16>, #codec>) -> tensor<?x8x2x128xbf16> {
  %k, %v = kvc.cache.view %c : !kvc.encoded_cache<tensor<?x4x?x128xbf16>, tensor<?x4x?x128xbf16>, #codec> -> tensor<?x4x?x128xbf16>, tensor<?x4x?x128xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x8x2x128xbf16>, tensor<?x4x?x128xbf16>, tensor<?x4x?x128xbf16>) -> tensor<?x8x2x128xbf16>
  return %o : tensor<?x8x2x128xbf16>
}
