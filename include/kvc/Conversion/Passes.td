//===- Passes.td - kvc conversion passes -------------------*- tablegen -*-===//
#ifndef KVC_CONVERSION_PASSES_TD
#define KVC_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertKVCToLinalg : Pass<"convert-kvc-to-linalg", "ModuleOp"> {
  let summary = "Lower kvc.attention and the dense-cache ops to Linalg/tensor on tensors";
  let description = [{
    `kvc.attention` becomes a chain of `linalg.generic` ops: the Q·Kᵀ contraction (GQA through
    the `h floordiv G` indexing map, no copies of K/V), the score transform (scale, softcap,
    mask, causal and window masking), a numerically stable softmax (row max, `exp(s - max)`, row
    sum; fully masked rows give zeros, not NaN) and the P·V contraction with the normalisation.
    Scores, softmax and accumulators are f32 for f16/bf16/f32 inputs (f64 for f64).

    Dense caches are 1:N type-converted to their key and value tensors (function signatures,
    calls, returns and branches included): `kvc.cache.from_tensors` forwards its operands,
    `kvc.cache.append` becomes `tensor.concat` along the sequence, `kvc.cache.view` forwards.
    Ragged caches become (keys, values, lengths `[B, Hkv]` i64) with the capacity as sequence;
    appending writes each row's new pairs at its own length. `kvc.compress` becomes calls into
    libkvc_runtime.so (`kvc_rt_compress_*`, f32 caches), which the executing process must load
    (e.g. `mlir-runner -shared-libs=.../libkvc_runtime.so`).
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect", "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
                           "::mlir::bufferization::BufferizationDialect",
                           "::mlir::memref::MemRefDialect", "::mlir::func::FuncDialect"];
}

#endif // KVC_CONVERSION_PASSES_TD
