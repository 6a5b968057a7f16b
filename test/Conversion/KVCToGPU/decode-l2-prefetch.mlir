// l2-prefetch=P: thread 0 of each split CTA requests K and V ahead into L2 with one
// cp.async.bulk.prefetch per tensor and range (a row's keys are contiguous): the first P tiles
// in the prologue, then in each main-loop iteration the tile P ahead, clamped to the split's
// end. 32 keys per tile here (4 warps x 2 key groups x unroll 4), so 4 tiles = 128 keys, and
// 256 bytes per key.
// RUN: kvc-opt %s -convert-kvc-to-gpu="l2-prefetch=4 fuse-merge=false" | FileCheck %s
// RUN: kvc-opt %s -convert-kvc-to-gpu="l2-prefetch=4 prefetch=false fuse-merge=false" | FileCheck %s --check-prefix=NOPF
// RUN: kvc-opt %s -convert-kvc-to-gpu | FileCheck %s --check-prefix=OFF
// RUN: not kvc-opt %s -convert-kvc-to-gpu="l2-prefetch=65" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not kvc-opt %s --kvc-gpu-pipeline="l2-prefetch=2 chip=sm_80" 2>&1 | FileCheck %s --check-prefix=CHIP
// RUN: %if ptxas %{ kvc-opt %s --kvc-gpu-pipeline="l2-prefetch=4 fuse-merge=false" -o %t.mlir && kvc-bench extract %t.mlir -o %t.ptx && FileCheck %s --check-prefix=PTX --input-file=%t.ptx && env PATH=/usr/local/cuda/bin:%PATH% ptxas -arch=sm_90a %t.ptx -o %t.cubin %}

// CHECK: gpu.func @kvc_attn0_d128_g4_q1_bf16_b128_u4_pf_l2p4_split(
// CHECK-DAG: %[[KP:.*]] = memref.extract_aligned_pointer_as_index %{{.*}} : memref<?xbf16> -> index
// CHECK-DAG: %[[VP:.*]] = memref.extract_aligned_pointer_as_index %{{.*}} : memref<?xbf16> -> index
// Byte offsets: 256 bytes per key, the row's first key at row * skv * 256.
// CHECK: %[[KB:.*]] = arith.constant 256 : index
// CHECK: %[[RS:.*]] = arith.muli %{{.*}}, %arg5 : index
// CHECK: %[[ROW:.*]] = arith.muli %[[RS]], %[[KB]] : index
// The first 4 tiles of 32 keys, clamped to the split's end.
// CHECK: %[[C128:.*]] = arith.constant 128 : index
// CHECK: %[[LIM:.*]] = arith.addi %[[START:.*]], %[[C128]] : index
// CHECK: %[[TO:.*]] = arith.minui %[[LIM]], %[[END:.*]] : index
// CHECK: scf.if %{{.*}} {
// CHECK: %[[FB:.*]] = arith.muli %[[START]], %[[KB]] : index
// CHECK: %[[BOFF:.*]] = arith.addi %[[ROW]], %[[FB]] : index
// CHECK: %[[N:.*]] = arith.subi %[[TO]], %[[START]] : index
// CHECK: %[[NB:.*]] = arith.muli %[[N]], %[[KB]] : index
// CHECK: %[[SZ:.*]] = arith.index_cast %[[NB]] : index to i32
// CHECK: %[[KA0:.*]] = arith.addi %[[KP]], %[[BOFF]] : index
// CHECK: %[[KA1:.*]] = arith.index_cast %[[KA0]] : index to i64
// CHECK: %[[KA:.*]] = llvm.inttoptr %[[KA1]] : i64 to !llvm.ptr<1>
// CHECK: nvvm.cp.async.bulk.prefetch %[[KA]], %[[SZ]] :
// CHECK: %[[VA0:.*]] = arith.addi %[[VP]], %[[BOFF]] : index
// CHECK: %[[VA1:.*]] = arith.index_cast %[[VA0]] : index to i64
// CHECK: %[[VA:.*]] = llvm.inttoptr %[[VA1]] : i64 to !llvm.ptr<1>
// CHECK: nvvm.cp.async.bulk.prefetch %[[VA]], %[[SZ]] :
// CHECK: scf.for %[[BASE:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(
// CHECK: %[[AHEAD:.*]] = arith.addi %[[BASE]], %{{.*}} : index
// CHECK: arith.minui %{{.*}}, %[[END]] : index
// CHECK: arith.cmpi ult, %[[AHEAD]], %{{.*}} : index
// CHECK: scf.if %{{.*}} {
// CHECK-COUNT-2: nvvm.cp.async.bulk.prefetch
// CHECK: vector.reduction <add>
// NOPF: gpu.func @kvc_attn0_d128_g4_q1_bf16_b128_u4_l2p4_split(
// NOPF: nvvm.cp.async.bulk.prefetch
// NOPF: scf.for
// NOPF-COUNT-2: nvvm.cp.async.bulk.prefetch
// OFF-NOT: nvvm.cp.async.bulk.prefetch
// BAD: error: convert-kvc-to-gpu: l2-prefetch must be in [0, 64] tiles, got 65
// CHIP: error: kvc-gpu-pipeline: l2-prefetch needs chip sm_90 or newer (cp.async.bulk.prefetch), got 'sm_80'
// PTX-COUNT-4: cp.async.bulk.prefetch.L2.global [%rd{{[0-9]+}}], %r{{[0-9]+}};
func.func @decode_bf16(%q: tensor<8x32x1x128xbf16>, %k: tensor<8x8x?x128xbf16>,
                       %v: tensor<8x8x?x128xbf16>) -> tensor<8x32x1x128xbf16> {
  %o = kvc.attention %q, %k, %v : (tensor<8x32x1x128xbf16>, tensor<8x8x?x128xbf16>, tensor<8x8x?x128xbf16>) -> tensor<8x32x1x128xbf16>
  return %o : tensor<8x32x1x128xbf16>
}
