//===- EncodedKernelGen.h - KVComp-encoded decode attention kernels --------*- C++ -*-===//
//
// Flash-decoding kernels that read a KVComp-encoded KV cache (libkvc_runtime's codec, GPU
// layout of docs/codec.md §1.3) directly: table-driven Huffman decode with the lookup tables in
// shared memory, dequantisation in registers, q.k, online softmax, p.V and a merge kernel. The
// decoded cache never reaches global memory. The fp16 recent windows are read as a dense tail.
// The generator is plain C++ that returns a `gpu.module` as MLIR text (like DecodeKernelGen).
//
// Specialisation: head dim D, query rows per KV head g*Sq, query/output type, key block KB and
// value block VB (codec grouping: keys one (min, step) per KB-token block, values per token),
// symbols per decode-loop iteration. One split CTA has D threads; a tile is one value block
// (VB tokens, VB % D == 0, VB % KB == 0).
//
// Device form of an encoded cache ("rows" = B*Hkv codec heads, row r = b*Hkv + kvh; all i32
// unless noted; every memref is MLIR's default 1-D descriptor = 5 kernel parameters):
//   rows   [R*8]  per row: T (tokens), NKt (encoded keys = NK*KB), NVt (encoded values = NV*VB),
//                 kblk0 (index of the row's first key block in the global key-block arrays),
//                 vblk0, krec0 (element offset of the row's key recent window in krec), vrec0,
//                 aux0 (offset of the row's Huffman side tables in aux)
//   aux    per row 128 words: keys at aux0, values at aux0+64: [0..16] first_code[l],
//                 [17..33] length_count[l], [34..50] first_index[l], [51] escape symbol,
//                 [52] raw_bits, [53] offset of the stream's sorted_symbols in syms,
//                 [54] length and [55] value of the escape's code (16 and -1 when there is
//                 no escape: never matches), [56..59] left-justified 16-bit limits
//                 (first_code[l] + length_count[l]) << (16 - l) of lengths l = 12..15,
//                 [60] the last index into the stream's sorted_symbols
//   syms   sorted_symbols of every stream (canonical order)
//   lut    per row 4096 words: the key LUT then the value LUT, 2^11 entries each, entry for
//                 the next 11 bits w = bits(float(symbol)) | code_length for codes of length
//                 <= 11 that are not the escape, 63 otherwise (slow path: canonical tables;
//                 KVC_ENC_LUT_* in kvc/Runtime/CUDAEncoded.h)
//   kw/vw  bitstream words (all rows), MSB-first, followed by >= 4 padding words (the decoder
//                 prefetches up to 3 words past a vector's end without bounds checks)
//   kbo/vbo  per global block: absolute word offset of the block in kw/vw
//   kvo [NKblocks*KB] / vvo [NVblocks*D]: bit offset of each vector from its block start
//   kmin/kstep [NKblocks] (f32), vmin/vstep [NVblocks*VB] (f32)
//   krec/vrec  f16 recent windows, token-major [tokens x D] per row
//
//   <prefix>_split(q: memref<?xQT>, rows, aux, syms, lut, kw, kbo, kvo, kmin, kstep, krec,
//                  vw, vbo, vvo, vmin, vstep, vrec, o_part: memref<?xf32>, ml: memref<?xf32>)
//     grid (num_splits, Hkv, B), block (D). Row r's tiles (value blocks) 0..ceil(T/VB)-1 are
//     cut into num_splits contiguous ranges of ceil(tiles/num_splits); CTA (s, kvh, b) writes,
//     for each query row qr = r*g*Sq + i, o_part[(qr*S + s)*D + d] (unnormalised) and
//     ml[(qr*S + s)*2 + {0, 1}] = (running max in the log2 domain, sum), exactly the dense
//     kernels' workspace, so the merge is the same.
//   <prefix>_merge(o_part, ml, out: memref<?xQT>, num_splits: index)   grid (B*Hq*Sq), block
//     decodeMergeThreads(D) (the dense merge, SplitMerge.h).
//
// Limits: word offsets and bit positions are 32-bit (each stream < 2^31 words); symbols <
// 2^16 (raw_bits <= 16) so a code plus its escaped raw symbol fits the 32-bit window.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_CONVERSION_KVCTOGPU_ENCODEDKERNELGEN_H
#define KVC_CONVERSION_KVCTOGPU_ENCODEDKERNELGEN_H

#include <cstdint>
#include <string>

namespace mlir {
namespace kvc {

struct EncodedKernelConfig {
  int64_t headDim = 128;          // D: threads per split CTA, multiple of 32, <= 1024
  int64_t groupSize = 4;          // g = Hq / Hkv
  int64_t querySeq = 1;           // Sq (g * Sq <= 16)
  std::string queryType = "bf16"; // query/output element type: bf16, f16 or f32
  int64_t keyBlock = 64;          // codec key block (tokens per (min, step))
  int64_t valueBlock = 128;       // codec value block (one tile), multiple of D and of keyBlock
  int64_t unroll = 8;             // symbols per decode-loop iteration: 1, 2, 4 or 8
  int64_t refillGroup = 4;        // symbols decoded per bit-window refill: 2 (a pair, checked
                                  // per lookup), 4 or 8 (chained lookups, one check); at most
                                  // `unroll` (encodedRefillGroup)
  int64_t minCtasPerSM = -1;      // > 0: nvvm.minctasm on the split kernel (caps registers);
                                  // 0: none; -1: 8, or none with `overlap` (where it applies)
  bool mma = false;               // dot products on tensor cores (mma.sync m16n8k16, f32
                                  // accumulation) over decoded chunks staged in shared memory
  bool lutL1 = false;             // grouped decoder: a 32-entry first-level table (top 5 bits,
                                  // one word per bank) before the 11-bit LUT
                                  // (encodedLutL1Applies)
  bool overlap = false;           // decode tile t's value columns and tile t+1's key rows in
                                  // one loop: two independent LUT chains per thread
                                  // (encodedOverlapApplies)
  int64_t maxSymbol = 65535;      // the codec's largest symbol (keys and values; mma needs
                                  // them exact in the query type)
  bool multiSymbol = false;       // decode with multi-symbol LUTs built in shared memory
                                  // (`unroll` is then unused):
  int64_t multiSymbolBits = 10;   //   index bits (8..11; 11 doubles the tables to 32 KiB)
  int64_t multiSymbolSlots = 3;   //   symbols per lookup (2 or 3)
  double scaleLog2 = 0.0;         // scale * log2(e), folded into q
  std::string prefix = "kvc_enc"; // kernel name prefix
  std::string moduleName = "kvc_gpu";
};

/// The refill group the kernels use: `refillGroup` capped at `unroll` (a group never spans
/// two loop iterations), 2 (the pair decoder) below that and with the multi-symbol decoder.
int64_t encodedRefillGroup(const EncodedKernelConfig &cfg);

/// Whether `mma` applies: bf16/f16 queries, g * Sq <= 8, value_block == head dim (a multiple
/// of 32), unroll 8 or the multi-symbol decoder, symbols up to 256 (bf16) or 2048 (f16).
/// Elsewhere the CUDA-core kernel is generated.
bool encodedMmaApplies(const EncodedKernelConfig &cfg);

/// Whether `lutL1` applies: the grouped decoder (unroll and refill group > 2), not with the
/// multi-symbol decoder.
bool encodedLutL1Applies(const EncodedKernelConfig &cfg);

/// Whether `overlap` applies: not with mma or the multi-symbol decoder, value_block == head
/// dim, unroll > 2 and a refill group > 2 (the grouped decoder). Elsewhere the phases run
/// one after the other.
bool encodedOverlapApplies(const EncodedKernelConfig &cfg);

/// Returns "" and sets `error` when the configuration is unsupported.
std::string generateEncodedKernels(const EncodedKernelConfig &cfg, std::string &error);

/// The name tag encoding the specialisation: _d<D>_g<g>_q<Sq>_<qt>_kb<KB>_vb<VB>_u<U>[_r<G>]_enc,
/// then _mma (tensor-core dot products), _ov (encoded-overlap), _l1 (encoded-lut-l1) and
/// _ms<bits>x<slots> (the
/// multi-symbol decoder);
/// _r<G>: the refill group, absent when it is 2 or with _ms
std::string encodedKernelTag(const EncodedKernelConfig &cfg);

} // namespace kvc
} // namespace mlir

#endif
