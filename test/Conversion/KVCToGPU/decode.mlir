// RUN: kvc-opt %s -split-input-file -convert-kvc-to-gpu="block-size=64 prefetch=false fuse-merge=false small-rows=0" | FileCheck %s
// (The defaults, block-size=128 with the software-pipelined main loop: decode-prefetch.mlir.)

// Decode GQA (Hq 32, Hkv 8, g = 4), bf16, D = 128: one split kernel per (split, KV head,
// batch) that serves all 4 query heads of a group, plus the merge kernel.
// CHECK-LABEL: module attributes {gpu.container_module}
// CHECK-DAG: func.func private @kvc_rt_gpu_workspace_f32(i64, i64) -> memref<?xf32> attributes {llvm.emit_c_interface}
// CHECK-DAG: func.func private @kvc_rt_gpu_decode_splits(memref<?xi8>, i64, i64, i64) -> i64 attributes {llvm.emit_c_interface}
// The kernel's name, NUL-terminated ("kvc_" ... 0), for the runtime's plan to find it.
// CHECK-DAG: memref.global "private" constant @__kvc_name_kvc_attn0_d128_g4_q1_bf16_b64_u4 : memref<33xi8> = dense<[107, 118, 99, 95, {{.*}}, 117, 52, 0]>
// CHECK-LABEL: func.func @decode_bf16
// CHECK-NOT: kvc.attention
// CHECK-DAG: %[[Q:.*]] = bufferization.to_buffer %arg0 read_only : tensor<8x32x1x128xbf16> to memref<8x32x1x128xbf16>
// CHECK-DAG: %[[K:.*]] = bufferization.to_buffer %arg1 read_only : tensor<8x8x?x128xbf16> to memref<8x8x?x128xbf16>
// CHECK: %[[SKV:.*]] = memref.dim %[[K]], %{{.*}} : memref<8x8x?x128xbf16>
// The output, in managed memory the host code returns.
// CHECK: %[[OUT:.*]] = gpu.alloc host_shared () : memref<8x32x1x128xbf16>
// The split count from the runtime's plan (the kernel's measured occupancy, whole waves).
// CHECK: %[[NAME:.*]] = memref.get_global @__kvc_name_kvc_attn0_d128_g4_q1_bf16_b64_u4 : memref<33xi8>
// CHECK: %[[NAMEDYN:.*]] = memref.cast %[[NAME]] : memref<33xi8> to memref<?xi8>
// CHECK: %[[SKV64:.*]] = arith.index_cast %[[SKV]] : index to i64
// CHECK: %[[S64:.*]] = call @kvc_rt_gpu_decode_splits(%[[NAMEDYN]], %{{.*}}, %{{.*}}, %[[SKV64]]) : (memref<?xi8>, i64, i64, i64) -> i64
// CHECK: %[[NS:.*]] = arith.index_cast %[[S64]] : i64 to index
// CHECK: arith.ceildivui %[[SKV]], %[[NS]]
// Workspace from the runtime's per-thread cache (f32 slots 0 and 1, sized B*Hkv*g*splits*D and
// *2).
// CHECK: %[[C0:.*]] = arith.constant 0 : i64
// CHECK: %[[N0:.*]] = arith.index_cast %{{.*}} : index to i64
// CHECK: %[[OP:.*]] = call @kvc_rt_gpu_workspace_f32(%[[C0]], %[[N0]]) : (i64, i64) -> memref<?xf32>
// CHECK: %[[C1:.*]] = arith.constant 1 : i64
// CHECK: %[[ML:.*]] = call @kvc_rt_gpu_workspace_f32(%[[C1]], %{{.*}}) : (i64, i64) -> memref<?xf32>
// CHECK: memref.collapse_shape %[[Q]] {{\[\[}}0, 1, 2, 3]] : memref<8x32x1x128xbf16> into memref<32768xbf16>
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b64_u4_split blocks in (%[[S:.*]], %{{.*}}, %{{.*}}) threads in (%{{.*}}, %{{.*}}, %{{.*}}) args(%{{.*}} : memref<?xbf16>, %{{.*}} : memref<?xbf16>, %{{.*}} : memref<?xbf16>, %[[OP]] : memref<?xf32>, %[[ML]] : memref<?xf32>, %[[SKV]] : index, %{{.*}} : index)
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b64_u4_merge blocks in (%{{.*}}, %{{.*}}, %{{.*}}) threads in (%{{.*}}, %{{.*}}, %{{.*}}) args(%[[OP]] : memref<?xf32>, %[[ML]] : memref<?xf32>, %{{.*}} : memref<?xbf16>, %[[S]] : index)
// Nothing is freed: the workspace stays cached for the next call.
// CHECK-NOT: gpu.dealloc
// CHECK: %[[R:.*]] = bufferization.to_tensor %[[OUT]] restrict writable
// CHECK: return %[[R]]

// The second, identical op reuses the same kernels.
// CHECK-LABEL: func.func @decode_again
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b64_u4_split

// Kernels: 128-bit loads of K and V (8 bf16 per lane), f32 math, xor-butterfly reductions of
// the q.k dots over the 16 lanes of a key group (offsets 8, 4, 2, 1), exp2 online softmax,
// key-group merge by shuffles (offsets 16), cross-warp merge in workgroup memory.
// CHECK-LABEL: gpu.module @kvc_gpu
// CHECK: gpu.func @kvc_attn0_d128_g4_q1_bf16_b64_u4_split(%{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: index, %{{.*}}: index)
// CHECK-SAME: workgroup(%{{.*}} : memref<2x4x128xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<2x4xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<2x4xf32, #gpu.address_space<workgroup>>)
// CHECK-SAME: kernel attributes {known_block_size = array<i32: 64, 1, 1>
// CHECK-DAG: gpu.block_id  z
// CHECK-DAG: gpu.grid_dim  x
// CHECK: scf.for
// CHECK-COUNT-4: vector.load %{{.*}} {alignment = 16 : i64} : memref<?xbf16>, vector<8xbf16>
// CHECK: arith.extf %{{.*}} : vector<8xbf16> to vector<8xf32>
// CHECK: vector.reduction <add>
// CHECK: gpu.shuffle  xor %{{.*}}, %[[C8:.*]], %[[W:.*]] : f32
// CHECK: gpu.shuffle  xor
// CHECK: gpu.shuffle  xor
// CHECK: gpu.shuffle  xor
// CHECK: arith.maxnumf
// CHECK: math.exp2
// CHECK: vector.fma
// CHECK: scf.yield
// CHECK: scf.for
// CHECK: scf.yield
// CHECK: gpu.shuffle  xor
// CHECK: vector.store %{{.*}} {alignment = 16 : i64} : memref<2x4x128xf32, #gpu.address_space<workgroup>>, vector<8xf32>
// CHECK: gpu.barrier
// CHECK: gpu.return
// The merge: 512 threads = 4 slices of the D = 128 outputs. Slice j = t / 128 merges splits
// j*8.., 8 per iteration (every load issued before the running max), stepping over the other
// slices' batches (32); slice 0 combines the 4 states from workgroup memory.
// CHECK: gpu.func @kvc_attn0_d128_g4_q1_bf16_b64_u4_merge(%{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xbf16>, %{{.*}}: index) workgroup(%[[WM:.*]] : memref<512xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<512xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<512xf32, #gpu.address_space<workgroup>>) kernel attributes {known_block_size = array<i32: 512, 1, 1>
// CHECK: %[[T:.*]] = gpu.thread_id  x
// CHECK: %[[J:.*]] = arith.divui %[[T]], %c128
// CHECK: %[[FIRST:.*]] = arith.muli %[[J]], %c8
// CHECK: scf.for %{{.*}} = %[[FIRST]] to %{{.*}} step %c32 iter_args(%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}) -> (f32, f32, f32)
// CHECK-COUNT-24: memref.load
// CHECK-NOT: memref.load
// CHECK: arith.maxnumf
// CHECK: math.exp2
// CHECK: scf.yield
// CHECK: memref.store %{{.*}}, %[[WM]][%[[T]]]
// CHECK: gpu.barrier
// CHECK: scf.if
// CHECK-COUNT-12: memref.load
// CHECK: arith.divf
// CHECK: arith.truncf %{{.*}} : f32 to bf16
// CHECK-NOT: gpu.func
func.func @decode_bf16(%q: tensor<8x32x1x128xbf16>, %k: tensor<8x8x?x128xbf16>,
                       %v: tensor<8x8x?x128xbf16>) -> tensor<8x32x1x128xbf16> {
  %o = kvc.attention %q, %k, %v : (tensor<8x32x1x128xbf16>, tensor<8x8x?x128xbf16>, tensor<8x8x?x128xbf16>) -> tensor<8x32x1x128xbf16>
  return %o : tensor<8x32x1x128xbf16>
}
func.func @decode_again(%q: tensor<8x32x1x128xbf16>, %k: tensor<8x8x?x128xbf16>,
                        %v: tensor<8x8x?x128xbf16>) -> tensor<8x32x1x128xbf16> {
  %o = kvc.attention %q, %k, %v {causal} : (tensor<8x32x1x128xbf16>, tensor<8x8x?x128xbf16>, tensor<8x8x?x128xbf16>) -> tensor<8x32x1x128xbf16>
  return %o : tensor<8x32x1x128xbf16>
}

// -----

// Ragged cache (per-(b, kv-head) lengths), f16, D = 64 (8 lanes per key, 4 keys per warp),
// MQA-like g = 8, dynamic batch, explicit scale.
// CHECK-LABEL: func.func @ragged_f16
// CHECK: %[[L:.*]] = bufferization.to_buffer %arg3 read_only : tensor<?x1xi64> to memref<?x1xi64>
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d64_g8_q1_f16_b64_u4_ragged_split
// CHECK-SAME: %{{.*}} : memref<?xi64>
// CHECK: gpu.func @kvc_attn0_d64_g8_q1_f16_b64_u4_ragged_split(%{{.*}}: memref<?xf16>, %{{.*}}: memref<?xf16>, %{{.*}}: memref<?xf16>, %{{.*}}: memref<?xi64>,
// Each row stops at its length, clamped to [0, capacity], and is split by that length:
// chunk = ceil(L / splits) rounded up to the 32-key tile (block 64 x unroll 4 / 8 lanes).
// CHECK: memref.load %{{.*}} : memref<?xi64>
// CHECK: arith.maxsi
// CHECK: %[[LEN:.*]] = arith.minui %{{.*}}, %[[CAP:arg6]] : index
// CHECK: %[[NSM1:.*]] = arith.subi %grid_dim_x, %c1 : index
// CHECK: %[[LP:.*]] = arith.addi %[[LEN]], %[[NSM1]] : index
// CHECK: %[[PER:.*]] = arith.divui %[[LP]], %grid_dim_x : index
// CHECK: %[[PT:.*]] = arith.addi %[[PER]], %c31 : index
// CHECK: %[[NT:.*]] = arith.divui %[[PT]], %[[TILE:.*]] : index
// CHECK: %[[CH:.*]] = arith.muli %[[NT]], %[[TILE]] : index
// CHECK: %[[START:.*]] = arith.muli %block_id_x, %[[CH]] : index
// CHECK: %[[E0:.*]] = arith.addi %[[START]], %[[CH]] : index
// CHECK: arith.minui %[[E0]], %[[LEN]] : index
// 8 lanes per key: a 3-step butterfly (4, 2, 1), then key groups merge with offsets 8 and 16.
// CHECK: vector.load %{{.*}} {alignment = 16 : i64} : memref<?xf16>, vector<8xf16>
// CHECK: gpu.func @kvc_attn0_d64_g8_q1_f16_b64_u4_ragged_merge
func.func @ragged_f16(%q: tensor<?x8x1x64xf16>, %k: tensor<?x1x4096x64xf16>,
                      %v: tensor<?x1x4096x64xf16>, %len: tensor<?x1xi64>) -> tensor<?x8x1x64xf16> {
  %o = kvc.attention %q, %k, %v lengths(%len) {scale = 0.125 : f32} : (tensor<?x8x1x64xf16>, tensor<?x1x4096x64xf16>, tensor<?x1x4096x64xf16>, tensor<?x1xi64>) -> tensor<?x8x1x64xf16>
  return %o : tensor<?x8x1x64xf16>
}
