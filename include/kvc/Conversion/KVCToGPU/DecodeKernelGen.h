//===- DecodeKernelGen.h - flash-decoding kernels as gpu-dialect text ------*- C++ -*-===//
//
// kvc's decode-attention kernels for the NVVM backend. The generator is plain C++ (no MLIR
// dependency) and returns a `gpu.module` in MLIR's textual form, specialised on the head dim,
// the query rows per KV head, the element type and the CTA shape. convert-kvc-to-gpu parses
// it into the module it lowers; kvc-bench and the lit tests use the same kernels.
//
// Kernel ABI (every memref is the default MLIR descriptor of a 1-D strided memref, i.e. five
// kernel parameters: allocated ptr, aligned ptr, offset, size, stride):
//
//   <prefix>_split(q, k, v, [lengths,] o_part, ml_part : memref<?x..>, skv : index,
//                  chunk : index)
//     grid (num_splits, Hkv, B), block (block_size). CTA (s, kvh, b) reads keys
//     [s*c, min((s+1)*c, L)) of KV row (b, kvh), where L = Skv and c = chunk (dense), or
//     L = lengths[b*Hkv+kvh] clamped to [0, Skv] and c = ceil(L / num_splits) rounded up to a
//     multiple of keys-per-iteration (ragged: each row is split by its own length; `chunk` is
//     unused), for all g*Sq query rows of that group, and writes for each
//     query row r = (b*Hkv+kvh)*g*Sq + qi (= the flattened (b, h, i) of the output) the
//     unnormalised partial o_part[(r*S + s)*D + d], its running max (log2 domain) and sum
//     ml_part[(r*S + s)*2 + {0,1}].
//   With fuseMerge the split kernel takes two more operands after ml_part,
//     counters : memref<?xi32> (B*Hkv, zero before the first launch; left zero) and
//     out : memref<?xT>, and the last CTA of each KV row to finish merges that row's splits
//     into `out` (as below); no merge kernel is emitted.
//   <prefix>_merge(o_part, ml_part, out : memref<?x..>, num_splits : index)
//     grid (B*Hq*Sq), block (decodeMergeThreads(D) = D*P): out[r*D + d] = sum_s w_s o_s /
//     sum_s w_s l_s with w_s = 2^(m_s - max m); rows with no keys give 0. Thread t merges
//     element t % D over the splits of slice t / D; slice 0 combines the P slices.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_CONVERSION_KVCTOGPU_DECODEKERNELGEN_H
#define KVC_CONVERSION_KVCTOGPU_DECODEKERNELGEN_H

#include <cstdint>
#include <string>

namespace mlir {
namespace kvc {

struct DecodeKernelConfig {
  int64_t headDim = 128;     // D (multiple of 8 with D/8 dividing 32: 8, 16, 32, 64, 128, 256)
  int64_t groupSize = 4;     // g = Hq / Hkv
  int64_t querySeq = 1;      // Sq (g * Sq query rows per CTA)
  std::string elemType = "bf16"; // "bf16" or "f16"
  int64_t blockSize = 128;   // threads per split CTA (multiple of 32, <= 1024)
  int64_t unroll = 4;        // keys per key-group per main-loop iteration
  double scaleLog2 = 0.0;    // scale * log2(e), folded into q
  bool ragged = false;       // per-(b, kv-head) lengths operand
  bool fuseMerge = false;    // the split kernel's last CTA per row merges (no merge kernel)
  int64_t minCtasPerSM = 0;  // > 0: nvvm.minctasm on the split kernel (caps registers)
  bool prefetch = true;      // software-pipelined main loop: the next tile's K/V loads are
                             // issued before this tile's math (2*unroll more 128-bit registers)
  int64_t l2PrefetchTiles = 0; // > 0: the CTA keeps this many main-loop tiles of K and V ahead
                               // in flight to L2 (cp.async.bulk.prefetch; no registers)
  std::string prefix = "kvc_decode"; // kernel name prefix
  std::string moduleName = "kvc_gpu"; // gpu.module symbol
};

/// Why `c` cannot be generated (head dim, element type, block size, unroll, query rows, the
/// cross-warp merge's shared memory), or "" if it can.
std::string validateDecodeKernelConfig(const DecodeKernelConfig &c);

/// Returns an empty string and sets `error` when the configuration is unsupported.
std::string generateDecodeKernels(const DecodeKernelConfig &cfg, std::string &error);

/// Threads of a merge kernel (dense, ragged and encoded): D * P, P = clamp(512 / D, 1, 8) slices
/// of the splits merged in parallel and combined through workgroup memory.
int64_t decodeMergeThreads(int64_t headDim);

/// Keys one split CTA consumes per main-loop iteration (block_size/32 * 32/(D/8) * unroll);
/// launchers round the per-split chunk up to a multiple of it.
int64_t decodeKeysPerIteration(const DecodeKernelConfig &cfg);

} // namespace kvc
} // namespace mlir

#endif
