// The ragged variant of bench/gpu/decode.mlir: every (batch, KV head) row holds its own number
// of pairs (`lengths`), as a compressed cache does. kvc-bench decode --ragged-ratio R sets every
// row to round(R * S) pairs of an S-capacity cache.
func.func @decode(%q: tensor<?x32x1x128xbf16>, %k: tensor<?x8x?x128xbf16>,
                  %v: tensor<?x8x?x128xbf16>, %l: tensor<?x8xi64>) -> tensor<?x32x1x128xbf16> {
  %o = kvc.attention %q, %k, %v lengths(%l) {causal} : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8xi64>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
