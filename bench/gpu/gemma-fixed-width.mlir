// Gemma 3 270M's decode attention (Hq = 4, Hkv = 1, D = 256, bf16 queries; softmax scale
// 1/sqrt(256), Gemma's query_pre_attn_scalar) over a fixed-width (entropy = none) KVComp cache:
// K eps 0.05 in key blocks of 32, 64 and 128 tokens (one function each: the fixed-width kernels
// take the key block from the codec, everything else of the cache from kvc_fw_pack), V eps 0.1
// per token (value_block 128, the codec's default: the fixed-width kernels do not depend on it),
// recent windows 128/256 -- the bounds of bench/gpu/gemma-encoded.mlir. For
// `kvc-bench fixed-width check-npy` on the real-model cases of
// python -m kvc.bench.gemma_decode_cases (bench/gpu/build-fixed-width-tests.sh).
!enc32 = !kvc.encoded_cache<tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 32, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>>
!enc64 = !kvc.encoded_cache<tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>>
!enc128 = !kvc.encoded_cache<tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 128, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>>
func.func @decode_fixed_width_kb32(%q: tensor<?x4x1x256xbf16>, %c: !enc32) -> tensor<?x4x1x256xbf16> {
  %k, %v = kvc.cache.view %c : !enc32 -> tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x4x1x256xbf16>, tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>) -> tensor<?x4x1x256xbf16>
  return %o : tensor<?x4x1x256xbf16>
}
func.func @decode_fixed_width_kb64(%q: tensor<?x4x1x256xbf16>, %c: !enc64) -> tensor<?x4x1x256xbf16> {
  %k, %v = kvc.cache.view %c : !enc64 -> tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x4x1x256xbf16>, tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>) -> tensor<?x4x1x256xbf16>
  return %o : tensor<?x4x1x256xbf16>
}
func.func @decode_fixed_width_kb128(%q: tensor<?x4x1x256xbf16>, %c: !enc128) -> tensor<?x4x1x256xbf16> {
  %k, %v = kvc.cache.view %c : !enc128 -> tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x4x1x256xbf16>, tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>) -> tensor<?x4x1x256xbf16>
  return %o : tensor<?x4x1x256xbf16>
}
