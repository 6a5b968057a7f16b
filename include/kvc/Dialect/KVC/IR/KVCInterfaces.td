//===- KVCInterfaces.td - kvc interfaces -------------------*- tablegen -*-===//
#ifndef KVC_INTERFACES_TD
#define KVC_INTERFACES_TD

include "mlir/IR/OpBase.td"

def KVC_KVCacheTypeInterface : TypeInterface<"KVCacheTypeInterface"> {
  let cppNamespace = "::mlir::kvc";
  let description = [{
    Common view of kvc's KV-cache types: the logical key and value tensor types of one layer's
    cache. Dimension 2 is the sequence (for ragged caches: the capacity per head).
  }];
  let methods = [
    InterfaceMethod<"Logical key tensor type [B, Hkv, S, D]", "::mlir::RankedTensorType",
                    "getKeyType">,
    InterfaceMethod<"Logical value tensor type [B, Hkv, S, Dv]", "::mlir::RankedTensorType",
                    "getValueType">,
  ];
  let extraSharedClassDeclaration = [{
    int64_t getBatch() { return $_type.getKeyType().getDimSize(0); }
    int64_t getNumKVHeads() { return $_type.getKeyType().getDimSize(1); }
    int64_t getSeqLen() { return $_type.getKeyType().getDimSize(2); }
    int64_t getHeadDim() { return $_type.getKeyType().getDimSize(3); }
    int64_t getValueDim() { return $_type.getValueType().getDimSize(3); }
    ::mlir::Type getElementType() { return $_type.getKeyType().getElementType(); }
  }];
}

#endif // KVC_INTERFACES_TD
