// A KVComp-encoded KV cache that lives on the GPU, driven by compiled code only
// (examples/gpu/encoded_ir.c): @prefill encodes the prompt's keys and values (K eps 0.05 per
// 64-token block, V eps 0.1 per token, 128/256 unencoded recent tokens); every @step appends the
// new token's K/V (window-append kernel, then the KVComp store kernels on the blocks that fall
// due) and runs decode attention on the encoded cache. GQA 32 query heads over 8 KV heads,
// D = 128, bf16, batch 2. The cache is an i64 handle in the compiled code.
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>, #codec>
!dense = !kvc.cache<tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>>

func.func @prefill(%k: tensor<2x8x?x128xbf16>, %v: tensor<2x8x?x128xbf16>) -> !enc {
  %c = kvc.cache.from_tensors %k, %v : tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16> -> !dense
  %e = kvc.encode %c : !dense -> !enc
  return %e : !enc
}

func.func @step(%q: tensor<2x32x1x128xbf16>, %cache: !enc, %k: tensor<2x8x1x128xbf16>,
                %v: tensor<2x8x1x128xbf16>) -> (tensor<2x32x1x128xbf16>, !enc) {
  %next = kvc.cache.append %cache, %k, %v : !enc, tensor<2x8x1x128xbf16>, tensor<2x8x1x128xbf16> -> !enc
  %kk, %vv = kvc.cache.view %next : !enc -> tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>
  %o = kvc.attention %q, %kk, %vv : (tensor<2x32x1x128xbf16>, tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>) -> tensor<2x32x1x128xbf16>
  return %o, %next : tensor<2x32x1x128xbf16>, !enc
}
