//===- kvc-bench.cpp - run, check and time kvc's GPU kernels --------------===//
//
// Works on the output of `kvc-opt --kvc-gpu-pipeline` (format=isa) with no MLIR on the GPU
// machine: it reads PTX (a .ptx file, or the gpu.binary's `assembly` string in the .mlir), loads
// it through kvc's CUDA runtime (libkvc_runtime, driver API) and finds the decode kernels by
// name.
//
//   kvc-bench extract IN.mlir -o OUT.ptx [--header OUT.h]   PTX (and a C header embedding it)
//   kvc-bench info IN                                       kernels and their resources
//   kvc-bench check IN [--seed N]                           correctness vs a float64 CPU ref
//   kvc-bench check-npy IN --case DIR ...                   real-model cases vs kvc's CPU path
//   kvc-bench decode IN [--json F] [--batches 1,8,32] [--contexts 4096,16384,65536]
//                      [--reps N] [--warmup N] [--splits N]  timing (CUDA events, L2 flush)
//                      [--flush dirty|clean]  memset (default) or read-only L2 flush
//                      [--settle-ms N]  wait after device frees before the next timing
//                                       (default 100, BenchCommon.h gSettleMs)
//   kvc-bench copy [--mib N]                                device-to-device copy bandwidth
//   kvc-bench floor [--batches ..] [--contexts ..] [--hkv N] [--ragged-ratio R] [--json F]
//                   [--read x1|x4] [--sizes-mib LIST]
//                                                           a plain streaming read of each
//                      decode shape's K/V bytes (D = 128, bf16) after the same L2 flush: a
//                      reference for what launch, ramp-up and tail leave at that size
//   kvc-bench encoded|fixed-width|store ...                 the encoded and fixed-width cache
//                      kernels, the store kernels (Encoded.cpp, FixedWidth.cpp, Store.cpp)
//
//===----------------------------------------------------------------------===//
#include "BenchCommon.h"
#include "kvc/Runtime/CUDA.h"
#include "kvc/Runtime/CUDADecode.h"
#include "kvc/Runtime/CUDAEncoded.h"
#include "kvc/Runtime/CUDAFixedWidth.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {
using namespace kvcbench;

// The `assembly = "..."` string of a gpu.binary (MLIR string escapes: \XX hex, \\, \").

struct Variant {
  std::string name; // without _split/_merge
  kvc_decode_kernel_config cfg;
  kvc_cuda_function split = nullptr, merge = nullptr;
  int regs = 0, smem = 0, ctasPerSM = 0;
};

struct Loaded {
  std::string ptx;
  std::vector<Variant> variants;
  int sms = 0, l2 = 0;
  std::string device;
};

Loaded load(const std::string &path) {
  Loaded L;
  L.ptx = extractPTX(readFile(path));
  const DeviceInfo dev = initDevice();
  L.device = dev.name;
  L.sms = dev.sms;
  L.l2 = dev.l2;
  kvc_cuda_module mod;
  CK(kvc_cuda_module_load(L.ptx.c_str(), &mod));
  for (const std::string &k : kernelNames(L.ptx)) {
    kvc_decode_kernel_config c;
    if (!endsWith(k, "_split") || kvc_cuda_decode_parse_name(k.c_str(), &c))
      continue;
    Variant v;
    v.name = k.substr(0, k.size() - 6);
    kvc_decode_kernel kern;
    CK(kvc_cuda_decode_kernel_get(mod, v.name.c_str(), &kern));
    v.cfg = kern.cfg;
    v.split = kern.split;
    v.merge = kern.merge; // null for fused-merge kernels
    v.ctasPerSM = kern.resident_ctas / L.sms;
    CK(kvc_cuda_function_info(v.split, &v.regs, &v.smem));
    L.variants.push_back(v);
  }
  if (L.variants.empty())
    die("no kvc decode kernels (<tag>_d.._split) in " + path);
  return L;
}

// ----------------------------------------------------------------------------- numerics

struct Case {
  int64_t batch, hkv, skv;
  int splits; // 0 = plan's choice
  bool raggedLens;
};

// Runs one case; returns ‖out-ref‖/‖ref‖ (inf if any output is NaN/unwritten).
double runCase(const Loaded &L, const Variant &V, const Case &C, std::mt19937 &rng,
               double *maxAbs, int *usedSplits) {
  const auto &cfg = V.cfg;
  const bool bf = cfg.is_bf16;
  const int64_t D = cfg.head_dim, g = cfg.group, Sq = cfg.query_seq;
  const int64_t B = C.batch, Hkv = C.hkv, S = C.skv, Hq = Hkv * g;
  const int64_t nq = B * Hq * Sq * D, nkv = B * Hkv * S * D;
  std::uniform_real_distribution<float> U(-1.f, 1.f);
  std::vector<uint16_t> q(nq), k(nkv), v(nkv);
  for (auto &x : q)
    x = toHalfBits(3.f * U(rng), bf);
  for (auto &x : k)
    x = toHalfBits(3.f * U(rng), bf);
  for (auto &x : v)
    x = toHalfBits(U(rng), bf);
  std::vector<int64_t> lens(B * Hkv, S);
  if (cfg.ragged) {
    std::uniform_int_distribution<int64_t> UL(0, S);
    for (size_t i = 0; i < lens.size(); ++i)
      lens[i] = i == 0 ? 0 : i == 1 ? std::min<int64_t>(1, S) : i == 2 ? S : UL(rng);
  }
  // float64 reference from the rounded inputs
  const std::vector<double> ref = referenceAttention(halfToFloat(q.data(), q.size(), bf), B, Hkv,
                                                     g, Sq, D, halfRows(k.data(), v.data(), lens, S, D, bf));
  kvc_decode_shape shape{B, Hkv, S, C.splits, *std::max_element(lens.begin(), lens.end())};
  kvc_decode_plan plan;
  CK(kvc_cuda_decode_make_plan(&cfg, &shape, L.sms * V.ctasPerSM, &plan));
  *usedSplits = plan.num_splits;
  kvc_cuda_ptr dq, dk, dv, dl, dws, dout;
  CK(kvc_cuda_malloc(&dq, nq * 2));
  CK(kvc_cuda_malloc(&dk, nkv * 2));
  CK(kvc_cuda_malloc(&dv, nkv * 2));
  CK(kvc_cuda_malloc(&dl, lens.size() * 8));
  CK(kvc_cuda_malloc(&dws, plan.workspace_bytes));
  CK(kvc_cuda_malloc(&dout, nq * 2));
  CK(kvc_cuda_memcpy_htod(dq, q.data(), nq * 2));
  CK(kvc_cuda_memcpy_htod(dk, k.data(), nkv * 2));
  CK(kvc_cuda_memcpy_htod(dv, v.data(), nkv * 2));
  CK(kvc_cuda_memcpy_htod(dl, lens.data(), lens.size() * 8));
  // Poison the output and the workspace (0xFF.. is NaN in bf16/f16/f32).
  CK(kvc_cuda_memset_d8_async(dout, 0xFF, nq * 2, nullptr));
  CK(kvc_cuda_memset_d8_async(dws, 0xFF, plan.workspace_bytes, nullptr));
  CK(kvc_cuda_decode_init_workspace(&cfg, &plan, dws, nullptr));
  CK(kvc_cuda_decode_launch(V.split, V.merge, &cfg, &shape, &plan, dq, dk, dv,
                            cfg.ragged ? dl : 0, dws, dout, nullptr));
  CK(kvc_cuda_synchronize());
  std::vector<uint16_t> out(nq);
  CK(kvc_cuda_memcpy_dtoh(out.data(), dout, nq * 2));
  for (kvc_cuda_ptr p : {dq, dk, dv, dl, dws, dout})
    CK(kvc_cuda_free(p));
  std::vector<double> got(out.size());
  for (size_t i = 0; i < out.size(); ++i)
    got[i] = fromHalfBits(out[i], bf);
  return relativeL2(got, ref, maxAbs);
}

int cmdCheck(const std::string &path, unsigned seed, double tol, bool quick) {
  Loaded L = load(path);
  printf("device: %s, %d SMs\n", L.device.c_str(), L.sms);
  std::mt19937 rng(seed);
  int failures = 0, total = 0;
  for (const Variant &V : L.variants) {
    printf("variant %s (regs %d, smem %d B, %d CTAs/SM)\n", V.name.c_str(), V.regs, V.smem,
           V.ctasPerSM);
    std::vector<Case> cases = {
        {1, 8, 1, 0, false},    {1, 8, 7, 0, false},    {2, 8, 1000, 0, false},
        {3, 2, 4099, 0, false}, {1, 8, 4099, 1, false}, {1, 2, 7, 64, false},
        {2, 8, 33333, 0, false}, {1, 8, 65536 + 5, 0, false}, {4, 3, 517, 3, false}};
    if (quick) // for compute-sanitizer: small sizes only
      cases = {{1, 8, 1, 0, false}, {1, 2, 7, 64, false}, {2, 2, 1000, 0, false},
               {1, 3, 517, 3, false}};
    for (const Case &C : cases) {
      double maxAbs;
      int splits;
      double err = runCase(L, V, C, rng, &maxAbs, &splits);
      bool ok = err <= tol;
      failures += !ok;
      ++total;
      printf("  %s B=%lld Hkv=%lld Hq=%lld Skv=%lld splits=%d%s: rel_l2=%.3e max_abs=%.3e\n",
             ok ? "PASS" : "FAIL", (long long)C.batch, (long long)C.hkv,
             (long long)(C.hkv * V.cfg.group), (long long)C.skv, splits,
             V.cfg.ragged ? " (ragged lengths incl. 0, 1, cap)" : "", err, maxAbs);
    }
  }
  printf("check: %d/%d passed (tolerance rel_l2 <= %.1e vs float64 reference)\n", total - failures,
         total, tol);
  return failures ? 1 : 0;
}

// ----------------------------------------------------------------------------- check-npy
// Runs the kernel variant matching each case folder (q/k/v[/lengths]/expected .npy, as written
// by python -m kvc.bench.gemma_decode_cases) and compares with `expected` (kvc's CPU path) and
// with a float64 reference from the same inputs rounded to the kernel's element type.
int cmdCheckNpy(const std::string &path, const std::vector<std::string> &dirs, double tol) {
  Loaded L = load(path);
  printf("device: %s, %d SMs\n", L.device.c_str(), L.sms);
  int failures = 0;
  for (const std::string &dir : dirs) {
    Npy q = readNpy(dir + "/q.npy"), k = readNpy(dir + "/k.npy"), v = readNpy(dir + "/v.npy"),
        ex = readNpy(dir + "/expected.npy");
    std::ifstream hasLen(dir + "/lengths.npy");
    const bool ragged = bool(hasLen);
    Npy ln;
    if (ragged)
      ln = readNpy(dir + "/lengths.npy");
    if (q.shape.size() != 4 || k.shape.size() != 4 || k.shape != v.shape || ex.shape != q.shape ||
        q.f32.empty() || k.f32.empty() || ex.f32.empty())
      die(dir + ": want float32 q/expected [B,Hq,Sq,D] and k/v [B,Hkv,S,D]");
    const int64_t B = q.shape[0], Hq = q.shape[1], Sq = q.shape[2], D = q.shape[3];
    const int64_t Hkv = k.shape[1], S = k.shape[2];
    if (k.shape[0] != B || k.shape[3] != D || Hq % Hkv)
      die(dir + ": q and k/v shapes disagree");
    if (ragged && (ln.i64.size() != size_t(B * Hkv)))
      die(dir + ": lengths.npy must be int64 [B, Hkv]");
    const Variant *V = nullptr;
    for (const Variant &c : L.variants)
      if (c.cfg.head_dim == D && c.cfg.group == Hq / Hkv && c.cfg.query_seq == Sq &&
          bool(c.cfg.ragged) == ragged)
        V = &c;
    if (!V) {
      printf("  FAIL %s: no %s kernel with D=%lld g=%lld Sq=%lld in %s\n", dir.c_str(),
             ragged ? "ragged" : "dense", (long long)D, (long long)(Hq / Hkv), (long long)Sq,
             path.c_str());
      ++failures;
      continue;
    }
    const bool bf = V->cfg.is_bf16;
    const int64_t nq = B * Hq * Sq * D, nkv = B * Hkv * S * D;
    std::vector<uint16_t> qh(nq), kh(nkv), vh(nkv);
    double roundErr = 0;
    auto conv = [&](const std::vector<float> &src, std::vector<uint16_t> &dst) {
      for (size_t i = 0; i < src.size(); ++i) {
        dst[i] = toHalfBits(src[i], bf);
        roundErr = std::max(roundErr, double(std::fabs(fromHalfBits(dst[i], bf) - src[i])));
      }
    };
    conv(q.f32, qh);
    conv(k.f32, kh);
    conv(v.f32, vh);
    std::vector<int64_t> lens = ragged ? ln.i64 : std::vector<int64_t>(B * Hkv, S);
    // float64 reference
    const std::vector<double> ref =
        referenceAttention(halfToFloat(qh.data(), qh.size(), bf), B, Hkv, Hq / Hkv, Sq, D,
                           halfRows(kh.data(), vh.data(), lens, S, D, bf));
    kvc_decode_shape shape{B, Hkv, S, 0, *std::max_element(lens.begin(), lens.end())};
    kvc_decode_plan plan;
    CK(kvc_cuda_decode_make_plan(&V->cfg, &shape, L.sms * V->ctasPerSM, &plan));
    kvc_cuda_ptr dq, dk, dv, dl = 0, dws, dout;
    CK(kvc_cuda_malloc(&dq, nq * 2));
    CK(kvc_cuda_malloc(&dk, nkv * 2));
    CK(kvc_cuda_malloc(&dv, nkv * 2));
    CK(kvc_cuda_malloc(&dws, plan.workspace_bytes));
    CK(kvc_cuda_malloc(&dout, nq * 2));
    CK(kvc_cuda_memcpy_htod(dq, qh.data(), nq * 2));
    CK(kvc_cuda_memcpy_htod(dk, kh.data(), nkv * 2));
    CK(kvc_cuda_memcpy_htod(dv, vh.data(), nkv * 2));
    if (ragged) {
      CK(kvc_cuda_malloc(&dl, lens.size() * 8));
      CK(kvc_cuda_memcpy_htod(dl, lens.data(), lens.size() * 8));
    }
    CK(kvc_cuda_memset_d8_async(dout, 0xFF, nq * 2, nullptr));
    CK(kvc_cuda_memset_d8_async(dws, 0xFF, plan.workspace_bytes, nullptr));
    CK(kvc_cuda_decode_init_workspace(&V->cfg, &plan, dws, nullptr));
    CK(kvc_cuda_decode_launch(V->split, V->merge, &V->cfg, &shape, &plan, dq, dk, dv, dl, dws,
                              dout, nullptr));
    CK(kvc_cuda_synchronize());
    std::vector<uint16_t> out(nq);
    CK(kvc_cuda_memcpy_dtoh(out.data(), dout, nq * 2));
    for (kvc_cuda_ptr p : {dq, dk, dv, dl, dws, dout})
      if (p)
        CK(kvc_cuda_free(p));
    std::vector<double> got(out.size()), expected(ex.f32.begin(), ex.f32.end());
    for (size_t i = 0; i < out.size(); ++i)
      got[i] = fromHalfBits(out[i], bf);
    const double errCpu = relativeL2(got, expected), errRef = relativeL2(got, ref);
    const bool ok = errCpu <= tol && errRef <= tol;
    failures += !ok;
    printf("  %s %s: %s B=%lld Hq=%lld Hkv=%lld S=%lld D=%lld splits=%d%s: rel_l2 vs kvc CPU "
           "path %.3e, vs float64 %.3e (CPU path vs float64 %.1e; input rounding to %s <= %.1e)\n",
           ok ? "PASS" : "FAIL", dir.c_str(), V->name.c_str(), (long long)B, (long long)Hq,
           (long long)Hkv, (long long)S, (long long)D, plan.num_splits, ragged ? " ragged" : "",
           errCpu, errRef, relativeL2(expected, ref), bf ? "bf16" : "f16",
           roundErr);
  }
  printf("check-npy: %d/%zu passed (tolerance rel_l2 <= %.1e)\n", int(dirs.size()) - failures,
         dirs.size(), tol);
  return failures ? 1 : 0;
}

// ----------------------------------------------------------------------------- timing

int cmdDecode(const std::string &path, const std::string &json, std::vector<int64_t> batches,
              std::vector<int64_t> contexts, int warmup, int reps, int forceSplits,
              int64_t hkv, double raggedRatio, bool splitOnly) {
  Loaded L = load(path);
  Timer T(L.l2);
  std::ostringstream js;
  const double copyTBs = startDecodeTiming(L, T, warmup, reps, js);
  jsonOpenResults(js, splitOnly ? "the split kernel only" : "split+merge");
  bool first = true;
  printf("%-44s %5s %7s %6s %10s %10s %8s %7s\n", "variant", "batch", "context", "splits",
         "time_us", "MB_read", "TB/s", "%copy");
  for (const Variant &V : L.variants) {
    // Ragged variants read round(ratio * S) pairs of every row of an S-capacity cache (what a
    // compressed cache at r = ratio holds); dense variants read all S.
    const int64_t D = V.cfg.head_dim, g = V.cfg.group, Sq = V.cfg.query_seq;
    for (int64_t B : batches)
      for (int64_t S : contexts) {
        const int64_t nq = B * hkv * g * Sq * D, nkv = B * hkv * S * D;
        const int64_t len = V.cfg.ragged ? std::max<int64_t>(1, std::llround(raggedRatio * S)) : S;
        kvc_decode_shape shape{B, hkv, S, forceSplits, len};
        kvc_decode_plan plan;
        CK(kvc_cuda_decode_make_plan(&V.cfg, &shape, L.sms * V.ctasPerSM, &plan));
        kvc_cuda_ptr dq, dk, dv, dws, dout;
        CK(kvc_cuda_malloc(&dq, nq * 2));
        CK(kvc_cuda_malloc(&dk, nkv * 2));
        CK(kvc_cuda_malloc(&dv, nkv * 2));
        CK(kvc_cuda_malloc(&dws, plan.workspace_bytes));
        CK(kvc_cuda_malloc(&dout, nq * 2));
        kvc_cuda_ptr dl = 0;
        if (V.cfg.ragged) {
          std::vector<int64_t> lens(size_t(B * hkv), len);
          CK(kvc_cuda_malloc(&dl, lens.size() * 8));
          CK(kvc_cuda_memcpy_htod(dl, lens.data(), lens.size() * 8));
        }
        // Non-zero data (0x3C3C: bf16 ~0.0115, f16 ~1.06).
        CK(kvc_cuda_memset_d8_async(dq, 0x3C, nq * 2, nullptr));
        CK(kvc_cuda_memset_d8_async(dk, 0x3B, nkv * 2, nullptr));
        CK(kvc_cuda_memset_d8_async(dv, 0x3A, nkv * 2, nullptr));
        CK(kvc_cuda_decode_init_workspace(&V.cfg, &plan, dws, nullptr));
        double ms = T.medianMs(warmup, reps, [&] {
          CK(kvc_cuda_decode_launch(V.split, splitOnly ? nullptr : V.merge, &V.cfg, &shape, &plan,
                                    dq, dk, dv, dl, dws, dout, nullptr));
        });
        for (kvc_cuda_ptr p : {dq, dk, dv, dws, dout})
          benchFree(p);
        if (dl)
          benchFree(dl);
        double bytes = 2.0 * (nkv / S) * len * 2; // K and V pairs read once
        double tbs = bytes / (ms * 1e-3) / 1e12;
        printf("%-44s %5lld %7lld %6d %10.1f %10.1f %8.3f %6.1f%%\n", V.name.c_str(),
               (long long)B, (long long)S, plan.num_splits, ms * 1e3, bytes / 1e6, tbs,
               100.0 * tbs / copyTBs);
        js << (first ? "" : ",\n") << "    {\"backend\": \"kvc\", \"variant\": \"" << V.name
           << "\", \"batch\": " << B << ", \"hq\": " << hkv * g << ", \"hkv\": " << hkv
           << ", \"d\": " << D << ", \"context\": " << S << ", \"ragged\": " << (V.cfg.ragged ? "true" : "false")
           << ", \"kept_pairs_per_row\": " << len << ", \"splits\": " << plan.num_splits
           << ", \"regs\": " << V.regs << ", \"ctas_per_sm\": " << V.ctasPerSM << ", \"time_us\": " << ms * 1e3
           << ", \"bytes\": " << bytes << ", \"tbps\": " << tbs
           << ", \"frac_copy\": " << tbs / copyTBs << "}";
        first = false;
      }
  }
  finishJson(js, json);
  return 0;
}

// The floor of a decode shape: a plain grid-stride streaming read (BenchCommon's kvc_l2_read,
// 4 CTAs of 512 threads per SM, one 128-bit load per thread per step; `x4`: kvc_l2_read_x4,
// four loads per step) of exactly the K/V bytes the decode reads, D = 128 bf16, timed like a
// decode (same flush, median). It pays the fixed costs every kernel pays (launch, ramp-up,
// tail) and nothing else, so it shows how close to the copy bandwidth a kernel reading that
// many bytes gets at all. raggedRatio > 0: round(ratio * S) pairs per row. sizesMib non-empty:
// reads of those sizes instead of the shapes (0 = an empty launch), for fitting
// time = fixed cost + bytes / streaming rate (python -m kvc.bench.floor_fit).
int cmdFloor(const std::string &json, const std::vector<int64_t> &batches,
             const std::vector<int64_t> &contexts, int64_t hkv, double raggedRatio, int warmup,
             int reps, bool x4, const std::vector<int64_t> &sizesMib) {
  CK(kvc_cuda_init(0));
  char name[256] = {0};
  int sms = 0, l2 = 0;
  CK(kvc_cuda_device_info(name, sizeof name, &sms, &l2, nullptr, nullptr));
  Timer T(l2);
  double copyTBs = copyBandwidth(T, 2048);
  T.loadRead();
  const char *variant = x4 ? "streaming_read_x4" : "streaming_read";
  printf("device: %s, %d SMs; copy bandwidth %.3f TB/s (read+write); %s, %d CTAs x 512\n", name,
         sms, copyTBs, x4 ? "kvc_l2_read_x4" : "kvc_l2_read", 4 * sms);
  if (sizesMib.empty())
    printf("%-12s %5s %7s %10s %10s %8s %7s\n", "floor", "batch", "context", "time_us",
           "MB_read", "TB/s", "%copy");
  else
    printf("%-12s %5s %7s %10s %10s %8s %7s\n", "floor", "", "MiB", "time_us", "MB_read", "TB/s",
           "%copy");
  std::ostringstream js;
  jsonOpen(js, name, copyTBs, warmup, reps);
  jsonOpenResults(js, std::string("one streaming read of ") +
                          (sizesMib.empty() ? "the decode's K/V bytes" : "size_mib MiB"));
  bool first = true;
  // Times one read of `bytes`, prints its row and returns the JSON fields they share.
  auto timeRead = [&](uint64_t bytes, const char *label, int64_t B, int64_t S) {
    kvc_cuda_ptr buf;
    CK(kvc_cuda_malloc(&buf, std::max<uint64_t>(bytes, 16)));
    CK(kvc_cuda_memset_d8_async(buf, 0x3B, std::max<uint64_t>(bytes, 16), nullptr));
    double ms = T.medianMs(warmup, reps, [&] { T.readPass(buf, bytes, x4); });
    benchFree(buf);
    double tbs = double(bytes) / (ms * 1e-3) / 1e12;
    if (B > 0)
      printf("%-12s %5lld %7lld %10.2f %10.2f %8.3f %6.1f%%\n", label, (long long)B,
             (long long)S, ms * 1e3, bytes / 1e6, tbs, 100.0 * tbs / copyTBs);
    else
      printf("%-12s %5s %7lld %10.2f %10.2f %8.3f %6.1f%%\n", label, "", (long long)S, ms * 1e3,
             bytes / 1e6, tbs, 100.0 * tbs / copyTBs);
    std::ostringstream f;
    f << ", \"time_us\": " << ms * 1e3 << ", \"bytes\": " << double(bytes)
      << ", \"tbps\": " << tbs << ", \"frac_copy\": " << tbs / copyTBs << "}";
    return f.str();
  };
  for (int64_t mib : sizesMib) {
    std::string tail = timeRead(uint64_t(mib) << 20, "read-MiB", 0, mib);
    js << (first ? "" : ",\n") << "    {\"backend\": \"floor\", \"variant\": \"" << variant
       << "\", \"size_mib\": " << mib << tail;
    first = false;
  }
  if (sizesMib.empty())
    for (int64_t B : batches)
      for (int64_t S : contexts) {
        const int64_t len =
            raggedRatio > 0 ? std::max<int64_t>(1, std::llround(raggedRatio * S)) : S;
        const uint64_t bytes = uint64_t(2) * B * hkv * len * 128 * 2;
        std::string tail = timeRead(bytes, raggedRatio > 0 ? "read-ragged" : "read", B, S);
        js << (first ? "" : ",\n") << "    {\"backend\": \"floor\", \"variant\": \"" << variant
           << "\", \"batch\": " << B << ", \"hkv\": " << hkv << ", \"d\": 128, \"context\": " << S
           << ", \"ragged\": " << (raggedRatio > 0 ? "true" : "false")
           << ", \"kept_pairs_per_row\": " << len << tail;
        first = false;
      }
  finishJson(js, json);
  return 0;
}

int cmdExtract(const std::string &in, const std::string &out, const std::string &header) {
  std::string ptx = extractPTX(readFile(in));
  if (!out.empty()) {
    std::ofstream f(out, std::ios::binary);
    f << ptx;
  }
  if (!header.empty()) {
    // The AOT artefact: the PTX, one KVC_GPU_<OP> name per kernel specialisation (the argument
    // of kvc_cuda_decode_kernel_get; a dynamic-batch op may have two, the default one and the
    // small-rows one) and kvc_gpu_load(). With libkvc_runtime (CUDA.h, CUDADecode.h)
    // that is all a program needs; examples/gpu/decode_aot.c shows the calls.
    std::ofstream h(header);
    if (!h)
      die("cannot write " + header);
    // Ops over encoded caches (Huffman or fixed-width) are launched by name through their
    // runtime header: KVC_GPU_<OP>_SPLIT / _MERGE name the kernel pair.
    bool anyEncoded = false, anyFixedWidth = false;
    for (const std::string &k : kernelNames(ptx)) {
      kvc_encoded_kernel_config ec;
      kvc_fw_kernel_config fc;
      anyEncoded |= kvc_cuda_encoded_parse_name(k.c_str(), &ec) == 0;
      anyFixedWidth |= kvc_cuda_fw_parse_name(k.c_str(), &fc) == 0;
    }
    h << "/* Generated by kvc-bench extract from " << in << ".\n"
      << " * kvc_gpu_load(&m) loads the kernels; kvc_cuda_decode_kernel_get(m, KVC_GPU_<OP>, &k),\n"
      << " * kvc_cuda_decode_make_plan and kvc_cuda_decode_launch run one decode-attention op\n"
      << " * (include/kvc/Runtime/CUDADecode.h). Ops over encoded caches: kvc_cuda_module_get_function\n"
      << " * on KVC_GPU_<OP>_SPLIT and _MERGE, then kvc_cuda_encoded_make_plan/_launch\n"
      << " * (CUDAEncoded.h) or kvc_cuda_fw_make_plan/_launch (CUDAFixedWidth.h). */\n#pragma once\n"
      << "#include \"kvc/Runtime/CUDADecode.h\"\n"
      << (anyEncoded ? "#include \"kvc/Runtime/CUDAEncoded.h\"\n" : "")
      << (anyFixedWidth ? "#include \"kvc/Runtime/CUDAFixedWidth.h\"\n" : "") << "\n";
    for (const std::string &k : kernelNames(ptx))
      h << "/* kernel: " << k << " */\n";
    auto macroOf = [](const std::string &op) {
      std::string macro = "KVC_GPU_";
      for (char ch : op)
        macro += char(std::toupper(static_cast<unsigned char>(ch)));
      return macro;
    };
    for (const std::string &k : kernelNames(ptx)) {
      if (!endsWith(k, "_split"))
        continue;
      kvc_encoded_kernel_config ec;
      kvc_fw_kernel_config fc;
      const bool enc = kvc_cuda_encoded_parse_name(k.c_str(), &ec) == 0;
      const bool fw = !enc && kvc_cuda_fw_parse_name(k.c_str(), &fc) == 0;
      if (!enc && !fw)
        continue;
      const std::string base = k.substr(0, k.size() - 6), op = base.substr(0, base.find("_d"));
      const int D = enc ? ec.head_dim : fc.head_dim, g = enc ? ec.group : fc.group,
                Sq = enc ? ec.query_seq : fc.query_seq;
      const int qt = enc ? ec.query_type : fc.query_type;
      h << "/* " << op << ": q [B, " << g << "*Hkv, " << Sq << ", " << D << "] "
        << (qt == 0 ? "bf16" : qt == 1 ? "f16" : "f32") << ", "
        << (enc ? "KVComp-encoded (Huffman) cache, key block " + std::to_string(ec.key_block) +
                      ", value block " + std::to_string(ec.value_block)
                : "fixed-width (entropy = none) cache, key block " +
                      std::to_string(fc.key_block))
        << " */\n#define " << macroOf(op) << "_SPLIT \"" << base << "_split\"\n#define "
        << macroOf(op) << "_MERGE \"" << base << "_merge\"\n";
    }
    for (const std::string &k : kernelNames(ptx)) {
      kvc_decode_kernel_config c;
      if (!endsWith(k, "_split") || kvc_cuda_decode_parse_name(k.c_str(), &c))
        continue;
      std::string base = k.substr(0, k.size() - 6);
      std::string op = base.substr(0, base.find("_d"));
      std::string macro = macroOf(op);
      h << "/* " << op << ": q [B, " << c.group << "*Hkv, " << c.query_seq << ", " << c.head_dim
        << "], k/v [B, Hkv, S, " << c.head_dim << "], " << (c.is_bf16 ? "bf16" : "f16")
        << (c.ragged ? ", lengths [B, Hkv] int64" : "")
        << (c.fused_merge ? ", fused merge" : "") << " */\n#define " << macro << " \"" << base
        << "\"\n";
    }
    h << "\nstatic const char kvc_gpu_ptx[] = {";
    for (size_t i = 0; i < ptx.size(); ++i)
      h << (i % 16 ? "" : "\n  ") << int(static_cast<unsigned char>(ptx[i])) << ",";
    h << "\n  0};\n\n"
      << "/* Initialises CUDA on device 0 and loads the kernels above. */\n"
      << "static inline int kvc_gpu_load(kvc_cuda_module *m) {\n"
      << "  int rc = kvc_cuda_init(0);\n"
      << "  return rc ? rc : kvc_cuda_module_load(kvc_gpu_ptx, m);\n}\n";
  }
  if (out.empty() && header.empty())
    fwrite(ptx.data(), 1, ptx.size(), stdout);
  return 0;
}

int cmdInfo(const std::string &path) {
  Loaded L = load(path);
  printf("device: %s, %d SMs\n", L.device.c_str(), L.sms);
  for (const Variant &V : L.variants)
    printf("%s: D=%d g=%d Sq=%d %s block=%d unroll=%d%s regs=%d smem=%d ctas/SM=%d\n",
           V.name.c_str(),
           V.cfg.head_dim, V.cfg.group, V.cfg.query_seq, V.cfg.is_bf16 ? "bf16" : "f16",
           V.cfg.block_size, V.cfg.unroll, V.cfg.ragged ? " ragged" : "", V.regs, V.smem,
           V.ctasPerSM);
  return 0;
}

void usage() {
  fprintf(usageOut(),
          "usage: kvc-bench extract IN.mlir [-o OUT.ptx] [--header OUT.h]\n"
          "       kvc-bench info IN\n"
          "       kvc-bench check IN [--seed N] [--tol X] [--quick]\n"
          "       kvc-bench decode IN [--json F] [--batches 1,8,32] [--contexts 4096,16384,65536]"
          " [--ragged-ratio 0.3]"
          " [--hkv 8] [--reps 30] [--warmup 5] [--splits N] [--split-only]"
          " [--flush dirty|clean] [--settle-ms 100]\n"
          "       kvc-bench check-npy IN --case DIR [--case DIR ...] [--tol X]\n"
          "       kvc-bench copy [--mib N] [--settle-ms 100]\n"
          "       kvc-bench floor [--batches 1,8,32] [--contexts 4096,16384,65536] [--hkv 8]"
          " [--ragged-ratio R] [--json F] [--flush dirty|clean] [--settle-ms 100] [--read x1|x4]"
          " [--sizes-mib 0,1,2,...]\n"
          "       kvc-bench encoded selftest|info|check|check-npy|decode|append-check|append-bench"
          " ...   (kvc-bench encoded --help)\n"
          "       kvc-bench fixed-width selftest|info|check|check-npy|decode|append-check ...   "
          "(kvc-bench fixed-width --help)\n"
          "       kvc-bench store gen|check|bench ...   (kvc-bench store --help)\n");
  usageExit();
}
} // namespace

int kvcBenchEncoded(int argc, char **argv);    // Encoded.cpp
int kvcBenchFixedWidth(int argc, char **argv); // FixedWidth.cpp
int kvcBenchStore(int argc, char **argv);      // Store.cpp

int main(int argc, char **argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  noteHelp(argc, argv);
  if (argc < 2 || (helpRequested() && std::string(argv[1]) != "encoded" &&
                   std::string(argv[1]) != "fixed-width" && std::string(argv[1]) != "store"))
    usage();
  if (std::string(argv[1]) == "encoded") // KVComp-encoded cache kernels (Encoded.cpp)
    return kvcBenchEncoded(argc, argv);
  if (std::string(argv[1]) == "fixed-width") // fixed-width cache kernels (FixedWidth.cpp)
    return kvcBenchFixedWidth(argc, argv);
  if (std::string(argv[1]) == "store") // KVComp block-encode (store) kernels (Store.cpp)
    return kvcBenchStore(argc, argv);
  std::string cmd = argv[1], in, out, header, json;
  std::vector<int64_t> batches = {1, 8, 32}, contexts = {4096, 16384, 65536};
  int reps = 30, warmup = 5, splits = 0;
  int64_t hkv = 8, mib = 2048;
  double raggedRatio = 0.3;
  bool raggedRatioSet = false;
  unsigned seed = 1234;
  double tol = 1e-2;
  bool quick = false;
  std::vector<std::string> caseDirs;
  bool splitOnly = false;
  std::string readKind = "x1";
  std::vector<int64_t> sizesMib;
  Options opts(usage);
  opts.str("-o", out).str("--header", header).str("--json", json).list("--batches", batches)
      .list("--contexts", contexts).i32("--reps", reps).i32("--warmup", warmup)
      .i32("--splits", splits).flush().settle().i64("--hkv", hkv).u32("--seed", seed).f64("--tol", tol)
      .flag("--quick", quick).flag("--split-only", splitOnly).strs("--case", caseDirs)
      .i64("--mib", mib).str("--read", readKind).list("--sizes-mib", sizesMib).on("--ragged-ratio", true, [&](const std::string &v) {
        raggedRatio = std::stod(v);
        raggedRatioSet = true;
      });
  std::vector<std::string> positional = opts.parse(argc, argv, 2);
  if (positional.size() > 1)
    usage();
  if (!positional.empty())
    in = positional[0];
  if (raggedRatioSet && !(raggedRatio > 0 && raggedRatio <= 1)) {
    fprintf(stderr, "kvc-bench: --ragged-ratio must be in (0, 1], got %g\n", raggedRatio);
    return 2;
  }
  if (cmd == "extract" && !in.empty())
    return cmdExtract(in, out, header);
  if (cmd == "info" && !in.empty())
    return cmdInfo(in);
  if (cmd == "check" && !in.empty())
    return cmdCheck(in, seed, tol, quick);
  if (cmd == "check-npy" && !in.empty() && !caseDirs.empty())
    return cmdCheckNpy(in, caseDirs, tol);
  if (cmd == "decode" && !in.empty())
    return cmdDecode(in, json, batches, contexts, warmup, reps, splits, hkv, raggedRatio,
                     splitOnly);
  if (cmd == "floor") {
    if (readKind != "x1" && readKind != "x4") {
      fprintf(stderr, "kvc-bench: --read must be x1 or x4, got '%s'\n", readKind.c_str());
      return 2;
    }
    for (int64_t m : sizesMib)
      if (m < 0 || m > (int64_t(1) << 20)) {
        fprintf(stderr, "kvc-bench: --sizes-mib needs sizes in [0, 1048576] MiB, got %lld\n",
                (long long)m);
        return 2;
      }
    return cmdFloor(json, batches, contexts, hkv, raggedRatioSet ? raggedRatio : 0.0, warmup,
                    reps, readKind == "x4", sizesMib);
  }
  if (cmd == "copy") {
    CK(kvc_cuda_init(0));
    int l2 = 0;
    CK(kvc_cuda_device_info(nullptr, 0, nullptr, &l2, nullptr, nullptr));
    Timer T(l2);
    printf("copy bandwidth: %.3f TB/s (read+write)\n", copyBandwidth(T, size_t(mib)));
    return 0;
  }
  usage();
}
