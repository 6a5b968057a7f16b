//===- DecodeKernelGen.cpp - flash-decoding kernels as gpu-dialect text ----===//
//
// See the header for the ABI. Design of the split kernel (one CTA per (split, KV head, batch)):
//  * a "key group" of D/8 lanes owns one key at a time; lane `sl` of the group holds dims
//    [8*sl, 8*sl+8) and loads them with one 128-bit vector load (K and V);
//  * a warp holds 32/(D/8) key groups, the CTA block_size/32 warps; consecutive key groups read
//    consecutive keys, so a warp's loads are contiguous rows of the cache;
//  * each key group streams keys with stride (#key groups) and keeps, for every one of the
//    g*Sq query rows of the KV group, an online-softmax state (max, sum, 8 accumulators), so
//    K/V are read once per GQA group; the main loop handles `unroll` keys per iteration
//    without bounds checks (all loads issued before use, one rescale per iteration), a
//    warp-uniform tail loop the rest (shuffles are full-warp shfl.sync: no lane may skip one);
//  * q.k partial dots are reduced across the key group with xor shuffles; the key groups of a
//    warp are merged with xor shuffles, the warps through shared memory;
//  * scores live in the log2 domain (q is pre-multiplied by scale*log2(e); exp2 is ex2.approx).
//
//===----------------------------------------------------------------------===//
#include "kvc/Conversion/KVCToGPU/DecodeKernelGen.h"
#include "kvc/Runtime/CUDADecode.h" // kvc_decode_merge_threads (header-only, no link)
#include "GPUTextEmitter.h"
#include "SplitMerge.h"

#include <algorithm>
#include <functional>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <vector>

using namespace mlir::kvc;

namespace {
struct Emitter : GPUTextEmitter {
  std::string splat(const std::string &a) { return L("vector.broadcast " + a + " : f32 to vector<8xf32>"); }
  std::string vfma(const std::string &a, const std::string &b, const std::string &c) {
    return L("vector.fma " + a + ", " + b + ", " + c + " : vector<8xf32>");
  }
};

std::string join(const std::vector<std::string> &v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i)
    s += (i ? ", " : "") + v[i];
  return s;
}
std::string repeatTy(const std::string &t, size_t n) {
  return join(std::vector<std::string>(n, t));
}

} // namespace

int64_t mlir::kvc::decodeMergeThreads(int64_t headDim) {
  return kvc_decode_merge_threads(headDim); // the runtime checks launches against the same
}

int64_t mlir::kvc::decodeKeysPerIteration(const DecodeKernelConfig &c) {
  int64_t lpk = c.headDim / 8;
  return (c.blockSize / 32) * (32 / lpk) * c.unroll;
}

std::string mlir::kvc::validateDecodeKernelConfig(const DecodeKernelConfig &c) {
  const int64_t D = c.headDim;
  if (D % 8 != 0 || D < 8 || 32 % (D / 8) != 0)
    return "head dim must be a multiple of 8 with D/8 dividing 32 (8..256), got " +
           std::to_string(D);
  if (c.elemType != "bf16" && c.elemType != "f16")
    return "element type must be bf16 or f16";
  if (c.blockSize % 32 != 0 || c.blockSize < 32 || c.blockSize > 1024)
    return "block size must be a multiple of 32 in [32, 1024]";
  if (c.unroll < 1 || c.unroll > 16)
    return "unroll must be in [1, 16]";
  if (c.l2PrefetchTiles < 0 || c.l2PrefetchTiles > 64)
    return "l2-prefetch must be in [0, 64] tiles, got " + std::to_string(c.l2PrefetchTiles);
  const int64_t NQ = c.groupSize * c.querySeq;
  if (NQ < 1 || NQ > 32)
    return "g * Sq query rows per KV head must be in [1, 32]";
  const int64_t smemBytes = (c.blockSize / 32) * NQ * (D + 2) * 4;
  if (smemBytes > 48 * 1024)
    return "shared memory for the cross-warp merge exceeds 48 KiB (" +
           std::to_string(smemBytes) + " B): lower block-size";
  return "";
}

std::string mlir::kvc::generateDecodeKernels(const DecodeKernelConfig &c, std::string &error) {
  error = validateDecodeKernelConfig(c);
  if (!error.empty())
    return "";
  const int64_t D = c.headDim;
  const int64_t NQ = c.groupSize * c.querySeq;
  const int64_t LPK = D / 8, KPW = 32 / LPK, NW = c.blockSize / 32, NKG = NW * KPW;
  const int64_t U = c.unroll;
  const std::string ET = c.elemType;
  const std::string MET = "memref<?x" + ET + ">";
  const std::string VET = "vector<8x" + ET + ">";
  const std::string VF = "vector<8xf32>";
  const std::string WG = "#gpu.address_space<workgroup>";
  const std::string smAccTy = "memref<" + std::to_string(NW) + "x" + std::to_string(NQ) + "x" +
                              std::to_string(D) + "xf32, " + WG + ">";
  const std::string smMLTy =
      "memref<" + std::to_string(NW) + "x" + std::to_string(NQ) + "xf32, " + WG + ">";

  Emitter e;
  std::ostringstream &os = e.os;
  os << "// kvc decode attention: D=" << D << " g=" << c.groupSize << " Sq=" << c.querySeq
     << " " << ET << " block=" << c.blockSize << " unroll=" << U
     << (c.ragged ? " ragged" : " dense") << "\n";
  os << "gpu.module @" << c.moduleName << " {\n";

  // ---------------------------------------------------------------- split kernel
  os << "  gpu.func @" << c.prefix << "_split(%q: " << MET << ", %k: " << MET << ", %v: " << MET
     << (c.ragged ? ", %lens: memref<?xi64>" : "")
     << ", %opart: memref<?xf32>, %ml: memref<?xf32>"
     << (c.fuseMerge ? ", %cnt: memref<?xi32>, %out: " + MET : std::string())
     << ", %skv: index, %chunk: index)\n"
     // smAcc takes 16-byte vector stores (llvm.align becomes the shared global's .align).
     << "      workgroup(%smAcc : " << smAccTy << " {llvm.align = 16 : i64}, %smM : " << smMLTy
     << ", %smL : " << smMLTy
     << (c.fuseMerge ? ", %smFlag : memref<1xi32, " + WG + ">" : std::string()) << ")\n"
     << "      kernel attributes {known_block_size = array<i32: " << c.blockSize
     << ", 1, 1>, kvc.kernel = \"split\""
     << (c.minCtasPerSM > 0 ? ", nvvm.minctasm = " + std::to_string(c.minCtasPerSM) + " : i32"
                            : std::string())
     << "} {\n";
  std::string split = e.L("gpu.block_id x");
  std::string kvh = e.L("gpu.block_id y");
  std::string b = e.L("gpu.block_id z");
  std::string nsplit = e.L("gpu.grid_dim x");
  std::string hkv = e.L("gpu.grid_dim y");
  std::string tid = e.L("gpu.thread_id x");
  std::string c0 = e.ci(0), c1 = e.ci(1), c32 = e.ci(32), cLPK = e.ci(LPK), cD = e.ci(D);
  std::string c8 = e.ci(8);
  std::string warp = e.L("arith.divui " + tid + ", " + c32 + " : index");
  std::string lane = e.L("arith.remui " + tid + ", " + c32 + " : index");
  std::string kig = e.L("arith.divui " + lane + ", " + cLPK + " : index");
  std::string sl = e.L("arith.remui " + lane + ", " + cLPK + " : index");
  std::string kg = e.add(e.mul(warp, e.ci(KPW)), kig);
  std::string d0 = e.mul(sl, c8);
  std::string row = e.add(e.mul(b, hkv), kvh);
  std::string rowBase = e.mul(row, e.ci(NQ));
  std::string L = "%skv";
  if (c.ragged) {
    std::string li = e.L("memref.load %lens[" + row + "] : memref<?xi64>");
    std::string z64 = e.L("arith.constant 0 : i64");
    std::string lc = e.L("arith.maxsi " + li + ", " + z64 + " : i64");
    std::string lidx = e.L("arith.index_cast " + lc + " : i64 to index");
    L = e.L("arith.minui " + lidx + ", %skv : index");
  }
  // Dense rows all have Skv keys, so the host's %chunk splits them evenly. A ragged row splits
  // its own length: ceil(L / splits) rounded up to whole main-loop tiles, so every split of a
  // short row does a share of the work instead of the first few splits doing all of it.
  std::string chunk = "%chunk";
  if (c.ragged) {
    std::string tile = e.ci(NKG * U);
    // ceil(L / splits) then up to a tile multiple; plain divui (no arith.ceildivui, which
    // convert-gpu-to-nvvm does not expand).
    std::string per = e.L("arith.divui " + e.add(L, e.L("arith.subi " + nsplit + ", " +
                             c1 + " : index")) + ", " + nsplit + " : index");
    std::string tm1 = e.ci(NKG * U - 1);
    std::string tiles = e.L("arith.divui " + e.add(per, tm1) + ", " + tile + " : index");
    chunk = e.mul(tiles, tile);
  }
  std::string start = e.mul(split, chunk);
  std::string end = e.L("arith.minui " + e.add(start, chunk) + ", " + L + " : index");
  std::string nonEmpty = e.L("arith.cmpi ugt, " + end + ", " + start + " : index");
  std::string diff = e.L("arith.subi " + end + ", " + start + " : index");
  std::string n = e.L("arith.select " + nonEmpty + ", " + diff + ", " + c0 + " : index");
  std::string cTile = e.ci(NKG * U);
  std::string ntiles = e.L("arith.divui " + n + ", " + cTile + " : index");
  std::string mainEnd = e.add(start, e.mul(ntiles, cTile));
  std::string kvBase = e.add(e.mul(e.mul(row, "%skv"), cD), d0);

  // L2 prefetch (l2-prefetch = P > 0): thread 0 asks for the keys [from, min(from + n, end))
  // of K and V with one cp.async.bulk.prefetch each (a row's keys are contiguous). The
  // prologue covers the first P tiles, each main-loop iteration the tile P ahead, so the CTA
  // keeps ~P tiles of reads in flight without holding them in registers: at batch 1 a wave of
  // CTAs with one tile in registers each leaves HBM under-used (ncu, run 6: 67% at 16k).
  std::function<void(const std::string &, int64_t)> l2Ahead = [](const std::string &, int64_t) {};
  if (c.l2PrefetchTiles > 0) {
    std::string kp = e.L("memref.extract_aligned_pointer_as_index %k : " + MET + " -> index");
    std::string vp = e.L("memref.extract_aligned_pointer_as_index %v : " + MET + " -> index");
    std::string cKeyBytes = e.ci(D * 2);
    std::string rowBytes = e.mul(e.mul(row, "%skv"), cKeyBytes);
    l2Ahead = [&, kp, vp, cKeyBytes, rowBytes](const std::string &from, int64_t keys) {
      std::string to = e.L("arith.minui " + e.add(from, e.ci(keys)) + ", " + end + " : index");
      std::string isT0 = e.L("arith.cmpi eq, " + tid + ", " + c0 + " : index");
      std::string some = e.L("arith.cmpi ult, " + from + ", " + to + " : index");
      std::string go = e.L("arith.andi " + isT0 + ", " + some + " : i1");
      e.S("scf.if " + go + " {");
      e.push();
      std::string off = e.add(rowBytes, e.mul(from, cKeyBytes));
      std::string sz = e.L("arith.index_cast " + e.mul(e.sub(to, from), cKeyBytes) +
                           " : index to i32");
      for (const std::string &base : {kp, vp}) {
        std::string a = e.L("arith.index_cast " + e.add(base, off) + " : index to i64");
        std::string ptr = e.L("llvm.inttoptr " + a + " : i64 to !llvm.ptr<1>");
        e.S("nvvm.cp.async.bulk.prefetch " + ptr + ", " + sz + " : !llvm.ptr<1>");
      }
      e.pop();
      e.S("}");
    };
  }
  const int64_t l2Keys = c.l2PrefetchTiles * NKG * U;
  l2Ahead(start, l2Keys);

  // Query rows of this KV group, pre-scaled into the log2 domain.
  std::string scl = e.splat(e.cf(float(c.scaleLog2)));
  std::vector<std::string> qv(NQ);
  for (int64_t qi = 0; qi < NQ; ++qi) {
    std::string idx = e.add(e.mul(e.add(rowBase, e.ci(qi)), cD), d0);
    std::string raw = e.L("vector.load %q[" + idx + "] {alignment = 16} : " + MET + ", " + VET);
    std::string f = e.L("arith.extf " + raw + " : " + VET + " to " + VF);
    qv[qi] = e.fmul(f, scl, VF);
  }
  std::string ninf = e.cf(-INFINITY);
  std::string fzero = e.cf(0.0f);
  std::string vzero = e.L("arith.constant dense<0.0> : " + VF);
  std::string w32 = e.ci32(32);
  std::vector<std::string> redOffs;
  for (int64_t off = LPK / 2; off >= 1; off /= 2)
    redOffs.push_back(e.ci32(off));

  std::string stateTys = repeatTy("f32", 2 * NQ) + (NQ ? ", " : "") + repeatTy(VF, NQ);
  auto stateNames = [&](const std::string &base) {
    std::vector<std::string> v;
    for (int64_t i = 0; i < 3 * NQ; ++i)
      v.push_back(base + "#" + std::to_string(i));
    return v;
  };

  // One online-softmax step over `nk` keys whose K/V index bases (into %k/%v) are given.
  // state = m[NQ], l[NQ], acc[NQ]; returns the new state.
  // The raw K then V vectors (128-bit loads) of the keys at `idxs`.
  auto loadKV = [&](const std::vector<std::string> &idxs) {
    std::vector<std::string> raw;
    for (const char *buf : {"%k", "%v"})
      for (const std::string &idx : idxs)
        raw.push_back(e.L(std::string("vector.load ") + buf + "[" + idx + "] {alignment = 16} : " +
                          MET + ", " + VET));
    return raw;
  };
  // The step on already loaded K/V (`raw` as loadKV returns it).
  auto compute = [&](const std::vector<std::string> &state, const std::vector<std::string> &raw) {
    size_t nk = raw.size() / 2;
    std::vector<std::string> kf(nk), vf(nk);
    std::vector<std::string> kraw(raw.begin(), raw.begin() + nk), vraw(raw.begin() + nk, raw.end());
    for (size_t u = 0; u < nk; ++u)
      kf[u] = e.L("arith.extf " + kraw[u] + " : " + VET + " to " + VF);
    std::vector<std::string> out(3 * NQ);
    std::vector<std::vector<std::string>> s(NQ, std::vector<std::string>(nk));
    for (int64_t qi = 0; qi < NQ; ++qi)
      for (size_t u = 0; u < nk; ++u) {
        std::string prod = e.fmul(qv[qi], kf[u], VF);
        std::string part =
            e.L("vector.reduction <add>, " + prod + " fastmath<reassoc> : " + VF + " into f32");
        for (auto &off : redOffs)
          part = e.fadd(part, e.shfl(part, off, w32));
        s[qi][u] = part;
      }
    for (size_t u = 0; u < nk; ++u)
      vf[u] = e.L("arith.extf " + vraw[u] + " : " + VET + " to " + VF);
    for (int64_t qi = 0; qi < NQ; ++qi) {
      const std::string &m = state[qi], &l = state[NQ + qi], &acc = state[2 * NQ + qi];
      std::string mx = m;
      for (size_t u = 0; u < nk; ++u)
        mx = e.fmax(mx, s[qi][u]);
      std::string alpha = e.exp2(e.fsub(m, mx)); // m = -inf at start: 2^-inf = 0
      std::string lsum = e.fmul(l, alpha);
      std::string a = e.fmul(acc, e.splat(alpha), VF);
      for (size_t u = 0; u < nk; ++u) {
        std::string p = e.exp2(e.fsub(s[qi][u], mx));
        lsum = e.fadd(lsum, p);
        a = e.vfma(e.splat(p), vf[u], a);
      }
      out[qi] = mx;
      out[NQ + qi] = lsum;
      out[2 * NQ + qi] = a;
    }
    return out;
  };
  auto step = [&](const std::vector<std::string> &state, const std::vector<std::string> &idxs) {
    return compute(state, loadKV(idxs));
  };

  std::vector<std::string> init;
  for (int64_t i = 0; i < NQ; ++i)
    init.push_back(ninf);
  for (int64_t i = 0; i < NQ; ++i)
    init.push_back(fzero);
  for (int64_t i = 0; i < NQ; ++i)
    init.push_back(vzero);
  auto iterArgs = [&](const std::vector<std::string> &names, const std::vector<std::string> &vals) {
    std::string s;
    for (size_t i = 0; i < names.size(); ++i)
      s += (i ? ", " : "") + names[i] + " = " + vals[i];
    return s;
  };

  // Main loop: U keys per key group per iteration, no bounds checks.
  auto tileIdxs = [&](const std::string &base) {
    std::vector<std::string> idxs;
    for (int64_t u = 0; u < U; ++u) {
      std::string j = e.add(e.add(base, e.ci(u * NKG)), kg);
      idxs.push_back(e.add(kvBase, e.mul(j, cD)));
    }
    return idxs;
  };
  if (!c.prefetch) {
    std::vector<std::string> args;
    for (int64_t i = 0; i < 3 * NQ; ++i)
      args.push_back("%ma" + std::to_string(i));
    os << e.ind << "%main:" << 3 * NQ << " = scf.for %base = " << start << " to " << mainEnd
       << " step " << cTile << " iter_args(" << iterArgs(args, init) << ") -> (" << stateTys
       << ") {\n";
    std::string saved = e.ind;
    e.ind += "  ";
    if (l2Keys > 0)
      l2Ahead(e.add("%base", e.ci(l2Keys)), NKG * U);
    std::vector<std::string> out = step(args, tileIdxs("%base"));
    e.S("scf.yield " + join(out) + " : " + stateTys);
    e.ind = saved;
    e.S("}");
  } else {
    // Software-pipelined: the next tile's K/V loads are issued before this tile's math, so a
    // warp always has a tile in flight while it computes (the loads of the last iteration
    // re-read its own tile, which is in L2, instead of branching). The loaded tile is carried
    // in iter_args (2U x 128-bit registers).
    const std::string rawTys = repeatTy(VET, 2 * U);
    std::string hasTiles = e.L("arith.cmpi ugt, " + ntiles + ", " + c0 + " : index");
    std::string zraw = e.L("arith.constant dense<0.0> : " + VET);
    os << e.ind << "%pre:" << 2 * U << " = scf.if " << hasTiles << " -> (" << rawTys << ") {\n";
    std::string saved = e.ind;
    e.ind += "  ";
    std::vector<std::string> first = loadKV(tileIdxs(start));
    e.S("scf.yield " + join(first) + " : " + rawTys);
    e.ind = saved;
    e.S("} else {");
    e.S("  scf.yield " + join(std::vector<std::string>(2 * U, zraw)) + " : " + rawTys);
    e.S("}");
    std::vector<std::string> args, rawArgs, rawInit;
    for (int64_t i = 0; i < 3 * NQ; ++i)
      args.push_back("%ma" + std::to_string(i));
    for (int64_t i = 0; i < 2 * U; ++i) {
      rawArgs.push_back("%mr" + std::to_string(i));
      rawInit.push_back("%pre#" + std::to_string(i));
    }
    std::vector<std::string> allArgs = args, allInit = init;
    allArgs.insert(allArgs.end(), rawArgs.begin(), rawArgs.end());
    allInit.insert(allInit.end(), rawInit.begin(), rawInit.end());
    os << e.ind << "%mainp:" << 3 * NQ + 2 * U << " = scf.for %base = " << start << " to "
       << mainEnd << " step " << cTile << " iter_args(" << iterArgs(allArgs, allInit) << ") -> ("
       << stateTys << ", " << rawTys << ") {\n";
    e.ind += "  ";
    if (l2Keys > 0)
      l2Ahead(e.add("%base", e.ci(l2Keys)), NKG * U);
    std::string nb = e.add("%base", cTile);
    std::string more = e.L("arith.cmpi ult, " + nb + ", " + mainEnd + " : index");
    std::string nextBase = e.L("arith.select " + more + ", " + nb + ", %base : index");
    std::vector<std::string> next = loadKV(tileIdxs(nextBase));
    std::vector<std::string> out = compute(args, rawArgs);
    out.insert(out.end(), next.begin(), next.end());
    e.S("scf.yield " + join(out) + " : " + stateTys + ", " + rawTys);
    e.ind = saved;
    e.S("}");
  }
  const std::string mainRes = c.prefetch ? "%mainp" : "%main";
  // Tail: one key per key group per iteration. The loop is warp-uniform (gpu.shuffle lowers
  // to shfl.sync over the full warp, so every lane must take part in every shuffle): key group
  // kig of a warp handles key jb + kig, lanes past `end` read a clamped, valid key and keep
  // their state unchanged.
  {
    std::vector<std::string> args;
    for (int64_t i = 0; i < 3 * NQ; ++i)
      args.push_back("%ta" + std::to_string(i));
    std::string tstart = e.add(mainEnd, e.mul(warp, e.ci(KPW)));
    std::string cNKG = e.ci(NKG);
    os << e.ind << "%tail:" << 3 * NQ << " = scf.for %jb = " << tstart << " to " << end
       << " step " << cNKG << " iter_args(" << iterArgs(args, stateNames(mainRes)) << ") -> ("
       << stateTys << ") {\n";
    std::string saved = e.ind;
    e.ind += "  ";
    std::string j = e.add("%jb", kig);
    std::string valid = e.L("arith.cmpi ult, " + j + ", " + end + " : index");
    std::string last = e.L("arith.subi " + end + ", " + c1 + " : index");
    std::string jc = e.L("arith.minui " + j + ", " + last + " : index");
    std::vector<std::string> out = step(args, {e.add(kvBase, e.mul(jc, cD))});
    for (int64_t i = 0; i < 3 * NQ; ++i)
      out[i] = e.L("arith.select " + valid + ", " + out[i] + ", " + args[i] + " : " +
                      (i < 2 * NQ ? std::string("f32") : VF));
    e.S("scf.yield " + join(out) + " : " + stateTys);
    e.ind = saved;
    e.S("}");
  }
  std::vector<std::string> st = stateNames("%tail");

  // Merge the key groups of a warp (xor shuffles over lanes LPK, 2*LPK, .., 16 apart).
  for (int64_t off = LPK; off < 32; off *= 2) {
    std::string coff = e.ci32(off);
    for (int64_t qi = 0; qi < NQ; ++qi) {
      std::string m = st[qi], l = st[NQ + qi], acc = st[2 * NQ + qi];
      std::string mo = e.shfl(m, coff, w32);
      std::string lo = e.shfl(l, coff, w32);
      std::vector<std::string> elems;
      for (int i = 0; i < 8; ++i) {
        std::string x = e.L("vector.extract " + acc + "[" + std::to_string(i) + "] : f32 from " + VF);
        elems.push_back(e.shfl(x, coff, w32));
      }
      std::string acco = e.L("vector.from_elements " + join(elems) + " : " + VF);
      std::string M = e.fmax(m, mo);
      std::string wa = e.weight(m, M, ninf, fzero), wb = e.weight(mo, M, ninf, fzero);
      st[qi] = M;
      st[NQ + qi] = e.fadd(e.fmul(l, wa), e.fmul(lo, wb));
      st[2 * NQ + qi] = e.vfma(e.splat(wb), acco, e.fmul(acc, e.splat(wa), VF));
    }
  }
  // Key group 0 of each warp publishes the warp's state.
  {
    std::string isG0 = e.L("arith.cmpi ult, " + lane + ", " + cLPK + " : index");
    e.S("scf.if " + isG0 + " {");
    std::string saved = e.ind;
    e.ind += "  ";
    for (int64_t qi = 0; qi < NQ; ++qi)
      e.S("vector.store " + st[2 * NQ + qi] + ", %smAcc[" + warp + ", " + e.ci(qi) + ", " + d0 +
             "] {alignment = 16} : " + smAccTy + ", " + VF);
    std::string isL0 = e.L("arith.cmpi eq, " + lane + ", " + c0 + " : index");
    e.S("scf.if " + isL0 + " {");
    e.ind += "  ";
    for (int64_t qi = 0; qi < NQ; ++qi) {
      std::string cq = e.ci(qi);
      e.S("memref.store " + st[qi] + ", %smM[" + warp + ", " + cq + "] : " + smMLTy);
      e.S("memref.store " + st[NQ + qi] + ", %smL[" + warp + ", " + cq + "] : " + smMLTy);
    }
    e.ind = saved + "  ";
    e.S("}");
    e.ind = saved;
    e.S("}");
  }
  e.S("gpu.barrier");
  // Cross-warp merge; thread t handles outputs t, t + block, ... of the NQ x D partial.
  {
    std::string cBS = e.ci(c.blockSize);
    std::string total = e.ci(NQ * D);
    e.S("scf.for %oi = " + tid + " to " + total + " step " + cBS + " {");
    std::string saved = e.ind;
    e.ind += "  ";
    std::string qi = e.L("arith.divui %oi, " + cD + " : index");
    std::string d = e.L("arith.remui %oi, " + cD + " : index");
    std::vector<std::string> ms(NW);
    std::string M = ninf;
    for (int64_t w = 0; w < NW; ++w) {
      ms[w] = e.L("memref.load %smM[" + e.ci(w) + ", " + qi + "] : " + smMLTy);
      M = e.fmax(M, ms[w]);
    }
    std::string Ls = fzero, O = fzero;
    for (int64_t w = 0; w < NW; ++w) {
      std::string cw = e.ci(w);
      std::string wt = e.weight(ms[w], M, ninf, fzero);
      std::string lw = e.L("memref.load %smL[" + cw + ", " + qi + "] : " + smMLTy);
      std::string aw = e.L("memref.load %smAcc[" + cw + ", " + qi + ", " + d + "] : " + smAccTy);
      Ls = e.fadd(Ls, e.fmul(wt, lw));
      O = e.fadd(O, e.fmul(wt, aw));
    }
    std::string pr = e.add(e.mul(e.add(rowBase, qi), nsplit), split);
    e.S("memref.store " + O + ", %opart[" + e.add(e.mul(pr, cD), d) + "] : memref<?xf32>");
    std::string isD0 = e.L("arith.cmpi eq, " + d + ", " + c0 + " : index");
    e.S("scf.if " + isD0 + " {");
    e.ind += "  ";
    std::string mi = e.mul(pr, e.ci(2));
    e.S("memref.store " + M + ", %ml[" + mi + "] : memref<?xf32>");
    e.S("memref.store " + Ls + ", %ml[" + e.add(mi, c1) + "] : memref<?xf32>");
    e.ind = saved + "  ";
    e.S("}");
    e.ind = saved;
    e.S("}");
  }
  if (c.fuseMerge)
    emitFusedMergeEpilogue(e, tid, row, rowBase, nsplit, NQ, D, c.blockSize, ET, MET, c0, c1, cD,
                           WG);
  e.S("gpu.return");
  os << "  }\n";

  // ---------------------------------------------------------------- merge kernel
  if (c.fuseMerge) {
    os << "}\n";
    return os.str();
  }
  emitMergeKernel(e, c.prefix + "_merge", ET, D, "merge");
  os << "}\n";
  return os.str();
}
