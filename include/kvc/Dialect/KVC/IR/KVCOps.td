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

def KVC_AttentionOp : KVC_Op<"attention", [Pure, AttrSizedOperandSegments]> {
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

    With `lengths(%l)` (`[B, Hkv]` integers, a ragged cache's per-row lengths) KV row
    `(b, h/g)` holds only its first `l[b, h/g]` keys: later keys are masked, and causal/window
    positions use `l[b, h/g]` in place of `Skv` (query `i` sits at `i + l - Sq`).
  }];
  let arguments = (ins KVC_FloatTensor:$query, KVC_FloatTensor:$key, KVC_FloatTensor:$value,
                       Optional<KVC_MaskTensor>:$mask,
                       Optional<RankedTensorOf<[I64]>>:$kv_lengths,
                       OptionalAttr<F32Attr>:$scale,
                       UnitAttr:$causal,
                       OptionalAttr<F32Attr>:$softcap,
                       OptionalAttr<I64Attr>:$window);
  let results = (outs KVC_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`mask` `(` $mask^ `)`)? (`lengths` `(` $kv_lengths^ `)`)? attr-dict
    `:` functional-type(operands, results)
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
  let summary = "Append new tokens' keys and values to a dense or ragged cache";
  let description = [{
    Returns a cache whose sequence is the old one followed by the `N` new pairs
    (`[B, Hkv, N, D]` keys, `[B, Hkv, N, Dv]` values); its length is `S + N` (dynamic if either is).
    This is ONNX's `present = concat(past, new)`. On a ragged cache the new pairs go right after
    each row's last valid pair, the lengths grow by `N`, and so does the capacity. On an encoded
    cache they enter the unencoded recent window; whole blocks that fall out of it are encoded
    with the codebook built at prefill.
  }];
  let arguments = (ins KVC_AnyCache:$cache, KVC_FloatTensor:$keys, KVC_FloatTensor:$values);
  let results = (outs KVC_AnyCache:$result);
  let assemblyFormat = [{
    $cache `,` $keys `,` $values attr-dict `:` type($cache) `,` type($keys) `,` type($values) `->` type($result)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

def KVC_CacheViewOp : KVC_Op<"cache.view", [Pure]> {
  let summary = "The keys and values a cache holds, as tensors";
  let description = [{
    `%k, %v = kvc.cache.view %c : !kvc.cache<...> -> tensor<...>, tensor<...>` gives the logical
    key and value tensors, e.g. to feed `kvc.attention` or a model's `present_*` outputs. For a
    ragged cache they have the capacity as sequence length; only the first
    `kvc.cache.lengths` entries of each row are valid. For an encoded cache this decodes (the
    CPU reference path; GPU kernels decode inside attention instead).
  }];
  let arguments = (ins KVC_AnyCache:$cache);
  let results = (outs KVC_FloatTensor:$keys, KVC_FloatTensor:$values);
  let assemblyFormat = "$cache attr-dict `:` type($cache) `->` type($keys) `,` type($values)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def KVC_CacheLengthsOp : KVC_Op<"cache.lengths", [Pure]> {
  let summary = "Per-(batch, KV head) number of valid pairs of a ragged cache";
  let description = [{
    `%l = kvc.cache.lengths %c : !kvc.ragged_cache<...> -> tensor<BxHkvxi64>`; feeds the
    `lengths(...)` operand of `kvc.attention`. Also valid on an encoded cache with
    `ragged = true`.
  }];
  let arguments = (ins KVC_AnyCache:$cache);
  let results = (outs RankedTensorOf<[I64]>:$lengths);
  let assemblyFormat = "$cache attr-dict `:` type($cache) `->` type($lengths)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Sequence-length compression
//===----------------------------------------------------------------------===//

def KVC_CompressOp : KVC_Op<"compress", [Pure, AttrSizedOperandSegments]> {
  let summary = "Compress dense caches into ragged ones (selection or distillation)";
  let description = [{
    Replaces each layer's dense cache by at most `t` pairs per (batch, KV head), where `t` comes
    from `ratio` (fraction of the pairs KEPT, per head: `round(ratio * S)`) or `budget` (pairs
    per head). The first `sinks` and last `recent` tokens of every row are kept exactly and count
    toward `t`.

    ```mlir
    %r0, %r1 = kvc.compress(%c0, %c1) queries(%q0, %q1)
        {method = #kvc.method<sculpt>, ratio = 3.000000e-01 : f64,
         budget_mode = #kvc.budget_mode<pilot>, sinks = 4 : i64, recent = 64 : i64}
        : (!kvc.cache<...>, !kvc.cache<...>, tensor<...>, tensor<...>)
        -> (!kvc.ragged_cache<...>, !kvc.ragged_cache<...>)
    ```

    `queries` (one `[B, Hq, M, D]` tensor per cache, RoPE applied as in the cache) are the
    observation/training queries, e.g. the prefill's queries; only `streaming` works without
    them. With `budget_mode = pilot` the total `sum_c t` over all the op's caches and heads is
    redistributed by a short pilot distillation (difficulty = relative reconstruction error), so
    heads and layers receive different budgets; `uniform` gives every head the same `t`.
    Methods (runtime: include/kvc/Runtime/Compress.h, docs/compression-library.md):
    `streaming`, `snapkv`, `h2o`, `select_fit`, `sculpt`.

    Each result is a ragged cache with the same logical types (capacity = the input length), the
    given `sinks`/`recent`, and per-row lengths equal to the row's budget.
  }];
  let arguments = (ins Variadic<KVC_DenseCache>:$caches, Variadic<KVC_FloatTensor>:$queries,
                       KVC_CompressMethodAttr:$method,
                       OptionalAttr<F64Attr>:$ratio,
                       OptionalAttr<I64Attr>:$budget,
                       DefaultValuedAttr<KVC_BudgetModeAttr, "::mlir::kvc::BudgetMode::Uniform">:$budget_mode,
                       DefaultValuedAttr<I64Attr, "4">:$sinks,
                       DefaultValuedAttr<I64Attr, "64">:$recent);
  let results = (outs Variadic<KVC_RaggedCache>:$results);
  let assemblyFormat = [{
    `(` $caches `)` (`queries` `(` $queries^ `)`)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def KVC_VoteOp : KVC_Op<"vote", [Pure]> {
  let summary = "GVote: per-head kept sets and budgets voted by sampled future queries";
  let description = [{
    For every (batch, KV head) row of a dense cache, GVote chooses which keys to keep, and so
    the row's budget, from the data: the nucleus (attention mass `p`) of the current queries
    gives a step budget; `samples` hidden states drawn from the Gaussian `N(hidden_mean,
    diag(hidden_var))` of the normalized hidden states feeding the query projection are projected
    with `w_q` (`[Hq, D, d_model]`), rotated at future positions (RoPE, `rope_theta`, up to
    `n_future` ahead) and each votes for its top keys; the kept set is the union of the votes,
    the nucleus, the first `sinks` and the last `recent` tokens. Deterministic for a `seed`.

    ```mlir
    %kept, %counts = kvc.vote %cache, %q_current, %mean, %var, %wq
        {p = 0.95 : f64, samples = 8 : i64, seed = 0 : i64, sinks = 4 : i64, recent = 64 : i64}
        : !kvc.cache<...>, tensor<1x8x1x128xf32>, tensor<1024xf32>, tensor<1024xf32>, tensor<8x128x1024xf32>
        -> tensor<1x2x4096xi64>, tensor<1x2xi64>
    ```
    `kept[b, h, :counts[b, h]]` are the kept indices in ascending order (the rest is -1);
    `kvc.cache.select` turns them into a ragged cache. Runtime: include/kvc/Runtime/Vote.h.
  }];
  let arguments = (ins KVC_DenseCache:$cache, KVC_FloatTensor:$queries,
                       KVC_FloatTensor:$hidden_mean, KVC_FloatTensor:$hidden_var,
                       KVC_FloatTensor:$w_q,
                       DefaultValuedAttr<F64Attr, "0.95">:$p,
                       DefaultValuedAttr<I64Attr, "8">:$samples,
                       DefaultValuedAttr<I64Attr, "0">:$seed,
                       DefaultValuedAttr<I64Attr, "4">:$sinks,
                       DefaultValuedAttr<I64Attr, "64">:$recent,
                       DefaultValuedAttr<F64Attr, "10000.0">:$rope_theta,
                       DefaultValuedAttr<I64Attr, "512">:$n_future);
  let results = (outs RankedTensorOf<[I64]>:$kept, RankedTensorOf<[I64]>:$counts);
  let assemblyFormat = [{
    $cache `,` $queries `,` $hidden_mean `,` $hidden_var `,` $w_q attr-dict `:` type($cache) `,`
    type($queries) `,` type($hidden_mean) `,` type($hidden_var) `,` type($w_q) `->` type($kept) `,`
    type($counts)
  }];
  let hasVerifier = 1;
}

def KVC_CacheSelectOp : KVC_Op<"cache.select", [Pure]> {
  let summary = "Keep the listed pairs of each row of a dense cache, as a ragged cache";
  let description = [{
    `%r = kvc.cache.select %c, %kept, %counts` keeps, for row (b, h), the pairs
    `kept[b, h, 0 .. counts[b, h])` (token indices, in that order) with their exact keys and
    values; the result's lengths are `counts`. Pairs with it selection-based compression
    (GVote, AdaKV, ...) into the ragged-cache path.
  }];
  let arguments = (ins KVC_DenseCache:$cache, RankedTensorOf<[I64]>:$kept,
                       RankedTensorOf<[I64]>:$counts);
  let results = (outs KVC_RaggedCache:$result);
  let assemblyFormat = [{
    $cache `,` $kept `,` $counts attr-dict `:` type($cache) `,` type($kept) `,` type($counts) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Element encoding
//===----------------------------------------------------------------------===//

def KVC_EncodeOp : KVC_Op<"encode", [Pure]> {
  let summary = "Store a dense or ragged cache in the encoding of a #kvc.codec";
  let description = [{
    ```mlir
    %e = kvc.encode %c : !kvc.cache<tensor<1x8x?x128xf32>, tensor<1x8x?x128xf32>>
           -> !kvc.encoded_cache<tensor<1x8x?x128xf32>, tensor<1x8x?x128xf32>, #kvc.codec<...>>
    ```
    The result's codec says how: error-bounded (KVComp) or fixed-width (KIVI) quantization,
    grouping, entropy code and the unencoded recent window. A ragged input gives an encoded
    cache with `ragged = true` (each row keeps its own length). Encoding is lossy within the
    codec's bound; `kvc.cache.view` decodes.
  }];
  let arguments = (ins KVC_DenseOrRaggedCache:$cache);
  let results = (outs KVC_AnyCache:$result);
  let assemblyFormat = "$cache attr-dict `:` type($cache) `->` type($result)";
  let hasVerifier = 1;
}

#endif // KVC_OPS_TD
