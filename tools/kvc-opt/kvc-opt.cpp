//===- kvc-opt.cpp - kvc optimizer driver -----------------------------------===//
//
// MlirOptMain with every upstream dialect, extension and pass (users mix kvc with linalg,
// tensor, gpu, ...) plus kvc's own. Only out-of-line registration calls are used here, which
// keeps this translation unit cheap to compile.
//
//===----------------------------------------------------------------------===//

#include "kvc/InitAll.h"
#include "kvc/Tools/DriverHelp.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::kvc::hideOptionsRegisteredSoFar();
  mlir::registerAllPasses();
  mlir::kvc::registerAllKVCPasses();

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::registerAllToLLVMIRTranslations(registry);
  mlir::kvc::registerAllKVCDialects(registry);

  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "kvc optimizer driver: KV-cache compression passes and lowerings\n", registry));
}
