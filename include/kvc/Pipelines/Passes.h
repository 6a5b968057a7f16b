//===- Passes.h - kvc pipelines ----------------------------------*- C++ -*-===//
#ifndef KVC_PIPELINES_PASSES_H
#define KVC_PIPELINES_PASSES_H

#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

namespace mlir {
namespace kvc {

#define GEN_PASS_DECL
#include "kvc/Pipelines/Passes.h.inc"

/// Appends the CPU lowering (kvc/Linalg on tensors -> LLVM dialect) to `pm`.
void buildKVCCPUPipeline(OpPassManager &pm, bool raiseAttention);

#define GEN_PASS_REGISTRATION
#include "kvc/Pipelines/Passes.h.inc"

} // namespace kvc
} // namespace mlir

#endif
