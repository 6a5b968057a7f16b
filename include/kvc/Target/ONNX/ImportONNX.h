//===- ImportONNX.h - ONNX ModelProto -> kvc/linalg on tensors ---*- C++ -*-===//
//
// The ONNX importer: parses a serialized ModelProto (protobuf, Debian's libonnx-dev) and builds
// `func.func @main` on static-shaped tensors with kvc / linalg / tensor / arith / math ops.
// Shape computations whose inputs are known at import time are constant-folded so that
// Reshape/Expand/Slice see static shapes. Every problem is reported as an MLIR diagnostic naming
// the node (or file) and the reason; the importer never aborts.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_TARGET_ONNX_IMPORTONNX_H
#define KVC_TARGET_ONNX_IMPORTONNX_H

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"

#include <map>
#include <string>

namespace mlir {
class DialectRegistry;
class MLIRContext;
namespace kvc {
namespace onnx_import {

struct ImportOptions {
  /// Pinned input shapes (`--shape name=1x12`), overriding dynamic/unknown dims.
  std::map<std::string, llvm::SmallVector<int64_t>> shapes;
  /// Directory that external-data locations are relative to ("" = no external data allowed).
  std::string modelDir;
  /// Name used in diagnostics for the model.
  std::string modelName = "model.onnx";
  /// Prepare @main for execution (kvc-run): mark it llvm.emit_c_interface and give every result
  /// its own buffer (results that are arguments, constants or views are copied).
  bool emitCInterface = false;
};

/// Parses `--shape` text `name=1x12` (or `name=` for a scalar) into `opts`. Returns false and
/// sets `error` on malformed text.
bool parseShapePin(llvm::StringRef text, ImportOptions &opts, std::string &error);

/// Imports a serialized ModelProto. Returns null (after emitting diagnostics through the
/// context's diagnostic engine) on any error.
OwningOpRef<ModuleOp> importONNXModel(llvm::StringRef bytes, MLIRContext *context,
                                      const ImportOptions &options);

/// Parses a serialized TensorProto (e.g. a backend test's `input_0.pb`) into `out` and its name.
/// External data is read relative to `dataDir`. Returns false and sets `error` on failure.
bool parseTensorProto(llvm::StringRef bytes, MLIRContext *context, llvm::StringRef dataDir,
                      DenseElementsAttr &out, std::string &name, std::string &error);

/// Dialects the imported IR uses.
void registerONNXImportDialects(DialectRegistry &registry);

/// Registers `--import-onnx` (with `--shape`) with mlir-translate's registry.
void registerONNXImportTranslation();

} // namespace onnx_import
} // namespace kvc
} // namespace mlir

#endif
