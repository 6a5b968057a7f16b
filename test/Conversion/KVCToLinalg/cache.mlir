// RUN: kvc-opt %s -split-input-file -convert-kvc-to-linalg | FileCheck %s

// A dense cache is its (keys, values) pair, also across function boundaries and calls.
// CHECK-LABEL: func @decode_step
// CHECK-SAME: (%[[PK:.*]]: tensor<1x2x5x16xf32>, %[[PV:.*]]: tensor<1x2x5x16xf32>, %[[NK:.*]]: tensor<1x2x1x16xf32>, %[[NV:.*]]: tensor<1x2x1x16xf32>)
// CHECK-SAME: -> (tensor<1x2x6x16xf32>, tensor<1x2x6x16xf32>)
// CHECK: %[[K:.*]] = tensor.concat dim(2) %[[PK]], %[[NK]] : (tensor<1x2x5x16xf32>, tensor<1x2x1x16xf32>) -> tensor<1x2x6x16xf32>
// CHECK: %[[V:.*]] = tensor.concat dim(2) %[[PV]], %[[NV]]
// CHECK: return %[[K]], %[[V]]
func.func @decode_step(%c: !kvc.cache<tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32>>, %nk: tensor<1x2x1x16xf32>, %nv: tensor<1x2x1x16xf32>) -> !kvc.cache<tensor<1x2x6x16xf32>, tensor<1x2x6x16xf32>> {
  %c2 = kvc.cache.append %c, %nk, %nv : !kvc.cache<tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32>>, tensor<1x2x1x16xf32>, tensor<1x2x1x16xf32> -> !kvc.cache<tensor<1x2x6x16xf32>, tensor<1x2x6x16xf32>>
  return %c2 : !kvc.cache<tensor<1x2x6x16xf32>, tensor<1x2x6x16xf32>>
}

// CHECK-LABEL: func @caller
// CHECK: %[[R:.*]]:2 = call @decode_step(%arg0, %arg1, %arg2, %arg3)
// CHECK: linalg.generic
// CHECK-SAME: ins(%{{.*}}, %[[R]]#0 :
func.func @caller(%pk: tensor<1x2x5x16xf32>, %pv: tensor<1x2x5x16xf32>, %nk: tensor<1x2x1x16xf32>, %nv: tensor<1x2x1x16xf32>, %q: tensor<1x4x1x16xf32>) -> tensor<1x4x1x16xf32> {
  %c = kvc.cache.from_tensors %pk, %pv : tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32> -> !kvc.cache<tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32>>
  %c2 = call @decode_step(%c, %nk, %nv) : (!kvc.cache<tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32>>, tensor<1x2x1x16xf32>, tensor<1x2x1x16xf32>) -> !kvc.cache<tensor<1x2x6x16xf32>, tensor<1x2x6x16xf32>>
  %k, %v = kvc.cache.view %c2 : !kvc.cache<tensor<1x2x6x16xf32>, tensor<1x2x6x16xf32>> -> tensor<1x2x6x16xf32>, tensor<1x2x6x16xf32>
  %o = kvc.attention %q, %k, %v {causal} : (tensor<1x4x1x16xf32>, tensor<1x2x6x16xf32>, tensor<1x2x6x16xf32>) -> tensor<1x4x1x16xf32>
  return %o : tensor<1x4x1x16xf32>
}
