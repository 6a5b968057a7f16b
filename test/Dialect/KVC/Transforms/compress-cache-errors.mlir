// RUN: not kvc-opt %s --kvc-compress-cache="method=sculpt ratio=0.5" 2>&1 | FileCheck %s --check-prefix=ERR
// RUN: kvc-opt %s --kvc-compress-cache="method=streaming budget=8" | FileCheck %s --check-prefix=STREAM
// RUN: not kvc-opt %s --kvc-compress-cache="method=best ratio=0.5" 2>&1 | FileCheck %s --check-prefix=BADMETHOD
// RUN: not kvc-opt %s --kvc-compress-cache="method=sculpt ratio=0.5 budget=3" 2>&1 | FileCheck %s --check-prefix=BOTH
// RUN: not kvc-opt %s --kvc-compress-cache="method=streaming ratio=0.5 budget-mode=greedy" 2>&1 | FileCheck %s --check-prefix=BADMODE

// BADMETHOD: error: kvc-compress-cache: unknown method 'best' (expected streaming, snapkv, h2o, select_fit or sculpt)
// BOTH: error: kvc-compress-cache: give exactly one of ratio in (0, 1] and budget > 0 (got ratio=5.000000e-01, budget=3)
// BADMODE: error: kvc-compress-cache: unknown budget-mode 'greedy' (expected uniform, pilot or gvote)

// A decode-only program (the past cache is an input, no prefill attention) can only use
// methods that need no queries.
// ERR: compress-cache-errors.mlir:[[@LINE+4]]:8: error: kvc-compress-cache: method 'sculpt' needs the prefill queries of this cache, but no kvc.attention reads its keys and values
// STREAM-LABEL: func @decode_only
// STREAM: kvc.compress(%{{.*}}) {budget = 8 : i64, method = #kvc.method<streaming>
func.func @decode_only(%kp: tensor<1x2x16x8xf32>, %vp: tensor<1x2x16x8xf32>, %qd: tensor<1x4x1x8xf32>, %kd: tensor<1x2x1x8xf32>, %vd: tensor<1x2x1x8xf32>) -> tensor<1x4x1x8xf32> {
  %c = kvc.cache.from_tensors %kp, %vp : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32> -> !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>>
  %a = kvc.cache.append %c, %kd, %vd : !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>>, tensor<1x2x1x8xf32>, tensor<1x2x1x8xf32> -> !kvc.cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>>
  %k, %v = kvc.cache.view %a : !kvc.cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>> -> tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>
  %d = kvc.attention %qd, %k, %v {causal} : (tensor<1x4x1x8xf32>, tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>) -> tensor<1x4x1x8xf32>
  return %d : tensor<1x4x1x8xf32>
}
