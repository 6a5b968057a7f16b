// The fixed-width store kernels (FixedWidthStoreKernelGen, lib/Conversion/KVCToGPU) that
// kvc_cuda_fw_gpu_append launches: `kvc-bench store gen --fixed-width D,KB` prints them (the
// generator has no MLIR dependency) and kvc-opt parses and verifies the module. kvc-bench is
// built only with the CUDA toolkit, which is what the ptxas feature stands for here.
// REQUIRES: ptxas
// RUN: kvc-bench store gen --fixed-width 128,64 | kvc-opt | FileCheck %s
// RUN: kvc-bench store gen --fixed-width 32,128 | kvc-opt | FileCheck %s --check-prefix=SMALL
// RUN: not kvc-bench store gen --fixed-width 100,64 2>&1 | FileCheck %s --check-prefix=ERR-D
// RUN: not kvc-bench store gen --fixed-width 128,48 2>&1 | FileCheck %s --check-prefix=ERR-KB
// RUN: not kvc-bench store gen --fixed-width 128 2>&1 | FileCheck %s --check-prefix=ERR-ARG

// CHECK-LABEL: gpu.module @kvc_gpu
// Keys: one key block (64 tokens x 128 channels, one (min, step)) per CTA; its symbols are
// staged in 8 KiB of shared memory.
// CHECK: gpu.func @kvc_store_d128_kb64_fw_kstore(%[[REC:.*]]: memref<?xf16>, %[[JOBS:.*]]: memref<?xi32>, %[[WORDS:.*]]: memref<?xi32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %[[RES:.*]]: memref<?xi32>)
// CHECK-SAME: memref<1xf32, #gpu.address_space<workgroup>>
// CHECK-SAME: memref<8192xi8, #gpu.address_space<workgroup>>
// CHECK-SAME: known_block_size = array<i32: 256, 1, 1>, kvc.kernel = "fw_kstore"
// The job: eps arrives as f32 bits.
// CHECK: arith.bitcast %{{.*}} : i32 to f32
// Extremes over the block's fp16 window tokens, minimum ties to the lower flat index.
// CHECK: memref.load %[[REC]][%{{.*}}] : memref<?xf16>
// CHECK: arith.cmpi ult, %{{.*}}, %{{.*}} : i32
// CHECK: arith.truncf %{{.*}} : f64 to f32
// The status of the job.
// CHECK: memref.store %{{.*}}, %[[RES]][%block_id_x] : memref<?xi32>
// The codec's quantizer in double, then min + symbol * step in f32 (two roundings), back into
// the window as fp16.
// CHECK: arith.divf %{{.*}}, %{{.*}} : f64
// CHECK: arith.trunci %{{.*}} : i32 to i8
// CHECK: arith.uitofp %{{.*}} : i32 to f32
// CHECK-NEXT: arith.mulf %{{.*}}, %{{.*}} : f32
// CHECK-NEXT: arith.addf %{{.*}}, %{{.*}} : f32
// CHECK-NEXT: arith.truncf %{{.*}} : f32 to f16
// CHECK: memref.store %{{.*}}, %[[REC]][%{{.*}}] : memref<?xf16>
// CHECK: gpu.barrier
// Words: low nibbles of 8 elements at bits 4i + 16h, or the 5th bits at 4f + i + 16h.
// CHECK: scf.if %{{.*}} -> (i32) {
// CHECK: arith.andi %{{.*}}, %c15_i32{{.*}} : i32
// CHECK: } else {
// CHECK: arith.shrui %{{.*}}, %c4_i32{{.*}} : i32
// CHECK: memref.store %{{.*}}, %[[WORDS]][%{{.*}}] : memref<?xi32>
// Values: 16 tokens per CTA, one (min, step) per token.
// CHECK: gpu.func @kvc_store_d128_kb64_fw_vstore(
// CHECK-SAME: memref<16xf32, #gpu.address_space<workgroup>>
// CHECK-SAME: memref<2048xi8, #gpu.address_space<workgroup>>
// CHECK-SAME: kvc.kernel = "fw_vstore"
// CHECK: memref.store %{{.*}}, %{{.*}}[%{{.*}}] : memref<?xi32>
// CHECK: gpu.return
// The tokens kernel: both streams' new tokens, then (copy_rows) the row table.
// CHECK: gpu.func @kvc_store_d128_kb64_fw_tokens(%{{.*}}: memref<?xf16>, %{{.*}}: memref<?xf16>, %{{.*}}: memref<?xf16>, %{{.*}}: memref<?xf16>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?xi32>, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index)
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>, kvc.kernel = "fw_tokens"
// CHECK-COUNT-2: memref.store %{{.*}} : memref<?xf16>
// CHECK: scf.if
// CHECK: memref.store %{{.*}} : memref<?xi32>

// SMALL: gpu.func @kvc_store_d32_kb128_fw_kstore(
// SMALL-SAME: memref<4096xi8, #gpu.address_space<workgroup>>
// SMALL: gpu.func @kvc_store_d32_kb128_fw_vstore(
// SMALL-SAME: memref<512xi8, #gpu.address_space<workgroup>>

// ERR-D: kvc-bench store: --fixed-width 100,64: fixed-width store kernels: head dim must be a multiple of 32 in [32, 256], got 100
// ERR-KB: kvc-bench store: --fixed-width 128,48: fixed-width store kernels: key block must be 32, 64 or 128 tokens, got 48
// ERR-ARG: kvc-bench store: --fixed-width wants D,KB, got '128'
