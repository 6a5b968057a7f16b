// RUN: kvc-opt %s --kvc-compress-present="method=snapkv budget=6 sinks=1 recent=2" | FileCheck %s
// RUN: kvc-opt %s --kvc-compress-present="method=streaming ratio=0.25 sinks=1 recent=2" | FileCheck %s --check-prefix=STREAM

#bcast_in = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d3, d4)>
#id5 = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>

// An imported prefill graph: the present K/V outputs are read by the prefill attention through
// transformers' repeat_kv (broadcast to [B, Hkv, g, S, D], then collapse to Hq heads). One
// kvc.compress with the attention's queries; the outputs shrink from 16 to 6 pairs per row.
// CHECK-LABEL: func @prefill
// CHECK-SAME: -> (tensor<1x4x16x8xf32> {kvc.onnx.name = "out"}, tensor<1x2x6x8xf32> {kvc.onnx.name = "present.0.key"}, tensor<1x2x6x8xf32> {kvc.onnx.name = "present.0.value"})
// CHECK: %[[C:.*]] = kvc.cache.from_tensors %arg1, %arg2 : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32> -> !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>>
// CHECK: %[[R:.*]] = kvc.compress(%[[C]]) queries(%arg0) {budget = 6 : i64, method = #kvc.method<snapkv>, recent = 2 : i64, sinks = 1 : i64}
// CHECK: %[[K:.*]], %[[V:.*]] = kvc.cache.view %[[R]]
// CHECK: %[[KS:.*]] = tensor.extract_slice %[[K]][0, 0, 0, 0] [1, 2, 6, 8] [1, 1, 1, 1] : tensor<1x2x16x8xf32> to tensor<1x2x6x8xf32>
// CHECK: %[[VS:.*]] = tensor.extract_slice %[[V]][0, 0, 0, 0] [1, 2, 6, 8] [1, 1, 1, 1]
// CHECK: return %{{.*}}, %[[KS]], %[[VS]]
// STREAM-LABEL: func @prefill
// STREAM: kvc.compress(%{{.*}}) {budget = 4 : i64, method = #kvc.method<streaming>
// STREAM: return {{.*}} tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>
func.func @prefill(%q: tensor<1x4x16x8xf32>, %k: tensor<1x2x16x8xf32>, %v: tensor<1x2x16x8xf32>)
    -> (tensor<1x4x16x8xf32> {kvc.onnx.name = "out"}, tensor<1x2x16x8xf32> {kvc.onnx.name = "present.0.key"},
        tensor<1x2x16x8xf32> {kvc.onnx.name = "present.0.value"}) {
  %ek = tensor.empty() : tensor<1x2x2x16x8xf32>
  %bk = linalg.generic {indexing_maps = [#bcast_in, #id5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%k : tensor<1x2x16x8xf32>) outs(%ek : tensor<1x2x2x16x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x2x2x16x8xf32>
  %ck = tensor.collapse_shape %bk [[0], [1, 2], [3], [4]] : tensor<1x2x2x16x8xf32> into tensor<1x4x16x8xf32>
  %ev = tensor.empty() : tensor<1x2x2x16x8xf32>
  %bv = linalg.broadcast ins(%v : tensor<1x2x16x8xf32>) outs(%ev : tensor<1x2x2x16x8xf32>) dimensions = [2]
  %cv = tensor.collapse_shape %bv [[0], [1, 2], [3], [4]] : tensor<1x2x2x16x8xf32> into tensor<1x4x16x8xf32>
  %o = kvc.attention %q, %ck, %cv {causal} : (tensor<1x4x16x8xf32>, tensor<1x4x16x8xf32>, tensor<1x4x16x8xf32>) -> tensor<1x4x16x8xf32>
  return %o, %k, %v : tensor<1x4x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>
}

// kvc.attention reads the KV heads directly (its own GQA, as after --kvc-raise-attention or the
// ONNX Attention op): the same query-to-KV-head assignment.
// CHECK-LABEL: func @direct_gqa
// CHECK: kvc.compress(%{{.*}}) queries(%arg0)
// CHECK: return {{.*}} : tensor<1x2x6x8xf32>, tensor<1x2x6x8xf32>
func.func @direct_gqa(%q: tensor<1x4x16x8xf32>, %k: tensor<1x2x16x8xf32>, %v: tensor<1x2x16x8xf32>)
    -> (tensor<1x2x16x8xf32> {kvc.onnx.name = "present_key_0"}, tensor<1x2x16x8xf32> {kvc.onnx.name = "present_value_0"},
        tensor<1x4x16x8xf32>) {
  %o = kvc.attention %q, %k, %v {causal} : (tensor<1x4x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>) -> tensor<1x4x16x8xf32>
  return %k, %v, %o : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x4x16x8xf32>
}
