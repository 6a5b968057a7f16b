// Prefill (S = 96) then one decode token, for the cache-compression execution tests.
func.func @prefill_decode(%qp: tensor<1x4x96x16xf32>, %kp: tensor<1x2x96x16xf32>, %vp: tensor<1x2x96x16xf32>,
                          %qd: tensor<1x4x1x16xf32>, %kd: tensor<1x2x1x16xf32>, %vd: tensor<1x2x1x16xf32>)
    -> tensor<1x4x1x16xf32> {
  %op = kvc.attention %qp, %kp, %vp {causal} : (tensor<1x4x96x16xf32>, tensor<1x2x96x16xf32>, tensor<1x2x96x16xf32>) -> tensor<1x4x96x16xf32>
  %c = kvc.cache.from_tensors %kp, %vp : tensor<1x2x96x16xf32>, tensor<1x2x96x16xf32> -> !kvc.cache<tensor<1x2x96x16xf32>, tensor<1x2x96x16xf32>>
  %c2 = kvc.cache.append %c, %kd, %vd : !kvc.cache<tensor<1x2x96x16xf32>, tensor<1x2x96x16xf32>>, tensor<1x2x1x16xf32>, tensor<1x2x1x16xf32> -> !kvc.cache<tensor<1x2x97x16xf32>, tensor<1x2x97x16xf32>>
  %k, %v = kvc.cache.view %c2 : !kvc.cache<tensor<1x2x97x16xf32>, tensor<1x2x97x16xf32>> -> tensor<1x2x97x16xf32>, tensor<1x2x97x16xf32>
  %od = kvc.attention %qd, %k, %v {causal} : (tensor<1x4x1x16xf32>, tensor<1x2x97x16xf32>, tensor<1x2x97x16xf32>) -> tensor<1x4x1x16xf32>
  return %od : tensor<1x4x1x16xf32>
}
