//===- kvc-translate.cpp - kvc translation driver ---------------------------===//
//
// Translations in and out of MLIR: upstream's MLIR <-> LLVM IR translations today; the ONNX
// importer (--import-onnx) registers here too.
//
//===----------------------------------------------------------------------===//

#include "kvc/InitAll.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllTranslations.h"
#include "mlir/Tools/mlir-translate/MlirTranslateMain.h"

int main(int argc, char **argv) {
  mlir::registerAllTranslations();
  return mlir::failed(mlir::mlirTranslateMain(argc, argv, "kvc translation driver\n"));
}
