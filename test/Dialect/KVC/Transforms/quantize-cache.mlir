// RUN: kvc-opt %s --kvc-quantize-cache | FileCheck %s
// RUN: kvc-opt %s --kvc-quantize-cache --kvc-entropy-encode | FileCheck %s --check-prefix=HUFF
// RUN: kvc-opt %s --kvc-quantize-cache="bits=2" --kvc-entropy-encode | FileCheck %s --check-prefix=KIVI
// RUN: kvc-opt %s --kvc-compress-cache="method=sculpt ratio=0.5 sinks=2 recent=4" --kvc-quantize-cache --kvc-entropy-encode | FileCheck %s --check-prefix=BOTH
// RUN: not kvc-opt %s --kvc-quantize-cache="bits=5" 2>&1 | FileCheck %s --check-prefix=BITS
// RUN: not kvc-opt %s --kvc-quantize-cache="k-error=0" 2>&1 | FileCheck %s --check-prefix=ERR
// RUN: not kvc-opt %s --kvc-quantize-cache="key-group=token" 2>&1 | FileCheck %s --check-prefix=GROUP

// CHECK: %[[C:.*]] = kvc.cache.from_tensors
// CHECK: %[[E:.*]] = kvc.encode %[[C]] : {{.*}} -> !kvc.encoded_cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>>
// CHECK: %[[A:.*]] = kvc.cache.append %[[E]], {{.*}} -> !kvc.encoded_cache<tensor<1x2x17x8xf32>
// CHECK: %[[K:.*]], %[[V:.*]] = kvc.cache.view %[[A]]
// CHECK: kvc.attention %{{.*}}, %[[K]], %[[V]] {causal}
// HUFF: kvc.encode {{.*}} entropy = huffman
// HUFF-NOT: entropy = none
// KIVI: kvc.encode {{.*}} #kvc.codec<bits = 2, key_group = channel, key_block = 64, key_error = 0.000000e+00 : f64, value_group = token, value_block = 128, value_error = 0.000000e+00 : f64, entropy = none
// BOTH: %[[R:.*]] = kvc.compress
// BOTH: %[[E:.*]] = kvc.encode %[[R]] : !kvc.ragged_cache<{{.*}}> -> !kvc.encoded_cache<{{.*}}entropy = huffman{{.*}}, ragged = true>
// BOTH: %[[A:.*]] = kvc.cache.append %[[E]]
// BOTH: %[[K:.*]], %[[V:.*]] = kvc.cache.view %[[A]]
// BOTH: %[[L:.*]] = kvc.cache.lengths %[[A]]
// BOTH: kvc.attention %{{.*}}, %[[K]], %[[V]] lengths(%[[L]]) {causal}
// BITS: error: kvc-quantize-cache: bits must be 0 (error-bounded) or 2, 3, 4, 8, got 5
// ERR: error: kvc-quantize-cache: error-bounded codec (bits = 0) needs key_error and value_error in (0, 1)
// GROUP: error: kvc-quantize-cache: key-group must be block or channel, got 'token'
func.func @prefill_decode(%qp: tensor<1x4x16x8xf32>, %kp: tensor<1x2x16x8xf32>, %vp: tensor<1x2x16x8xf32>,
                          %qd: tensor<1x4x1x8xf32>, %kd: tensor<1x2x1x8xf32>, %vd: tensor<1x2x1x8xf32>)
    -> (tensor<1x4x16x8xf32>, tensor<1x4x1x8xf32>) {
  %op = kvc.attention %qp, %kp, %vp {causal} : (tensor<1x4x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>) -> tensor<1x4x16x8xf32>
  %c = kvc.cache.from_tensors %kp, %vp : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32> -> !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>>
  %c2 = kvc.cache.append %c, %kd, %vd : !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>>, tensor<1x2x1x8xf32>, tensor<1x2x1x8xf32> -> !kvc.cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>>
  %k, %v = kvc.cache.view %c2 : !kvc.cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>> -> tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>
  %od = kvc.attention %qd, %k, %v {causal} : (tensor<1x4x1x8xf32>, tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>) -> tensor<1x4x1x8xf32>
  return %op, %od : tensor<1x4x16x8xf32>, tensor<1x4x1x8xf32>
}
