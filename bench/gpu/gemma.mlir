// Gemma 3 270M's decode attention (Hq = 4, Hkv = 1, D = 256, bf16), dense and ragged, for the
// real-model cases of python -m kvc.bench.gemma_decode_cases (kvc-bench check-npy).
func.func @dense(%q: tensor<?x4x1x256xbf16>, %k: tensor<?x1x?x256xbf16>,
                 %v: tensor<?x1x?x256xbf16>) -> tensor<?x4x1x256xbf16> {
  %o = kvc.attention %q, %k, %v : (tensor<?x4x1x256xbf16>, tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>) -> tensor<?x4x1x256xbf16>
  return %o : tensor<?x4x1x256xbf16>
}
func.func @ragged(%q: tensor<?x4x1x256xbf16>, %k: tensor<?x1x?x256xbf16>,
                  %v: tensor<?x1x?x256xbf16>, %l: tensor<?x1xi64>) -> tensor<?x4x1x256xbf16> {
  %o = kvc.attention %q, %k, %v lengths(%l) : (tensor<?x4x1x256xbf16>, tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>, tensor<?x1xi64>) -> tensor<?x4x1x256xbf16>
  return %o : tensor<?x4x1x256xbf16>
}
