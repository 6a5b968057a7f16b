//===- InitAll.cpp - register kvc dialects and passes ----------------------===//
#include "kvc/InitAll.h"

#include "kvc/Conversion/Passes.h"
#include "kvc/Dialect/KVC/IR/KVC.h"
#include "kvc/Dialect/KVC/Transforms/Passes.h"
#include "kvc/Pipelines/Passes.h"

#include "mlir/IR/DialectRegistry.h"

void mlir::kvc::registerAllKVCDialects(DialectRegistry &registry) {
  registry.insert<KVCDialect>();
}

void mlir::kvc::registerAllKVCPasses() {
  registerKVCPasses();
  registerKVCConversionPasses();
  registerKVCPipelinesPasses();
}
