//===- KVCTypes.td - kvc KV-cache types --------------------*- tablegen -*-===//
#ifndef KVC_TYPES_TD
#define KVC_TYPES_TD

include "kvc/Dialect/KVC/IR/KVCAttrs.td"
include "kvc/Dialect/KVC/IR/KVCInterfaces.td"

//===----------------------------------------------------------------------===//
// The KV-cache type family. Every member holds one attention layer's keys and values and
// describes them by their *logical* shapes: keys `[B, Hkv, S, D]`, values `[B, Hkv, S, Dv]`.
// Members differ in how the pairs are stored; the interface gives passes the common view.
//===----------------------------------------------------------------------===//

class KVC_CacheTypeDef<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<KVC_Dialect, name,
              !listconcat([DeclareTypeInterfaceMethods<KVC_KVCacheTypeInterface>], traits)> {
  let mnemonic = typeMnemonic;
  let genVerifyDecl = 1;
}

def KVC_CacheType : KVC_CacheTypeDef<"Cache", "cache"> {
  let summary = "Dense KV cache of one layer";
  let description = [{
    Every (batch, head) holds the same number of pairs S, stored as they are. This is what an
    uncompressed past/present cache is. S may be dynamic.

    Example: `!kvc.cache<tensor<1x8x?x128xf16>, tensor<1x8x?x128xf16>>`
  }];
  let parameters = (ins "::mlir::RankedTensorType":$keyType,
                        "::mlir::RankedTensorType":$valueType);
  let assemblyFormat = "`<` $keyType `,` $valueType `>`";
}

def KVC_RaggedCacheType : KVC_CacheTypeDef<"RaggedCache", "ragged_cache"> {
  let summary = "KV cache whose (batch, head) rows hold different numbers of pairs";
  let description = [{
    Produced by sequence-length compression (selection or distillation). Dimension 2 of the logical
    shapes is the *capacity* (the largest per-head length); each (batch, KV head) row holds its own
    number of valid pairs, a run-time value (`kvc.cache.lengths`). The first `sinks` and last
    `recent` pairs of every row are original tokens kept exactly; the pairs between them may be
    synthetic (distilled) and carry no position. New tokens are appended after each row's end.

    Example: `!kvc.ragged_cache<tensor<1x8x1024x128xf16>, tensor<1x8x1024x128xf16>, sinks = 4, recent = 64>`
  }];
  let parameters = (ins "::mlir::RankedTensorType":$keyType,
                        "::mlir::RankedTensorType":$valueType,
                        "unsigned":$sinks, "unsigned":$recent);
  let assemblyFormat = "`<` $keyType `,` $valueType `,` `sinks` `=` $sinks `,` `recent` `=` $recent `>`";
}

def KVC_EncodedCacheType : KVC_CacheTypeDef<"EncodedCache", "encoded_cache"> {
  let summary = "KV cache whose elements are stored quantized and (optionally) entropy-coded";
  let description = [{
    Same logical shapes as a dense or ragged cache, but the elements live in the encoding that the
    `#kvc.codec` attribute describes (quantization groups, error bound or bit width, entropy
    code, unencoded recent window). `ragged` says whether the rows have per-head lengths.

    Example: `!kvc.encoded_cache<tensor<1x8x?x128xf16>, tensor<1x8x?x128xf16>, #kvc.codec<...>>`
  }];
  let parameters = (ins "::mlir::RankedTensorType":$keyType,
                        "::mlir::RankedTensorType":$valueType,
                        "::mlir::kvc::CodecAttr":$codec,
                        DefaultValuedParameter<"bool", "false">:$ragged);
  let assemblyFormat = "`<` $keyType `,` $valueType `,` qualified($codec) (`,` `ragged` `=` $ragged^)? `>`";
}

def KVC_AnyCache : Type<CPred<"::llvm::isa<::mlir::kvc::KVCacheTypeInterface>($_self)">,
                        "any kvc KV-cache type">;
def KVC_DenseCache : Type<CPred<"::llvm::isa<::mlir::kvc::CacheType>($_self)">,
                          "dense kvc KV cache">;
def KVC_RaggedCache : Type<CPred<"::llvm::isa<::mlir::kvc::RaggedCacheType>($_self)">,
                           "ragged kvc KV cache">;
def KVC_DenseOrRaggedCache : Type<CPred<"::llvm::isa<::mlir::kvc::CacheType, ::mlir::kvc::RaggedCacheType>($_self)">,
                                  "dense or ragged kvc KV cache">;

#endif // KVC_TYPES_TD
