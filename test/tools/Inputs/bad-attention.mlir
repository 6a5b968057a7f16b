// Parses, but fails the verifier.
func.func @f(%q: tensor<1x3x4x16xf32>, %k: tensor<1x2x4x16xf32>) -> tensor<1x3x4x16xf32> {
  %0 = kvc.attention %q, %k, %k : (tensor<1x3x4x16xf32>, tensor<1x2x4x16xf32>, tensor<1x2x4x16xf32>) -> tensor<1x3x4x16xf32>
  return %0 : tensor<1x3x4x16xf32>
}
