//===- CacheRewriting.h - moving cache consumers between cache kinds -*- C++ -*-===//
//
// The cache-compression passes (kvc-compress-cache, kvc-quantize-cache, kvc-entropy-encode)
// all replace one cache value by another of a different kind and then move its decode
// consumers over: appends are rebuilt on the new kind, views read the new cache, and attention
// over a ragged result gets its lengths operand. Other consumers keep the old cache.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_DIALECT_KVC_TRANSFORMS_CACHEREWRITING_H
#define KVC_DIALECT_KVC_TRANSFORMS_CACHEREWRITING_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/Value.h"

namespace mlir {
namespace kvc {

/// `cacheType` (any kvc cache type) with its sequence/capacity dimension set to `seq`.
Type cacheTypeWithSeq(Type cacheType, int64_t seq);

/// Whether rows of `cacheType` have their own lengths (ragged, or encoded with ragged = true).
bool isRaggedCacheType(Type cacheType);

/// Moves the appends, views (and the kvc.attention ops reading them) and lengths queries of
/// `oldCache` onto `newCache`; `skip` (e.g. the op that made `newCache` from `oldCache`) is
/// left alone. Follows chains of appends.
void retargetCacheUses(Value oldCache, Value newCache, Operation *skip);

/// Erases cache appends/views/lengths (and encodes) whose results nothing uses any more.
void eraseDeadCacheOps(Operation *root);

} // namespace kvc
} // namespace mlir

#endif
