// kvc-run on a program that calls kvc's runtime (kvc.compress) when libkvc_runtime.so cannot be
// found: a clear error naming the library and the fix, not a JIT symbol failure. With the
// library, the same program runs and keeps 6 of 16 pairs per row (sinks + the most recent).
// REQUIRES: kvc-run, numpy
// RUN: env KVC_RUNTIME_LIB=%t.missing.so not kvc-run %s --input arg0=%S/Inputs/kv_1x2x16x8.npy --input arg1=%S/Inputs/kv_1x2x16x8.npy --output-dir %t.out 2>&1 | FileCheck %s --check-prefix=MISSING
// MISSING: kvc-run: error: the program calls kvc's runtime (kvc.compress, kvc.vote or an encoded cache) but libkvc_runtime.so was not found at '{{.*}}.missing.so'; set KVC_RUNTIME_LIB to its path
// RUN: kvc-run %s --input arg0=%S/Inputs/kv_1x2x16x8.npy --input arg1=%S/Inputs/kv_1x2x16x8.npy --output-dir %t.ok
// RUN: %python -c "import numpy as n, glob; f=glob.glob('%t.ok/*.npy'); assert len(f) == 2, f; a=n.load(sorted(f)[0]); assert a.shape == (1, 2, 6, 8), a.shape; k=n.load('%S/Inputs/kv_1x2x16x8.npy'); assert (a[0, :, 0] == k[0, :, 0]).all() and (a[0, :, 1:] == k[0, :, 11:]).all()"
func.func @main(%k: tensor<1x2x16x8xf32>, %v: tensor<1x2x16x8xf32>)
    -> (tensor<1x2x6x8xf32>, tensor<1x2x6x8xf32>) {
  %c = kvc.cache.from_tensors %k, %v : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32> -> !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>>
  %r = kvc.compress(%c) {budget = 6 : i64, method = #kvc.method<streaming>, recent = 2 : i64, sinks = 1 : i64} : (!kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>>) -> !kvc.ragged_cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, sinks = 1, recent = 2>
  %kk, %vv = kvc.cache.view %r : !kvc.ragged_cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, sinks = 1, recent = 2> -> tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>
  %ks = tensor.extract_slice %kk[0, 0, 0, 0] [1, 2, 6, 8] [1, 1, 1, 1] : tensor<1x2x16x8xf32> to tensor<1x2x6x8xf32>
  %vs = tensor.extract_slice %vv[0, 0, 0, 0] [1, 2, 6, 8] [1, 1, 1, 1] : tensor<1x2x16x8xf32> to tensor<1x2x6x8xf32>
  return %ks, %vs : tensor<1x2x6x8xf32>, tensor<1x2x6x8xf32>
}
