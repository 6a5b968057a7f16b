//===- KVCToLinalg.h - kvc to Linalg lowering --------------------*- C++ -*-===//
#ifndef KVC_CONVERSION_KVCTOLINALG_KVCTOLINALG_H
#define KVC_CONVERSION_KVCTOLINALG_KVCTOLINALG_H

#include "mlir/Transforms/DialectConversion.h"

namespace mlir {
namespace kvc {

/// Converts dense `!kvc.cache` values to their (keys, values) tensor pair.
void populateKVCCacheTypeConversion(TypeConverter &converter);

/// Patterns lowering kvc.attention and the dense-cache ops to Linalg/tensor.
void populateKVCToLinalgPatterns(const TypeConverter &converter, RewritePatternSet &patterns);

} // namespace kvc
} // namespace mlir

#endif
