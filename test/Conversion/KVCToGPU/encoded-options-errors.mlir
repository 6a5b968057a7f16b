// Encoded-kernel options out of range are errors at the attention op.
// RUN: kvc-opt %s -convert-kvc-to-gpu="encoded-refill-group=3" -verify-diagnostics
// RUN: not kvc-opt %s -convert-kvc-to-gpu="encoded-unroll=3" 2>&1 | FileCheck %s --check-prefix=U3
// U3: encoded-options-errors.mlir:{{[0-9]+}}:{{[0-9]+}}: error: convert-kvc-to-gpu: encoded cache: unroll must be 1, 2, 4 or 8
// RUN: not kvc-opt %s -convert-kvc-to-gpu="encoded-refill-group=16" 2>&1 | FileCheck %s --check-prefix=G16
// G16: error: convert-kvc-to-gpu: encoded cache: refill group must be 2, 4 or 8 symbols, got 16
// RUN: not kvc-opt %s -convert-kvc-to-gpu="encoded-min-ctas=-2" 2>&1 | FileCheck %s --check-prefix=M2
// M2: error: convert-kvc-to-gpu: encoded cache: encoded-min-ctas must be -1 (auto) or >= 0, got -2

#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #codec>

func.func @decode(%q: tensor<?x32x1x128xbf16>, %c: !enc) -> tensor<?x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !enc -> tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
  // expected-error @+1 {{convert-kvc-to-gpu: encoded cache: refill group must be 2, 4 or 8 symbols, got 3}}
  %o = kvc.attention %q, %k, %v : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
