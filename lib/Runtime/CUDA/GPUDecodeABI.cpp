//===- GPUDecodeABI.cpp - the split count of compiled decode ops, from the runtime's plan ----===//
//
// convert-kvc-to-gpu's host code used to pick a dense/ragged decode op's split count with a
// fixed rule (one wave of 4 CTAs per SM). The split kernel's real occupancy differs per
// specialisation (3 CTAs/SM for the default D=128 kernel on the H100), and a count that spills
// into a second, mostly empty wave cost up to ~25% at batch 8. So the host code asks here: the
// kernel is found by name in the program's own GPU modules (MgpuModules.h), its occupancy is
// measured once, and kvc_cuda_decode_make_plan (the AOT runtime's plan, CUDADecode.h) picks the
// split count, so compiled programs and the runtime path plan alike.
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/CUDA.h"
#include "kvc/Runtime/CUDADecode.h"
#include "kvc/Runtime/CompilerABI.h"
#include "MgpuModules.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

namespace {
[[noreturn]] void die(const std::string &msg) {
  std::fprintf(stderr, "kvc runtime: GPU decode plan: %s\n", msg.c_str());
  std::exit(2);
}

struct Kernel {
  kvc_decode_kernel_config cfg;
  int residentCtas;
};
std::mutex cacheMutex;
std::map<std::string, Kernel> cache;

Kernel lookup(const std::string &name) {
  {
    std::lock_guard<std::mutex> lock(cacheMutex);
    auto it = cache.find(name);
    if (it != cache.end())
      return it->second;
  }
  kvc_decode_kernel k{};
  bool found = kvc::mgpu::forEachModule([&](kvc_cuda_module m) {
    return kvc_cuda_decode_kernel_get(m, name.c_str(), &k) == 0;
  });
  if (!found)
    die("no decode kernel '" + name + "_split' in the program's GPU modules (" +
        kvc_cuda_last_error() + ")");
  Kernel r{k.cfg, k.resident_ctas};
  std::lock_guard<std::mutex> lock(cacheMutex);
  cache.emplace(name, r);
  return r;
}
} // namespace

extern "C" int64_t _mlir_ciface_kvc_rt_gpu_decode_splits(kvc_memref_1d *name, int64_t batch,
                                                         int64_t hkv, int64_t skv) {
  const char *p = static_cast<const char *>(name->aligned) + name->offset;
  const std::string n(p, strnlen(p, size_t(name->sizes[0])));
  if (batch < 1 || hkv < 1 || skv < 0)
    die("bad shape for '" + n + "': batch " + std::to_string(batch) + ", hkv " +
        std::to_string(hkv) + ", skv " + std::to_string(skv));
  Kernel k = lookup(n);
  kvc_decode_shape shape{batch, hkv, skv, /*num_splits=*/0, /*max_len=*/0};
  kvc_decode_plan plan{};
  if (kvc_cuda_decode_make_plan(&k.cfg, &shape, k.residentCtas, &plan))
    die("planning '" + n + "': " + kvc_cuda_last_error());
  return plan.num_splits;
}
