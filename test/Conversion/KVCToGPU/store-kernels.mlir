// The store (block-encode) kernels as emitted by StoreKernelGen (lib/Conversion/KVCToGPU).
// They are not reached from convert-kvc-to-gpu yet; `kvc-bench store gen` prints them (the
// generator has no MLIR dependency) and kvc-opt parses and verifies the module. kvc-bench is
// built only with the CUDA toolkit, which is what the ptxas feature stands for here.
// REQUIRES: ptxas
// RUN: kvc-bench store gen --config 128,64,128,f16,kblk | kvc-opt | FileCheck %s
// RUN: kvc-bench store gen --config 96,48,80,f32,kch | kvc-opt | FileCheck %s --check-prefix=KCH
// RUN: not kvc-bench store gen --config 2048,64,128,f16,kblk 2>&1 | FileCheck %s --check-prefix=ERR-D
// RUN: not kvc-bench store gen --config 128,64,128,f8,kblk 2>&1 | FileCheck %s --check-prefix=ERR-T
// RUN: not kvc-bench store gen --config 128,2048,128,f16,kblk 2>&1 | FileCheck %s --check-prefix=ERR-KB

// CHECK-LABEL: gpu.module @kvc_gpu
// Keys: 64 rows of 128 symbols, 4 threads per row.
// CHECK: gpu.func @kvc_store_d128_kb64_vb128_f16_kblk_kstore(%{{.*}}: memref<?xf16>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xi32>, %{{.*}}: f32, %{{.*}}: i32, %{{.*}}: i32)
// CHECK-SAME: workgroup(%{{.*}} : memref<256xf32, #gpu.address_space<workgroup>>
// CHECK-SAME: known_block_size = array<i32: 256, 1, 1>
// The fp16 source is used as is; the block minimum carries its flat index (ties -> lower).
// CHECK: scf.for
// CHECK: memref.load %{{.*}} : memref<?xf16>
// CHECK: arith.extf %{{.*}} : f16 to f32
// CHECK: arith.cmpf olt
// CHECK: arith.index_castui %{{.*}} : index to i32
// CHECK: gpu.barrier
// CHECK: arith.cmpi ult, %{{.*}}, %{{.*}} : i32
// step = fp32(eps * (M - m)) in double, clamped to FLT_MIN (0x00800000).
// CHECK: arith.mulf %{{.*}}, %{{.*}} : f64
// CHECK: arith.truncf %{{.*}} : f64 to f32
// CHECK: arith.cmpf olt, %{{.*}}, %{{.*}} : f32
// Quantizer: (x - m) / step in double, round half to even with 1.5 * 2^52.
// CHECK: arith.divf %{{.*}}, %{{.*}} : f64
// CHECK: arith.addf %{{.*}}, %[[MAGIC:.*]] : f64
// CHECK: arith.subf %{{.*}}, %[[MAGIC]] : f64
// CHECK: arith.fptoui %{{.*}} : f64 to i32
// Block words come from an atomic bump of %top; boundary words are OR-ed in, the rest stored.
// CHECK: memref.atomic_rmw addi
// CHECK: memref.atomic_rmw ori
// CHECK: memref.store
// CHECK: memref.atomic_rmw ori
// CHECK: gpu.return
// Values: 128 channel columns of 128 symbols, 2 threads per column, one group per token.
// CHECK: gpu.func @kvc_store_d128_kb64_vb128_f16_kblk_vstore(
// CHECK-SAME: known_block_size = array<i32: 256, 1, 1>
// CHECK-NOT: gpu.func
// CHECK: memref.store %{{.*}}, %{{.*}}[%{{.*}}] : memref<128xf32, #gpu.address_space<workgroup>>
// CHECK: memref.atomic_rmw ori

// f32 source rounded to fp16 first; per-channel key groups: 96 (min, step) per block.
// KCH: gpu.func @kvc_store_d96_kb48_vb80_f32_kch_kstore(%{{.*}}: memref<?xf32>
// KCH-SAME: known_block_size = array<i32: 192, 1, 1>
// KCH: arith.truncf %{{.*}} : f32 to f16
// KCH: arith.extf %{{.*}} : f16 to f32
// KCH: memref.store %{{.*}}, %{{.*}}[%{{.*}}] : memref<96xf32, #gpu.address_space<workgroup>>
// KCH: gpu.func @kvc_store_d96_kb48_vb80_f32_kch_vstore(%{{.*}}: memref<?xf32>
// KCH-SAME: known_block_size = array<i32: 192, 1, 1>

// ERR-D: config 2048,64,128,f16,kblk: store kernels: head dim must be in [1, 1024], got 2048
// ERR-T: store kernels: element type must be f16, bf16 or f32, got 'f8'
// ERR-KB: store kernels: key block (2048) exceeds 1024 vectors per block
