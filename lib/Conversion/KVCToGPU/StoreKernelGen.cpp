//===- StoreKernelGen.cpp - KVComp block-encode (store) kernels -----------===//
//
// See the header for the ABI and the phases. The quantizer (extremes, step, symbols) is the
// CPU codec's, bit for bit (QuantizeText.h says how). Besides:
//  * fp16 rounding: arith.truncf f32 -> f16 is cvt.rn.f16.f32 (round to nearest even, with
//    subnormals), as floatToHalf; f16 inputs are used as they are.
//  * codes come from the host-built encode table (code, length) per symbol, escapes included,
//    so the kernel never decides "coded or escaped" itself.
//
//===----------------------------------------------------------------------===//
#include "kvc/Conversion/KVCToGPU/StoreKernelGen.h"
#include "GPUTextEmitter.h"
#include "QuantizeText.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <vector>

using namespace mlir::kvc;

namespace {
struct Em : GPUTextEmitter {};

// Chunks of at most this many symbols are unrolled and kept in registers.
constexpr int64_t kMaxUnrolledChunk = 16;

struct Geometry {
  bool values;
  int64_t NT, V, SPV, P, TPV, BS, S;
};

bool geometry(const StoreKernelConfig &c, bool values, Geometry &g, std::string &error) {
  const int64_t D = c.headDim;
  g.values = values;
  g.NT = values ? c.valueBlock : c.keyBlock;
  g.V = values ? D : c.keyBlock;
  g.SPV = values ? c.valueBlock : D;
  g.P = values ? c.valueBlock : (c.keyChannelGroups ? D : 1);
  if (g.V > 1024) {
    error = std::string("store kernels: ") + (values ? "head dim" : "key block") + " (" +
            std::to_string(g.V) + ") exceeds 1024 vectors per block (one thread per vector)";
    return false;
  }
  int64_t target = std::max<int64_t>(c.targetThreads, g.V);
  g.TPV = 1;
  while (g.SPV % (g.TPV * 2) == 0 && g.V * g.TPV * 2 <= std::min<int64_t>(target, 1024))
    g.TPV *= 2;
  g.BS = g.V * g.TPV;
  g.S = g.SPV / g.TPV;
  int64_t smem = g.BS * 5 * 4 + g.P * 2 * 4 + 16;
  if (smem > 48 * 1024) {
    error = "store kernels: shared memory (" + std::to_string(smem) + " B) exceeds 48 KiB";
    return false;
  }
  return true;
}

bool validate(const StoreKernelConfig &c, std::string &error) {
  if (c.headDim < 1 || c.headDim > 1024) {
    error = "store kernels: head dim must be in [1, 1024], got " + std::to_string(c.headDim);
    return false;
  }
  if (c.keyBlock < 1 || c.keyBlock > 4096 || c.valueBlock < 1 || c.valueBlock > 4096) {
    error = "store kernels: key and value blocks must be in [1, 4096] tokens";
    return false;
  }
  if (c.elemType != "f16" && c.elemType != "bf16" && c.elemType != "f32") {
    error = "store kernels: element type must be f16, bf16 or f32, got '" + c.elemType + "'";
    return false;
  }
  if (c.targetThreads < 32 || c.targetThreads > 1024) {
    error = "store kernels: target threads must be in [32, 1024]";
    return false;
  }
  if (uint64_t(c.keyBlock) * uint64_t(c.headDim) > (1u << 24) ||
      uint64_t(c.valueBlock) * uint64_t(c.headDim) > (1u << 24)) {
    error = "store kernels: block too large";
    return false;
  }
  return true;
}

// One store kernel (keys or values).
void genKernel(Em &e, const StoreKernelConfig &c, const Geometry &g, const std::string &name) {
  const int64_t D = c.headDim, BS = g.BS, V = g.V, P = g.P, S = g.S, TPV = g.TPV;
  const int64_t N = g.NT * D;
  const bool kblk = !g.values && !c.keyChannelGroups;
  const std::string ET = c.elemType, MET = "memref<?x" + ET + ">";
  const std::string MI = "memref<?xi32>", MF = "memref<?xf32>";
  const std::string WG = "#gpu.address_space<workgroup>";
  auto wgTy = [&](int64_t n, const std::string &t) {
    return "memref<" + std::to_string(n) + "x" + t + ", " + WG + ">";
  };
  const std::string TF = wgTy(BS, "f32"), TI = wgTy(BS, "i32"), TP = wgTy(P, "f32"),
                    TINFO = wgTy(4, "i32");
  std::ostringstream &os = e.os;
  e.ind = "    ";
  os << "  // " << (g.values ? "values" : "keys") << ": " << g.NT << " tokens x " << D
     << " channels, " << V << " vectors of " << g.SPV << " symbols, " << P
     << " (min, step) per block, " << TPV << " threads per vector (" << S
     << " symbols each), " << BS << " threads\n";
  os << "  gpu.func @" << name << "(%src: " << MET << ", %jobs: " << MI << ", %enc: " << MI
     << ", %words: " << MI << ", %top: " << MI << ", %bo: " << MI << ", %vo: " << MI
     << ", %mins: " << MF << ", %steps: " << MF << ", %res: " << MI
     << ", %eps: f32, %maxsym: i32, %cap: i32)\n"
     << "      workgroup(%sMin : " << TF << ", %sIdx : " << TI << ", %sMax : " << TF
     << ", %sBad : " << TI << ", %sScan : " << TI << ", %gMin : " << TP << ", %gStep : " << TP
     << ", %sInfo : " << TINFO << ")\n"
     << "      kernel attributes {known_block_size = array<i32: " << BS
     << ", 1, 1>, kvc.kernel = \"" << (g.values ? "vstore" : "kstore") << "\"} {\n";

  std::string job = e.L("gpu.block_id x"), tid = e.L("gpu.thread_id x");
  std::string c0 = e.ci(0), c1 = e.ci(1), c2 = e.ci(2), c3 = e.ci(3), c4 = e.ci(4),
              cD = e.ci(D), cBS = e.ci(BS), cV = e.ci(V), cP = e.ci(P), cN = e.ci(N);
  std::string i0 = e.ci32(0), i1 = e.ci32(1), i2 = e.ci32(2), im1 = e.ci32(-1);
  std::string jb = e.mul(job, c4);
  std::string srcOff = e.toIdx(e.ld("%jobs", jb, MI));
  std::string gb = e.toIdx(e.ld("%jobs", e.add(jb, c1), MI));
  std::string tab = e.toIdx(e.ld("%jobs", e.add(jb, c2), MI));
  QuantizerText q(e);
  std::string epsD = e.L("arith.extf %eps : f32 to f64");
  std::string maxsymD = e.L("arith.uitofp %maxsym : i32 to f64");
  std::string tab1 = e.add(tab, c1);

  // x = the fp16 value of element `flat` of the block, as f32.
  auto elem = [&](const std::string &flat) {
    std::string x = e.ld("%src", e.add(srcOff, flat), MET);
    if (ET == "f16")
      return e.L("arith.extf " + x + " : f16 to f32");
    if (ET == "bf16")
      x = e.L("arith.extf " + x + " : bf16 to f32");
    std::string h = e.L("arith.truncf " + x + " : f32 to f16");
    return e.L("arith.extf " + h + " : f16 to f32");
  };
  auto flatOf = [&](const std::string &v, const std::string &i) {
    return g.values ? e.add(e.mul(i, cD), v) : e.add(e.mul(v, cD), i);
  };

  // ---- phase 1: group extremes -> (gMin, gStep); bad-input flag ---------------------------
  GroupExtremes ge;
  ge.wholeBlock = kblk;
  ge.N = N;
  ge.BS = BS;
  ge.groups = P;
  ge.groupSize = g.values ? D : g.NT;
  ge.tid = tid;
  ge.c0 = c0;
  ge.cBS = cBS;
  ge.i0 = i0;
  ge.i1 = i1;
  ge.epsD = epsD;
  ge.cN = cN;
  ge.cGroups = cP;
  ge.TF = TF;
  ge.TI = TI;
  ge.TP = TP;
  ge.elem = elem;
  ge.flatOf = [&](const std::string &i, const std::string &grp) { return flatOf(i, grp); };
  std::string bad = emitGroupExtremes(q, ge);

  // ---- phase 3: code lengths of this thread's chunk ---------------------------------------
  // Thread tid owns vector v = tid % V, chunk p = tid / V: symbols [p*S, (p+1)*S) of v.
  // Its place in stream (vector-major) order is k = v*TPV + p.
  std::string v = e.L("arith.remui " + tid + ", " + cV + " : index");
  std::string p = e.L("arith.divui " + tid + ", " + cV + " : index");
  std::string k = e.add(e.mul(v, e.ci(TPV)), p);
  std::string cS = e.ci(S);
  std::string i0x = e.mul(p, cS);
  std::string i1x = e.add(i0x, cS);
  std::string bm0, bs0;
  if (kblk) {
    bm0 = e.ld("%gMin", c0, TP);
    bs0 = e.ld("%gStep", c0, TP);
  }
  // symbol of position i of vector v
  auto symAt = [&](const std::string &i) {
    std::string x = elem(flatOf(v, i));
    std::string m = bm0, st = bs0;
    if (!kblk) {
      m = e.ld("%gMin", i, TP);
      st = e.ld("%gStep", i, TP);
    }
    return q.quant(x, m, st, maxsymD, "%maxsym", i0);
  };
  // Short chunks (S <= kMaxUnrolledChunk) are unrolled: their symbols' codes and lengths stay
  // in registers from the count to the write, so each symbol is quantized once and all loads
  // and divisions of the chunk are independent. Longer chunks are quantized again when written.
  const bool unrolled = S <= kMaxUnrolledChunk;
  std::vector<std::string> codesU, lensU;
  std::string cnt;
  if (unrolled) {
    cnt = i0;
    for (int64_t u = 0; u < S; ++u) {
      std::string sym = symAt(e.add(i0x, e.ci(u)));
      std::string ci = e.add(tab, e.mul(e.toIdx(sym), c2));
      codesU.push_back(e.ld("%enc", ci, MI));
      lensU.push_back(e.ld("%enc", e.add(ci, c1), MI));
    }
    for (int64_t u = 0; u < S; ++u)
      cnt = e.bin("arith.addi", cnt, lensU[u], "i32");
  } else {
    e.S("%cnt = scf.for %i = " + i0x + " to " + i1x + " step " + c1 + " iter_args(%ac = " + i0 +
        ") -> (i32) {");
    e.push();
    std::string sym = symAt("%i");
    std::string li = e.add(tab1, e.mul(e.toIdx(sym), c2));
    std::string len = e.ld("%enc", li, MI);
    e.S("scf.yield " + e.bin("arith.addi", "%ac", len, "i32") + " : i32");
    e.pop();
    e.S("}");
    cnt = "%cnt";
  }
  e.st(cnt, "%sScan", k, TI);
  e.S("gpu.barrier");

  // ---- phase 4: inclusive scan (Hillis-Steele) over the BS chunks in stream order -----------
  for (int64_t d = 1; d < BS; d *= 2) {
    std::string cd = e.ci(d);
    std::string has = e.cmp("uge", k, cd, "index");
    std::string src = e.sel(has, e.sub(k, cd), k, "index");
    std::string x = e.ld("%sScan", src, TI);
    std::string add = e.sel(has, x, i0, "i32");
    e.S("gpu.barrier");
    std::string cur = e.ld("%sScan", k, TI);
    e.st(e.bin("arith.addi", cur, add, "i32"), "%sScan", k, TI);
    e.S("gpu.barrier");
  }
  std::string incl = e.ld("%sScan", k, TI);
  std::string excl = e.bin("arith.subi", incl, cnt, "i32");
  std::string total = e.ld("%sScan", e.ci(BS - 1), TI);
  std::string nwords = e.bin("arith.shrui", e.bin("arith.addi", total, e.ci32(31), "i32"),
                             e.ci32(5), "i32");

  // ---- phase 5: allocate, report, zero, offsets and params ---------------------------------
  {
    std::string isT0 = e.cmp("eq", tid, c0, "index");
    std::string r0 = e.mul(job, c4);
    e.S("scf.if " + isT0 + " {");
    e.push();
    std::string isBad = e.cmp("ne", bad, i0, "i32");
    e.S("%al:2 = scf.if " + isBad + " -> (i32, i32) {");
    e.push();
    e.S("scf.yield " + im1 + ", " + i1 + " : i32, i32");
    e.pop();
    e.S("} else {");
    e.push();
    std::string old = e.L("memref.atomic_rmw addi " + nwords + ", %top[" + c0 + "] : (i32, " +
                          MI + ") -> i32");
    std::string endW = e.add(e.add(e.toIdx(old), e.toIdx(nwords)), c4);
    std::string fits = e.cmp("ule", endW, e.toIdx("%cap"), "index");
    std::string w = e.sel(fits, old, im1, "i32");
    std::string stt = e.sel(fits, i0, i2, "i32");
    e.S("scf.yield " + w + ", " + stt + " : i32, i32");
    e.pop();
    e.S("}");
    e.st("%al#0", "%sInfo", c0, TINFO);
    e.st("%al#1", "%sInfo", c1, TINFO);
    e.st("%al#0", "%res", r0, MI);
    e.st(nwords, "%res", e.add(r0, c1), MI);
    e.st(total, "%res", e.add(r0, c2), MI);
    e.st("%al#1", "%res", e.add(r0, c3), MI);
    std::string okS = e.cmp("eq", "%al#1", i0, "i32");
    e.S("scf.if " + okS + " {");
    e.push();
    e.st("%al#0", "%bo", gb, MI);
    e.pop();
    e.S("}");
    e.pop();
    e.S("}");
  }
  e.S("gpu.barrier");
  std::string wdst = e.toIdx(e.ld("%sInfo", c0, TINFO));
  std::string status = e.ld("%sInfo", c1, TINFO);
  std::string ok = e.cmp("eq", status, i0, "i32");
  e.S("scf.if " + ok + " {");
  e.push();
  {
    e.S("scf.for %w = " + tid + " to " + e.toIdx(nwords) + " step " + cBS + " {");
    e.push();
    e.st(i0, "%words", e.add(wdst, "%w"), MI);
    e.pop();
    e.S("}");
    std::string first = e.cmp("eq", p, c0, "index");
    e.S("scf.if " + first + " {");
    e.push();
    e.st(excl, "%vo", e.add(e.mul(gb, cV), v), MI);
    e.pop();
    e.S("}");
    e.S("scf.for %pg = " + tid + " to " + cP + " step " + cBS + " {");
    e.push();
    std::string pi = e.add(e.mul(gb, cP), "%pg");
    e.st(e.ld("%gMin", "%pg", TP), "%mins", pi, MF);
    e.st(e.ld("%gStep", "%pg", TP), "%steps", pi, MF);
    e.pop();
    e.S("}");
  }
  e.pop();
  e.S("}");
  // The zeroed words must be visible before any thread ORs into them.
  e.S("gpu.barrier");

  // ---- phase 6: write the chunk's bits ----------------------------------------------------
  e.S("scf.if " + ok + " {");
  e.push();
  {
    std::string c32 = e.ci(32);
    std::string b0 = e.toIdx(excl);
    std::string wi0 = e.add(wdst, e.L("arith.divui " + b0 + ", " + c32 + " : index"));
    std::string f0i = e.L("arith.remui " + b0 + ", " + c32 + " : index");
    std::string f0 = e.L("arith.index_castui " + f0i + " : index to i64");
    std::string z64 = e.ci64(0), c64 = e.ci64(64), c32l = e.ci64(32);
    std::string sh0 = e.cmp("ne", f0, z64, "i64");
    // Appends one code to the state (acc, fill, wi, shr); a completed word is stored, or
    // OR-ed in if it is the chunk's first word and shared with the previous chunk.
    auto put = [&](const std::string &acc0, const std::string &fill0, const std::string &wi,
                   const std::string &shr, const std::string &code, const std::string &len) {
      std::string code64 = e.L("arith.extui " + code + " : i32 to i64");
      std::string len64 = e.L("arith.extui " + len + " : i32 to i64");
      std::string shift =
          e.bin("arith.subi", e.bin("arith.subi", c64, fill0, "i64"), len64, "i64");
      std::string acc = e.bin("arith.ori", acc0, e.bin("arith.shli", code64, shift, "i64"), "i64");
      std::string fill = e.bin("arith.addi", fill0, len64, "i64");
      std::string full = e.cmp("uge", fill, c32l, "i64");
      std::string fl = e.fresh("fl");
      e.S(fl + ":4 = scf.if " + full + " -> (i64, i64, index, i1) {");
      e.push();
      std::string word =
          e.L("arith.trunci " + e.bin("arith.shrui", acc, c32l, "i64") + " : i64 to i32");
      e.S("scf.if " + shr + " {");
      e.push();
      e.L("memref.atomic_rmw ori " + word + ", %words[" + wi + "] : (i32, " + MI + ") -> i32");
      e.pop();
      e.S("} else {");
      e.push();
      e.st(word, "%words", wi, MI);
      e.pop();
      e.S("}");
      std::string fls = e.L("arith.constant false");
      e.S("scf.yield " + e.bin("arith.shli", acc, c32l, "i64") + ", " +
          e.bin("arith.subi", fill, c32l, "i64") + ", " + e.add(wi, c1) + ", " + fls +
          " : i64, i64, index, i1");
      e.pop();
      e.S("} else {");
      e.push();
      e.S("scf.yield " + acc + ", " + fill + ", " + wi + ", " + shr + " : i64, i64, index, i1");
      e.pop();
      e.S("}");
      return std::vector<std::string>{fl + "#0", fl + "#1", fl + "#2", fl + "#3"};
    };
    std::vector<std::string> stw;
    if (unrolled) {
      stw = {z64, f0, wi0, sh0};
      for (int64_t u = 0; u < S; ++u)
        stw = put(stw[0], stw[1], stw[2], stw[3], codesU[u], lensU[u]);
    } else {
      e.S("%wr:4 = scf.for %i = " + i0x + " to " + i1x + " step " + c1 + " iter_args(%acc = " +
          z64 + ", %fill = " + f0 + ", %wi = " + wi0 + ", %shr = " + sh0 +
          ") -> (i64, i64, index, i1) {");
      e.push();
      std::string sym = symAt("%i");
      std::string ci = e.add(tab, e.mul(e.toIdx(sym), c2));
      std::string code = e.ld("%enc", ci, MI);
      std::string len = e.ld("%enc", e.add(ci, c1), MI);
      std::vector<std::string> n = put("%acc", "%fill", "%wi", "%shr", code, len);
      e.S("scf.yield " + n[0] + ", " + n[1] + ", " + n[2] + ", " + n[3] +
          " : i64, i64, index, i1");
      e.pop();
      e.S("}");
      stw = {"%wr#0", "%wr#1", "%wr#2", "%wr#3"};
    }
    // The last, partial word is shared with the next chunk (or is the block's padded end).
    std::string rest = e.cmp("ne", stw[1], z64, "i64");
    e.S("scf.if " + rest + " {");
    e.push();
    std::string last =
        e.L("arith.trunci " + e.bin("arith.shrui", stw[0], c32l, "i64") + " : i64 to i32");
    e.L("memref.atomic_rmw ori " + last + ", %words[" + stw[2] + "] : (i32, " + MI + ") -> i32");
    e.pop();
    e.S("}");
  }
  e.pop();
  e.S("}");
  e.S("gpu.return");
  os << "  }\n";
}
} // namespace

int64_t mlir::kvc::storeKernelThreads(const StoreKernelConfig &c, bool values) {
  std::string err;
  Geometry g;
  if (!validate(c, err) || !geometry(c, values, g, err))
    return 0;
  return g.BS;
}

std::string mlir::kvc::storeKernelTag(const StoreKernelConfig &c) {
  return "_d" + std::to_string(c.headDim) + "_kb" + std::to_string(c.keyBlock) + "_vb" +
         std::to_string(c.valueBlock) + "_" + c.elemType + (c.keyChannelGroups ? "_kch" : "_kblk");
}

std::string mlir::kvc::generateStoreKernelFuncs(const StoreKernelConfig &c, std::string &error) {
  if (!validate(c, error))
    return "";
  Geometry gk, gv;
  if (!geometry(c, false, gk, error) || !geometry(c, true, gv, error))
    return "";
  Em e;
  std::string base = c.prefix + storeKernelTag(c);
  e.os << "  // kvc store kernels (KVComp block encode): D=" << c.headDim
       << " key_block=" << c.keyBlock << " value_block=" << c.valueBlock << " src=" << c.elemType
       << " key_grouping=" << (c.keyChannelGroups ? "channel" : "block") << "\n";
  genKernel(e, c, gk, base + "_kstore");
  genKernel(e, c, gv, base + "_vstore");
  return e.os.str();
}

std::string mlir::kvc::generateStoreKernels(const StoreKernelConfig &c, std::string &error) {
  std::string funcs = generateStoreKernelFuncs(c, error);
  if (funcs.empty())
    return "";
  return "gpu.module @" + c.moduleName + " {\n" + funcs + "}\n";
}

std::string mlir::kvc::generateWindowAppendKernelFunc(int64_t headDim, const std::string &elemType,
                                                      const std::string &name,
                                                      std::string &error) {
  if (headDim < 1 || headDim > 1024) {
    error = "window append kernel: head dim must be in [1, 1024]";
    return "";
  }
  if (elemType != "f16" && elemType != "bf16" && elemType != "f32") {
    error = "window append kernel: source type must be f16, bf16 or f32, got " + elemType;
    return "";
  }
  Em e;
  const std::string MET = "memref<?x" + elemType + ">", MH = "memref<?xf16>";
  e.os << "  // Appends n new tokens (" << elemType << ", rounded to the cache's fp16) of every"
       << " row to its\n  // unencoded window: grid (n, rows), block (D).\n";
  e.os << "  gpu.func @" << name << "(%src: " << MET << ", %rec: " << MH
       << ", %n: index, %off: index, %stride: index)\n"
       << "      kernel attributes {known_block_size = array<i32: " << headDim
       << ", 1, 1>, kvc.kernel = \"window_append\"} {\n";
  e.ind = "    ";
  std::string t = e.L("gpu.block_id x"), r = e.L("gpu.block_id y"), c = e.L("gpu.thread_id x");
  std::string cD = e.ci(headDim);
  // src[(r*n + t)*D + c] -> rec[off + r*stride + t*D + c]
  std::string si = e.add(e.mul(e.add(e.mul(r, "%n"), t), cD), c);
  std::string di = e.add(e.add("%off", e.mul(r, "%stride")), e.add(e.mul(t, cD), c));
  std::string x = e.L("memref.load %src[" + si + "] : " + MET);
  std::string h = x;
  if (elemType == "bf16")
    x = e.L("arith.extf " + x + " : bf16 to f32");
  if (elemType != "f16")
    h = e.L("arith.truncf " + x + " : f32 to f16"); // round to nearest even, as the CPU codec
  e.S("memref.store " + h + ", %rec[" + di + "] : " + MH);
  e.S("gpu.return");
  e.os << "  }\n";
  return e.os.str();
}
