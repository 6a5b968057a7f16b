// Not valid IR: the attention op is missing its type signature.
func.func @f(%q: tensor<1x2x4x16xf32>) -> tensor<1x2x4x16xf32> {
  %0 = kvc.attention %q, %q, %q
  return %0 : tensor<1x2x4x16xf32>
}
