// RUN: kvc-opt %s --kvc-compress-present="method=snapkv budget=6 sinks=1 recent=2" -split-input-file -verify-diagnostics

// expected-error @below {{kvc-compress-present: no present key/value outputs}}
func.func @no_present(%k: tensor<1x2x16x8xf32>) -> (tensor<1x2x16x8xf32> {kvc.onnx.name = "k"}) {
  return %k : tensor<1x2x16x8xf32>
}

// -----

// expected-error @below {{output 'present.0.key' has no value partner 'present.0.value'}}
func.func @no_partner(%k: tensor<1x2x16x8xf32>) -> (tensor<1x2x16x8xf32> {kvc.onnx.name = "present.0.key"}) {
  return %k : tensor<1x2x16x8xf32>
}

// -----

// The prefill attention reads the cache with its heads in the wrong (tiled, not repeat_kv)
// order: its queries cannot be assigned to KV heads.
#tile_in = affine_map<(d0, d1, d2, d3, d4) -> (d0, d2, d3, d4)>
#id5 = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>
// expected-error @below {{unrecognised head expansion}}
func.func @tiled(%q: tensor<1x4x16x8xf32>, %k: tensor<1x2x16x8xf32>, %v: tensor<1x2x16x8xf32>)
    -> (tensor<1x4x16x8xf32>, tensor<1x2x16x8xf32> {kvc.onnx.name = "present.0.key"},
        tensor<1x2x16x8xf32> {kvc.onnx.name = "present.0.value"}) {
  %e = tensor.empty() : tensor<1x2x2x16x8xf32>
  %bk = linalg.generic {indexing_maps = [#tile_in, #id5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%k : tensor<1x2x16x8xf32>) outs(%e : tensor<1x2x2x16x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x2x2x16x8xf32>
  %ck = tensor.collapse_shape %bk [[0], [1, 2], [3], [4]] : tensor<1x2x2x16x8xf32> into tensor<1x4x16x8xf32>
  %bv = linalg.generic {indexing_maps = [#tile_in, #id5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%v : tensor<1x2x16x8xf32>) outs(%e : tensor<1x2x2x16x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x2x2x16x8xf32>
  %cv = tensor.collapse_shape %bv [[0], [1, 2], [3], [4]] : tensor<1x2x2x16x8xf32> into tensor<1x4x16x8xf32>
  %o = kvc.attention %q, %ck, %cv : (tensor<1x4x16x8xf32>, tensor<1x4x16x8xf32>, tensor<1x4x16x8xf32>) -> tensor<1x4x16x8xf32>
  return %o, %k, %v : tensor<1x4x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>
}

// -----

// expected-error @below {{method 'snapkv' needs the prefill queries, but no kvc.attention reads this key/value pair}}
func.func @no_attention(%k: tensor<1x2x16x8xf32>, %v: tensor<1x2x16x8xf32>)
    -> (tensor<1x2x16x8xf32> {kvc.onnx.name = "present_key"}, tensor<1x2x16x8xf32> {kvc.onnx.name = "present_value"}) {
  return %k, %v : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>
}

// -----

// expected-error @below {{the sequence length is dynamic; pin the prefill length}}
func.func @dynamic(%k: tensor<1x2x?x8xf32>, %v: tensor<1x2x?x8xf32>)
    -> (tensor<1x2x?x8xf32> {kvc.onnx.name = "present.0.key"}, tensor<1x2x?x8xf32> {kvc.onnx.name = "present.0.value"}) {
  return %k, %v : tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>
}
