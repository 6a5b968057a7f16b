//===- ONNXImportFuzzer.cpp - libFuzzer entry for the ONNX importer ---------===//
//
// Feeds arbitrary bytes to importONNXModel. Any input must give either a module or diagnostics,
// never a crash. Diagnostics are swallowed. Build: -DKVC_BUILD_FUZZERS=ON (clang).
// Run: kvc-onnx-import-fuzz -max_len=65536 corpus_dir/   (seed it with small .onnx files)
//
//===----------------------------------------------------------------------===//
#include "kvc/Target/ONNX/ImportONNX.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mlir::MLIRContext ctx(mlir::MLIRContext::Threading::DISABLED);
  mlir::ScopedDiagnosticHandler swallow(&ctx, [](mlir::Diagnostic &) { return mlir::success(); });
  mlir::kvc::onnx_import::ImportOptions opts;
  opts.modelDir = "/nonexistent-kvc-fuzz"; // never read external data from disk
  (void)mlir::kvc::onnx_import::importONNXModel(
      llvm::StringRef(reinterpret_cast<const char *>(data), size), &ctx, opts);
  return 0;
}
