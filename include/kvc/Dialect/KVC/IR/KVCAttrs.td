//===- KVCAttrs.td - kvc attributes ------------------------*- tablegen -*-===//
#ifndef KVC_ATTRS_TD
#define KVC_ATTRS_TD

include "kvc/Dialect/KVC/IR/KVCDialect.td"
include "mlir/IR/EnumAttr.td"

def KVC_QuantGroup : I32EnumAttr<"QuantGroup", "how quantization groups are formed", [
    I32EnumAttrCase<"Block", 0, "block">,     // one (min, step) per block of tokens
    I32EnumAttrCase<"Token", 1, "token">,     // one (min, step) per token vector
    I32EnumAttrCase<"Channel", 2, "channel">  // one (min, step) per channel within a block (KIVI keys)
  ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::kvc";
}

def KVC_EntropyCode : I32EnumAttr<"EntropyCode", "entropy code applied to quantization symbols", [
    I32EnumAttrCase<"None", 0, "none">,
    I32EnumAttrCase<"Huffman", 1, "huffman">
  ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::kvc";
}

def KVC_CompressMethod : I32EnumAttr<"CompressMethod", "sequence-length compression method", [
    // Values equal the runtime's kvc_compress_method (include/kvc/Runtime/Compress.h).
    I32EnumAttrCase<"Streaming", 0, "streaming">,   // sinks + most recent tokens
    I32EnumAttrCase<"SnapKV", 1, "snapkv">,         // observation-window scores, pooled, top-t
    I32EnumAttrCase<"H2O", 2, "h2o">,               // accumulated attention, top-t
    I32EnumAttrCase<"SelectFit", 3, "select_fit">,  // top-t keys + least-squares values
    I32EnumAttrCase<"Sculpt", 4, "sculpt">          // KVSculpt distillation
  ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::kvc";
}
def KVC_CompressMethodAttr : EnumAttr<KVC_Dialect, KVC_CompressMethod, "method"> {
  let assemblyFormat = "`<` $value `>`";
}

def KVC_BudgetMode : I32EnumAttr<"BudgetMode", "how a total budget is spread over heads", [
    I32EnumAttrCase<"Uniform", 0, "uniform">,  // every (layer, head) keeps the same fraction
    I32EnumAttrCase<"Pilot", 1, "pilot">       // a pilot run measures difficulty and reallocates
  ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::kvc";
}
def KVC_BudgetModeAttr : EnumAttr<KVC_Dialect, KVC_BudgetMode, "budget_mode"> {
  let assemblyFormat = "`<` $value `>`";
}

def KVC_CodecAttr : AttrDef<KVC_Dialect, "Codec"> {
  let mnemonic = "codec";
  let summary = "How an encoded KV cache stores its elements";
  let description = [{
    Describes the element encoding of `!kvc.encoded_cache`. Two quantizer families share it:

    * error-bounded (KVComp): `bits = 0`, the step of a group is `error * (max - min)`, so every
      element is within `error * range / 2` of its decoded value;
    * fixed-width (KIVI-style): `bits = b > 0`, `2^b` levels between the group's min and max, and
      `key_error`/`value_error` must be 0.

    Keys are grouped by `key_group` (blocks of `key_block` tokens, or per channel within such a
    block), values by `value_group`. `entropy = huffman` entropy-codes the symbols with a codebook
    built from the prefill histogram. The most recent `recent_keys` keys and `recent_values` values
    are kept unencoded.

    Example:
    `#kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 5.000000e-02 : f64,
       value_group = token, value_block = 128, value_error = 1.000000e-01 : f64, entropy = huffman,
       recent_keys = 128, recent_values = 256>`
  }];
  let parameters = (ins
    "unsigned":$bits,
    EnumParameter<KVC_QuantGroup>:$key_group,
    "unsigned":$key_block,
    "::mlir::FloatAttr":$key_error,
    EnumParameter<KVC_QuantGroup>:$value_group,
    "unsigned":$value_block,
    "::mlir::FloatAttr":$value_error,
    EnumParameter<KVC_EntropyCode>:$entropy,
    "unsigned":$recent_keys,
    "unsigned":$recent_values
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

#endif // KVC_ATTRS_TD
