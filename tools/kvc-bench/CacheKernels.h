//===- CacheKernels.h - what kvc-bench encoded and fixed-width share --*- C++ -*-===//
//
// The two compressed-cache subcommands (Encoded.cpp: the Huffman-coded form, FixedWidth.cpp:
// the fixed-width form) load a module's kernels of their form, run split + merge once for a
// correctness check, time it for `decode`, and take the same command line. The form-specific
// calls (upload, plan, launch, free) stay with each subcommand; what is here is the rest.
// Header-only, like BenchCommon.h.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_TOOLS_KVC_BENCH_CACHEKERNELS_H
#define KVC_TOOLS_KVC_BENCH_CACHEKERNELS_H

#include "BenchCommon.h"
#include "kvc/Runtime/CUDA.h"

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace kvcbench {

// ----------------------------------------------------------------------------- loading
/// A module's decode kernels of one cache form (EncodedVariant, FwVariant) and the device they
/// were loaded on.
template <class V> struct LoadedKernels {
  std::vector<V> variants;
  int sms = 0, l2 = 0;
  std::string device;
};

/// Loads the PTX of `path` (a .ptx file or a kvc-gpu-pipeline .mlir) on device 0 and finds its
/// kernels with `variantsFn` (encodedVariants, fwVariants); dies with "no <what> in <path>"
/// when there are none.
template <class V>
LoadedKernels<V> loadKernels(const std::string &path,
                             std::vector<V> (*variantsFn)(kvc_cuda_module, const std::string &),
                             const char *what) {
  LoadedKernels<V> L;
  std::string ptx = extractPTX(readFile(path));
  const DeviceInfo dev = initDevice();
  L.device = dev.name;
  L.sms = dev.sms;
  L.l2 = dev.l2;
  kvc_cuda_module mod;
  CK(kvc_cuda_module_load(ptx.c_str(), &mod));
  L.variants = variantsFn(mod, ptx);
  if (L.variants.empty())
    die(std::string("no ") + what + " in " + path);
  return L;
}

// ----------------------------------------------------------------------------- running
/// One split + merge run of a correctness check, the cache uploaded and `plan` made: the
/// queries (the first qbytes bytes of qraw) go to the device, the output (qbytes) and the
/// workspace (plan.workspace_bytes) are poisoned with NaN (0xFF bytes), launch(dq, dws, dout)
/// issues the kernels, and the output's bytes come back. The buffers are freed here.
template <class Q, class Plan, class Launch>
std::vector<uint8_t> runPoisoned(const std::vector<Q> &qraw, size_t qbytes, const Plan &plan,
                                 Launch launch) {
  kvc_cuda_ptr dq, dws, dout;
  CK(kvc_cuda_malloc(&dq, qbytes));
  CK(kvc_cuda_malloc(&dws, plan.workspace_bytes));
  CK(kvc_cuda_malloc(&dout, qbytes));
  CK(kvc_cuda_memcpy_htod(dq, qraw.data(), qbytes));
  CK(kvc_cuda_memset_d8_async(dout, 0xFF, qbytes, nullptr)); // NaN poison
  CK(kvc_cuda_memset_d8_async(dws, 0xFF, plan.workspace_bytes, nullptr));
  launch(dq, dws, dout);
  CK(kvc_cuda_synchronize());
  std::vector<uint8_t> out(qbytes);
  CK(kvc_cuda_memcpy_dtoh(out.data(), dout, qbytes));
  for (kvc_cuda_ptr p : {dq, dws, dout})
    CK(kvc_cuda_free(p));
  return out;
}

/// One timed decode (`decode`), the cache uploaded and `plan` made: nq queries of query type
/// qt (0 bf16, 1 f16, 2 f32; queryBytes each) drawn from U(-2, 2) with seed 7, the output and
/// the workspace (plan.workspace_bytes) allocated, and launch(dq, dws, dout) timed by
/// T.medianMs(warmup, reps). The buffers are freed (benchFree); returns the median in ms.
template <class Plan, class Launch>
double timeSplitMerge(Timer &T, int warmup, int reps, int64_t nq, int qt, size_t queryBytes,
                      const Plan &plan, Launch launch) {
  const size_t qb = size_t(nq) * queryBytes;
  kvc_cuda_ptr dq, dws, dout;
  CK(kvc_cuda_malloc(&dq, qb));
  CK(kvc_cuda_malloc(&dws, plan.workspace_bytes));
  CK(kvc_cuda_malloc(&dout, qb));
  std::vector<uint16_t> q(size_t(nq) * queryBytes / 2);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> U(-2.f, 2.f);
  if (qt == 2) {
    std::vector<float> qf(static_cast<size_t>(nq));
    for (auto &x : qf)
      x = U(rng);
    std::memcpy(q.data(), qf.data(), qb);
  } else {
    for (auto &x : q)
      x = toHalfBits(U(rng), qt == 0);
  }
  CK(kvc_cuda_memcpy_htod(dq, q.data(), qb));
  const double ms = T.medianMs(warmup, reps, [&] { launch(dq, dws, dout); });
  for (kvc_cuda_ptr p : {dq, dws, dout})
    benchFree(p);
  return ms;
}

/// What a decode that read `bytes` device bytes for B x Hkv rows of S tokens (head dim D) in
/// `ms` comes to: the bytes the same cache takes in bf16 (K and V), the bits per element and
/// the bandwidth (TB/s).
struct DecodeRate {
  double bytes, bf16Bytes, bits, tbs;
  DecodeRate(double ms, double bytes, int64_t B, int64_t hkv, int64_t S, int64_t D)
      : bytes(bytes), bf16Bytes(2.0 * B * hkv * S * D * 2),
        bits(8.0 * bytes / (2.0 * B * hkv * S * D)), tbs(bytes / (ms * 1e-3) / 1e12) {}
};

// ----------------------------------------------------------------------------- command line
/// `kvc-bench <form> selftest`: whether the command is the selftest (it takes no IN). Before
/// that, --help prints the usage; after, any other command without IN does too.
inline bool isSelftest(int argc, char **argv, void (*usage)()) {
  if (helpRequested())
    usage();
  if (argc == 3 && std::string(argv[2]) == "selftest")
    return true;
  if (argc < 4)
    usage();
  return false;
}

/// `kvc-bench <form> CMD IN [options]` (argc >= 4): the command, IN and the options that the
/// forms' check, check-npy and decode share, with their defaults.
struct CacheCommandLine {
  std::string cmd, in, json;
  std::vector<int64_t> batches = {1, 8, 32}, contexts = {4096, 16384, 65536};
  int reps = 30, warmup = 5, splits = 0;
  int64_t hkv = 8;
  unsigned seed = 1234;
  bool quick = false;
  std::vector<std::string> caseDirs;
  explicit CacheCommandLine(char **argv) : cmd(argv[2]), in(argv[3]) {}
  /// Binds the shared options (--flush and --settle-ms included) in `opts`.
  Options &bind(Options &opts) {
    return opts.str("--json", json).list("--batches", batches).list("--contexts", contexts)
        .i32("--reps", reps).i32("--warmup", warmup).i32("--splits", splits).i64("--hkv", hkv)
        .u32("--seed", seed).flag("--quick", quick).strs("--case", caseDirs).flush().settle();
  }
};

} // namespace kvcbench

#endif
