//===- FixedWidthStoreKernelGen.cpp - store kernels of fixed-width KVComp caches -===//
//
// See StoreKernelGen.h for the ABI. A key job is one key block (KB tokens, one (min, step)); a
// value job is 16 tokens (one (min, step) each): the smallest token range whose value words
// belong to it alone (a value fragment spans 16 tokens). Every word a job writes is built
// whole from its own symbols, so jobs of a launch never share a word and need no atomics.
// The quantizer is the CPU codec's (QuantizeText.h), so symbols, parameters and the
// dequantized fp16 window tokens equal what kvc_fw_pack derives from the codec heads.
//
//===----------------------------------------------------------------------===//
#include "kvc/Conversion/KVCToGPU/StoreKernelGen.h"
#include "GPUTextEmitter.h"
#include "QuantizeText.h"

#include <sstream>

using namespace mlir::kvc;

namespace {
constexpr int64_t kThreads = 256;
constexpr int64_t kValueJobTokens = 16;
constexpr int64_t kJobInts = 8;

bool validate(int64_t D, int64_t KB, std::string &error) {
  if (D < 32 || D > 256 || D % 32) {
    error = "fixed-width store kernels: head dim must be a multiple of 32 in [32, 256], got " +
            std::to_string(D);
    return false;
  }
  if (KB != 32 && KB != 64 && KB != 128) {
    error = "fixed-width store kernels: key block must be 32, 64 or 128 tokens, got " +
            std::to_string(KB);
    return false;
  }
  return true;
}

// One kernel: keys (a key block per CTA) or values (16 tokens per CTA).
void genKernel(GPUTextEmitter &e, int64_t D, int64_t KB, bool values, const std::string &name) {
  const int64_t NT = values ? kValueJobTokens : KB, N = NT * D, BS = kThreads;
  const int64_t groups = values ? NT : 1;
  const int64_t KU4 = (D / 8 + D / 32 + 3) / 4, VU4 = D / 32;
  const std::string MH = "memref<?xf16>", MI = "memref<?xi32>", MF = "memref<?xf32>";
  const std::string WG = "#gpu.address_space<workgroup>";
  auto wgTy = [&](int64_t n, const std::string &t) {
    return "memref<" + std::to_string(n) + "x" + t + ", " + WG + ">";
  };
  const std::string TF = wgTy(BS, "f32"), TI = wgTy(BS, "i32"), TP = wgTy(groups, "f32"),
                    TS = wgTy(N, "i8");
  std::ostringstream &os = e.os;
  e.ind = "    ";
  os << "  // " << (values ? "values" : "keys") << ": " << NT << " tokens x " << D
     << " channels per job, " << groups << " (min, step), " << BS << " threads\n";
  os << "  gpu.func @" << name << "(%rec: " << MH << ", %jobs: " << MI << ", %words: " << MI
     << ", %mins: " << MF << ", %steps: " << MF << ", %res: " << MI << ")\n"
     << "      workgroup(%sMin : " << TF << ", %sIdx : " << TI << ", %sMax : " << TF
     << ", %sBad : " << TI << ", %gMin : " << TP << ", %gStep : " << TP << ", %sSym : " << TS
     << ")\n"
     << "      kernel attributes {known_block_size = array<i32: " << BS
     << ", 1, 1>, kvc.kernel = \"" << (values ? "fw_vstore" : "fw_kstore") << "\"} {\n";
  std::string job = e.L("gpu.block_id x"), tid = e.L("gpu.thread_id x");
  std::string c0 = e.ci(0), c1 = e.ci(1), c4 = e.ci(4), cD = e.ci(D), cBS = e.ci(BS),
              cN = e.ci(N), cG = e.ci(groups), c128 = e.ci(128);
  std::string i0 = e.ci32(0), i1 = e.ci32(1), i15 = e.ci32(15), i4 = e.ci32(4);
  std::string jb = e.mul(job, e.ci(kJobInts));
  auto field = [&](int k) { return e.ld("%jobs", e.add(jb, e.ci(k)), MI); };
  // Token and warp-unit indices (not element offsets) keep the 32-bit fields within range;
  // the offsets are formed here in 64-bit index arithmetic.
  std::string off = e.mul(e.toIdx(field(0)), cD), wofs = field(1), pidx = field(2);
  std::string eps = e.L("arith.bitcast " + field(3) + " : i32 to f32"), maxsym = field(4);
  std::string kk = values ? e.toIdx(field(5)) : "";
  QuantizerText q(e);
  std::string epsD = e.L("arith.extf " + eps + " : f32 to f64");
  std::string maxsymD = e.L("arith.uitofp " + maxsym + " : i32 to f64");
  auto elem = [&](const std::string &flat) {
    std::string x = e.ld("%rec", e.add(off, flat), MH);
    return e.L("arith.extf " + x + " : f16 to f32");
  };

  // ---- group extremes -> (gMin, gStep); the job's bad-input flag --------------------------
  GroupExtremes ge;
  ge.wholeBlock = !values;
  ge.N = N;
  ge.BS = BS;
  ge.groups = groups;
  ge.groupSize = D;
  ge.tid = tid;
  ge.c0 = c0;
  ge.cBS = cBS;
  ge.i0 = i0;
  ge.i1 = i1;
  ge.epsD = epsD;
  ge.cN = cN;
  ge.cGroups = cG;
  ge.TF = TF;
  ge.TI = TI;
  ge.TP = TP;
  ge.elem = elem;
  ge.flatOf = [&](const std::string &i, const std::string &grp) {
    return e.add(e.mul(grp, cD), i);
  };
  std::string bad = emitGroupExtremes(q, ge);
  std::string ok = e.cmp("eq", bad, i0, "i32");
  std::string hasTile = e.cmp("sge", wofs, i0, "i32");
  std::string hasParams = e.cmp("sge", pidx, i0, "i32");

  // ---- status and parameters --------------------------------------------------------------
  e.S("scf.if " + e.cmp("eq", tid, c0, "index") + " {");
  e.push();
  e.st(bad, "%res", job, MI);
  e.pop();
  e.S("}");
  std::string pOk = e.L("arith.andi " + ok + ", " + hasParams + " : i1");
  e.S("scf.if " + pOk + " {");
  e.push();
  {
    std::string p0 = e.toIdx(pidx);
    e.S("scf.for %g = " + tid + " to " + cG + " step " + cBS + " {");
    e.push();
    e.st(e.ld("%gMin", "%g", TP), "%mins", e.add(p0, "%g"), MF);
    e.st(e.ld("%gStep", "%g", TP), "%steps", e.add(p0, "%g"), MF);
    e.pop();
    e.S("}");
  }
  e.pop();
  e.S("}");

  // ---- symbols (to shared memory) and the dequantized window tokens ------------------------
  e.S("scf.if " + ok + " {");
  e.push();
  {
    std::string m0, s0;
    if (!values) {
      m0 = e.ld("%gMin", c0, TP);
      s0 = e.ld("%gStep", c0, TP);
    }
    e.S("scf.for %f = " + tid + " to " + cN + " step " + cBS + " {");
    e.push();
    std::string m = m0, st = s0;
    if (values) {
      std::string t = e.L("arith.divui %f, " + cD + " : index");
      m = e.ld("%gMin", t, TP);
      st = e.ld("%gStep", t, TP);
    }
    std::string sym = q.quant(elem("%f"), m, st, maxsymD, maxsym, i0);
    e.st(e.L("arith.trunci " + sym + " : i32 to i8"), "%sSym", "%f", TS);
    e.st(q.dequantHalf(sym, m, st), "%rec", e.add(off, "%f"), MH);
    e.pop();
    e.S("}");
  }
  e.pop();
  e.S("}");
  e.S("gpu.barrier");

  // ---- the code words (CUDAFixedWidth.h, "Device form") ------------------------------------
  // Element (i, h) of a lane's fragment register i: row gid + 8*(i%2), column
  // 2*tg + h + 8*(i/2); its nibble sits at bit 4i + 16h.
  auto symAt = [&](const std::string &token, const std::string &channel) {
    std::string s = e.ld("%sSym", e.add(e.mul(token, cD), channel), TS);
    return e.L("arith.extui " + s + " : i8 to i32");
  };
  auto bitsOf = [&](int64_t shift) { return e.ci32(shift); };
  std::string wOk = e.L("arith.andi " + ok + ", " + hasTile + " : i1");
  e.S("scf.if " + wOk + " {");
  e.push();
  std::string w0 = e.mul(e.toIdx(wofs), e.ci((values ? VU4 : KU4) * 128));
  if (!values) {
    // Warp units of 32 tokens: KU4*128 words each, word (j/4)*128 + 4*l + j%4.
    const int64_t perUnit = KU4 * 128;
    std::string cPU = e.ci(perUnit);
    e.S("scf.for %x = " + tid + " to " + e.ci(KB / 32 * perUnit) + " step " + cBS + " {");
    e.push();
    std::string wu = e.L("arith.divui %x, " + cPU + " : index");
    std::string rem = e.L("arith.remui %x, " + cPU + " : index");
    std::string j = e.add(e.mul(e.L("arith.divui " + rem + ", " + c128 + " : index"), c4),
                          e.L("arith.remui " + rem + ", " + c4 + " : index"));
    std::string l = e.L("arith.divui " + e.L("arith.remui " + rem + ", " + c128 + " : index") +
                        ", " + c4 + " : index");
    std::string gid = e.L("arith.divui " + l + ", " + c4 + " : index");
    std::string tg = e.L("arith.remui " + l + ", " + c4 + " : index");
    std::string tok0 = e.add(e.mul(wu, e.ci(32)), gid);
    std::string ch0 = e.mul(tg, e.ci(2));
    // element (i, h) of fragment (kk, mt): token tok0 + 16mt + 8(i%2), channel
    // 16kk + ch0 + h + 8(i/2)
    auto frag = [&](const std::string &kkI, const std::string &mtI, int64_t i, int64_t h) {
      std::string t = e.add(e.add(tok0, e.mul(mtI, e.ci(16))), e.ci(8 * (i % 2)));
      std::string c = e.add(e.add(e.mul(kkI, e.ci(16)), ch0), e.ci(h + 8 * (i / 2)));
      return symAt(t, c);
    };
    std::string isLow = e.cmp("ult", j, e.ci(D / 8), "index");
    std::string wd = e.fresh("wd");
    e.S(wd + " = scf.if " + isLow + " -> (i32) {");
    e.push();
    {
      std::string kkI = e.L("arith.divui " + j + ", " + e.ci(2) + " : index");
      std::string mtI = e.L("arith.remui " + j + ", " + e.ci(2) + " : index");
      std::string acc = i0;
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t h = 0; h < 2; ++h) {
          std::string s = e.bin("arith.andi", frag(kkI, mtI, i, h), i15, "i32");
          acc = e.bin("arith.ori", acc, e.bin("arith.shli", s, bitsOf(4 * i + 16 * h), "i32"),
                      "i32");
        }
      e.S("scf.yield " + acc + " : i32");
    }
    e.pop();
    e.S("} else {");
    e.push();
    {
      // Plane word p = j - D/8 < D/32: bit 4 of fragments 4p..4p+3 at bit 4f + i + 16h;
      // the words past the planes are 0.
      std::string p = e.sub(j, e.ci(D / 8));
      std::string isPlane = e.cmp("ult", p, e.ci(D / 32), "index");
      std::string pc = e.sel(isPlane, p, c0, "index");
      std::string acc = i0;
      for (int64_t f = 0; f < 4; ++f) {
        std::string jj = e.add(e.mul(pc, c4), e.ci(f));
        std::string kkI = e.L("arith.divui " + jj + ", " + e.ci(2) + " : index");
        std::string mtI = e.L("arith.remui " + jj + ", " + e.ci(2) + " : index");
        for (int64_t i = 0; i < 4; ++i)
          for (int64_t h = 0; h < 2; ++h) {
            std::string b = e.bin("arith.andi", e.bin("arith.shrui", frag(kkI, mtI, i, h), i4,
                                                      "i32"),
                                  i1, "i32");
            acc = e.bin("arith.ori", acc,
                        e.bin("arith.shli", b, bitsOf(4 * f + i + 16 * h), "i32"), "i32");
          }
      }
      e.S("scf.yield " + e.sel(isPlane, acc, i0, "i32") + " : i32");
    }
    e.pop();
    e.S("}");
    e.st(wd, "%words", e.add(w0, "%x"), MI);
    e.pop();
    e.S("}");
  } else {
    // The job's 16 tokens are half kk of a warp unit: fragments j = kk*(D/16) + mt, mt in
    // [0, D/16) (channels 16mt..); word (j/4)*128 + 4*l + j%4 of the unit.
    std::string c32 = e.ci(32);
    e.S("scf.for %x = " + tid + " to " + e.ci(2 * D) + " step " + cBS + " {");
    e.push();
    std::string mt = e.L("arith.divui %x, " + c32 + " : index");
    std::string l = e.L("arith.remui %x, " + c32 + " : index");
    std::string j = e.add(e.mul(kk, e.ci(D / 16)), mt);
    std::string at = e.add(e.add(w0, e.mul(e.L("arith.divui " + j + ", " + c4 + " : index"),
                                           c128)),
                           e.add(e.mul(l, c4), e.L("arith.remui " + j + ", " + c4 + " : index")));
    std::string gid = e.L("arith.divui " + l + ", " + c4 + " : index");
    std::string tg = e.L("arith.remui " + l + ", " + c4 + " : index");
    std::string ch0 = e.add(e.mul(mt, e.ci(16)), gid);
    std::string tk0 = e.mul(tg, e.ci(2));
    std::string acc = i0;
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t h = 0; h < 2; ++h) {
        std::string s = symAt(e.add(tk0, e.ci(h + 8 * (i / 2))), e.add(ch0, e.ci(8 * (i % 2))));
        s = e.bin("arith.andi", s, i15, "i32");
        acc = e.bin("arith.ori", acc, e.bin("arith.shli", s, bitsOf(4 * i + 16 * h), "i32"),
                    "i32");
      }
    e.st(acc, "%words", at, MI);
    e.pop();
    e.S("}");
  }
  e.pop();
  e.S("}");
  e.S("gpu.return");
  os << "  }\n";
}

// The tokens kernel: both streams' new tokens into the windows, and (when %copy_rows is 1) the
// row table after the append: one launch where two strided copies and a table copy cost
// 12-17 us back to back on the H100.
void genTokensKernel(GPUTextEmitter &e, int64_t D, const std::string &name) {
  const std::string MH = "memref<?xf16>", MI = "memref<?xi32>";
  e.ind = "    ";
  e.os << "  // New tokens [rows, n, D] of both streams into the windows: grid (rows * n), D "
          "threads;\n  // with copy_rows, the row table after the append (4 i32 per row).\n";
  e.os << "  gpu.func @" << name << "(%kn: " << MH << ", %vn: " << MH << ", %krec: " << MH
       << ", %vrec: " << MH << ", %rows: " << MI << ", %table: " << MI
       << ", %n: index, %off: index, %stride: index, %copy_rows: index)\n"
       << "      kernel attributes {known_block_size = array<i32: " << D
       << ", 1, 1>, kvc.kernel = \"fw_tokens\"} {\n";
  // Block b = r * n + t (one flat axis: the y and z grid axes stop at 65535 rows).
  std::string bid = e.L("gpu.block_id x"), c = e.L("gpu.thread_id x");
  std::string r = e.L("arith.divui " + bid + ", %n : index");
  std::string t = e.L("arith.remui " + bid + ", %n : index");
  std::string cD = e.ci(D), c0 = e.ci(0), c4 = e.ci(4);
  std::string si = e.add(e.mul(e.add(e.mul(r, "%n"), t), cD), c);
  std::string di = e.add(e.add("%off", e.mul(r, "%stride")), e.add(e.mul(t, cD), c));
  e.st(e.ld("%kn", si, MH), "%krec", di, MH);
  e.st(e.ld("%vn", si, MH), "%vrec", di, MH);
  std::string first = e.L("arith.andi " + e.cmp("eq", t, c0, "index") + ", " +
                          e.cmp("ult", c, c4, "index") + " : i1");
  std::string want = e.L("arith.andi " + first + ", " + e.cmp("ne", "%copy_rows", c0, "index") +
                         " : i1");
  e.S("scf.if " + want + " {");
  e.push();
  std::string at = e.add(e.mul(r, c4), c);
  e.st(e.ld("%table", at, MI), "%rows", at, MI);
  e.pop();
  e.S("}");
  e.S("gpu.return");
  e.os << "  }\n";
}
} // namespace

std::string mlir::kvc::fixedWidthStoreKernelTag(int64_t headDim, int64_t keyBlock) {
  return "_d" + std::to_string(headDim) + "_kb" + std::to_string(keyBlock) + "_fw";
}

std::string mlir::kvc::generateFixedWidthStoreKernelFuncs(int64_t headDim, int64_t keyBlock,
                                                          const std::string &prefix,
                                                          std::string &error) {
  if (!validate(headDim, keyBlock, error))
    return "";
  GPUTextEmitter e;
  const std::string base = prefix + fixedWidthStoreKernelTag(headDim, keyBlock);
  e.os << "  // kvc fixed-width store kernels (entropy = none): D=" << headDim
       << " key_block=" << keyBlock << "\n";
  genKernel(e, headDim, keyBlock, false, base + "_kstore");
  genKernel(e, headDim, keyBlock, true, base + "_vstore");
  genTokensKernel(e, headDim, base + "_tokens");
  return e.os.str();
}
