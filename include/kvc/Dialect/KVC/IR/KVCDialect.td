//===- KVCDialect.td - kvc dialect definition --------------*- tablegen -*-===//
#ifndef KVC_DIALECT_TD
#define KVC_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def KVC_Dialect : Dialect {
  let name = "kvc";
  let cppNamespace = "::mlir::kvc";
  let summary = "Attention and KV-cache operations for KV-cache compression";
  let description = [{
    The kvc dialect models scaled-dot-product attention (`kvc.attention`) and the KV cache it
    reads as first-class IR, so that passes can compress the cache (fewer pairs, fewer bits per
    pair) and backends can generate kernels that read the compressed forms directly.
    See docs/dialect.md.
  }];
  let useDefaultTypePrinterParser = 1;
  let useDefaultAttributePrinterParser = 1;
  let dependentDialects = ["::mlir::tensor::TensorDialect"];
}

class KVC_Op<string mnemonic, list<Trait> traits = []>
    : Op<KVC_Dialect, mnemonic, traits>;

#endif // KVC_DIALECT_TD
