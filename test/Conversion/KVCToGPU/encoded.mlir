// convert-kvc-to-gpu on kvc.attention over a KVComp-encoded cache (the kvc.cache.view of a
// !kvc.encoded_cache): host launches against the cache's device form, and the structure of the
// generated encoded split kernel (Huffman LUT in workgroup memory, canonical slow path, fp16
// recent tail, online softmax, p.V) and merge kernel.
// RUN: kvc-opt %s -split-input-file --convert-kvc-to-gpu | FileCheck %s
// RUN: kvc-opt %s -split-input-file --convert-kvc-to-gpu="encoded-min-ctas=0 encoded-unroll=2" | FileCheck %s --check-prefix=OPT
// RUN: kvc-opt %s -split-input-file --convert-kvc-to-gpu="encoded-refill-group=8" | FileCheck %s --check-prefix=G8

#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #codec>

// The cache is the runtime's handle (i64); the kernels' 16 device buffers come from it.
// CHECK-DAG: func.func private @kvc_rt_gpu_encoded_buffer_i32(i64, i64) -> memref<?xi32> attributes {llvm.emit_c_interface}
// CHECK-DAG: func.func private @kvc_rt_gpu_encoded_buffer_f32(i64, i64) -> memref<?xf32> attributes {llvm.emit_c_interface}
// CHECK-DAG: func.func private @kvc_rt_gpu_encoded_buffer_f16(i64, i64) -> memref<?xf16> attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @decode(%arg0: tensor<?x32x1x128xbf16>, %arg1: i64) ->
// CHECK-NOT: kvc.cache.view
// CHECK: %[[ROWS:.*]] = call @kvc_rt_gpu_encoded_buffer_i32(%arg1, %c0_i64{{.*}})
// CHECK: %[[VREC:.*]] = call @kvc_rt_gpu_encoded_buffer_f16(%arg1, %c15_i64{{.*}})
// The split count: the runtime driver's plan for this cache at the split kernel's occupancy,
// the kernel found by its NUL-terminated name.
// CHECK: %[[NAME:.*]] = memref.get_global @__kvc_name_kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc : memref<47xi8>
// CHECK: %[[NAMEDYN:.*]] = memref.cast %[[NAME]]
// CHECK: %[[NS64:.*]] = call @kvc_rt_gpu_encoded_splits(%[[NAMEDYN]], %arg1) : (memref<?xi8>, i64) -> i64
// CHECK: %[[NS:.*]] = arith.index_cast %[[NS64]] : i64 to index
// The split kernels' partials: the runtime's cached f32 workspaces (slots 0 and 1).
// CHECK: %[[OP:.*]] = call @kvc_rt_gpu_workspace_f32(%c0_i64{{.*}}, %{{.*}}) : (i64, i64) -> memref<?xf32>
// CHECK: %[[ML:.*]] = call @kvc_rt_gpu_workspace_f32(%c1_i64{{.*}}, %{{.*}}) : (i64, i64) -> memref<?xf32>
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_split blocks in (%[[NS]], %c8, %dim) threads in (%c128{{.*}}, %c1{{.*}}, %c1{{.*}}) args(%collapse_shape : memref<?xbf16>, %[[ROWS]] : memref<?xi32>,
// CHECK-SAME: %[[VREC]] : memref<?xf16>, %[[OP]] : memref<?xf32>, %[[ML]] : memref<?xf32>)
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_merge
// CHECK-SAME: args(%[[OP]] : memref<?xf32>, %[[ML]] : memref<?xf32>, %{{.*}} : memref<?xbf16>, %{{.*}} : index)
// CHECK-NOT: kvc.attention
// The identical second op shares the kernels.
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_split
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_merge

// CHECK: gpu.module @kvc_gpu
// CHECK: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_split(%arg0: memref<?xbf16>, %arg1: memref<?xi32>,
// CHECK-SAME: workgroup(%[[LUT:.*]] : memref<4096xi32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[SQ:.*]] : memref<512xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[SA:.*]] : memref<512xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<32xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK-SAME: kernel attributes {known_block_size = array<i32: 128, 1, 1>, kvc.kernel = "encoded_split", nvvm.minctasm = 8 : i32}
// Row info, then the row's key+value LUTs copied to workgroup memory.
// CHECK: memref.load %arg1[
// CHECK: scf.for %{{.*}} = %thread_id_x to %c4096 step %c128
// CHECK:   memref.load %arg4[
// CHECK:   memref.store %{{.*}}, %[[LUT]][
// Queries scaled into the log2 domain (scale = 1/sqrt(128) * log2 e = 0x3E3893AF).
// CHECK: arith.extf %{{.*}} : bf16 to f32
// CHECK: arith.mulf %{{.*}}, %cst
// CHECK: memref.store %{{.*}}, %[[SQ]][
// CHECK: gpu.barrier
// The tile loop over value blocks of this split.
// CHECK: scf.for %[[TILE:.*]] = %{{.*}} to %{{.*}} step %c1{{.*}} iter_args(
// Key phase, encoded row: decode loop of 8 symbols with a 64-bit window, in groups of 4 (one
// refill, 4 chained LUT lookups, one check: codes past the window's valid bits; a miss has no
// compare of its own, its entry's 6-bit length field is 63 so the group always overruns),
// a failed group on the pair path (whose slow path compares with the escape's code, aux[54]
// and [55], and finds a 12..16-bit code's length from the limits aux[56..59]), and the fp16
// fallback for recent keys.
// CHECK: memref.load %arg5[
// CHECK: scf.for %{{.*}} = %c0{{.*}} to %c128{{.*}} step %c8{{.*}} iter_args({{.*}}) -> (i64, i32, i32, i32, f32, f32, f32, f32)
// CHECK:   arith.cmpi slt, %{{.*}}, %c32_i32
// CHECK:   arith.shrui %{{.*}}, %c32_i64 : i64
// CHECK:   arith.shrui %{{.*}}, %c21_i32 : i32
// CHECK:   memref.load %[[LUT]][
// CHECK:   arith.andi %{{.*}}, %c63_i32{{.*}} : i32
// CHECK-COUNT-3: memref.load %[[LUT]][
// CHECK-NOT: arith.cmpi eq
// CHECK:   arith.cmpi sgt, %{{.*}} : i32
// CHECK:   scf.if %{{.*}} -> (f32, f32, f32, f32, i64, i32, i32, i32)
// CHECK:     memref.load %[[LUT]][
// CHECK:     arith.cmpi eq, %{{.*}}, %c63_i32{{.*}} : i32
// CHECK:     scf.if %{{.*}} -> (f32, i64, i32, i32, i32)
// CHECK:       arith.constant 54 : index
// CHECK:       arith.constant 55 : index
// CHECK:       vector.load %arg2[{{.*}}] {alignment = 16 : i64} : memref<?xi32>, vector<4xi32>
// CHECK-COUNT-4: arith.cmpi uge
// CHECK:       arith.minui
// CHECK:       memref.load %arg3[
// CHECK:       arith.uitofp %{{.*}} : i32 to f32
// CHECK:   } else {
// CHECK:     arith.andi %{{.*}}, %c-64_i32{{.*}} : i32
// CHECK:     arith.bitcast %{{.*}} : i32 to f32
// CHECK:   vector.load %[[SQ]][{{.*}}] {alignment = 16 : i64} : memref<512xf32, #gpu.address_space<workgroup>>, vector<8xf32>
// CHECK:   math.fma
// CHECK: memref.load %arg8[
// CHECK: memref.load %arg9[
// CHECK: vector.load %arg10[{{.*}}] {alignment = 16 : i64} : memref<?xf16>, vector<8xf16>
// CHECK: vector.fma
// Tile max over the CTA, probabilities into A, value phase.
// CHECK: gpu.shuffle xor
// CHECK: gpu.barrier
// CHECK: math.exp2
// CHECK: memref.load %arg14[
// CHECK: memref.load %arg15[
// CHECK: memref.store %{{.*}}, %[[SA]][
// CHECK: gpu.barrier
// CHECK: memref.load %arg12[
// CHECK: memref.load %arg13[
// CHECK: arith.addi %{{.*}}, %c2048 : index
// CHECK: vector.load %[[SA]][
// CHECK: memref.load %arg16[
// CHECK: arith.extf %{{.*}} : f16 to f32
// CHECK: gpu.barrier
// CHECK: scf.yield
// Epilogue: partial output, max and sum per (query row, split).
// CHECK: gpu.shuffle xor
// CHECK: memref.store %{{.*}}, %arg17[
// CHECK: memref.store %{{.*}}, %arg18[
// CHECK: gpu.return
// The merge is the dense one (SplitMerge.h): 4 slices of 128 threads.
// CHECK: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_merge(%arg0: memref<?xf32>, %arg1: memref<?xf32>, %arg2: memref<?xbf16>, %arg3: index) workgroup({{.*}}) kernel attributes {known_block_size = array<i32: 512, 1, 1>, kvc.kernel = "encoded_merge"}
// CHECK: scf.for %{{.*}} step %c32 iter_args(
// CHECK: gpu.barrier
// CHECK: arith.divf
// CHECK: arith.truncf %{{.*}} : f32 to bf16

// With encoded-unroll=2 the refill group is capped at 2: the pair decoder (both lookups, then
// one branch when either misses).
// OPT: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u2_enc_split
// OPT-SAME: kernel attributes {known_block_size = array<i32: 128, 1, 1>, kvc.kernel = "encoded_split"} {
// OPT: scf.for %{{.*}} = %c0{{.*}} to %c128{{.*}} step %c2{{.*}} iter_args({{.*}}) -> (i64, i32, i32, i32, f32, f32, f32, f32)
// OPT:   arith.cmpi slt, %{{.*}}, %c32_i32
// OPT:   memref.load %{{.*}}[
// OPT:   memref.load %{{.*}}[
// OPT:   arith.ori %{{.*}} : i1
// OPT:   scf.if %{{.*}} -> (f32, f32, i64, i32, i32, i32)
// An 8-symbol group: one refill per 8 lookups.
// G8: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r8_enc_split
// G8: scf.for %{{.*}} = %c0{{.*}} to %c128{{.*}} step %c8{{.*}} iter_args(
// G8:   arith.cmpi slt, %{{.*}}, %c32_i32
// G8-COUNT-8: memref.load %{{.*}}[
// G8:   arith.cmpi sgt, %{{.*}} : i32
// G8:   scf.if %{{.*}} -> (f32, f32, f32, f32, f32, f32, f32, f32, i64, i32, i32, i32)
func.func @decode(%q: tensor<?x32x1x128xbf16>, %c: !enc) -> (tensor<?x32x1x128xbf16>, tensor<?x32x1x128xbf16>) {
  %k, %v = kvc.cache.view %c : !enc -> tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
  %o = kvc.attention %q, %k, %v {causal} : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  %o2 = kvc.attention %q, %k, %v : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o, %o2 : tensor<?x32x1x128xbf16>, tensor<?x32x1x128xbf16>
}

// -----

// A ragged encoded cache with f32 queries, D = 64 (two key rows per thread), g = 8 and a static
// batch: lengths come from the device form (row info), so kvc.cache.lengths goes away.
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!renc = !kvc.encoded_cache<tensor<2x2x4096x64xf32>, tensor<2x2x4096x64xf32>, #codec, ragged = true>

// CHECK-LABEL: func.func @ragged_f32(%arg0: tensor<2x16x1x64xf32>, %arg1: i64)
// CHECK-NOT: kvc.cache.lengths
// CHECK: call @kvc_rt_gpu_encoded_buffer_i32(%arg1, %c0_i64{{.*}})
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d64_g8_q1_f32_kb64_vb128_u8_r4_enc_split blocks in (%{{.*}}, %c2{{.*}}, %c2{{.*}}) threads in (%c64
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d64_g8_q1_f32_kb64_vb128_u8_r4_enc_merge
// CHECK: gpu.func @kvc_attn0_d64_g8_q1_f32_kb64_vb128_u8_r4_enc_split(%arg0: memref<?xf32>
// CHECK-SAME: memref<1024xf32, #gpu.address_space<workgroup>>
// CHECK-NOT: arith.extf %{{.*}} : bf16
// CHECK: gpu.func @kvc_attn0_d64_g8_q1_f32_kb64_vb128_u8_r4_enc_merge
// CHECK-NOT: arith.truncf
// CHECK: gpu.return
func.func @ragged_f32(%q: tensor<2x16x1x64xf32>, %c: !renc) -> tensor<2x16x1x64xf32> {
  %k, %v = kvc.cache.view %c : !renc -> tensor<2x2x4096x64xf32>, tensor<2x2x4096x64xf32>
  %l = kvc.cache.lengths %c : !renc -> tensor<2x2xi64>
  %o = kvc.attention %q, %k, %v lengths(%l) : (tensor<2x16x1x64xf32>, tensor<2x2x4096x64xf32>, tensor<2x2x4096x64xf32>, tensor<2x2xi64>) -> tensor<2x16x1x64xf32>
  return %o : tensor<2x16x1x64xf32>
}

// -----

// encoded-mma: each thread decodes 16 symbols at a time into its row of a shared staging tile
// (two views of one i8 buffer), and its warp multiplies its 32 rows with nvvm.mma.sync against
// the raw queries (key phase) or the probabilities (value phase), reading the products back
// through the staging rows.
// RUN: kvc-opt %s -split-input-file --convert-kvc-to-gpu="encoded-mma=true" | FileCheck %s --check-prefix=MMA
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #codec>
// Where it does not apply (f32 queries, D = 64 with value blocks of 128) the CUDA-core kernel.
// MMA: gpu.func @kvc_attn0_d64_g8_q1_f32_kb64_vb128_u8_r4_enc_split(
// MMA-NOT: nvvm.mma.sync
// MMA: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_mma_split(
// MMA-SAME: %{{.*}} : memref<6144xi8, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<544xbf16, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<544xbf16, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// MMA: memref.view %{{.*}} to memref<3072xbf16, #gpu.address_space<workgroup>>
// MMA: memref.view %{{.*}} to memref<1536xf32, #gpu.address_space<workgroup>>
// Key phase: the chunk loop (8 chunks of 16), decode + store, warp sync, one mma per 16 rows.
// MMA: scf.for %{{.*}} = %c0{{.*}} to %c8{{.*}} step %c1{{.*}} iter_args({{.*}}) -> (i64, i32, i32, i32, f32, f32, f32, f32, f32, f32, f32, f32)
// MMA:   scf.if %{{.*}} -> (i64, i32, i32, i32)
// MMA:     vector.store %{{.*}} {alignment = 16 : i64} : memref<3072xbf16, #gpu.address_space<workgroup>>, vector<8xbf16>
// MMA:   nvvm.bar.warp.sync
// MMA:   nvvm.mma.sync A[{{.*}}] B[{{.*}}] C[{{.*}}] {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>, shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (i32, i32, f32) -> !llvm.struct<(f32, f32, f32, f32)>
// MMA:   nvvm.mma.sync
// MMA: memref.store %{{.*}} : memref<1536xf32, #gpu.address_space<workgroup>>
// MMA: nvvm.bar.warp.sync
// MMA: memref.load %{{.*}} : memref<1536xf32, #gpu.address_space<workgroup>>
// Probabilities in bf16 for the value phase's mma.
// MMA: arith.truncf %{{.*}} : f32 to bf16
// MMA: memref.store %{{.*}}, %{{.*}}[{{.*}}] : memref<544xbf16, #gpu.address_space<workgroup>>
// MMA: nvvm.mma.sync
// MMA: gpu.return
func.func @decode_mma(%q: tensor<?x32x1x128xbf16>, %c: !enc) -> tensor<?x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !enc -> tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}

// -----

// encoded-mma needs the symbols exact in the operand type: with key_error = 1e-3 keys take
// symbols up to 1000, more than bf16 holds exactly (256), so the CUDA-core kernel is used.
#fine = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 1.000000e-03 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!fenc = !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #fine>
// MMA: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_split(
// MMA-NOT: nvvm.mma.sync
// MMA: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_merge(
func.func @decode_fine(%q: tensor<?x32x1x128xbf16>, %c: !fenc) -> tensor<?x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !fenc -> tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
