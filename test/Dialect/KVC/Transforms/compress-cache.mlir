// RUN: kvc-opt %s --kvc-compress-cache="method=sculpt ratio=0.5 budget-mode=pilot sinks=2 recent=4" | FileCheck %s
// RUN: kvc-opt %s --kvc-compress-cache="method=streaming budget=8" | FileCheck %s --check-prefix=STREAM

// Two layers: one kvc.compress covers both (pilot mode moves budget between them), with the
// prefill queries; decode appends exactly and attends over the ragged caches.
// CHECK-LABEL: func @two_layers
// CHECK-SAME: (%[[Q0:[^:]*]]: tensor<1x4x16x8xf32>, %[[K0:[^:]*]]: tensor<1x2x16x8xf32>, %[[V0:[^:]*]]: tensor<1x2x16x8xf32>, %[[Q1:[^:]*]]: tensor<1x4x16x8xf32>
// CHECK: %[[C0:.*]] = kvc.cache.from_tensors %[[K0]], %[[V0]]
// CHECK: %[[C1:.*]] = kvc.cache.from_tensors
// CHECK: %[[R:.*]]:2 = kvc.compress(%[[C0]], %[[C1]]) queries(%[[Q0]], %[[Q1]]) {budget_mode = #kvc.budget_mode<pilot>, method = #kvc.method<sculpt>, ratio = 5.000000e-01 : f64, recent = 4 : i64, sinks = 2 : i64}
// CHECK: %[[A0:.*]] = kvc.cache.append %[[R]]#0, {{.*}} -> !kvc.ragged_cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>, sinks = 2, recent = 4>
// CHECK: %[[K:.*]], %[[V:.*]] = kvc.cache.view %[[A0]]
// CHECK: %[[L:.*]] = kvc.cache.lengths %[[A0]]
// CHECK: kvc.attention %{{.*}}, %[[K]], %[[V]] lengths(%[[L]]) {causal}
// CHECK: kvc.cache.append %[[R]]#1
// CHECK-NOT: !kvc.cache<tensor<1x2x17x8xf32>
// STREAM-LABEL: func @two_layers
// STREAM: kvc.compress(%{{.*}}, %{{.*}}) {budget = 8 : i64, method = #kvc.method<streaming>} {{.*}} -> (!kvc.ragged_cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, sinks = 4, recent = 64>,
func.func @two_layers(%qp0: tensor<1x4x16x8xf32>, %kp0: tensor<1x2x16x8xf32>, %vp0: tensor<1x2x16x8xf32>,
                      %qp1: tensor<1x4x16x8xf32>, %kp1: tensor<1x2x16x8xf32>, %vp1: tensor<1x2x16x8xf32>,
                      %qd: tensor<1x4x1x8xf32>, %kd: tensor<1x2x1x8xf32>, %vd: tensor<1x2x1x8xf32>)
    -> (tensor<1x4x1x8xf32>, tensor<1x4x1x8xf32>) {
  %o0 = kvc.attention %qp0, %kp0, %vp0 {causal} : (tensor<1x4x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>) -> tensor<1x4x16x8xf32>
  %o1 = kvc.attention %qp1, %kp1, %vp1 {causal} : (tensor<1x4x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>) -> tensor<1x4x16x8xf32>
  %c0 = kvc.cache.from_tensors %kp0, %vp0 : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32> -> !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>>
  %c1 = kvc.cache.from_tensors %kp1, %vp1 : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32> -> !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>>
  %a0 = kvc.cache.append %c0, %kd, %vd : !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>>, tensor<1x2x1x8xf32>, tensor<1x2x1x8xf32> -> !kvc.cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>>
  %k0, %v0 = kvc.cache.view %a0 : !kvc.cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>> -> tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>
  %d0 = kvc.attention %qd, %k0, %v0 {causal} : (tensor<1x4x1x8xf32>, tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>) -> tensor<1x4x1x8xf32>
  %a1 = kvc.cache.append %c1, %kd, %vd : !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>>, tensor<1x2x1x8xf32>, tensor<1x2x1x8xf32> -> !kvc.cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>>
  %k1, %v1 = kvc.cache.view %a1 : !kvc.cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>> -> tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>
  %d1 = kvc.attention %qd, %k1, %v1 {causal} : (tensor<1x4x1x8xf32>, tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>) -> tensor<1x4x1x8xf32>
  return %d0, %d1 : tensor<1x4x1x8xf32>, tensor<1x4x1x8xf32>
}
