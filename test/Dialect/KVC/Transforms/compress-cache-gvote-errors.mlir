// RUN: not kvc-opt %s --kvc-compress-cache="budget-mode=gvote" 2>&1 | FileCheck %s

// Without the arguments that carry GVote's query model the pass says which are missing.
// CHECK: compress-cache-gvote-errors.mlir:[[@LINE+4]]:8: error: kvc-compress-cache: gvote needs the query model of cache #0: function arguments marked kvc.gvote.hidden_mean, kvc.gvote.hidden_var and kvc.gvote.w_q = 0
func.func @no_model(%qp: tensor<1x4x16x8xf32>, %kp: tensor<1x2x16x8xf32>, %vp: tensor<1x2x16x8xf32>,
                    %qd: tensor<1x4x1x8xf32>, %kd: tensor<1x2x1x8xf32>, %vd: tensor<1x2x1x8xf32>) -> tensor<1x4x1x8xf32> {
  %op = kvc.attention %qp, %kp, %vp {causal} : (tensor<1x4x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>) -> tensor<1x4x16x8xf32>
  %c = kvc.cache.from_tensors %kp, %vp : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32> -> !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>>
  %c2 = kvc.cache.append %c, %kd, %vd : !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>>, tensor<1x2x1x8xf32>, tensor<1x2x1x8xf32> -> !kvc.cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>>
  %k, %v = kvc.cache.view %c2 : !kvc.cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>> -> tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>
  %od = kvc.attention %qd, %k, %v {causal} : (tensor<1x4x1x8xf32>, tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>) -> tensor<1x4x1x8xf32>
  return %od : tensor<1x4x1x8xf32>
}
