//===- RuntimeFunc.h - declaring libkvc_runtime entry points in lowered IR -*- C++ -*-===//
//
// convert-kvc-to-linalg and convert-kvc-to-gpu lower kvc ops partly to calls of libkvc_runtime
// (include/kvc/Runtime/CompilerABI.h). Both declare the callee the same way.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_CONVERSION_RUNTIMEFUNC_H
#define KVC_CONVERSION_RUNTIMEFUNC_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir {
namespace kvc {

/// Declares (once, at the top of `module`) a private runtime function with the C interface MLIR
/// uses for memref arguments and results (`llvm.emit_c_interface`: the `_mlir_ciface_` symbol
/// takes descriptors by pointer, a memref result through the first argument).
inline func::FuncOp declareRuntimeFunc(OpBuilder &b, ModuleOp module, StringRef name,
                                       TypeRange args, TypeRange results) {
  if (auto f = module.lookupSymbol<func::FuncOp>(name))
    return f;
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(module.getBody());
  auto f = func::FuncOp::create(b, module.getLoc(), name, b.getFunctionType(args, results));
  f.setPrivate();
  f->setAttr("llvm.emit_c_interface", b.getUnitAttr());
  return f;
}

} // namespace kvc
} // namespace mlir

#endif
