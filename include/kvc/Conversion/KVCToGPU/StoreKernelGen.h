//===- StoreKernelGen.h - KVComp block-encode (store) kernels --------------*- C++ -*-===//
//
// Store kernels for KVComp-encoded caches: each CTA quantizes one full block of new tokens
// (KB keys or VB values, already in the cache's fp16 form or rounded to it here) and
// Huffman-codes it with the stream's existing codebook into the device form that the
// encoded decode kernels read (EncodedKernelGen.h: kw/kbo/kvo/kmin/kstep, vw/vbo/vvo/vmin/
// vstep). The output is bit-identical to libkvc_runtime's CPU codec (lib/Runtime/Codec:
// EncodedStream::encodeBlocks): same fp16 rounding, same group extremes (including the sign
// of a zero minimum: the first minimum in token-major order wins, as std::min does), step =
// fp32(eps * (M - m)) computed in double, symbol = round_half_even((x - m) / step) in double,
// the same codes, escapes (escape code + raw symbol, MSB-first) and bit layout (vectors
// concatenated, blocks start on a word boundary, the last word zero-padded).
// The generator is plain C++ that returns gpu-dialect text (like DecodeKernelGen); it has no
// MLIR dependency, so kvc-bench also links it (`kvc-bench store gen`).
//
// Kernels (one CTA per job = one block to encode; BS = vectors_per_block * tpv threads):
//   <name>_kstore / <name>_vstore(
//       %src:   memref<?xET>   new tokens, token-major rows of D elements (ET = f16, bf16, f32;
//                              bf16/f32 are rounded to fp16 first, as the CPU codec does)
//       %jobs:  memref<?xi32>  4 per job: [0] element offset of the block's first token in
//                              %src, [1] global block index gb, [2] offset (in words) of the
//                              stream's encode table in %enc, [3] unused (0)
//       %enc:   memref<?xi32>  encode tables: per stream, (max_symbol + 1) pairs
//                              [2s] = code bits, right-aligned, [2s+1] = bit length; for a
//                              symbol without a code (length 0 or >= num_coded) the pair is
//                              (escape_code << raw_bits | s, escape_length + raw_bits)
//       %words: memref<?xi32>  kw / vw (the bitstream words of all rows)
//       %top:   memref<?xi32>  [0] = first free word of %words; blocks are allocated by an
//                              atomic add of their word count (so a launch may encode blocks
//                              of many rows; their placement order is not deterministic,
//                              decode only reads the per-block offsets)
//       %bo:    memref<?xi32>  kbo / vbo: bo[gb] = absolute word offset of the block
//       %vo:    memref<?xi32>  kvo [gb*KB + row] / vvo [gb*D + channel]: bit offset of each
//                              vector from the block start
//       %mins, %steps: memref<?xf32>  [gb*P + g], P = 1 (key block groups), D (key channel
//                              groups) or VB (values, one group per token)
//       %res:   memref<?xi32>  4 per job: [0] word offset (-1 if not stored), [1] words,
//                              [2] payload bits, [3] status: 0 ok, 1 non-finite input or
//                              |x| >= 65520 (nothing written, %top unchanged), 2 out of
//                              capacity (nothing written, %top advanced by the block's words)
//       %eps: f32   relative error bound; %maxsym: i32 the stream's max_symbol;
//       %cap: i32   capacity of %words in words; a block needs top + words + 4 <= cap (the
//                   decoder's 4 padding words))
//   grid (jobs), block (BS). Every memref is MLIR's default 1-D descriptor (5 parameters).
//
// Per CTA: (1) group extremes: each thread scans a strided subset in order, then a tree
// reduction over (value, flat index) pairs (the whole CTA for key block groups; segments of
// threads per group for key channel / value token groups);
// (2) params; (3) each thread owns a contiguous chunk of S = symbols_per_vector / tpv
// symbols of one vector and sums its code lengths (chunks of <= 16 symbols are unrolled and
// keep their codes in registers); (4) exclusive scan of the chunk lengths in
// stream order (vector-major) -> vector bit offsets and the block's size; (5) thread 0 takes
// the words with an atomic add; the block's words are zeroed; (6) each thread re-quantizes its
// chunk and writes its bits: words it covers completely with plain stores, its first and last
// (shared) words with atomic OR.
//
// Limits: vectors per block (KB for keys, D for values) <= 1024; symbols and word offsets are
// 32-bit; the host prepares jobs and tables and updates the row table around the launch
// (docs/gpu.md, "Store kernels").
//
//===----------------------------------------------------------------------===//
#ifndef KVC_CONVERSION_KVCTOGPU_STOREKERNELGEN_H
#define KVC_CONVERSION_KVCTOGPU_STOREKERNELGEN_H

#include <cstdint>
#include <string>

namespace mlir {
namespace kvc {

struct StoreKernelConfig {
  int64_t headDim = 128;            // D
  int64_t keyBlock = 64;            // KB (tokens per key block)
  int64_t valueBlock = 128;         // VB (tokens per value block)
  bool keyChannelGroups = false;    // key_grouping: false = one (min, step) per block (KVComp
                                    // BlockQuant), true = one per channel per block
  std::string elemType = "f16";     // element type of %src: f16, bf16 or f32
  int64_t targetThreads = 256;      // threads per CTA to aim for (tpv = threads per vector is
                                    // the largest power of two dividing the vector length with
                                    // vectors * tpv <= max(targetThreads, vectors))
  std::string prefix = "kvc_store"; // kernel name prefix (the tag is appended)
  std::string moduleName = "kvc_gpu";
};

/// Threads per CTA of the key (`values` = false) or value store kernel; 0 if unsupported.
int64_t storeKernelThreads(const StoreKernelConfig &cfg, bool values);

/// The tag encoding the specialisation: _d<D>_kb<KB>_vb<VB>_<et>_<kblk|kch>
std::string storeKernelTag(const StoreKernelConfig &cfg);

/// The two gpu.func kernels (<prefix><tag>_kstore, <prefix><tag>_vstore) as text, to be
/// placed inside a gpu.module. Returns "" and sets `error` for unsupported configurations.
std::string generateStoreKernelFuncs(const StoreKernelConfig &cfg, std::string &error);

/// The window-append kernel that precedes the store kernels when tokens are appended to an
/// encoded cache: copies n new tokens per row ([rows, n, D] of `elemType`, rounded to fp16
/// with round-to-nearest-even like the CPU codec) to each row's unencoded fp16 window:
///   <name>(%src: memref<?xET>, %rec: memref<?xf16>, %n: index, %off: index, %stride: index)
///   grid (n, rows), block (D); src[(r*n + t)*D + c] -> rec[off + r*stride + t*D + c].
/// Returns "" and sets `error` for unsupported configurations.
std::string generateWindowAppendKernelFunc(int64_t headDim, const std::string &elemType,
                                           const std::string &name, std::string &error);

/// The same kernels wrapped in `gpu.module @<moduleName>`.
std::string generateStoreKernels(const StoreKernelConfig &cfg, std::string &error);

/// Store kernels of fixed-width caches (`entropy = none`, CUDAFixedWidth.h): they quantize
/// new blocks in place in the cache's fp16 window and write their symbols straight into the
/// code tiles (the decode kernels' fragment order) and parameters, for
/// kvc_cuda_fw_gpu_append. Kernels <prefix>_d<D>_kb<KB>_fw_{kstore,vstore}:
///   (%rec: memref<?xf16>  the stream's window (krec / vrec): the job's tokens, token-major,
///                         raw fp16 on entry, their dequantized fp16 on return
///    %jobs: memref<?xi32> 8 per job: [0] its first token's slot in %rec (elements / D),
///                         [1] its first warp unit (32 tokens of a tile: G*4 + w; its words
///                         start at unit * U * 128, U = KU4 or VU4 of CUDAFixedWidth.h), or
///                         -1 (its tile is not reserved: only the window is rewritten),
///                         [2] index in %mins/%steps
///                         of its first (min, step), or -1, [3] eps (f32 bits), [4] max symbol
///                         (at most 31 for keys, 15 for values), [5] values: which 16-token half
///                         of its 32-token warp unit (0, 1), [6..7] 0
///    %words: memref<?xi32> kw / vw;  %mins, %steps: memref<?xf32> kmin/kstep or vmin/vstep
///    %res: memref<?xi32>  one status per job: 0 ok, 1 a non-finite input (nothing written))
/// grid (jobs), block (256). A key job is one key block (KB tokens: whole warp units); a value
/// job is 16 tokens (whole fragments). Jobs of one launch write disjoint words. Exact against
/// the CPU codec (QuantizeText.h). D a multiple of 32 up to 256, KB 32, 64 or 128.
/// A third kernel, <prefix>_d<D>_kb<KB>_fw_tokens(%kn, %vn, %krec, %vrec: memref<?xf16>,
/// %rows, %table: memref<?xi32>, %n, %off, %stride, %copy_rows: index), grid (rows * n: block
/// r * n + t), block (D), copies the new fp16 tokens of both streams (kn[(r*n + t)*D + c] -> rec[off + r*stride
/// + t*D + c]) and, if copy_rows != 0, table[0 .. 4*rows) into rows: an append in one launch.
std::string fixedWidthStoreKernelTag(int64_t headDim, int64_t keyBlock); // _d<D>_kb<KB>_fw
std::string generateFixedWidthStoreKernelFuncs(int64_t headDim, int64_t keyBlock,
                                               const std::string &prefix, std::string &error);

} // namespace kvc
} // namespace mlir

#endif
