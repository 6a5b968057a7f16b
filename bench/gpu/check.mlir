// Kernels that kvc-bench check runs against its float64 CPU reference on the GPU machine:
// every specialisation axis at least once (dense/ragged, bf16/f16, D = 64/128/256, g = 1/4/8,
// Sq = 1/2).
func.func @dense_bf16_g4(%q: tensor<?x32x1x128xbf16>, %k: tensor<?x8x?x128xbf16>, %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16> {
  %o = kvc.attention %q, %k, %v : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
func.func @ragged_bf16_g4(%q: tensor<?x32x1x128xbf16>, %k: tensor<?x8x?x128xbf16>, %v: tensor<?x8x?x128xbf16>, %l: tensor<?x8xi64>) -> tensor<?x32x1x128xbf16> {
  %o = kvc.attention %q, %k, %v lengths(%l) : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8xi64>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
func.func @dense_f16_d64_g8(%q: tensor<?x64x1x64xf16>, %k: tensor<?x8x?x64xf16>, %v: tensor<?x8x?x64xf16>) -> tensor<?x64x1x64xf16> {
  %o = kvc.attention %q, %k, %v : (tensor<?x64x1x64xf16>, tensor<?x8x?x64xf16>, tensor<?x8x?x64xf16>) -> tensor<?x64x1x64xf16>
  return %o : tensor<?x64x1x64xf16>
}
func.func @dense_bf16_d256_g1(%q: tensor<?x8x1x256xbf16>, %k: tensor<?x8x?x256xbf16>, %v: tensor<?x8x?x256xbf16>) -> tensor<?x8x1x256xbf16> {
  %o = kvc.attention %q, %k, %v : (tensor<?x8x1x256xbf16>, tensor<?x8x?x256xbf16>, tensor<?x8x?x256xbf16>) -> tensor<?x8x1x256xbf16>
  return %o : tensor<?x8x1x256xbf16>
}
func.func @dense_bf16_sq2(%q: tensor<?x32x2x128xbf16>, %k: tensor<?x8x?x128xbf16>, %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x2x128xbf16> {
  %o = kvc.attention %q, %k, %v : (tensor<?x32x2x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x2x128xbf16>
  return %o : tensor<?x32x2x128xbf16>
}
