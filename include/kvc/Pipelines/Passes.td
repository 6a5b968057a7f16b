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

def KVCGPUPipeline : Pass<"kvc-gpu-pipeline", "ModuleOp"> {
  let summary = "Compile decode-form kvc.attention to kvc's GPU kernels and PTX/cubin (NVVM)";
  let description = [{
    Runs, in order: `convert-kvc-to-gpu` (kernels in `gpu.module @kvc_gpu`, host code with
    `gpu.launch_func`); `gpu-kernel-outlining` (for any `gpu.launch` already in the input);
    `nvvm-attach-target{chip features O}`; on each gpu.module `convert-vector-to-scf`,
    `convert-scf-to-cf`, `convert-gpu-to-nvvm`, canonicalize, cse,
    `reconcile-unrealized-casts`; and `gpu-module-to-binary{format}`. With `format=isa` (the
    default) the result holds PTX text (`assembly = "..."`) and needs no CUDA install; `bin`
    and `fatbin` run ptxas (found through `toolkit`, CUDA_ROOT/CUDA_HOME/CUDA_PATH or PATH).
    CUDA 13 needs sm_75 or newer and PTX >= 7.8 for sm_90a: the defaults are `sm_90a` and
    `+ptx80`. With `host=gpu` (the default) the host code stays at the memref +
    gpu.launch_func level, and `kvc-bench` or a program using libkvc_runtime runs the kernels
    from the PTX; `host=llvm` also bufferizes the host code and lowers it to the LLVM dialect
    (C wrappers, `mgpu*` calls that libkvc_runtime implements). See docs/gpu.md.
  }];
  let options = [
    Option<"chip", "chip", "std::string", /*default=*/"\"sm_90a\"", "Target SM">,
    Option<"features", "features", "std::string", /*default=*/"\"+ptx80\"", "PTX features">,
    Option<"format", "format", "std::string", /*default=*/"\"isa\"",
           "gpu-module-to-binary format: isa (PTX), bin (cubin), fatbin, llvm, offload">,
    Option<"optLevel", "opt-level", "int64_t", /*default=*/"3", "NVVM optimisation level">,
    Option<"toolkit", "toolkit", "std::string", /*default=*/"\"\"",
           "CUDA toolkit path for ptxas (bin/fatbin)">,
    Option<"blockSize", "block-size", "int64_t", /*default=*/"128",
           "convert-kvc-to-gpu block-size">,
    Option<"unroll", "unroll", "int64_t", /*default=*/"4", "convert-kvc-to-gpu unroll">,
    Option<"numSplits", "num-splits", "int64_t", /*default=*/"0",
           "convert-kvc-to-gpu num-splits">,
    Option<"fuseMerge", "fuse-merge", "bool", /*default=*/"true",
           "convert-kvc-to-gpu fuse-merge (one launch: the last split CTA merges; false: "
           "split + merge kernels)">,
    Option<"smallRows", "small-rows", "int64_t", /*default=*/"8",
           "convert-kvc-to-gpu small-rows (B*Hkv at or below which a block-256 unroll-2 split "
           "kernel is launched; 0: off)">,
    Option<"outputMemory", "output-memory", "std::string", /*default=*/"\"managed\"",
           "convert-kvc-to-gpu output-memory (managed: host-readable result; device: "
           "cuMemAlloc, cheaper per call)">,
    Option<"prefetch", "prefetch", "bool", /*default=*/"true",
           "convert-kvc-to-gpu prefetch (software-pipelined K/V loads in the dense/ragged "
           "kernels)">,
    Option<"minCtas", "min-ctas", "int64_t", /*default=*/"0",
           "convert-kvc-to-gpu min-ctas (dense/ragged split kernel: CTAs per SM, caps registers)">,
    Option<"l2Prefetch", "l2-prefetch", "int64_t", /*default=*/"0",
           "convert-kvc-to-gpu l2-prefetch (dense/ragged: tiles requested ahead into L2)">,
    Option<"encodedUnroll", "encoded-unroll", "int64_t", /*default=*/"8",
           "convert-kvc-to-gpu encoded-unroll (encoded caches: symbols per decode iteration)">,
    Option<"encodedRefillGroup", "encoded-refill-group", "int64_t", /*default=*/"4",
           "convert-kvc-to-gpu encoded-refill-group (encoded caches: symbols per bit-window "
           "refill)">,
    Option<"encodedMinCtas", "encoded-min-ctas", "int64_t", /*default=*/"-1",
           "convert-kvc-to-gpu encoded-min-ctas (encoded caches: CTAs per SM, caps registers; "
           "-1: auto)">,
    Option<"encodedMma", "encoded-mma", "bool", /*default=*/"false",
           "convert-kvc-to-gpu encoded-mma (encoded caches: tensor-core dot products)">,
    Option<"fixedWidthMinCtas", "fixed-width-min-ctas", "int64_t", /*default=*/"-1",
           "convert-kvc-to-gpu fixed-width-min-ctas (fixed-width caches: CTAs per SM; -1: auto)">,
    Option<"fixedWidthRing", "fixed-width-ring", "int64_t", /*default=*/"-1",
           "convert-kvc-to-gpu fixed-width-ring (fixed-width caches: 2 = cp.async ring, 0 = "
           "registers; -1: auto)">,
    Option<"fixedWidthFuseMerge", "fixed-width-fuse-merge", "bool", /*default=*/"false",
           "convert-kvc-to-gpu fixed-width-fuse-merge (fixed-width caches: the last CTA of "
           "each row merges its splits)">,
    Option<"encodedLutL1", "encoded-lut-l1", "bool", /*default=*/"false",
           "convert-kvc-to-gpu encoded-lut-l1 (encoded caches: two-level code tables)">,
    Option<"encodedOverlap", "encoded-overlap", "bool", /*default=*/"false",
           "convert-kvc-to-gpu encoded-overlap (encoded caches: value and next key phase in "
           "one decode loop)">,
    Option<"encodedMultiSymbol", "encoded-multi-symbol", "bool", /*default=*/"false",
           "convert-kvc-to-gpu encoded-multi-symbol (encoded caches: multi-symbol LUT decode)">,
    Option<"encodedMSBits", "encoded-ms-bits", "int64_t", /*default=*/"10",
           "convert-kvc-to-gpu encoded-ms-bits">,
    Option<"encodedMSSlots", "encoded-ms-slots", "int64_t", /*default=*/"3",
           "convert-kvc-to-gpu encoded-ms-slots">,
    Option<"encodedReserve", "encoded-reserve", "int64_t", /*default=*/"4096",
           "convert-kvc-to-gpu encoded-reserve (tokens per row kvc.encode's caches can take by "
           "appends)">,
    Option<"host", "host", "std::string", /*default=*/"\"gpu\"",
           "gpu: stop at memref + gpu.launch_func host code; llvm: also lower the host code to "
           "the LLVM dialect (C wrappers, mgpu* calls implemented by libkvc_runtime)">,
    Option<"printPipeline", "print-pipeline", "bool", /*default=*/"false",
           "Print the expanded pass pipeline to stderr before running it">
  ];
}

#endif // KVC_PIPELINES_PASSES_TD
