// RUN: kvc-opt %s -split-input-file -convert-kvc-to-linalg | FileCheck %s

// kvc.compress becomes the runtime protocol begin / add (per cache) / run / get / end; the
// ragged results are (keys, values, lengths) tensors.
// CHECK: func.func private @kvc_rt_compress_begin(i64, f64, i64, i64, i64, i64, i64) -> i64 attributes {llvm.emit_c_interface}
// CHECK-LABEL: func @compress_two
// CHECK: %[[H:.*]] = call @kvc_rt_compress_begin(%c4_i64, %{{.*}}, %c0_i64, %c1_i64, %c2_i64, %c8_i64, %c2_i64{{.*}}) : (i64, f64, i64, i64, i64, i64, i64) -> i64
// CHECK: call @kvc_rt_compress_add(%[[H]], %c0_i64{{.*}}) : (i64, i64, memref<?x?x?x?xf32>, memref<?x?x?x?xf32>, memref<?x?x?x?xf32>) -> ()
// CHECK: call @kvc_rt_compress_add(%[[H]], %c1_i64
// CHECK: call @kvc_rt_compress_run(%[[H]])
// CHECK: %[[LEN:.*]] = memref.alloc() : memref<1x2xi64>
// CHECK: call @kvc_rt_compress_get(%[[H]], %c0_i64
// CHECK: bufferization.to_tensor %[[LEN]] restrict writable : memref<1x2xi64> to tensor<1x2xi64>
// CHECK: call @kvc_rt_compress_end(%[[H]])
func.func @compress_two(%c0: !kvc.cache<tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>>,
                        %c1: !kvc.cache<tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>>,
                        %q0: tensor<1x4x32x8xf32>, %q1: tensor<1x4x32x8xf32>) -> tensor<1x2xi64> {
  %r0, %r1 = kvc.compress(%c0, %c1) queries(%q0, %q1) {method = #kvc.method<sculpt>, ratio = 0.5 : f64, budget_mode = #kvc.budget_mode<pilot>, sinks = 2 : i64, recent = 8 : i64}
      : (!kvc.cache<tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>>, !kvc.cache<tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>>, tensor<1x4x32x8xf32>, tensor<1x4x32x8xf32>)
      -> (!kvc.ragged_cache<tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>, sinks = 2, recent = 8>, !kvc.ragged_cache<tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>, sinks = 2, recent = 8>)
  %l = kvc.cache.lengths %r0 : !kvc.ragged_cache<tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>, sinks = 2, recent = 8> -> tensor<1x2xi64>
  return %l : tensor<1x2xi64>
}

// -----

// Appending to a ragged cache writes row (b, h)'s new pairs at its own length and grows the
// lengths; attention masks keys past each row's length and aligns causal masking to it.
// CHECK-LABEL: func @ragged_decode
// CHECK-SAME: (%[[K:.*]]: tensor<1x2x16x8xf32>, %[[V:.*]]: tensor<1x2x16x8xf32>, %[[L:.*]]: tensor<1x2xi64>
// CHECK: linalg.generic {{.*}} ins(%[[L]] : tensor<1x2xi64>) outs(%{{.*}} : tensor<1x2x17x8xf32>)
// CHECK: tensor.extract %[[K]]
// CHECK: arith.cmpi slt
// CHECK: %[[N:.*]] = arith.index_cast %{{.*}} : index to i64
// CHECK: linalg.generic {{.*}} ins(%[[L]] : tensor<1x2xi64>) outs(%{{.*}} : tensor<1x2xi64>)
// CHECK: arith.addi %{{.*}}, %[[N]] : i64
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<1x4x1x17xf32>, tensor<1x2xi64>)
// CHECK: arith.index_cast
// CHECK: arith.cmpi slt
// CHECK: arith.subi
func.func @ragged_decode(%c: !kvc.ragged_cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, sinks = 2, recent = 4>,
                         %q: tensor<1x4x1x8xf32>, %kn: tensor<1x2x1x8xf32>, %vn: tensor<1x2x1x8xf32>) -> tensor<1x4x1x8xf32> {
  %a = kvc.cache.append %c, %kn, %vn : !kvc.ragged_cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, sinks = 2, recent = 4>, tensor<1x2x1x8xf32>, tensor<1x2x1x8xf32> -> !kvc.ragged_cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>, sinks = 2, recent = 4>
  %k, %v = kvc.cache.view %a : !kvc.ragged_cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>, sinks = 2, recent = 4> -> tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>
  %l = kvc.cache.lengths %a : !kvc.ragged_cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>, sinks = 2, recent = 4> -> tensor<1x2xi64>
  %o = kvc.attention %q, %k, %v lengths(%l) {causal} : (tensor<1x4x1x8xf32>, tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>, tensor<1x2xi64>) -> tensor<1x4x1x8xf32>
  return %o : tensor<1x4x1x8xf32>
}

// -----

// CHECK-LABEL: func @compress_f16
// CHECK-NOT: error
func.func @compress_f16(%c: !kvc.cache<tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>>) -> tensor<1x2xi64> {
  %r = kvc.compress(%c) {method = #kvc.method<streaming>, budget = 8 : i64} : (!kvc.cache<tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>>) -> !kvc.ragged_cache<tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>, sinks = 4, recent = 64>
  %l = kvc.cache.lengths %r : !kvc.ragged_cache<tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>, sinks = 4, recent = 64> -> tensor<1x2xi64>
  return %l : tensor<1x2xi64>
}
