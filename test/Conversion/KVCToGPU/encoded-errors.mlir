// RUN: kvc-opt %s -split-input-file -convert-kvc-to-gpu -verify-diagnostics
// Encoded caches the GPU kernels do not support are diagnosed, none falls back silently.

!kivi = !kvc.encoded_cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>, #kvc.codec<bits = 2, key_group = channel, key_block = 64, key_error = 0.000000e+00 : f64, value_group = token, value_block = 128, value_error = 0.000000e+00 : f64, entropy = none, recent_keys = 128, recent_values = 256>>
func.func @kivi(%q: tensor<1x8x1x128xbf16>, %c: !kivi) -> tensor<1x8x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !kivi -> tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>
  // expected-error @+1 {{convert-kvc-to-gpu: encoded cache: fixed-width (KIVI, bits > 0) codecs have no GPU kernel; only the error-bounded codec (bits = 0)}}
  %o = kvc.attention %q, %k, %v : (tensor<1x8x1x128xbf16>, tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>) -> tensor<1x8x1x128xbf16>
  return %o : tensor<1x8x1x128xbf16>
}

// -----

!plain = !kvc.encoded_cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>>
func.func @no_entropy(%q: tensor<1x8x1x128xbf16>, %c: !plain) -> tensor<1x8x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !plain -> tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>
  // expected-error @+1 {{convert-kvc-to-gpu: encoded cache: needs entropy = huffman (the GPU layout is the Huffman-coded one; run kvc-entropy-encode)}}
  %o = kvc.attention %q, %k, %v : (tensor<1x8x1x128xbf16>, tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>) -> tensor<1x8x1x128xbf16>
  return %o : tensor<1x8x1x128xbf16>
}

// -----

!chan = !kvc.encoded_cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>, #kvc.codec<bits = 0, key_group = channel, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>>
func.func @channel_keys(%q: tensor<1x8x1x128xbf16>, %c: !chan) -> tensor<1x8x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !chan -> tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>
  // expected-error @+1 {{convert-kvc-to-gpu: encoded cache: needs key_group = block (per-channel key groups have no GPU kernel)}}
  %o = kvc.attention %q, %k, %v : (tensor<1x8x1x128xbf16>, tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>) -> tensor<1x8x1x128xbf16>
  return %o : tensor<1x8x1x128xbf16>
}

// -----

!big = !kvc.encoded_cache<tensor<1x2x?x256xbf16>, tensor<1x2x?x256xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>>
func.func @value_block(%q: tensor<1x8x1x256xbf16>, %c: !big) -> tensor<1x8x1x256xbf16> {
  %k, %v = kvc.cache.view %c : !big -> tensor<1x2x?x256xbf16>, tensor<1x2x?x256xbf16>
  // expected-error @+1 {{convert-kvc-to-gpu: encoded cache: value_block (128) must be a multiple of the head dim (256) and of key_block (64)}}
  %o = kvc.attention %q, %k, %v : (tensor<1x8x1x256xbf16>, tensor<1x2x?x256xbf16>, tensor<1x2x?x256xbf16>) -> tensor<1x8x1x256xbf16>
  return %o : tensor<1x8x1x256xbf16>
}

// -----

!enc = !kvc.encoded_cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>>
func.func @mixed(%q: tensor<1x8x1x128xbf16>, %c: !enc, %v2: tensor<1x2x?x128xbf16>) -> tensor<1x8x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !enc -> tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>
  // expected-error @+1 {{convert-kvc-to-gpu: encoded cache: K and V must be the keys and values of one kvc.cache.view}}
  %o = kvc.attention %q, %k, %v2 : (tensor<1x8x1x128xbf16>, tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>) -> tensor<1x8x1x128xbf16>
  return %o : tensor<1x8x1x128xbf16>
}

// -----

!enc = !kvc.encoded_cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>>
func.func @causal_prefill(%q: tensor<1x8x4x128xbf16>, %c: !enc) -> tensor<1x8x4x128xbf16> {
  %k, %v = kvc.cache.view %c : !enc -> tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>
  // expected-error @+1 {{convert-kvc-to-gpu: causal attention needs Sq == 1}}
  %o = kvc.attention %q, %k, %v {causal} : (tensor<1x8x4x128xbf16>, tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>) -> tensor<1x8x4x128xbf16>
  return %o : tensor<1x8x4x128xbf16>
}

// -----

!enc = !kvc.encoded_cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>>
func.func @softcap(%q: tensor<1x8x1x128xbf16>, %c: !enc) -> tensor<1x8x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !enc -> tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>
  // expected-error @+1 {{convert-kvc-to-gpu: softcap is not supported}}
  %o = kvc.attention %q, %k, %v {softcap = 30.0 : f32} : (tensor<1x8x1x128xbf16>, tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>) -> tensor<1x8x1x128xbf16>
  return %o : tensor<1x8x1x128xbf16>
}

// -----

!enc = !kvc.encoded_cache<tensor<1x1x?x128xbf16>, tensor<1x1x?x128xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>>
func.func @too_many_rows(%q: tensor<1x32x1x128xbf16>, %c: !enc) -> tensor<1x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !enc -> tensor<1x1x?x128xbf16>, tensor<1x1x?x128xbf16>
  // expected-error @+1 {{convert-kvc-to-gpu: encoded cache: g * Sq query rows per KV head must be in [1, 16]}}
  %o = kvc.attention %q, %k, %v : (tensor<1x32x1x128xbf16>, tensor<1x1x?x128xbf16>, tensor<1x1x?x128xbf16>) -> tensor<1x32x1x128xbf16>
  return %o : tensor<1x32x1x128xbf16>
}
