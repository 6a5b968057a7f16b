//===- Passes.td - kvc pipelines ---------------------------*- tablegen -*-===//
//
// Pipelines are passes too, so that their options are declared here and listed by --help.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_PIPELINES_PASSES_TD
#define KVC_PIPELINES_PASSES_TD

include "mlir/Pass/PassBase.td"

def KVCCPUPipeline : Pass<"kvc-cpu-pipeline", "ModuleOp"> {
  let summary = "Compile kvc/Linalg on tensors to the LLVM dialect for CPU execution";
  let description = [{
    Runs, in order: optionally `kvc-raise-attention`; `convert-kvc-to-linalg`;
    `kvc-decompose-aggregates`; canonicalize;
    one-shot bufferization (function boundaries with identity layouts); the buffer deallocation
    pipeline; `convert-linalg-to-loops`; and the lowering of scf/affine/arith/math/memref/func/cf
    to LLVM. The result runs under `mlir-runner` with `libmlir_c_runner_utils.so` and
    `libmlir_runner_utils.so`, or through an ExecutionEngine. This path is kvc's numerical
    reference: plain loops, f32 accumulation.
  }];
  let options = [
    Option<"raiseAttention", "raise-attention", "bool", /*default=*/"false",
           "Run kvc-raise-attention first, so decomposed Linalg attention takes the kvc path">,
    Option<"printPipeline", "print-pipeline", "bool", /*default=*/"false",
           "Print the expanded pass pipeline to stderr before running it">
  ];
}

#endif // KVC_PIPELINES_PASSES_TD
