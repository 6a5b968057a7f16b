// Decode attention over a fixed-width KVComp cache (K eps 0.05 block groups, V eps 0.1 token
// groups, entropy = none: 5-bit key / 4-bit value symbols), Sq = 1, Hq = 32, Hkv = 8, D = 128,
// bf16 queries: the shape of the encoded benchmark.
!enc = !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>>
func.func @decode_fixed_width(%q: tensor<?x32x1x128xbf16>, %c: !enc) -> tensor<?x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !enc -> tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
  %o = kvc.attention %q, %k, %v {causal} : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
