// RUN: kvc-opt %s -split-input-file -verify-diagnostics

func.func @heads_not_divisible(%q: tensor<1x6x4x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x16xf32>) -> tensor<1x6x4x16xf32> {
  // expected-error @+1 {{'kvc.attention' op query heads (6) must be a multiple of key/value heads (4)}}
  %0 = kvc.attention %q, %k, %v : (tensor<1x6x4x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>) -> tensor<1x6x4x16xf32>
  return %0 : tensor<1x6x4x16xf32>
}

// -----

func.func @head_dim_mismatch(%q: tensor<1x4x4x16xf32>, %k: tensor<1x4x8x32xf32>, %v: tensor<1x4x8x16xf32>) -> tensor<1x4x4x16xf32> {
  // expected-error @+1 {{'kvc.attention' op query head dim 16 differs from key head dim 32}}
  %0 = kvc.attention %q, %k, %v : (tensor<1x4x4x16xf32>, tensor<1x4x8x32xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x4x16xf32>
  return %0 : tensor<1x4x4x16xf32>
}

// -----

func.func @kv_len_mismatch(%q: tensor<1x4x4x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x9x16xf32>) -> tensor<1x4x4x16xf32> {
  // expected-error @+1 {{'kvc.attention' op key and value sequence lengths differ (8 vs 9)}}
  %0 = kvc.attention %q, %k, %v : (tensor<1x4x4x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x9x16xf32>) -> tensor<1x4x4x16xf32>
  return %0 : tensor<1x4x4x16xf32>
}

// -----

func.func @batch_mismatch(%q: tensor<2x4x4x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x16xf32>) -> tensor<2x4x4x16xf32> {
  // expected-error @+1 {{'kvc.attention' op batch sizes differ: query 2, key 1, value 1}}
  %0 = kvc.attention %q, %k, %v : (tensor<2x4x4x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>) -> tensor<2x4x4x16xf32>
  return %0 : tensor<2x4x4x16xf32>
}

// -----

func.func @wrong_rank(%q: tensor<4x4x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x16xf32>) -> tensor<1x4x4x16xf32> {
  // expected-error @+1 {{'kvc.attention' op expects rank-4 query [B,Hq,Sq,D], key [B,Hkv,Skv,D] and value [B,Hkv,Skv,Dv], got ranks 3, 4, 4}}
  %0 = kvc.attention %q, %k, %v : (tensor<4x4x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x4x16xf32>
  return %0 : tensor<1x4x4x16xf32>
}

// -----

func.func @result_shape(%q: tensor<1x4x4x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x24xf32>) -> tensor<1x4x4x16xf32> {
  // expected-error @+1 {{'kvc.attention' op result dimension 3 is 16, expected 24 ([B,Hq,Sq,Dv])}}
  %0 = kvc.attention %q, %k, %v : (tensor<1x4x4x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x24xf32>) -> tensor<1x4x4x16xf32>
  return %0 : tensor<1x4x4x16xf32>
}

// -----

func.func @mixed_types(%q: tensor<1x4x4x16xf16>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x16xf32>) -> tensor<1x4x4x16xf16> {
  // expected-error @+1 {{'kvc.attention' op query, key and value must have one element type, got 'f16', 'f32', 'f32'}}
  %0 = kvc.attention %q, %k, %v : (tensor<1x4x4x16xf16>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x4x16xf16>
  return %0 : tensor<1x4x4x16xf16>
}

// -----

func.func @mask_not_broadcastable(%q: tensor<1x4x4x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x16xf32>, %m: tensor<1x1x4x7xi1>) -> tensor<1x4x4x16xf32> {
  // expected-error @+1 {{'kvc.attention' op mask of type 'tensor<1x1x4x7xi1>' does not broadcast to [B,Hq,Sq,Skv] = [1,4,4,8]: dimension 3 is 7 but Skv is 8}}
  %0 = kvc.attention %q, %k, %v mask(%m) : (tensor<1x4x4x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<1x1x4x7xi1>) -> tensor<1x4x4x16xf32>
  return %0 : tensor<1x4x4x16xf32>
}

// -----

func.func @mask_heads(%q: tensor<1x4x4x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>, %m: tensor<2x4x8xf32>) -> tensor<1x4x4x16xf32> {
  // expected-error @+1 {{'kvc.attention' op mask of type 'tensor<2x4x8xf32>' does not broadcast to [B,Hq,Sq,Skv] = [1,4,4,8]: dimension 0 is 2 but Hq is 4}}
  %0 = kvc.attention %q, %k, %v mask(%m) : (tensor<1x4x4x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<2x4x8xf32>) -> tensor<1x4x4x16xf32>
  return %0 : tensor<1x4x4x16xf32>
}

// -----

func.func @int_mask(%q: tensor<1x4x4x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x16xf32>, %m: tensor<4x8xi32>) -> tensor<1x4x4x16xf32> {
  // expected-error @+1 {{'kvc.attention' op operand #3 must be ranked tensor of 1-bit signless integer or 16-bit float or bfloat16 type or 32-bit float or 64-bit float values}}
  %0 = kvc.attention %q, %k, %v mask(%m) : (tensor<1x4x4x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<4x8xi32>) -> tensor<1x4x4x16xf32>
  return %0 : tensor<1x4x4x16xf32>
}

// -----

func.func @bad_scale(%q: tensor<1x4x4x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x16xf32>) -> tensor<1x4x4x16xf32> {
  // expected-error @+1 {{'kvc.attention' op scale must be positive and finite, got -1}}
  %0 = kvc.attention %q, %k, %v {scale = -1.0 : f32} : (tensor<1x4x4x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x4x16xf32>
  return %0 : tensor<1x4x4x16xf32>
}

// -----

func.func @bad_softcap(%q: tensor<1x4x4x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x16xf32>) -> tensor<1x4x4x16xf32> {
  // expected-error @+1 {{'kvc.attention' op softcap must be positive and finite, got 0}}
  %0 = kvc.attention %q, %k, %v {softcap = 0.0 : f32} : (tensor<1x4x4x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x4x16xf32>
  return %0 : tensor<1x4x4x16xf32>
}

// -----

func.func @bad_window(%q: tensor<1x4x4x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x16xf32>) -> tensor<1x4x4x16xf32> {
  // expected-error @+1 {{'kvc.attention' op window must be positive, got 0}}
  %0 = kvc.attention %q, %k, %v {window = 0 : i64} : (tensor<1x4x4x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x4x16xf32>
  return %0 : tensor<1x4x4x16xf32>
}

// -----

func.func @append_length(%k: tensor<1x2x5x16xf32>, %v: tensor<1x2x5x16xf32>, %nk: tensor<1x2x1x16xf32>, %nv: tensor<1x2x1x16xf32>) {
  %c = kvc.cache.from_tensors %k, %v : tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32> -> !kvc.cache<tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32>>
  // expected-error @+1 {{'kvc.cache.append' op result cache length 7 must be 5 + 1 = 6}}
  %c2 = kvc.cache.append %c, %nk, %nv : !kvc.cache<tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32>>, tensor<1x2x1x16xf32>, tensor<1x2x1x16xf32> -> !kvc.cache<tensor<1x2x7x16xf32>, tensor<1x2x7x16xf32>>
  return
}

// -----

func.func @append_heads(%k: tensor<1x2x5x16xf32>, %v: tensor<1x2x5x16xf32>, %nk: tensor<1x4x1x16xf32>, %nv: tensor<1x4x1x16xf32>) {
  %c = kvc.cache.from_tensors %k, %v : tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32> -> !kvc.cache<tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32>>
  // expected-error @+1 {{'kvc.cache.append' op key head size 4 differs from the cache's 2}}
  %c2 = kvc.cache.append %c, %nk, %nv : !kvc.cache<tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32>>, tensor<1x4x1x16xf32>, tensor<1x4x1x16xf32> -> !kvc.cache<tensor<1x2x6x16xf32>, tensor<1x2x6x16xf32>>
  return
}

// -----

func.func @from_tensors_type(%k: tensor<1x2x5x16xf32>, %v: tensor<1x2x5x16xf32>) {
  // expected-error @+1 {{'kvc.cache.from_tensors' op key and value types must equal the cache's 'tensor<1x2x?x16xf32>' and 'tensor<1x2x?x16xf32>'}}
  %c = kvc.cache.from_tensors %k, %v : tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32> -> !kvc.cache<tensor<1x2x?x16xf32>, tensor<1x2x?x16xf32>>
  return
}

// -----

// expected-error @+1 {{cache keys and values disagree in dimension 1 (2 vs 4)}}
func.func private @cache_heads(!kvc.cache<tensor<1x2x5x16xf32>, tensor<1x4x5x16xf32>>)

// -----

// expected-error @+1 {{cache key and value types must be rank 4 [B, Hkv, S, D], got rank 3 and 4}}
func.func private @cache_rank(!kvc.cache<tensor<2x5x16xf32>, tensor<1x2x5x16xf32>>)


// -----

// expected-error @+2 {{error-bounded codec (bits = 0) needs key_error and value_error in (0, 1), got 0.000000e+00 and 1.000000e-01}}
// expected-error @+1 {{failed to parse KVC_EncodedCacheType parameter 'codec'}}
func.func private @codec_error(!kvc.encoded_cache<tensor<1x2x?x16xf16>, tensor<1x2x?x16xf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 0.0 : f64, value_group = token, value_block = 128, value_error = 0.1 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>>)

// -----

// expected-error @+2 {{fixed-width codec (bits = 4) must have key_error = value_error = 0}}
// expected-error @+1 {{failed to parse KVC_EncodedCacheType parameter 'codec'}}
func.func private @codec_bits(!kvc.encoded_cache<tensor<1x2x?x16xf16>, tensor<1x2x?x16xf16>, #kvc.codec<bits = 4, key_group = channel, key_block = 32, key_error = 0.05 : f64, value_group = token, value_block = 32, value_error = 0.0 : f64, entropy = none, recent_keys = 128, recent_values = 128>>)

// -----

func.func @compress_needs_queries(%c: !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>) {
  // expected-error @+1 {{'kvc.compress' op method 'sculpt' needs queries (only 'streaming' works without them)}}
  %r = kvc.compress(%c) {method = #kvc.method<sculpt>, ratio = 0.3 : f64} : (!kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>) -> !kvc.ragged_cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, sinks = 4, recent = 64>
  return
}

// -----

func.func @compress_ratio_and_budget(%c: !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>) {
  // expected-error @+1 {{'kvc.compress' op needs exactly one of 'ratio' and 'budget'}}
  %r = kvc.compress(%c) {method = #kvc.method<streaming>, ratio = 0.3 : f64, budget = 8 : i64} : (!kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>) -> !kvc.ragged_cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, sinks = 4, recent = 64>
  return
}

// -----

func.func @compress_ratio_range(%c: !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>) {
  // expected-error @+1 {{'kvc.compress' op ratio (fraction of pairs kept) must be in (0, 1], got 1.5}}
  %r = kvc.compress(%c) {method = #kvc.method<streaming>, ratio = 1.5 : f64} : (!kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>) -> !kvc.ragged_cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, sinks = 4, recent = 64>
  return
}

// -----

func.func @compress_result_sinks(%c: !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>) {
  // expected-error @+1 {{'kvc.compress' op result #0 must have sinks = 4 and recent = 64}}
  %r = kvc.compress(%c) {method = #kvc.method<streaming>, ratio = 0.5 : f64} : (!kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>) -> !kvc.ragged_cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, sinks = 2, recent = 8>
  return
}

// -----

func.func @compress_query_heads(%c: !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>, %q: tensor<1x3x64x16xf32>) {
  // expected-error @+1 {{'kvc.compress' op queries #0 have 3 heads, not a multiple of the cache's 2 KV heads}}
  %r = kvc.compress(%c) queries(%q) {method = #kvc.method<snapkv>, ratio = 0.5 : f64} : (!kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>, tensor<1x3x64x16xf32>) -> !kvc.ragged_cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, sinks = 4, recent = 64>
  return
}

// -----

func.func @attention_lengths_shape(%q: tensor<1x4x1x16xf32>, %k: tensor<1x2x8x16xf32>, %l: tensor<1x4xi64>) -> tensor<1x4x1x16xf32> {
  // expected-error @+1 {{'kvc.attention' op lengths must be [B, Hkv] = [1, 2], got 'tensor<1x4xi64>'}}
  %0 = kvc.attention %q, %k, %k lengths(%l) : (tensor<1x4x1x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x4xi64>) -> tensor<1x4x1x16xf32>
  return %0 : tensor<1x4x1x16xf32>
}

// -----

func.func @append_kind(%c: !kvc.ragged_cache<tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, sinks = 2, recent = 2>, %nk: tensor<1x2x1x16xf32>) {
  // expected-error @+1 {{'kvc.cache.append' op result cache kind differs from the input's}}
  %a = kvc.cache.append %c, %nk, %nk : !kvc.ragged_cache<tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, sinks = 2, recent = 2>, tensor<1x2x1x16xf32>, tensor<1x2x1x16xf32> -> !kvc.cache<tensor<1x2x9x16xf32>, tensor<1x2x9x16xf32>>
  return
}

// -----

func.func @vote_p(%c: !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>, %q: tensor<1x4x1x16xf32>, %m: tensor<32xf32>, %w: tensor<4x16x32xf32>) {
  // expected-error @+1 {{'kvc.vote' op p (nucleus mass) must be in (0, 1], got 1.5}}
  %kept, %counts = kvc.vote %c, %q, %m, %m, %w {p = 1.5 : f64} : !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>, tensor<1x4x1x16xf32>, tensor<32xf32>, tensor<32xf32>, tensor<4x16x32xf32> -> tensor<1x2x64xi64>, tensor<1x2xi64>
  return
}

// -----

func.func @vote_wq(%c: !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>, %q: tensor<1x4x1x16xf32>, %m: tensor<32xf32>, %w: tensor<4x16x16xf32>) {
  // expected-error @+1 {{'kvc.vote' op w_q must be [Hq, D, d_model] = [4, 16, 32], got 'tensor<4x16x16xf32>'}}
  %kept, %counts = kvc.vote %c, %q, %m, %m, %w : !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>, tensor<1x4x1x16xf32>, tensor<32xf32>, tensor<32xf32>, tensor<4x16x16xf32> -> tensor<1x2x64xi64>, tensor<1x2xi64>
  return
}
