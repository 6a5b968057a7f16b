//===- Passes.td - kvc dialect passes ----------------------*- tablegen -*-===//
#ifndef KVC_DIALECT_KVC_TRANSFORMS_PASSES_TD
#define KVC_DIALECT_KVC_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def KVCRaiseAttention : Pass<"kvc-raise-attention"> {
  let summary = "Raise decomposed Linalg attention to kvc.attention";
  let description = [{
    Finds `softmax(Q·Kᵀ·scale [+ mask]) · V` written with linalg/tensor/arith ops and replaces it
    with one `kvc.attention`. Recognised pieces:

    * Q·Kᵀ and P·V as `linalg.matmul`, `linalg.batch_matmul`, `linalg.matmul` with transposed
      indexing maps, or a `linalg.generic` contraction, on [.., S, D] operands of rank 2 to 4;
      Kᵀ may be an explicit `linalg.transpose` or folded into the contraction's maps;
    * the scale as an elementwise multiply or divide by a scalar constant (on the scores, or on
      Q before the product);
    * an optional additive mask (`linalg.generic`/`linalg.add` with a broadcast operand), added
      after the scale;
    * softmax as `linalg.softmax` over the last dimension, or its max / sub / exp / sum / div
      decomposition with the row max taken from -inf (without the max subtraction, exp can
      overflow where softmax does not, so such a chain is left alone);
    * GQA: K/V heads repeated by `linalg.broadcast` (or a broadcasting `linalg.generic`)
      followed by `tensor.collapse_shape`.

    Rank-2 and rank-3 attention is raised on [1, 1, S, D] / [1, B*H, S, D] views
    (`tensor.expand_shape`, then `tensor.collapse_shape` of the result).

    Anything that does not match exactly (a contraction over the wrong dimension, a softmax over
    the wrong dimension, a missing max subtraction, a non-constant scale, ...) is left untouched.
  }];
  let dependentDialects = ["::mlir::kvc::KVCDialect", "::mlir::tensor::TensorDialect"];
}

def KVCDecomposeAggregates : Pass<"kvc-decompose-aggregates"> {
  let summary = "Decompose aggregated Linalg ops (linalg.softmax, ...) into generics";
  let description = [{
    Calls `AggregatedOpInterface::decomposeOperation` on every op that implements it (upstream
    has the interface but no pass). The CPU pipeline runs it after `convert-kvc-to-linalg`, so
    that programs which still contain `linalg.softmax` (attention that was not raised, or a plain
    softmax) lower to loops.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect", "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect", "::mlir::tensor::TensorDialect"];
}

#endif // KVC_DIALECT_KVC_TRANSFORMS_PASSES_TD
