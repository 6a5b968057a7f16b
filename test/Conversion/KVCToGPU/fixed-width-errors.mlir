// RUN: kvc-opt %s -split-input-file -convert-kvc-to-gpu -verify-diagnostics
// Fixed-width (entropy = none) caches the kernels do not support are diagnosed, none falls
// back silently.

!k01 = !kvc.encoded_cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 1.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>>
func.func @key_symbols(%q: tensor<1x8x1x128xbf16>, %c: !k01) -> tensor<1x8x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !k01 -> tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>
  // expected-error @+1 {{convert-kvc-to-gpu: encoded cache: entropy = none keeps key symbols in 5 bits, but key_error = 0.01 gives symbols up to 100 (> 31): raise key_error above 1/31.5 = 0.03175 or run kvc-entropy-encode}}
  %o = kvc.attention %q, %k, %v : (tensor<1x8x1x128xbf16>, tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>) -> tensor<1x8x1x128xbf16>
  return %o : tensor<1x8x1x128xbf16>
}

// -----

!v05 = !kvc.encoded_cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 5.000000e-02 : f64, entropy = none, recent_keys = 128, recent_values = 256>>
func.func @value_symbols(%q: tensor<1x8x1x128xbf16>, %c: !v05) -> tensor<1x8x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !v05 -> tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>
  // expected-error @+1 {{convert-kvc-to-gpu: encoded cache: entropy = none keeps value symbols in 4 bits, but value_error = 0.05 gives symbols up to 20 (> 15): raise value_error above 1/15.5 = 0.06452 or run kvc-entropy-encode}}
  %o = kvc.attention %q, %k, %v : (tensor<1x8x1x128xbf16>, tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>) -> tensor<1x8x1x128xbf16>
  return %o : tensor<1x8x1x128xbf16>
}

// -----

!fw = !kvc.encoded_cache<tensor<1x2x?x128xf32>, tensor<1x2x?x128xf32>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>>
func.func @f32_query(%q: tensor<1x8x1x128xf32>, %c: !fw) -> tensor<1x8x1x128xf32> {
  %k, %v = kvc.cache.view %c : !fw -> tensor<1x2x?x128xf32>, tensor<1x2x?x128xf32>
  // expected-error @+1 {{convert-kvc-to-gpu: fixed-width cache: query element type must be bf16 or f16 (tensor-core operands), got f32}}
  %o = kvc.attention %q, %k, %v : (tensor<1x8x1x128xf32>, tensor<1x2x?x128xf32>, tensor<1x2x?x128xf32>) -> tensor<1x8x1x128xf32>
  return %o : tensor<1x8x1x128xf32>
}

// -----

!fw = !kvc.encoded_cache<tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>>
func.func @group16(%q: tensor<1x32x1x128xbf16>, %c: !fw) -> tensor<1x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !fw -> tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>
  // expected-error @+1 {{convert-kvc-to-gpu: fixed-width cache: g = Hq / Hkv must be in [1, 8] (the mma's n = 8 query rows), got 16}}
  %o = kvc.attention %q, %k, %v : (tensor<1x32x1x128xbf16>, tensor<1x2x?x128xbf16>, tensor<1x2x?x128xbf16>) -> tensor<1x32x1x128xbf16>
  return %o : tensor<1x32x1x128xbf16>
}

// -----

!fw = !kvc.encoded_cache<tensor<1x2x?x96xbf16>, tensor<1x2x?x96xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>>
func.func @sq2(%q: tensor<1x8x2x96xbf16>, %c: !fw) -> tensor<1x8x2x96xbf16> {
  %k, %v = kvc.cache.view %c : !fw -> tensor<1x2x?x96xbf16>, tensor<1x2x?x96xbf16>
  // expected-error @+1 {{convert-kvc-to-gpu: fixed-width cache: the kernels decode one query position (Sq = 1), got Sq = 2}}
  %o = kvc.attention %q, %k, %v : (tensor<1x8x2x96xbf16>, tensor<1x2x?x96xbf16>, tensor<1x2x?x96xbf16>) -> tensor<1x8x2x96xbf16>
  return %o : tensor<1x8x2x96xbf16>
}

// -----

!fw = !kvc.encoded_cache<tensor<1x2x?x320xbf16>, tensor<1x2x?x320xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 320, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>>
func.func @d320(%q: tensor<1x8x1x320xbf16>, %c: !fw) -> tensor<1x8x1x320xbf16> {
  %k, %v = kvc.cache.view %c : !fw -> tensor<1x2x?x320xbf16>, tensor<1x2x?x320xbf16>
  // expected-error @+1 {{convert-kvc-to-gpu: fixed-width cache: head dim must be a multiple of 32 in [32, 256], got 320}}
  %o = kvc.attention %q, %k, %v : (tensor<1x8x1x320xbf16>, tensor<1x2x?x320xbf16>, tensor<1x2x?x320xbf16>) -> tensor<1x8x1x320xbf16>
  return %o : tensor<1x8x1x320xbf16>
}

