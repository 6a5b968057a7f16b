// convert-kvc-to-gpu on kvc.attention over a fixed-width KVComp cache (entropy = none): host
// launches against the handle's fixed-width device form (9 buffers, CUDAFixedWidth.h), and the
// structure of the generated split kernel (cp.async ring, lop3-style decode + one packed fma
// per pair, tensor-core mma for keys and values, per-warp online softmax, the fp16 window
// loop) and the shared merge.
// RUN: kvc-opt %s -split-input-file --convert-kvc-to-gpu | FileCheck %s
// RUN: kvc-opt %s -split-input-file --convert-kvc-to-gpu="fixed-width-ring=0 fixed-width-min-ctas=0" | FileCheck %s --check-prefix=REG
// The merge fused into the split kernel: arrival counters from an i32 runtime workspace and the
// output passed to the split, no merge kernel, the last CTA of a row merges (acq_rel arrival).
// RUN: kvc-opt %s -split-input-file --convert-kvc-to-gpu="fixed-width-fuse-merge=1" | FileCheck %s --check-prefix=FM
// FM-LABEL: func.func @decode(%arg0: tensor<?x32x1x128xbf16>, %arg1: i64)
// FM: %[[CNT:.*]] = call @kvc_rt_gpu_workspace_i32(
// FM: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_kb64_fw_fm_split {{.*}}, %[[CNT]] : memref<?xi32>, %{{.*}} : memref<?xbf16>)
// FM-NOT: gpu.launch_func
// FM: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_fw_fm_split({{.*}}, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?xbf16>) workgroup({{.*}}, %{{.*}} : memref<1xi32, #gpu.address_space<workgroup>>)
// FM: llvm.inline_asm has_side_effects "atom.acq_rel.gpu.add.u32
// FM: vector.store %{{.*}} : memref<?xbf16>, vector<4xbf16>
// FM-NOT: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_fw_fm_merge

#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>
!fw = !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #codec>

// CHECK-LABEL: func.func @decode(%arg0: tensor<?x32x1x128xbf16>, %arg1: i64) ->
// CHECK-NOT: kvc.cache.view
// CHECK: call @kvc_rt_gpu_encoded_check_rows(%arg1, %{{.*}}, %c8_i64, %c1_i64)
// CHECK: %[[ROWS:.*]] = call @kvc_rt_gpu_encoded_buffer_i32(%arg1, %c0_i64{{.*}})
// CHECK: %[[KW:.*]] = call @kvc_rt_gpu_encoded_buffer_i32(%arg1, %c1_i64{{.*}})
// CHECK: %[[VW:.*]] = call @kvc_rt_gpu_encoded_buffer_i32(%arg1, %c2_i64{{.*}})
// CHECK: call @kvc_rt_gpu_encoded_buffer_f32(%arg1, %c3_i64{{.*}})
// CHECK: call @kvc_rt_gpu_encoded_buffer_f32(%arg1, %c6_i64{{.*}})
// CHECK: call @kvc_rt_gpu_encoded_buffer_f16(%arg1, %c7_i64{{.*}})
// CHECK: %[[VREC:.*]] = call @kvc_rt_gpu_encoded_buffer_f16(%arg1, %c8_i64{{.*}})
// CHECK-NOT: kvc_rt_gpu_encoded_buffer
// CHECK: %[[NAME:.*]] = memref.get_global @__kvc_name_kvc_attn0_d128_g4_q1_bf16_kb64_fw
// CHECK: %[[NS64:.*]] = call @kvc_rt_gpu_encoded_splits(%{{.*}}, %arg1) : (memref<?xi8>, i64) -> i64
// CHECK: %[[NS:.*]] = arith.index_cast %[[NS64]] : i64 to index
// Grid (splits, Hkv, B), 128 threads whatever D is.
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_kb64_fw_split blocks in (%[[NS]], %c8, %dim) threads in (%c128{{.*}}, %c1{{.*}}, %c1{{.*}}) args(%collapse_shape : memref<?xbf16>, %[[ROWS]] : memref<?xi32>, %[[KW]] : memref<?xi32>, %[[VW]] : memref<?xi32>,
// CHECK-SAME: %[[VREC]] : memref<?xf16>, %{{.*}} : memref<?xf32>, %{{.*}} : memref<?xf32>)
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_kb64_fw_merge blocks in
//
// The split kernel: the ring (2 tiles x (5 + 4) uint4 x 128 threads = 9216 words) doubles as
// the warps' value sums at the end; 4 warps x 4 query rows x 40 f16 weight rows; the f16
// query fragments for the window's key mma.
// CHECK: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_fw_split(
// CHECK-SAME: workgroup(%{{.*}} : memref<9216xi32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<640xf16, #gpu.address_space<workgroup>>
// CHECK-SAME: kernel attributes {known_block_size = array<i32: 128, 1, 1>, kvc.kernel = "fw_split", nvvm.minctasm = 4 : i32}
// sum(q) of a query row comes from lane 4 * row.
// CHECK: gpu.shuffle idx
// The first tile's words: 9 cp.async of 16 bytes (bypassing L1), one group.
// CHECK-COUNT-9: nvvm.cp.async.shared.global %{{.*}}, %{{.*}}, 16, cache = cg : !llvm.ptr<3>, !llvm.ptr<1>
// CHECK: nvvm.cp.async.commit.group
// The code tiles: wait for tile t, start t + 1, decode keys with a packed bf16 fma per pair,
// 16 key mmas (8 channel steps x 2 token halves).
// CHECK: scf.for
// CHECK: nvvm.cp.async.wait.group 0
// CHECK-COUNT-9: nvvm.cp.async.shared.global
// CHECK: nvvm.cp.async.commit.group
// CHECK: vector.load %{{.*}} {alignment = 16 : i64} : memref<9216xi32, #gpu.address_space<workgroup>>, vector<4xi32>
// CHECK: arith.andi %{{.*}}, %c1048592_i32 : i32
// CHECK: llvm.inline_asm "fma.rn.bf16x2 $0, $1, $2, $3;", "=r,r,r,r"
// CHECK: nvvm.mma.sync {{.*}}multiplicandAPtxType = #nvvm.mma_type<bf16>
// CHECK-COUNT-15: nvvm.mma.sync {{.*}}#nvvm.mma_type<bf16>
// Per-warp softmax: max over the 8 token rows of the warp (lanes xor 4, 8, 16), no barrier.
// CHECK-NOT: gpu.barrier
// CHECK: gpu.shuffle xor %{{.*}}, %c4
// CHECK: memref.load %arg6
// CHECK: memref.load %arg7
// CHECK: nvvm.bar.warp.sync
// Values: symbols to f16 pairs, 16 mmas (2 token steps x 8 channel tiles).
// CHECK: llvm.inline_asm "fma.rn.f16x2 $0, $1, $2, $3;"
// CHECK-COUNT-16: nvvm.mma.sync {{.*}} : (vector<2xf16>, vector<2xf16>, f32)
// CHECK: nvvm.bar.warp.sync
// CHECK: scf.yield
// The window tiles: f16 keys and values straight from the fp16 rows, masked past the row.
// CHECK: scf.for
// CHECK-NOT: nvvm.cp.async
// CHECK: vector.load %arg8
// CHECK: nvvm.mma.sync {{.*}} : (vector<2xf16>, vector<2xf16>, f32)
// CHECK: memref.load %arg9
// CHECK: scf.yield
// The warps combine like splits, then the workspace.
// CHECK: gpu.barrier
// CHECK: gpu.barrier
// CHECK: memref.store %{{.*}}, %arg10
// CHECK: memref.store %{{.*}}, %arg11
// CHECK: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_fw_merge(
// CHECK-SAME: kvc.kernel = "fw_merge"
// REG-LABEL: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_fw_split(
// REG-SAME: workgroup(%{{.*}} : memref<2048xi32, #gpu.address_space<workgroup>>
// REG-SAME: kvc.kernel = "fw_split"}
// REG-NOT: nvvm.cp.async
// REG: vector.load %arg2[{{.*}}] {alignment = 16 : i64} : memref<?xi32>, vector<4xi32>
func.func @decode(%q: tensor<?x32x1x128xbf16>, %c: !fw) -> tensor<?x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !fw -> tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
  %o = kvc.attention %q, %k, %v {causal} : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}

// -----

// D = 256 (Gemma 3), f16 queries, g = 8: the ring would need 72 KiB, so the words go straight
// to registers; no f16 copy of the queries is needed; every fragment row is a query row.
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 32, key_error = 5.000000e-02 : f64, value_group = token, value_block = 256, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>
!fw = !kvc.encoded_cache<tensor<1x1x?x256xf16>, tensor<1x1x?x256xf16>, #codec>
// CHECK-LABEL: gpu.func @kvc_attn0_d256_g8_q1_f16_kb32_fw_split(
// CHECK-SAME: workgroup(%{{.*}} : memref<8192xi32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<1280xf16, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<96xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK-SAME: nvvm.minctasm = 2 : i32
// CHECK-NOT: nvvm.cp.async
// CHECK: llvm.inline_asm "fma.rn.f16x2
// CHECK: nvvm.mma.sync {{.*}} : (vector<2xf16>, vector<2xf16>, f32)
func.func @gemma(%q: tensor<1x8x1x256xf16>, %c: !fw) -> tensor<1x8x1x256xf16> {
  %k, %v = kvc.cache.view %c : !fw -> tensor<1x1x?x256xf16>, tensor<1x1x?x256xf16>
  %o = kvc.attention %q, %k, %v {scale = 6.250000e-02 : f32} : (tensor<1x8x1x256xf16>, tensor<1x1x?x256xf16>, tensor<1x1x?x256xf16>) -> tensor<1x8x1x256xf16>
  return %o : tensor<1x8x1x256xf16>
}

// -----

// kvc.cache.append on a fixed-width cache appends on the GPU: after the row/form check,
// append_begin (with the store kernels' D and key block), the window kernel per stream
// (bf16 -> fp16), the fixed-width store kernels on the due key and value jobs (buffers 9..12:
// jobs and statuses), append_end; the result is the same handle.
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>
!fw = !kvc.encoded_cache<tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>, #codec>
// CHECK-LABEL: func.func @append(%arg0: i64, %arg1: tensor<2x8x1x128xbf16>, %arg2: tensor<2x8x1x128xbf16>) -> i64
// CHECK: call @kvc_rt_gpu_encoded_check_rows(%arg0, %{{.*}}, %c8_i64, %c1_i64)
// CHECK: call @kvc_rt_gpu_fixed_width_append_begin(%arg0, %{{.*}}, %c128_i64, %c64_i64, %[[STATE:.*]]) : (i64, i64, i64, i64, memref<?xi64>) -> ()
// CHECK: scf.if
// CHECK: gpu.launch_func @kvc_gpu::@kvc_window_d128_bf16
// CHECK: gpu.launch_func @kvc_gpu::@kvc_window_d128_bf16
// CHECK: memref.load %[[STATE]][%c2{{.*}}] : memref<?xi64>
// CHECK: scf.if
// CHECK: call @kvc_rt_gpu_encoded_buffer_i32(%arg0, %c9_i64)
// CHECK: call @kvc_rt_gpu_encoded_buffer_i32(%arg0, %c10_i64)
// CHECK: gpu.launch_func @kvc_gpu::@kvc_store_d128_kb64_fw_kstore blocks in (%{{.*}}, %{{.*}}, %{{.*}}) threads in (%c256, %{{.*}}, %{{.*}})
// CHECK: call @kvc_rt_gpu_encoded_buffer_i32(%arg0, %c11_i64)
// CHECK: call @kvc_rt_gpu_encoded_buffer_i32(%arg0, %c12_i64)
// CHECK: gpu.launch_func @kvc_gpu::@kvc_store_d128_kb64_fw_vstore
// CHECK: call @kvc_rt_gpu_fixed_width_append_end(%arg0, %{{.*}}) : (i64, i64) -> ()
// CHECK: return %arg0 : i64
// CHECK: gpu.func @kvc_store_d128_kb64_fw_kstore(
// CHECK: gpu.func @kvc_store_d128_kb64_fw_vstore(
// CHECK: gpu.func @kvc_window_d128_bf16(
func.func @append(%c: !fw, %k: tensor<2x8x1x128xbf16>, %v: tensor<2x8x1x128xbf16>) -> !fw {
  %n = kvc.cache.append %c, %k, %v : !fw, tensor<2x8x1x128xbf16>, tensor<2x8x1x128xbf16> -> !fw
  return %n : !fw
}

// -----

// A value block the store kernels cannot split (not a multiple of 16 tokens): one runtime call
// through the host-assisted appender.
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 24, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>
!fw = !kvc.encoded_cache<tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>, #codec>
// CHECK-LABEL: func.func @append_host(%arg0: i64, %arg1: tensor<2x8x1x128xbf16>, %arg2: tensor<2x8x1x128xbf16>) -> i64
// CHECK-NOT: gpu.launch_func
// CHECK: call @kvc_rt_gpu_encoded_check_rows(%arg0, %{{.*}}, %c8_i64, %c1_i64)
// CHECK-NEXT: call @kvc_rt_gpu_fixed_width_append_bf16(%arg0, %{{.*}}, %{{.*}}) : (i64, memref<?x?x?x?xbf16>, memref<?x?x?x?xbf16>) -> ()
// CHECK-NEXT: return %arg0 : i64
func.func @append_host(%c: !fw, %k: tensor<2x8x1x128xbf16>, %v: tensor<2x8x1x128xbf16>) -> !fw {
  %n = kvc.cache.append %c, %k, %v : !fw, tensor<2x8x1x128xbf16>, tensor<2x8x1x128xbf16> -> !fw
  return %n : !fw
}
