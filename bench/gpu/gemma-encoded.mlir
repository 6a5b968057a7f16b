// Gemma 3 270M's decode attention (Hq = 4, Hkv = 1, D = 256, bf16 queries) over a KVComp-encoded
// cache (K eps 0.05 in 64-token blocks, V eps 0.1 per token in 256-token blocks: the encoded
// kernels need value_block to be a multiple of D), for `kvc-bench encoded check-npy` on the
// real-model cases of python -m kvc.bench.gemma_decode_cases.
!enc = !kvc.encoded_cache<tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 256, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>>
func.func @decode_encoded(%q: tensor<?x4x1x256xbf16>, %c: !enc) -> tensor<?x4x1x256xbf16> {
  %k, %v = kvc.cache.view %c : !enc -> tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x4x1x256xbf16>, tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>) -> tensor<?x4x1x256xbf16>
  return %o : tensor<?x4x1x256xbf16>
}
