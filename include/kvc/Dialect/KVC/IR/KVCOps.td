//===- KVCOps.td - kvc operations --------------------------*- tablegen -*-===//
#ifndef KVC_OPS_TD
#define KVC_OPS_TD

include "kvc/Dialect/KVC/IR/KVCTypes.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

def KVC_FloatTensor : RankedTensorOf<[F16, BF16, F32, F64]>;
def KVC_MaskTensor : RankedTensorOf<[I1, F16, BF16, F32, F64]>;

//===----------------------------------------------------------------------===//
// kvc.attention
//===----------------------------------------------------------------------===//

def KVC_AttentionOp : KVC_Op<"attention", [Pure]> {
  let summary = "Scaled dot-product attention, GQA-aware, with mask/causal/softcap/window";
  let description = [{
    Computes, for query `[B, Hq, Sq, D]`, key `[B, Hkv, Skv, D]` and value `[B, Hkv, Skv, Dv]`
    with `Hq % Hkv == 0` (query head `h` reads KV head `h / (Hq / Hkv)`; MHA, GQA and MQA):

    ```
    s[b,h,i,j] = scale * sum_d q[b,h,i,d] * k[b,h/g,j,d]        (f32 accumulation)
    s = softcap * tanh(s / softcap)                               if softcap is set
    s = mask ? s : -inf          (i1 mask)   or   s + mask (float mask)
    s = -inf where j > i + (Skv - Sq)                             if causal
    s = -inf where (i + (Skv - Sq)) - j >= window                 if window is set
    p = softmax_j(s)  (rows whose every score is -inf give p = 0 and an all-zero output row)
    out[b,h,i,:] = sum_j p[b,h,i,j] * v[b,h/g,j,:]
    ```

    `scale` defaults to `1/sqrt(D)`. Causal masking is bottom-right aligned: with a past cache
    (`Skv > Sq`) query `i` sits at absolute position `i + Skv - Sq`. `window` keeps the `window`
    most recent keys up to and including that position. The mask broadcasts (numpy rules) to
    `[B, Hq, Sq, Skv]`. The result has the query's element type and shape `[B, Hq, Sq, Dv]`;
    f16/bf16 inputs are accumulated in f32.
  }];
  let arguments = (ins KVC_FloatTensor:$query, KVC_FloatTensor:$key, KVC_FloatTensor:$value,
                       Optional<KVC_MaskTensor>:$mask,
                       OptionalAttr<F32Attr>:$scale,
                       UnitAttr:$causal,
                       OptionalAttr<F32Attr>:$softcap,
                       OptionalAttr<I64Attr>:$window);
  let results = (outs KVC_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`mask` `(` $mask^ `)`)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The scale actually applied: the attribute, or 1/sqrt(D).
    double getEffectiveScale();
    /// Query heads per KV head (Hq / Hkv); 0 when either is dynamic.
    int64_t getGroupSize();
  }];
}

//===----------------------------------------------------------------------===//
// KV-cache ops (value semantics: a cache is an SSA value; every update yields a new one)
//===----------------------------------------------------------------------===//

def KVC_CacheFromTensorsOp : KVC_Op<"cache.from_tensors", [Pure]> {
  let summary = "Make a dense cache out of key and value tensors";
  let description = [{
    `%c = kvc.cache.from_tensors %k, %v : tensor<BxHxSxD>, tensor<BxHxSxDv> -> !kvc.cache<...>`
    The cache holds exactly the given pairs, e.g. a model's `past_key`/`past_value` inputs.
  }];
  let arguments = (ins KVC_FloatTensor:$keys, KVC_FloatTensor:$values);
  let results = (outs KVC_DenseCache:$cache);
  let assemblyFormat = "$keys `,` $values attr-dict `:` type($keys) `,` type($values) `->` type($cache)";
  let hasVerifier = 1;
}

def KVC_CacheAppendOp : KVC_Op<"cache.append", [Pure]> {
  let summary = "Append new tokens' keys and values to a dense cache";
  let description = [{
    Returns a cache whose sequence is the old one followed by the `N` new pairs
    (`[B, Hkv, N, D]` keys, `[B, Hkv, N, Dv]` values); its length is `S + N` (dynamic if either is).
    This is ONNX's `present = concat(past, new)`.
  }];
  let arguments = (ins KVC_DenseCache:$cache, KVC_FloatTensor:$keys, KVC_FloatTensor:$values);
  let results = (outs KVC_DenseCache:$result);
  let assemblyFormat = [{
    $cache `,` $keys `,` $values attr-dict `:` type($cache) `,` type($keys) `,` type($values) `->` type($result)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

def KVC_CacheViewOp : KVC_Op<"cache.view", [Pure]> {
  let summary = "The keys and values a dense cache holds, as tensors";
  let description = [{
    `%k, %v = kvc.cache.view %c : !kvc.cache<...> -> tensor<...>, tensor<...>` gives the logical
    key and value tensors, e.g. to feed `kvc.attention` or a model's `present_*` outputs.
  }];
  let arguments = (ins KVC_DenseCache:$cache);
  let results = (outs KVC_FloatTensor:$keys, KVC_FloatTensor:$values);
  let assemblyFormat = "$cache attr-dict `:` type($cache) `->` type($keys) `,` type($values)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

#endif // KVC_OPS_TD
