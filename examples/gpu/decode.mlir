// The decode attention of examples/gpu/decode_aot.c: GQA 32 query heads over 8 KV heads,
// D = 128, bf16, any batch and context. `kvc-gpu-pipeline` turns it into PTX, `kvc-bench
// extract --header` into decode_kernels.h.
func.func @decode(%q: tensor<?x32x1x128xbf16>, %k: tensor<?x8x?x128xbf16>,
                  %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16> {
  %o = kvc.attention %q, %k, %v : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
