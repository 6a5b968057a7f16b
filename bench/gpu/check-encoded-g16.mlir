// An encoded-cache variant for `kvc-bench encoded check` with more of the multi-symbol
// decoder's zero pad entries than threads: f16 D=64 g=16 (5 rows x 16 columns = 80 entries, 64
// threads, with 3 slots). Its own file: with 11-bit multi-symbol tables it needs more than
// 48 KiB of shared memory, so it is built for the default and the 10-bit decoders only.
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
// D = 64 with g = 16: more rows of the multi-symbol decoder's zero padding than threads.
func.func @f16_d64_g16(%q: tensor<?x16x1x64xf16>, %c: !kvc.encoded_cache<tensor<?x1x?x64xf16>, tensor<?x1x?x64xf16>, #codec>) -> tensor<?x16x1x64xf16> {
  %k, %v = kvc.cache.view %c : !kvc.encoded_cache<tensor<?x1x?x64xf16>, tensor<?x1x?x64xf16>, #codec> -> tensor<?x1x?x64xf16>, tensor<?x1x?x64xf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x16x1x64xf16>, tensor<?x1x?x64xf16>, tensor<?x1x?x64xf16>) -> tensor<?x16x1x64xf16>
  return %o : tensor<?x16x1x64xf16>
}
