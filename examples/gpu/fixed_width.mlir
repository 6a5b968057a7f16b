// A fixed-width KVComp cache (entropy = none) on the GPU, driven by compiled code only
// (examples/gpu/fixed_width_ir.c): @prefill quantizes the prompt's keys and values (K eps 0.05
// per 64-token block, V eps 0.1 per token, 128/256 recent tokens in fp16) into the fixed-width
// device form (5-bit key and 4-bit value symbols in tensor-core fragment order); @decode runs
// attention on it with the fixed-width kernels (decode straight into mma.sync operands); @step
// appends a token per row (the runtime's host-assisted appender: the CPU codec encodes the
// blocks that fall due, the changed parts of the device form are copied over) and decodes.
// GQA 32 query heads over 8 KV heads, D = 128, bf16, batch 2.
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>
!fw = !kvc.encoded_cache<tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>, #codec>
!dense = !kvc.cache<tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>>

func.func @prefill(%k: tensor<2x8x?x128xbf16>, %v: tensor<2x8x?x128xbf16>) -> !fw {
  %c = kvc.cache.from_tensors %k, %v : tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16> -> !dense
  %e = kvc.encode %c : !dense -> !fw
  return %e : !fw
}

func.func @step(%q: tensor<2x32x1x128xbf16>, %cache: !fw, %k: tensor<2x8x1x128xbf16>,
                %v: tensor<2x8x1x128xbf16>) -> (tensor<2x32x1x128xbf16>, !fw) {
  %next = kvc.cache.append %cache, %k, %v : !fw, tensor<2x8x1x128xbf16>, tensor<2x8x1x128xbf16> -> !fw
  %kk, %vv = kvc.cache.view %next : !fw -> tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>
  %o = kvc.attention %q, %kk, %vv : (tensor<2x32x1x128xbf16>, tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>) -> tensor<2x32x1x128xbf16>
  return %o, %next : tensor<2x32x1x128xbf16>, !fw
}

func.func @decode(%q: tensor<2x32x1x128xbf16>, %cache: !fw) -> tensor<2x32x1x128xbf16> {
  %kk, %vv = kvc.cache.view %cache : !fw -> tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>
  %o = kvc.attention %q, %kk, %vv : (tensor<2x32x1x128xbf16>, tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>) -> tensor<2x32x1x128xbf16>
  return %o : tensor<2x32x1x128xbf16>
}
