//===- KVCDialect.cpp - kvc dialect registration ---------------------------===//
#include "kvc/Dialect/KVC/IR/KVC.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::kvc;

#include "kvc/Dialect/KVC/IR/KVCDialect.cpp.inc"
#include "kvc/Dialect/KVC/IR/KVCEnums.cpp.inc"
#include "kvc/Dialect/KVC/IR/KVCTypeInterfaces.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "kvc/Dialect/KVC/IR/KVCAttrs.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "kvc/Dialect/KVC/IR/KVCTypes.cpp.inc"

void KVCDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "kvc/Dialect/KVC/IR/KVCOps.cpp.inc"
      >();
  addTypes<
#define GET_TYPEDEF_LIST
#include "kvc/Dialect/KVC/IR/KVCTypes.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "kvc/Dialect/KVC/IR/KVCAttrs.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// Attribute and type verifiers
//===----------------------------------------------------------------------===//

LogicalResult CodecAttr::verify(function_ref<InFlightDiagnostic()> emitError, unsigned bits,
                                QuantGroup keyGroup, unsigned keyBlock, FloatAttr keyError,
                                QuantGroup valueGroup, unsigned valueBlock, FloatAttr valueError,
                                EntropyCode entropy, unsigned recentKeys, unsigned recentValues) {
  double kErr = keyError.getValueAsDouble(), vErr = valueError.getValueAsDouble();
  if (bits > 16)
    return emitError() << "bits must be in [0, 16] (0 = error-bounded), got " << bits;
  if (bits == 0) {
    if (!(kErr > 0.0 && kErr < 1.0) || !(vErr > 0.0 && vErr < 1.0))
      return emitError() << "error-bounded codec (bits = 0) needs key_error and value_error in "
                            "(0, 1), got "
                         << kErr << " and " << vErr;
  } else if (kErr != 0.0 || vErr != 0.0) {
    return emitError() << "fixed-width codec (bits = " << bits
                       << ") must have key_error = value_error = 0";
  }
  if (keyBlock == 0 || valueBlock == 0)
    return emitError() << "key_block and value_block must be positive";
  if (valueGroup == QuantGroup::Channel)
    return emitError() << "value_group = channel is not supported (values are grouped per token "
                          "or per block)";
  return success();
}

static LogicalResult verifyKVShapes(function_ref<InFlightDiagnostic()> emitError,
                                    RankedTensorType keyType, RankedTensorType valueType) {
  if (keyType.getRank() != 4 || valueType.getRank() != 4)
    return emitError() << "cache key and value types must be rank 4 [B, Hkv, S, D], got rank "
                       << keyType.getRank() << " and " << valueType.getRank();
  if (keyType.getElementType() != valueType.getElementType())
    return emitError() << "cache keys and values must have one element type, got "
                       << keyType.getElementType() << " and " << valueType.getElementType();
  if (!isa<FloatType>(keyType.getElementType()))
    return emitError() << "cache element type must be a float type, got "
                       << keyType.getElementType();
  for (int i = 0; i < 3; ++i) {
    int64_t a = keyType.getDimSize(i), b = valueType.getDimSize(i);
    if (!ShapedType::isDynamic(a) && !ShapedType::isDynamic(b) && a != b)
      return emitError() << "cache keys and values disagree in dimension " << i << " (" << a
                         << " vs " << b << ")";
  }
  return success();
}

LogicalResult CacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                                RankedTensorType keyType, RankedTensorType valueType) {
  return verifyKVShapes(emitError, keyType, valueType);
}

LogicalResult RaggedCacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                                      RankedTensorType keyType, RankedTensorType valueType,
                                      unsigned sinks, unsigned recent) {
  // sinks + recent may exceed the capacity: such a row simply keeps every pair.
  return verifyKVShapes(emitError, keyType, valueType);
}

LogicalResult EncodedCacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                                       RankedTensorType keyType, RankedTensorType valueType,
                                       CodecAttr codec, bool ragged) {
  return verifyKVShapes(emitError, keyType, valueType);
}
