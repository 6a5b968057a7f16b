// The store (block-encode) kernels through kvc-gpu-pipeline to PTX, then ptxas for sm_90a:
// f64 division for the quantizer, RNE f32 -> f16 conversion, the word allocator and the
// boundary-word atomics, no float min/max instructions (their signed-zero rule is not
// std::min's), no stack frame or spills.
// REQUIRES: ptxas
// RUN: kvc-bench store gen --config 128,64,128,f32,kblk -o %t.in.mlir
// RUN: kvc-opt %t.in.mlir --kvc-gpu-pipeline -o %t.mlir
// RUN: kvc-bench extract %t.mlir -o %t.ptx
// RUN: FileCheck %s --check-prefix=PTX < %t.ptx
// RUN: env PATH=/usr/local/cuda/bin:%PATH% ptxas -arch=sm_90a -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS

// PTX: .version 8.0
// PTX: .target sm_90a
// PTX-NOT: min.f32
// PTX-NOT: max.f32
// PTX: .entry kvc_store_d128_kb64_vb128_f32_kblk_kstore(
// PTX: .maxntid 256, 1, 1
// PTX: cvt.rn.f16.f32
// PTX: div.rn.f64
// PTX: add.rn.f64 {{.*}}0d4338000000000000
// PTX: atom.global.add.u32
// PTX: atom.global.or.b32
// PTX: .entry kvc_store_d128_kb64_vb128_f32_kblk_vstore(

// PTXAS: Compiling entry function 'kvc_store_d128_kb64_vb128_f32_kblk_{{[kv]}}store' for 'sm_90a'
// PTXAS-NEXT: Function properties
// PTXAS-NEXT: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS: Compiling entry function 'kvc_store_d128_kb64_vb128_f32_kblk_{{[kv]}}store' for 'sm_90a'
// PTXAS-NEXT: Function properties
// PTXAS-NEXT: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
