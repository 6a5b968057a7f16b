//===- Passes.td - kvc conversion passes -------------------*- tablegen -*-===//
#ifndef KVC_CONVERSION_PASSES_TD
#define KVC_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertKVCToLinalg : Pass<"convert-kvc-to-linalg", "ModuleOp"> {
  let summary = "Lower kvc.attention and the dense-cache ops to Linalg/tensor on tensors";
  let description = [{
    `kvc.attention` becomes a chain of `linalg.generic` ops: the Q·Kᵀ contraction (GQA through
    the `h floordiv G` indexing map, no copies of K/V), the score transform (scale, softcap,
    mask, causal and window masking), a numerically stable softmax (row max, `exp(s - max)`, row
    sum; fully masked rows give zeros, not NaN) and the P·V contraction with the normalisation.
    Scores, softmax and accumulators are f32 for f16/bf16/f32 inputs (f64 for f64).

    Dense caches are 1:N type-converted to their key and value tensors (function signatures,
    calls, returns and branches included): `kvc.cache.from_tensors` forwards its operands,
    `kvc.cache.append` becomes `tensor.concat` along the sequence, `kvc.cache.view` forwards.
    Ragged caches become (keys, values, lengths `[B, Hkv]` i64) with the capacity as sequence;
    appending writes each row's new pairs at its own length. `kvc.compress` becomes calls into
    libkvc_runtime.so (`kvc_rt_compress_*`, f32 caches), which the executing process must load
    (e.g. `mlir-runner -shared-libs=.../libkvc_runtime.so`).
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect", "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
                           "::mlir::bufferization::BufferizationDialect",
                           "::mlir::memref::MemRefDialect", "::mlir::func::FuncDialect"];
}

def ConvertKVCToGPU : Pass<"convert-kvc-to-gpu", "ModuleOp"> {
  let summary = "Lower decode-form kvc.attention to kvc's flash-decoding GPU kernels";
  let description = [{
    Each supported `kvc.attention` (Sq small, f16/bf16 Q/K/V of one element type, static head
    dim D with D/8 dividing 32, static Hq/Hkv/Sq, no mask/softcap/window, causal only with
    Sq = 1, optional `lengths(...)` for ragged caches) gets two kernels in the module's
    `gpu.module @kvc_gpu`, specialised on D, the group size g = Hq/Hkv, Sq, the element type,
    ragged or not, `block-size`, `unroll`, `prefetch`, `fuse-merge` and `min-ctas` (identical
    specialisations are shared):

    * `<tag>_split`: one CTA per (split, KV head, batch) handles all g*Sq query rows of its
      GQA group, so K/V are read once per group. Lanes load 8 elements (128 bits) of a key
      row; D/8 lanes form a key group whose q.k partial dots are reduced with xor
      `gpu.shuffle`s; each key group keeps an online softmax (f32, log2 domain) over its keys;
      key groups are merged with shuffles, warps through workgroup memory. It writes an
      unnormalised partial output, max and sum per (query row, split).
    * the merge (rows with no keys give 0): by default (`fuse-merge`) the last split CTA to
      finish for a KV row combines that row's splits, counted by a per-row arrival counter
      that the host code zeroes on the device before the launch; with `fuse-merge=false` a
      second kernel, `<tag>_merge`, does it with one CTA per query row.

    The op itself becomes host code on memrefs: `bufferization.to_buffer` of the operands,
    1-D casts, the workspaces (partials, and the fused merge's arrival counters) from
    libkvc_runtime's per-thread cache (`kvc_rt_gpu_workspace_*`: nothing is allocated, zeroed or
    freed per call once warm), the output (`gpu.alloc`, managed or device memory:
    `output-memory`), the split count (the `num-splits` option; else at run time the
    runtime's plan at the split kernel's measured occupancy: `kvc_rt_gpu_decode_splits` for
    dense and ragged caches, `kvc_rt_gpu_encoded_splits` for encoded ones) and
    the `gpu.launch_func`s (one with the fused merge, two without); the module gets
    `gpu.container_module`. The buffers must be device-accessible when that host code runs;
    kvc's AOT path instead launches the kernels through libkvc_runtime (kvc-bench).
    Unsupported attention ops are reported as errors.

    Attention whose K and V are the `kvc.cache.view` of a `!kvc.encoded_cache` (error-bounded
    codec, `entropy = huffman`, block key groups, token value groups) gets the encoded-cache
    kernels instead (EncodedKernelGen.h): Huffman decode from the bitstreams with the lookup
    tables in shared memory, dequantisation in registers, online softmax and p.V, plus the
    same merge. With `entropy = none` (KVComp quantization without Huffman coding; key
    symbols <= 31 and value symbols <= 15, i.e. error bounds above 1/31.5 and 1/15.5) it gets the
    fixed-width kernels instead (FixedWidthKernelGen.h): symbols at 5/4 bits in tensor-core
    fragment order, decoded with and/or plus one packed fma, dot products on mma.sync
    (bf16/f16 queries, g <= 8, Sq = 1, D a multiple of 32 up to 256). `kvc.cache.append` on
    such a cache becomes one runtime call (`kvc_rt_gpu_fixed_width_append_<t>`): the CPU codec
    encodes the blocks that fall due and the runtime copies what changed to the device (no
    store kernels for this form).

    Encoded caches are runtime handles in the host code (i64, as on the CPU path; the C ABI is
    "Encoded caches on the GPU" in include/kvc/Runtime/CompilerABI.h): a `!kvc.encoded_cache`
    function argument or result becomes an i64, `kvc.encode` of a `kvc.cache.from_tensors`
    becomes `kvc_rt_gpu_encode_<t>` (the CPU codec builds each row's codebooks, the device
    form is uploaded with room for `encoded-reserve` appended tokens per row), and attention
    takes the 16 device buffers of its kernels from the handle (`kvc_rt_gpu_encoded_buffer_*`).
    `kvc.cache.append` on an encoded cache becomes `append_begin`, a generated window-append
    kernel per stream (new tokens rounded to fp16 into each row's unencoded window), the
    generated KVComp store kernels (StoreKernelGen.h) on the blocks that fall due, and
    `append_end` (status check, row table). The handle is updated in place, so nothing may
    read an encoded cache value after it was appended to.
  }];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"128",
           "Threads per split CTA (a multiple of 32; 128 with prefetch measured fastest overall "
           "on H100 for D=128, docs/gpu.md)">,
    Option<"unroll", "unroll", "int64_t", /*default=*/"4",
           "Keys each key group loads per main-loop iteration">,
    Option<"numSplits", "num-splits", "int64_t", /*default=*/"0",
           "Splits of the KV sequence in the host code (0: chosen from the shape)">,
    Option<"fuseMerge", "fuse-merge", "bool", /*default=*/"true",
           "Dense/ragged kernels: the last split CTA of each KV row merges the splits (one "
           "launch instead of split + merge, measured on H100 in docs/gpu.md; false: a "
           "separate merge kernel)">,
    Option<"smallRows", "small-rows", "int64_t", /*default=*/"8",
           "Dense/ragged ops with D = 128 and g*Sq <= 4: when B*Hkv is at most this at run "
           "time, launch a second specialisation of the split kernel (block 256, unroll 2; "
           "2-8% faster at batch 1 on H100, slower at batch 8, docs/gpu.md); with a static "
           "batch only the one needed is built; 0: only the block-size/unroll kernel">,
    Option<"outputMemory", "output-memory", "std::string", /*default=*/"\"managed\"",
           "Where the attention output the host code returns lives: 'managed' (cuMemAllocManaged, "
           "readable on the host; the kernel's first writes fault its pages in) or 'device' "
           "(cuMemAlloc, for callers that keep results on the GPU; measured 35-100 us less per "
           "call on H100, docs/gpu.md)">,
    Option<"prefetch", "prefetch", "bool", /*default=*/"true",
           "Dense/ragged kernels: software-pipelined main loop (the next tile's K/V loads are "
           "issued before this tile's math; 2*unroll more 128-bit registers per thread)">,
    Option<"minCtas", "min-ctas", "int64_t", /*default=*/"0",
           "Dense/ragged kernels: CTAs per SM the split kernel must fit (nvvm.minctasm, caps "
           "registers; 0: ptxas decides)">,
    Option<"l2Prefetch", "l2-prefetch", "int64_t", /*default=*/"0",
           "Dense/ragged kernels: main-loop tiles of K and V each split CTA keeps requested "
           "ahead into L2 with cp.async.bulk.prefetch (sm_90+; 0: off)">,
    Option<"encodedUnroll", "encoded-unroll", "int64_t", /*default=*/"8",
           "Encoded caches: symbols per decode-loop iteration (1, 2, 4 or 8)">,
    Option<"encodedRefillGroup", "encoded-refill-group", "int64_t", /*default=*/"4",
           "Encoded caches: symbols decoded per refill of the 64-bit bit window: 2 (a pair, "
           "each lookup checked) or 4/8 (chained lookups with one check, the pair path when "
           "the group misses); capped at encoded-unroll; not used by the multi-symbol "
           "decoder">,
    Option<"encodedMinCtas", "encoded-min-ctas", "int64_t", /*default=*/"-1",
           "Encoded caches: CTAs per SM the split kernel must fit (nvvm.minctasm, caps "
           "registers: 8 gives 64 at D=128; 0: ptxas decides; -1: auto, 8 (measured fastest "
           "on H100 for the default kernel), or 0 with encoded-overlap where it applies)">,
    Option<"encodedMma", "encoded-mma", "bool", /*default=*/"false",
           "Encoded caches: dot products on tensor cores (each thread decodes its vector in two "
           "halves into shared memory, the warp multiplies them with mma.sync m16n8k16, f32 "
           "accumulation; where it applies: bf16/f16 queries, g*Sq <= 8, value_block == head "
           "dim, encoded-unroll=8 or encoded-multi-symbol, symbols exact in the query type "
           "(error bounds >= 1/256 for bf16, >= 1/2048 for f16); other ops keep the CUDA-core "
           "kernel). Measured slower on H100 except at batch 1 x 4k/16k (docs/gpu.md)">,
    Option<"fixedWidthMinCtas", "fixed-width-min-ctas", "int64_t", /*default=*/"-1",
           "Fixed-width (entropy = none) caches: CTAs per SM the split kernel's registers must "
           "allow (nvvm.minctasm); -1: 4 for D <= 128, else 2; 0: no cap">,
    Option<"fixedWidthRing", "fixed-width-ring", "int64_t", /*default=*/"-1",
           "Fixed-width caches: 2 = stream tiles through a two-tile cp.async ring in shared "
           "memory, 0 = load each tile's words straight into registers; -1: the ring where it "
           "fits in 48 KiB of static shared memory (D <= 128)">,
    Option<"fixedWidthFuseMerge", "fixed-width-fuse-merge", "bool", /*default=*/"false",
           "Fixed-width caches: the last CTA of each KV row merges its splits (no merge kernel; "
           "an i32 arrival counter per row in a runtime workspace)">,
    Option<"encodedLutL1", "encoded-lut-l1", "bool", /*default=*/"false",
           "Encoded caches, grouped decoder: look codes up in a 32-entry first-level table "
           "(the top 5 bits; one word per shared-memory bank, so the warp's lookups do not "
           "conflict) and in the 11-bit LUT only for lanes whose code is longer than 5 bits">,
    Option<"encodedOverlap", "encoded-overlap", "bool", /*default=*/"false",
           "Encoded caches: decode a tile's value columns and the next tile's key rows in one "
           "loop, two independent table-lookup chains per thread (where it applies: value_block "
           "== head dim, encoded-unroll and encoded-refill-group > 2, not where encoded-mma "
           "applies nor with encoded-multi-symbol; elsewhere the phases run one after the "
           "other)">,
    Option<"encodedMultiSymbol", "encoded-multi-symbol", "bool", /*default=*/"false",
           "Encoded caches: decode up to 3 Huffman codes per table lookup (10-bit multi-symbol "
           "LUTs built in shared memory from the row's single-symbol LUTs)">,
    Option<"encodedMSBits", "encoded-ms-bits", "int64_t", /*default=*/"10",
           "Encoded caches, multi-symbol decoder: LUT index bits (8..11)">,
    Option<"encodedMSSlots", "encoded-ms-slots", "int64_t", /*default=*/"3",
           "Encoded caches, multi-symbol decoder: symbols per lookup (2 or 3)">,
    Option<"encodedReserve", "encoded-reserve", "int64_t", /*default=*/"4096",
           "Encoded caches made by kvc.encode: tokens each row can take by kvc.cache.append "
           "(the device form is laid out for them up front)">
  ];
  let dependentDialects = ["::mlir::gpu::GPUDialect", "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect", "::mlir::vector::VectorDialect",
                           "::mlir::bufferization::BufferizationDialect",
                           "::mlir::NVVM::NVVMDialect", "::mlir::func::FuncDialect"];
}

#endif // KVC_CONVERSION_PASSES_TD
