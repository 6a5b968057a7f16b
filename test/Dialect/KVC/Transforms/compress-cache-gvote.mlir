// RUN: kvc-opt %s --kvc-compress-cache="budget-mode=gvote p=0.9 samples=16 sinks=2 recent=4" | FileCheck %s
// RUN: not kvc-opt %s --kvc-compress-cache="budget-mode=gvote ratio=0.5" 2>&1 | FileCheck %s --check-prefix=RATIO
// RUN: not kvc-opt %s --kvc-compress-cache="budget-mode=gvote method=sculpt" 2>&1 | FileCheck %s --check-prefix=RATIO
// RUN: not kvc-opt %s --kvc-compress-cache="budget-mode=gvote p=1.5" 2>&1 | FileCheck %s --check-prefix=P

// RATIO: error: kvc-compress-cache: budget-mode=gvote chooses the kept pairs and the budget itself; do not give method, ratio or budget
// P: error: kvc-compress-cache: gvote needs p in (0, 1] and samples >= 0

// CHECK-LABEL: func @prefill_decode
// CHECK: %[[C:.*]] = kvc.cache.from_tensors
// CHECK: %[[Q:.*]] = tensor.extract_slice %arg0[0, 0, 15, 0] [1, 4, 1, 8] [1, 1, 1, 1]
// CHECK: %[[KEPT:.*]], %[[N:.*]] = kvc.vote %[[C]], %[[Q]], %arg3, %arg4, %arg5 {p = 9.000000e-01 : f64, recent = 4 : i64, samples = 16 : i64, sinks = 2 : i64}
// CHECK: %[[R:.*]] = kvc.cache.select %[[C]], %[[KEPT]], %[[N]] {{.*}} -> !kvc.ragged_cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, sinks = 2, recent = 4>
// CHECK: kvc.cache.append %[[R]]
// CHECK: kvc.attention {{.*}} lengths(
func.func @prefill_decode(%qp: tensor<1x4x16x8xf32>, %kp: tensor<1x2x16x8xf32>, %vp: tensor<1x2x16x8xf32>,
                          %mean: tensor<32xf32> {kvc.gvote.hidden_mean = 0 : i64},
                          %var: tensor<32xf32> {kvc.gvote.hidden_var = 0 : i64},
                          %wq: tensor<4x8x32xf32> {kvc.gvote.w_q = 0 : i64},
                          %qd: tensor<1x4x1x8xf32>, %kd: tensor<1x2x1x8xf32>, %vd: tensor<1x2x1x8xf32>) -> tensor<1x4x1x8xf32> {
  %op = kvc.attention %qp, %kp, %vp {causal} : (tensor<1x4x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>) -> tensor<1x4x16x8xf32>
  %c = kvc.cache.from_tensors %kp, %vp : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32> -> !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>>
  %c2 = kvc.cache.append %c, %kd, %vd : !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>>, tensor<1x2x1x8xf32>, tensor<1x2x1x8xf32> -> !kvc.cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>>
  %k, %v = kvc.cache.view %c2 : !kvc.cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>> -> tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>
  %od = kvc.attention %qd, %k, %v {causal} : (tensor<1x4x1x8xf32>, tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>) -> tensor<1x4x1x8xf32>
  return %od : tensor<1x4x1x8xf32>
}
