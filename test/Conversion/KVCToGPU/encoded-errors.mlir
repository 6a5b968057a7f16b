// RUN: kvc-opt %s -split-input-file -convert-kvc-to-gpu -verify-diagnostics
// Encoded caches the GPU kernels do not support are diagnosed, none falls back silently.

!kivi = !kvc.encoded_cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>, #kvc.codec<bits = 2, key_group = channel, key_block = 64, key_error = 0.000000e+00 : f64, value_group = token, value_block = 128, value_error = 0.000000e+00 : f64, entropy = none, recent_keys = 128, recent_values = 256>>
func.func @kivi(%q: tensor<1x8x1x128xbf16>, %c: !kivi) -> tensor<1x8x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !kivi -> tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>
  // expected-error @+1 {{convert-kvc-to-gpu: encoded cache: KIVI-style codecs (bits > 0) have no GPU kernel; only the error-bounded codec (bits = 0)}}
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

// -----

// Encoded caches are runtime handles on the GPU path: only kvc.attention may read their view.
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>, #codec>
func.func @decoded_view(%c: !enc) -> tensor<1x2x?x128xbf16> {
  %k, %v = kvc.cache.view %c : !enc -> tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>
  // expected-error @+1 {{convert-kvc-to-gpu: on the GPU path only kvc.attention may read an encoded cache's kvc.cache.view (decoding to tensors is the CPU path's)}}
  return %k : tensor<1x2x?x128xbf16>
}

// -----

// The handle is updated in place by an append, so the old value must not be read afterwards.
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>, #codec>
func.func @read_after_append(%q: tensor<1x8x1x128xbf16>, %c: !enc, %nk: tensor<1x2x1x128xbf16>, %nv: tensor<1x2x1x128xbf16>) -> (tensor<1x8x1x128xbf16>, !enc) {
  %c2 = kvc.cache.append %c, %nk, %nv : !enc, tensor<1x2x1x128xbf16>, tensor<1x2x1x128xbf16> -> !enc
  // expected-error @+1 {{convert-kvc-to-gpu: reads an encoded cache after (or apart from) the kvc.cache.append that updates it in place}}
  %k, %v = kvc.cache.view %c : !enc -> tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<1x8x1x128xbf16>, tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>) -> tensor<1x8x1x128xbf16>
  return %o, %c2 : tensor<1x8x1x128xbf16>, !enc
}

// -----

// kvc.encode on the GPU path encodes dense keys and values it can see.
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>, #codec>
!dense = !kvc.cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>>
func.func @encode_argument(%d: !dense) -> !enc {
  // expected-error @+1 {{convert-kvc-to-gpu: kvc.encode on the GPU path needs the dense keys and values of a kvc.cache.from_tensors}}
  %e = kvc.encode %d : !dense -> !enc
  return %e : !enc
}

// -----

// Appending to a cache whose codec has no GPU store kernels.
!kivi = !kvc.encoded_cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>, #kvc.codec<bits = 2, key_group = channel, key_block = 64, key_error = 0.000000e+00 : f64, value_group = token, value_block = 128, value_error = 0.000000e+00 : f64, entropy = none, recent_keys = 128, recent_values = 256>>
func.func @append_kivi(%c: !kivi, %nk: tensor<1x2x1x128xbf16>, %nv: tensor<1x2x1x128xbf16>) -> !kivi {
  // expected-error @+1 {{convert-kvc-to-gpu: encoded cache: KIVI-style codecs (bits > 0) have no GPU kernel; only the error-bounded codec (bits = 0)}}
  %c2 = kvc.cache.append %c, %nk, %nv : !kivi, tensor<1x2x1x128xbf16>, tensor<1x2x1x128xbf16> -> !kivi
  return %c2 : !kivi
}

// -----

// Calls that pass encoded caches are not lowered.
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>, #codec>
func.func private @consume(!enc)
func.func @call_with_cache(%c: !enc) {
  // expected-error @+1 {{convert-kvc-to-gpu: encoded caches on the GPU path may only be read by kvc.cache.view, kvc.cache.append, kvc.cache.lengths and func.return}}
  func.call @consume(%c) : (!enc) -> ()
  return
}


// -----

// The GPU path reads the handle where attention runs: a view taken before an append but read
// by an attention after it would see the appended tokens, so it is an error.
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>, #codec>
func.func @view_read_after_append(%q: tensor<1x8x1x128xbf16>, %c: !enc, %nk: tensor<1x2x1x128xbf16>, %nv: tensor<1x2x1x128xbf16>) -> (tensor<1x8x1x128xbf16>, !enc) {
  %k, %v = kvc.cache.view %c : !enc -> tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>
  %c2 = kvc.cache.append %c, %nk, %nv : !enc, tensor<1x2x1x128xbf16>, tensor<1x2x1x128xbf16> -> !enc
  // expected-error @+1 {{convert-kvc-to-gpu: reads an encoded cache after (or apart from) the kvc.cache.append that updates it in place}}
  %o = kvc.attention %q, %k, %v : (tensor<1x8x1x128xbf16>, tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>) -> tensor<1x8x1x128xbf16>
  return %o, %c2 : tensor<1x8x1x128xbf16>, !enc
}

// -----

// Appending in a loop body to a cache defined outside it: by value semantics each iteration
// appends to the same cache; the in-place handle would grow every iteration.
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>, #codec>
func.func @append_in_loop(%c: !enc, %nk: tensor<1x2x1x128xbf16>, %nv: tensor<1x2x1x128xbf16>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.for %i = %c0 to %c4 step %c1 {
    // expected-error @+1 {{convert-kvc-to-gpu: appends to an encoded cache defined outside its block (e.g. in a loop body)}}
    %c2 = kvc.cache.append %c, %nk, %nv : !enc, tensor<1x2x1x128xbf16>, tensor<1x2x1x128xbf16> -> !enc
  }
  return
}
