// convert-kvc-to-gpu on an encoded cache's life cycle (examples/gpu/encoded.mlir): the cache is
// an i64 runtime handle; kvc.encode calls the runtime (CPU codec + upload with the reserve);
// kvc.cache.append becomes append_begin, the window-append kernel per stream, the KVComp store
// kernels on the due blocks (jobs counted by the runtime), append_end; attention reads the
// handle's buffers.
// RUN: kvc-opt %s -split-input-file --convert-kvc-to-gpu | FileCheck %s
// RUN: kvc-opt %s -split-input-file --convert-kvc-to-gpu="encoded-reserve=77" | FileCheck %s --check-prefix=RESERVE

#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>, #codec>
!dense = !kvc.cache<tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>>

// CHECK-LABEL: func.func @prefill(%arg0: tensor<2x8x?x128xbf16>, %arg1: tensor<2x8x?x128xbf16>) -> i64
// CHECK-NOT: kvc.
// CHECK: %[[H:.*]] = call @kvc_rt_gpu_encode_bf16(%c0_i64, %c0_i64{{.*}}, %c64_i64, %cst, %c128_i64, %cst{{.*}}, %c1_i64, %c128_i64{{.*}}, %c256_i64, %c4096_i64, %{{.*}}, %{{.*}}, %{{.*}}) : (i64, i64, i64, f64, i64, f64, i64, i64, i64, i64, memref<?x?x?x?xbf16>, memref<?x?x?x?xbf16>, memref<?x?xi64>) -> i64
// CHECK: return %[[H]] : i64
// RESERVE-LABEL: func.func @prefill
// RESERVE: %c77_i64 = arith.constant 77 : i64
func.func @prefill(%k: tensor<2x8x?x128xbf16>, %v: tensor<2x8x?x128xbf16>) -> !enc {
  %c = kvc.cache.from_tensors %k, %v : tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16> -> !dense
  %e = kvc.encode %c : !dense -> !enc
  return %e : !enc
}

// CHECK-LABEL: func.func @step(%arg0: tensor<2x32x1x128xbf16>, %arg1: i64, %arg2: tensor<2x8x1x128xbf16>, %arg3: tensor<2x8x1x128xbf16>) -> (tensor<2x32x1x128xbf16>, i64)
// CHECK: call @kvc_rt_gpu_encoded_check_rows(%arg1, %{{.*}}, %c8_i64, %c0_i64)
// CHECK: %[[STATE:.*]] = memref.cast %{{.*}} : memref<12xi64> to memref<?xi64>
// CHECK: call @kvc_rt_gpu_encoded_append_begin(%arg1, %[[N:.*]], %[[STATE]])
// The new tokens into the key window (buffer 9) and the value window (15): grid (n, B*Hkv).
// CHECK: scf.if
// CHECK:   %[[KREC:.*]] = func.call @kvc_rt_gpu_encoded_buffer_f16(%arg1, %c9_i64{{.*}})
// CHECK:   gpu.launch_func @kvc_gpu::@kvc_window_d128_bf16 blocks in (%c1, %{{.*}}, %c1{{.*}}) threads in (%c128{{.*}}, %c1{{.*}}, %c1{{.*}}) args(%{{.*}} : memref<?xbf16>, %[[KREC]] : memref<?xf16>
// CHECK:   func.call @kvc_rt_gpu_encoded_buffer_f16(%arg1, %c15_i64{{.*}})
// CHECK:   gpu.launch_func @kvc_gpu::@kvc_window_d128_bf16
// Key store kernel on the due key blocks (state[4]), its eps from state[10].
// CHECK: %[[NK:.*]] = memref.load %[[STATE]][%c4] : memref<?xi64>
// CHECK: %[[NKI:.*]] = arith.index_cast %[[NK]] : i64 to index
// CHECK: scf.if
// CHECK:   arith.bitcast %{{.*}} : i32 to f32
// CHECK:   func.call @kvc_rt_gpu_encoded_buffer_i32(%arg1, %c16_i64{{.*}})
// CHECK:   gpu.launch_func @kvc_gpu::@kvc_store_d128_kb64_vb128_f16_kblk_kstore blocks in (%[[NKI]], %c1{{.*}}, %c1{{.*}}) threads in (%c256
// CHECK: memref.load %[[STATE]][%c5] : memref<?xi64>
// CHECK: scf.if
// CHECK:   func.call @kvc_rt_gpu_encoded_buffer_i32(%arg1, %c20_i64{{.*}})
// CHECK:   gpu.launch_func @kvc_gpu::@kvc_store_d128_kb64_vb128_f16_kblk_vstore
// CHECK: call @kvc_rt_gpu_encoded_append_end(%arg1, %[[N]])
// The attention reads the same handle after the append (batch and KV heads checked first).
// CHECK: call @kvc_rt_gpu_encoded_check_rows(%arg1, %{{.*}}, %c8_i64{{.*}})
// CHECK: call @kvc_rt_gpu_encoded_buffer_i32(%arg1, %c0_i64{{.*}})
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_split
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_merge
// CHECK: return %{{.*}}, %arg1 : tensor<2x32x1x128xbf16>, i64
// CHECK-NOT: kvc.
// The generated kernels: store pair, window append (bf16 -> f32 -> f16, round to nearest even).
// CHECK: gpu.module @kvc_gpu
// CHECK: gpu.func @kvc_store_d128_kb64_vb128_f16_kblk_kstore(%arg0: memref<?xf16>
// CHECK: gpu.func @kvc_store_d128_kb64_vb128_f16_kblk_vstore(%arg0: memref<?xf16>
// CHECK: gpu.func @kvc_window_d128_bf16(%arg0: memref<?xbf16>, %arg1: memref<?xf16>, %arg2: index, %arg3: index, %arg4: index)
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>, kvc.kernel = "window_append"
// CHECK:   arith.extf %{{.*}} : bf16 to f32
// CHECK:   arith.truncf %{{.*}} : f32 to f16
// CHECK:   memref.store %{{.*}}, %arg1[
func.func @step(%q: tensor<2x32x1x128xbf16>, %cache: !enc, %k: tensor<2x8x1x128xbf16>,
                %v: tensor<2x8x1x128xbf16>) -> (tensor<2x32x1x128xbf16>, !enc) {
  %next = kvc.cache.append %cache, %k, %v : !enc, tensor<2x8x1x128xbf16>, tensor<2x8x1x128xbf16> -> !enc
  %kk, %vv = kvc.cache.view %next : !enc -> tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>
  %o = kvc.attention %q, %kk, %vv : (tensor<2x32x1x128xbf16>, tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>) -> tensor<2x32x1x128xbf16>
  return %o, %next : tensor<2x32x1x128xbf16>, !enc
}

// -----

// f16 tokens (no conversion in the window kernel), a dynamic token count, two appends in a row
// sharing kernels, and kvc.cache.lengths of a ragged encoded cache read from the runtime.
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!renc = !kvc.encoded_cache<tensor<1x2x?x64xf16>, tensor<1x2x?x64xf16>, #codec, ragged = true>

// CHECK-LABEL: func.func @two_appends(%arg0: i64, %arg1: tensor<1x2x?x64xf16>, %arg2: tensor<1x2x?x64xf16>) -> (i64, tensor<1x2xi64>)
// CHECK: %[[N:.*]] = memref.dim %{{.*}}, %c2 : memref<1x2x?x64xf16>
// CHECK: call @kvc_rt_gpu_encoded_append_begin(%arg0
// CHECK: %[[ANY:.*]] = arith.cmpi sgt, %[[N]], %c0
// CHECK: scf.if %[[ANY]]
// CHECK:   gpu.launch_func @kvc_gpu::@kvc_window_d64_f16 blocks in (%[[N]],
// CHECK: call @kvc_rt_gpu_encoded_append_end(%arg0
// CHECK: call @kvc_rt_gpu_encoded_append_begin(%arg0
// CHECK: gpu.launch_func @kvc_gpu::@kvc_window_d64_f16
// CHECK: call @kvc_rt_gpu_encoded_append_end(%arg0
// CHECK: %[[L:.*]] = memref.alloc() : memref<1x2xi64>
// CHECK: call @kvc_rt_gpu_encoded_lengths(%arg0, %{{.*}}) : (i64, memref<?x?xi64>) -> ()
// CHECK: %[[LT:.*]] = bufferization.to_tensor %[[L]]
// CHECK: return %arg0, %[[LT]] : i64, tensor<1x2xi64>
// CHECK: gpu.func @kvc_window_d64_f16(%arg0: memref<?xf16>
// CHECK-NOT: arith.truncf
// CHECK: gpu.return
func.func @two_appends(%c: !renc, %k: tensor<1x2x?x64xf16>, %v: tensor<1x2x?x64xf16>) -> (!renc, tensor<1x2xi64>) {
  %c1 = kvc.cache.append %c, %k, %v : !renc, tensor<1x2x?x64xf16>, tensor<1x2x?x64xf16> -> !renc
  %c2 = kvc.cache.append %c1, %k, %v : !renc, tensor<1x2x?x64xf16>, tensor<1x2x?x64xf16> -> !renc
  %l = kvc.cache.lengths %c2 : !renc -> tensor<1x2xi64>
  return %c2, %l : !renc, tensor<1x2xi64>
}

// -----

// A handle that kvc.encode makes and the function does not return is released before the
// return (its device form would otherwise live to process exit).
#codec = #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64, value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>
!enc = !kvc.encoded_cache<tensor<1x2x?x128xf16>, tensor<1x2x?x128xf16>, #codec>
!dense = !kvc.cache<tensor<1x2x?x128xf16>, tensor<1x2x?x128xf16>>

// CHECK-LABEL: func.func @encode_and_decode(
// CHECK: %[[H:.*]] = call @kvc_rt_gpu_encode_f16(
// CHECK: gpu.launch_func @kvc_gpu::@kvc_attn0_d128_g4_q1_f16_kb64_vb128_u8_r4_enc_split
// CHECK: call @kvc_rt_gpu_encoded_release(%[[H]]) : (i64) -> ()
// CHECK-NEXT: return
func.func @encode_and_decode(%q: tensor<1x8x1x128xf16>, %k: tensor<1x2x?x128xf16>, %v: tensor<1x2x?x128xf16>) -> tensor<1x8x1x128xf16> {
  %c = kvc.cache.from_tensors %k, %v : tensor<1x2x?x128xf16>, tensor<1x2x?x128xf16> -> !dense
  %e = kvc.encode %c : !dense -> !enc
  %kk, %vv = kvc.cache.view %e : !enc -> tensor<1x2x?x128xf16>, tensor<1x2x?x128xf16>
  %o = kvc.attention %q, %kk, %vv : (tensor<1x8x1x128xf16>, tensor<1x2x?x128xf16>, tensor<1x2x?x128xf16>) -> tensor<1x8x1x128xf16>
  return %o : tensor<1x8x1x128xf16>
}
