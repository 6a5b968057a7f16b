// The fixed-width store kernels through kvc-gpu-pipeline to PTX, then ptxas for sm_90a: the
// quantizer's f64 division, RNE f32 -> f16 conversions, the dequantization as two rounded f32
// operations (mul.rn, add.rn: an fma would round once and differ from the CPU codec), no float
// min/max instructions (their signed-zero rule is not std::min's), no atomics (jobs write
// disjoint words), no stack frame or spills.
// REQUIRES: ptxas
// RUN: kvc-bench store gen --fixed-width 128,64 --fixed-width 256,128 -o %t.in.mlir
// RUN: kvc-opt %t.in.mlir --kvc-gpu-pipeline -o %t.mlir
// RUN: kvc-bench extract %t.mlir -o %t.ptx
// RUN: FileCheck %s --check-prefix=PTX < %t.ptx
// RUN: env PATH=/usr/local/cuda/bin:%PATH% ptxas -arch=sm_90a -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS

// PTX: .target sm_90a
// PTX-NOT: min.f32
// PTX-NOT: max.f32
// PTX-NOT: fma.rn.f32
// PTX-NOT: atom.
// PTX: .entry kvc_store_d128_kb64_fw_kstore(
// PTX: .maxntid 256, 1, 1
// PTX: div.rn.f64
// PTX: mul.rn.f32
// PTX: add.rn.f32
// PTX: cvt.rn.f16.f32
// PTX: .entry kvc_store_d128_kb64_fw_vstore(
// PTX: .entry kvc_store_d128_kb64_fw_tokens(
// PTX: .maxntid 128, 1, 1
// PTX: .entry kvc_store_d256_kb128_fw_kstore(
// PTX: .entry kvc_store_d256_kb128_fw_vstore(

// PTXAS-COUNT-6: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
