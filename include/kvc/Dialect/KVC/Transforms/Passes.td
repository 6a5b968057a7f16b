//===- Passes.td - kvc dialect passes ----------------------*- tablegen -*-===//
#ifndef KVC_DIALECT_KVC_TRANSFORMS_PASSES_TD
#define KVC_DIALECT_KVC_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def KVCRaiseAttention : Pass<"kvc-raise-attention"> {
  let summary = "Raise decomposed Linalg attention to kvc.attention";
  let description = [{
    Finds `softmax(Q·Kᵀ·scale [+ mask]) · V` written with linalg/tensor/arith ops and replaces it
    with one `kvc.attention`. Recognised pieces:

    * Q·Kᵀ and P·V as `linalg.matmul`, `linalg.batch_matmul`, `linalg.matmul` with transposed
      indexing maps, or a `linalg.generic` contraction, on [.., S, D] operands of rank 2 to 4;
      Kᵀ may be an explicit `linalg.transpose` or folded into the contraction's maps;
    * the scale as an elementwise multiply or divide by a scalar constant (on the scores, or on
      Q before the product);
    * an optional additive mask (`linalg.generic`/`linalg.add` with a broadcast operand), added
      after the scale;
    * softmax as `linalg.softmax` over the last dimension, or its max / sub / exp / sum / div
      decomposition with the row max taken from -inf (without the max subtraction, exp can
      overflow where softmax does not, so such a chain is left alone);
    * GQA: K/V heads repeated by `linalg.broadcast` (or a broadcasting `linalg.generic`)
      followed by `tensor.collapse_shape`.

    Rank-2 and rank-3 attention is raised on [1, 1, S, D] / [1, B*H, S, D] views
    (`tensor.expand_shape`, then `tensor.collapse_shape` of the result).

    Anything that does not match exactly (a contraction over the wrong dimension, a softmax over
    the wrong dimension, a missing max subtraction, a non-constant scale, ...) is left untouched.
  }];
  let dependentDialects = ["::mlir::kvc::KVCDialect", "::mlir::tensor::TensorDialect"];
}

def KVCDecomposeAggregates : Pass<"kvc-decompose-aggregates"> {
  let summary = "Decompose aggregated Linalg ops (linalg.softmax, ...) into generics";
  let description = [{
    Calls `AggregatedOpInterface::decomposeOperation` on every op that implements it (upstream
    has the interface but no pass). The CPU pipeline runs it after `convert-kvc-to-linalg`, so
    that programs which still contain `linalg.softmax` (attention that was not raised, or a plain
    softmax) lower to loops.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect", "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect", "::mlir::tensor::TensorDialect"];
}

def KVCCompressCache : Pass<"kvc-compress-cache", "func::FuncOp"> {
  let summary = "Compress the KV caches a program carries from prefill to decode";
  let description = [{
    Finds the dense caches a function builds from prefill keys/values
    (`kvc.cache.from_tensors %k, %v`) and later extends and reads for decoding
    (`kvc.cache.append` -> `kvc.cache.view` -> `kvc.attention`), and rewrites them so that:

    * one `kvc.compress` (all such caches of the function together, so `budget-mode=pilot` can
      move budget between layers and heads) compresses each cache right after prefill, with the
      queries of the prefill `kvc.attention` that reads the same `%k, %v` as training queries;
    * decode appends the new tokens exactly to the resulting ragged caches;
    * decode attention reads the ragged cache (`lengths(...)` operand).

    Other consumers of the original cache (e.g. a returned `present` tensor) keep reading the
    uncompressed cache. Methods other than `streaming` need the prefill attention; without it
    the pass reports an error at the cache.

    `budget-mode=gvote` replaces `ratio`/`budget` (which must not be given) and `method`: each
    cache gets a `kvc.vote` (current query = the prefill's last query row; options `p`,
    `samples`, `seed`, `rope-theta`, `n-future`) and a `kvc.cache.select` of the voted pairs,
    kept exactly. GVote's query model comes from the program: the function arguments marked
    `kvc.gvote.hidden_mean = i`, `kvc.gvote.hidden_var = i` (`[d_model]`) and
    `kvc.gvote.w_q = i` (`[Hq, D, d_model]`) for the i-th cache (in program order).
  }];
  let options = [
    Option<"method", "method", "std::string", /*default=*/"\"sculpt\"",
           "streaming | snapkv | h2o | select_fit | sculpt">,
    Option<"ratio", "ratio", "double", /*default=*/"0.0",
           "Fraction of each head's pairs to KEEP, in (0, 1] (exclusive with budget)">,
    Option<"budget", "budget", "int64_t", /*default=*/"0",
           "Pairs to keep per (layer, KV head) (exclusive with ratio)">,
    Option<"budgetMode", "budget-mode", "std::string", /*default=*/"\"uniform\"",
           "uniform | pilot (redistribute the total budget over layers and heads) | gvote "
           "(GVote chooses each row's kept pairs and so its budget)">,
    Option<"p", "p", "double", /*default=*/"0.95", "gvote: nucleus attention mass">,
    Option<"samples", "samples", "int64_t", /*default=*/"8", "gvote: sampled future queries">,
    Option<"seed", "seed", "int64_t", /*default=*/"0", "gvote: sampling seed">,
    Option<"ropeTheta", "rope-theta", "double", /*default=*/"10000.0",
           "gvote: RoPE base of the layer's queries">,
    Option<"nFuture", "n-future", "int64_t", /*default=*/"512",
           "gvote: future positions the sampled queries are rotated to">,
    Option<"sinks", "sinks", "int64_t", /*default=*/"4", "First tokens of each row kept exactly">,
    Option<"recent", "recent", "int64_t", /*default=*/"64", "Last tokens of each row kept exactly">
  ];
  let dependentDialects = ["::mlir::kvc::KVCDialect"];
}

def KVCCompressPresent : Pass<"kvc-compress-present", "func::FuncOp"> {
  let summary = "Compress the present K/V outputs of an imported prefill graph";
  let description = [{
    For models imported from ONNX, where the prefill graph returns its KV cache as `present`
    outputs and a separate decode graph takes it back as `past` inputs. Each pair of function
    results named (`kvc.onnx.name`) like `present.N.key` / `present.N.value`
    (`present_key*` / `present_value*`, ...: a name containing "present" and "key", and the same
    name with "value") is replaced by its compressed cache: `t` pairs per (batch, KV head), where
    `t = round(ratio * S)` or `budget`, computed by one `kvc.compress` (uniform budget) with the
    queries of the prefill `kvc.attention` that reads the cache (found through GQA
    `repeat_kv` expansions: reshapes and head broadcasts). The result types shrink from
    `[B, Hkv, S, D]` to `[B, Hkv, t, D]`, so the **unmodified** decode graph consumes the
    compressed cache as a past of length `t`, with an all-ones attention mask over `t + 1`
    positions and the true position ids of the new tokens. RoPE is already in the cached keys.
    Selection methods keep exact pairs in their original order; `sculpt` returns synthesized
    pairs. Decomposed (legacy) exports need `--kvc-raise-attention` first.
  }];
  let options = [
    Option<"method", "method", "std::string", /*default=*/"\"snapkv\"",
           "streaming | snapkv | h2o | select_fit | sculpt">,
    Option<"ratio", "ratio", "double", /*default=*/"0.0",
           "Fraction of each head's pairs to KEEP, in (0, 1] (exclusive with budget)">,
    Option<"budget", "budget", "int64_t", /*default=*/"0",
           "Pairs to keep per (layer, KV head) (exclusive with ratio)">,
    Option<"sinks", "sinks", "int64_t", /*default=*/"4", "First tokens of each row kept exactly">,
    Option<"recent", "recent", "int64_t", /*default=*/"64", "Last tokens of each row kept exactly">
  ];
  let dependentDialects = ["::mlir::kvc::KVCDialect", "::mlir::tensor::TensorDialect"];
}

def KVCQuantizeCache : Pass<"kvc-quantize-cache", "func::FuncOp"> {
  let summary = "Store decode caches quantized (error-bounded KVComp or fixed-width KIVI)";
  let description = [{
    Every cache that decode appends to -- a dense cache built from prefill tensors, or a ragged
    cache produced by `kvc.compress` (so it composes: `kvc-compress-cache` then
    `kvc-quantize-cache` distils, then quantizes) -- is stored through `kvc.encode` with a
    `#kvc.codec` built from the options, and its appends, views and attention move to the
    encoded cache. The codec starts with `entropy = none`; `kvc-entropy-encode` turns on Huffman
    coding. `bits = 0` selects the error-bounded quantizer (step = error * group range);
    `bits = 2|3|4|8` the fixed-width KIVI baseline (per-channel keys, per-token values).
  }];
  let options = [
    Option<"keyError", "k-error", "double", /*default=*/"0.05",
           "Key error bound relative to the group range (bits = 0)">,
    Option<"valueError", "v-error", "double", /*default=*/"0.1",
           "Value error bound relative to the group range (bits = 0)">,
    Option<"bits", "bits", "unsigned", /*default=*/"0",
           "0: error-bounded (KVComp); 2, 3, 4, 8: fixed-width KIVI">,
    Option<"keyGroup", "key-group", "std::string", /*default=*/"\"block\"",
           "Key quantization groups: block (KVComp) or channel (KIVI; the default when bits > 0)">,
    Option<"keyBlock", "key-block", "unsigned", /*default=*/"64",
           "Tokens per key block (KIVI: per key group)">,
    Option<"valueBlock", "value-block", "unsigned", /*default=*/"128",
           "Tokens per value block (bitstream layout)">,
    Option<"recentKeys", "recent-keys", "unsigned", /*default=*/"128",
           "Newest keys kept unencoded">,
    Option<"recentValues", "recent-values", "unsigned", /*default=*/"256",
           "Newest values kept unencoded">
  ];
  let dependentDialects = ["::mlir::kvc::KVCDialect"];
}

def KVCEntropyEncode : Pass<"kvc-entropy-encode", "func::FuncOp"> {
  let summary = "Huffman-code the symbols of error-bounded encoded caches";
  let description = [{
    Sets `entropy = huffman` on every `kvc.encode` whose codec is error-bounded (`bits = 0`) and
    not yet entropy-coded, and updates the types of the appends, views and attention that read
    it. The codebook is built per layer from the prefill histogram and reused for appended
    tokens (escape path for unseen symbols). Fixed-width (KIVI) codecs are left as they are.
  }];
  let dependentDialects = ["::mlir::kvc::KVCDialect"];
}

#endif // KVC_DIALECT_KVC_TRANSFORMS_PASSES_TD
