//===- QuantizeText.h - the CPU codec's quantizer, bit for bit, as gpu-dialect text -*- C++ -*-===//
//
// The store kernels of both encoded cache forms (StoreKernelGen: Huffman-coded;
// FixedWidthStoreKernelGen: fixed-width) quantize new blocks on the GPU and must give the CPU
// codec's results exactly (lib/Runtime/Codec/Quantizer.h, EncodedStream::encodeBlocks):
//  * extremes: min/max are exact; the only order dependence is the sign of a zero minimum
//    (std::min keeps the first of equal values), so reductions carry (value, flat index) and
//    prefer the lower index on ties, and per-thread scans run in the CPU's order;
//  * step = fp32(double(eps) * (double(M) - double(m))), 0 when !(M > m), FLT_MIN when it
//    underflows;
//  * symbol = (r + 1.5*2^52) - 1.5*2^52 with r = (double(x) - double(m)) / double(step)
//    (div.rn.f64: round half to even), 0 when !(r > 0) or step == 0, clamped to max_symbol;
//  * dequantize = m + float(symbol) * step in f32, two roundings (no fast-math flags, so
//    nothing is contracted into an fma; NVPTX writes mul.rn/add.rn).
// This header holds those pieces once, for the generators to share.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_LIB_CONVERSION_KVCTOGPU_QUANTIZETEXT_H
#define KVC_LIB_CONVERSION_KVCTOGPU_QUANTIZETEXT_H

#include "GPUTextEmitter.h"

#include <functional>
#include <string>

namespace mlir {
namespace kvc {

struct QuantizerText {
  GPUTextEmitter &e;
  std::string pinf, ninf, fz, fltMin, dz, magic;
  /// Emits the constants the pieces below use (at the current point of the kernel).
  explicit QuantizerText(GPUTextEmitter &em) : e(em) {
    pinf = e.cfBits(0x7F800000u);
    ninf = e.cfBits(0xFF800000u);
    fz = e.cfBits(0u);
    fltMin = e.cfBits(0x00800000u);
    dz = e.L("arith.constant 0.0 : f64", "d");
    magic = e.L("arith.constant 6755399441055744.0 : f64", "d"); // 1.5 * 2^52
  }

  /// i32 1 if x is NaN or +-Inf (after fp16 rounding: also |x| >= 65520), else 0.
  std::string badOf(const std::string &x, const std::string &i1) {
    std::string a = e.cmpf("olt", x, pinf), b = e.cmpf("ogt", x, ninf);
    std::string ok = e.L("arith.andi " + a + ", " + b + " : i1");
    std::string okI = e.L("arith.extui " + ok + " : i1 to i32");
    return e.L("arith.xori " + okI + ", " + i1 + " : i32");
  }
  /// Quantizer.h groupParams: the step for extremes (m, M); epsD is eps as f64.
  std::string stepOf(const std::string &epsD, const std::string &m, const std::string &M) {
    std::string gt = e.cmpf("ogt", M, m);
    std::string md = e.L("arith.extf " + m + " : f32 to f64");
    std::string Md = e.L("arith.extf " + M + " : f32 to f64");
    std::string prod = e.bin("arith.mulf", epsD, e.bin("arith.subf", Md, md, "f64"), "f64");
    std::string s = e.L("arith.truncf " + prod + " : f64 to f32");
    std::string small = e.cmpf("olt", s, fltMin);
    std::string s2 = e.sel(small, fltMin, s, "f32");
    return e.sel(gt, s2, fz, "f32");
  }
  /// Quantizer.h quantize: the symbol (i32) of x in group (m, st); maxsymD is max_symbol as
  /// f64, maxsym as i32.
  std::string quant(const std::string &x, const std::string &m, const std::string &st,
                    const std::string &maxsymD, const std::string &maxsym,
                    const std::string &i0) {
    std::string xd = e.L("arith.extf " + x + " : f32 to f64");
    std::string md = e.L("arith.extf " + m + " : f32 to f64");
    std::string sd = e.L("arith.extf " + st + " : f32 to f64");
    std::string r = e.bin("arith.divf", e.bin("arith.subf", xd, md, "f64"), sd, "f64");
    std::string pos = e.cmpf("ogt", r, dz, "f64");
    std::string q = e.bin("arith.subf", e.bin("arith.addf", r, magic, "f64"), magic, "f64");
    std::string big = e.cmpf("oge", q, maxsymD, "f64");
    std::string qi = e.L("arith.fptoui " + q + " : f64 to i32");
    std::string s1 = e.sel(big, maxsym, qi, "i32");
    std::string s2 = e.sel(pos, s1, i0, "i32");
    std::string zero = e.cmpf("oeq", st, fz);
    return e.sel(zero, i0, s2, "i32");
  }
  /// Quantizer.h dequantize: m + float(sym) * st, rounded to the cache's fp16.
  std::string dequantHalf(const std::string &sym, const std::string &m, const std::string &st) {
    std::string sf = e.L("arith.uitofp " + sym + " : i32 to f32");
    std::string x = e.fadd(m, e.fmul(sf, st));
    return e.L("arith.truncf " + x + " : f32 to f16");
  }
};

/// Phase 1 of a store kernel: the (min, step) of every quantization group of the block and
/// whether any element is bad. Workgroup buffers (named as here): %sMin f32, %sIdx i32,
/// %sMax f32, %sBad i32 [BS]; %gMin, %gStep f32 [groups]. Writes gMin/gStep, ends with a
/// barrier and returns the block's bad flag (i32, uniform).
struct GroupExtremes {
  bool wholeBlock;    // one group of all N elements (scan + CTA tree), else `groups` groups
  int64_t N, BS, groups, groupSize; // groupSize: elements per group when !wholeBlock
  std::string tid, c0, cBS, i0, i1, epsD;
  std::string cN, cGroups; // index constants N and groups
  std::string TF, TI, TP; // types of the BS-sized f32/i32 and the groups-sized f32 buffers
  std::function<std::string(const std::string &)> elem; // flat index -> f32 element
  // (index within the group, group) -> flat index (only when !wholeBlock)
  std::function<std::string(const std::string &, const std::string &)> flatOf;
};
inline std::string emitGroupExtremes(QuantizerText &q, const GroupExtremes &s) {
  GPUTextEmitter &e = q.e;
  const std::string &tid = s.tid, &c0 = s.c0, &cBS = s.cBS, &i0 = s.i0, &TF = s.TF,
                    &TI = s.TI, &TP = s.TP;
  int64_t P2 = 1;
  while (P2 < s.BS)
    P2 *= 2;
  // One step of the (min, index of the min, max, bad) scan: loads element `flat`, yields the
  // updated state (loop-carried %mn, %mi, %mx and `badAcc`).
  auto extremesStep = [&](const std::string &flat, const std::string &badAcc) {
    std::string x = s.elem(flat);
    std::string lt = e.cmpf("olt", x, "%mn");
    std::string mn = e.sel(lt, x, "%mn", "f32");
    std::string mi = e.sel(lt, e.toI32(flat), "%mi", "i32");
    std::string mx = e.sel(e.cmpf("olt", "%mx", x), x, "%mx", "f32");
    std::string bd = e.bin("arith.ori", badAcc, q.badOf(x, s.i1), "i32");
    e.S("scf.yield " + mn + ", " + mi + ", " + mx + ", " + bd + " : f32, i32, f32, i32");
  };
  // (a, b) tree step: ties on the minimum go to the lower flat index (std::min's order).
  auto combine = [&](const std::string &o) {
    std::string am = e.ld("%sMin", tid, TF), ai = e.ld("%sIdx", tid, TI);
    std::string bm = e.ld("%sMin", o, TF), bi = e.ld("%sIdx", o, TI);
    std::string less = e.cmpf("olt", bm, am);
    std::string eq = e.cmpf("oeq", bm, am);
    std::string lowerIdx = e.cmp("ult", bi, ai, "i32");
    std::string take = e.L("arith.ori " + less + ", " +
                           e.L("arith.andi " + eq + ", " + lowerIdx + " : i1") + " : i1");
    e.st(e.sel(take, bm, am, "f32"), "%sMin", tid, TF);
    e.st(e.sel(take, bi, ai, "i32"), "%sIdx", tid, TI);
    std::string ax = e.ld("%sMax", tid, TF), bx = e.ld("%sMax", o, TF);
    e.st(e.sel(e.cmpf("olt", ax, bx), bx, ax, "f32"), "%sMax", tid, TF);
  };
  auto orBad = [&](const std::string &o) {
    std::string ab = e.ld("%sBad", tid, TI), bb = e.ld("%sBad", o, TI);
    e.st(e.bin("arith.ori", ab, bb, "i32"), "%sBad", tid, TI);
  };
  // A tree over the CTA's BS slots: step st combines slot tid + st into tid (tid < st).
  auto ctaTree = [&](const std::function<void(const std::string &)> &step) {
    for (int64_t st = P2 / 2; st >= 1; st /= 2) {
      std::string cs = e.ci(st);
      std::string o = e.add(tid, cs);
      std::string act = e.L("arith.andi " + e.cmp("ult", tid, cs, "index") + ", " +
                            e.cmp("ult", o, cBS, "index") + " : i1");
      e.S("scf.if " + act + " {");
      e.push();
      step(o);
      e.pop();
      e.S("}");
      e.S("gpu.barrier");
    }
  };
  if (s.wholeBlock) {
    std::string cNi = e.ci32(s.N);
    e.S("%p1:4 = scf.for %f = " + tid + " to " + s.cN + " step " + cBS +
        " iter_args(%mn = " + q.pinf + ", %mi = " + cNi + ", %mx = " + q.ninf + ", %bd = " + i0 +
        ") -> (f32, i32, f32, i32) {");
    e.push();
    extremesStep("%f", "%bd");
    e.pop();
    e.S("}");
    e.st("%p1#0", "%sMin", tid, TF);
    e.st("%p1#1", "%sIdx", tid, TI);
    e.st("%p1#2", "%sMax", tid, TF);
    e.st("%p1#3", "%sBad", tid, TI);
    e.S("gpu.barrier");
    ctaTree([&](const std::string &o) {
      combine(o);
      orBad(o);
    });
    std::string isT0 = e.cmp("eq", tid, c0, "index");
    e.S("scf.if " + isT0 + " {");
    e.push();
    std::string m = e.ld("%sMin", c0, TF), M = e.ld("%sMax", c0, TF);
    e.st(m, "%gMin", c0, TP);
    e.st(q.stepOf(s.epsD, m, M), "%gStep", c0, TP);
    e.pop();
    e.S("}");
    e.S("gpu.barrier");
    return e.ld("%sBad", c0, TI);
  }
  // Group g is reduced by TPG threads: thread r of the segment scans elements r, r + TPG, ..
  // in order (keeping the first of equal minima, as std::min does), then a segmented tree
  // combines (value, flat index) pairs preferring the lower index: the CPU's sequential result.
  const int64_t G = s.groups, n = s.groupSize, BS = s.BS;
  int64_t TPG = 1;
  while (TPG * 2 <= n && BS % (TPG * 2) == 0 && G * TPG * 2 <= BS)
    TPG *= 2;
  const int64_t GPR = BS / TPG;
  std::string cTPG = e.ci(TPG), cGPR = e.ci(GPR), cNi = e.ci32(s.N), cG = e.ci(G);
  std::string gl = e.L("arith.divui " + tid + ", " + cTPG + " : index");
  std::string r = e.L("arith.remui " + tid + ", " + cTPG + " : index");
  e.S("%p1 = scf.for %gr = " + c0 + " to " + s.cGroups + " step " + cGPR + " iter_args(%bd = " +
      i0 + ") -> (i32) {");
  e.push();
  std::string grp = e.add("%gr", gl);
  std::string act = e.cmp("ult", grp, cG, "index");
  std::string nEnd = e.sel(act, e.ci(n), r, "index");
  e.S("%p1i:4 = scf.for %i = " + r + " to " + nEnd + " step " + cTPG + " iter_args(%mn = " +
      q.pinf + ", %mi = " + cNi + ", %mx = " + q.ninf +
      ", %bi = %bd) -> (f32, i32, f32, i32) {");
  e.push();
  extremesStep(s.flatOf("%i", grp), "%bi");
  e.pop();
  e.S("}");
  e.st("%p1i#0", "%sMin", tid, TF);
  e.st("%p1i#1", "%sIdx", tid, TI);
  e.st("%p1i#2", "%sMax", tid, TF);
  e.S("gpu.barrier");
  for (int64_t st = TPG / 2; st >= 1; st /= 2) {
    std::string cs = e.ci(st);
    std::string o = e.add(tid, cs);
    e.S("scf.if " + e.cmp("ult", r, cs, "index") + " {");
    e.push();
    combine(o);
    e.pop();
    e.S("}");
    e.S("gpu.barrier");
  }
  std::string lead = e.L("arith.andi " + e.cmp("eq", r, c0, "index") + ", " + act + " : i1");
  e.S("scf.if " + lead + " {");
  e.push();
  std::string m = e.ld("%sMin", tid, TF), M = e.ld("%sMax", tid, TF);
  e.st(m, "%gMin", grp, TP);
  e.st(q.stepOf(s.epsD, m, M), "%gStep", grp, TP);
  e.pop();
  e.S("}");
  e.S("gpu.barrier"); // the next round reuses sMin/sIdx/sMax
  e.S("scf.yield %p1i#3 : i32");
  e.pop();
  e.S("}");
  e.st("%p1", "%sBad", tid, TI);
  e.S("gpu.barrier");
  ctaTree(orBad);
  return e.ld("%sBad", c0, TI);
}

} // namespace kvc
} // namespace mlir

#endif
