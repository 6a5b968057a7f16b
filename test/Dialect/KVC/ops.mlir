// RUN: kvc-opt %s | FileCheck %s
// RUN: kvc-opt %s | kvc-opt | FileCheck %s
// RUN: kvc-opt %s --mlir-print-op-generic | kvc-opt | FileCheck %s

// CHECK-LABEL: func @attention_forms
func.func @attention_forms(%q: tensor<2x8x4x64xf16>, %k: tensor<2x2x37x64xf16>,
                           %v: tensor<2x2x37x32xf16>, %bm: tensor<2x1x4x37xi1>,
                           %fm: tensor<4x37xf16>) -> (tensor<2x8x4x32xf16>, tensor<2x8x4x32xf16>, tensor<2x8x4x32xf16>) {
  // CHECK: kvc.attention %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x8x4x64xf16>, tensor<2x2x37x64xf16>, tensor<2x2x37x32xf16>) -> tensor<2x8x4x32xf16>
  %0 = kvc.attention %q, %k, %v : (tensor<2x8x4x64xf16>, tensor<2x2x37x64xf16>, tensor<2x2x37x32xf16>) -> tensor<2x8x4x32xf16>
  // CHECK: kvc.attention %{{.*}}, %{{.*}}, %{{.*}} mask(%{{.*}}) {causal, scale = 1.250000e-01 : f32, softcap = 5.000000e+01 : f32, window = 16 : i64}
  %1 = kvc.attention %q, %k, %v mask(%bm) {causal, scale = 0.125 : f32, softcap = 50.0 : f32, window = 16 : i64} : (tensor<2x8x4x64xf16>, tensor<2x2x37x64xf16>, tensor<2x2x37x32xf16>, tensor<2x1x4x37xi1>) -> tensor<2x8x4x32xf16>
  // CHECK: kvc.attention %{{.*}}, %{{.*}}, %{{.*}} mask(%{{.*}}) : ({{.*}}, tensor<4x37xf16>) -> tensor<2x8x4x32xf16>
  %2 = kvc.attention %q, %k, %v mask(%fm) : (tensor<2x8x4x64xf16>, tensor<2x2x37x64xf16>, tensor<2x2x37x32xf16>, tensor<4x37xf16>) -> tensor<2x8x4x32xf16>
  return %0, %1, %2 : tensor<2x8x4x32xf16>, tensor<2x8x4x32xf16>, tensor<2x8x4x32xf16>
}

// CHECK-LABEL: func @dynamic_dims
func.func @dynamic_dims(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>) -> tensor<?x4x?x16xf32> {
  // CHECK: kvc.attention {{.*}} -> tensor<?x4x?x16xf32>
  %0 = kvc.attention %q, %k, %v {causal} : (tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>) -> tensor<?x4x?x16xf32>
  return %0 : tensor<?x4x?x16xf32>
}

// CHECK-LABEL: func @dense_cache
func.func @dense_cache(%pk: tensor<1x2x?x16xbf16>, %pv: tensor<1x2x?x16xbf16>,
                       %nk: tensor<1x2x1x16xbf16>, %nv: tensor<1x2x1x16xbf16>)
    -> (tensor<1x2x?x16xbf16>, tensor<1x2x?x16xbf16>) {
  // CHECK: kvc.cache.from_tensors {{.*}} -> !kvc.cache<tensor<1x2x?x16xbf16>, tensor<1x2x?x16xbf16>>
  %c = kvc.cache.from_tensors %pk, %pv : tensor<1x2x?x16xbf16>, tensor<1x2x?x16xbf16> -> !kvc.cache<tensor<1x2x?x16xbf16>, tensor<1x2x?x16xbf16>>
  // CHECK: kvc.cache.append
  %c2 = kvc.cache.append %c, %nk, %nv : !kvc.cache<tensor<1x2x?x16xbf16>, tensor<1x2x?x16xbf16>>, tensor<1x2x1x16xbf16>, tensor<1x2x1x16xbf16> -> !kvc.cache<tensor<1x2x?x16xbf16>, tensor<1x2x?x16xbf16>>
  // CHECK: kvc.cache.view
  %k, %v = kvc.cache.view %c2 : !kvc.cache<tensor<1x2x?x16xbf16>, tensor<1x2x?x16xbf16>> -> tensor<1x2x?x16xbf16>, tensor<1x2x?x16xbf16>
  return %k, %v : tensor<1x2x?x16xbf16>, tensor<1x2x?x16xbf16>
}

// The compressed members of the cache family parse and print (their ops come with the
// compression passes).
// CHECK-LABEL: func private @compressed_types
// CHECK-SAME: !kvc.ragged_cache<tensor<1x8x1024x128xf16>, tensor<1x8x1024x128xf16>, sinks = 4, recent = 64>
// CHECK-SAME: !kvc.encoded_cache<tensor<1x8x?x128xf16>, tensor<1x8x?x128xf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>>
// CHECK-SAME: !kvc.encoded_cache<tensor<1x8x512x128xf16>, tensor<1x8x512x128xf16>, #kvc.codec<bits = 2, key_group = channel, key_block = 32, key_error = 0.000000e+00 : f64, value_group = token, value_block = 32, value_error = 0.000000e+00 : f64, entropy = none, recent_keys = 128, recent_values = 128>, ragged = true>
func.func private @compressed_types(
  !kvc.ragged_cache<tensor<1x8x1024x128xf16>, tensor<1x8x1024x128xf16>, sinks = 4, recent = 64>,
  !kvc.encoded_cache<tensor<1x8x?x128xf16>, tensor<1x8x?x128xf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 0.05 : f64, value_group = token, value_block = 128, value_error = 0.1 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>>,
  !kvc.encoded_cache<tensor<1x8x512x128xf16>, tensor<1x8x512x128xf16>, #kvc.codec<bits = 2, key_group = channel, key_block = 32, key_error = 0.0 : f64, value_group = token, value_block = 32, value_error = 0.0 : f64, entropy = none, recent_keys = 128, recent_values = 128>, ragged = true>)

// CHECK-LABEL: func @compress_and_ragged
// CHECK: kvc.compress(%{{.*}}, %{{.*}}) queries(%{{.*}}, %{{.*}}) {budget_mode = #kvc.budget_mode<pilot>, method = #kvc.method<sculpt>, ratio = 3.000000e-01 : f64, recent = 8 : i64, sinks = 2 : i64}
// CHECK: kvc.compress(%{{.*}}) {budget = 16 : i64, method = #kvc.method<streaming>, recent = 8 : i64, sinks = 2 : i64}
// CHECK: kvc.cache.append %{{.*}} : !kvc.ragged_cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, sinks = 2, recent = 8>, {{.*}} -> !kvc.ragged_cache<tensor<1x2x65x16xf32>
// CHECK: kvc.cache.lengths %{{.*}} -> tensor<1x2xi64>
// CHECK: kvc.attention %{{.*}}, %{{.*}}, %{{.*}} lengths(%{{.*}}) {causal}
func.func @compress_and_ragged(%c0: !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>,
                               %c1: !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>,
                               %q0: tensor<1x8x64x16xf32>, %q1: tensor<1x8x64x16xf32>,
                               %kn: tensor<1x2x1x16xf32>, %vn: tensor<1x2x1x16xf32>, %qn: tensor<1x8x1x16xf32>) -> tensor<1x8x1x16xf32> {
  %r0, %r1 = kvc.compress(%c0, %c1) queries(%q0, %q1) {method = #kvc.method<sculpt>, ratio = 0.3 : f64, budget_mode = #kvc.budget_mode<pilot>, sinks = 2 : i64, recent = 8 : i64}
      : (!kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>, !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>, tensor<1x8x64x16xf32>, tensor<1x8x64x16xf32>)
      -> (!kvc.ragged_cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, sinks = 2, recent = 8>, !kvc.ragged_cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, sinks = 2, recent = 8>)
  %s = kvc.compress(%c1) {method = #kvc.method<streaming>, budget = 16 : i64, sinks = 2 : i64, recent = 8 : i64}
      : (!kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>) -> !kvc.ragged_cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, sinks = 2, recent = 8>
  %a = kvc.cache.append %r0, %kn, %vn : !kvc.ragged_cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, sinks = 2, recent = 8>, tensor<1x2x1x16xf32>, tensor<1x2x1x16xf32> -> !kvc.ragged_cache<tensor<1x2x65x16xf32>, tensor<1x2x65x16xf32>, sinks = 2, recent = 8>
  %k, %v = kvc.cache.view %a : !kvc.ragged_cache<tensor<1x2x65x16xf32>, tensor<1x2x65x16xf32>, sinks = 2, recent = 8> -> tensor<1x2x65x16xf32>, tensor<1x2x65x16xf32>
  %l = kvc.cache.lengths %a : !kvc.ragged_cache<tensor<1x2x65x16xf32>, tensor<1x2x65x16xf32>, sinks = 2, recent = 8> -> tensor<1x2xi64>
  %o = kvc.attention %qn, %k, %v lengths(%l) {causal} : (tensor<1x8x1x16xf32>, tensor<1x2x65x16xf32>, tensor<1x2x65x16xf32>, tensor<1x2xi64>) -> tensor<1x8x1x16xf32>
  return %o : tensor<1x8x1x16xf32>
}

// CHECK-LABEL: func @vote_select
// CHECK: %[[K:.*]], %[[C:.*]] = kvc.vote %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {p = 9.000000e-01 : f64, samples = 16 : i64}
// CHECK: kvc.cache.select %{{.*}}, %[[K]], %[[C]]
func.func @vote_select(%c: !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>, %q: tensor<1x4x1x16xf32>,
                       %m: tensor<32xf32>, %v: tensor<32xf32>, %w: tensor<4x16x32xf32>)
    -> !kvc.ragged_cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, sinks = 4, recent = 64> {
  %kept, %counts = kvc.vote %c, %q, %m, %v, %w {p = 0.9 : f64, samples = 16 : i64}
      : !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>, tensor<1x4x1x16xf32>, tensor<32xf32>, tensor<32xf32>, tensor<4x16x32xf32> -> tensor<1x2x64xi64>, tensor<1x2xi64>
  %r = kvc.cache.select %c, %kept, %counts : !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>, tensor<1x2x64xi64>, tensor<1x2xi64> -> !kvc.ragged_cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, sinks = 4, recent = 64>
  return %r : !kvc.ragged_cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, sinks = 4, recent = 64>
}
