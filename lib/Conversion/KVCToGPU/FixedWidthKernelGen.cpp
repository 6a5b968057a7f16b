//===- FixedWidthKernelGen.cpp - fixed-width KVComp decode attention kernels --------===//
//
// The kernels of FixedWidthKernelGen.h as MLIR text. One split CTA = 4 warps; per 128-token
// tile, warp w takes tokens [32w, 32w + 32):
//   key phase    scores S[tok][n] = sum_c K[tok][c] q[n][c]: for each 16-channel step kk and
//                16-token half mt one mma with A = the decoded key symbols (fragment
//                kk*2 + mt), B = the query fragments (registers); then
//                s = scale*log2(e) * (step * S + min * sum(q)).
//   softmax      per warp (4 lanes of a row hold its 8 heads' values: xor-shuffles over the
//                other 8 rows), weights p written as f16 p*vstep into the warp's shared rows.
//   value phase  acc[c][n] += sum_tok V^T[c][tok] * (p vstep)[tok][n]: for each 16-token step kk
//                and 16-channel tile mt one mma with A = the decoded value symbols; the value
//                mins enter through sum_tok p*vmin, added at the end.
// The warps' states are combined like splits at the end of the CTA, then written to the
// workspace the merge kernel reads.
//
//===----------------------------------------------------------------------===//
#include "kvc/Conversion/KVCToGPU/FixedWidthKernelGen.h"

#include "kvc/Runtime/CUDAFixedWidth.h" // the device form's constants (header only)

#include "GPUTextEmitter.h"
#include "SplitMerge.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

using namespace mlir::kvc;

namespace {
constexpr int64_t kTile = KVC_FW_TILE, kWarps = KVC_FW_WARPS, kThreads = KVC_FW_THREADS;
constexpr int64_t kPitch = 40; // f16 weight row pitch (32 tokens + 8: B loads hit 16 banks)
constexpr int64_t kStaticSmem = 48 * 1024;

/// "t, t, ..., t" (n times).
std::string rep(const std::string &t, int64_t n) {
  std::string r;
  for (int64_t i = 0; i < n; ++i)
    r += (i ? ", " : "") + t;
  return r;
}
} // namespace

std::string mlir::kvc::fixedWidthKernelTag(const FixedWidthKernelConfig &c) {
  return "_d" + std::to_string(c.headDim) + "_g" + std::to_string(c.groupSize) + "_q" +
         std::to_string(c.querySeq) + "_" + c.queryType + "_kb" + std::to_string(c.keyBlock) +
         (c.fuseMerge ? "_fw_fm" : "_fw");
}

std::string mlir::kvc::fixedWidthUnsupportedReason(const FixedWidthKernelConfig &c) {
  const int64_t D = c.headDim;
  if (D % 32 != 0 || D < 32 || D > 256)
    return "fixed-width cache: head dim must be a multiple of 32 in [32, 256], got " +
           std::to_string(D);
  if (c.queryType != "bf16" && c.queryType != "f16")
    return "fixed-width cache: query element type must be bf16 or f16 (tensor-core operands), "
           "got " + c.queryType;
  if (c.querySeq != 1)
    return "fixed-width cache: the kernels decode one query position (Sq = 1), got Sq = " +
           std::to_string(c.querySeq);
  if (c.groupSize < 1 || c.groupSize > 8)
    return "fixed-width cache: g = Hq / Hkv must be in [1, 8] (the mma's n = 8 query rows), "
           "got " + std::to_string(c.groupSize);
  if (c.keyBlock != 32 && c.keyBlock != 64 && c.keyBlock != 128)
    return "fixed-width cache: key_block must be 32, 64 or 128 (a warp's 32 tokens share one "
           "key group), got " + std::to_string(c.keyBlock);
  if (c.minCtasPerSM < -1)
    return "fixed-width cache: fixed-width-min-ctas must be -1 (auto) or >= 0, got " +
           std::to_string(c.minCtasPerSM);
  if (c.ringStages != -1 && c.ringStages != 0 && c.ringStages != 2)
    return "fixed-width cache: fixed-width-ring must be -1 (auto), 0 or 2, got " +
           std::to_string(c.ringStages);
  return "";
}

namespace {
int64_t keyU4(int64_t D) { return kvc_fw_key_u4(int(D)); }
int64_t valueU4(int64_t D) { return kvc_fw_value_u4(int(D)); }
int64_t ringBytes(int64_t D) { return 2 * (keyU4(D) + valueU4(D)) * kThreads * 16; }
int64_t otherSmemBytes(const FixedWidthKernelConfig &c) {
  const int64_t D = c.headDim, NQ = c.groupSize * c.querySeq;
  return kWarps * NQ * kPitch * 2 + (c.queryType == "bf16" ? D / 16 * 2 * 32 * 4 : 0) +
         3 * kWarps * 8 * 4;
}
} // namespace

int mlir::kvc::fixedWidthRingStages(const FixedWidthKernelConfig &c) {
  if (c.ringStages >= 0)
    return int(c.ringStages);
  return ringBytes(c.headDim) + otherSmemBytes(c) <= kStaticSmem ? 2 : 0;
}

namespace {
struct Em : GPUTextEmitter {
  std::string i32op(const char *op, const std::string &a, const std::string &b) {
    return bin(op, a, b, "i32");
  }
  std::string andi(const std::string &a, const std::string &b) { return i32op("arith.andi", a, b); }
  std::string ori(const std::string &a, const std::string &b) { return i32op("arith.ori", a, b); }
  std::string shr(const std::string &a, const std::string &b) { return i32op("arith.shrui", a, b); }
  std::string shl(const std::string &a, const std::string &b) { return i32op("arith.shli", a, b); }
  std::string fma(const std::string &a, const std::string &b, const std::string &c) {
    return L("math.fma " + a + ", " + b + ", " + c + " : f32");
  }
  std::string divu(const std::string &a, const std::string &b) {
    return bin("arith.divui", a, b, "index");
  }
  std::string remu(const std::string &a, const std::string &b) {
    return bin("arith.remui", a, b, "index");
  }
  std::string maxu(const std::string &a, const std::string &b) {
    return bin("arith.maxui", a, b, "index");
  }
  std::string ceilDiv(const std::string &a, const std::string &b) {
    return bin("arith.ceildivui", a, b, "index");
  }
  /// Lane `src` (index) of an f32 across the warp.
  std::string shflIdx(const std::string &a, const std::string &src) {
    std::string src32 = toI32(src), width = ci32(32);
    std::string r = fresh("sh");
    os << ind << r << ", " << fresh("ok") << " = gpu.shuffle idx " << a << ", " << src32 << ", "
       << width << " : f32\n";
    return r;
  }
  std::string shflXor(const std::string &a, int64_t off) {
    std::string o = ci32(off), width = ci32(32);
    return shfl(a, o, width);
  }
};
} // namespace

std::string mlir::kvc::generateFixedWidthKernels(const FixedWidthKernelConfig &c,
                                                 std::string &error) {
  error = fixedWidthUnsupportedReason(c);
  if (!error.empty())
    return "";
  const int64_t D = c.headDim, NQ = c.groupSize * c.querySeq, KB = c.keyBlock;
  const int64_t KU4 = keyU4(D), VU4 = valueU4(D), NKW = D / 8, VMT = D / 16, KSTEPS = D / 16;
  const int stages = fixedWidthRingStages(c);
  const bool ring = stages > 0;
  const int64_t redAccWords = kWarps * NQ * D;
  const int64_t bufWords = std::max<int64_t>(ring ? ringBytes(D) / 4 : 0, redAccWords);
  if (bufWords * 4 + otherSmemBytes(c) > kStaticSmem) {
    error = "fixed-width cache: the kernel's shared memory (" +
            std::to_string(bufWords * 4 + otherSmemBytes(c)) + " bytes) exceeds 48 KiB; "
            "fixed-width-ring=0 needs less";
    return "";
  }
  const int64_t minCtas = c.minCtasPerSM >= 0 ? c.minCtasPerSM : (D <= 128 ? 4 : 2);
  const std::string QT = c.queryType, MQ = "memref<?x" + QT + ">";
  const bool bf = QT == "bf16";
  const std::string MI = "memref<?xi32>", MF = "memref<?xf32>", MH = "memref<?xf16>";
  const std::string WG = "#gpu.address_space<workgroup>";
  auto wgTy = [&](int64_t n, const std::string &t) {
    return "memref<" + std::to_string(n) + "x" + t + ", " + WG + ">";
  };
  const std::string BUFT = wgTy(bufWords, "i32"), WT = wgTy(kWarps * NQ * kPitch, "f16"),
                    QHT = wgTy(KSTEPS * 2 * 32, "i32"), RT = wgTy(3 * kWarps * 8, "f32");
  const std::string A16 = " {llvm.align = 16 : i64}";
  const std::string H2 = "vector<2xf16>";
  const std::string ACC = "!llvm.struct<(f32, f32, f32, f32)>";

  Em e;
  std::ostringstream &os = e.os;
  os << "// kvc fixed-width (KVComp, entropy = none) decode attention: D=" << D
     << " g=" << c.groupSize << " q=" << QT << " key_block=" << KB << " ring=" << stages << "\n";
  os << "gpu.module @" << c.moduleName << " {\n";
  os << "  gpu.func @" << c.prefix << "_split(%q: " << MQ << ", %rows: " << MI << ", %kw: " << MI
     << ", %vw: " << MI << ", %kmin: " << MF << ", %kstep: " << MF << ", %vmin: " << MF
     << ", %vstep: " << MF << ", %krec: " << MH << ", %vrec: " << MH << ", %opart: " << MF
     << ", %ml: " << MF
     << (c.fuseMerge ? ", %cnt: " + MI + ", %out: " + MQ : std::string()) << ")\n"
     << "      workgroup(%sBuf : " << BUFT << A16 << ", %sW : " << WT << A16 << ", %sRed : " << RT
     << A16 << (bf ? ", %sQh : " + QHT + A16 : std::string())
     << (c.fuseMerge ? ", %smFlag : " + wgTy(1, "i32") : std::string()) << ")\n"
     << "      kernel attributes {known_block_size = array<i32: " << kThreads
     << ", 1, 1>, kvc.kernel = \"fw_split\""
     << (minCtas > 0 ? ", nvvm.minctasm = " + std::to_string(minCtas) + " : i32" : std::string())
     << "} {\n";

  std::string s = e.L("gpu.block_id x"), kvh = e.L("gpu.block_id y"), bb = e.L("gpu.block_id z");
  std::string S = e.L("gpu.grid_dim x"), hkv = e.L("gpu.grid_dim y"), tid = e.L("gpu.thread_id x");
  std::string c0 = e.ci(0), c1 = e.ci(1), c2 = e.ci(2), c4 = e.ci(4), c8 = e.ci(8),
              c32 = e.ci(32), cTile = e.ci(kTile), cD = e.ci(D), cNQ = e.ci(NQ);
  std::string lane = e.remu(tid, c32), w = e.divu(tid, c32);
  std::string gq = e.divu(lane, c4), tq = e.remu(lane, c4);
  std::string row = e.add(e.mul(bb, hkv), kvh);
  std::string rb = e.mul(row, c4);
  auto rowInfo = [&](int i) {
    return e.toIdx(e.L("memref.load %rows[" + (i ? e.add(rb, e.ci(i)) : rb) + "] : " + MI));
  };
  std::string T = rowInfo(0), Tf = rowInfo(1), tileBase = rowInfo(2), winBase = rowInfo(3);
  std::string tiles = e.ceilDiv(T, cTile), F = e.divu(Tf, cTile);
  std::string W = e.sub(tiles, F), len = e.sub(T, Tf);
  // The split's tiles (CUDAFixedWidth.h, "Splits"): window tiles get splits of their own when
  // S > W, so the short window pass runs beside the code splits instead of after one of them.
  std::string own = e.cmp("ugt", S, W, "index");
  std::string codeSplits = e.L("arith.select " + own + ", " + e.sub(S, W) + ", " + c1 + " : index");
  std::string per1 = e.ceilDiv(F, codeSplits);
  std::string isCode = e.cmp("ult", s, codeSplits, "index");
  std::string a0 = e.sel(isCode, e.mul(s, per1), e.add(F, e.sub(s, codeSplits)), "index");
  std::string a1 = e.sel(isCode, e.minu(F, e.add(a0, per1)), e.add(a0, c1), "index");
  std::string per2 = e.ceilDiv(tiles, S);
  std::string b0 = e.minu(tiles, e.mul(s, per2));
  std::string b1 = e.minu(tiles, e.add(b0, per2));
  std::string t0 = e.sel(own, a0, b0, "index"), t1 = e.sel(own, a1, b1, "index");
  std::string codeEnd = e.minu(t1, F), winStart = e.maxu(t0, F);

  // Query fragments (B of the key mma: k = channel, n = query row gq; rows >= NQ are zero)
  // and sum(q) per query row, for the key mins (lanes of rows >= NQ sum a clamped row's query:
  // nothing of those rows is stored).
  const std::string QV = "vector<2x" + QT + ">";
  std::string qUsed = e.cmp("ult", gq, cNQ, "index");
  std::string qBase = e.mul(e.add(e.mul(row, cNQ), e.minu(gq, e.ci(NQ - 1))), cD);
  std::string i0 = e.ci32(0), fz = e.cf(0.0f), ninf = e.cf(-INFINITY);
  std::string qsum = fz;
  std::vector<std::string> qb(KSTEPS * 2); // i32 (bf16) or vector<2xf16> (f16)
  std::string zH2 = e.L("arith.constant dense<0.0> : " + H2);
  std::string isW0 = e.cmp("eq", w, c0, "index");
  for (int64_t kk = 0; kk < KSTEPS; ++kk)
    for (int h = 0; h < 2; ++h) {
      std::string idx = e.add(qBase, e.add(e.ci(16 * kk + 8 * h), e.mul(tq, c2)));
      std::string pv = e.L("vector.load %q[" + idx + "] {alignment = 4} : " + MQ + ", " + QV);
      for (int k = 0; k < 2; ++k) {
        std::string x = e.L("vector.extract " + pv + "[" + std::to_string(k) + "] : " + QT +
                            " from " + QV);
        qsum = e.fadd(qsum, e.L("arith.extf " + x + " : " + QT + " to f32"));
      }
      if (bf) {
        std::string bits = e.L("vector.bitcast " + pv + " : " + QV + " to vector<1xi32>");
        std::string x = e.L("vector.extract " + bits + "[0] : i32 from vector<1xi32>");
        qb[kk * 2 + h] = e.sel(qUsed, x, i0, "i32");
        // The window's keys are f16: its key mma takes the queries in f16 (warp 0 writes them).
        e.S("scf.if " + isW0 + " {");
        e.push();
        std::string f = e.L("arith.extf " + pv + " : " + QV + " to vector<2xf32>");
        std::string hv = e.L("arith.truncf " + f + " : vector<2xf32> to " + H2);
        std::string hb = e.L("vector.bitcast " + hv + " : " + H2 + " to vector<1xi32>");
        std::string hx = e.L("vector.extract " + hb + "[0] : i32 from vector<1xi32>");
        e.st(e.sel(qUsed, hx, i0, "i32"), "%sQh", e.add(e.ci((kk * 2 + h) * 32), lane), QHT);
        e.pop();
        e.S("}");
      } else {
        qb[kk * 2 + h] = e.sel(qUsed, pv, zH2, H2);
      }
    }
  qsum = e.fadd(qsum, e.shflXor(qsum, 1));
  qsum = e.fadd(qsum, e.shflXor(qsum, 2));
  // C fragment element e of a lane is query row 2tq + (e & 1): its sum(q) lives in lane 4 * row.
  std::string qs[2] = {e.shflIdx(qsum, e.mul(tq, c8)), e.shflIdx(qsum, e.add(e.mul(tq, c8), c4))};
  if (bf)
    e.S("gpu.barrier"); // %sQh before any window tile's key mma

  // Pointers for the cp.async ring: a thread copies its own KU4 + VU4 16-byte words per tile
  // into ring[slot][j][tid] and reads back only those, so no barrier orders the ring.
  const int64_t RU4 = KU4 + VU4;
  std::string kwPtr, vwPtr, bufPtr;
  if (ring) {
    kwPtr = e.L("memref.extract_aligned_pointer_as_index %kw : " + MI + " -> index");
    vwPtr = e.L("memref.extract_aligned_pointer_as_index %vw : " + MI + " -> index");
    bufPtr = e.L("memref.extract_aligned_pointer_as_index %sBuf : " + BUFT + " -> index");
  }
  // Word offset of (tile t, the lane's warp, uint4 j = 0) in kw/vw (CUDAFixedWidth.h).
  auto laneWord = [&](const std::string &t, int64_t u4) {
    std::string G = e.add(tileBase, t);
    return e.add(e.mul(e.add(e.mul(G, c4), w), e.ci(u4 * 128)), e.mul(lane, c4));
  };
  auto fetch = [&](const std::string &t) {
    std::string go = e.cmp("ult", t, codeEnd, "index");
    e.S("scf.if " + go + " {");
    e.push();
    std::string slot = e.remu(t, c2);
    std::string kOff = laneWord(t, KU4), vOff = laneWord(t, VU4);
    std::string dst0 = e.mul(e.add(e.mul(slot, e.ci(RU4 * 128)), tid), e.ci(16));
    for (int64_t j = 0; j < RU4; ++j) {
      bool key = j < KU4;
      std::string word = e.add(key ? kOff : vOff, e.ci((key ? j : j - KU4) * 128));
      std::string src = e.add(key ? kwPtr : vwPtr, e.mul(word, c4));
      std::string dst = e.add(bufPtr, e.add(dst0, e.ci(j * 128 * 16)));
      std::string sp = e.L("llvm.inttoptr " + e.L("arith.index_cast " + src + " : index to i64") +
                           " : i64 to !llvm.ptr<1>");
      std::string dp = e.L("llvm.inttoptr " + e.L("arith.index_cast " + dst + " : index to i64") +
                           " : i64 to !llvm.ptr<3>");
      e.S("nvvm.cp.async.shared.global " + dp + ", " + sp +
          ", 16, cache = cg : !llvm.ptr<3>, !llvm.ptr<1>");
    }
    e.pop();
    e.S("}");
    e.S("nvvm.cp.async.commit.group");
  };
  if (ring)
    fetch(t0);

  // A store for query row `n` (runtime index): only rows < NQ exist (the mma's n is 8).
  auto storeForRow = [&](const std::string &n, const std::string &v, const std::string &mem,
                         const std::string &at, const std::string &ty) {
    if (NQ == 8) {
      e.st(v, mem, at, ty);
      return;
    }
    e.S("scf.if " + e.cmp("ult", n, cNQ, "index") + " {");
    e.push();
    e.st(v, mem, at, ty);
    e.pop();
    e.S("}");
  };
  std::string allLanes = e.ci32(-1);
  auto warpSync = [&]() { e.S("nvvm.bar.warp.sync " + allLanes + " : i32"); };
  auto mma = [&](const std::string &ty, const std::vector<std::string> &a, const std::string &b0v,
                 const std::string &b1v, std::vector<std::string> &C, size_t c0i) {
    const std::string fr = ty == "bf16" ? "i32" : H2;
    std::string m = e.L("nvvm.mma.sync A[" + a[0] + ", " + a[1] + ", " + a[2] + ", " + a[3] +
                        "] B[" + b0v + ", " + b1v + "] C[" + C[c0i] + ", " + C[c0i + 1] + ", " +
                        C[c0i + 2] + ", " + C[c0i + 3] +
                        "] {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, "
                        "multiplicandAPtxType = #nvvm.mma_type<" + ty +
                        ">, multiplicandBPtxType = #nvvm.mma_type<" + ty +
                        ">, shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (" + fr + ", " + fr +
                        ", f32) -> " + ACC);
    for (int k = 0; k < 4; ++k)
      C[c0i + k] = e.L("llvm.extractvalue " + m + "[" + std::to_string(k) + "] : " + ACC);
  };
  // Symbols -> packed operands: (bits & mask) | magic makes magic + s (exact: s < 2^7 in bf16,
  // 2^10 in f16), one packed fma removes the magic.
  const std::string mask4 = e.ci32(0x000F000F), mask5 = e.ci32(0x00100010);
  const std::string magicBf = e.ci32(0x43004300), oneBf = e.ci32(0x3F803F80),
                    negBf = e.ci32(int32_t(0xC300C300u));
  const std::string magicH = e.ci32(0x64006400), oneH = e.ci32(0x3C003C00),
                    negH = e.ci32(int32_t(0xE400E400u));
  auto unmagic = [&](const std::string &x, bool bf16) {
    return e.L(std::string("llvm.inline_asm \"fma.rn.") + (bf16 ? "bf16x2" : "f16x2") +
               " $0, $1, $2, $3;\", \"=r,r,r,r\" " + x + ", " + (bf16 ? oneBf : oneH) + ", " +
               (bf16 ? negBf : negH) + " : (i32, i32, i32) -> i32");
  };
  auto asH2 = [&](const std::string &x) { return e.L("llvm.bitcast " + x + " : i32 to " + H2); };
  auto word = [&](const std::vector<std::string> &u4s, int64_t j) {
    return e.L("vector.extract " + u4s[j / 4] + "[" + std::to_string(j % 4) +
               "] : i32 from vector<4xi32>");
  };
  auto loadU4s = [&](const std::string &t, bool key) {
    std::vector<std::string> u;
    const int64_t n = key ? KU4 : VU4;
    if (ring) {
      std::string slot = e.remu(t, c2);
      std::string base = e.mul(e.add(e.mul(slot, e.ci(RU4 * 128)), tid), c4);
      for (int64_t j = 0; j < n; ++j)
        u.push_back(e.L("vector.load %sBuf[" + e.add(base, e.ci(((key ? 0 : KU4) + j) * 512)) +
                        "] {alignment = 16} : " + BUFT + ", vector<4xi32>"));
    } else {
      std::string base = laneWord(t, n);
      for (int64_t j = 0; j < n; ++j)
        u.push_back(e.L("vector.load " + std::string(key ? "%kw" : "%vw") + "[" +
                        e.add(base, e.ci(j * 128)) + "] {alignment = 16} : " + MI +
                        ", vector<4xi32>"));
    }
    return u;
  };
  const std::string scaleLog2 = e.cf(float(c.scaleLog2));
  const int64_t NS = VMT * 4 + 6; // loop state: acc, mrun[2], lsum[2], msum[2]

  // One tile (t: the row's tile index); returns the new state.
  auto tileStep = [&](const std::string &t, std::vector<std::string> st, bool code) {
    std::vector<std::string> acc(st.begin(), st.begin() + VMT * 4);
    std::string mrun[2] = {st[VMT * 4], st[VMT * 4 + 1]}, lsum[2] = {st[VMT * 4 + 2], st[VMT * 4 + 3]},
                msum[2] = {st[VMT * 4 + 4], st[VMT * 4 + 5]};
    std::vector<std::string> vU4;
    std::vector<std::string> sc(8, fz);
    std::string winTok0 = e.add(e.mul(e.sub(t, F), cTile), e.mul(w, c32)); // window tiles
    if (code) {
      if (ring) {
        e.S("nvvm.cp.async.wait.group 0"); // tile t landed (the only group in flight)
        fetch(e.add(t, c1));               // into the slot tile t - 1 used
      }
      std::vector<std::string> kU4 = loadU4s(t, true);
      for (int64_t kk = 0; kk < KSTEPS; ++kk)
        for (int mt = 0; mt < 2; ++mt) {
          const int64_t idx = kk * 2 + mt, f4 = idx % 4;
          std::string Wd = word(kU4, idx), P = word(kU4, NKW + idx / 4);
          std::vector<std::string> a(4);
          for (int i = 0; i < 4; ++i) {
            const int64_t sh = 4 * f4 + i - 4;
            std::string hb = sh == 0 ? P : sh > 0 ? e.shr(P, e.ci32(sh)) : e.shl(P, e.ci32(-sh));
            std::string lo = e.ori(e.andi(i ? e.shr(Wd, e.ci32(4 * i)) : Wd, mask4),
                                   bf ? magicBf : magicH);
            a[i] = unmagic(e.ori(e.andi(hb, mask5), lo), bf);
            if (!bf)
              a[i] = asH2(a[i]);
          }
          mma(QT, a, qb[kk * 2], qb[kk * 2 + 1], sc, 4 * mt);
        }
      // The warp's 32 tokens share one key group (KB a multiple of 32).
      std::string kbi = e.divu(e.add(e.mul(e.add(tileBase, t), cTile), e.mul(w, c32)), e.ci(KB));
      std::string km = e.ld("%kmin", kbi, MF), ks = e.ld("%kstep", kbi, MF);
      for (int k = 0; k < 8; ++k)
        sc[k] = e.fmul(scaleLog2, e.fma(ks, sc[k], e.fmul(km, qs[k & 1])));
      vU4 = loadU4s(t, false);
    } else {
      // Window keys straight from fp16 rows as the A operand (pairs of adjacent channels);
      // tokens past the row score -inf.
      std::string lastTok = e.sub(len, c1);
      auto halfPair = [&](const std::string &r, int64_t ch) {
        std::string rr = e.minu(r, lastTok);
        std::string idx = e.add(e.mul(e.add(winBase, rr), cD), e.add(e.mul(tq, c2), e.ci(ch)));
        std::string v = e.L("vector.load %krec[" + idx + "] {alignment = 4} : " + MH + ", " + H2);
        std::string ok = e.cmp("ult", r, len, "index");
        return e.sel(ok, v, zH2, H2);
      };
      for (int64_t kk = 0; kk < KSTEPS; ++kk) {
        std::string b0v, b1v;
        if (bf) {
          b0v = asH2(e.ld("%sQh", e.add(e.ci((kk * 2) * 32), lane), QHT));
          b1v = asH2(e.ld("%sQh", e.add(e.ci((kk * 2 + 1) * 32), lane), QHT));
        } else {
          b0v = qb[kk * 2];
          b1v = qb[kk * 2 + 1];
        }
        for (int mt = 0; mt < 2; ++mt) {
          std::string r0 = e.add(winTok0, e.add(gq, e.ci(16 * mt))), r1 = e.add(r0, c8);
          std::vector<std::string> a = {halfPair(r0, 16 * kk), halfPair(r1, 16 * kk),
                                        halfPair(r0, 16 * kk + 8), halfPair(r1, 16 * kk + 8)};
          mma("f16", a, b0v, b1v, sc, 4 * mt);
        }
      }
      for (int k = 0; k < 8; ++k) {
        const int mt = k / 4, el = k % 4;
        std::string r = e.add(winTok0, e.add(gq, e.ci(16 * mt + (el >= 2 ? 8 : 0))));
        std::string ok = e.cmp("ult", r, len, "index");
        sc[k] = e.sel(ok, e.fmul(scaleLog2, sc[k]), ninf, "f32");
      }
    }
    // Online softmax over the warp's 32 tokens: element k of sc is token 16(k/4) + gq +
    // 8((k%4)/2), query row 2tq + (k & 1).
    std::string alpha[2];
    for (int h = 0; h < 2; ++h) {
      std::string m = e.fmax(sc[h], sc[h + 2]);
      m = e.fmax(m, e.fmax(sc[h + 4], sc[h + 6]));
      for (int off : {4, 8, 16})
        m = e.fmax(m, e.shflXor(m, off));
      std::string mNew = e.fmax(mrun[h], m);
      // A window tile may hold nothing for this warp yet: keep the zeros (no -inf - -inf).
      // (While mrun is -inf the state is all zeros, so any finite alpha does.)
      alpha[h] = code ? e.exp2(e.fsub(mrun[h], mNew)) : e.weight(mrun[h], mNew, ninf, e.cf(1.0f));
      mrun[h] = mNew;
      lsum[h] = e.fmul(lsum[h], alpha[h]);
      msum[h] = e.fmul(msum[h], alpha[h]);
    }
    std::string rowW = e.mul(w, e.ci(NQ * kPitch));
    // The value (min, step) of the lane's 4 tokens (shared by its two query rows).
    std::string vmn[4], vst[4];
    if (code)
      for (int j = 0; j < 4; ++j) {
        std::string r = e.add(gq, e.ci(16 * (j / 2) + 8 * (j % 2)));
        std::string tok = e.add(e.mul(e.add(tileBase, t), cTile), e.add(e.mul(w, c32), r));
        vmn[j] = e.ld("%vmin", tok, MF);
        vst[j] = e.ld("%vstep", tok, MF);
      }
    for (int k = 0; k < 8; ++k) {
      const int h = k & 1, mt = k / 4, el = k % 4;
      std::string r = e.add(gq, e.ci(16 * mt + (el >= 2 ? 8 : 0))); // token in the warp's 32
      std::string p = e.exp2(e.fsub(sc[k], mrun[h]));
      if (!code)
        p = e.sel(e.cmpf("oeq", sc[k], ninf), fz, p, "f32");
      lsum[h] = e.fadd(lsum[h], p);
      std::string wv = p;
      if (code) {
        const int j = 2 * mt + (el >= 2 ? 1 : 0);
        msum[h] = e.fma(p, vmn[j], msum[h]);
        wv = e.fmul(p, vst[j]);
      }
      std::string w16 = e.L("arith.truncf " + wv + " : f32 to f16");
      std::string n = e.add(e.mul(tq, c2), e.ci(h));
      std::string at = e.add(rowW, e.add(e.mul(n, e.ci(kPitch)), r));
      storeForRow(n, w16, "%sW", at, WT);
    }
    for (int64_t k = 0; k < VMT * 4; ++k)
      acc[k] = e.fmul(acc[k], alpha[k & 1]);
    warpSync(); // the warp's weight rows before its B loads
    std::string bRow = e.add(rowW, e.mul(e.minu(gq, e.ci(NQ - 1)), e.ci(kPitch)));
    std::string lastTok = code ? "" : e.sub(len, c1);
    for (int kk = 0; kk < 2; ++kk) {
      std::string kc = e.add(bRow, e.add(e.ci(16 * kk), e.mul(tq, c2)));
      std::string b0v = e.sel(qUsed, e.L("vector.load %sW[" + kc + "] {alignment = 4} : " + WT + ", " + H2), zH2, H2);
      std::string b1v = e.sel(qUsed, e.L("vector.load %sW[" + e.add(kc, c8) + "] {alignment = 4} : " + WT + ", " + H2), zH2, H2);
      std::string k0;
      if (!code)
        k0 = e.add(winTok0, e.add(e.ci(16 * kk), e.mul(tq, c2)));
      // The window's values: A = V^T, pairs of adjacent tokens of one channel.
      auto tokenPair = [&](const std::string &k, const std::string &ch) {
        std::string k1 = e.add(k, c1);
        std::string lo = e.L("memref.load %vrec[" + e.add(e.mul(e.add(winBase, e.minu(k, lastTok)), cD), ch) + "] : " + MH);
        std::string hi = e.L("memref.load %vrec[" + e.add(e.mul(e.add(winBase, e.minu(k1, lastTok)), cD), ch) + "] : " + MH);
        std::string hz = e.L("arith.constant 0.0 : f16");
        lo = e.sel(e.cmp("ult", k, len, "index"), lo, hz, "f16");
        hi = e.sel(e.cmp("ult", k1, len, "index"), hi, hz, "f16");
        return e.L("vector.from_elements " + lo + ", " + hi + " : " + H2);
      };
      for (int64_t mt = 0; mt < VMT; ++mt) {
        std::vector<std::string> a(4);
        if (code) {
          std::string Wd = word(vU4, kk * VMT + mt);
          for (int i = 0; i < 4; ++i)
            a[i] = asH2(unmagic(e.ori(e.andi(i ? e.shr(Wd, e.ci32(4 * i)) : Wd, mask4), magicH),
                                false));
        } else {
          std::string ch0 = e.add(gq, e.ci(16 * mt)), ch1 = e.add(ch0, c8);
          a = {tokenPair(k0, ch0), tokenPair(k0, ch1), tokenPair(e.add(k0, c8), ch0),
               tokenPair(e.add(k0, c8), ch1)};
        }
        mma("f16", a, b0v, b1v, acc, 4 * mt);
      }
    }
    warpSync(); // the weight rows are rewritten by the next tile
    std::vector<std::string> out = acc;
    for (int h = 0; h < 2; ++h)
      out.push_back(mrun[h]);
    for (int h = 0; h < 2; ++h)
      out.push_back(lsum[h]);
    for (int h = 0; h < 2; ++h)
      out.push_back(msum[h]);
    return out;
  };
  // scf.for over tiles [lb, ub) carrying the state.
  auto tileLoop = [&](const std::string &lb, const std::string &ub,
                      const std::vector<std::string> &init, bool code) {
    std::string r = e.fresh("loop"), t = e.fresh("t");
    std::vector<std::string> args(NS);
    std::string head = r + ":" + std::to_string(NS) + " = scf.for " + t + " = " + lb + " to " + ub +
                       " step " + c1 + " iter_args(";
    for (int64_t i = 0; i < NS; ++i) {
      args[i] = e.fresh("st");
      head += (i ? ", " : "") + args[i] + " = " + init[i];
    }
    head += ") -> (" + rep("f32", NS) + ") {";
    e.S(head);
    e.push();
    std::vector<std::string> out = tileStep(t, args, code);
    std::string y = "scf.yield ";
    for (int64_t i = 0; i < NS; ++i)
      y += (i ? ", " : "") + out[i];
    e.S(y + " : " + rep("f32", NS));
    e.pop();
    e.S("}");
    return e.results(r, NS);
  };
  std::vector<std::string> st(NS, fz);
  st[VMT * 4] = st[VMT * 4 + 1] = ninf;
  st = tileLoop(t0, codeEnd, st, true);
  st = tileLoop(winStart, t1, st, false);

  // Combine the warps like splits: M = max of their maxima; sums and accumulators scaled by
  // 2^(m_w - M).
  std::string mrun[2] = {st[VMT * 4], st[VMT * 4 + 1]};
  std::string lsum[2] = {st[VMT * 4 + 2], st[VMT * 4 + 3]}, msum[2] = {st[VMT * 4 + 4], st[VMT * 4 + 5]};
  for (int h = 0; h < 2; ++h)
    for (int off : {4, 8, 16}) {
      lsum[h] = e.fadd(lsum[h], e.shflXor(lsum[h], off));
      msum[h] = e.fadd(msum[h], e.shflXor(msum[h], off));
    }
  std::string isG0 = e.cmp("eq", gq, c0, "index");
  e.S("scf.if " + isG0 + " {");
  e.push();
  for (int h = 0; h < 2; ++h) {
    std::string n = e.add(e.mul(tq, c2), e.ci(h));
    std::string at = e.add(e.mul(w, c8), n);
    e.st(mrun[h], "%sRed", at, RT);
    e.st(lsum[h], "%sRed", e.add(at, e.ci(kWarps * 8)), RT);
    e.st(msum[h], "%sRed", e.add(at, e.ci(2 * kWarps * 8)), RT);
  }
  e.pop();
  e.S("}");
  // Every thread is past its ring reads after the barrier, so %sBuf takes the sums; no copy
  // is in flight (the last fetch issued none), which the wait makes explicit.
  if (ring)
    e.S("nvvm.cp.async.wait.group 0");
  e.S("gpu.barrier");
  for (int h = 0; h < 2; ++h) {
    std::string n = e.add(e.mul(tq, c2), e.ci(h));
    std::string M = ninf;
    for (int64_t ww = 0; ww < kWarps; ++ww)
      M = e.fmax(M, e.ld("%sRed", e.add(e.ci(ww * 8), n), RT));
    std::string f = e.weight(mrun[h], M, ninf, fz);
    for (int64_t mt = 0; mt < VMT; ++mt)
      for (int el = h; el < 4; el += 2) {
        std::string ch = e.add(gq, e.ci(16 * mt + (el >= 2 ? 8 : 0)));
        std::string v = e.L("arith.bitcast " + e.fmul(st[mt * 4 + el], f) + " : f32 to i32");
        std::string at = e.add(e.mul(e.add(e.mul(w, cNQ), e.minu(n, e.ci(NQ - 1))), cD), ch);
        storeForRow(n, v, "%sBuf", at, BUFT);
      }
  }
  e.S("gpu.barrier");
  // Thread tid writes channels tid, tid + 128, ... of every query row of the split.
  for (int64_t n = 0; n < NQ; ++n) {
    std::string M = ninf;
    std::vector<std::string> mw(kWarps);
    for (int64_t ww = 0; ww < kWarps; ++ww) {
      mw[ww] = e.ld("%sRed", e.ci(ww * 8 + n), RT);
      M = e.fmax(M, mw[ww]);
    }
    std::string Ls = fz, Ms = fz;
    for (int64_t ww = 0; ww < kWarps; ++ww) {
      std::string fw = e.weight(mw[ww], M, ninf, fz);
      Ls = e.fma(fw, e.ld("%sRed", e.ci(kWarps * 8 + ww * 8 + n), RT), Ls);
      Ms = e.fma(fw, e.ld("%sRed", e.ci(2 * kWarps * 8 + ww * 8 + n), RT), Ms);
    }
    std::string qi = e.add(e.mul(e.add(e.mul(row, cNQ), e.ci(n)), S), s);
    for (int64_t ch0 = 0; ch0 < D; ch0 += kThreads) {
      std::string ch = ch0 ? e.add(tid, e.ci(ch0)) : tid;
      auto body = [&]() {
        std::string o = Ms;
        for (int64_t ww = 0; ww < kWarps; ++ww) {
          std::string v = e.ld("%sBuf", e.add(e.ci((ww * NQ + n) * D), ch), BUFT);
          o = e.fadd(o, e.L("arith.bitcast " + v + " : i32 to f32"));
        }
        e.st(o, "%opart", e.add(e.mul(qi, cD), ch), MF);
      };
      if (ch0 + kThreads > D) {
        e.S("scf.if " + e.cmp("ult", ch, cD, "index") + " {");
        e.push();
        body();
        e.pop();
        e.S("}");
      } else {
        body();
      }
    }
    e.S("scf.if " + e.cmp("eq", tid, c0, "index") + " {");
    e.push();
    std::string mi = e.mul(qi, c2);
    e.st(M, "%ml", mi, MF);
    e.st(Ls, "%ml", e.add(mi, c1), MF);
    e.pop();
    e.S("}");
  }
  if (c.fuseMerge)
    emitFusedMergeEpilogue(e, tid, row, e.mul(row, cNQ), S, NQ, D, kThreads, QT, MQ, c0, c1, cD,
                           WG);
  e.S("gpu.return");
  os << "  }\n";
  if (!c.fuseMerge)
    emitMergeKernel(e, c.prefix + "_merge", QT, D, "fw_merge");
  os << "}\n";
  return os.str();
}
