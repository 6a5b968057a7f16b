//===- kvc-translate.cpp - kvc translation driver ---------------------------===//
//
// Translations in and out of MLIR: upstream's MLIR <-> LLVM IR translations, and the ONNX
// importer (--import-onnx [--shape name=d0xd1...]) when kvc was built with libonnx-dev.
//
//===----------------------------------------------------------------------===//

#include "kvc/InitAll.h"
#include "kvc/Tools/DriverHelp.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllTranslations.h"
#include "mlir/Tools/mlir-translate/MlirTranslateMain.h"

#ifdef KVC_HAVE_ONNX_IMPORT
#include "kvc/Target/ONNX/ImportONNX.h"
#endif

int main(int argc, char **argv) {
  mlir::kvc::hideOptionsRegisteredSoFar({"shape"}); // --shape: the ONNX importer's
  mlir::registerAllTranslations();
#ifdef KVC_HAVE_ONNX_IMPORT
  mlir::kvc::onnx_import::registerONNXImportTranslation();
#endif
  return mlir::failed(mlir::mlirTranslateMain(argc, argv, "kvc translation driver\n"));
}
