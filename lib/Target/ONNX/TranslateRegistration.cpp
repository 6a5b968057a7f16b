//===- TranslateRegistration.cpp - kvc-translate --import-onnx --------------===//
#include "kvc/Target/ONNX/ImportONNX.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"

using namespace mlir;

static llvm::cl::list<std::string>
    clShapes("shape", llvm::cl::desc("--import-onnx: pin an input's shape, e.g. input_ids=1x12"),
             llvm::cl::value_desc("name=d0xd1..."));

void mlir::kvc::onnx_import::registerONNXImportTranslation() {
  static TranslateToMLIRRegistration reg(
      "import-onnx", "Import an ONNX model (ModelProto) into kvc/linalg on tensors",
      [](const std::shared_ptr<llvm::SourceMgr> &sourceMgr,
         MLIRContext *context) -> OwningOpRef<Operation *> {
        const llvm::MemoryBuffer *buf = sourceMgr->getMemoryBuffer(sourceMgr->getMainFileID());
        ImportOptions opts;
        std::string name = buf->getBufferIdentifier().str();
        opts.modelName = name.empty() ? "<stdin>" : name;
        if (name.empty() || name == "<stdin>")
          opts.modelDir = ".";
        else
          opts.modelDir = llvm::sys::path::parent_path(name).str();
        if (opts.modelDir.empty())
          opts.modelDir = ".";
        for (const std::string &s : clShapes) {
          std::string error;
          if (!parseShapePin(s, opts, error)) {
            emitError(UnknownLoc::get(context)) << error;
            return nullptr;
          }
        }
        OwningOpRef<ModuleOp> m = importONNXModel(buf->getBuffer(), context, opts);
        if (!m)
          return nullptr;
        return OwningOpRef<Operation *>(m.release());
      },
      [](DialectRegistry &registry) { registerONNXImportDialects(registry); });
}
