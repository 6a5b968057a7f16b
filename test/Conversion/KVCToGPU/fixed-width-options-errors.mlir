// Fixed-width kernel options out of range are errors at the attention op.
// RUN: not kvc-opt %s -convert-kvc-to-gpu="fixed-width-ring=3" 2>&1 | FileCheck %s --check-prefix=R3
// R3: fixed-width-options-errors.mlir:{{[0-9]+}}:{{[0-9]+}}: error: convert-kvc-to-gpu: fixed-width cache: fixed-width-ring must be -1 (auto), 0 or 2, got 3
// RUN: not kvc-opt %s -convert-kvc-to-gpu="fixed-width-min-ctas=-2" 2>&1 | FileCheck %s --check-prefix=M2
// M2: error: convert-kvc-to-gpu: fixed-width cache: fixed-width-min-ctas must be -1 (auto) or >= 0, got -2
// D = 256 with the ring forced on needs more than 48 KiB of static shared memory.
// RUN: not kvc-opt %s -convert-kvc-to-gpu="fixed-width-ring=2" 2>&1 | FileCheck %s --check-prefix=SMEM
// SMEM: error: convert-kvc-to-gpu: fixed-width cache: the kernel's shared memory ({{[0-9]+}} bytes) exceeds 48 KiB; fixed-width-ring=0 needs less

#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 256, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>
!fw = !kvc.encoded_cache<tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>, #codec>
func.func @decode(%q: tensor<?x8x1x256xbf16>, %c: !fw) -> tensor<?x8x1x256xbf16> {
  %k, %v = kvc.cache.view %c : !fw -> tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x8x1x256xbf16>, tensor<?x1x?x256xbf16>, tensor<?x1x?x256xbf16>) -> tensor<?x8x1x256xbf16>
  return %o : tensor<?x8x1x256xbf16>
}
