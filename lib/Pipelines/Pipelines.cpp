//===- Pipelines.cpp - kvc pipelines ----------------------------------------===//
#include "kvc/Pipelines/Passes.h"

#include "kvc/Conversion/Passes.h"
#include "kvc/Dialect/KVC/Transforms/Passes.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir {
namespace kvc {
#define GEN_PASS_DEF_KVCCPUPIPELINE
#include "kvc/Pipelines/Passes.h.inc"
} // namespace kvc
} // namespace mlir

using namespace mlir;

// The CPU tail as upstream pass names: kept textual so that it reads like the mlir-opt command
// line users would write, and so `print-pipeline` shows exactly what runs.
static const char *kCPUTail =
    "canonicalize,"
    "one-shot-bufferize{bufferize-function-boundaries=1 "
    "function-boundary-type-conversion=identity-layout-map},"
    "buffer-deallocation-pipeline,convert-bufferization-to-memref,"
    "func.func(convert-linalg-to-loops),"
    "expand-strided-metadata,lower-affine,convert-scf-to-cf,"
    "arith-expand{include-bf16=1},math-expand-ops,"
    "convert-math-to-llvm,convert-math-to-libm,convert-arith-to-llvm,convert-index-to-llvm,"
    "finalize-memref-to-llvm,convert-func-to-llvm,convert-cf-to-llvm,"
    "reconcile-unrealized-casts";

void mlir::kvc::buildKVCCPUPipeline(OpPassManager &pm, bool raiseAttention) {
  std::string text;
  if (raiseAttention)
    text += "kvc-raise-attention,";
  text += "convert-kvc-to-linalg,kvc-decompose-aggregates,";
  text += kCPUTail;
  if (failed(parsePassPipeline(text, pm, llvm::errs())))
    llvm::report_fatal_error("kvc-cpu-pipeline: internal pipeline text does not parse");
}

namespace {
struct KVCCPUPipelinePass : public mlir::kvc::impl::KVCCPUPipelineBase<KVCCPUPipelinePass> {
  using KVCCPUPipelineBase::KVCCPUPipelineBase;

  void getDependentDialects(DialectRegistry &registry) const override {
    OpPassManager pm(ModuleOp::getOperationName());
    mlir::kvc::buildKVCCPUPipeline(pm, raiseAttention);
    pm.getDependentDialects(registry);
  }

  void runOnOperation() override {
    OpPassManager pm(ModuleOp::getOperationName());
    mlir::kvc::buildKVCCPUPipeline(pm, raiseAttention);
    if (printPipeline) {
      pm.printAsTextualPipeline(llvm::errs());
      llvm::errs() << "\n";
    }
    if (failed(runPipeline(pm, getOperation())))
      signalPassFailure();
  }
};
} // namespace

//===----------------------------------------------------------------------===//
// kvc-gpu-pipeline
//===----------------------------------------------------------------------===//
namespace mlir {
namespace kvc {
#define GEN_PASS_DEF_KVCGPUPIPELINE
#include "kvc/Pipelines/Passes.h.inc"
} // namespace kvc
} // namespace mlir

namespace {
struct KVCGPUPipelinePass : public mlir::kvc::impl::KVCGPUPipelineBase<KVCGPUPipelinePass> {
  using KVCGPUPipelineBase::KVCGPUPipelineBase;

  std::string text() const {
    std::string t = "convert-kvc-to-gpu{block-size=" + std::to_string(blockSize) +
                    " unroll=" + std::to_string(unroll) +
                    " num-splits=" + std::to_string(numSplits) +
                    (fuseMerge ? " fuse-merge=true" : " fuse-merge=false") +
                    " output-memory=" + outputMemory +
                    " small-rows=" + std::to_string(smallRows) +
                    (prefetch ? " prefetch=true" : " prefetch=false") +
                    " min-ctas=" + std::to_string(minCtas) +
                    " l2-prefetch=" + std::to_string(l2Prefetch) +
                    " encoded-unroll=" + std::to_string(encodedUnroll) +
                    " encoded-refill-group=" + std::to_string(encodedRefillGroup) +
                    " encoded-min-ctas=" + std::to_string(encodedMinCtas) +
                    " fixed-width-min-ctas=" + std::to_string(fixedWidthMinCtas) +
                    " fixed-width-ring=" + std::to_string(fixedWidthRing) +
                    (fixedWidthFuseMerge ? " fixed-width-fuse-merge=true" : "") +
                    (encodedMultiSymbol ? " encoded-multi-symbol=true" : "") +
                    (encodedMma ? " encoded-mma=true" : "") +
                    (encodedOverlap ? " encoded-overlap=true" : "") +
                    (encodedLutL1 ? " encoded-lut-l1=true" : "") +
                    " encoded-ms-bits=" + std::to_string(encodedMSBits) +
                    " encoded-ms-slots=" + std::to_string(encodedMSSlots) +
                    " encoded-reserve=" + std::to_string(encodedReserve) + "},";
    t += "gpu-kernel-outlining,";
    t += "nvvm-attach-target{chip=" + chip + " features=" + features +
         " O=" + std::to_string(optLevel) + "},";
    t += "gpu.module(convert-vector-to-scf,convert-scf-to-cf,convert-gpu-to-nvvm,canonicalize,"
         "cse,reconcile-unrealized-casts),";
    t += "gpu-module-to-binary{format=" + format;
    if (!toolkit.empty())
      t += " toolkit=" + toolkit;
    t += "}";
    if (host == "llvm")
      // The host side to the LLVM dialect: tensors become the caller's memrefs (identity
      // layouts, no copies), every function gets a C wrapper (_mlir_ciface_*), and
      // gpu.launch_func/gpu.alloc become mgpu* calls (libkvc_runtime implements them).
      t += ",one-shot-bufferize{bufferize-function-boundaries "
           "function-boundary-type-conversion=identity-layout-map},"
           "func.func(llvm-request-c-wrappers,convert-linalg-to-loops),convert-scf-to-cf,"
           "convert-cf-to-llvm,convert-arith-to-llvm,convert-index-to-llvm,convert-func-to-llvm,"
           "expand-strided-metadata,lower-affine,finalize-memref-to-llvm,gpu-to-llvm,"
           "reconcile-unrealized-casts";
    return t;
  }

  void getDependentDialects(DialectRegistry &registry) const override {
    OpPassManager pm(ModuleOp::getOperationName());
    if (succeeded(parsePassPipeline(text(), pm, llvm::errs())))
      pm.getDependentDialects(registry);
  }

  void runOnOperation() override {
    if (host != "gpu" && host != "llvm") {
      getOperation().emitError("kvc-gpu-pipeline: host must be 'gpu' (stop at gpu.launch_func) "
                               "or 'llvm' (lower the host code too), got '")
          << host << "'";
      return signalPassFailure();
    }
    if (outputMemory != "managed" && outputMemory != "device") {
      getOperation().emitError("kvc-gpu-pipeline: output-memory must be 'managed' or 'device', "
                               "got '")
          << outputMemory << "'";
      return signalPassFailure();
    }
    // cp.async.bulk.prefetch is sm_90+; say so here rather than fail in the NVPTX backend.
    unsigned smVersion = 0;
    if (l2Prefetch > 0 && (!llvm::StringRef(chip).starts_with("sm_") ||
                           llvm::StringRef(chip).drop_front(3).take_while(llvm::isDigit)
                               .getAsInteger(10, smVersion) || smVersion < 90)) {
      getOperation().emitError("kvc-gpu-pipeline: l2-prefetch needs chip sm_90 or newer "
                               "(cp.async.bulk.prefetch), got '")
          << chip << "'";
      return signalPassFailure();
    }
    OpPassManager pm(ModuleOp::getOperationName());
    if (failed(parsePassPipeline(text(), pm, llvm::errs()))) {
      getOperation().emitError("kvc-gpu-pipeline: pipeline text does not parse: ") << text();
      return signalPassFailure();
    }
    if (printPipeline) {
      pm.printAsTextualPipeline(llvm::errs());
      llvm::errs() << "\n";
    }
    if (failed(runPipeline(pm, getOperation())))
      signalPassFailure();
  }
};
} // namespace
