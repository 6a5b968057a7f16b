//===- DriverHelp.h - keep LLVM's backend flags out of the drivers' --help -*- C++ -*-===//
//
// kvc-opt and kvc-translate link libLLVM, whose static initialisers register a few hundred
// backend options (--amdgpu-*, --aarch64-*, --x86-*, ...) in the general category, so the
// drivers' --help buried their own options under them. Hiding every option registered before
// the driver's main runs leaves what MlirOptMain / mlirTranslateMain register themselves (the
// passes and pipelines, the translations, -o, --split-input-file, the --mlir-* options) in
// --help; the hidden ones still work and --help-hidden lists them. kvc's own static options
// (e.g. kvc-translate's --shape) are named in `keep`.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_TOOLS_DRIVERHELP_H
#define KVC_TOOLS_DRIVERHELP_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/CommandLine.h"

#include <algorithm>

namespace mlir::kvc {
inline void hideOptionsRegisteredSoFar(llvm::ArrayRef<llvm::StringRef> keep = {}) {
  for (auto &entry : llvm::cl::getRegisteredOptions()) {
    llvm::StringRef name = entry.first;
    if (name.starts_with("help") || name == "version" ||
        std::find(keep.begin(), keep.end(), name) != keep.end())
      continue;
    entry.second->setHiddenFlag(llvm::cl::Hidden);
  }
}
} // namespace mlir::kvc

#endif
