//===- InitAll.h - register kvc dialects and passes --------------*- C++ -*-===//
#ifndef KVC_INITALL_H
#define KVC_INITALL_H

namespace mlir {
class DialectRegistry;
namespace kvc {
/// Adds the kvc dialect to `registry`.
void registerAllKVCDialects(DialectRegistry &registry);
/// Registers every kvc pass and pipeline with the global pass registry.
void registerAllKVCPasses();
} // namespace kvc
} // namespace mlir

#endif
