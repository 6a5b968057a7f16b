// RUN: kvc-opt %s -split-input-file -canonicalize | FileCheck %s

// view(from_tensors(k, v)) folds to (k, v).
// CHECK-LABEL: func @view_of_from_tensors
// CHECK-SAME: (%[[K:.*]]: tensor<1x2x5x16xf32>, %[[V:.*]]: tensor<1x2x5x8xf32>)
// CHECK-NOT: kvc.cache
// CHECK: return %[[K]], %[[V]]
func.func @view_of_from_tensors(%k: tensor<1x2x5x16xf32>, %v: tensor<1x2x5x8xf32>) -> (tensor<1x2x5x16xf32>, tensor<1x2x5x8xf32>) {
  %c = kvc.cache.from_tensors %k, %v : tensor<1x2x5x16xf32>, tensor<1x2x5x8xf32> -> !kvc.cache<tensor<1x2x5x16xf32>, tensor<1x2x5x8xf32>>
  %a, %b = kvc.cache.view %c : !kvc.cache<tensor<1x2x5x16xf32>, tensor<1x2x5x8xf32>> -> tensor<1x2x5x16xf32>, tensor<1x2x5x8xf32>
  return %a, %b : tensor<1x2x5x16xf32>, tensor<1x2x5x8xf32>
}

// -----

// Appending zero tokens is a no-op.
// CHECK-LABEL: func @append_nothing
// CHECK-NOT: kvc.cache.append
// CHECK: return %arg0, %arg1
func.func @append_nothing(%k: tensor<1x2x5x16xf32>, %v: tensor<1x2x5x16xf32>, %nk: tensor<1x2x0x16xf32>, %nv: tensor<1x2x0x16xf32>) -> (tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32>) {
  %c = kvc.cache.from_tensors %k, %v : tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32> -> !kvc.cache<tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32>>
  %c2 = kvc.cache.append %c, %nk, %nv : !kvc.cache<tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32>>, tensor<1x2x0x16xf32>, tensor<1x2x0x16xf32> -> !kvc.cache<tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32>>
  %a, %b = kvc.cache.view %c2 : !kvc.cache<tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32>> -> tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32>
  return %a, %b : tensor<1x2x5x16xf32>, tensor<1x2x5x16xf32>
}

// -----

// Attention whose result is unused is dead (the op is pure).
// CHECK-LABEL: func @dead_attention
// CHECK-NOT: kvc.attention
func.func @dead_attention(%q: tensor<1x2x4x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>) {
  %0 = kvc.attention %q, %k, %v : (tensor<1x2x4x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x4x16xf32>
  return
}
