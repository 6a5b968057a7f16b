//===- SplitMerge.h - the flash-decoding merge of split partials, as gpu text ---*- C++ -*-===//
//
// Shared by DecodeKernelGen (dense/ragged, and its fused-merge epilogue) and EncodedKernelGen:
// both split kernels write the same workspace, o_part[(r*S + s)*D + d] (unnormalised) and
// ml[(r*S + s)*2 + {0, 1}] = (running max in the log2 domain, sum), for query row r and split
// s of S. The merge of row r is out[r*D + d] = sum_s w_s o_s / sum_s w_s l_s, w_s =
// 2^(m_s - max m); a row with no keys gives 0.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_LIB_CONVERSION_KVCTOGPU_SPLITMERGE_H
#define KVC_LIB_CONVERSION_KVCTOGPU_SPLITMERGE_H

#include "GPUTextEmitter.h"
#include "kvc/Conversion/KVCToGPU/DecodeKernelGen.h"

#include <cmath>
#include <string>
#include <vector>

namespace mlir {
namespace kvc {

/// One pass over splits first, first + step, ... (< ns) of query row `row`, output elements
/// d .. d + width - 1 (width 1, or 4 with d a multiple of 4), with a running (max, out, sum)
/// state, kMergeBatch consecutive splits per iteration: all their loads are issued before any
/// use, so a pass costs ~ns/(kMergeBatch * slices) memory latencies instead of 2*ns (a serial
/// two-pass loop took 12 us at 33 splits on H100, a fifth of a batch-1 decode). Width 4 reads
/// each split's outputs with one 128-bit load and its (m, l) with one 64-bit load: the fused
/// merge, where one CTA reads every partial of its KV row, so the loads per thread (not the
/// thread count) set its latency. Splits past ns in a batch weigh 0. Returns the scf.for result
/// `st`: st#0 the max (f32), st#1 the weighted output (f32 or vector<4xf32>), st#2 the weighted
/// sum (f32).
inline std::string emitSplitMergeState(GPUTextEmitter &e, const std::string &opart,
                                       const std::string &ml, const std::string &ns,
                                       const std::string &row, const std::string &d, int64_t D,
                                       const std::string &first, int64_t step,
                                       int64_t width = 1) {
  constexpr int64_t kMergeBatch = 8;
  const bool vec = width == 4;
  const std::string V4 = "vector<4xf32>", V2 = "vector<2xf32>", OT = vec ? V4 : "f32";
  std::ostringstream &os = e.os;
  std::string one = e.ci(1), two = e.ci(2), cDm = e.ci(D);
  std::string ni = e.cf(-INFINITY), fz = e.cf(0.0f);
  std::string oz = vec ? e.L("arith.constant dense<0.0> : " + V4) : fz;
  std::string base = e.mul(row, ns);
  std::string lastS = e.L("arith.subi " + ns + ", " + one + " : index");
  std::string cStep = e.ci(step);
  std::string st = e.fresh("st"), s = e.fresh("s"), M0 = e.fresh("M"), o0 = e.fresh("o"),
              l0 = e.fresh("l");
  os << e.ind << st << ":3 = scf.for " << s << " = " << first << " to " << ns << " step "
     << cStep << " iter_args(" << M0 << " = " << ni << ", " << o0 << " = " << oz << ", "
     << l0 << " = " << fz << ") -> (f32, " << OT << ", f32) {\n";
  std::string saved = e.ind;
  e.ind += "  ";
  std::vector<std::string> ms(kMergeBatch), ls(kMergeBatch), os_(kMergeBatch);
  for (int64_t i = 0; i < kMergeBatch; ++i) {
    std::string si = e.add(s, e.ci(i));
    std::string valid = e.L("arith.cmpi ult, " + si + ", " + ns + " : index");
    std::string sc = e.L("arith.minui " + si + ", " + lastS + " : index");
    std::string p = e.add(base, sc);
    std::string mi = e.mul(p, two);
    std::string m;
    if (vec) {
      std::string mlv = e.L("vector.load " + ml + "[" + mi + "] {alignment = 8} : memref<?xf32>, " + V2);
      os_[i] = e.L("vector.load " + opart + "[" + e.add(e.mul(p, cDm), d) +
                   "] {alignment = 16} : memref<?xf32>, " + V4);
      m = e.L("vector.extract " + mlv + "[0] : f32 from " + V2);
      ls[i] = e.L("vector.extract " + mlv + "[1] : f32 from " + V2);
    } else {
      m = e.L("memref.load " + ml + "[" + mi + "] : memref<?xf32>");
      ls[i] = e.L("memref.load " + ml + "[" + e.add(mi, one) + "] : memref<?xf32>");
      os_[i] = e.L("memref.load " + opart + "[" + e.add(e.mul(p, cDm), d) + "] : memref<?xf32>");
    }
    ms[i] = e.L("arith.select " + valid + ", " + m + ", " + ni + " : f32");
  }
  std::string M = M0;
  for (int64_t i = 0; i < kMergeBatch; ++i)
    M = e.fmax(M, ms[i]);
  auto splat = [&](const std::string &x) { return e.L("vector.broadcast " + x + " : f32 to " + V4); };
  std::string wOld = e.weight(M0, M, ni, fz);
  std::string o = vec ? e.fmul(o0, splat(wOld), V4) : e.fmul(o0, wOld), l = e.fmul(l0, wOld);
  for (int64_t i = 0; i < kMergeBatch; ++i) {
    std::string w = e.weight(ms[i], M, ni, fz);
    o = vec ? e.L("vector.fma " + splat(w) + ", " + os_[i] + ", " + o + " : " + V4)
            : e.fadd(o, e.fmul(w, os_[i]));
    l = e.fadd(l, e.fmul(w, ls[i]));
  }
  e.S("scf.yield " + M + ", " + o + ", " + l + " : f32, " + OT + ", f32");
  e.ind = saved;
  e.S("}");
  return st;
}

/// out = o / l, or 0 for a row with no keys (l = 0). Width 4 (o a vector<4xf32> from
/// emitSplitMergeState at width 4): o * (1 / l), one division for the four outputs.
inline std::string emitMergeNormalize(GPUTextEmitter &e, const std::string &o,
                                      const std::string &l, int64_t width = 1) {
  if (width == 4) {
    std::string pos = e.cmpf("ogt", l, e.cf(0.0f));
    std::string inv = e.L("arith.divf " + e.cf(1.0f) + ", " + l + " : f32");
    std::string scale = e.sel(pos, inv, e.cf(0.0f), "f32");
    return e.fmul(o, e.L("vector.broadcast " + scale + " : f32 to vector<4xf32>"),
                  "vector<4xf32>");
  }
  std::string fz = e.cf(0.0f);
  std::string pos = e.L("arith.cmpf ogt, " + l + ", " + fz + " : f32");
  std::string q = e.L("arith.divf " + o + ", " + l + " : f32");
  return e.L("arith.select " + pos + ", " + q + ", " + fz + " : f32");
}

/// The merge kernel `name`(%mo, %mml, %out: memref<?x`outType`>, %ns: index), grid (rows),
/// block (decodeMergeThreads(D) = D * P): thread t handles output element d = t % D over the
/// splits of slice j = t / D (batches j*8, j*8 + 8P, ...), so one row's splits are read by P
/// slices in parallel; the P states are combined through workgroup memory by slice 0.
inline void emitMergeKernel(GPUTextEmitter &e, const std::string &name,
                            const std::string &outType, int64_t D, const std::string &kernelTag) {
  const int64_t T = decodeMergeThreads(D), P = T / D;
  const std::string MO = "memref<?x" + outType + ">";
  const std::string WG = "memref<" + std::to_string(T) + "xf32, #gpu.address_space<workgroup>>";
  std::ostringstream &os = e.os;
  e.ind = "    ";
  os << "  gpu.func @" << name << "(%mo: memref<?xf32>, %mml: memref<?xf32>, %out: " << MO
     << ", %ns: index)\n";
  if (P > 1)
    os << "      workgroup(%mgM : " << WG << ", %mgO : " << WG << ", %mgL : " << WG << ")\n";
  os << "      kernel attributes {known_block_size = array<i32: " << T
     << ", 1, 1>, kvc.kernel = \"" << kernelTag << "\"} {\n";
  std::string r = e.L("gpu.block_id x"), t = e.L("gpu.thread_id x");
  std::string cD = e.ci(D);
  std::string d = e.L("arith.remui " + t + ", " + cD + " : index");
  std::string j = e.L("arith.divui " + t + ", " + cD + " : index");
  std::string st = emitSplitMergeState(e, "%mo", "%mml", "%ns", r, d, D, e.mul(j, e.ci(8)), 8 * P);
  auto store = [&](const std::string &o, const std::string &l) {
    std::string res = emitMergeNormalize(e, o, l);
    if (outType != "f32")
      res = e.L("arith.truncf " + res + " : f32 to " + outType);
    e.S("memref.store " + res + ", %out[" + e.add(e.mul(r, cD), d) + "] : " + MO);
  };
  if (P == 1) {
    store(st + "#1", st + "#2");
  } else {
    e.S("memref.store " + st + "#0, %mgM[" + t + "] : " + WG);
    e.S("memref.store " + st + "#1, %mgO[" + t + "] : " + WG);
    e.S("memref.store " + st + "#2, %mgL[" + t + "] : " + WG);
    e.S("gpu.barrier");
    std::string first = e.L("arith.cmpi eq, " + j + ", " + e.ci(0) + " : index");
    e.S("scf.if " + first + " {");
    e.push();
    std::string ni = e.cf(-INFINITY), fz = e.cf(0.0f);
    std::vector<std::string> m(P), o(P), l(P);
    for (int64_t k = 0; k < P; ++k) {
      std::string idx = e.add(d, e.ci(k * D));
      m[k] = e.L("memref.load %mgM[" + idx + "] : " + WG);
      o[k] = e.L("memref.load %mgO[" + idx + "] : " + WG);
      l[k] = e.L("memref.load %mgL[" + idx + "] : " + WG);
    }
    std::string M = m[0];
    for (int64_t k = 1; k < P; ++k)
      M = e.fmax(M, m[k]);
    std::string os2 = fz, ls2 = fz;
    for (int64_t k = 0; k < P; ++k) {
      std::string w = e.weight(m[k], M, ni, fz);
      os2 = e.fadd(os2, e.fmul(w, o[k]));
      ls2 = e.fadd(ls2, e.fmul(w, l[k]));
    }
    store(os2, ls2);
    e.pop();
    e.S("}");
  }
  e.S("gpu.return");
  os << "  }\n";
}


/// The fused merge's epilogue of a split kernel (DecodeKernelGen's dense/ragged kernels and
/// FixedWidthKernelGen's): after the CTA's partials are written to %opart/%ml, the last CTA of
/// KV row `row` (query rows rowBase .. rowBase + NQ) to arrive on its counter in %cnt merges
/// the row's `nsplit` splits into %out (memref `MET` of `ET`) and resets the counter. Needs
/// the workgroup buffer %smFlag : memref<1xi32, WG>; `threads` per CTA.
inline void emitFusedMergeEpilogue(GPUTextEmitter &e, const std::string &tid,
                                   const std::string &row, const std::string &rowBase,
                                   const std::string &nsplit, int64_t NQ, int64_t D,
                                   int64_t threads, const std::string &ET,
                                   const std::string &MET, const std::string &c0,
                                   const std::string &c1, const std::string &cD,
                                   const std::string &WG) {
  // The last CTA of a row to finish merges the row's splits. The CTA barrier orders every
  // thread's partial writes before thread 0's arrival, an atom.acq_rel.gpu on the row's
  // counter: its release makes the CTA's writes visible device-wide with it, its acquire
  // (with the next barrier) makes the other CTAs' partials visible to the last CTA's loads
  // (CUTLASS's semaphore pattern). Replacing the per-thread device fences (membar.gl, the
  // threadFenceReduction sample) with it measured 0.3-0.8 us faster at batch 1 on H100, never
  // slower. Inline PTX: LLVM 22's NVPTX lowering of an acq_rel atomicrmw emitted a plain
  // atom.add with no ordering. The last CTA resets the counter for the next launch, so
  // counters need zeroing once per workspace, not per launch. Saves the merge launch.
  e.S("gpu.barrier");
  std::string isT0 = e.L("arith.cmpi eq, " + tid + ", " + c0 + " : index");
  e.S("scf.if " + isT0 + " {");
  std::string saved = e.ind;
  e.ind += "  ";
  std::string base =
      e.L("memref.extract_aligned_pointer_as_index %cnt : memref<?xi32> -> index");
  std::string addr = e.L("arith.index_cast " + e.add(base, e.mul(row, e.ci(4))) +
                         " : index to i64");
  std::string old = e.L("llvm.inline_asm has_side_effects \"atom.acq_rel.gpu.add.u32 $0, [$1], "
                        "1;\", \"=r,l,~{memory}\" " + addr + " : (i64) -> i32");
  e.S("memref.store " + old + ", %smFlag[" + c0 + "] : memref<1xi32, " + WG + ">");
  e.ind = saved;
  e.S("}");
  e.S("gpu.barrier");
  std::string arrived = e.L("memref.load %smFlag[" + c0 + "] : memref<1xi32, " + WG + ">");
  std::string lastIdx = e.L("arith.subi " + nsplit + ", " + c1 + " : index");
  std::string last32 = e.L("arith.index_cast " + lastIdx + " : index to i32");
  std::string isLast = e.L("arith.cmpi eq, " + arrived + ", " + last32 + " : i32");
  e.S("scf.if " + isLast + " {");
  e.ind += "  ";
  // Thread t merges outputs 4j..4j+3 of the row's g*Sq x D block, j = t, t + block, ...
  // (one j per thread for g*Sq*D/4 <= block): 128-bit loads, 8 splits' loads in flight, so
  // the pass costs ~#splits/8 L2 round trips (a scalar loop over 4 outputs per thread took
  // 4x as many, and made the fused merge slower than the merge kernel on H100, run 6).
  std::string oi = e.fresh("oi");
  std::string cD4 = e.ci(D / 4);
  e.S("scf.for " + oi + " = " + tid + " to " + e.ci(NQ * D / 4) + " step " +
      e.ci(threads) + " {");
  e.ind += "  ";
  std::string qi = e.L("arith.divui " + oi + ", " + cD4 + " : index");
  std::string d = e.mul(e.L("arith.remui " + oi + ", " + cD4 + " : index"), e.ci(4));
  std::string qr = e.add(rowBase, qi);
  std::string st = emitSplitMergeState(e, "%opart", "%ml", nsplit, qr, d, D, c0, 8, 4);
  std::string res = emitMergeNormalize(e, st + "#1", st + "#2", 4);
  std::string t = e.L("arith.truncf " + res + " : vector<4xf32> to vector<4x" + ET + ">");
  e.S("vector.store " + t + ", %out[" + e.add(e.mul(qr, cD), d) + "] {alignment = 8} : " +
      MET + ", vector<4x" + ET + ">");
  e.ind = saved + "  ";
  e.S("}");
  e.S("scf.if " + isT0 + " {");
  e.ind += "  ";
  e.S("memref.store " + e.L("arith.constant 0 : i32") + ", %cnt[" + row +
         "] : memref<?xi32>");
  e.ind = saved + "  ";
  e.S("}");
  e.ind = saved;
  e.S("}");

}

} // namespace kvc
} // namespace mlir

#endif
