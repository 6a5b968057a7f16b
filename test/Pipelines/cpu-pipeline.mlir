// RUN: kvc-opt %s -kvc-cpu-pipeline | FileCheck %s
// RUN: kvc-opt %s -kvc-cpu-pipeline=print-pipeline=1 -o /dev/null 2>&1 | FileCheck %s --check-prefix=PIPE

// Everything ends in the LLVM dialect: no tensor, linalg, kvc or memref ops survive.
// CHECK-LABEL: llvm.func @decode
// CHECK-NOT: kvc.
// CHECK-NOT: linalg.
// CHECK-NOT: tensor.
// CHECK-NOT: memref.
// CHECK: llvm.return
func.func @decode(%q: tensor<1x4x1x16xf16>, %pk: tensor<1x2x7x16xf16>, %pv: tensor<1x2x7x16xf16>,
                  %nk: tensor<1x2x1x16xf16>, %nv: tensor<1x2x1x16xf16>) -> tensor<1x4x1x16xf16> {
  %c = kvc.cache.from_tensors %pk, %pv : tensor<1x2x7x16xf16>, tensor<1x2x7x16xf16> -> !kvc.cache<tensor<1x2x7x16xf16>, tensor<1x2x7x16xf16>>
  %c2 = kvc.cache.append %c, %nk, %nv : !kvc.cache<tensor<1x2x7x16xf16>, tensor<1x2x7x16xf16>>, tensor<1x2x1x16xf16>, tensor<1x2x1x16xf16> -> !kvc.cache<tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>>
  %k, %v = kvc.cache.view %c2 : !kvc.cache<tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>> -> tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>
  %o = kvc.attention %q, %k, %v {causal, softcap = 30.0 : f32} : (tensor<1x4x1x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>) -> tensor<1x4x1x16xf16>
  return %o : tensor<1x4x1x16xf16>
}

// PIPE: convert-kvc-to-linalg
// PIPE-SAME: kvc-decompose-aggregates
// PIPE-SAME: one-shot-bufferize
// PIPE-SAME: convert-linalg-to-loops
// PIPE-SAME: reconcile-unrealized-casts
