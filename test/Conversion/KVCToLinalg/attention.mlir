// RUN: kvc-opt %s -split-input-file -convert-kvc-to-linalg | FileCheck %s

// GQA (8 query heads over 2 KV heads) reads KV head h floordiv 4 through the maps; f16 inputs
// are extended to f32 inside the contraction, and the result is truncated back.
// CHECK-DAG: #[[$Q:.*]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>
// CHECK-DAG: #[[$K:.*]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1 floordiv 4, d3, d4)>
// CHECK-DAG: #[[$V:.*]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1 floordiv 4, d4, d3)>
// CHECK-LABEL: func @gqa_f16
// CHECK-NOT: kvc.attention
// CHECK: %[[S:.*]] = linalg.generic {indexing_maps = [#[[$Q]], #[[$K]], #{{.*}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
// CHECK-SAME: ins(%{{.*}}, %{{.*}} : tensor<1x8x3x16xf16>, tensor<1x2x11x16xf16>) outs(%{{.*}} : tensor<1x8x3x11xf32>)
// CHECK: arith.extf %{{.*}} : f16 to f32
// CHECK: arith.mulf
// CHECK: arith.addf
// Score transform: scale 1/sqrt(16)
// CHECK: arith.constant 2.500000e-01 : f32
// Row max from -inf, exp(s - max) with fully masked rows -> 0, row sum.
// CHECK: arith.constant 0xFF800000 : f32
// CHECK: arith.maximumf
// CHECK: math.exp
// CHECK: arith.cmpf oeq
// CHECK: arith.select
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #[[$V]], #{{.*}}]
// CHECK: arith.divf
// CHECK: arith.truncf %{{.*}} : f32 to f16
// CHECK: -> tensor<1x8x3x8xf16>
func.func @gqa_f16(%q: tensor<1x8x3x16xf16>, %k: tensor<1x2x11x16xf16>, %v: tensor<1x2x11x8xf16>) -> tensor<1x8x3x8xf16> {
  %0 = kvc.attention %q, %k, %v : (tensor<1x8x3x16xf16>, tensor<1x2x11x16xf16>, tensor<1x2x11x8xf16>) -> tensor<1x8x3x8xf16>
  return %0 : tensor<1x8x3x8xf16>
}

// -----

// Causal with a past cache: query i sits at position i + (Skv - Sq); the window keeps keys with
// 0 <= position - j < window. Softcap goes through tanh; a broadcast bool mask selects -inf.
// CHECK-LABEL: func @causal_window_softcap_mask
// CHECK: %[[OFF:.*]] = arith.subi %c37, %c4 : index
// CHECK: linalg.generic
// CHECK-SAME: ins(%{{.*}}, %{{.*}} : tensor<1x4x4x37xf32>, tensor<1x1x4x37xi1>)
// CHECK: math.tanh
// CHECK: arith.select %{{.*}}, %{{.*}}, %{{.*}} : f32
// CHECK: linalg.index 2
// CHECK: linalg.index 3
// CHECK: arith.addi %{{.*}}, %[[OFF]]
// CHECK: arith.cmpi sge
// CHECK: arith.constant 8 : index
// CHECK: arith.cmpi slt
// CHECK: arith.andi
func.func @causal_window_softcap_mask(%q: tensor<1x4x4x16xf32>, %k: tensor<1x2x37x16xf32>, %v: tensor<1x2x37x16xf32>, %m: tensor<1x1x4x37xi1>) -> tensor<1x4x4x16xf32> {
  %0 = kvc.attention %q, %k, %v mask(%m) {causal, softcap = 30.0 : f32, window = 8 : i64} : (tensor<1x4x4x16xf32>, tensor<1x2x37x16xf32>, tensor<1x2x37x16xf32>, tensor<1x1x4x37xi1>) -> tensor<1x4x4x16xf32>
  return %0 : tensor<1x4x4x16xf32>
}

// -----

// Dynamic sequence lengths are read with tensor.dim.
// CHECK-LABEL: func @dynamic
// CHECK-DAG: tensor.dim %arg0, %c2
// CHECK-DAG: tensor.dim %arg1, %c2
// CHECK: tensor.empty(%{{.*}}, %{{.*}}) : tensor<1x4x?x?xf32>
func.func @dynamic(%q: tensor<1x4x?x16xf32>, %k: tensor<1x4x?x16xf32>, %v: tensor<1x4x?x16xf32>) -> tensor<1x4x?x16xf32> {
  %0 = kvc.attention %q, %k, %v {causal} : (tensor<1x4x?x16xf32>, tensor<1x4x?x16xf32>, tensor<1x4x?x16xf32>) -> tensor<1x4x?x16xf32>
  return %0 : tensor<1x4x?x16xf32>
}
