// The benchmark shape family of docs/gpu.md: decode (Sq = 1), Hq = 32, Hkv = 8, D = 128, bf16,
// dynamic batch and context. kvc-bench decode times the kernels built from this file.
func.func @decode(%q: tensor<?x32x1x128xbf16>, %k: tensor<?x8x?x128xbf16>,
                  %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16> {
  %o = kvc.attention %q, %k, %v {causal} : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
