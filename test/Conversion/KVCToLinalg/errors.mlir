// RUN: not kvc-opt %s -split-input-file -convert-kvc-to-linalg 2>&1 | FileCheck %s

// CHECK: errors.mlir:[[@LINE+2]]:8: error: 'kvc.attention' op cannot be lowered to Linalg: query/key head counts must be static
func.func @dynamic_heads(%q: tensor<1x?x4x16xf32>, %k: tensor<1x?x8x16xf32>, %v: tensor<1x?x8x16xf32>) -> tensor<1x?x4x16xf32> {
  %0 = kvc.attention %q, %k, %v : (tensor<1x?x4x16xf32>, tensor<1x?x8x16xf32>, tensor<1x?x8x16xf32>) -> tensor<1x?x4x16xf32>
  return %0 : tensor<1x?x4x16xf32>
}

// -----

// CHECK: errors.mlir:[[@LINE+2]]:8: error: 'kvc.attention' op cannot be lowered to Linalg: a dynamic head dim needs an explicit scale
func.func @dynamic_head_dim(%q: tensor<1x2x4x?xf32>, %k: tensor<1x2x8x?xf32>, %v: tensor<1x2x8x16xf32>) -> tensor<1x2x4x16xf32> {
  %0 = kvc.attention %q, %k, %v : (tensor<1x2x4x?xf32>, tensor<1x2x8x?xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x4x16xf32>
  return %0 : tensor<1x2x4x16xf32>
}
