// RUN: kvc-opt %s -split-input-file -convert-kvc-to-gpu | FileCheck %s

// The small-rows kernel is built only for the shapes it was measured on (D = 128, g*Sq <= 4).
// g*Sq = 16 at D = 128 (it would not fit either: 8 * 16 * 130 * 4 bytes of shared memory):
// only the default kernel, no run-time dispatch.
// CHECK-LABEL: func.func @wide
// CHECK-NOT: scf.if
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g16_q1_bf16_b128_u4_fm_pf_split
// CHECK-NOT: b256
func.func @wide(%q: tensor<?x128x1x128xbf16>, %k: tensor<?x8x?x128xbf16>,
                %v: tensor<?x8x?x128xbf16>) -> tensor<?x128x1x128xbf16> {
  %o = kvc.attention %q, %k, %v : (tensor<?x128x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x128x1x128xbf16>
  return %o : tensor<?x128x1x128xbf16>
}

// -----

// D = 64, g = 8 (256 threads would leave 1 CTA per SM): one kernel.
// CHECK-LABEL: func.func @d64
// CHECK-NOT: scf.if
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d64_g8_q1_f16_b128_u4_fm_pf_split
// CHECK-NOT: b256
func.func @d64(%q: tensor<?x64x1x64xf16>, %k: tensor<?x8x?x64xf16>,
               %v: tensor<?x8x?x64xf16>) -> tensor<?x64x1x64xf16> {
  %o = kvc.attention %q, %k, %v : (tensor<?x64x1x64xf16>, tensor<?x8x?x64xf16>, tensor<?x8x?x64xf16>) -> tensor<?x64x1x64xf16>
  return %o : tensor<?x64x1x64xf16>
}
