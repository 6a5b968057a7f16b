//===- FixedWidthKernelGen.h - fixed-width KVComp decode attention kernels -*- C++ -*-===//
//
// Flash-decoding kernels for an error-bounded KVComp cache stored without entropy coding
// (`#kvc.codec<bits = 0, ..., entropy = none>`): the same quantization as the Huffman-coded
// cache (one (min, step) per key block, one per value token), with the symbols at fixed widths
// (keys 5 bits, values 4) in the register order of mma.sync m16n8k16 fragments. Each lane loads
// its own words (16-byte loads, through a two-tile cp.async ring in shared memory where it
// fits), turns two nibbles into a bf16x2/f16x2 pair with and/or plus one packed fma, and the
// dot products run on tensor cores with f32 accumulation. Each warp keeps its own online
// softmax over its 32 tokens of every 128-token tile (no CTA barrier in the tile loop); the
// fp16 recent window is read by the same loop with f16 mma operands. The design was measured
// first as a hand-written probe (bench/gpu/probe, docs/gpu.md "Fixed-width probe").
//
// Device form, kernel parameters and split rule: include/kvc/Runtime/CUDAFixedWidth.h.
// Split kernel: grid (S, Hkv, B), 128 threads; merge: the dense/encoded merge (SplitMerge.h).
// Specialisation: head dim D (a multiple of 32, <= 256), g * Sq <= 8 query rows per KV head
// (Sq = 1), bf16 or f16 queries, key block KB (32, 64 or 128).
//
//===----------------------------------------------------------------------===//
#ifndef KVC_CONVERSION_KVCTOGPU_FIXEDWIDTHKERNELGEN_H
#define KVC_CONVERSION_KVCTOGPU_FIXEDWIDTHKERNELGEN_H

#include <cstdint>
#include <string>

namespace mlir {
namespace kvc {

struct FixedWidthKernelConfig {
  int64_t headDim = 128;          // D: a multiple of 32, <= 256
  int64_t groupSize = 4;          // g = Hq / Hkv (g * Sq <= 8: the mma's n)
  int64_t querySeq = 1;           // Sq (1)
  std::string queryType = "bf16"; // query/output element type: bf16 or f16
  int64_t keyBlock = 64;          // codec key block: 32, 64 or 128 tokens per (min, step)
  int64_t minCtasPerSM = -1;      // nvvm.minctasm on the split kernel; -1: 4 (D <= 128) or 2
  int64_t ringStages = -1;        // cp.async ring: 2 tiles, 0 (registers, no prefetch);
                                  // -1: the ring where it fits in 48 KiB of shared memory
  double scaleLog2 = 0.0;         // softmax scale * log2(e)
  bool fuseMerge = false;         // the last CTA of a KV row merges its splits (SplitMerge.h):
                                  // no merge kernel; the split takes %cnt (i32 per row, zeroed
                                  // once) and %out; name tag _fw_fm
  std::string prefix = "kvc_fw";  // kernel name prefix
  std::string moduleName = "kvc_gpu";
};

/// The name tag of the kernels: `_d<D>_g<g>_q<Sq>_<type>_kb<KB>_fw`, `..._fw_fm` with the fused
/// merge (CUDAFixedWidth.h parses it).
std::string fixedWidthKernelTag(const FixedWidthKernelConfig &cfg);

/// Why this configuration has no fixed-width kernel, or "".
std::string fixedWidthUnsupportedReason(const FixedWidthKernelConfig &cfg);

/// The ring stages the kernels use (ringStages, or the default rule).
int fixedWidthRingStages(const FixedWidthKernelConfig &cfg);

/// A `gpu.module` with `<prefix>_split` and `<prefix>_merge`, as MLIR text; "" and `error` set
/// for an unsupported configuration.
std::string generateFixedWidthKernels(const FixedWidthKernelConfig &cfg, std::string &error);

} // namespace kvc
} // namespace mlir

#endif
