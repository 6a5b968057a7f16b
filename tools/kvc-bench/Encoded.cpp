//===- Encoded.cpp - kvc-bench encoded: KVComp-encoded cache decode kernels ===//
//
//   kvc-bench encoded selftest           (no GPU: packing + an emulation of the decoder)
//   kvc-bench encoded info IN
//   kvc-bench encoded check IN [--quick] [--seed N] [--tol X] [--tol32 X]
//   kvc-bench encoded decode IN [--json F] [--batches 1,8,32] [--contexts 4096,16384,65536]
//                               [--hkv 8] [--reps 30] [--warmup 5] [--splits N]
//   kvc-bench encoded append-check|append-bench ENC STORE ...   (Append.cpp: appends through
//                               the store kernels vs the CPU codec)
//
// IN is the PTX (or the kvc-gpu-pipeline .mlir) of kernels convert-kvc-to-gpu emitted for
// kvc.attention over a !kvc.encoded_cache (names ..._enc_split/_merge). The caches are built
// on the host with the codec library (K eps 0.05 BlockQuant, V eps 0.1 TokenQuant, Huffman,
// recent windows 128/256: kvc_codec_default_params) and uploaded with CUDAEncoded.h.
// check compares against a float64 reference of attention over the *dequantized* cache
// (kvc_codec_head_decode). decode times split+merge like `kvc-bench decode` (CUDA events,
// warm-up, median of reps, L2 flushed by a >= 4x L2 memset before each rep, or by a read-only
// pass over the same bytes with --flush clean; BenchCommon.h).
//
//===----------------------------------------------------------------------===//
#include "BenchCommon.h"
#include "CacheKernels.h"
#include "SyntheticHeads.h"
#include "kvc/Runtime/CUDA.h"
#include "kvc/Runtime/CUDAEncoded.h"
#include "kvc/Runtime/Codec.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

int kvcBenchEncoded(int argc, char **argv);
int kvcBenchAppend(int argc, char **argv); // Append.cpp: append-check, append-bench

namespace {
using namespace kvcbench;

using Variant = EncodedVariant;
using Loaded = LoadedKernels<Variant>;

Loaded load(const std::string &path) {
  return loadKernels(path, encodedVariants, "encoded-cache kernels (<tag>_..._enc_split)");
}

struct Case {
  int64_t batch, hkv, T;
  int splits, mode; // mode 0 normal, 1 escape-heavy, 2 ragged rows (lengths incl. 0, 1, T)
};

// Uploads the codec heads (row r = b*Hkv + kvh), runs V once on the raw queries (output and
// workspace poisoned with NaN first) and returns ||out - ref|| / ||ref|| (inf if any output is
// not finite).
double uploadRunCompare(const Loaded &L, const Variant &V,
                        const std::vector<const kvc_codec_head *> &hp, int64_t B, int64_t Hkv,
                        int splits, const std::vector<uint8_t> &qraw,
                        const std::vector<double> &ref, double *maxAbs, int *usedSplits) {
  const auto &cfg = V.cfg;
  const int64_t nq = int64_t(ref.size());
  kvc_cuda_encoded_cache cache;
  const char *err = nullptr;
  if (int rc = kvc_cuda_encoded_upload(hp.data(), B, Hkv, &cache, &err))
    die(std::string("upload failed: ") + (err ? err : kvc_cuda_last_error()) + " (" +
        std::to_string(rc) + ")");
  kvc_encoded_plan plan;
  CK(kvc_cuda_encoded_make_plan(&cfg, &cache, splits, L.sms * V.ctasPerSM, &plan));
  *usedSplits = plan.num_splits;
  const std::vector<uint8_t> out = runPoisoned(
      qraw, size_t(nq) * cfg.query_bytes, plan,
      [&](kvc_cuda_ptr dq, kvc_cuda_ptr dws, kvc_cuda_ptr dout) {
        CK(kvc_cuda_encoded_launch(V.split, V.merge, &cfg, &cache, &plan, dq, dws, dout,
                                   nullptr));
      });
  kvc_cuda_encoded_free(&cache);
  return relativeL2(outputValues(out, cfg.query_type), ref, maxAbs);
}

double runCase(const Loaded &L, const Variant &V, const Case &C, std::mt19937 &rng,
               double *maxAbs, int *usedSplits, std::string *note) {
  const auto &cfg = V.cfg;
  const int64_t D = cfg.head_dim, g = cfg.group, Sq = cfg.query_seq;
  const int64_t B = C.batch, Hkv = C.hkv, Hq = Hkv * g, rows = B * Hkv;
  std::vector<int64_t> lens(size_t(rows), C.T);
  if (C.mode == 2) {
    std::uniform_int_distribution<int64_t> UL(0, C.T);
    for (size_t i = 0; i < lens.size(); ++i)
      lens[i] = i == 0 ? 0 : i == 1 ? 1 : i == 2 ? C.T : UL(rng);
  }
  auto heads = makeHeads(lens, D, rng(), C.mode == 1 ? 1 : 0);
  uint64_t esc = 0, longCodes = 0;
  std::vector<const kvc_codec_head *> hp;
  for (auto &h : heads) {
    hp.push_back(h->h);
    kvc_codec_stats st;
    CC(kvc_codec_head_stats(h->h, &st));
    esc += st.key_escape_count + st.value_escape_count;
    for (int s = 0; s < 2; ++s) {
      kvc_codec_stream_view sv;
      kvc_codec_huffman_tables tb;
      CC(kvc_codec_head_view(h->h, s, &sv, &tb));
      if (sv.has_codebook && tb.max_code_length > 11)
        ++longCodes;
    }
  }
  char buf[128];
  snprintf(buf, sizeof buf, "escapes=%llu streams_with_codes>11b=%llu", (unsigned long long)esc,
           (unsigned long long)longCodes);
  *note = buf;
  const int qt = cfg.query_type;
  const bool bf = qt == 0;
  const int64_t nq = B * Hq * Sq * D;
  std::uniform_real_distribution<float> U(-2.f, 2.f);
  std::vector<float> qf(static_cast<size_t>(nq));
  std::vector<uint8_t> qraw(size_t(nq) * cfg.query_bytes);
  for (int64_t i = 0; i < nq; ++i) {
    float x = U(rng);
    if (qt == 2) {
      std::memcpy(&qraw[size_t(i) * 4], &x, 4);
      qf[size_t(i)] = x;
    } else {
      uint16_t h = toHalfBits(x, bf);
      std::memcpy(&qraw[size_t(i) * 2], &h, 2);
      qf[size_t(i)] = fromHalfBits(h, bf);
    }
  }
  // float64 reference over the dequantized cache.
  const std::vector<double> ref = referenceAttention(qf, B, Hkv, g, Sq, D, codecRows(hp.data()));
  return uploadRunCompare(L, V, hp, B, Hkv, C.splits, qraw, ref, maxAbs, usedSplits);
}

// ----------------------------------------------------------------------------- selftest
// CPU-only check of the device form (kvc_encoded_pack) with an emulation of the kernels'
// decoder: the same 64-bit window, pairwise LUT lookups with one refill per pair (and the
// grouped form, 4 or 8 lookups per refill), slow path from the absolute bit position. Every symbol must equal the codec's, every dequantised value
// min + s*step its decode, every recent-window element its fp16 value, and no read may go past
// the padding words (the kernel reads without bounds checks).
struct EmuStream {
  const uint32_t *w;
  int64_t n;
  const int32_t *lut, *aux, *syms;
  int64_t symsLen;
  std::string *err;
  uint64_t *slow = nullptr; // LUT misses (the canonical slow path), when counted
  uint32_t rd(uint64_t i) {
    if (int64_t(i) >= n) {
      if (err->empty())
        *err = "word read " + std::to_string(i) + " past the padded stream (" +
               std::to_string(n) + " words)";
      return 0;
    }
    return w[i];
  }
};
struct EmuDec {
  uint64_t win;
  int32_t nb;
  uint32_t nw, wp;
};
EmuDec emuInit(EmuStream &S, uint64_t pos) {
  uint64_t wi = pos >> 5, sh = pos & 31;
  uint64_t ab = (uint64_t(S.rd(wi)) << 32) | S.rd(wi + 1);
  return {ab << sh, int32_t(64 - sh), S.rd(wi + 2), uint32_t(wi + 3)};
}
void emuRefill(EmuStream &S, EmuDec &d) {
  if (d.nb < 32) {
    d.win |= uint64_t(d.nw) << (32 - d.nb);
    d.nb += 32;
    d.nw = S.rd(d.wp);
    d.wp += 1;
  }
}
float emuOne(EmuStream &S, EmuDec &d) {
  uint32_t hi = uint32_t(d.win >> 32);
  uint32_t e = uint32_t(S.lut[hi >> 21]);
  if (e != KVC_ENC_LUT_MISS) {
    uint32_t len = e & KVC_ENC_LUT_LEN_MASK;
    if (int32_t(len) > d.nb && S.err->empty())
      *S.err = "fast-path code beyond the valid window bits";
    d.win <<= len;
    d.nb -= int32_t(len);
    uint32_t fb = e & ~KVC_ENC_LUT_LEN_MASK;
    float f;
    std::memcpy(&f, &fb, 4);
    return f;
  }
  if (S.slow)
    ++*S.slow;
  uint64_t pos = uint64_t(d.wp - 1) * 32 - uint64_t(d.nb);
  EmuDec w = emuInit(S, pos);
  uint32_t h = uint32_t(w.win >> 32);
  // As the kernel: the escape by one compare with its code, else a code of 12..16 bits whose
  // length the left-justified limits give (canonical codes), index clamped to the table.
  const uint32_t escLen = uint32_t(S.aux[54]), escCode = uint32_t(S.aux[55]);
  const bool shortEsc = (h >> (32 - escLen)) == escCode;
  uint32_t fl = 12, v16 = h >> 16;
  for (int k = 0; k < 4; ++k)
    fl += v16 >= uint32_t(S.aux[56 + k]);
  const uint32_t idx = std::min<uint32_t>(uint32_t(S.aux[34 + fl]) + ((h >> (32 - fl)) - uint32_t(S.aux[fl])),
                                          uint32_t(S.aux[60]));
  const int64_t si = int64_t(S.aux[53]) + idx;
  if (!shortEsc && (si >= S.symsLen || idx - uint32_t(S.aux[34 + fl]) >= uint32_t(S.aux[17 + fl])) &&
      S.err->empty())
    *S.err = "no canonical code matches (corrupt stream or tables)";
  uint32_t fs = si < S.symsLen ? uint32_t(S.syms[si]) : 0;
  if (shortEsc)
    fl = escLen, fs = uint32_t(S.aux[51]);
  uint32_t len = fl, sym = fs;
  if (fs == uint32_t(S.aux[51])) {
    uint32_t rb = uint32_t(S.aux[52]);
    sym = (h << fl) >> (32 - rb);
    len = fl + rb;
  }
  d = emuInit(S, pos + len);
  return float(sym);
}
// Decodes `count` symbols like the kernel (the kernel's pair fast path, both lookups before one
// branch, decodes exactly what two sequential emuOne calls decode).
void emuVector(EmuStream &S, uint64_t bitpos, int64_t count, std::vector<float> &out) {
  EmuDec d = emuInit(S, bitpos);
  out.clear();
  for (int64_t j = 0; j < count; j += 2) { // one refill per pair, as in the kernel
    emuRefill(S, d);
    out.push_back(emuOne(S, d));
    if (j + 1 < count)
      out.push_back(emuOne(S, d));
  }
}

// The grouped fast path (convert-kvc-to-gpu encoded-refill-group = G > 2): after one refill,
// G chained LUT lookups (each at the position the codes before it imply; bits past the nb
// valid ones read as zeros) and one check: no miss and the G codes within nb bits. Otherwise
// the group is decoded again on the pair path. Counts groups and fallbacks.
// `warpFlags` (if given) gets, per group, whether this vector fell back OR-ed in: the
// caller ORs the 32 vectors one warp decodes together (a warp runs the pair path when any
// of its lanes does).
// `lutTrace` (if given) gets the 11-bit LUT index and the entry's length field of every
// fast-path lookup in issue order (G per group, failed groups included): what the warp's
// shared-memory loads touch (see LutBanks).
struct LutTrace {
  std::vector<uint16_t> idx;
  std::vector<uint8_t> len;
};
void emuVectorGroup(EmuStream &S, uint64_t bitpos, int64_t count, int G, std::vector<float> &out,
                    uint64_t &groups, uint64_t &fallbacks,
                    std::vector<uint8_t> *warpFlags = nullptr, LutTrace *lutTrace = nullptr,
                    const uint32_t *l1 = nullptr) {
  EmuDec d = emuInit(S, bitpos);
  out.clear();
  if (warpFlags)
    warpFlags->resize(size_t(count / G), 0);
  for (int64_t j = 0; j < count; j += G) {
    emuRefill(S, d);
    uint64_t w = d.win;
    int32_t cum = 0;
    bool miss = false;
    uint32_t ent[8];
    // As the kernel: no per-lookup miss check; a miss's length field (63) makes the group
    // overrun the window. `miss` only checks that claim.
    for (int k = 0; k < G; ++k) {
      // encoded-lut-l1 (l1 given): the 32-entry first level, the 11-bit LUT for longer codes.
      const uint32_t top = uint32_t(w >> 32);
      ent[k] = l1 && l1[top >> 27] != KVC_ENC_LUT_MISS ? l1[top >> 27] : uint32_t(S.lut[top >> 21]);
      const uint32_t len = ent[k] & KVC_ENC_LUT_LEN_MASK;
      if (lutTrace) {
        lutTrace->idx.push_back(uint16_t(uint32_t(w >> 32) >> 21));
        lutTrace->len.push_back(uint8_t(len));
      }
      w <<= len;
      cum += int32_t(len);
      miss |= ent[k] == KVC_ENC_LUT_MISS;
    }
    ++groups;
    if (miss && cum <= d.nb && S.err->empty())
      *S.err = "a LUT miss inside a group passed the group's length check";
    if (cum > d.nb) {
      ++fallbacks;
      if (warpFlags)
        (*warpFlags)[size_t(j / G)] = 1;
      for (int k = 0; k < G; ++k) {
        if (k && k % 2 == 0)
          emuRefill(S, d);
        out.push_back(emuOne(S, d));
      }
      continue;
    }
    for (int k = 0; k < G; ++k) {
      const uint32_t fb = ent[k] & ~KVC_ENC_LUT_LEN_MASK;
      float f;
      std::memcpy(&f, &fb, 4);
      out.push_back(f);
    }
    d.win = w;
    d.nb -= cum;
  }
}

// Shared-memory wavefronts of the LUT lookups of one warp (32 vectors of a block decoded side
// by side, lookup k of every lane together), as the H100 serves them: a request takes as many
// wavefronts as the most distinct 32-bit words any one of the 32 banks holds among its lanes'
// addresses (equal addresses broadcast). `single`: the kernel's 2048-entry table. `twoLevel[b]`
// (b = 5, 6: a what-if, not built): a 2^b-entry first level indexed by the top b bits, whose
// entries for codes longer than b bits (and misses) send those lanes to a second lookup (here
// at their 11-bit index) that the warp issues when any lane needs it.
struct LutBanks {
  uint64_t lookups = 0, single = 0;
  uint64_t twoLevel[2] = {0, 0}, secondIssued[2] = {0, 0};
  static int wavefronts(const std::vector<uint32_t> &addrs) {
    int worst = addrs.empty() ? 0 : 1;
    std::vector<uint32_t> seen;
    for (int b = 0; b < 32; ++b) {
      seen.clear();
      for (uint32_t a : addrs)
        if (a % 32 == uint32_t(b) && std::find(seen.begin(), seen.end(), a) == seen.end())
          seen.push_back(a);
      worst = std::max(worst, int(seen.size()));
    }
    return worst;
  }
  void addWarp(const std::vector<LutTrace> &lanes) {
    if (lanes.empty())
      return;
    const size_t steps = lanes[0].idx.size();
    std::vector<uint32_t> a, a1, a2;
    for (size_t k = 0; k < steps; ++k) {
      a.clear();
      for (const LutTrace &t : lanes)
        if (k < t.idx.size())
          a.push_back(t.idx[k]);
      ++lookups;
      single += uint64_t(wavefronts(a));
      for (int bi = 0; bi < 2; ++bi) {
        const int bits = 5 + bi;
        a1.clear();
        a2.clear();
        for (const LutTrace &t : lanes)
          if (k < t.idx.size()) {
            a1.push_back(uint32_t(t.idx[k]) >> (11 - bits));
            if (t.len[k] > bits)
              a2.push_back(t.idx[k]);
          }
        twoLevel[bi] += uint64_t(wavefronts(a1) + wavefronts(a2));
        secondIssued[bi] += !a2.empty();
      }
    }
  }
};

// The multi-symbol decoder (convert-kvc-to-gpu encoded-multi-symbol): the kernel prologue's
// table built from the single-symbol LUT (entries of `bits` stream bits holding up to `slots`
// codes that those bits fully determine, f16 symbols <= 2048), then the kernel's loop: one
// refill per two lookups, a miss takes the single-symbol path, a second lookup past the
// vector's end never does. Returns the table as (w0, w1) pairs, the kernel's layout.
std::vector<uint32_t> emuMultiLut(const int32_t *lut, int bits, int slots) {
  std::vector<uint32_t> t(size_t(2) << bits);
  for (uint32_t k = 0; k < (1u << bits); ++k) {
    uint32_t known = k << (32 - bits), pos = 0, n = 0, sym[3] = {0, 0, 0};
    for (int s = 0; s < slots; ++s) {
      uint32_t e = uint32_t(lut[(known << pos) >> 21]), len = e & KVC_ENC_LUT_LEN_MASK,
               fb = e & ~KVC_ENC_LUT_LEN_MASK;
      float f;
      std::memcpy(&f, &fb, 4);
      if (e == KVC_ENC_LUT_MISS || pos + len > uint32_t(bits) || f > 2048.f)
        break;
      sym[s] = toHalfBits(f, false);
      pos += len;
      ++n;
    }
    t[2 * k] = sym[0] | (sym[1] << 16);
    t[2 * k + 1] = sym[2] | (pos << 16) | (n << 24);
  }
  return t;
}
void emuVectorMulti(EmuStream &S, const std::vector<uint32_t> &M, int bits, uint64_t bitpos,
                    int64_t count, std::vector<float> &out, uint64_t &lookups) {
  EmuDec d = emuInit(S, bitpos);
  out.clear();
  while (int64_t(out.size()) < count) {
    emuRefill(S, d);
    for (int look = 0; look < 2; ++look) {
      const bool past = int64_t(out.size()) >= count;
      uint32_t hi = uint32_t(d.win >> 32), k = hi >> (32 - bits);
      uint32_t w0 = M[2 * k], w1 = M[2 * k + 1], n = w1 >> 24, len = (w1 >> 16) & 255;
      if (!past)
        ++lookups;
      if (n == 0) {
        if (!past)
          out.push_back(emuOne(S, d));
        continue;
      }
      if (int32_t(len) > d.nb && S.err->empty())
        *S.err = "multi-symbol entry beyond the valid window bits";
      d.win <<= len;
      d.nb -= int32_t(len);
      const uint32_t h[3] = {w0 & 0xFFFF, w0 >> 16, w1 & 0xFFFF};
      for (uint32_t i = 0; i < n; ++i)
        if (!past)
          out.push_back(fromHalfBits(uint16_t(h[i]), false));
    }
  }
  out.resize(size_t(count)); // the kernel weighs symbols past the vector with zero rows
}

int cmdSelftest() {
  struct T {
    int64_t B, Hkv, T;
    int mode;
  };
  const int64_t D = 128;
  std::vector<T> cases = {{1, 2, 1, 0},   {1, 2, 300, 0},  {1, 2, 1000, 0}, {2, 2, 4099, 0},
                          {1, 2, 1000, 1}, {1, 2, 5000, 1}, {2, 2, 3000, 2}};
  std::mt19937 rng(99);
  int failures = 0;
  uint64_t symbols = 0;
  struct MultiShape {
    int bits, slots;
  };
  const std::vector<MultiShape> multi = {{10, 3}, {10, 2}, {11, 3}, {11, 2}};
  std::vector<uint64_t> multiLookups(multi.size()), multiSymbols(multi.size());
  const int groupSizes[2] = {4, 8};
  uint64_t groupCount[2] = {0, 0}, groupFallbacks[2] = {0, 0};
  // 4-symbol groups per warp (32 vectors of one block decoded side by side)
  uint64_t warpGroups = 0, warpFallbacks = 0;
  std::vector<uint8_t> warpFlags;
  LutBanks banks;
  std::vector<LutTrace> warpTraces;
  for (const T &C : cases) {
    const int64_t rows = C.B * C.Hkv;
    const uint64_t caseSymbols0 = multiSymbols[0], caseLookups0 = multiLookups[0];
    const uint64_t caseGroups0 = groupCount[1], caseFallbacks0 = groupFallbacks[1];
    const uint64_t caseWarpGroups0 = warpGroups, caseWarpFallbacks0 = warpFallbacks;
    const LutBanks caseBanks0 = banks;
    uint64_t caseSlow = 0, caseSymbols = symbols;
    std::vector<int64_t> lens(size_t(rows), C.T);
    if (C.mode == 2)
      for (size_t i = 0; i < lens.size(); ++i)
        lens[i] = i == 0 ? 0 : i == 1 ? 1 : int64_t(rng() % uint32_t(C.T + 1));
    auto heads = makeHeads(lens, D, 4242 + uint64_t(C.T), C.mode == 1 ? 1 : 0);
    std::vector<const kvc_codec_head *> hp;
    for (auto &h : heads)
      hp.push_back(h->h);
    kvc_encoded_host_form F;
    const char *perr = nullptr;
    if (kvc_encoded_pack(hp.data(), C.B, C.Hkv, &F, &perr))
      die(std::string("pack failed: ") + (perr ? perr : "?"));
    auto I = [&](int b) { return static_cast<const int32_t *>(F.data[b]); };
    auto Fl = [&](int b) { return static_cast<const float *>(F.data[b]); };
    auto H = [&](int b) { return static_cast<const uint16_t *>(F.data[b]); };
    std::string err;
    for (int64_t r = 0; r < rows && err.empty(); ++r) {
      const int32_t *ri = I(KVC_ENC_ROWS) + r * 8;
      const int64_t Tn = ri[0], nk = ri[1], nv = ri[2];
      std::vector<float> K(size_t(Tn * D)), V(size_t(Tn * D));
      if (Tn)
        CC(kvc_codec_head_decode(hp[size_t(r)], K.data(), V.data()));
      std::vector<uint16_t> ks(size_t(nk * D)), vs(size_t(nv * D));
      if (nk)
        CC(kvc_codec_head_decode_symbols(hp[size_t(r)], KVC_CODEC_KEYS, ks.data(), ks.size()));
      if (nv)
        CC(kvc_codec_head_decode_symbols(hp[size_t(r)], KVC_CODEC_VALUES, vs.data(), vs.size()));
      // The multi-symbol tables of this row (key and value streams) for every LUT shape.
      std::vector<std::array<std::vector<uint32_t>, 2>> multiLut;
      for (const auto &m : multi)
        multiLut.push_back({emuMultiLut(I(KVC_ENC_LUT) + r * 4096, m.bits, m.slots),
                            emuMultiLut(I(KVC_ENC_LUT) + r * 4096 + 2048, m.bits, m.slots)});
      for (int s = 0; s < 2 && err.empty(); ++s) {
        const int64_t blk = s ? F.value_block : F.key_block, nEnc = s ? nv : nk;
        const int64_t vecs = s ? D : blk, per = s ? blk : D;
        EmuStream S{reinterpret_cast<const uint32_t *>(F.data[s ? KVC_ENC_VW : KVC_ENC_KW]),
                    F.len[s ? KVC_ENC_VW : KVC_ENC_KW],
                    I(KVC_ENC_LUT) + r * 4096 + s * 2048,
                    I(KVC_ENC_AUX) + ri[7] + s * 64,
                    I(KVC_ENC_SYMS),
                    F.len[KVC_ENC_SYMS],
                    &err};
        const int64_t blk0 = ri[3 + s];
        const int32_t *bo = I(s ? KVC_ENC_VBO : KVC_ENC_KBO), *vo = I(s ? KVC_ENC_VVO : KVC_ENC_KVO);
        const float *mn = Fl(s ? KVC_ENC_VMIN : KVC_ENC_KMIN), *st = Fl(s ? KVC_ENC_VSTEP : KVC_ENC_KSTEP);
        // encoded-lut-l1: the stream's first level as the kernel prologue builds it.
        uint32_t l1[32];
        for (int k = 0; k < 32; ++k) {
          const uint32_t e = uint32_t(S.lut[k << 6]);
          l1[k] = (e & KVC_ENC_LUT_LEN_MASK) <= 5 ? e : KVC_ENC_LUT_MISS;
        }
        std::vector<float> out;
        for (int64_t b = 0; b < nEnc / blk && err.empty(); ++b)
          for (int64_t v = 0; v < vecs && err.empty(); ++v) {
            const int64_t g = blk0 + b;
            const uint64_t bitpos = uint64_t(uint32_t(bo[g])) * 32 + uint32_t(vo[g * vecs + v]);
            S.slow = &caseSlow;
            emuVector(S, bitpos, per, out);
            S.slow = nullptr;
            if (v % 32 == 0) {
              warpFlags.assign(size_t(per / 4), 0);
              warpTraces.clear();
            }
            warpTraces.emplace_back();
            for (int gi = 0; gi < 2 && err.empty(); ++gi) {
              std::vector<float> go;
              emuVectorGroup(S, bitpos, per, groupSizes[gi], go, groupCount[gi],
                             groupFallbacks[gi], gi == 0 ? &warpFlags : nullptr,
                             gi == 0 ? &warpTraces.back() : nullptr);
              if (go != out)
                err = std::string(s ? "value" : "key") + " vector differs between the pair " +
                      "and the " + std::to_string(groupSizes[gi]) + "-symbol group decoders: row " +
                      std::to_string(r);
            }
            {
              std::vector<float> go;
              uint64_t n = 0, fb = 0;
              emuVectorGroup(S, bitpos, per, 4, go, n, fb, nullptr, nullptr, l1);
              if (go != out && err.empty())
                err = std::string(s ? "value" : "key") + " vector differs between the pair " +
                      "decoder and the two-level (encoded-lut-l1) group decoder: row " +
                      std::to_string(r);
            }
            if (v % 32 == 31 || v + 1 == vecs) {
              for (uint8_t f : warpFlags) {
                ++warpGroups;
                warpFallbacks += f;
              }
              if (C.mode != 1) // the escape-heavy stress cases are not what caches look like
                banks.addWarp(warpTraces);
            }
            for (size_t m = 0; m < multi.size() && err.empty(); ++m) {
              std::vector<float> mo;
              emuVectorMulti(S, multiLut[m][size_t(s)], multi[m].bits, bitpos, per, mo,
                             multiLookups[m]);
              multiSymbols[m] += uint64_t(per);
              if (mo != out)
                err = std::string(s ? "value" : "key") + " vector differs between the " +
                      "single- and multi-symbol (" + std::to_string(multi[m].bits) + "-bit, " +
                      std::to_string(multi[m].slots) + " slots) decoders: row " + std::to_string(r);
            }
            for (int64_t j = 0; j < per && err.empty(); ++j) {
              // token and channel of symbol j of vector v of block b
              const int64_t t = s ? b * blk + j : b * blk + v, c = s ? v : j;
              const uint16_t want = (s ? vs : ks)[size_t(t * D + c)];
              if (out[size_t(j)] != float(want)) {
                err = std::string(s ? "value" : "key") + " symbol mismatch: row " +
                      std::to_string(r) + " token " + std::to_string(t) + " channel " +
                      std::to_string(c) + ": " + std::to_string(out[size_t(j)]) + " vs " +
                      std::to_string(want);
                break;
              }
              const float m = s ? mn[g * blk + (t - b * blk)] : mn[g];
              const float stp = s ? st[g * blk + (t - b * blk)] : st[g];
              const float xh = m + out[size_t(j)] * stp, ref = (s ? V : K)[size_t(t * D + c)];
              const float tolv = 4e-7f * std::max(1.0f, std::fabs(m) + std::fabs(stp) * 65536.f);
              if (std::fabs(xh - ref) > tolv) {
                err = "dequantised value differs from the codec's decode at row " +
                      std::to_string(r) + " token " + std::to_string(t);
                break;
              }
              ++symbols;
            }
          }
        // Recent window: fp16 rows from token nEnc on.
        const uint16_t *rec = H(s ? KVC_ENC_VREC : KVC_ENC_KREC) + ri[5 + s];
        for (int64_t t = nEnc; t < Tn && err.empty(); ++t)
          for (int64_t c = 0; c < D; ++c)
            if (fromHalfBits(rec[(t - nEnc) * D + c], false) != (s ? V : K)[size_t(t * D + c)]) {
              err = "recent window differs at row " + std::to_string(r) + " token " +
                    std::to_string(t);
              break;
            }
      }
    }
    // The kernel's unclamped prefetch relies on >= 4 padding words after the last block.
    for (int s = 0; s < 2; ++s) {
      const uint32_t *w = reinterpret_cast<const uint32_t *>(F.data[s ? KVC_ENC_VW : KVC_ENC_KW]);
      const int64_t n = F.len[s ? KVC_ENC_VW : KVC_ENC_KW];
      for (int64_t i = n - 4; i < n; ++i)
        if (i < 0 || w[i] != 0)
          err = err.empty() ? "missing zero padding words" : err;
    }
    const double perLookup = double(multiSymbols[0] - caseSymbols0) /
                             double(std::max<uint64_t>(1, multiLookups[0] - caseLookups0));
    const double fallback = 100.0 * double(groupFallbacks[1] - caseFallbacks0) /
                            double(std::max<uint64_t>(1, groupCount[1] - caseGroups0));
    printf("  %s B=%lld Hkv=%lld T=%lld%s (multi-symbol %d-bit x %d: %.2f symbols/lookup; "
           "8-symbol groups on the pair path: %.2f%%; 4-symbol warp-groups: %.2f%%; LUT "
           "misses: %.3f%% of symbols; %.2f wavefronts per warp lookup)%s%s\n",
           err.empty() ? "PASS" : "FAIL", (long long)C.B, (long long)C.Hkv, (long long)C.T,
           C.mode == 1 ? " escape-heavy" : C.mode == 2 ? " ragged rows" : "", multi[0].bits,
           multi[0].slots, perLookup, fallback,
           100.0 * double(warpFallbacks - caseWarpFallbacks0) /
               double(std::max<uint64_t>(1, warpGroups - caseWarpGroups0)),
           100.0 * double(caseSlow) / double(std::max<uint64_t>(1, symbols - caseSymbols)),
           double(banks.single - caseBanks0.single) /
               double(std::max<uint64_t>(1, banks.lookups - caseBanks0.lookups)),
           err.empty() ? "" : ": ", err.c_str());
    failures += !err.empty();
    kvc_encoded_host_free(&F);
  }
  for (size_t m = 0; m < multi.size(); ++m)
    printf("multi-symbol decoder, %d-bit LUT, %d slots: %s, %.2f symbols per lookup\n",
           multi[m].bits, multi[m].slots,
           failures ? "see the FAIL lines" : "same symbols as the single-symbol decoder",
           double(multiSymbols[m]) / double(std::max<uint64_t>(1, multiLookups[m])));
  printf("refill group 4, per warp (32 vectors of a block side by side): %.2f%% of warp-groups "
         "run the pair path\n",
         100.0 * double(warpFallbacks) / double(std::max<uint64_t>(1, warpGroups)));
  {
    const double n = double(std::max<uint64_t>(1, banks.lookups));
    printf("LUT lookups per warp (bank model, all but the escape-heavy cases): %.2f "
           "shared-memory wavefronts each with the 2048-entry table; what-if two-level tables: "
           "32-entry first level %.2f (second lookup in %.1f%% of warp steps), 64-entry %.2f "
           "(%.1f%%)\n",
           double(banks.single) / n, double(banks.twoLevel[0]) / n,
           100.0 * double(banks.secondIssued[0]) / n, double(banks.twoLevel[1]) / n,
           100.0 * double(banks.secondIssued[1]) / n);
  }
  printf("refill group 4 with the 32-entry first level (encoded-lut-l1): %s\n",
         failures ? "see the FAIL lines" : "same symbols as the pair decoder");
  for (int gi = 0; gi < 2; ++gi)
    printf("refill group %d: %s, %.3f%% of groups take the pair path\n", groupSizes[gi],
           failures ? "see the FAIL lines" : "same symbols as the pair decoder",
           100.0 * double(groupFallbacks[gi]) / double(std::max<uint64_t>(1, groupCount[gi])));
  printf("encoded selftest: %zu/%zu cases passed, %llu symbols decoded by the emulated kernel "
         "decoder\n",
         cases.size() - size_t(failures), cases.size(), (unsigned long long)symbols);
  return failures ? 1 : 0;
}

const char *qtName(int qt) { return qt == 0 ? "bf16" : qt == 1 ? "f16" : "f32"; }

int cmdCheck(const std::string &path, unsigned seed, double tol16, double tol32, bool quick) {
  Loaded L = load(path);
  printf("device: %s, %d SMs\n", L.device.c_str(), L.sms);
  std::mt19937 rng(seed);
  int failures = 0, total = 0;
  for (const Variant &V : L.variants) {
    printf("variant %s (regs %d, smem %d B, %d CTAs/SM)\n", V.name.c_str(), V.regs, V.smem,
           V.ctasPerSM);
    std::vector<Case> cases = {{1, 8, 1, 0, 0},     {1, 8, 7, 0, 0},      {1, 2, 200, 0, 0},
                               {2, 8, 1000, 0, 0},  {1, 8, 4099, 1, 0},   {1, 2, 517, 64, 0},
                               {3, 2, 4099, 3, 0},  {2, 8, 33333, 0, 0},  {1, 4, 1000, 0, 1},
                               {1, 4, 5000, 7, 1},  {2, 4, 3000, 0, 2}};
    if (quick)
      cases = {{1, 8, 7, 0, 0}, {1, 2, 517, 64, 0}, {1, 2, 1000, 3, 1}, {2, 2, 700, 0, 2}};
    const double tol = V.cfg.query_type == 2 ? tol32 : tol16;
    for (const Case &C : cases) {
      double maxAbs;
      int splits;
      std::string note;
      double err = runCase(L, V, C, rng, &maxAbs, &splits, &note);
      bool ok = err <= tol;
      failures += !ok;
      ++total;
      printf("  %s B=%lld Hkv=%lld T=%lld splits=%d %s%s: rel_l2=%.3e max_abs=%.3e (%s)\n",
             ok ? "PASS" : "FAIL", (long long)C.batch, (long long)C.hkv, (long long)C.T, splits,
             C.mode == 1 ? "escape-heavy" : C.mode == 2 ? "ragged rows (0, 1, T, random)" : "",
             "", err, maxAbs, note.c_str());
    }
  }
  printf("encoded check: %d/%d passed (tolerance rel_l2 <= %.1e for bf16/f16 outputs, %.1e for "
         "f32, vs float64 attention over the dequantized cache)\n",
         total - failures, total, tol16, tol32);
  return failures ? 1 : 0;
}

int cmdDecode(const std::string &path, const std::string &json, const std::vector<int64_t> &batches,
              const std::vector<int64_t> &contexts, int warmup, int reps, int forceSplits,
              int64_t hkv) {
  Loaded L = load(path);
  Timer T(L.l2);
  std::ostringstream js;
  const double copyTBs = startDecodeTiming(L, T, warmup, reps, js);
  js << ",\n  \"codec\": \"kvc_codec_default_params: K eps 0.05 block 64 (BlockQuant), V eps 0.1 "
        "block 128 (TokenQuant), Huffman, recent 128/256\""
     << ",\n  \"data\": \"" << kReplicatedHeadsData << "\"";
  jsonOpenResults(js, "split+merge");
  bool first = true;
  printf("%-52s %5s %7s %6s %9s %9s %9s %7s %8s %7s\n", "variant", "batch", "context", "splits",
         "time_us", "enc_MB", "bf16_MB", "bits/el", "TB/s", "%copy");
  for (const Variant &V : L.variants) {
    const int64_t D = V.cfg.head_dim, g = V.cfg.group, Sq = V.cfg.query_seq;
    for (int64_t S : contexts) {
      auto base = makeHeads(std::vector<int64_t>(size_t(hkv), S), D, uint64_t(S), 0);
      double codecBits = 0;
      for (auto &h : base) {
        kvc_codec_stats st;
        CC(kvc_codec_head_stats(h->h, &st));
        codecBits += st.bits_per_element / double(hkv);
      }
      for (int64_t B : batches) {
        const std::vector<const kvc_codec_head *> hp = replicatedRows(base, B);
        kvc_cuda_encoded_cache cache;
        const char *err = nullptr;
        if (kvc_cuda_encoded_upload(hp.data(), B, hkv, &cache, &err))
          die(std::string("upload failed: ") + (err ? err : kvc_cuda_last_error()));
        kvc_encoded_plan plan;
        CK(kvc_cuda_encoded_make_plan(&V.cfg, &cache, forceSplits, L.sms * V.ctasPerSM, &plan));
        const double ms = timeSplitMerge(
            T, warmup, reps, B * hkv * g * Sq * D, V.cfg.query_type, size_t(V.cfg.query_bytes),
            plan, [&](kvc_cuda_ptr dq, kvc_cuda_ptr dws, kvc_cuda_ptr dout) {
              CK(kvc_cuda_encoded_launch(V.split, V.merge, &V.cfg, &cache, &plan, dq, dws, dout,
                                         nullptr));
            });
        const DecodeRate rate(ms, double(cache.device_bytes), B, hkv, S, D);
        const double encBytes = rate.bytes, bf16Bytes = rate.bf16Bytes, bits = rate.bits,
                     tbs = rate.tbs;
        printf("%-52s %5lld %7lld %6d %9.1f %9.1f %9.1f %7.3f %8.3f %6.1f%%\n", V.name.c_str(),
               (long long)B, (long long)S, plan.num_splits, ms * 1e3, encBytes / 1e6,
               bf16Bytes / 1e6, bits, tbs, 100.0 * tbs / copyTBs);
        js << (first ? "" : ",\n") << "    {\"backend\": \"kvc-encoded\", \"variant\": \"" << V.name
           << "\", \"batch\": " << B << ", \"hq\": " << hkv * g << ", \"hkv\": " << hkv
           << ", \"d\": " << D << ", \"context\": " << S << ", \"splits\": " << plan.num_splits
           << ", \"regs\": " << V.regs << ", \"ctas_per_sm\": " << V.ctasPerSM
           << ", \"time_us\": " << ms * 1e3 << ", \"bytes\": " << encBytes
           << ", \"table_bytes\": " << double(cache.table_bytes)
           << ", \"bf16_bytes\": " << bf16Bytes << ", \"bits_per_element\": " << bits
           << ", \"codec_bits_per_element\": " << codecBits << ", \"tbps\": " << tbs
           << ", \"equiv_bf16_tbps\": " << bf16Bytes / (ms * 1e-3) / 1e12
           << ", \"frac_copy\": " << tbs / copyTBs << "}";
        first = false;
        kvc_cuda_encoded_free(&cache);
        gFreedSinceSettle = true; // the device form's buffers
      }
    }
  }
  finishJson(js, json);
  return 0;
}

int cmdInfo(const std::string &path) {
  Loaded L = load(path);
  printf("device: %s, %d SMs\n", L.device.c_str(), L.sms);
  for (const Variant &V : L.variants)
    printf("%s: D=%d g=%d Sq=%d q=%s key_block=%d value_block=%d unroll=%d regs=%d smem=%d "
           "ctas/SM=%d\n",
           V.name.c_str(), V.cfg.head_dim, V.cfg.group, V.cfg.query_seq,
           qtName(V.cfg.query_type), V.cfg.key_block, V.cfg.value_block, V.cfg.unroll, V.regs,
           V.smem, V.ctasPerSM);
  return 0;
}

// Real-model cases (python -m kvc.bench.gemma_decode_cases: q/k/v[/lengths]/expected .npy):
// every row's keys and values are encoded by the CPU codec (default bounds K eps 0.05,
// V eps 0.1, the kernel's block sizes), uploaded, and the matching bf16 variant runs on the
// case's real queries. Pass: rel. L2 <= tol against float64 attention over the codec's
// dequantized cache. Also printed, not judged: the error against `expected` (kvc's CPU path on
// the uncompressed cache), i.e. what the quantization itself costs, and the bits per element.
int cmdCheckNpy(const std::string &path, const std::vector<std::string> &dirs, double tol) {
  Loaded L = load(path);
  printf("device: %s, %d SMs\n", L.device.c_str(), L.sms);
  int failures = 0;
  for (const std::string &dir : dirs) {
    Npy q = readNpy(dir + "/q.npy"), k = readNpy(dir + "/k.npy"), v = readNpy(dir + "/v.npy"),
        ex = readNpy(dir + "/expected.npy");
    const bool ragged = bool(std::ifstream(dir + "/lengths.npy"));
    if (q.shape.size() != 4 || k.shape.size() != 4 || k.shape != v.shape || ex.shape != q.shape)
      die(dir + ": want float32 q/expected [B,Hq,Sq,D] and k/v [B,Hkv,S,D]");
    const int64_t B = q.shape[0], Hq = q.shape[1], Sq = q.shape[2], D = q.shape[3];
    const int64_t Hkv = k.shape[1], S = k.shape[2], g = Hq / Hkv;
    std::vector<int64_t> lens(size_t(B * Hkv), S);
    if (ragged) {
      lens = readNpy(dir + "/lengths.npy").i64;
      if (lens.size() != size_t(B * Hkv))
        die(dir + ": lengths.npy must be int64 [B, Hkv]");
    }
    const Variant *V = nullptr;
    for (const Variant &c : L.variants)
      if (c.cfg.head_dim == D && c.cfg.group == g && c.cfg.query_seq == Sq && c.cfg.query_type == 0)
        V = &c;
    if (!V) {
      printf("  FAIL %s: no bf16 encoded kernel with D=%lld g=%lld Sq=%lld in %s\n", dir.c_str(),
             (long long)D, (long long)g, (long long)Sq, path.c_str());
      ++failures;
      continue;
    }
    kvc_codec_params prm;
    kvc_codec_default_params(&prm, uint32_t(D));
    prm.key_block_tokens = uint32_t(V->cfg.key_block);
    prm.value_block_tokens = uint32_t(V->cfg.value_block);
    std::vector<kvc_codec_head *> owned;
    std::vector<const kvc_codec_head *> hp;
    uint64_t bytes = 0, fp16 = 0;
    for (int64_t r = 0; r < B * Hkv; ++r) {
      kvc_codec_head *h = nullptr;
      CC(kvc_codec_head_create(&prm, &h));
      owned.push_back(h);
      const int64_t T = std::clamp<int64_t>(lens[size_t(r)], 0, S);
      if (T)
        CC(kvc_codec_head_append(h, &k.f32[size_t(r * S * D)], &v.f32[size_t(r * S * D)],
                                 uint64_t(T)));
      kvc_codec_stats st;
      CC(kvc_codec_head_stats(h, &st));
      bytes += st.total_bytes;
      fp16 += st.fp16_bytes;
      hp.push_back(h);
    }
    std::vector<uint8_t> qraw(q.f32.size() * 2);
    std::vector<float> qf(q.f32.size());
    for (size_t i = 0; i < q.f32.size(); ++i) {
      uint16_t hb = toHalfBits(q.f32[i], true);
      std::memcpy(&qraw[i * 2], &hb, 2);
      qf[i] = fromHalfBits(hb, true);
    }
    const std::vector<double> ref = referenceAttention(qf, B, Hkv, g, Sq, D, codecRows(hp.data()));
    double maxAbs = 0;
    int splits = 0;
    const double err = uploadRunCompare(L, *V, hp, B, Hkv, 0, qraw, ref, &maxAbs, &splits);
    const double quantErr =
        relativeL2(ref, std::vector<double>(ex.f32.begin(), ex.f32.end()));
    for (kvc_codec_head *h : owned)
      kvc_codec_head_free(h);
    const bool ok = err <= tol;
    failures += !ok;
    printf("  %s %s: %s B=%lld Hq=%lld Hkv=%lld S=%lld D=%lld splits=%d%s, %.2f bits/elem: rel_l2 "
           "vs float64 over the dequantized cache %.3e; quantization vs the uncompressed CPU "
           "path %.3e\n",
           ok ? "PASS" : "FAIL", dir.c_str(), V->name.c_str(), (long long)B, (long long)Hq,
           (long long)Hkv, (long long)S, (long long)D, splits, ragged ? " ragged" : "",
           16.0 * double(bytes) / double(std::max<uint64_t>(fp16, 1)), err, quantErr);
  }
  printf("encoded check-npy: %d/%zu passed (tolerance rel_l2 <= %.1e)\n",
         int(dirs.size()) - failures, dirs.size(), tol);
  return failures ? 1 : 0;
}

[[noreturn]] void usage() {
  fprintf(usageOut(),
          "usage: kvc-bench encoded selftest     (CPU only: device form + emulated decoder)\n"
          "       kvc-bench encoded info IN\n"
          "       kvc-bench encoded check IN [--quick] [--seed N] [--tol X] [--tol32 X]\n"
          "       kvc-bench encoded check-npy IN --case DIR [--case DIR ...] [--tol X]\n"
          "       kvc-bench encoded decode IN [--json F] [--batches 1,8,32] "
          "[--contexts 4096,16384,65536] [--hkv 8] [--reps 30] [--warmup 5] [--splits N] "
          "[--flush dirty|clean] [--settle-ms 100]\n"
          "       kvc-bench encoded append-check|append-bench ENC STORE ...  (Append.cpp)\n");
  usageExit();
}
} // namespace

int kvcBenchEncoded(int argc, char **argv) {
  kvcbench::benchCommand() = "kvc-bench encoded";
  if (argc >= 3 && std::string(argv[2]).rfind("append-", 0) == 0)
    return kvcBenchAppend(argc, argv);
  if (isSelftest(argc, argv, usage))
    return cmdSelftest();
  CacheCommandLine cl(argv);
  const std::string &cmd = cl.cmd;
  double tol16 = 1e-2, tol32 = 1e-4;
  Options opts(usage);
  cl.bind(opts).f64("--tol", tol16).f64("--tol32", tol32);
  if (!opts.parse(argc, argv, 4).empty())
    usage();
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (cmd == "info")
    return cmdInfo(cl.in);
  if (cmd == "check")
    return cmdCheck(cl.in, cl.seed, tol16, tol32, cl.quick);
  if (cmd == "check-npy" && !cl.caseDirs.empty())
    return cmdCheckNpy(cl.in, cl.caseDirs, tol16);
  if (cmd == "decode")
    return cmdDecode(cl.in, cl.json, cl.batches, cl.contexts, cl.warmup, cl.reps, cl.splits,
                     cl.hkv);
  usage();
}
