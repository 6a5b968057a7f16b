// encoded-multi-symbol=true: the encoded split kernel decodes with multi-symbol LUTs. The
// prologue builds them in workgroup memory from the row's single-symbol LUTs (global %lut):
// per 10-bit entry up to `encoded-ms-slots` codes chained through the single LUT (each f16,
// whole length <= 10 bits). Key and value phases each run an scf.while until the vector's
// symbols are decoded: a refill, then two lookups (vector<2xi32> entries), each with the
// single-symbol slow path on a miss. Queries and probabilities go to workgroup memory
// transposed ([symbol][g*Sq], 2*slots - 1 zero rows past the end: 128 + 3 rows of 4 here).
// RUN: kvc-opt %s --convert-kvc-to-gpu="encoded-multi-symbol=true encoded-ms-slots=2" | FileCheck %s
// RUN: kvc-opt %s --convert-kvc-to-gpu="encoded-multi-symbol=true encoded-ms-bits=11" | FileCheck %s --check-prefix=B11
// RUN: not kvc-opt %s --convert-kvc-to-gpu="encoded-multi-symbol=true encoded-ms-bits=12" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: %if ptxas %{ kvc-opt %s --kvc-gpu-pipeline="encoded-multi-symbol=true encoded-min-ctas=0" -o %t.mlir && kvc-bench extract %t.mlir -o %t.ptx && env PATH=/usr/local/cuda/bin:%PATH% ptxas -arch=sm_90a %t.ptx -o %t.cubin %}

#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>, #codec>

// CHECK: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_enc_ms10x2_split(
// CHECK-SAME: workgroup(%[[LUT:.*]] : memref<4096xi32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<512xf32, {{.*}}>{{.*}}, %{{.*}} : memref<512xf32, {{.*}}>{{.*}}, %{{.*}} : memref<32xf32, {{.*}}>{{.*}}, %[[QT:.*]] : memref<524xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[AT:.*]] : memref<524xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK: scf.for %{{.*}} = %{{.*}} to %c2048{{.*}} step %c128
// CHECK-COUNT-2: arith.truncf %{{.*}} : f32 to f16
// CHECK-NOT: arith.truncf
// CHECK: memref.store %{{.*}}, %[[LUT]]
// CHECK: memref.store %{{.*}}, %[[LUT]]
// CHECK: memref.store %{{.*}}, %[[QT]]
// The 3 zero rows (2 slots) x 4 columns past each transposed array, strided over the CTA.
// CHECK: scf.for %[[PZ:.*]] = %thread_id_x to %c12 step %c128 {
// CHECK: memref.store %{{.*}}, %[[QT]][
// CHECK: memref.store %{{.*}}, %[[AT]][
// Key phase.
// CHECK: scf.while ({{.*}}) : (i64, i32, i32, i32, i32, f32, f32, f32, f32) -> (i64, i32, i32, i32, i32, f32, f32, f32, f32)
// CHECK: scf.condition
// CHECK: } do {
// CHECK: vector.load %[[LUT]][%{{.*}}] {alignment = 8 : i64} : memref<4096xi32, #gpu.address_space<workgroup>>, vector<2xi32>
// CHECK: scf.if %{{.*}} -> (f32, f32, f32, i32, i64, i32, i32, i32) {
// CHECK: } else {
// CHECK-COUNT-2: arith.extf %{{.*}} : f16 to f32
// CHECK: vector.load %[[QT]][%{{.*}}] {alignment = 16 : i64} : memref<524xf32, #gpu.address_space<workgroup>>, vector<4xf32>
// The second lookup of an iteration takes the slow path only before the vector's end.
// CHECK: vector.load %[[LUT]][%{{.*}}] {alignment = 8 : i64} : memref<4096xi32, #gpu.address_space<workgroup>>, vector<2xi32>
// CHECK: %[[MISS:.*]] = arith.cmpi eq, %{{.*}}, %c0_i32 : i32
// CHECK: %[[BEFORE:.*]] = arith.cmpi ult, %{{.*}}, %c128_i32 : i32
// CHECK: %[[SLOW:.*]] = arith.andi %[[MISS]], %[[BEFORE]] : i1
// CHECK: scf.if %[[SLOW]] -> (f32, f32, f32, i32, i64, i32, i32, i32) {
// Probabilities, transposed.
// CHECK: memref.store %{{.*}}, %[[AT]]
// Value phase.
// CHECK: scf.while
// CHECK: vector.load %[[AT]][%{{.*}}] {alignment = 16 : i64} : memref<524xf32, #gpu.address_space<workgroup>>, vector<4xf32>
// B11: gpu.func @kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_enc_ms11x3_split(
// B11-SAME: workgroup(%{{.*}} : memref<8192xi32, #gpu.address_space<workgroup>>
// B11: scf.for %{{.*}} = %{{.*}} to %c4096{{.*}} step %c128
// B11-COUNT-3: arith.truncf %{{.*}} : f32 to f16
// B11-NOT: arith.truncf %{{.*}} : f32 to f16
// B11: memref.store %{{.*}}, %{{.*}}[%{{.*}}] : memref<8192xi32
// BAD: error: convert-kvc-to-gpu: encoded cache: multi-symbol LUTs need 8..11 index bits and 2 or 3 symbols
func.func @decode(%q: tensor<?x32x1x128xbf16>, %c: !enc) -> tensor<?x32x1x128xbf16> {
  %k, %v = kvc.cache.view %c : !enc -> tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
  %o = kvc.attention %q, %k, %v {causal} : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}

