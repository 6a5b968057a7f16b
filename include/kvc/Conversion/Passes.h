//===- Passes.h - kvc conversion passes --------------------------*- C++ -*-===//
#ifndef KVC_CONVERSION_PASSES_H
#define KVC_CONVERSION_PASSES_H

#include "kvc/Conversion/KVCToGPU/KVCToGPU.h"
#include "kvc/Conversion/KVCToLinalg/KVCToLinalg.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
namespace kvc {

#define GEN_PASS_DECL
#include "kvc/Conversion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "kvc/Conversion/Passes.h.inc"

} // namespace kvc
} // namespace mlir

#endif // KVC_CONVERSION_PASSES_H
