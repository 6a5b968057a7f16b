// The default dense/ragged split kernel (block-size=128, prefetch=true, fuse-merge=true): a software-pipelined
// main loop. A prologue loads the first tile's K and V (or zeros when the split has no whole
// tile); each iteration issues the next tile's 2*unroll 128-bit loads (the last iteration
// re-reads its own tile: arith.select of the base) before this tile's math and carries them.
// RUN: kvc-opt %s -convert-kvc-to-gpu | FileCheck %s
// RUN: kvc-opt %s -convert-kvc-to-gpu="prefetch=false" | FileCheck %s --check-prefix=NOPF
// RUN: kvc-opt %s -convert-kvc-to-gpu="min-ctas=4" | FileCheck %s --check-prefix=MINCTAS
// RUN: %if ptxas %{ kvc-opt %s --kvc-gpu-pipeline -o %t.mlir && kvc-bench extract %t.mlir -o %t.ptx && env PATH=/usr/local/cuda/bin:%PATH% ptxas -arch=sm_90a -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS %}

// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf_split
// CHECK: gpu.func @kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf_split(
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>
// CHECK: %[[PRE:.*]]:8 = scf.if %{{.*}} -> (vector<8xbf16>, vector<8xbf16>, vector<8xbf16>, vector<8xbf16>, vector<8xbf16>, vector<8xbf16>, vector<8xbf16>, vector<8xbf16>) {
// CHECK-COUNT-8: vector.load
// CHECK: } else {
// CHECK: scf.yield %[[Z:.*]], %[[Z]], %[[Z]], %[[Z]], %[[Z]], %[[Z]], %[[Z]], %[[Z]] : vector<8xbf16>
// CHECK: scf.for %[[BASE:.*]] = %{{.*}} to %[[END:.*]] step %{{.*}} iter_args({{.*}}%{{.*}} = %[[PRE]]#0, {{.*}}%{{.*}} = %[[PRE]]#7) -> ({{.*}}vector<8xf32>, vector<8xbf16>
// CHECK: %[[NB:.*]] = arith.addi %[[BASE]], %{{.*}} : index
// CHECK: %[[MORE:.*]] = arith.cmpi ult, %[[NB]], %[[END]] : index
// CHECK: arith.select %[[MORE]], %[[NB]], %[[BASE]] : index
// CHECK-COUNT-8: vector.load
// CHECK: vector.reduction <add>
// CHECK: math.exp2
// CHECK: scf.yield
// NOPF: gpu.func @kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_split(
// NOPF-NOT: scf.if %{{.*}} -> (vector<8xbf16>
// MINCTAS: gpu.func @kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf_m4_split(
// MINCTAS-SAME: kvc.kernel = "split", nvvm.minctasm = 4 : i32
// PTXAS: Compiling entry function 'kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf_split' for 'sm_90a'
// PTXAS: Used {{[0-9]+}} registers
func.func @decode_bf16(%q: tensor<8x32x1x128xbf16>, %k: tensor<8x8x?x128xbf16>,
                       %v: tensor<8x8x?x128xbf16>) -> tensor<8x32x1x128xbf16> {
  %o = kvc.attention %q, %k, %v : (tensor<8x32x1x128xbf16>, tensor<8x8x?x128xbf16>, tensor<8x8x?x128xbf16>) -> tensor<8x32x1x128xbf16>
  return %o : tensor<8x32x1x128xbf16>
}
