// Fixed-width (entropy = none) kernel variants checked by `kvc-bench fixed-width check` on the
// GPU: bf16 D=128 g=4 kb64 (the benchmark's; cp.async ring), f16 D=64 g=8 kb32 (ring), bf16
// D=256 g=8 kb32 (Gemma 3's head dim; words straight to registers), f16 D=96 g=3 kb128 (padded
// key words, 3 of 8 fragment rows used), bf16 D=32 g=1.
func.func @bf16_d128_g4(%q: tensor<?x32x1x128xbf16>, %c: !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>>) -> tensor<?x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>> -> tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
func.func @f16_d64_g8(%q: tensor<?x16x1x64xf16>, %c: !kvc.encoded_cache<tensor<?x2x?x64xf16>, tensor<?x2x?x64xf16>, #kvc.codec<bits = 0, key_group = block, key_block = 32, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>>) -> tensor<?x16x1x64xf16> {
  %k, %v = kvc.cache.view %c : !kvc.encoded_cache<tensor<?x2x?x64xf16>, tensor<?x2x?x64xf16>, #kvc.codec<bits = 0, key_group = block, key_block = 32, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>> -> tensor<?x2x?x64xf16>, tensor<?x2x?x64xf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x16x1x64xf16>, tensor<?x2x?x64xf16>, tensor<?x2x?x64xf16>) -> tensor<?x16x1x64xf16>
  return %o : tensor<?x16x1x64xf16>
}
func.func @bf16_d256_g8(%q: tensor<?x8x1x256xbf16>, %c: !kvc.encoded_cache<tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 32, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>>) -> tensor<?x8x1x256xbf16> {
  %k, %v = kvc.cache.view %c : !kvc.encoded_cache<tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 32, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>> -> tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x8x1x256xbf16>, tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>) -> tensor<?x8x1x256xbf16>
  return %o : tensor<?x8x1x256xbf16>
}
func.func @f16_d96_g3(%q: tensor<?x6x1x96xf16>, %c: !kvc.encoded_cache<tensor<?x2x?x96xf16>, tensor<?x2x?x96xf16>, #kvc.codec<bits = 0, key_group = block, key_block = 128, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>>) -> tensor<?x6x1x96xf16> {
  %k, %v = kvc.cache.view %c : !kvc.encoded_cache<tensor<?x2x?x96xf16>, tensor<?x2x?x96xf16>, #kvc.codec<bits = 0, key_group = block, key_block = 128, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>> -> tensor<?x2x?x96xf16>, tensor<?x2x?x96xf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x6x1x96xf16>, tensor<?x2x?x96xf16>, tensor<?x2x?x96xf16>) -> tensor<?x6x1x96xf16>
  return %o : tensor<?x6x1x96xf16>
}
func.func @bf16_d32_g1(%q: tensor<?x2x1x32xbf16>, %c: !kvc.encoded_cache<tensor<?x2x?x32xbf16>, tensor<?x2x?x32xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>>) -> tensor<?x2x1x32xbf16> {
  %k, %v = kvc.cache.view %c : !kvc.encoded_cache<tensor<?x2x?x32xbf16>, tensor<?x2x?x32xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>> -> tensor<?x2x?x32xbf16>, tensor<?x2x?x32xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x2x1x32xbf16>, tensor<?x2x?x32xbf16>, tensor<?x2x?x32xbf16>) -> tensor<?x2x1x32xbf16>
  return %o : tensor<?x2x1x32xbf16>
}
