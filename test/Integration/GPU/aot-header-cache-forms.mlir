// The generated AOT header for ops over encoded caches: the runtime header of each form, one
// KVC_GPU_<OP>_SPLIT / _MERGE name pair per op (launched by name through
// kvc_cuda_encoded_launch / kvc_cuda_fw_launch), and it compiles as C.
// REQUIRES: ptxas
// RUN: kvc-opt %s --kvc-gpu-pipeline -o %t.mlir
// RUN: kvc-bench extract %t.mlir --header %t.h
// RUN: FileCheck %s < %t.h
// RUN: cc -fsyntax-only -x c -std=c99 -I %S/../../../include %t.h

// CHECK: #include "kvc/Runtime/CUDADecode.h"
// CHECK-NEXT: #include "kvc/Runtime/CUDAEncoded.h"
// CHECK-NEXT: #include "kvc/Runtime/CUDAFixedWidth.h"
// CHECK: /* kvc_attn0: q [B, 4*Hkv, 1, 128] bf16, KVComp-encoded (Huffman) cache, key block 64, value block 128 */
// CHECK-NEXT: #define KVC_GPU_KVC_ATTN0_SPLIT "kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_split"
// CHECK-NEXT: #define KVC_GPU_KVC_ATTN0_MERGE "kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_merge"
// CHECK: /* kvc_attn1: q [B, 4*Hkv, 1, 128] bf16, fixed-width (entropy = none) cache, key block 64 */
// CHECK-NEXT: #define KVC_GPU_KVC_ATTN1_SPLIT "kvc_attn1_d128_g4_q1_bf16_kb64_fw_split"
// CHECK-NEXT: #define KVC_GPU_KVC_ATTN1_MERGE "kvc_attn1_d128_g4_q1_bf16_kb64_fw_merge"
// CHECK: static inline int kvc_gpu_load(kvc_cuda_module *m) {

!huf = !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>>
!fw = !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = none, recent_keys = 128, recent_values = 256>>
func.func @huffman(%q: tensor<?x32x1x128xbf16>, %c: !huf) -> tensor<?x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !huf -> tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
func.func @fixed_width(%q: tensor<?x32x1x128xbf16>, %c: !fw) -> tensor<?x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !fw -> tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
