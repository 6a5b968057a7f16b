// RUN: kvc-opt %s -split-input-file --convert-kvc-to-gpu="small-rows=0" | FileCheck %s
// RUN: kvc-opt %s -split-input-file --convert-kvc-to-gpu="fuse-merge=true small-rows=0" | FileCheck %s
// RUN: kvc-opt %s -split-input-file --kvc-gpu-pipeline="small-rows=0" | FileCheck %s --check-prefix=PTX
// RUN: kvc-opt %s -split-input-file --convert-kvc-to-gpu="fuse-merge=false small-rows=0" | FileCheck %s --check-prefix=SPLIT

// fuse-merge (the default): one launch. The split kernel takes the arrival counters and the
// output. After a CTA barrier, thread 0 counts the CTA in with an acq_rel atomic at GPU scope
// (its release publishes the CTA's partials, its acquire lets the last CTA read the others');
// there is no per-thread device fence. The last CTA of each KV row (arrival count == splits -
// 1) merges the row's partials and resets its counter. No merge kernel. The merge reads 4 outputs per
// thread: one 128-bit o_part load and one 64-bit (m, l) load per split, 8 splits per iteration.
// CHECK-LABEL: func.func @decode
// One arrival counter per KV row (B * Hkv of them): i32 workspace slot 0 of the runtime, zeroed
// when it is allocated and left zero by every launch (the last CTA resets its row's counter),
// so nothing is zeroed or freed per call.
// CHECK: %[[ROWS:.*]] = arith.muli %c8, %c8_0 : index
// CHECK: %[[N:.*]] = arith.index_cast %[[ROWS]] : index to i64
// CHECK: %[[CNT:.*]] = call @kvc_rt_gpu_workspace_i32(%c0_i64{{.*}}, %[[N]]) : (i64, i64) -> memref<?xi32>
// CHECK-NOT: gpu.memset
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf_split
// CHECK-SAME: %[[CNT]] : memref<?xi32>
// CHECK-NOT: gpu.launch_func
// CHECK-NOT: gpu.dealloc
// CHECK: gpu.func @kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf_split(%{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?xbf16>, %{{.*}}: index, %{{.*}}: index)
// CHECK-SAME: workgroup({{.*}}, %{{.*}} : memref<1xi32, #gpu.address_space<workgroup>>)
// CHECK-NOT: nvvm.memory.barrier
// CHECK: gpu.barrier
// CHECK: %[[CB:.*]] = memref.extract_aligned_pointer_as_index %{{.*}} : memref<?xi32> -> index
// CHECK: llvm.inline_asm has_side_effects "atom.acq_rel.gpu.add.u32 $0, [$1], 1;", "=r,l,~{memory}" %{{.*}} : (i64) -> i32
// CHECK: gpu.barrier
// CHECK: %[[LAST:.*]] = arith.cmpi eq, %{{.*}}, %{{.*}} : i32
// CHECK: scf.if %[[LAST]] {
// CHECK-NOT: nvvm.memory.barrier
// CHECK: scf.for
// CHECK-COUNT-8: vector.load %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK: scf.yield %{{.*}} : f32, vector<4xf32>, f32
// CHECK: arith.truncf %{{.*}} : vector<4xf32> to vector<4xbf16>
// CHECK: vector.store %{{.*}} {alignment = 8 : i64} : memref<?xbf16>, vector<4xbf16>
// CHECK: memref.store %{{.*}}, %{{.*}}[%{{.*}}] : memref<?xi32>
// CHECK-NOT: gpu.func
// fuse-merge=false: split + merge, no counters.
// SPLIT-LABEL: func.func @decode
// SPLIT-NOT: kvc_rt_gpu_workspace_i32
// SPLIT: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b128_u4_pf_split
// SPLIT: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_b128_u4_pf_merge
// PTX: .entry kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf_split(
// PTX-NOT: membar
// PTX: bar.sync
// PTX: atom.acq_rel.gpu.add.u32
// PTX-NOT: membar
// PTX-COUNT-8: ld.global.v4.b32
// PTX: st.global.v2.b32
// PTX-NOT: .entry
func.func @decode(%q: tensor<8x32x1x128xbf16>, %k: tensor<8x8x?x128xbf16>,
                  %v: tensor<8x8x?x128xbf16>) -> tensor<8x32x1x128xbf16> {
  %o = kvc.attention %q, %k, %v : (tensor<8x32x1x128xbf16>, tensor<8x8x?x128xbf16>, tensor<8x8x?x128xbf16>) -> tensor<8x32x1x128xbf16>
  return %o : tensor<8x32x1x128xbf16>
}

// -----

// Ragged (per-row lengths): the same counters and one launch; the lengths go to the kernel.
// CHECK-LABEL: func.func @ragged
// CHECK: %[[RCNT:.*]] = call @kvc_rt_gpu_workspace_i32(%{{.*}}, %{{.*}}) : (i64, i64) -> memref<?xi32>
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d64_g8_q1_f16_b128_u4_ragged_fm_pf_split
// CHECK-SAME: memref<?xi64>
// CHECK-SAME: %[[RCNT]] : memref<?xi32>
// CHECK-NOT: gpu.launch_func
// CHECK: gpu.func @kvc_attn0_d64_g8_q1_f16_b128_u4_ragged_fm_pf_split(
// CHECK-SAME: %{{.*}}: memref<?xi64>
// CHECK: atom.acq_rel.gpu.add.u32
// CHECK-NOT: gpu.func
// SPLIT-LABEL: func.func @ragged
// SPLIT: gpu.launch_func @kvc_gpu::@kvc_attn0_d64_g8_q1_f16_b128_u4_ragged_pf_split
// SPLIT: gpu.launch_func @kvc_gpu::@kvc_attn0_d64_g8_q1_f16_b128_u4_ragged_pf_merge
// PTX: .entry kvc_attn0_d64_g8_q1_f16_b128_u4_ragged_fm_pf_split(
// PTX: atom.acq_rel.gpu.add.u32
// PTX-NOT: .entry
func.func @ragged(%q: tensor<?x8x1x64xf16>, %k: tensor<?x1x?x64xf16>, %v: tensor<?x1x?x64xf16>,
                  %len: tensor<?x1xi64>) -> tensor<?x8x1x64xf16> {
  %o = kvc.attention %q, %k, %v lengths(%len) : (tensor<?x8x1x64xf16>, tensor<?x1x?x64xf16>, tensor<?x1x?x64xf16>, tensor<?x1xi64>) -> tensor<?x8x1x64xf16>
  return %o : tensor<?x8x1x64xf16>
}
