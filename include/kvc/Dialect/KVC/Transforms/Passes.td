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
    * an optional additive mask (`linalg.generic`/`linalg.add` with a broadcast operand);
    * softmax as `linalg.softmax` over the last dimension, or its max / sub / exp / sum / div
      decomposition (the max subtraction may be omitted only where it cannot change the result
      -- it always can, so a chain without it is left alone);
    * GQA: K/V heads repeated by `linalg.broadcast` (or a broadcasting `linalg.generic`)
      followed by `tensor.collapse_shape`.

    Anything that does not match exactly (a contraction over the wrong dimension, a softmax over
    the wrong dimension, a missing max subtraction, a non-constant scale, ...) is left untouched.
  }];
  let dependentDialects = ["::mlir::kvc::KVCDialect", "::mlir::tensor::TensorDialect"];
  let statistics = [
    Statistic<"numRaised", "num-raised", "Number of attention subgraphs raised to kvc.attention">
  ];
}

#endif // KVC_DIALECT_KVC_TRANSFORMS_PASSES_TD
