//===- EncodedCacheUse.h - the in-place rule of encoded-cache appends ----*- C++ -*-===//
//
// Both runtimes (CPU: convert-kvc-to-linalg, GPU: convert-kvc-to-gpu) hold an encoded cache as
// a handle that kvc.cache.append updates in place, so an encoded cache value must not be read
// after (or apart from) the append that consumes it, and the append must run once per value.
// These are the shared checks.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_DIALECT_KVC_IR_ENCODEDCACHEUSE_H
#define KVC_DIALECT_KVC_IR_ENCODEDCACHEUSE_H

#include "mlir/IR/Value.h"

namespace mlir {
class Operation;
namespace kvc {

/// A user of `cache` that reads it after, or in another block than, a kvc.cache.append of it;
/// null if there is none. With `viewReadersRead`, the readers of a kvc.cache.view of the cache
/// count as reads at their own position (the GPU path reads the handle where attention runs,
/// not where the view is).
Operation *findReadAfterInPlaceAppend(Value cache, bool viewReadersRead = false);

/// A kvc.cache.append of `cache` that is not in the block defining `cache` (e.g. in a loop body
/// over a cache defined outside it: by value semantics every iteration appends to the same
/// cache, but an in-place handle would grow each time); null if there is none.
Operation *findAppendOutsideDefiningBlock(Value cache);

} // namespace kvc
} // namespace mlir

#endif
