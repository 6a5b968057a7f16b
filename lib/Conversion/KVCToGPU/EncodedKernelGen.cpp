//===- EncodedKernelGen.cpp - KVComp-encoded decode attention kernels -----===//
//
// See the header for the ABI. Design of the split kernel (one CTA of D threads per
// (split, KV head, batch); a tile = one value block of VB tokens):
//  * prologue: the row's key and value LUTs (2 x 2^11 words) and the g*Sq query rows (f32,
//    pre-scaled by scale*log2 e) go to shared memory; Qsum[i] = sum_c q[i][c];
//  * key phase: thread t owns tokens t, t+D, .. of the tile; an encoded key row is Huffman-
//    decoded from its own bitstream (64-bit bit window, one word prefetched ahead, 11-bit LUT
//    lookup in shared memory, canonical-table slow path for long codes and escapes) and dotted
//    with the queries on the fly: score = min*Qsum + step*sum_c q_c*symbol_c; recent keys are
//    fp16 rows (128-bit loads); tokens past T score -inf;
//  * online softmax: the tile max is reduced over the CTA (shuffles + shared memory); each
//    thread keeps partial sums of p and of p*min_t (value TokenQuant: x = min_t + s*step_t);
//    A[i][t] = p*step_t (encoded values) or p (recent values) goes to shared memory;
//  * value phase: thread c owns channel c and decodes the value column c of the block
//    (VB symbols) accumulating acc[i] += A[i][t]*symbol (recent: A[i][t]*v16[t][c]);
//  * epilogue: out = acc + sum_t p*min_t, written unnormalised with (max, sum) per query row,
//    the dense kernels' workspace layout; the merge kernel does the dense merge's math.
//
//===----------------------------------------------------------------------===//
#include "kvc/Conversion/KVCToGPU/EncodedKernelGen.h"
#include "kvc/Runtime/CUDAEncoded.h" // KVC_ENC_LUT_* (header only, no link)
#include "GPUTextEmitter.h"
#include "SplitMerge.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <sstream>
#include <vector>

using namespace mlir::kvc;

namespace {
struct Em : GPUTextEmitter {
  std::string fma(const std::string &a, const std::string &b, const std::string &c) {
    return L("math.fma " + a + ", " + b + ", " + c + " : f32");
  }
  std::string ldI(const std::string &mem, const std::string &idx) {
    return ld(mem, idx, "memref<?xi32>");
  }
};

std::string join(const std::vector<std::string> &v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i)
    s += (i ? ", " : "") + v[i];
  return s;
}
std::string rep(const std::string &t, size_t n) { return join(std::vector<std::string>(n, t)); }
std::string resDecl(const std::string &r, size_t n) {
  return n == 1 ? r : r + ":" + std::to_string(n);
}
} // namespace

bool mlir::kvc::encodedMmaApplies(const EncodedKernelConfig &c) {
  // The symbols must be exact in the mma operand type: integers up to 256 in bf16, 2048 in f16.
  return c.mma && c.queryType != "f32" && c.groupSize * c.querySeq <= 8 &&
         c.valueBlock == c.headDim && c.headDim % 32 == 0 && (c.unroll == 8 || c.multiSymbol) &&
         c.maxSymbol <= (c.queryType == "bf16" ? 256 : 2048);
}

// A refill group > 2 is the grouped decoder: unroll > 2 and not the multi-symbol decoder
// (encodedRefillGroup is 2 otherwise).
bool mlir::kvc::encodedLutL1Applies(const EncodedKernelConfig &c) {
  return c.lutL1 && encodedRefillGroup(c) > 2;
}

bool mlir::kvc::encodedOverlapApplies(const EncodedKernelConfig &c) {
  return c.overlap && !encodedMmaApplies(c) && c.valueBlock == c.headDim &&
         encodedRefillGroup(c) > 2;
}

int64_t mlir::kvc::encodedRefillGroup(const EncodedKernelConfig &c) {
  return c.multiSymbol ? 2 : std::max<int64_t>(2, std::min(c.refillGroup, c.unroll));
}

std::string mlir::kvc::encodedKernelTag(const EncodedKernelConfig &c) {
  return "_d" + std::to_string(c.headDim) + "_g" + std::to_string(c.groupSize) + "_q" +
         std::to_string(c.querySeq) + "_" + c.queryType + "_kb" + std::to_string(c.keyBlock) +
         "_vb" + std::to_string(c.valueBlock) + "_u" + std::to_string(c.unroll) +
         (encodedRefillGroup(c) != 2 ? "_r" + std::to_string(encodedRefillGroup(c))
                                     : std::string()) +
         "_enc" + (encodedMmaApplies(c) ? "_mma" : "") + (encodedOverlapApplies(c) ? "_ov" : "") + (encodedLutL1Applies(c) ? "_l1" : "") +
         (c.multiSymbol ? "_ms" + std::to_string(c.multiSymbolBits) + "x" +
                              std::to_string(c.multiSymbolSlots)
                        : std::string());
}

std::string mlir::kvc::generateEncodedKernels(const EncodedKernelConfig &c, std::string &error) {
  const int64_t D = c.headDim, VB = c.valueBlock, KB = c.keyBlock, U = c.unroll,
                G = encodedRefillGroup(c);
  if (D % 32 != 0 || D < 32 || D > 1024) {
    error = "encoded cache: head dim must be a multiple of 32 in [32, 1024] (one thread per "
            "channel), got " + std::to_string(D);
    return "";
  }
  if (c.queryType != "bf16" && c.queryType != "f16" && c.queryType != "f32") {
    error = "encoded cache: query element type must be bf16, f16 or f32";
    return "";
  }
  if (KB < 1 || VB < 1 || VB % D != 0 || VB % KB != 0) {
    error = "encoded cache: value_block (" + std::to_string(VB) +
            ") must be a multiple of the head dim (" + std::to_string(D) +
            ") and of key_block (" + std::to_string(KB) + ")";
    return "";
  }
  if (U != 1 && U != 2 && U != 4 && U != 8) {
    error = "encoded cache: unroll must be 1, 2, 4 or 8";
    return "";
  }
  if (!c.multiSymbol && c.refillGroup != 2 && c.refillGroup != 4 && c.refillGroup != 8) {
    error = "encoded cache: refill group must be 2, 4 or 8 symbols, got " +
            std::to_string(c.refillGroup);
    return "";
  }
  if (D % U != 0 || VB % U != 0 || D % 8 != 0) {
    error = "encoded cache: unroll must divide D and value_block";
    return "";
  }
  const int64_t NQ = c.groupSize * c.querySeq;
  if (NQ < 1 || NQ > 16) {
    error = "encoded cache: g * Sq query rows per KV head must be in [1, 16]";
    return "";
  }
  const int64_t NW = D / 32, R = VB / D;
  // Multi-symbol decoding reads the weights of one symbol for all query rows with one vector
  // load: queries and probabilities also go to shared memory transposed, [symbol][NQP], with
  // MSPAD = 2*slots - 1 zero rows past the end (the codes the lookups of the last loop
  // iteration decode past the vector weigh 0).
  const bool MS = c.multiSymbol;
  const int64_t MSB = c.multiSymbolBits, MSS = c.multiSymbolSlots, MSE = int64_t(1) << MSB;
  const int64_t MSPAD = 2 * MSS - 1; // zero weight rows past a vector (two lookups past its end)
  if (MS && (MSB < 8 || MSB > 11 || MSS < 2 || MSS > 3)) {
    error = "encoded cache: multi-symbol LUTs need 8..11 index bits and 2 or 3 symbols";
    return "";
  }
  // Tensor-core dot products (encoded-mma): each thread decodes its vector 16 symbols at a
  // time into a shared staging tile (row = the thread's vector, pitch SP halves), and after
  // each chunk the warp multiplies its own 32 rows with one mma.sync m16n8k16 (f32
  // accumulation) against the queries (key phase) or the probabilities (value phase), NQ rows
  // of the query type (the mma's other n rows are zero in registers). Chunks keep the staging
  // at D x 24 halves (6 KiB at D = 128), so the kernel stays at 8 CTAs per SM.
  // Where it does not apply (encodedMmaApplies) the CUDA-core kernel is generated.
  const bool MMA = encodedMmaApplies(c);
  // With the multi-symbol decoder (MSW) a lookup writes up to 3 symbols past the chunk it
  // completes, so the staging row is a ring of two chunks (pitch 40 halves), else one chunk
  // (pitch 24); both pitches spread a fragment load over the 32 banks.
  const bool MSW = MMA && MS;
  // encoded-overlap (encodedOverlapApplies): the value phase of tile t and the key phase of
  // tile t + 1 decode in one loop.
  const bool OV = encodedOverlapApplies(c);
  // encoded-min-ctas -1 (auto): 8 (64 registers at D = 128, measured fastest for the default
  // kernel), no cap with encoded-overlap (its two decode chains spill at 64 registers).
  if (c.minCtasPerSM < -1) {
    error = "encoded cache: encoded-min-ctas must be -1 (auto) or >= 0, got " +
            std::to_string(c.minCtasPerSM);
    return "";
  }
  const int64_t minCtas = c.minCtasPerSM >= 0 ? c.minCtasPerSM : OV ? 0 : 8;
  const int64_t CH = 16, SP = MSW ? 2 * CH + 8 : CH + 8;
  const int64_t NQP = NQ <= 2 ? NQ : (NQ + 3) / 4 * 4;
  // encoded-lut-l1: a 32-entry first-level table per stream at words 4096..4159 (conflict-free:
  // one word per bank) in front of the 11-bit LUT (encodedLutL1Applies).
  const bool L1 = encodedLutL1Applies(c);
  const int64_t lutWords = MS ? std::max<int64_t>(4096, 4 * MSE) : 4096 + (L1 ? 64 : 0);
  const int64_t smem = (lutWords + NQ * D + (MMA ? 0 : NQ * VB) + NW * NQ * 2 +
                        (MS && !MSW ? NQP * (D + MSPAD) + NQP * (VB + MSPAD) : 0)) * 4 +
                       (MMA ? D * SP * 2 + NQ * (D + 8) * 2 + NQ * (VB + 8) * 2 : 0);
  if (smem > 48 * 1024) {
    error = "encoded cache: shared memory (" + std::to_string(smem) + " B) exceeds 48 KiB" +
            (MSW ? std::string(" with the multi-symbol tables and the mma staging ring: lower "
                               "encoded-ms-bits, or turn encoded-multi-symbol or encoded-mma off")
             : MS ? std::string(" with the multi-symbol tables and transposed weights: lower "
                                "encoded-ms-bits or turn encoded-multi-symbol off")
                  : std::string());
    return "";
  }
  const std::string QT = c.queryType, MQ = "memref<?x" + QT + ">";
  const std::string MI = "memref<?xi32>", MF = "memref<?xf32>", MH = "memref<?xf16>";
  const std::string WG = "#gpu.address_space<workgroup>";
  auto wgTy = [&](int64_t n, const std::string &t) {
    return "memref<" + std::to_string(n) + "x" + t + ", " + WG + ">";
  };
  const std::string LUTT = wgTy(lutWords, "i32"), QST = wgTy(NQ * D, "f32"),
                    AST = wgTy(NQ * VB, "f32"), RST = wgTy(NW * NQ * 2, "f32"),
                    QTT = wgTy(NQP * (D + MSPAD), "f32"), ATT = wgTy(NQP * (VB + MSPAD), "f32");
  const std::string VU = "vector<" + std::to_string(U) + "xf32>";
  const std::string A16 = " {llvm.align = 16 : i64}";

  Em e;
  std::ostringstream &os = e.os;
  os << "// kvc encoded-cache (KVComp) decode attention: D=" << D << " g=" << c.groupSize
     << " Sq=" << c.querySeq << " q=" << QT << " key_block=" << KB << " value_block=" << VB
     << " unroll=" << U << "\n";
  os << "gpu.module @" << c.moduleName << " {\n";
  os << "  gpu.func @" << c.prefix << "_split(%q: " << MQ << ", %rows: " << MI << ", %aux: " << MI
     << ", %syms: " << MI << ", %lut: " << MI << ", %kw: " << MI << ", %kbo: " << MI
     << ", %kvo: " << MI << ", %kmin: " << MF << ", %kstep: " << MF << ", %krec: " << MH
     << ", %vw: " << MI << ", %vbo: " << MI << ", %vvo: " << MI << ", %vmin: " << MF
     << ", %vstep: " << MF << ", %vrec: " << MH << ", %opart: " << MF << ", %ml: " << MF << ")\n"
     // 16-byte aligned buffers: they are read with vector loads of up to 16 bytes
     // (llvm.align on the attribution becomes the shared global's .align).
     // (encoded-mma: the probabilities live only in the query type, %sAh)
     << "      workgroup(%sLut : " << LUTT << A16 << ", %sQ : " << QST << A16
     << (MMA ? std::string() : ", %sA : " + AST + A16) << ", %sRed : " << RST << A16
     << (MS && !MSW ? ", %sQT : " + QTT + A16 + ", %sAT : " + ATT + A16 : std::string())
     << (MMA ? ", %sStage : " + wgTy(D * SP * 2, "i8") + A16 + ", %sQh : " +
                   wgTy(NQ * (D + 8), QT) + A16 + ", %sAh : " + wgTy(NQ * (VB + 8), QT) + A16
             : std::string())
     << ")\n"
     << "      kernel attributes {known_block_size = array<i32: " << D
     << ", 1, 1>, kvc.kernel = \"encoded_split\""
     << (minCtas > 0 ? ", nvvm.minctasm = " + std::to_string(minCtas) + " : i32"
                     : std::string())
     << "} {\n";

  std::string split = e.L("gpu.block_id x"), kvh = e.L("gpu.block_id y"),
              bb = e.L("gpu.block_id z"), nsplit = e.L("gpu.grid_dim x"),
              hkv = e.L("gpu.grid_dim y"), tid = e.L("gpu.thread_id x");
  std::string c0 = e.ci(0), c1 = e.ci(1), c32 = e.ci(32), cD = e.ci(D), cVB = e.ci(VB),
              cKB = e.ci(KB), c4096 = e.ci(4096);
  std::string warp = e.L("arith.divui " + tid + ", " + c32 + " : index");
  std::string lane = e.L("arith.remui " + tid + ", " + c32 + " : index");
  std::string row = e.add(e.mul(bb, hkv), kvh);
  std::string rowQ = e.mul(row, e.ci(NQ));
  std::string rb = e.mul(row, e.ci(8));
  std::vector<std::string> info(8);
  for (int i = 0; i < 8; ++i)
    info[i] = e.toIdx(e.ldI("%rows", i ? e.add(rb, e.ci(i)) : rb));
  const std::string T = info[0], nkEnc = info[1], nvEnc = info[2], kBlk0 = info[3],
                    vBlk0 = info[4], kRec0 = info[5], vRec0 = info[6], aux0 = info[7];
  const std::string kAux = aux0, vAux = e.add(aux0, e.ci(64));

  // LUTs -> shared memory: the row's two 11-bit single-symbol LUTs as they are, or (MS) the
  // two MSB-bit multi-symbol LUTs built from them. A multi entry for MSB stream bits holds the
  // first n <= MSS codes that those bits fully determine, chained through the single LUT (a
  // code whose single entry has length <= the bits left is decided by those bits alone: prefix
  // property): word 0 = f16(s0) | f16(s1) << 16, word 1 = f16(s2) | total length << 16 |
  // n << 24, unused symbols 0. n = 0 (first code longer than MSB bits, the escape, or a symbol
  // above 2048, which f16 does not hold exactly) sends the decoder to the slow path.
  std::string lbase = e.mul(row, c4096);
  if (!MS) {
    e.S("scf.for %li = " + tid + " to " + c4096 + " step " + cD + " {");
    e.push();
    std::string w = e.ldI("%lut", e.add(lbase, "%li"));
    e.S("memref.store " + w + ", %sLut[%li] : " + LUTT);
    e.pop();
    e.S("}");
    if (L1) {
      // First level: entry k of stream s is the 11-bit LUT's entry at k << 6 when that code is
      // <= 5 bits (then every index with top bits k holds it: prefix property), else 63 (look
      // up the 11-bit LUT).
      std::string isL1 = e.cmp("ult", tid, e.ci(64), "index");
      e.S("scf.if " + isL1 + " {");
      e.push();
      std::string strm = e.L("arith.divui " + tid + ", " + e.ci(32) + " : index");
      std::string k = e.L("arith.remui " + tid + ", " + e.ci(32) + " : index");
      std::string w = e.ldI("%lut", e.add(lbase, e.add(e.mul(strm, e.ci(2048)),
                                                        e.mul(k, e.ci(64)))));
      std::string len = e.bin("arith.andi", w, e.ci32(int32_t(KVC_ENC_LUT_LEN_MASK)), "i32");
      std::string v = e.sel(e.cmp("ule", len, e.ci32(5), "i32"), w,
                            e.ci32(int32_t(KVC_ENC_LUT_MISS)), "i32");
      e.S("memref.store " + v + ", %sLut[" + e.add(e.ci(4096), tid) + "] : " + LUTT);
      e.pop();
      e.S("}");
    }
  } else {
    e.S("scf.for %li = " + tid + " to " + e.ci(2 * MSE) + " step " + cD + " {");
    e.push();
    std::string strm = e.L("arith.divui %li, " + e.ci(MSE) + " : index");
    std::string k = e.L("arith.remui %li, " + e.ci(MSE) + " : index");
    std::string sbase = e.add(lbase, e.mul(strm, e.ci(2048))); // single LUTs: 2048 words each
    std::string bits = e.bin("arith.shli", e.toI32(k), e.ci32(32 - MSB), "i32");
    std::string pos = e.ci32(0), n = e.ci32(0), ok = e.L("arith.constant true");
    std::string zero16 = e.ci32(0);
    std::vector<std::string> sym(3, zero16);
    for (int s = 0; s < MSS; ++s) {
      std::string idx = e.bin("arith.shrui", e.bin("arith.shli", bits, pos, "i32"), e.ci32(21), "i32");
      std::string ent = e.ldI("%lut", e.add(sbase, e.toIdx(idx)));
      std::string len = e.bin("arith.andi", ent, e.ci32(int32_t(KVC_ENC_LUT_LEN_MASK)), "i32");
      std::string f = e.L("arith.bitcast " +
                          e.bin("arith.andi", ent, e.ci32(int32_t(~KVC_ENC_LUT_LEN_MASK)), "i32") +
                          " : i32 to f32");
      std::string hit = e.cmp("ne", ent, e.ci32(int32_t(KVC_ENC_LUT_MISS)), "i32");
      std::string fits = e.cmp("ule", e.bin("arith.addi", pos, len, "i32"), e.ci32(MSB), "i32");
      // The symbols in the type the decoder uses them in: f16 (exact up to 2048), or bf16
      // (exact up to 256) when they go to bf16 tensor-core operands (encoded-mma).
      const std::string symTy = MMA && QT == "bf16" ? "bf16" : "f16";
      std::string small = e.cmpf("ole", f, e.cf(symTy == "bf16" ? 256.0f : 2048.0f));
      ok = e.bin("arith.andi", ok, e.bin("arith.andi", hit, e.bin("arith.andi", fits, small, "i1"), "i1"), "i1");
      std::string h = e.L("arith.bitcast " + e.L("arith.truncf " + f + " : f32 to " + symTy) +
                          " : " + symTy + " to i16");
      sym[s] = e.sel(ok, e.L("arith.extui " + h + " : i16 to i32"), zero16, "i32");
      pos = e.sel(ok, e.bin("arith.addi", pos, len, "i32"), pos, "i32");
      n = e.sel(ok, e.bin("arith.addi", n, e.ci32(1), "i32"), n, "i32");
    }
    std::string w0 = e.bin("arith.ori", sym[0], e.bin("arith.shli", sym[1], e.ci32(16), "i32"), "i32");
    std::string w1 = e.bin("arith.ori", e.bin("arith.ori", sym[2],
                                              e.bin("arith.shli", pos, e.ci32(16), "i32"), "i32"),
                           e.bin("arith.shli", n, e.ci32(24), "i32"), "i32");
    // Stream s's table at words [s * 2 * MSE, (s + 1) * 2 * MSE).
    std::string a = e.mul("%li", e.ci(2));
    e.S("memref.store " + w0 + ", %sLut[" + a + "] : " + LUTT);
    e.S("memref.store " + w1 + ", %sLut[" + e.add(a, c1) + "] : " + LUTT);
    e.pop();
    e.S("}");
  }
  // Queries (scaled into the log2 domain) -> shared memory.
  std::string scl = e.cf(float(c.scaleLog2));
  for (int64_t i = 0; i < NQ; ++i) {
    std::string x = e.ld("%q", e.add(e.mul(e.add(rowQ, e.ci(i)), cD), tid), MQ);
    if (MMA) // the raw query (exact in its type); the scale is applied to the f32 products
      e.S("memref.store " + x + ", %sQh[" + e.add(e.ci(i * (D + 8)), tid) + "] : " +
          wgTy(NQ * (D + 8), QT));
    if (QT != "f32")
      x = e.L("arith.extf " + x + " : " + QT + " to f32");
    std::string xs = e.fmul(x, scl);
    e.S("memref.store " + xs + ", %sQ[" + e.add(e.ci(i * D), tid) + "] : " + QST);
    if (MS && !MSW)
      e.S("memref.store " + xs + ", %sQT[" + e.add(e.mul(tid, e.ci(NQP)), e.ci(i)) + "] : " + QTT);
  }
  if (MS && !MSW) {
    // Pad columns of the transposed queries (loaded, never summed: keep them finite) and the
    // MSPAD zero rows past the end of both transposed arrays.
    for (int64_t i = NQ; i < NQP; ++i)
      e.S("memref.store " + e.cf(0.0f) + ", %sQT[" + e.add(e.mul(tid, e.ci(NQP)), e.ci(i)) + "] : " + QTT);
    // MSPAD * NQP entries each, D threads: strided (g*Sq = 16 at D = 64 needs 80 > 64).
    std::string pz = e.fresh("pz");
    e.S("scf.for " + pz + " = " + tid + " to " + e.ci(MSPAD * NQP) + " step " + cD + " {");
    e.push();
    e.S("memref.store " + e.cf(0.0f) + ", %sQT[" + e.add(e.ci(D * NQP), pz) + "] : " + QTT);
    e.S("memref.store " + e.cf(0.0f) + ", %sAT[" + e.add(e.ci(VB * NQP), pz) + "] : " + ATT);
    e.pop();
    e.S("}");
  }
  e.S("gpu.barrier");
  std::string fz = e.cf(0.0f), ninf = e.cf(-INFINITY), f1 = e.cf(1.0f);
  std::string vzU = e.L("arith.constant dense<0.0> : " + VU);
  // Qsum[i] = sum_c q[i][c].
  std::vector<std::string> qsum(NQ);
  for (int64_t i = 0; i < NQ; ++i) {
    std::string r = e.fresh("qs");
    e.S(r + " = scf.for %qc" + std::to_string(i) + " = " + c0 + " to " + cD + " step " +
        e.ci(U) + " iter_args(%qa" + std::to_string(i) + " = " + vzU + ") -> (" + VU + ") {");
    e.push();
    std::string v = e.L("vector.load %sQ[" + e.add(e.ci(i * D), "%qc" + std::to_string(i)) +
                        "] {alignment = " + std::to_string(4 * std::min<int64_t>(U, 4)) +
                        "} : " + QST + ", " + VU);
    e.S("scf.yield " + e.bin("arith.addf", "%qa" + std::to_string(i), v, VU) + " : " + VU);
    e.pop();
    e.S("}");
    qsum[i] = e.L("vector.reduction <add>, " + r + " : " + VU + " into f32");
  }
  // Constants for the decoder.
  // LUT entries: float bits | code length (KVC_ENC_LUT_LEN_MASK), a miss is KVC_ENC_LUT_MISS.
  std::string i0 = e.ci32(0), i1c = e.ci32(1), i32c = e.ci32(32), i21 = e.ci32(21),
              iLen = e.ci32(int32_t(KVC_ENC_LUT_LEN_MASK)),
              iFloat = e.ci32(int32_t(~KVC_ENC_LUT_LEN_MASK)),
              iMiss = e.ci32(int32_t(KVC_ENC_LUT_MISS)), i64_32 = e.ci64(32), i64_64 = e.ci64(64);
  std::string c2048 = e.ci(2048), c34 = e.ci(34), c51 = e.ci(51),
              c52 = e.ci(52), c53 = e.ci(53);
  std::string w32 = e.ci32(32);

  // Tile range of this split.
  std::string ntiles = e.L("arith.ceildivui " + T + ", " + cVB + " : index");
  std::string chunk = e.L("arith.ceildivui " + ntiles + ", " + nsplit + " : index");
  std::string tBeg = e.minu(e.mul(split, chunk), ntiles);
  std::string tEnd = e.minu(e.add(tBeg, chunk), ntiles);

  // ---- the Huffman decoder -------------------------------------------------------------
  // State: win (i64, the next nb bits of the stream MSB-aligned, zeros below), nb (i32),
  // nw (i32, the prefetched next word) and wp (i32, index of the word after nw). Symbols are
  // decoded in pairs: before each pair nb is topped up to >= 32 (one branch-free-ish refill),
  // so the pair's fast-path codes (<= 11 bits each) need no further check. The slow path
  // (LUT miss: a code longer than 11 bits, or the escape) re-reads the stream at the absolute
  // bit position (wp-1)*32 - nb, decodes with the canonical tables and rebuilds the state from
  // memory (>= 33 valid bits). Streams are padded with 4 words by the host, so no read needs a
  // bounds clamp (see the ABI in the header).
  struct DState {
    std::string win, nb, nw, wp;
  };
  auto initState = [&](const std::string &words, const std::string &bitpos) {
    std::string wi = e.L("arith.divui " + bitpos + ", " + c32 + " : index");
    std::string sh = e.L("arith.remui " + bitpos + ", " + c32 + " : index");
    std::string w0 = e.ldI(words, wi);
    std::string w1 = e.ldI(words, e.add(wi, c1));
    std::string w2 = e.ldI(words, e.add(wi, e.ci(2)));
    std::string a = e.L("arith.extui " + w0 + " : i32 to i64");
    std::string b = e.L("arith.extui " + w1 + " : i32 to i64");
    std::string ab = e.bin("arith.ori", e.bin("arith.shli", a, i64_32, "i64"), b, "i64");
    std::string sh64 = e.L("arith.index_castui " + sh + " : index to i64");
    DState s;
    s.win = e.bin("arith.shli", ab, sh64, "i64");
    s.nb = e.L("arith.trunci " + e.bin("arith.subi", i64_64, sh64, "i64") + " : i64 to i32");
    s.nw = w2;
    s.wp = e.L("arith.index_castui " + e.add(wi, e.ci(3)) + " : index to i32");
    return s;
  };
  // The top 32 bits of a 64-bit bit window (LUT indices and canonical codes are read there).
  auto windowTop = [&](const std::string &win) {
    return e.L("arith.trunci " + e.bin("arith.shrui", win, i64_32, "i64") + " : i64 to i32");
  };
  auto refill = [&](DState &s, const std::string &words) {
    std::string need = e.cmp("slt", s.nb, i32c, "i32");
    std::string rf = e.fresh("rf");
    e.S(rf + ":4 = scf.if " + need + " -> (i64, i32, i32, i32) {");
    e.push();
    std::string sh = e.L("arith.extui " + e.bin("arith.subi", i32c, s.nb, "i32") + " : i32 to i64");
    std::string nw64 = e.L("arith.extui " + s.nw + " : i32 to i64");
    std::string win2 = e.bin("arith.ori", s.win, e.bin("arith.shli", nw64, sh, "i64"), "i64");
    std::string nb2 = e.bin("arith.addi", s.nb, i32c, "i32");
    std::string nw2 = e.ldI(words, e.toIdx(s.wp));
    std::string wp2 = e.bin("arith.addi", s.wp, i1c, "i32");
    e.S("scf.yield " + win2 + ", " + nb2 + ", " + nw2 + ", " + wp2 + " : i64, i32, i32, i32");
    e.pop();
    e.S("} else {");
    e.push();
    e.S("scf.yield " + s.win + ", " + s.nb + ", " + s.nw + ", " + s.wp + " : i64, i32, i32, i32");
    e.pop();
    e.S("}");
    s = {rf + "#0", rf + "#1", rf + "#2", rf + "#3"};
  };
  // The shared single-symbol LUT entry for the 11 bits at the top of the 64-bit window `win`.
  auto lutEntry = [&](const std::string &win, const std::string &lutOff) {
    std::string idx = e.toIdx(e.bin("arith.shrui", windowTop(win), i21, "i32"));
    return e.L("memref.load %sLut[" + e.add(idx, lutOff) + "] : " + LUTT);
  };
  // encoded-lut-l1: the 32-entry first level (top 5 bits), the 11-bit LUT only for the lanes
  // whose code is longer (first-level entry 63). lutOff is 0 (keys) or 2048 (values); the
  // stream's first level is at 4096 + lutOff / 64.
  auto lutEntryTwoLevel = [&](const std::string &win, const std::string &lutOff) {
    std::string top = windowTop(win);
    std::string i1 = e.toIdx(e.bin("arith.shrui", top, e.ci32(27), "i32"));
    std::string l1Off = e.add(e.ci(4096), e.L("arith.divui " + lutOff + ", " + e.ci(64) + " : index"));
    std::string e1 = e.L("memref.load %sLut[" + e.add(i1, l1Off) + "] : " + LUTT);
    std::string isLong = e.cmp("eq", e1, iMiss, "i32");
    std::string r = e.fresh("l2");
    e.S(r + " = scf.if " + isLong + " -> (i32) {");
    e.push();
    std::string idx = e.toIdx(e.bin("arith.shrui", top, i21, "i32"));
    e.S("scf.yield " + e.L("memref.load %sLut[" + e.add(idx, lutOff) + "] : " + LUTT) + " : i32");
    e.pop();
    e.S("} else {");
    e.push();
    e.S("scf.yield " + e1 + " : i32");
    e.pop();
    e.S("}");
    return r;
  };
  // Decodes one symbol (nb >= 11 guaranteed by the caller); returns its value as f32.
  auto decodeOne = [&](DState &s, const std::string &lutOff, const std::string &auxB,
                       const std::string &words) {
    std::string hi = windowTop(s.win);
    std::string idx = e.toIdx(e.bin("arith.shrui", hi, i21, "i32"));
    // The multi-symbol decoder keeps its own tables in shared memory and calls this only on a
    // miss, so the single-symbol LUT is read from global memory (L1/L2) there.
    std::string ent = MS ? e.ldI("%lut", e.add(e.add(idx, lutOff), lbase))
                         : e.L("memref.load %sLut[" + e.add(idx, lutOff) + "] : " + LUTT);
    std::string slow = e.cmp("eq", ent, iMiss, "i32");
    std::string r = e.fresh("dec");
    e.S(r + ":5 = scf.if " + slow + " -> (f32, i64, i32, i32, i32) {");
    e.push();
    {
      // Absolute bit position of the window start; a fresh 32-bit window there.
      std::string wpI = e.toIdx(s.wp);
      std::string nbI = e.L("arith.index_castui " + s.nb + " : i32 to index");
      std::string pos = e.sub(e.mul(e.sub(wpI, c1), c32), nbI);
      DState w = initState(words, pos);
      std::string h = windowTop(w.win);
      // A miss is the escape (any length: one compare with its code) or a code of 12..16
      // bits (every other code of <= 11 bits has a LUT entry). Canonical codes: the length is
      // 12 plus how many of the left-justified limits of lengths 12..15 (aux[56..59]) the top
      // 16 bits reach, the symbol sorted_symbols[first_index[L] + code - first_code[L]]
      // (index clamped to the table, aux[60], so even a corrupt stream reads in bounds).
      std::string escLen = e.ldI("%aux", e.add(auxB, e.ci(54)));
      std::string escCode = e.ldI("%aux", e.add(auxB, e.ci(55)));
      std::string isShortEsc =
          e.cmp("eq", e.bin("arith.shrui", h, e.bin("arith.subi", i32c, escLen, "i32"), "i32"),
                escCode, "i32");
      std::string v16 = e.bin("arith.shrui", h, e.ci32(16), "i32");
      std::string lims = e.L("vector.load %aux[" + e.add(auxB, e.ci(56)) +
                             "] {alignment = 16} : " + MI + ", vector<4xi32>");
      std::string L32 = e.ci32(12);
      for (int k = 0; k < 4; ++k) {
        std::string lim = e.L("vector.extract " + lims + "[" + std::to_string(k) +
                              "] : i32 from vector<4xi32>");
        L32 = e.bin("arith.addi", L32,
                    e.L("arith.extui " + e.cmp("uge", v16, lim, "i32") + " : i1 to i32"), "i32");
      }
      std::string LI = e.L("arith.index_castui " + L32 + " : i32 to index");
      std::string code = e.bin("arith.shrui", h, e.bin("arith.subi", i32c, L32, "i32"), "i32");
      std::string fc = e.ldI("%aux", e.add(auxB, LI));
      std::string fi = e.ldI("%aux", e.add(e.add(auxB, c34), LI));
      std::string last = e.ldI("%aux", e.add(auxB, e.ci(60)));
      std::string sidx = e.L("arith.minui " +
                             e.bin("arith.addi", fi, e.bin("arith.subi", code, fc, "i32"), "i32") +
                             ", " + last + " : i32");
      std::string sbase = e.toIdx(e.ldI("%aux", e.add(auxB, c53)));
      std::string csym = e.ldI("%syms", e.add(sbase, e.toIdx(sidx)));
      const std::string fr0 = L32, fr1 = csym;
      std::string esc = e.ldI("%aux", e.add(auxB, c51));
      std::string rbits = e.ldI("%aux", e.add(auxB, c52));
      std::string cl = e.sel(isShortEsc, escLen, fr0, "i32");
      std::string cs = e.sel(isShortEsc, esc, fr1, "i32");
      std::string isEsc = e.cmp("eq", cs, esc, "i32");
      std::string raw = e.bin("arith.shrui", e.bin("arith.shli", h, cl, "i32"),
                              e.bin("arith.subi", i32c, rbits, "i32"), "i32");
      std::string sym = e.sel(isEsc, raw, cs, "i32");
      std::string len = e.sel(isEsc, e.bin("arith.addi", cl, rbits, "i32"), cl, "i32");
      std::string f = e.L("arith.uitofp " + sym + " : i32 to f32");
      std::string npos = e.add(pos, e.L("arith.index_castui " + len + " : i32 to index"));
      DState n2 = initState(words, npos);
      e.S("scf.yield " + f + ", " + n2.win + ", " + n2.nb + ", " + n2.nw + ", " + n2.wp +
          " : f32, i64, i32, i32, i32");
    }
    e.pop();
    e.S("} else {");
    e.push();
    {
      std::string len = e.bin("arith.andi", ent, iLen, "i32");
      std::string fb = e.bin("arith.andi", ent, iFloat, "i32");
      std::string f = e.L("arith.bitcast " + fb + " : i32 to f32");
      std::string len64 = e.L("arith.extui " + len + " : i32 to i64");
      std::string win1 = e.bin("arith.shli", s.win, len64, "i64");
      std::string nb1 = e.bin("arith.subi", s.nb, len, "i32");
      e.S("scf.yield " + f + ", " + win1 + ", " + nb1 + ", " + s.nw + ", " + s.wp +
          " : f32, i64, i32, i32, i32");
    }
    e.pop();
    e.S("}");
    s = {r + "#1", r + "#2", r + "#3", r + "#4"};
    return r + "#0";
  };
  // A group of G > 2 symbols after one refill: G chained LUT lookups, each at the position
  // the codes before it imply, then one check. The bits a lookup reads past the nb valid
  // ones are zeros, but a code that ends within them is still exact (prefix property: its LUT
  // entry depends on its own bits only), so the group is right when the G codes total <= nb
  // bits. A miss needs no check of its own: its entry's length field is 63 and every code is
  // >= 1 bit, so a group with a miss sums to >= 63 + G - 1 > 64 >= nb and fails the same
  // check (saves a compare and an or per symbol). A failed group (rare: mean code ~3.5 bits,
  // nb >= 32) is decoded again on the general path with a refill per pair (groupSlow).
  struct Group {
    std::vector<std::string> ents;
    std::string win, cum, miss;
  };
  auto groupLookups = [&](DState &s, const std::string &words, const std::string &lutOff) {
    refill(s, words);
    Group g;
    g.ents.resize(G);
    g.win = s.win;
    for (int64_t k = 0; k < G; ++k) {
      g.ents[k] = L1 ? lutEntryTwoLevel(g.win, lutOff) : lutEntry(g.win, lutOff);
      std::string len = e.bin("arith.andi", g.ents[k], iLen, "i32");
      g.win = e.bin("arith.shli", g.win, e.L("arith.extui " + len + " : i32 to i64"), "i64");
      g.cum = k ? e.bin("arith.addi", g.cum, len, "i32") : len;
    }
    g.miss = e.cmp("sgt", g.cum, s.nb, "i32");
    return g;
  };
  const std::string gty = rep("f32", G) + ", i64, i32, i32, i32";
  // Yields the group's G symbols and the decoder state after them: decoded again on the
  // general path (slow) or taken from the lookups (fast).
  auto groupSlow = [&](const DState &s, const std::string &words, const std::string &lutOff,
                       const std::string &auxB) {
    DState g = s;
    std::vector<std::string> y;
    for (int64_t k = 0; k < G; ++k) {
      if (k && k % 2 == 0)
        refill(g, words);
      y.push_back(decodeOne(g, lutOff, auxB, words));
    }
    e.S("scf.yield " + join(y) + ", " + g.win + ", " + g.nb + ", " + g.nw + ", " + g.wp +
        " : " + gty);
  };
  auto groupFast = [&](const DState &s, const Group &g) {
    std::vector<std::string> y;
    for (int64_t k = 0; k < G; ++k)
      y.push_back(e.L("arith.bitcast " + e.bin("arith.andi", g.ents[k], iFloat, "i32") +
                      " : i32 to f32"));
    e.S("scf.yield " + join(y) + ", " + g.win + ", " + e.bin("arith.subi", s.nb, g.cum, "i32") +
        ", " + s.nw + ", " + s.wp + " : " + gty);
  };
  // scf.if miss { slow } else { fast }; returns the result name (G symbols, then the state).
  auto groupResolve = [&](const DState &s, const Group &g, const std::string &words,
                          const std::string &lutOff, const std::string &auxB) {
    std::string gr = e.fresh("grp");
    e.S(gr + ":" + std::to_string(G + 4) + " = scf.if " + g.miss + " -> (" + gty + ") {");
    e.push();
    groupSlow(s, words, lutOff, auxB);
    e.pop();
    e.S("} else {");
    e.push();
    groupFast(s, g);
    e.pop();
    e.S("}");
    return gr;
  };
  auto groupResults = [&](const std::string &gr, std::vector<std::string> &f, int64_t u,
                          DState &s) {
    for (int64_t k = 0; k < G; ++k)
      f[u + k] = gr + "#" + std::to_string(k);
    s = {gr + "#" + std::to_string(G), gr + "#" + std::to_string(G + 1),
         gr + "#" + std::to_string(G + 2), gr + "#" + std::to_string(G + 3)};
  };
  // Decodes the U symbols of one loop iteration (refill groups of G, or pairs) and returns
  // them as f32; `s` is the decoder state, updated.
  auto decodeSymbols = [&](DState &s, const std::string &words, const std::string &lutOff,
                           const std::string &auxB) {
    std::vector<std::string> f(U);
    for (int64_t u = 0; G > 2 && u < U; u += G) {
      Group g = groupLookups(s, words, lutOff);
      groupResults(groupResolve(s, g, words, lutOff, auxB), f, u, s);
    }
    for (int64_t u = 0; G == 2 && u < U; u += 2) {
      refill(s, words);
      if (u + 1 >= U) {
        f[u] = decodeOne(s, lutOff, auxB, words);
        break;
      }
      // A pair: both LUT lookups first (the second at the position the first code implies),
      // one branch to the general path when either misses.
      std::string e1 = lutEntry(s.win, lutOff);
      std::string len1 = e.bin("arith.andi", e1, iLen, "i32");
      std::string w1 = e.bin("arith.shli", s.win, e.L("arith.extui " + len1 + " : i32 to i64"), "i64");
      std::string e2 = lutEntry(w1, lutOff);
      std::string len2 = e.bin("arith.andi", e2, iLen, "i32");
      std::string slow = e.bin("arith.ori", e.cmp("eq", e1, iMiss, "i32"), e.cmp("eq", e2, iMiss, "i32"), "i1");
      std::string pr = e.fresh("pair");
      const std::string pty = "f32, f32, i64, i32, i32, i32";
      e.S(pr + ":6 = scf.if " + slow + " -> (" + pty + ") {");
      e.push();
      {
        DState g = s;
        std::string g1 = decodeOne(g, lutOff, auxB, words);
        std::string g2 = decodeOne(g, lutOff, auxB, words);
        e.S("scf.yield " + g1 + ", " + g2 + ", " + g.win + ", " + g.nb + ", " + g.nw + ", " +
            g.wp + " : " + pty);
      }
      e.pop();
      e.S("} else {");
      e.push();
      {
        std::string f1 = e.L("arith.bitcast " + e.bin("arith.andi", e1, iFloat, "i32") + " : i32 to f32");
        std::string f2 = e.L("arith.bitcast " + e.bin("arith.andi", e2, iFloat, "i32") + " : i32 to f32");
        std::string w2 = e.bin("arith.shli", w1, e.L("arith.extui " + len2 + " : i32 to i64"), "i64");
        std::string nb2 = e.bin("arith.subi", e.bin("arith.subi", s.nb, len1, "i32"), len2, "i32");
        e.S("scf.yield " + f1 + ", " + f2 + ", " + w2 + ", " + nb2 + ", " + s.nw + ", " + s.wp +
            " : " + pty);
      }
      e.pop();
      e.S("}");
      f[u] = pr + "#0";
      f[u + 1] = pr + "#1";
      s = {pr + "#2", pr + "#3", pr + "#4", pr + "#5"};
    }
    return f;
  };
  // Decodes `count` symbols starting at bit `bitpos` and returns, for every query row i,
  // sum_j W[i*wstride + j] * symbol_j with W in shared memory (`wmem` of type `wty`).
  auto decodeDot = [&](const std::string &words, const std::string &bitpos,
                       const std::string &lutOff, const std::string &auxB, int64_t count,
                       const std::string &wmem, const std::string &wty, int64_t wstride) {
    DState s0 = initState(words, bitpos);
    std::string r = e.fresh("dd");
    std::string j = e.fresh("j");
    std::vector<std::string> a = {e.fresh("win"), e.fresh("nb"), e.fresh("nw"), e.fresh("wp")};
    std::vector<std::string> acc(NQ);
    for (auto &x : acc)
      x = e.fresh("ac");
    std::string iters = a[0] + " = " + s0.win + ", " + a[1] + " = " + s0.nb + ", " + a[2] +
                        " = " + s0.nw + ", " + a[3] + " = " + s0.wp;
    for (int64_t i = 0; i < NQ; ++i)
      iters += ", " + acc[i] + " = " + fz;
    std::string tys = "i64, i32, i32, i32" + std::string(NQ ? ", " : "") + rep("f32", NQ);
    // An i32 induction variable: one 32-bit add and compare per iteration instead of 64-bit.
    e.S(r + ":" + std::to_string(4 + NQ) + " = scf.for " + j + " = " + i0 + " to " +
        e.ci32(count) + " step " + e.ci32(U) + " iter_args(" + iters + ") -> (" + tys +
        ") : i32 {");
    e.push();
    DState s{a[0], a[1], a[2], a[3]};
    const std::string jI = e.L("arith.index_castui " + j + " : i32 to index");
    std::vector<std::string> f = decodeSymbols(s, words, lutOff, auxB);
    std::vector<std::string> out = {s.win, s.nb, s.nw, s.wp};
    for (int64_t i = 0; i < NQ; ++i) {
      std::string wv = e.L("vector.load " + wmem + "[" + e.add(e.ci(i * wstride), jI) +
                           "] {alignment = " + std::to_string(4 * std::min<int64_t>(U, 4)) +
                           "} : " + wty + ", " + VU);
      std::string x = acc[i];
      for (int64_t u = 0; u < U; ++u) {
        std::string wu = e.L("vector.extract " + wv + "[" + std::to_string(u) + "] : f32 from " + VU);
        x = e.fma(wu, f[u], x);
      }
      out.push_back(x);
    }
    e.S("scf.yield " + join(out) + " : " + tys);
    e.pop();
    e.S("}");
    std::vector<std::string> res;
    for (int64_t i = 0; i < NQ; ++i)
      res.push_back(r + "#" + std::to_string(4 + i));
    return res;
  };

  // Two streams in one loop (encoded-overlap): `count` symbols of stream a weighted by
  // wa[i*wsa + j] and of stream b by wb[i*wsb + j]. Each refill group looks up both streams'
  // codes before one branch (taken when either group fails its check), so the two dependent
  // LUT chains are in one basic block and their shared-memory latencies overlap. Returns the
  // NQ dot products of a, then those of b.
  struct Stream {
    std::string words, bitpos, lutOff, auxB, wmem, wty;
    int64_t wstride;
  };
  auto decodeDot2 = [&](const Stream &A, const Stream &B, int64_t count,
                        const std::vector<std::string> &initA) {
    const Stream *S2[2] = {&A, &B};
    DState s0[2] = {initState(A.words, A.bitpos), initState(B.words, B.bitpos)};
    std::string r = e.fresh("dd"), j = e.fresh("j");
    std::vector<std::string> names, inits, tys;
    for (int t = 0; t < 2; ++t) {
      for (const std::string *x : {&s0[t].win, &s0[t].nb, &s0[t].nw, &s0[t].wp}) {
        names.push_back(e.fresh("st"));
        inits.push_back(*x);
      }
      tys.insert(tys.end(), {"i64", "i32", "i32", "i32"});
    }
    // Stream a's accumulators start at initA (the rescaled value accumulators: fewer values
    // live across the loop).
    for (int64_t i = 0; i < 2 * NQ; ++i) {
      names.push_back(e.fresh("ac"));
      inits.push_back(i < NQ ? initA[i] : fz);
      tys.push_back("f32");
    }
    std::string iters;
    for (size_t k = 0; k < names.size(); ++k)
      iters += std::string(k ? ", " : "") + names[k] + " = " + inits[k];
    e.S(r + ":" + std::to_string(names.size()) + " = scf.for " + j + " = " + i0 + " to " +
        e.ci32(count) + " step " + e.ci32(U) + " iter_args(" + iters + ") -> (" + join(tys) +
        ") : i32 {");
    e.push();
    DState s[2] = {{names[0], names[1], names[2], names[3]},
                   {names[4], names[5], names[6], names[7]}};
    const std::string jI = e.L("arith.index_castui " + j + " : i32 to index");
    std::vector<std::string> f[2] = {std::vector<std::string>(U), std::vector<std::string>(U)};
    std::vector<std::string> acc[2] = {
        std::vector<std::string>(names.begin() + 8, names.begin() + 8 + NQ),
        std::vector<std::string>(names.begin() + 8 + NQ, names.end())};
    const std::string g2ty = gty + ", " + gty;
    for (int64_t u = 0; u < U; u += G) {
      Group g[2];
      for (int t = 0; t < 2; ++t)
        g[t] = groupLookups(s[t], S2[t]->words, S2[t]->lutOff);
      std::string either = e.bin("arith.ori", g[0].miss, g[1].miss, "i1");
      std::string gr = e.fresh("grp2");
      e.S(gr + ":" + std::to_string(2 * (G + 4)) + " = scf.if " + either + " -> (" + g2ty +
          ") {");
      e.push();
      {
        std::vector<std::string> y;
        for (int t = 0; t < 2; ++t) {
          std::string one = groupResolve(s[t], g[t], S2[t]->words, S2[t]->lutOff, S2[t]->auxB);
          for (int64_t k = 0; k < G + 4; ++k)
            y.push_back(one + "#" + std::to_string(k));
        }
        e.S("scf.yield " + join(y) + " : " + g2ty);
      }
      e.pop();
      e.S("} else {");
      e.push();
      {
        // Both fast: the two groups' yields, written as one.
        std::vector<std::string> y;
        for (int t = 0; t < 2; ++t) {
          for (int64_t k = 0; k < G; ++k)
            y.push_back(e.L("arith.bitcast " + e.bin("arith.andi", g[t].ents[k], iFloat, "i32") +
                            " : i32 to f32"));
          y.insert(y.end(), {g[t].win, e.bin("arith.subi", s[t].nb, g[t].cum, "i32"), s[t].nw,
                             s[t].wp});
        }
        e.S("scf.yield " + join(y) + " : " + g2ty);
      }
      e.pop();
      e.S("}");
      // The group's products right away (its symbols need not stay live across the next
      // group's lookups): one G-wide weight load per query row and stream.
      const std::string VG = "vector<" + std::to_string(G) + "xf32>";
      for (int t = 0; t < 2; ++t) {
        const int64_t b = t * (G + 4);
        for (int64_t k = 0; k < G; ++k)
          f[t][u + k] = gr + "#" + std::to_string(b + k);
        s[t] = {gr + "#" + std::to_string(b + G), gr + "#" + std::to_string(b + G + 1),
                gr + "#" + std::to_string(b + G + 2), gr + "#" + std::to_string(b + G + 3)};
        for (int64_t i = 0; i < NQ; ++i) {
          std::string wv = e.L("vector.load " + S2[t]->wmem + "[" +
                               e.add(e.ci(i * S2[t]->wstride + u), jI) + "] {alignment = " +
                               std::to_string(4 * std::min<int64_t>(G, 4)) + "} : " +
                               S2[t]->wty + ", " + VG);
          std::string &x = acc[t][i];
          for (int64_t k = 0; k < G; ++k) {
            std::string wk =
                e.L("vector.extract " + wv + "[" + std::to_string(k) + "] : f32 from " + VG);
            x = e.fma(wk, f[t][u + k], x);
          }
        }
      }
    }
    std::vector<std::string> out = {s[0].win, s[0].nb, s[0].nw, s[0].wp,
                                    s[1].win, s[1].nb, s[1].nw, s[1].wp};
    for (int t = 0; t < 2; ++t)
      out.insert(out.end(), acc[t].begin(), acc[t].end());
    e.S("scf.yield " + join(out) + " : " + join(tys));
    e.pop();
    e.S("}");
    std::vector<std::string> res;
    for (int64_t i = 0; i < 2 * NQ; ++i)
      res.push_back(r + "#" + std::to_string(8 + i));
    return res;
  };

  // One multi-symbol lookup at the window of `s` (updated): the MSB-bit table entry at
  // mlutOff, or on a miss (a long code, the escape, a large symbol) decodeOne. Returns the
  // three symbol slots (unused ones 0) and the count n: as f32 (`raw` false; the tables hold
  // f16) or as the tables' 16-bit symbol bits in i32 (`raw` true; a miss's symbol rounded to
  // the query type). A second lookup (`guard`) past the vector's end never takes the slow path.
  auto multiLookup = [&](DState &s, const std::string &j, const std::string &cCount, bool guard,
                         const std::string &mlutOff, const std::string &lutOff,
                         const std::string &auxB, const std::string &words, bool raw) {
    std::string hi = windowTop(s.win);
    std::string idx = e.toIdx(e.bin("arith.shrui", hi, e.ci32(32 - MSB), "i32"));
    std::string ev = e.L("vector.load %sLut[" + e.add(mlutOff, e.mul(idx, e.ci(2))) +
                         "] {alignment = 8} : " + LUTT + ", vector<2xi32>");
    std::string w0 = e.L("vector.extract " + ev + "[0] : i32 from vector<2xi32>");
    std::string w1 = e.L("vector.extract " + ev + "[1] : i32 from vector<2xi32>");
    std::string n = e.bin("arith.shrui", w1, e.ci32(24), "i32");
    std::string miss = e.cmp("eq", n, i0, "i32");
    if (guard)
      miss = e.bin("arith.andi", miss, e.cmp("ult", j, cCount, "i32"), "i1");
    const std::string st = raw ? "i32" : "f32", zero = raw ? i0 : fz;
    std::string d = e.fresh(raw ? "mw" : "ms");
    const std::string dty = st + ", " + st + ", " + st + ", i32, i64, i32, i32, i32";
    e.S(d + ":8 = scf.if " + miss + " -> (" + dty + ") {");
    e.push();
    {
      DState g = s;
      std::string f = decodeOne(g, lutOff, auxB, words);
      if (raw)
        f = e.L("arith.extui " +
                e.L("arith.bitcast " + e.L("arith.truncf " + f + " : f32 to " + QT) + " : " + QT +
                    " to i16") +
                " : i16 to i32");
      e.S("scf.yield " + f + ", " + zero + ", " + zero + ", " + e.ci32(1) + ", " + g.win + ", " +
          g.nb + ", " + g.nw + ", " + g.wp + " : " + dty);
    }
    e.pop();
    e.S("} else {");
    e.push();
    {
      std::string f0, f1, f2;
      if (raw) {
        f0 = w0;
        f1 = e.bin("arith.shrui", w0, e.ci32(16), "i32");
        f2 = w1;
      } else {
        auto half = [&](const std::string &w, bool high) {
          std::string y = high ? e.bin("arith.shrui", w, e.ci32(16), "i32") : w;
          std::string h = e.L("arith.bitcast " + e.L("arith.trunci " + y + " : i32 to i16") + " : i16 to f16");
          return e.L("arith.extf " + h + " : f16 to f32");
        };
        f0 = half(w0, false), f1 = half(w0, true);
        f2 = MSS > 2 ? half(w1, false) : fz;
      }
      std::string len = e.bin("arith.andi", e.bin("arith.shrui", w1, e.ci32(16), "i32"), e.ci32(255), "i32");
      std::string win1 = e.bin("arith.shli", s.win, e.L("arith.extui " + len + " : i32 to i64"), "i64");
      std::string nb1 = e.bin("arith.subi", s.nb, len, "i32");
      e.S("scf.yield " + f0 + ", " + f1 + ", " + f2 + ", " + n + ", " + win1 + ", " + nb1 + ", " +
          s.nw + ", " + s.wp + " : " + dty);
    }
    e.pop();
    e.S("}");
    s = {d + "#4", d + "#5", d + "#6", d + "#7"};
    return std::make_pair(std::vector<std::string>{d + "#0", d + "#1", d + "#2"}, d + "#3");
  };

  // Multi-symbol form of decodeDot: each lookup of the MSB-bit multi LUT at `mlutOff` (words)
  // decodes up to MSS symbols with the same straight-line work (MSS symbol slots, unused ones
  // hold 0), so a warp's lanes stay together however many codes each one found. One refill
  // (>= 32 valid bits) serves two lookups (<= 2*MSB bits). Symbol j of the vector weighs
  // W[j][0..NQ) (`wmem`, [count + MSPAD][NQP], rows from `count` on zero: what the lookups
  // after the last symbol find adds nothing, and they never take the slow path). The loop
  // runs until `count` symbols are decoded. Misses take decodeOne (one symbol).
  auto decodeDotMulti = [&](const std::string &words, const std::string &bitpos,
                            const std::string &mlutOff, const std::string &lutOff,
                            const std::string &auxB, int64_t count, const std::string &wmem,
                            const std::string &wty) {
    DState s0 = initState(words, bitpos);
    // Loop state: the decoder (window, bits, next word, word index), symbols decoded, sums.
    std::vector<std::string> types = {"i64", "i32", "i32", "i32", "i32"};
    std::vector<std::string> init = {s0.win, s0.nb, s0.nw, s0.wp, i0};
    for (int64_t i = 0; i < NQ; ++i) {
      types.push_back("f32");
      init.push_back(fz);
    }
    const std::string tys = join(types);
    std::string r = e.fresh("dm");
    std::vector<std::string> a(5 + NQ), b(5 + NQ);
    for (auto &x : a)
      x = e.fresh("wa");
    for (auto &x : b)
      x = e.fresh("wb");
    std::string args;
    for (size_t k = 0; k < a.size(); ++k)
      args += std::string(k ? ", " : "") + a[k] + " = " + init[k];
    std::string cCount = e.ci32(count);
    e.S(r + ":" + std::to_string(5 + NQ) + " = scf.while (" + args + ") : (" + tys + ") -> (" +
        tys + ") {");
    e.push();
    std::string more = e.cmp("ult", a[4], cCount, "i32");
    e.S("scf.condition(" + more + ") " + join(a) + " : " + tys);
    e.pop();
    e.S("} do {");
    {
      std::string bargs;
      for (size_t k = 0; k < b.size(); ++k)
        bargs += std::string(k ? ", " : "") + b[k] + ": " + types[k];
      e.S("^bb0(" + bargs + "):");
    }
    e.push();
    DState s{b[0], b[1], b[2], b[3]};
    refill(s, words);
    std::string j = b[4];
    std::vector<std::string> x(NQ);
    for (int64_t i = 0; i < NQ; ++i)
      x[i] = b[5 + i];
    const int64_t VW = NQP <= 4 ? NQP : 4;
    const std::string VWT = "vector<" + std::to_string(VW) + "xf32>";
    for (int look = 0; look < 2; ++look) {
      auto [f, cnt] = multiLookup(s, j, cCount, look > 0, mlutOff, lutOff, auxB, words, false);
      for (int k = 0; k < MSS; ++k) {
        std::string rowBase = e.mul(e.toIdx(e.bin("arith.addi", j, e.ci32(k), "i32")), e.ci(NQP));
        for (int64_t v0 = 0; v0 < NQ; v0 += VW) {
          std::string wv = e.L("vector.load " + wmem + "[" + e.add(rowBase, e.ci(v0)) +
                               "] {alignment = " + std::to_string(4 * VW) + "} : " + wty + ", " + VWT);
          for (int64_t i = v0; i < std::min(NQ, v0 + VW); ++i) {
            std::string wi = e.L("vector.extract " + wv + "[" + std::to_string(i - v0) + "] : f32 from " + VWT);
            x[i] = e.fma(wi, f[k], x[i]);
          }
        }
      }
      j = e.bin("arith.addi", j, cnt, "i32");
    }
    std::vector<std::string> out = {s.win, s.nb, s.nw, s.wp, j};
    for (int64_t i = 0; i < NQ; ++i)
      out.push_back(x[i]);
    e.S("scf.yield " + join(out) + " : " + tys);
    e.pop();
    e.S("}");
    std::vector<std::string> res;
    for (int64_t i = 0; i < NQ; ++i)
      res.push_back(r + "#" + std::to_string(5 + i));
    return res;
  };

  // ---- tensor-core dot products (MMA) -----------------------------------------------------
  // The staging tile as the query type (operand A rows) and as f32 (the warp's products read
  // back per thread), two views of one workgroup buffer. A warp only touches its own 32 rows,
  // so a warp barrier orders the stores, the mma operand loads and the read-back.
  const std::string STT = MMA ? wgTy(D * SP, QT) : "", STF = MMA ? wgTy(D * SP / 2, "f32") : "";
  const std::string QHT = wgTy(NQ * (D + 8), QT), AHT = wgTy(NQ * (VB + 8), QT);
  std::string stH, stF, gq, tq, warpRow0;
  if (MMA) {
    stH = e.L("memref.view %sStage[" + c0 + "][] : " + wgTy(D * SP * 2, "i8") + " to " + STT);
    stF = e.L("memref.view %sStage[" + c0 + "][] : " + wgTy(D * SP * 2, "i8") + " to " + STF);
    gq = e.L("arith.divui " + lane + ", " + e.ci(4) + " : index");
    tq = e.L("arith.remui " + lane + ", " + e.ci(4) + " : index");
    warpRow0 = e.mul(warp, c32);
  }
  std::string allLanes = e.ci32(-1);
  auto warpSync = [&]() { e.S("nvvm.bar.warp.sync " + allLanes + " : i32"); };
  // Decodes `count` symbols from state `s0` into staging row `row` (columns 0..count).
  auto decodeStore = [&](const DState &s0, const std::string &words, const std::string &lutOff,
                         const std::string &auxB, int64_t count, const std::string &row) {
    std::string r = e.fresh("ds"), j = e.fresh("j");
    std::vector<std::string> a = {e.fresh("win"), e.fresh("nb"), e.fresh("nw"), e.fresh("wp")};
    e.S(r + ":4 = scf.for " + j + " = " + i0 + " to " + e.ci32(count) + " step " + e.ci32(U) +
        " iter_args(" + a[0] + " = " + s0.win + ", " + a[1] + " = " + s0.nb + ", " + a[2] +
        " = " + s0.nw + ", " + a[3] + " = " + s0.wp + ") -> (i64, i32, i32, i32) : i32 {");
    e.push();
    DState s{a[0], a[1], a[2], a[3]};
    std::vector<std::string> f = decodeSymbols(s, words, lutOff, auxB);
    std::vector<std::string> h;
    for (auto &x : f)
      h.push_back(e.L("arith.truncf " + x + " : f32 to " + QT));
    std::string vec = e.L("vector.from_elements " + join(h) + " : vector<" + std::to_string(U) +
                          "x" + QT + ">");
    std::string at = e.add(e.mul(row, e.ci(SP)), e.L("arith.index_castui " + j + " : i32 to index"));
    e.S("vector.store " + vec + ", " + stH + "[" + at + "] {alignment = 16} : " + STT +
        ", vector<" + std::to_string(U) + "x" + QT + ">");
    e.S("scf.yield " + s.win + ", " + s.nb + ", " + s.nw + ", " + s.wp + " : i64, i32, i32, i32");
    e.pop();
    e.S("}");
    return DState{r + "#0", r + "#1", r + "#2", r + "#3"};
  };
  // One chunk (the CH staging columns) of the warp's products: for its two 16-row tiles,
  // C[row][n] += sum_k stage[row][k] * B[n][col + k], B with NQ rows of pitch bStride; the
  // fragment rows n >= NQ are zero.
  const std::string fragTy = QT == "bf16" ? "i32" : "vector<2xf16>";
  auto frag = [&](const std::string &mem, const std::string &ty, const std::string &idx) {
    std::string v = e.L("vector.load " + mem + "[" + idx + "] : " + ty + ", vector<2x" + QT + ">");
    if (QT == "f16")
      return v;
    std::string b = e.L("vector.bitcast " + v + " : vector<2x" + QT + "> to vector<1xi32>");
    return e.L("vector.extract " + b + "[0] : i32 from vector<1xi32>");
  };
  auto mmaChunk = [&](std::vector<std::string> &C, const std::string &bMem, const std::string &bTy,
                      int64_t bStride, const std::string &col, const std::string &aCol) {
    std::string kc = e.mul(tq, e.ci(2));
    std::string akc = aCol.empty() ? kc : e.add(kc, aCol);
    std::string bRow = e.mul(e.minu(gq, e.ci(NQ - 1)), e.ci(bStride));
    std::string bUsed = e.cmp("ult", gq, e.ci(NQ), "index");
    std::string zero = QT == "bf16" ? i0 : e.L("arith.constant dense<0.0> : vector<2xf16>");
    std::string b0 = e.sel(bUsed, frag(bMem, bTy, e.add(bRow, e.add(kc, col))), zero, fragTy);
    std::string b1 = e.sel(bUsed, frag(bMem, bTy, e.add(bRow, e.add(kc, e.add(col, e.ci(8))))),
                           zero, fragTy);
    for (int mt = 0; mt < 2; ++mt) {
      std::string r0 = e.add(warpRow0, e.add(gq, e.ci(16 * mt)));
      std::string base0 = e.add(e.mul(r0, e.ci(SP)), akc);
      std::string base1 = e.add(base0, e.ci(8 * SP));
      std::string a0 = frag(stH, STT, base0), a1 = frag(stH, STT, base1),
                  a2 = frag(stH, STT, e.add(base0, e.ci(8))), a3 = frag(stH, STT, e.add(base1, e.ci(8)));
      std::string m = e.L("nvvm.mma.sync A[" + a0 + ", " + a1 + ", " + a2 + ", " + a3 + "] B[" +
                          b0 + ", " + b1 + "] C[" + C[4 * mt] + ", " + C[4 * mt + 1] + ", " +
                          C[4 * mt + 2] + ", " + C[4 * mt + 3] +
                          "] {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, "
                          "multiplicandAPtxType = #nvvm.mma_type<" + QT +
                          ">, multiplicandBPtxType = #nvvm.mma_type<" + QT +
                          ">, shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (" + fragTy + ", " +
                          fragTy + ", f32) -> !llvm.struct<(f32, f32, f32, f32)>");
      for (int k = 0; k < 4; ++k)
        C[4 * mt + k] = e.L("llvm.extractvalue " + m + "[" + std::to_string(k) +
                            "] : !llvm.struct<(f32, f32, f32, f32)>");
    }
  };
  // The chunk loop of one vector per thread: per chunk, `decodeChunk` (only where `active`,
  // else the decoder state passes through) writes the thread's next CH symbols into its
  // staging row, then the warp's mma over them against B columns ch*CH... (at staging column
  // (ch mod 2)*CH of the ring when `ring`; `decodeChunk` then gets the vector's symbol count
  // at the chunk's end, (ch + 1)*CH as i32). The loop carries the decoder state (`state`, of
  // `types`) and the 8 accumulators of the warp's two 16-row tiles, which it returns.
  using DecodeChunk =
      std::function<std::vector<std::string>(const std::vector<std::string> &, const std::string &)>;
  auto chunkLoop = [&](const std::vector<std::string> &state, const std::vector<std::string> &types,
                       const std::string &active, int64_t count, const std::string &bMem,
                       const std::string &bTy, int64_t bStride, bool ring,
                       const DecodeChunk &decodeChunk) {
    const size_t ns = state.size();
    std::string r = e.fresh("ck"), ch = e.fresh("ch");
    std::vector<std::string> a(ns), ca(8);
    for (auto &x : a)
      x = e.fresh("st");
    for (auto &x : ca)
      x = e.fresh("mc");
    std::string iters;
    for (size_t k = 0; k < ns; ++k)
      iters += (k ? ", " : "") + a[k] + " = " + state[k];
    for (auto &x : ca)
      iters += ", " + x + " = " + fz;
    const std::string sty = join(types), tys = sty + ", " + rep("f32", 8);
    e.S(r + ":" + std::to_string(ns + 8) + " = scf.for " + ch + " = " + c0 + " to " +
        e.ci(count / CH) + " step " + c1 + " iter_args(" + iters + ") -> (" + tys + ") {");
    e.push();
    std::string chunkEnd =
        ring ? e.L("arith.index_castui " + e.mul(e.add(ch, c1), e.ci(CH)) + " : index to i32") : "";
    std::vector<std::string> nx;
    if (active.empty()) {
      nx = decodeChunk(a, chunkEnd);
    } else {
      std::string d = e.fresh("dk");
      e.S(d + ":" + std::to_string(ns) + " = scf.if " + active + " -> (" + sty + ") {");
      e.push();
      e.S("scf.yield " + join(decodeChunk(a, chunkEnd)) + " : " + sty);
      e.pop();
      e.S("} else {");
      e.push();
      e.S("scf.yield " + join(a) + " : " + sty);
      e.pop();
      e.S("}");
      for (size_t k = 0; k < ns; ++k)
        nx.push_back(d + "#" + std::to_string(k));
    }
    warpSync();
    std::vector<std::string> C = ca;
    // Named in emission order (argument evaluation order is unspecified).
    std::string half =
        ring ? e.mul(e.L("arith.remui " + ch + ", " + e.ci(2) + " : index"), e.ci(CH)) : "";
    std::string col = e.mul(ch, e.ci(CH));
    mmaChunk(C, bMem, bTy, bStride, col, half);
    warpSync();
    e.S("scf.yield " + join(nx) + ", " + join(C) + " : " + tys);
    e.pop();
    e.S("}");
    std::vector<std::string> out;
    for (size_t k = 0; k < 8; ++k)
      out.push_back(r + "#" + std::to_string(ns + k));
    return out;
  };
  const std::vector<std::string> stateTys = {"i64", "i32", "i32", "i32"};
  // The single-symbol decoder's chunk: CH symbols of the vector (state: the DState).
  auto chunkLoopSingle = [&](const DState &s0, const std::string &active, const std::string &words,
                             const std::string &lutOff, const std::string &auxB, int64_t count,
                             const std::string &bMem, const std::string &bTy, int64_t bStride) {
    return chunkLoop({s0.win, s0.nb, s0.nw, s0.wp}, stateTys, active, count, bMem, bTy, bStride,
                     false, [&](const std::vector<std::string> &a, const std::string &) {
                       DState t = decodeStore(DState{a[0], a[1], a[2], a[3]}, words, lutOff,
                                              auxB, CH, tid);
                       return std::vector<std::string>{t.win, t.nb, t.nw, t.wp};
                     });
  };
  // Multi-symbol decoding into the staging ring (MSW): lookups of the MSB-bit tables (symbols
  // stored as the query type's bits) until `target` symbols of the vector are decoded; each
  // lookup writes its 3 symbol slots at ring positions (j + k) mod 32 of row `row` (slots past
  // its n codes are overwritten by the next lookup, or land in a chunk already multiplied).
  // Misses take decodeOne. Returns the decoder state and j.
  auto decodeStoreMulti = [&](const DState &s0, const std::string &j0, const std::string &target,
                              const std::string &words, const std::string &mlutOff,
                              const std::string &lutOff, const std::string &auxB, int64_t count,
                              const std::string &row) {
    const std::string tys = "i64, i32, i32, i32, i32";
    std::string r = e.fresh("dw");
    std::vector<std::string> a(5), b(5);
    for (auto &x : a)
      x = e.fresh("wa");
    for (auto &x : b)
      x = e.fresh("wb");
    std::vector<std::string> init = {s0.win, s0.nb, s0.nw, s0.wp, j0};
    std::string args;
    for (int k = 0; k < 5; ++k)
      args += std::string(k ? ", " : "") + a[k] + " = " + init[k];
    e.S(r + ":5 = scf.while (" + args + ") : (" + tys + ") -> (" + tys + ") {");
    e.push();
    e.S("scf.condition(" + e.cmp("ult", a[4], target, "i32") + ") " + join(a) + " : " + tys);
    e.pop();
    e.S("} do {");
    e.S("^bb0(" + b[0] + ": i64, " + b[1] + ": i32, " + b[2] + ": i32, " + b[3] + ": i32, " +
        b[4] + ": i32):");
    e.push();
    DState s{b[0], b[1], b[2], b[3]};
    refill(s, words);
    std::string j = b[4];
    std::string rowBase = e.mul(row, e.ci(SP));
    std::string cCount = e.ci32(count);
    for (int look = 0; look < 2; ++look) {
      auto [f, cnt] = multiLookup(s, j, cCount, look > 0, mlutOff, lutOff, auxB, words, true);
      for (int k = 0; k < MSS; ++k) {
        std::string pos = e.bin("arith.andi", e.bin("arith.addi", j, e.ci32(k), "i32"),
                                e.ci32(2 * CH - 1), "i32");
        std::string v = e.L("arith.bitcast " + e.L("arith.trunci " + f[size_t(k)] +
                                                   " : i32 to i16") + " : i16 to " + QT);
        e.S("memref.store " + v + ", " + stH + "[" + e.add(rowBase, e.toIdx(pos)) + "] : " + STT);
      }
      j = e.bin("arith.addi", j, cnt, "i32");
    }
    e.S("scf.yield " + s.win + ", " + s.nb + ", " + s.nw + ", " + s.wp + ", " + j + " : " + tys);
    e.pop();
    e.S("}");
    return std::make_pair(DState{r + "#0", r + "#1", r + "#2", r + "#3"}, r + "#4");
  };
  // The multi-symbol decoder's chunk: decode into the ring until the chunk's CH symbols are
  // there (state: the DState and the symbols decoded so far).
  auto chunkLoopMulti = [&](const DState &s0, const std::string &active, const std::string &words,
                            const std::string &mlutOff, const std::string &lutOff,
                            const std::string &auxB, int64_t count, const std::string &bMem,
                            const std::string &bTy, int64_t bStride) {
    std::vector<std::string> tys = stateTys;
    tys.push_back("i32");
    return chunkLoop({s0.win, s0.nb, s0.nw, s0.wp, i0}, tys, active, count, bMem, bTy, bStride,
                     true, [&](const std::vector<std::string> &a, const std::string &chunkEnd) {
                       auto [t, jn] = decodeStoreMulti(DState{a[0], a[1], a[2], a[3]}, a[4],
                                                       chunkEnd, words, mlutOff, lutOff, auxB,
                                                       count, tid);
                       return std::vector<std::string>{t.win, t.nb, t.nw, t.wp, jn};
                     });
  };
  // The warp's products back to their rows: C (row, n) into the warp's staging rows as f32
  // (pitch 9 floats: a thread's reads of its row hit distinct banks), then each thread reads
  // its own row's NQ values.
  auto readBack = [&](const std::vector<std::string> &C) {
    std::string base = e.mul(warp, e.ci(32 * SP / 2));
    warpSync();
    for (int mt = 0; mt < 2; ++mt)
      for (int k = 0; k < 4; ++k) {
        std::string rowL = e.add(gq, e.ci(16 * mt + (k >= 2 ? 8 : 0)));
        std::string n = e.add(e.mul(tq, e.ci(2)), e.ci(k % 2));
        e.S("memref.store " + C[4 * mt + k] + ", " + stF + "[" +
            e.add(base, e.add(e.mul(rowL, e.ci(9)), n)) + "] : " + STF);
      }
    warpSync();
    std::vector<std::string> out;
    for (int64_t i = 0; i < NQ; ++i)
      out.push_back(e.L("memref.load " + stF + "[" + e.add(base, e.add(e.mul(lane, e.ci(9)), e.ci(i))) +
                        "] : " + STF));
    return out;
  };

  // ---- tile loop -------------------------------------------------------------------------
  // scf.if `cond` -> NQ scores { then() } else { -inf }: the scores of a key row that may not
  // exist (past T, or past the split's last tile).
  auto scoresOrNegInf = [&](const std::string &cond, const char *name,
                            const std::function<std::vector<std::string>()> &then) {
    std::string r = e.fresh(name);
    e.S(resDecl(r, NQ) + " = scf.if " + cond + " -> (" + rep("f32", NQ) + ") {");
    e.push();
    std::vector<std::string> y = then();
    e.S("scf.yield " + join(y) + " : " + rep("f32", NQ));
    e.pop();
    e.S("} else {");
    e.push();
    e.S("scf.yield " + rep(ninf, NQ) + " : " + rep("f32", NQ));
    e.pop();
    e.S("}");
    return e.results(r, NQ);
  };
  // Key row `tt` (a token of this row): its global key block and (unless `blockOnly`) its bit
  // position in the key stream.
  auto keyRowAt = [&](const std::string &tt, bool blockOnly) {
    std::string kb = e.L("arith.divui " + tt + ", " + cKB + " : index");
    std::string kv = blockOnly ? "" : e.L("arith.remui " + tt + ", " + cKB + " : index");
    std::string gkb = e.add(kBlk0, kb);
    if (blockOnly)
      return std::make_pair(gkb, std::string());
    std::string wbase = e.toIdx(e.ldI("%kbo", gkb));
    std::string boff = e.toIdx(e.ldI("%kvo", e.add(e.mul(gkb, cKB), kv)));
    return std::make_pair(gkb, e.add(e.mul(wbase, c32), boff));
  };
  // The bit position of value column tid of tile %tile in the value stream.
  auto valueColumnBitpos = [&]() {
    std::string gvb = e.add(vBlk0, "%tile");
    std::string wbase = e.toIdx(e.ldI("%vbo", gvb));
    std::string boff = e.toIdx(e.ldI("%vvo", e.add(e.mul(gvb, cD), tid)));
    return e.add(e.mul(wbase, c32), boff);
  };
  // Key phase: the scores (log2 domain) of the R key rows of the tile starting at token `ts`
  // that thread tid holds (rows r*D + tid): encoded rows decoded, recent rows from fp16,
  // rows past T at -inf.
  auto keyPhase = [&](const std::string &ts) {
  std::vector<std::vector<std::string>> sc(R);
  for (int64_t r = 0; r < R; ++r) {
    std::string tt = e.add(ts, e.add(e.ci(r * D), tid));
    std::string isEnc = e.cmp("ult", tt, nkEnc, "index");
    std::vector<std::string> mmaDots;
    if (MMA) {
      // The row into the staging tile chunk by chunk, each followed by the warp's mma; the
      // recent and out-of-range rows hold stale values whose products are not used.
      std::string h0 = e.fresh("kh");
      e.S(h0 + ":4 = scf.if " + isEnc + " -> (i64, i32, i32, i32) {");
      e.push();
      {
        DState s1 = initState("%kw", keyRowAt(tt, false).second);
        e.S("scf.yield " + s1.win + ", " + s1.nb + ", " + s1.nw + ", " + s1.wp +
            " : i64, i32, i32, i32");
      }
      e.pop();
      e.S("} else {");
      e.push();
      e.S("scf.yield " + e.ci64(0) + ", " + i0 + ", " + i0 + ", " + i0 + " : i64, i32, i32, i32");
      e.pop();
      e.S("}");
      DState k0{h0 + "#0", h0 + "#1", h0 + "#2", h0 + "#3"};
      mmaDots = readBack(MSW ? chunkLoopMulti(k0, isEnc, "%kw", c0, c0, kAux, D, "%sQh", QHT, D + 8)
                             : chunkLoopSingle(k0, isEnc, "%kw", c0, kAux, D, "%sQh", QHT, D + 8));
    }
    std::string res = e.fresh("ks");
    e.S(resDecl(res, NQ) + " = scf.if " + isEnc + " -> (" + rep("f32", NQ) + ") {");
    e.push();
    {
      auto [gkb, bitpos] = keyRowAt(tt, MMA); // mma: the row was decoded above
      std::vector<std::string> dots;
      if (MMA) // raw queries in the products: scale them here, in f32
        for (auto &d : mmaDots)
          dots.push_back(e.fmul(d, scl));
      else
        dots = MS ? decodeDotMulti("%kw", bitpos, c0, c0, kAux, D, "%sQT", QTT)
                  : decodeDot("%kw", bitpos, c0, kAux, D, "%sQ", QST, D);
      std::string mn = e.ld("%kmin", gkb, MF), stp = e.ld("%kstep", gkb, MF);
      std::vector<std::string> o;
      for (int64_t i = 0; i < NQ; ++i)
        o.push_back(e.fma(mn, qsum[i], e.fmul(stp, dots[i])));
      e.S("scf.yield " + join(o) + " : " + rep("f32", NQ));
    }
    e.pop();
    e.S("} else {");
    e.push();
    {
      std::string valid = e.cmp("ult", tt, T, "index");
      std::vector<std::string> rec = scoresOrNegInf(valid, "kr", [&] {
        // fp16 recent key row, 8 channels per 128-bit load.
        std::string base = e.add(kRec0, e.mul(e.sub(tt, nkEnc), cD));
        std::string rr = e.fresh("kd");
        std::string vz8 = e.L("arith.constant dense<0.0> : vector<8xf32>");
        std::vector<std::string> a(NQ);
        std::string iters;
        for (int64_t i = 0; i < NQ; ++i) {
          a[i] = e.fresh("ka");
          iters += std::string(i ? ", " : "") + a[i] + " = " + vz8;
        }
        std::string cc = e.fresh("cc");
        e.S(resDecl(rr, NQ) + " = scf.for " + cc + " = " + c0 + " to " + cD + " step " + e.ci(8) +
            " iter_args(" + iters + ") -> (" + rep("vector<8xf32>", NQ) + ") {");
        e.push();
        std::string raw = e.L("vector.load %krec[" + e.add(base, cc) +
                              "] {alignment = 16} : " + MH + ", vector<8xf16>");
        std::string kf = e.L("arith.extf " + raw + " : vector<8xf16> to vector<8xf32>");
        std::vector<std::string> o;
        for (int64_t i = 0; i < NQ; ++i) {
          std::string qv = e.L("vector.load %sQ[" + e.add(e.ci(i * D), cc) +
                               "] {alignment = 32} : " + QST + ", vector<8xf32>");
          o.push_back(e.L("vector.fma " + qv + ", " + kf + ", " + a[i] + " : vector<8xf32>"));
        }
        e.S("scf.yield " + join(o) + " : " + rep("vector<8xf32>", NQ));
        e.pop();
        e.S("}");
        std::vector<std::string> red8;
        for (int64_t i = 0; i < NQ; ++i)
          red8.push_back(e.L("vector.reduction <add>, " +
                          (NQ == 1 ? rr : rr + "#" + std::to_string(i)) +
                          " : vector<8xf32> into f32"));
        return red8;
      });
      e.S("scf.yield " + join(rec) + " : " + rep("f32", NQ));
    }
    e.pop();
    e.S("}");
    sc[r] = e.results(res, NQ);
  }
  return sc;
  };
  // State: m[NQ] (uniform over the CTA), l[NQ] and b[NQ] (per-thread partial sums of p and
  // p*min_t), acc[NQ] (channel tid).
  // encoded-overlap also carries the next tile's NQ scores.
  const int64_t NST = 4 * NQ + (OV ? NQ : 0);
  const std::string stTys = rep("f32", NST);
  std::vector<std::string> st(NST);
  for (auto &x : st)
    x = e.fresh("s");
  std::vector<std::vector<std::string>> sc0;
  if (OV)
    sc0 = keyPhase(e.mul(tBeg, cVB));
  {
    std::string iters;
    for (int64_t k = 0; k < NST; ++k)
      iters += std::string(k ? ", " : "") + st[k] + " = " +
               (k >= 4 * NQ ? sc0[0][k - 4 * NQ] : k < NQ ? ninf : fz);
    e.S("%tl:" + std::to_string(NST) + " = scf.for %tile = " + tBeg + " to " + tEnd +
        " step " + c1 + " iter_args(" + iters + ") -> (" + stTys + ") {");
  }
  e.push();
  std::string ts = e.mul("%tile", cVB);
  std::string venc = e.cmp("ult", ts, nvEnc, "index");
  // Key phase (encoded-overlap: this tile's scores come from the previous iteration).
  std::vector<std::vector<std::string>> sc;
  if (!OV)
    sc = keyPhase(ts);
  else
    sc = {std::vector<std::string>(st.begin() + 4 * NQ, st.end())};
  // Tile max over the CTA.
  std::vector<std::string> tmax(NQ);
  for (int64_t i = 0; i < NQ; ++i) {
    std::string m = sc[0][i];
    for (int64_t r = 1; r < R; ++r)
      m = e.fmax(m, sc[r][i]);
    for (int64_t off = 16; off >= 1; off /= 2)
      m = e.fmax(m, e.shfl(m, e.ci32(off), w32));
    tmax[i] = m;
  }
  std::string isL0 = e.cmp("eq", lane, c0, "index");
  e.S("scf.if " + isL0 + " {");
  e.push();
  for (int64_t i = 0; i < NQ; ++i)
    e.S("memref.store " + tmax[i] + ", %sRed[" + e.add(e.mul(warp, e.ci(NQ)), e.ci(i)) + "] : " + RST);
  e.pop();
  e.S("}");
  e.S("gpu.barrier");
  std::vector<std::string> newm(NQ), alpha(NQ);
  for (int64_t i = 0; i < NQ; ++i) {
    std::string m = st[i];
    for (int64_t w = 0; w < NW; ++w)
      m = e.fmax(m, e.L("memref.load %sRed[" + e.ci(w * NQ + i) + "] : " + RST));
    newm[i] = m;
    alpha[i] = e.exp2(e.fsub(st[i], m)); // m = -inf at the start: 2^-inf = 0
  }
  // Probabilities -> A (shared), partial sums.
  std::vector<std::string> lN(NQ), bN(NQ);
  for (int64_t i = 0; i < NQ; ++i) {
    lN[i] = e.fmul(st[NQ + i], alpha[i]);
    bN[i] = e.fmul(st[2 * NQ + i], alpha[i]);
  }
  for (int64_t r = 0; r < R; ++r) {
    std::string tok = e.add(e.ci(r * D), tid);
    std::string pr = e.fresh("mp");
    e.S(pr + ":2 = scf.if " + venc + " -> (f32, f32) {");
    e.push();
    {
      std::string pidx = e.add(e.mul(e.add(vBlk0, "%tile"), cVB), tok);
      e.S("scf.yield " + e.ld("%vmin", pidx, MF) + ", " + e.ld("%vstep", pidx, MF) + " : f32, f32");
    }
    e.pop();
    e.S("} else {");
    e.push();
    e.S("scf.yield " + fz + ", " + f1 + " : f32, f32");
    e.pop();
    e.S("}");
    for (int64_t i = 0; i < NQ; ++i) {
      std::string p = e.exp2(e.fsub(sc[r][i], newm[i]));
      std::string a = e.fmul(p, pr + "#1");
      if (!MMA)
        e.S("memref.store " + a + ", %sA[" + e.add(e.ci(i * VB), tok) + "] : " + AST);
      if (MMA)
        e.S("memref.store " + e.L("arith.truncf " + a + " : f32 to " + QT) + ", %sAh[" +
            e.add(e.ci(i * (VB + 8)), tok) + "] : " + AHT);
      if (MS && !MSW)
        e.S("memref.store " + a + ", %sAT[" + e.add(e.mul(tok, e.ci(NQP)), e.ci(i)) + "] : " + ATT);
      lN[i] = e.fadd(lN[i], p);
      bN[i] = e.fma(p, pr + "#0", bN[i]);
    }
  }
  e.S("gpu.barrier");
  // Value phase: thread tid owns channel tid.
  std::vector<std::string> accS(NQ);
  for (int64_t i = 0; i < NQ; ++i)
    accS[i] = e.fmul(st[3 * NQ + i], alpha[i]);
  // The value phase of this tile alone: the NQ accumulators of channel tid.
  auto valuePhase = [&]() {
  std::string vres = e.fresh("va");
  e.S(resDecl(vres, NQ) + " = scf.if " + venc + " -> (" + rep("f32", NQ) + ") {");
  e.push();
  {
    std::string bitpos = valueColumnBitpos();
    std::vector<std::string> dots;
    if (MMA) {
      // Column tid chunk by chunk, each multiplied by the probabilities (this branch is
      // uniform over the CTA: the tile is encoded or not).
      std::vector<std::string> C =
          MSW ? chunkLoopMulti(initState("%vw", bitpos), "", "%vw", e.ci(2 * MSE), c2048, vAux,
                               VB, "%sAh", AHT, VB + 8)
              : chunkLoopSingle(initState("%vw", bitpos), "", "%vw", c2048, vAux, VB, "%sAh",
                                AHT, VB + 8);
      dots = readBack(C);
    } else {
      dots = MS ? decodeDotMulti("%vw", bitpos, e.ci(2 * MSE), c2048, vAux, VB, "%sAT", ATT)
                : decodeDot("%vw", bitpos, c2048, vAux, VB, "%sA", AST, VB);
    }
    std::vector<std::string> o;
    for (int64_t i = 0; i < NQ; ++i)
      o.push_back(e.fadd(accS[i], dots[i]));
    e.S("scf.yield " + join(o) + " : " + rep("f32", NQ));
  }
  e.pop();
  e.S("} else {");
  e.push();
  {
    std::string nvalid = e.minu(cVB, e.sub(T, ts));
    std::string base = e.add(vRec0, e.add(e.mul(e.sub(ts, nvEnc), cD), tid));
    std::string rr = e.fresh("vr");
    std::string t = e.fresh("t");
    std::vector<std::string> a(NQ);
    std::string iters;
    for (int64_t i = 0; i < NQ; ++i) {
      a[i] = e.fresh("va");
      iters += std::string(i ? ", " : "") + a[i] + " = " + accS[i];
    }
    e.S(resDecl(rr, NQ) + " = scf.for " + t + " = " + c0 + " to " + nvalid + " step " + c1 +
        " iter_args(" + iters + ") -> (" + rep("f32", NQ) + ") {");
    e.push();
    std::string v = e.L("arith.extf " + e.ld("%vrec", e.add(base, e.mul(t, cD)), MH) + " : f16 to f32");
    std::vector<std::string> o;
    for (int64_t i = 0; i < NQ; ++i) {
      std::string w =
          MMA ? e.L("arith.extf " +
                    e.L("memref.load %sAh[" + e.add(e.ci(i * (VB + 8)), t) + "] : " + AHT) +
                    " : " + QT + " to f32")
              : e.L("memref.load %sA[" + e.add(e.ci(i * VB), t) + "] : " + AST);
      o.push_back(e.fma(w, v, a[i]));
    }
    e.S("scf.yield " + join(o) + " : " + rep("f32", NQ));
    e.pop();
    e.S("}");
    e.S("scf.yield " + join(e.results(rr, NQ)) + " : " + rep("f32", NQ));
  }
  e.pop();
  e.S("}");
  return e.results(vres, NQ);
  };
  std::vector<std::string> vout, scNext;
  if (!OV) {
    vout = valuePhase();
  } else {
    // encoded-overlap: this tile's value column and the next tile's key row in one loop, two
    // independent decode chains per thread (the kernel is bound by the latency of one chain's
    // dependent shared-memory lookups). Where either is not encoded (recent rows, the last
    // tile) the two phases run one after the other as without the option.
    std::string nts = e.add(ts, cVB);
    std::string hasNext = e.cmp("ult", e.add("%tile", c1), tEnd, "index");
    std::string ttN = e.add(nts, tid);
    std::string fuse = e.bin("arith.andi", venc,
                             e.bin("arith.andi", hasNext, e.cmp("ult", ttN, nkEnc, "index"), "i1"),
                             "i1");
    std::string ov = e.fresh("ov");
    e.S(resDecl(ov, 2 * NQ) + " = scf.if " + fuse + " -> (" + rep("f32", 2 * NQ) + ") {");
    e.push();
    {
      std::string vbit = valueColumnBitpos();
      auto [gkb, kbit] = keyRowAt(ttN, false);
      std::vector<std::string> d = decodeDot2({"%vw", vbit, c2048, vAux, "%sA", AST, VB},
                                              {"%kw", kbit, c0, kAux, "%sQ", QST, D}, D, accS);
      std::string mn = e.ld("%kmin", gkb, MF), stp = e.ld("%kstep", gkb, MF);
      std::vector<std::string> o(d.begin(), d.begin() + NQ);
      for (int64_t i = 0; i < NQ; ++i)
        o.push_back(e.fma(mn, qsum[i], e.fmul(stp, d[NQ + i])));
      e.S("scf.yield " + join(o) + " : " + rep("f32", 2 * NQ));
    }
    e.pop();
    e.S("} else {");
    e.push();
    {
      std::vector<std::string> o = valuePhase();
      for (auto &x : scoresOrNegInf(hasNext, "kn", [&] { return keyPhase(nts)[0]; }))
        o.push_back(x);
      e.S("scf.yield " + join(o) + " : " + rep("f32", 2 * NQ));
    }
    e.pop();
    e.S("}");
    std::vector<std::string> r = e.results(ov, 2 * NQ);
    vout.assign(r.begin(), r.begin() + NQ);
    scNext.assign(r.begin() + NQ, r.end());
  }
  e.S("gpu.barrier");
  {
    std::vector<std::string> y = newm;
    y.insert(y.end(), lN.begin(), lN.end());
    y.insert(y.end(), bN.begin(), bN.end());
    y.insert(y.end(), vout.begin(), vout.end());
    y.insert(y.end(), scNext.begin(), scNext.end());
    e.S("scf.yield " + join(y) + " : " + stTys);
  }
  e.pop();
  e.S("}");

  // ---- epilogue: reduce l, b over the CTA; write the partial ------------------------------
  std::vector<std::string> fin;
  for (int64_t k = 0; k < 4 * NQ; ++k)
    fin.push_back("%tl#" + std::to_string(k));
  std::vector<std::string> red(2 * NQ);
  for (int64_t k = 0; k < 2 * NQ; ++k) {
    std::string x = fin[NQ + k];
    for (int64_t off = 16; off >= 1; off /= 2)
      x = e.fadd(x, e.shfl(x, e.ci32(off), w32));
    red[k] = x;
  }
  std::string isL0e = e.cmp("eq", lane, c0, "index");
  e.S("scf.if " + isL0e + " {");
  e.push();
  for (int64_t k = 0; k < 2 * NQ; ++k)
    e.S("memref.store " + red[k] + ", %sRed[" + e.add(e.mul(warp, e.ci(2 * NQ)), e.ci(k)) + "] : " + RST);
  e.pop();
  e.S("}");
  e.S("gpu.barrier");
  std::vector<std::string> tot(2 * NQ);
  for (int64_t k = 0; k < 2 * NQ; ++k) {
    std::string x = fz;
    for (int64_t w = 0; w < NW; ++w)
      x = e.fadd(x, e.L("memref.load %sRed[" + e.ci(w * 2 * NQ + k) + "] : " + RST));
    tot[k] = x;
  }
  std::string isT0 = e.cmp("eq", tid, c0, "index");
  for (int64_t i = 0; i < NQ; ++i) {
    std::string pr = e.add(e.mul(e.add(rowQ, e.ci(i)), nsplit), split);
    e.S("memref.store " + e.fadd(fin[3 * NQ + i], tot[NQ + i]) + ", %opart[" +
        e.add(e.mul(pr, cD), tid) + "] : " + MF);
    e.S("scf.if " + isT0 + " {");
    e.push();
    std::string mi = e.mul(pr, e.ci(2));
    e.S("memref.store " + fin[i] + ", %ml[" + mi + "] : " + MF);
    e.S("memref.store " + tot[i] + ", %ml[" + e.add(mi, c1) + "] : " + MF);
    e.pop();
    e.S("}");
  }
  e.S("gpu.return");
  os << "  }\n";

  // ---- merge kernel (the dense one's, SplitMerge.h) ----------------------------------------
  emitMergeKernel(e, c.prefix + "_merge", QT, D, "encoded_merge");
  os << "}\n";
  return os.str();
}
