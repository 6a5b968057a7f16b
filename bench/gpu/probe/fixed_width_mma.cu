// Design probe (not a kvc kernel): how fast can decode attention run on a cache that keeps
// KVComp's error-bounded quantization (K eps 0.05: symbols 0..20, V eps 0.1: 0..10, the same
// (min, step) groups: one per 64-token key block, one per value token) but stores the symbols
// at a FIXED width (keys 5 bits, values 4 bits) instead of Huffman-coding them?
//
// kvc's Huffman kernels are bound by per-symbol decode work (docs/gpu.md, "Encoded caches":
// ~21 instructions per symbol, 0.65-0.69x cuDNN). A fixed-width code can be laid out so each
// lane loads exactly the symbols of its mma.sync fragments: one 32-bit word holds 8 nibbles,
// two of which a lop3 turns into a bf16x2/f16x2 pair (0x4300|n = 128+n in bf16, 0x6400|n =
// 1024+n in f16; one packed fma removes the offset), so decoding costs ~1.4 instructions per
// value symbol and ~2.4 per key symbol (plus a bit plane for the 5th key bit) and the dot
// products run on tensor cores (f32 accumulation). This file measures that design on the H100
// against torch's cuDNN/flash SDPA at the issue's shapes (bench/gpu/probe/run-probe.sh). It is
// hand-written CUDA, like kvc-bench's hand-written read kernels for the bandwidth floor: a
// measurement of a format, not part of kvc's generated GPU path.
//
// Shapes: Sq = 1, Hkv = 8, g = 4 (Hq = 32), D = 128, bf16 queries and output. By default every
// token of a row is encoded and T is a multiple of the 128-token tile; with a window (check's
// window cases, bench --window 256) the newest tokens stay fp16 as in the codec: tokens
// [Tf, T), Tf = floor((T - window) / 128) * 128, keys and values (the codec's key window is
// shorter, 128-191 tokens against 256-383 for values, so the probe reads 2-3 key blocks as fp16
// that the codec encodes), the last tile partial and masked. Each window tile is a split of its own (a CTA beside the code splits) and runs the
// same warp loop with f16 mma operands loaded straight from the window.
//
// Device layout (per row r = b*Hkv + kvh, per 128-token tile t, per warp w of 4):
//   keys  kw: 20 words per lane as 5 uint4 [j4][lane] (a warp's uint4 loads are contiguous).
//         Words 0..15: the mma A fragment (16 tokens x 16 channels) idx = kk*2 + mt, kk the
//         16-channel step (0..7), mt the 16-token half of the warp's 32 tokens
//         (32w + 16mt + ...): nibble i (bits 4i..4i+3) = low 4 bits of a_{2i}, nibble 4+i
//         (bits 16+4i..) = of a_{2i+1} (PTX's m16n8k16 A layout: a0,a1 row g, cols 2tg,+1;
//         a2,a3 row g+8; a4..a7 the same at cols +8). Words 16..19: the 5th bits; word 16+p
//         covers fragments 4p..4p+3: bit 4f+i = bit 4 of a_{2i} of fragment 4p+f, bit 16+4f+i
//         = of a_{2i+1}.
//   values vw: 16 words per lane as 4 uint4: fragment idx = kk*8 + mt of A = S^T (rows =
//         channels 16mt + .., mt 0..7, cols = the warp's tokens 32w + 16kk + .., kk 0..1),
//         nibbles as for keys (FW_INDEP=0: idx = kk*2 + mt, the warp's channels 32w + 16mt +
//         .. over all 128 tokens 16kk + .., kk 0..7).
//   kmin/kstep [r][Tf/64], vmin/vstep [r][Tf] (f32); the window krec/vrec [r][T - Tf][D] fp16.
// Kernels: split grid (splits, Hkv, B), 128 threads; a CTA walks its contiguous tile range with
// flash-decoding's online softmax, each warp over its own 32 tokens of every tile (FW_INDEP:
// key mma -> scores -> p * vstep into the warp's shared rows -> value mma over all channels,
// no CTA barrier in the loop; the warps' states are combined like splits at the end); tile
// words stream through a 2-tile cp.async ring (FW_STAGES); merge grid (B*Hq), 128 threads.
// Macros pick the variants build-probe.sh builds (measured in docs/gpu.md, "Fixed-width probe").
//
// usage: fixed_width_mma check
//        fixed_width_mma bench [--batches 1,8,32] [--contexts 4096,16384,65536] [--reps 30]
//                              [--warmup 5] [--splits N] [--json FILE] [--window V]
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

namespace {

constexpr int D = 128, NH = 4, TILE = 128, KB = 64, NWARP = 4, THREADS = 128;
constexpr int KMAX = 20, VMAX = 10;            // max symbols at eps 0.05 / 0.1
constexpr int KU4 = 5, VU4 = 4;                // uint4 per lane per tile (keys, values)
#ifndef FW_STAGES
#define FW_STAGES 2 // 0: register prefetch of the next tile; N >= 2: a cp.async ring of N tiles
#endif
constexpr size_t kRingBytes = FW_STAGES * size_t(KU4 + VU4) * THREADS * 16;
#ifndef FW_INDEP
#define FW_INDEP 1 // 1: each warp keeps its own softmax state over its 32 tokens of a tile and
                   // multiplies them with all D value channels: no CTA barrier in the tile loop
#endif
#ifndef FW_FUSED
#define FW_FUSED 0 // 1: the last CTA of a row merges the splits (no merge launch; measured slower)
#endif
#ifndef FW_WINDOW
#define FW_WINDOW FW_INDEP // 1: the kernel handles fp16 window tiles (needs FW_INDEP)
#endif
#if FW_WINDOW && !FW_INDEP
#error "FW_WINDOW needs FW_INDEP"
#endif
#ifndef FW_KEEP_MAGIC
#define FW_KEEP_MAGIC 0 // 1: the mma operands keep the 128 / 1024 offsets, removed in f32 after
#endif
#ifndef FW_MIN_BLOCKS
#define FW_MIN_BLOCKS 4 // CTAs per SM the register allocation must allow (-DFW_MIN_BLOCKS=N)
#endif

#define CK(x)                                                                                 \
  do {                                                                                        \
    cudaError_t e_ = (x);                                                                     \
    if (e_ != cudaSuccess) {                                                                  \
      fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorName(e_), __FILE__,      \
              __LINE__, cudaGetErrorString(e_));                                              \
      exit(1);                                                                                \
    }                                                                                         \
  } while (0)

__device__ __forceinline__ uint32_t lop3AndOr(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t r; // (a & b) | c
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(r) : "r"(a), "r"(b), "r"(c));
  return r;
}
__device__ __forceinline__ uint32_t bf16x2MinusMagic(uint32_t x) { // x - (128, 128)
  uint32_t r;
  asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(r) : "r"(x), "r"(0x3F803F80u), "r"(0xC300C300u));
  return r;
}
__device__ __forceinline__ uint32_t f16x2MinusMagic(uint32_t x) { // x - (1024, 1024)
  uint32_t r;
  asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(r) : "r"(x), "r"(0x3C003C00u), "r"(0xE400E400u));
  return r;
}
// D += A * B on tensor cores, m16n8k16, f32 accumulation; TYPE is the A/B element type.
#define FW_MMA(TYPE, c, a, b0, b1)                                                             \
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." TYPE "." TYPE ".f32 {%0,%1,%2,%3}, "   \
               "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"                                        \
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])                                \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1))
__device__ __forceinline__ void mmaBf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                        uint32_t b1) {
  FW_MMA("bf16", c, a, b0, b1);
}
__device__ __forceinline__ void mmaF16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                       uint32_t b1) {
  FW_MMA("f16", c, a, b0, b1);
}
// bf16x2 -> f16x2 (the window's keys are fp16, so its mma takes f16 queries; |q| > 65504
// would become inf, which a probe with N(0, 1) queries never meets).
__device__ __forceinline__ uint32_t bf16x2ToF16x2(uint32_t x) {
  const float2 f = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162 *>(&x));
  const __half2 h = __float22half2_rn(f);
  return *reinterpret_cast<const uint32_t *>(&h);
}
// Channels c, c+1 of window token r (0 past the window's len tokens).
__device__ __forceinline__ uint32_t halfPair(const __half *rows, int r, int c, int len) {
  return r < len ? *reinterpret_cast<const uint32_t *>(rows + size_t(r) * D + c) : 0u;
}
// Channel c of window tokens k, k+1 as an f16x2 (0 past len).
__device__ __forceinline__ uint32_t tokenPair(const __half *rows, int k, int c, int len) {
  const uint32_t lo = k < len ? __half_as_ushort(rows[size_t(k) * D + c]) : 0u;
  const uint32_t hi = k + 1 < len ? __half_as_ushort(rows[size_t(k + 1) * D + c]) : 0u;
  return lo | hi << 16;
}
__device__ __forceinline__ uint32_t word(const uint4 &v, int c) {
  return c == 0 ? v.x : c == 1 ? v.y : c == 2 ? v.z : v.w;
}

// The split kernel. q [B][Hkv*NH][D] bf16; o_part [(qr*S + s)*D + c], ml [(qr*S + s)*2 + {0,1}]
// = (running max in the log2 domain, sum of p), qr = row*NH + n (kvc's dense workspace layout).
__global__ void __launch_bounds__(THREADS, FW_MIN_BLOCKS) fwSplit(const __nv_bfloat16 *__restrict__ q,
                                                   const uint4 *__restrict__ kw,
                                                   const uint4 *__restrict__ vw,
                                                   const float *__restrict__ kmin,
                                                   const float *__restrict__ kstep,
                                                   const float *__restrict__ vmin,
                                                   const float *__restrict__ vstep,
                                                   float *__restrict__ opart,
                                                   float *__restrict__ ml, int T, int Tf,
                                                   const __half *__restrict__ krec,
                                                   const __half *__restrict__ vrec, int S,
                                                   float scaleLog2,
                                                   int *__restrict__ counters,
                                                   __nv_bfloat16 *__restrict__ out) {
  const int s = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z, Hkv = gridDim.y;
  // Tokens [0, Tf) are fixed-width codes (tilesF tiles); [Tf, T) are the fp16 recent window
  // (krec/vrec [row][T - Tf][D]), the last tile possibly partial. Of the S splits, the last
  // W = tiles - tilesF take one window tile each (they run beside the code splits instead of
  // lengthening the last one); the first S - W cut the code tiles into contiguous ranges.
  const int row = b * Hkv + kvh, tilesF = Tf / TILE, tiles = (T + TILE - 1) / TILE;
  const int Sf = S - (tiles - tilesF), per = (tilesF + Sf - 1) / Sf, tailLen = T - Tf;
  const int t0 = s < Sf ? s * per : tilesF + (s - Sf);
  const int t1 = s < Sf ? min(tilesF, t0 + per) : t0 + 1;
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, tg = lane & 3;
  __shared__ float redMax[NWARP][8], redL[NWARP][8], redM[NWARP][8];
#if FW_INDEP
  // Per warp: p * vstep of its 32 tokens per head (pitch 20 words: the B loads hit 16 banks).
  __shared__ __align__(16) __half wsm[NWARP][NH][32 + 8];
  __shared__ float redAcc[NWARP][NH][D]; // the warps' value sums, combined at the end
  constexpr int VMT = 8;                 // channel m-tiles per warp (all D channels)
#else
  __shared__ __align__(16) __half wsm[NH][TILE + 8]; // p * vstep per (head, token); pitch 68 words
  constexpr int VMT = 2;                              // the warp's 32 channels
#endif

  // B fragments of the queries (n = head g, k = channel) and Qsum per head. With
  // FW_Q_SMEM the fragments are re-read from shared memory per tile (16 fewer registers).
#ifdef FW_Q_SMEM
  __shared__ uint32_t qsm[8][2][32];
#endif
#if FW_WINDOW
  __shared__ uint32_t qh16[8][2][32]; // the query fragments in f16, for the window's key mma
#endif
  uint32_t qb[8][2];
  float qsum = 0.f;
  const uint32_t *qrow = reinterpret_cast<const uint32_t *>(q + (size_t(row) * NH + min(g, NH - 1)) * D);
#pragma unroll
  for (int kk = 0; kk < 8; ++kk) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      uint32_t x = g < NH ? qrow[(16 * kk + 8 * h + 2 * tg) / 2] : 0u;
#if FW_WINDOW
      if (w == 0)
        qh16[kk][h][lane] = bf16x2ToF16x2(x);
#endif
#ifdef FW_Q_SMEM
      if (w == 0)
        qsm[kk][h][lane] = x;
#else
      qb[kk][h] = x;
#endif
      __nv_bfloat162 p = *reinterpret_cast<__nv_bfloat162 *>(&x);
      qsum += __bfloat162float(p.x) + __bfloat162float(p.y);
    }
  }
  qsum += __shfl_xor_sync(~0u, qsum, 1);
  qsum += __shfl_xor_sync(~0u, qsum, 2);
  const float qs[2] = {__shfl_sync(~0u, qsum, 8 * tg), __shfl_sync(~0u, qsum, 8 * tg + 4)};
#if defined(FW_Q_SMEM) || FW_WINDOW
  __syncthreads(); // warp 0's qsm / qh16 stores before every warp's first key mma
#endif
#ifdef FW_Q_SMEM
#define QFRAG(kk, h) qsm[kk][h][lane]
#else
#define QFRAG(kk, h) qb[kk][h]
#endif

  float mrun[2] = {-INFINITY, -INFINITY}, lsum[2] = {0.f, 0.f}, msum[2] = {0.f, 0.f};
  float wsum[2] = {0.f, 0.f}; // sum of the f16 value weights (FW_KEEP_MAGIC's correction)
  float acc[VMT][4] = {};
  const uint4 *kwRow = kw + (size_t(row) * tilesF * NWARP + w) * (KU4 * 32) + lane;
  const uint4 *vwRow = vw + (size_t(row) * tilesF * NWARP + w) * (VU4 * 32) + lane;
  constexpr size_t kTileU4 = size_t(NWARP) * KU4 * 32, vTileU4 = size_t(NWARP) * VU4 * 32;
#if FW_STAGES == 0
  // Registers: tile t+1's words are loaded once tile t's key phase is done (values of tile t
  // kept in vcur), so they are in flight during tile t's softmax and value phase.
  uint4 kr[KU4], vr[VU4], vcur[VU4];
  auto load = [&](int t) {
#pragma unroll
    for (int j = 0; j < KU4; ++j)
      kr[j] = __ldg(kwRow + t * kTileU4 + j * 32);
#pragma unroll
    for (int j = 0; j < VU4; ++j)
      vr[j] = __ldg(vwRow + t * vTileU4 + j * 32);
  };
  if (t0 < min(t1, tilesF))
    load(t0);
#define KWORD(j) word(kr[(j) >> 2], (j) & 3)
#define VWORD(j) word(vcur[(j) >> 2], (j) & 3)
#else
  // A ring of FW_STAGES tiles in shared memory filled with cp.async: each thread copies its
  // own 9 uint4 per tile and later reads only those, so no barrier orders the ring; tiles
  // t+1 .. t+FW_STAGES-1 are in flight while tile t computes.
  extern __shared__ uint4 ring[]; // [stage][KU4 + VU4][THREADS]
  const int tid = threadIdx.x;
  auto fetch = [&](int t) {
    if (t < min(t1, tilesF)) {
      uint4 *dst = ring + size_t(t % FW_STAGES) * (KU4 + VU4) * THREADS + tid;
#pragma unroll
      for (int j = 0; j < KU4 + VU4; ++j) {
        const uint4 *src = j < KU4 ? kwRow + t * kTileU4 + j * 32 : vwRow + t * vTileU4 + (j - KU4) * 32;
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(
                         uint32_t(__cvta_generic_to_shared(dst + j * THREADS))), "l"(src)
                     : "memory");
      }
    }
    asm volatile("cp.async.commit_group;" ::: "memory");
  };
  for (int i = 0; i < FW_STAGES - 1; ++i)
    fetch(t0 + i);
  const uint4 *cur = ring;
#define KWORD(j) word(cur[((j) >> 2) * THREADS + tid], (j) & 3)
#define VWORD(j) word(cur[(KU4 + ((j) >> 2)) * THREADS + tid], (j) & 3)
#endif
  // One tile of the warp loop; a fixed-width tile or (fixedTag false) a window tile. The two
  // kinds get their own loops below; the window path still raises the kernel's registers
  // (128 against 123 without it, FW_WINDOW=0), which costs the code tiles up to 3.6%.
  auto tileStep = [&](int t, auto fixedTag) {
    constexpr bool fixedTile = decltype(fixedTag)::value;
#if FW_STAGES > 0
    if constexpr (fixedTile) {
      asm volatile("cp.async.wait_group %0;" ::"n"(FW_STAGES - 2) : "memory"); // tile t landed
      cur = ring + size_t(t % FW_STAGES) * (KU4 + VU4) * THREADS;
      fetch(t + FW_STAGES - 1); // into the slot tile t-1 used
    }
#endif
    // Key phase: scores of the warp's 32 tokens for heads 2tg, 2tg+1 (valid when < NH).
    float sc[2][4] = {};
    if constexpr (fixedTile) {
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        const int idx = kk * 2 + mt, f4 = idx & 3;
        const uint32_t W = KWORD(idx);
        const uint32_t P = KWORD(16 + (idx >> 2));
        uint32_t a[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int sh = 4 * f4 + i - 4;
          const uint32_t hb = sh >= 0 ? P >> sh : P << -sh;
          a[i] = lop3AndOr(hb, 0x00100010u, lop3AndOr(W >> (4 * i), 0x000F000Fu, 0x43004300u));
#if !FW_KEEP_MAGIC
          a[i] = bf16x2MinusMagic(a[i]);
#endif
        }
        mmaBf16(sc[mt], a, QFRAG(kk, 0), QFRAG(kk, 1));
      }
    }
    const int kb = (t * TILE + 32 * w) / KB;
    const float km = kmin[size_t(row) * (Tf / KB) + kb], ks = kstep[size_t(row) * (Tf / KB) + kb];
    // FW_KEEP_MAGIC: the mma summed q * (128 + s): sum q*s = acc - 128 * Qsum.
    const float kOff = FW_KEEP_MAGIC ? fmaf(-128.f, ks, km) : km;
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        sc[mt][e] = scaleLog2 * fmaf(ks, sc[mt][e], kOff * qs[e & 1]);
    }
#if FW_WINDOW
    else {
      // A tile of the fp16 window: keys as the A operand straight from memory (f16 pairs of
      // adjacent channels), the queries converted to f16; tokens past T score -inf.
      const __half *kt = krec + size_t(row) * tailLen * D;
      const int base = t * TILE - Tf + 32 * w;
#pragma unroll 4 // registers: the loads of 4 channel steps in flight
      for (int kk = 0; kk < 8; ++kk)
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
          const int r0 = base + 16 * mt + g, r1 = r0 + 8, c = 16 * kk + 2 * tg;
          const uint32_t a[4] = {halfPair(kt, r0, c, tailLen), halfPair(kt, r1, c, tailLen),
                                 halfPair(kt, r0, c + 8, tailLen), halfPair(kt, r1, c + 8, tailLen)};
          mmaF16(sc[mt], a, qh16[kk][0][lane], qh16[kk][1][lane]);
        }
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          sc[mt][e] = base + 16 * mt + g + (e >= 2 ? 8 : 0) < tailLen ? scaleLog2 * sc[mt][e]
                                                                        : -INFINITY;
    }
#endif
    float tmax[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        tmax[e & 1] = fmaxf(tmax[e & 1], sc[mt][e]);
#pragma unroll
    for (int h = 0; h < 2; ++h)
      for (int o = 4; o < 32; o <<= 1)
        tmax[h] = fmaxf(tmax[h], __shfl_xor_sync(~0u, tmax[h], o));
#if !FW_INDEP
    if (g == 0) {
      redMax[w][2 * tg] = tmax[0];
      redMax[w][2 * tg + 1] = tmax[1];
    }
    __syncthreads();
#endif
    float alpha[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float m = fmaxf(mrun[h], tmax[h]);
#if !FW_INDEP
#pragma unroll
      for (int ww = 0; ww < NWARP; ++ww)
        m = fmaxf(m, redMax[ww][2 * tg + h]);
#endif
      // A window tile can be all past T for this warp: nothing seen yet keeps the zeros.
      alpha[h] = fixedTile || m != -INFINITY ? exp2f(mrun[h] - m) : 1.f;
      mrun[h] = m;
      lsum[h] *= alpha[h];
      msum[h] *= alpha[h];
      wsum[h] *= alpha[h];
    }
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int h = e & 1, n = 2 * tg + h, r = 32 * w + 16 * mt + g + (e >= 2 ? 8 : 0);
        const size_t tok = size_t(row) * Tf + size_t(t) * TILE + r;
        const float p =
            fixedTile || sc[mt][e] != -INFINITY ? exp2f(sc[mt][e] - mrun[h]) : 0.f;
        lsum[h] += p;
        // Window values are plain fp16: min 0, step 1.
        if constexpr (fixedTile)
          msum[h] = fmaf(p, vmin[tok], msum[h]);
        const __half w16 = __float2half_rn(fixedTile ? p * vstep[tok] : p);
        if constexpr (fixedTile) // what the value mma weighs the 1024 offset with (codes only)
          wsum[h] += __half2float(w16);
#if FW_INDEP
        if (n < NH)
          wsm[w][n][r - 32 * w] = w16;
#else
        if (n < NH)
          wsm[n][r] = w16;
#endif
      }
#pragma unroll
    for (int mt = 0; mt < VMT; ++mt)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        acc[mt][e] *= alpha[e & 1];
#if FW_INDEP
    __syncwarp();
#else
    __syncthreads();
#endif
#if FW_STAGES == 0
    if constexpr (fixedTile) {
#pragma unroll
      for (int j = 0; j < VU4; ++j)
        vcur[j] = vr[j];
      if (t + 1 < min(t1, tilesF))
        load(t + 1);
    }
#endif
    // Value phase: acc[c][n] += sum_t S[t][c] * (p_tn * vstep_t), A = S^T (channel rows).
    // FW_INDEP: the warp's 32 tokens (2 k-steps) x all channels (8 m-tiles); else all 128
    // tokens (8 k-steps) x the warp's 32 channels (2 m-tiles). Fragment idx = kk * VMT + mt.
#pragma unroll
    for (int kk = 0; kk < 16 / VMT; ++kk) {
      uint32_t b0 = 0u, b1 = 0u;
      if (g < NH) {
#if FW_INDEP
        b0 = *reinterpret_cast<const uint32_t *>(&wsm[w][g][16 * kk + 2 * tg]);
        b1 = *reinterpret_cast<const uint32_t *>(&wsm[w][g][16 * kk + 8 + 2 * tg]);
#else
        b0 = *reinterpret_cast<const uint32_t *>(&wsm[g][16 * kk + 2 * tg]);
        b1 = *reinterpret_cast<const uint32_t *>(&wsm[g][16 * kk + 8 + 2 * tg]);
#endif
      }
#if FW_WINDOW
      if constexpr (!fixedTile) {
        // The window's values: A = V^T, pairs of adjacent tokens of one channel.
        const __half *vt = vrec + size_t(row) * tailLen * D;
        const int k0 = t * TILE - Tf + 32 * w + 16 * kk + 2 * tg;
#pragma unroll
        for (int mt = 0; mt < VMT; ++mt) {
          const int c0 = 16 * mt + g, c1 = c0 + 8;
          const uint32_t a[4] = {tokenPair(vt, k0, c0, tailLen), tokenPair(vt, k0, c1, tailLen),
                                 tokenPair(vt, k0 + 8, c0, tailLen),
                                 tokenPair(vt, k0 + 8, c1, tailLen)};
          mmaF16(acc[mt], a, b0, b1);
        }
      } else {
#endif
#pragma unroll
      for (int mt = 0; mt < VMT; ++mt) {
        const int idx = kk * VMT + mt;
        const uint32_t W = VWORD(idx);
        uint32_t a[4];
#pragma unroll
        for (int i = 0; i < 4; ++i)
        {
          a[i] = lop3AndOr(W >> (4 * i), 0x000F000Fu, 0x64006400u);
#if !FW_KEEP_MAGIC
          a[i] = f16x2MinusMagic(a[i]);
#endif
        }
        mmaF16(acc[mt], a, b0, b1);
      }
#if FW_WINDOW
      }
#endif
    }
#if FW_INDEP
    __syncwarp(); // the warp's wsm is rewritten by the next tile
#else
    __syncthreads(); // wsm and redMax are rewritten by the next tile
#endif
  };
  for (int t = t0; t < min(t1, tilesF); ++t)
    tileStep(t, std::true_type{});
#if FW_WINDOW
  for (int t = max(t0, tilesF); t < t1; ++t)
    tileStep(t, std::false_type{});
#endif
  // The row sums over all lanes and warps.
#pragma unroll
  for (int h = 0; h < 2; ++h)
    for (int o = 4; o < 32; o <<= 1) {
      lsum[h] += __shfl_xor_sync(~0u, lsum[h], o);
      msum[h] += __shfl_xor_sync(~0u, msum[h], o);
      wsum[h] += __shfl_xor_sync(~0u, wsum[h], o);
    }
  if (FW_KEEP_MAGIC) // the value mma summed W * (1024 + s)
    for (int h = 0; h < 2; ++h)
      msum[h] = fmaf(-1024.f, wsum[h], msum[h]);
#if FW_INDEP
  // Combine the warps' states like splits: M = max of the warps' maxima, each warp's sums and
  // value accumulators scaled by exp2(m_w - M).
  if (g == 0)
    for (int h = 0; h < 2; ++h) {
      redMax[w][2 * tg + h] = mrun[h];
      redL[w][2 * tg + h] = lsum[h];
      redM[w][2 * tg + h] = msum[h];
    }
  __syncthreads();
  float f[2];
  for (int h = 0; h < 2; ++h) {
    float m = -INFINITY;
    for (int ww = 0; ww < NWARP; ++ww)
      m = fmaxf(m, redMax[ww][2 * tg + h]);
    f[h] = mrun[h] == -INFINITY ? 0.f : exp2f(mrun[h] - m);
  }
#pragma unroll
  for (int mt = 0; mt < VMT; ++mt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int h = e & 1, n = 2 * tg + h, c = 16 * mt + g + (e >= 2 ? 8 : 0);
      if (n < NH)
        redAcc[w][n][c] = acc[mt][e] * f[h];
    }
  __syncthreads();
  {
    const int c = threadIdx.x; // THREADS == D
    for (int n = 0; n < NH; ++n) {
      float m = -INFINITY, L = 0.f, Ms = 0.f, o = 0.f;
      for (int ww = 0; ww < NWARP; ++ww)
        m = fmaxf(m, redMax[ww][n]);
      for (int ww = 0; ww < NWARP; ++ww) {
        const float fw = redMax[ww][n] == -INFINITY ? 0.f : exp2f(redMax[ww][n] - m);
        L = fmaf(fw, redL[ww][n], L);
        Ms = fmaf(fw, redM[ww][n], Ms);
        o += redAcc[ww][n][c];
      }
      const size_t i = (size_t(row) * NH + n) * S + s;
      opart[i * D + c] = o + Ms;
      if (c == 0) {
        ml[2 * i] = m;
        ml[2 * i + 1] = L;
      }
    }
  }
#else
  if (g == 0)
    for (int h = 0; h < 2; ++h) {
      redL[w][2 * tg + h] = lsum[h];
      redM[w][2 * tg + h] = msum[h];
    }
  __syncthreads();
  float L[2] = {0.f, 0.f}, M[2] = {0.f, 0.f};
  for (int h = 0; h < 2; ++h)
    for (int ww = 0; ww < NWARP; ++ww) {
      L[h] += redL[ww][2 * tg + h];
      M[h] += redM[ww][2 * tg + h];
    }
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int h = e & 1, n = 2 * tg + h, c = 32 * w + 16 * mt + g + (e >= 2 ? 8 : 0);
      if (n < NH)
        opart[((size_t(row) * NH + n) * S + s) * D + c] = acc[mt][e] + M[h];
    }
  if (g == 0 && w == 0)
    for (int h = 0; h < 2; ++h)
      if (2 * tg + h < NH) {
        const size_t i = (size_t(row) * NH + 2 * tg + h) * S + s;
        ml[2 * i] = mrun[h];
        ml[2 * i + 1] = L[h];
      }
#endif
#if FW_FUSED
  // The last CTA of the row to finish merges its splits (threadFenceReduction pattern); the
  // counter goes back to 0 for the next launch.
  __shared__ int amLast;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0)
    amLast = atomicAdd(&counters[row], 1) == S - 1;
  __syncthreads();
  if (amLast) {
    __threadfence();
    // One online pass over the splits for the NH heads at once (independent chains; the
    // loads of later splits are issued ahead).
    const int c = threadIdx.x;
    const size_t q0 = size_t(row) * NH;
    float m[NH], l[NH], o[NH];
#pragma unroll
    for (int n = 0; n < NH; ++n) {
      m[n] = -INFINITY;
      l[n] = 0.f;
      o[n] = 0.f;
    }
#pragma unroll 4
    for (int ss = 0; ss < S; ++ss)
#pragma unroll
      for (int n = 0; n < NH; ++n) {
        const size_t i = (q0 + n) * S + ss;
        const float ms = __ldcg(&ml[2 * i]), ls = __ldcg(&ml[2 * i + 1]),
                    os = __ldcg(&opart[i * D + c]);
        if (ms == -INFINITY)
          continue;
        const float mn = fmaxf(m[n], ms), a = exp2f(m[n] - mn), b = exp2f(ms - mn);
        l[n] = fmaf(l[n], a, b * ls);
        o[n] = fmaf(o[n], a, b * os);
        m[n] = mn;
      }
#pragma unroll
    for (int n = 0; n < NH; ++n)
      out[(q0 + n) * D + c] = __float2bfloat16_rn(o[n] / l[n]);
    if (threadIdx.x == 0)
      counters[row] = 0;
  }
#endif
}

__global__ void fwMerge(const float *__restrict__ opart, const float *__restrict__ ml,
                        __nv_bfloat16 *__restrict__ out, int S) {
  const size_t qr = blockIdx.x;
  const int c = threadIdx.x;
  float m = -INFINITY;
  for (int s = 0; s < S; ++s)
    m = fmaxf(m, ml[2 * (qr * S + s)]);
  float l = 0.f, o = 0.f;
  for (int s = 0; s < S; ++s) {
    const float ms = ml[2 * (qr * S + s)];
    const float f = ms == -INFINITY ? 0.f : exp2f(ms - m);
    l = fmaf(f, ml[2 * (qr * S + s) + 1], l);
    o = fmaf(f, opart[(qr * S + s) * D + c], o);
  }
  out[qr * D + c] = __float2bfloat16_rn(o / l);
}

// Random device data for the timed shapes: a 32-bit integer hash of the element index.
__device__ __forceinline__ uint32_t mix32(uint32_t x) {
  x ^= x >> 16; x *= 0x7FEB352Du; x ^= x >> 15; x *= 0x846CA68Bu; x ^= x >> 16;
  return x;
}
// lo + (hi - lo) * u, u uniform in [0, 1) from the hash's top 24 bits.
__device__ __forceinline__ float uniformIn(uint32_t x, float lo, float hi) {
  return lo + (hi - lo) * float(x >> 8) * (1.f / 16777216.f);
}
#define FW_GRID_STRIDE(i, n)                                                                    \
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < (n);                     \
       i += size_t(gridDim.x) * blockDim.x)
// Any 32-bit word is a valid fixed-width encoding.
__global__ void fillWords(uint32_t *p, size_t n, uint32_t seed) {
  FW_GRID_STRIDE(i, n) p[i] = mix32(uint32_t(i) * 0x9E3779B9u ^ seed ^ uint32_t(i >> 32) * 0x85EBCA6Bu);
}
__global__ void fillHalves(__half *p, size_t n, float lo, float hi, uint32_t seed) {
  FW_GRID_STRIDE(i, n) p[i] = __float2half_rn(uniformIn(mix32(uint32_t(i) * 0x9E3779B9u ^ seed), lo, hi));
}
__global__ void fillParams(float *p, size_t n, float lo, float hi, uint32_t seed) {
  FW_GRID_STRIDE(i, n) p[i] = uniformIn(mix32(uint32_t(i) * 0x9E3779B9u ^ seed), lo, hi);
}

// ---- host: the layout ----------------------------------------------------------------------
// Element (token or channel index) of A fragment element e (0..7) for lane: rows g / g+8, cols
// 2tg + {0,1} / + 8.
void fragPos(int lane, int e, int &rowOff, int &colOff) {
  const int g = lane >> 2, tg = lane & 3;
  rowOff = g + ((e >> 1) & 1) * 8;
  colOff = 2 * tg + (e & 1) + (e >> 2) * 8;
}
// a_{2i} -> nibble i, a_{2i+1} -> nibble 4 + i: element e sits at bit base nibBit(e).
int nibBit(int e) { return (e & 1) ? 16 + 4 * (e >> 1) : 4 * (e >> 1); }

struct HostCache { // the fixed-width part: T = its tokens per row (a multiple of TILE)
  int B = 0, Hkv = 0, T = 0;
  std::vector<uint32_t> kw, vw;    // as uint32 (uint4 = 4 consecutive words)
  std::vector<float> kmin, kstep, vmin, vstep;
  size_t kwWords() const { return size_t(B) * Hkv * (T / TILE) * NWARP * KU4 * 32 * 4; }
  size_t vwWords() const { return size_t(B) * Hkv * (T / TILE) * NWARP * VU4 * 32 * 4; }
};
// Word j (0..4*U-1) of lane `lane` in warp block `blk` (uint4 [j4][lane]).
size_t wordIndex(size_t blk, int U, int j, int lane) {
  return blk * (U * 32 * 4) + (size_t(j >> 2) * 32 + lane) * 4 + (j & 3);
}
// ks[row][t][c] (0..31), vs[row][t][c] (0..15) -> words.
void pack(HostCache &hc, const std::vector<uint8_t> &ks, const std::vector<uint8_t> &vs) {
  const int tiles = hc.T / TILE, R = hc.B * hc.Hkv;
  hc.kw.assign(hc.kwWords(), 0u);
  hc.vw.assign(hc.vwWords(), 0u);
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < tiles; ++t)
      for (int w = 0; w < NWARP; ++w) {
        const size_t blk = (size_t(r) * tiles + t) * NWARP + w;
        for (int lane = 0; lane < 32; ++lane)
          for (int idx = 0; idx < 16; ++idx)
            for (int e = 0; e < 8; ++e) {
              int ro, co;
              fragPos(lane, e, ro, co);
              // keys: A rows = the warp's tokens (m-tile idx % 2), cols = channels (k-step idx / 2)
              const int tok = t * TILE + 32 * w + 16 * (idx & 1) + ro, ch = 16 * (idx >> 1) + co;
              const uint32_t sk = ks[(size_t(r) * hc.T + tok) * D + ch];
              hc.kw[wordIndex(blk, KU4, idx, lane)] |= (sk & 15u) << nibBit(e);
              const int pb = (e >> 1) + 4 * (idx & 3) + (e & 1) * 16;
              hc.kw[wordIndex(blk, KU4, 16 + (idx >> 2), lane)] |= (sk >> 4 & 1u) << pb;
              // values: A = S^T, rows = channels, cols = tokens; idx = kk * VMT + mt
#if FW_INDEP
              const int vch = 16 * (idx % 8) + ro, vtok = t * TILE + 32 * w + 16 * (idx / 8) + co;
#else
              const int vch = 32 * w + 16 * (idx % 2) + ro, vtok = t * TILE + 16 * (idx / 2) + co;
#endif
              const uint32_t sv = vs[(size_t(r) * hc.T + vtok) * D + vch];
              hc.vw[wordIndex(blk, VU4, idx, lane)] |= (sv & 15u) << nibBit(e);
            }
      }
}

// Tokens per row in fixed-width codes: the codec's encoded values, floor((T - window) / 128) *
// 128 (0 if T < 128 + window); the rest is the fp16 window. window 0: every whole tile.
int fixedTokens(int T, int window) {
  return T >= TILE + window ? (T - window) / TILE * TILE : 0;
}

uint32_t rngState = 12345u;
uint32_t rnd() {
  rngState ^= rngState << 13; rngState ^= rngState >> 17; rngState ^= rngState << 5;
  return rngState;
}
float urand() { return float(rnd() >> 8) * (1.f / 16777216.f); }
float nrand() { // Box-Muller
  float u1 = std::max(urand(), 1e-7f), u2 = urand();
  return std::sqrt(-2.f * std::log(u1)) * std::cos(6.2831853f * u2);
}

struct DeviceCache {
  int T = 0, Tf = 0; // tokens per row; of them in fixed-width codes (the rest: fp16 window)
  uint4 *kw = nullptr, *vw = nullptr;
  float *kmin = nullptr, *kstep = nullptr, *vmin = nullptr, *vstep = nullptr;
  __half *krec = nullptr, *vrec = nullptr; // [row][T - Tf][D]
  int *counters = nullptr; // per row, for the fused merge (zero between launches)
  // Elements: uint4 of kw / vw, key (min, step) pairs, value pairs, window fp16 per stream.
  size_t kwU4 = 0, vwU4 = 0, kParams = 0, vParams = 0, window = 0;
  size_t bytes = 0;
  void free() {
    for (void *p : {(void *)kw, (void *)vw, (void *)kmin, (void *)kstep, (void *)vmin,
                    (void *)vstep, (void *)krec, (void *)vrec, (void *)counters})
      cudaFree(p);
  }
};
DeviceCache allocDevice(int B, int Hkv, int T, int Tf) {
  DeviceCache d;
  d.T = T;
  d.Tf = Tf;
  const size_t tiles = Tf / TILE, R = size_t(B) * Hkv;
  d.kwU4 = R * tiles * NWARP * KU4 * 32;
  d.vwU4 = R * tiles * NWARP * VU4 * 32;
  d.kParams = R * (Tf / KB);
  d.vParams = R * Tf;
  d.window = R * size_t(T - Tf) * D;
  // cudaMalloc(0) returns a null pointer, which the kernel never reads then.
  CK(cudaMalloc(&d.kw, d.kwU4 * 16));
  CK(cudaMalloc(&d.vw, d.vwU4 * 16));
  CK(cudaMalloc(&d.kmin, d.kParams * 4));
  CK(cudaMalloc(&d.kstep, d.kParams * 4));
  CK(cudaMalloc(&d.vmin, d.vParams * 4));
  CK(cudaMalloc(&d.vstep, d.vParams * 4));
  CK(cudaMalloc(&d.krec, d.window * 2));
  CK(cudaMalloc(&d.vrec, d.window * 2));
  CK(cudaMalloc(&d.counters, R * 4));
  CK(cudaMemset(d.counters, 0, R * 4));
  d.bytes = (d.kwU4 + d.vwU4) * 16 + 2 * (d.kParams + d.vParams) * 4 + 2 * d.window * 2;
  return d;
}

// Static plus dynamic (ring) shared memory above 48 KiB needs the opt-in (called after the
// argument checks: no GPU is touched before them).
void setRingLimit() {
  cudaFuncAttributes attr;
  CK(cudaFuncGetAttributes(&attr, fwSplit));
  if (attr.sharedSizeBytes + kRingBytes > 48 * 1024)
    CK(cudaFuncSetAttribute(fwSplit, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kRingBytes)));
}

int residentCtas() {
  int dev = 0, sms = 0, per = 0;
  CK(cudaGetDevice(&dev));
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per, fwSplit, THREADS, kRingBytes));
  return sms * per;
}
// kvc's encoded plan rule (kvc_cuda_encoded_make_plan): the smallest s <= min(tiles,
// 32*resident/rows) minimising waves(s)/s.
int planSplits(int rows, int tiles, int resident) {
  const int cap = std::max(1, std::min(tiles, 32 * resident / std::max(rows, 1)));
  int best = 1;
  double bestCost = 1e30;
  for (int s = 1; s <= cap; ++s) {
    const double waves = std::ceil(double(rows) * s / resident), cost = waves / s;
    if (cost < bestCost - 1e-12) {
      bestCost = cost;
      best = s;
    }
  }
  return best;
}
// All splits of a launch: `codeSplits` (0: the plan's) over the code tiles, then one split per
// window tile.
int totalSplits(int rows, int T, int Tf, int codeSplits, int resident) {
  return (codeSplits ? codeSplits : planSplits(rows, std::max(1, Tf / TILE), resident)) +
         (T - Tf + TILE - 1) / TILE;
}

void run(const DeviceCache &d, const __nv_bfloat16 *q, __nv_bfloat16 *out, float *opart,
         float *ml, int B, int Hkv, int S, cudaStream_t st) {
  const float scaleLog2 = float(1.0 / std::sqrt(double(D)) * 1.4426950408889634);
  fwSplit<<<dim3(S, Hkv, B), THREADS, kRingBytes, st>>>(q, d.kw, d.vw, d.kmin, d.kstep, d.vmin,
                                                        d.vstep, opart, ml, d.T, d.Tf, d.krec,
                                                        d.vrec, S, scaleLog2, d.counters, out);
  if (!FW_FUSED)
    fwMerge<<<B * Hkv * NH, D, 0, st>>>(opart, ml, out, S);
}

// ---- check: quantize random K/V like the codec, pack, decode on the GPU, compare with a
// float64 reference over the dequantized cache ---------------------------------------------
int check() {
  setRingLimit();
  // window: the value window of the codec's cut rule (0: every token in codes, T % 128 == 0).
  // The window cases cover a partial last tile, a row that is all window, and several splits
  // over window tiles.
  struct Case { int B, Hkv, T, S, window; };
  const Case cases[] = {{1, 8, 128, 1, 0},     {2, 8, 1024, 3, 0},    {1, 8, 4096, 0, 0},
                        {3, 8, 2048, 5, 0},     {2, 8, 16384, 0, 0},   {2, 8, 1000, 0, 256},
                        {1, 8, 300, 2, 256},    {1, 8, 4097, 7, 256},  {2, 8, 16384, 0, 256}};
  int failures = 0;
  for (const Case &cs : cases) {
    const int R = cs.B * cs.Hkv, T = cs.T, Tf = fixedTokens(T, cs.window), Tw = T - Tf;
    if (!FW_WINDOW && Tw) {
      printf("check B=%d T=%d window %d: skipped (this build has no window path)\n", cs.B, T,
             cs.window);
      continue;
    }
    HostCache hc;
    hc.B = cs.B; hc.Hkv = cs.Hkv; hc.T = Tf;
    std::vector<uint8_t> ks(size_t(R) * Tf * D), vs(size_t(R) * Tf * D);
    std::vector<__half> krec(size_t(R) * Tw * D), vrec(krec.size());
    hc.kmin.resize(size_t(R) * (Tf / KB)); hc.kstep.resize(hc.kmin.size());
    hc.vmin.resize(size_t(R) * Tf); hc.vstep.resize(hc.vmin.size());
    std::vector<float> x(size_t(KB) * D), chanOff(D);
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < D; ++c)
        chanOff[c] = (c % 16 == 3) ? 4.f * nrand() : 0.3f * nrand(); // a few outlier channels
      for (int blk = 0; blk < Tf / KB; ++blk) { // keys: one (min, step) per 64 x D block
        float mn = 1e30f, mx = -1e30f;
        for (int i = 0; i < KB * D; ++i) {
          x[i] = __half2float(__float2half_rn(chanOff[i % D] + nrand()));
          mn = std::min(mn, x[i]); mx = std::max(mx, x[i]);
        }
        const float step = float(0.05 * (double(mx) - mn));
        hc.kmin[size_t(r) * (Tf / KB) + blk] = mn; hc.kstep[size_t(r) * (Tf / KB) + blk] = step;
        for (int i = 0; i < KB * D; ++i)
          ks[(size_t(r) * Tf + blk * KB) * D + i] =
              uint8_t(std::min<long>(KMAX, std::lround(std::nearbyint((double(x[i]) - mn) / step))));
      }
      for (int t = 0; t < Tf; ++t) { // values: one (min, step) per token
        float mn = 1e30f, mx = -1e30f;
        for (int c = 0; c < D; ++c) {
          x[c] = __half2float(__float2half_rn(nrand()));
          mn = std::min(mn, x[c]); mx = std::max(mx, x[c]);
        }
        const float step = float(0.1 * (double(mx) - mn));
        hc.vmin[size_t(r) * Tf + t] = mn; hc.vstep[size_t(r) * Tf + t] = step;
        for (int c = 0; c < D; ++c)
          vs[(size_t(r) * Tf + t) * D + c] =
              uint8_t(std::min<long>(VMAX, std::lround(std::nearbyint((double(x[c]) - mn) / step))));
      }
      for (size_t i = 0; i < size_t(Tw) * D; ++i) { // the fp16 window
        krec[size_t(r) * Tw * D + i] = __float2half_rn(chanOff[i % D] + nrand());
        vrec[size_t(r) * Tw * D + i] = __float2half_rn(nrand());
      }
    }
    pack(hc, ks, vs);
    std::vector<__nv_bfloat16> qh(size_t(R) * NH * D);
    std::vector<float> qf(qh.size());
    for (size_t i = 0; i < qh.size(); ++i) {
      qh[i] = __float2bfloat16_rn(nrand());
      qf[i] = __bfloat162float(qh[i]);
    }
    DeviceCache d = allocDevice(cs.B, cs.Hkv, T, Tf);
    auto upload = [](void *dst, const auto &src) {
      CK(cudaMemcpy(dst, src.data(), src.size() * sizeof(src[0]), cudaMemcpyHostToDevice));
    };
    upload(d.kw, hc.kw);
    upload(d.vw, hc.vw);
    upload(d.kmin, hc.kmin);
    upload(d.kstep, hc.kstep);
    upload(d.vmin, hc.vmin);
    upload(d.vstep, hc.vstep);
    upload(d.krec, krec);
    upload(d.vrec, vrec);
    const int S = totalSplits(R, T, Tf, cs.S, residentCtas());
    __nv_bfloat16 *qd, *od;
    float *opart, *ml;
    CK(cudaMalloc(&qd, qh.size() * 2));
    CK(cudaMalloc(&od, qh.size() * 2));
    CK(cudaMalloc(&opart, size_t(R) * NH * S * D * 4));
    CK(cudaMalloc(&ml, size_t(R) * NH * S * 2 * 4));
    CK(cudaMemcpy(qd, qh.data(), qh.size() * 2, cudaMemcpyHostToDevice));
    run(d, qd, od, opart, ml, cs.B, cs.Hkv, S, 0);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    std::vector<__nv_bfloat16> oh(qh.size());
    CK(cudaMemcpy(oh.data(), od, oh.size() * 2, cudaMemcpyDeviceToHost));
    // float64 reference over x_hat = min + symbol * step (f32, like the codec) and the window.
    auto key = [&](int r, int t, int c) -> double {
      if (t >= Tf)
        return __half2float(krec[(size_t(r) * Tw + t - Tf) * D + c]);
      const size_t kb = size_t(r) * (Tf / KB) + t / KB;
      return hc.kmin[kb] + float(ks[(size_t(r) * Tf + t) * D + c]) * hc.kstep[kb];
    };
    auto value = [&](int r, int t, int c) -> double {
      if (t >= Tf)
        return __half2float(vrec[(size_t(r) * Tw + t - Tf) * D + c]);
      const size_t vt = size_t(r) * Tf + t;
      return hc.vmin[vt] + float(vs[vt * D + c]) * hc.vstep[vt];
    };
    double num = 0, den = 0, maxAbs = 0;
    std::vector<double> sc(T);
    for (int r = 0; r < R; ++r)
      for (int n = 0; n < NH; ++n) {
        const float *qv = &qf[(size_t(r) * NH + n) * D];
        double m = -1e300;
        for (int t = 0; t < T; ++t) {
          double acc = 0;
          for (int c = 0; c < D; ++c)
            acc += double(qv[c]) * key(r, t, c);
          sc[t] = acc / std::sqrt(double(D));
          m = std::max(m, sc[t]);
        }
        double l = 0;
        std::vector<double> o(D, 0.0);
        for (int t = 0; t < T; ++t) {
          const double p = std::exp(sc[t] - m);
          l += p;
          for (int c = 0; c < D; ++c)
            o[c] += p * value(r, t, c);
        }
        for (int c = 0; c < D; ++c) {
          const double ref = o[c] / l, got = __bfloat162float(oh[(size_t(r) * NH + n) * D + c]);
          num += (got - ref) * (got - ref);
          den += ref * ref;
          maxAbs = std::max(maxAbs, std::fabs(got - ref));
        }
      }
    const double rel = std::sqrt(num / std::max(den, 1e-300));
    const bool ok = rel <= 1e-2 && std::isfinite(rel);
    failures += !ok;
    printf("check B=%d Hkv=%d T=%d (%d in codes, %d fp16) splits=%d: rel L2 %.3e, max abs %.3e "
           "(tolerance rel L2 1e-2) %s\n",
           cs.B, cs.Hkv, T, Tf, Tw, S, rel, maxAbs, ok ? "ok" : "FAIL");
    cudaFree(qd); cudaFree(od); cudaFree(opart); cudaFree(ml);
    d.free();
  }
  printf("fixed-width check: %d failures\n", failures);
  return failures ? 1 : 0;
}

// A positive (or, with allowZero, non-negative) integer; exits with a message otherwise.
int parseInt(const std::string &opt, const char *s, bool allowZero) {
  char *end = nullptr;
  errno = 0;
  const long v = std::strtol(s, &end, 10);
  if (errno || end == s || *end || v > INT32_MAX || v < (allowZero ? 0 : 1)) {
    fprintf(stderr, "fixed_width_mma: %s wants %s integer, got '%s'\n", opt.c_str(),
            allowZero ? "a non-negative" : "a positive", s);
    exit(2);
  }
  return int(v);
}
std::vector<int> parseList(const std::string &opt, const char *s) {
  std::vector<int> v;
  std::string item;
  for (const char *p = s;; ++p) {
    if (*p == ',' || !*p) {
      v.push_back(parseInt(opt, item.c_str(), false));
      item.clear();
      if (!*p)
        break;
    } else {
      item += *p;
    }
  }
  return v;
}

int bench(int argc, char **argv) {
  std::vector<int> batches = {1, 8, 32}, contexts = {4096, 16384, 65536};
  int reps = 30, warmup = 5, forcedSplits = 0, window = 0;
  const char *json = nullptr;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char * {
      if (i + 1 >= argc) { fprintf(stderr, "fixed_width_mma: %s needs a value\n", a.c_str()); exit(2); }
      return argv[++i];
    };
    if (a == "--batches") batches = parseList(a, next());
    else if (a == "--contexts") contexts = parseList(a, next());
    else if (a == "--reps") reps = parseInt(a, next(), false);
    else if (a == "--warmup") warmup = parseInt(a, next(), true);
    else if (a == "--splits") forcedSplits = parseInt(a, next(), true);
    else if (a == "--window") window = parseInt(a, next(), true);
    else if (a == "--json") json = next();
    else { fprintf(stderr, "fixed_width_mma: unknown option %s\n", a.c_str()); return 2; }
  }
  for (int T : contexts)
    if (!window && T % TILE) {
      fprintf(stderr, "fixed_width_mma: --contexts: %d is not a multiple of the %d-token tile "
              "(only with --window)\n", T, TILE);
      return 2;
    }
  if (window && !FW_WINDOW) {
    fprintf(stderr, "fixed_width_mma: --window needs a build with FW_WINDOW\n");
    return 2;
  }
  FILE *jf = json ? fopen(json, "w") : nullptr;
  if (json && !jf) { fprintf(stderr, "fixed_width_mma: cannot write %s\n", json); return 1; }
  setRingLimit();
  const int Hkv = 8, resident = residentCtas();
  uint8_t *flush;
  const size_t flushBytes = size_t(256) << 20;
  CK(cudaMalloc(&flush, flushBytes));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  if (jf) fprintf(jf, "{\"kernel\": \"fixed_width_mma probe\", \"device\": \"%s\", \"flush\": \"dirty\", \"window\": %d, \"reps\": %d, \"warmup\": %d, \"resident_ctas\": %d, \"results\": [", prop.name, window, reps, warmup, resident);
  printf("stages %d, resident CTAs %d, fp16 window (keys and values) from the codec's %d-token "
         "value window\n", FW_STAGES, resident, window);
  printf("%5s %7s %6s %10s %10s %8s %12s\n", "batch", "context", "splits", "time_us", "MB_read", "TB/s", "dense_MB");
  bool first = true;
  for (int B : batches)
    for (int T : contexts) {
      const int R = B * Hkv, Tf = fixedTokens(T, window);
      const int S = totalSplits(R, T, Tf, forcedSplits, resident);
      DeviceCache d = allocDevice(B, Hkv, T, Tf);
      fillWords<<<1024, 256>>>(reinterpret_cast<uint32_t *>(d.kw), d.kwU4 * 4, 1u);
      fillWords<<<1024, 256>>>(reinterpret_cast<uint32_t *>(d.vw), d.vwU4 * 4, 2u);
      fillParams<<<1024, 256>>>(d.kmin, d.kParams, -3.f, -1.f, 3u);
      fillParams<<<1024, 256>>>(d.kstep, d.kParams, 0.1f, 0.3f, 4u);
      fillParams<<<1024, 256>>>(d.vmin, d.vParams, -2.f, -1.f, 5u);
      fillParams<<<1024, 256>>>(d.vstep, d.vParams, 0.1f, 0.3f, 6u);
      fillHalves<<<1024, 256>>>(d.krec, d.window, -3.f, 3.f, 7u);
      fillHalves<<<1024, 256>>>(d.vrec, d.window, -2.f, 2.f, 8u);
      __nv_bfloat16 *qd, *od;
      float *opart, *ml;
      CK(cudaMalloc(&qd, size_t(R) * NH * D * 2));
      CK(cudaMalloc(&od, size_t(R) * NH * D * 2));
      CK(cudaMalloc(&opart, size_t(R) * NH * S * D * 4));
      CK(cudaMalloc(&ml, size_t(R) * NH * S * 2 * 4));
      std::vector<__nv_bfloat16> qh(size_t(R) * NH * D);
      for (auto &x : qh) x = __float2bfloat16_rn(nrand());
      CK(cudaMemcpy(qd, qh.data(), qh.size() * 2, cudaMemcpyHostToDevice));
      CK(cudaDeviceSynchronize());
      cudaEvent_t e0, e1;
      CK(cudaEventCreate(&e0));
      CK(cudaEventCreate(&e1));
      std::vector<float> times;
      for (int i = 0; i < warmup + reps; ++i) {
        CK(cudaMemsetAsync(flush, i & 0xFF, flushBytes, 0)); // dirty L2 flush, as kvc-bench
        CK(cudaEventRecord(e0, 0));
        run(d, qd, od, opart, ml, B, Hkv, S, 0);
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (i >= warmup) times.push_back(ms * 1000.f);
      }
      CK(cudaGetLastError());
      std::sort(times.begin(), times.end());
      const double us = times[times.size() / 2];
      const double bytes = double(d.bytes) + 2.0 * R * NH * D * 2; // cache + q + out
      const double dense = 2.0 * B * Hkv * double(T) * D * 2;
      printf("%5d %7d %6d %10.1f %10.1f %8.2f %12.1f\n", B, T, S, us, bytes / 1e6, bytes / us / 1e6, dense / 1e6);
      if (jf) fprintf(jf, "%s\n  {\"batch\": %d, \"context\": %d, \"splits\": %d, \"time_us\": %.2f, \"bytes\": %.0f, \"dense_bytes\": %.0f}", first ? "" : ",", B, T, S, us, bytes, dense);
      first = false;
      cudaEventDestroy(e0); cudaEventDestroy(e1);
      cudaFree(qd); cudaFree(od); cudaFree(opart); cudaFree(ml);
      d.free();
    }
  if (jf) { fprintf(jf, "\n]}\n"); fclose(jf); }
  cudaFree(flush);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    printf("usage: fixed_width_mma check\n"
           "       fixed_width_mma bench [--batches 1,8,32] [--contexts 4096,16384,65536]\n"
           "                             [--reps 30] [--warmup 5] [--splits N] [--json FILE]\n"
           "                             [--window V]\n"
           "  --window V: keep the tokens of the codec's fp16 value window of V tokens (its\n"
           "  default: 256) unencoded, keys and values; contexts need not be multiples of 128.\n");
    return 0;
  }
  if (argc >= 2 && !strcmp(argv[1], "check")) return check();
  if (argc >= 2 && !strcmp(argv[1], "bench")) return bench(argc, argv);
  fprintf(stderr, "fixed_width_mma: expected 'check' or 'bench' (see --help)\n");
  return 2;
}
