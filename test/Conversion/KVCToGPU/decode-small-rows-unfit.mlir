// RUN: kvc-opt %s -convert-kvc-to-gpu | FileCheck %s

// g*Sq = 16 query rows per KV head at D = 128: the block-256 small-rows kernel would need
// 8 * 16 * 130 * 4 = 66560 bytes of shared memory for its cross-warp merge (limit 48 KiB), so
// only the default kernel is built and there is no run-time dispatch.
// CHECK-LABEL: func.func @wide
// CHECK-NOT: scf.if
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g16_q1_bf16_b128_u4_fm_pf_split
// CHECK-NOT: b256
func.func @wide(%q: tensor<?x128x1x128xbf16>, %k: tensor<?x8x?x128xbf16>,
                %v: tensor<?x8x?x128xbf16>) -> tensor<?x128x1x128xbf16> {
  %o = kvc.attention %q, %k, %v : (tensor<?x128x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x128x1x128xbf16>
  return %o : tensor<?x128x1x128xbf16>
}
