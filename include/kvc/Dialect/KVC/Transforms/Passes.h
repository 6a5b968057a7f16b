//===- Passes.h - kvc dialect passes -----------------------------*- C++ -*-===//
#ifndef KVC_DIALECT_KVC_TRANSFORMS_PASSES_H
#define KVC_DIALECT_KVC_TRANSFORMS_PASSES_H

#include "kvc/Dialect/KVC/IR/KVC.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
class RewritePatternSet;
namespace kvc {

#define GEN_PASS_DECL
#include "kvc/Dialect/KVC/Transforms/Passes.h.inc"

/// Patterns that rewrite decomposed attention into kvc.attention.
void populateRaiseAttentionPatterns(RewritePatternSet &patterns);

#define GEN_PASS_REGISTRATION
#include "kvc/Dialect/KVC/Transforms/Passes.h.inc"

} // namespace kvc
} // namespace mlir

#endif // KVC_DIALECT_KVC_TRANSFORMS_PASSES_H
