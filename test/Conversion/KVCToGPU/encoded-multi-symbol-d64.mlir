// The multi-symbol decoder with more zero-row entries than threads: D = 64 (64 threads) and
// g*Sq = 16, 3 slots, so 5 zero rows x 16 columns = 80 entries per transposed array, zeroed
// by a strided loop. With 11-bit tables the same shape needs more than 48 KiB of shared
// memory: a clear error that names the multi-symbol options.
// RUN: kvc-opt %s --convert-kvc-to-gpu="encoded-multi-symbol=true" | FileCheck %s
// RUN: not kvc-opt %s --convert-kvc-to-gpu="encoded-multi-symbol=true encoded-ms-bits=11" 2>&1 | FileCheck %s --check-prefix=SMEM

#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<?x1x?x64xf16>, tensor<?x1x?x64xf16>, #codec>

// CHECK: gpu.func @kvc_attn0_d64_g16_q1_f16_kb64_vb128_u8_enc_ms10x3_split(
// CHECK-SAME: %[[QT:[a-z0-9]*]] : memref<1104xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[AT:[a-z0-9]*]] : memref<2128xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK: scf.for %[[PZ:.*]] = %thread_id_x to %c80 step %c64 {
// CHECK: %[[I:.*]] = arith.addi %c1024{{.*}}, %[[PZ]] : index
// CHECK: memref.store %{{.*}}, %[[QT]][%[[I]]]
// CHECK: %[[J:.*]] = arith.addi %c2048{{.*}}, %[[PZ]] : index
// CHECK: memref.store %{{.*}}, %[[AT]][%[[J]]]
// SMEM: error: convert-kvc-to-gpu: encoded cache: shared memory ({{[0-9]+}} B) exceeds 48 KiB with the multi-symbol tables and transposed weights: lower encoded-ms-bits or turn encoded-multi-symbol off
func.func @decode_d64_g16(%q: tensor<?x16x1x64xf16>, %c: !enc) -> tensor<?x16x1x64xf16> {
  %k, %v = kvc.cache.view %c : !enc -> tensor<?x1x?x64xf16>, tensor<?x1x?x64xf16>
  %o = kvc.attention %q, %k, %v : (tensor<?x16x1x64xf16>, tensor<?x1x?x64xf16>, tensor<?x1x?x64xf16>) -> tensor<?x16x1x64xf16>
  return %o : tensor<?x16x1x64xf16>
}
