// AOT flow without a GPU: pipeline -> kvc-bench extract (PTX file + C header embedding it) ->
// ptxas for sm_90a. kvc-bench is built when the CUDA toolkit is found, as is ptxas.
// REQUIRES: ptxas
// RUN: kvc-opt %s --kvc-gpu-pipeline="small-rows=0" -o %t.mlir
// RUN: kvc-bench extract %t.mlir -o %t.ptx --header %t.h
// RUN: FileCheck %s --check-prefix=PTX < %t.ptx
// RUN: FileCheck %s --check-prefix=HDR < %t.h
// RUN: env PATH=/usr/local/cuda/bin:%PATH% ptxas -arch=sm_90a -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS

// PTX: .version 8.0
// PTX: .target sm_90a
// The default fuses the merge into the split kernel: one entry.
// PTX: .entry kvc_attn0_d64_g8_q1_f16_b128_u4_ragged_fm_pf_split(
// PTX: ld.global.v4.b32
// PTX: shfl.sync.bfly.b32
// PTX-NOT: .entry

// HDR: /* kernel: kvc_attn0_d64_g8_q1_f16_b128_u4_ragged_fm_pf_split */
// HDR: static const char kvc_gpu_ptx[] = {
// HDR: 0};

// No spills, no local memory in the split kernel.
// PTXAS: Compiling entry function 'kvc_attn0_d64_g8_q1_f16_b128_u4_ragged_fm_pf_split' for 'sm_90a'
// PTXAS-NEXT: Function properties
// PTXAS-NEXT: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads

func.func @ragged(%q: tensor<?x8x1x64xf16>, %k: tensor<?x1x?x64xf16>, %v: tensor<?x1x?x64xf16>,
                  %len: tensor<?x1xi64>) -> tensor<?x8x1x64xf16> {
  %o = kvc.attention %q, %k, %v lengths(%len) : (tensor<?x8x1x64xf16>, tensor<?x1x?x64xf16>, tensor<?x1x?x64xf16>, tensor<?x1xi64>) -> tensor<?x8x1x64xf16>
  return %o : tensor<?x8x1x64xf16>
}
