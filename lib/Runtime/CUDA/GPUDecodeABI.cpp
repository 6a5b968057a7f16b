//===- GPUDecodeABI.cpp - the split count of compiled decode ops, from the runtime's plan ----===//
//
// convert-kvc-to-gpu's host code used to pick a dense/ragged decode op's split count with a
// fixed rule (one wave of 4 CTAs per SM). The split kernel's real occupancy differs per
// specialisation (3 CTAs/SM for the default D=128 kernel on the H100), and a count that spills
// into a second, mostly empty wave cost up to ~25% at batch 8. So the host code asks here: the
// kernel is found by name in the program's own GPU modules (HostCodeSupport.h), its occupancy is
// measured once, and kvc_cuda_decode_make_plan (the AOT runtime's plan, CUDADecode.h) picks the
// split count, so compiled programs and the runtime path plan alike.
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/CUDA.h"
#include "kvc/Runtime/CUDADecode.h"
#include "kvc/Runtime/CompilerABI.h"
#include "HostCodeSupport.h"

#include <map>
#include <mutex>
#include <string>

namespace {
// Status 1 for a bad request, 2 for a kernel that is not there or a CUDA failure.
[[noreturn]] void die(const std::string &msg, int status) {
  kvc::hostcode::fatal("GPU decode plan", msg, status);
}

struct Kernel {
  kvc_decode_kernel_config cfg;
  int residentCtas;
};
std::mutex cacheMutex;
// Never destroyed (exits skip static destructors). Keyed by name: two programs in one process whose modules hold
// kernels of the same name (same specialisation) share the first one's occupancy.
std::map<std::string, Kernel> &cache() {
  static auto *c = new std::map<std::string, Kernel>;
  return *c;
}

Kernel lookup(const std::string &name) {
  {
    std::lock_guard<std::mutex> lock(cacheMutex);
    auto it = cache().find(name);
    if (it != cache().end())
      return it->second;
  }
  const std::string split = name + "_split";
  kvc_decode_kernel_config cfg{};
  if (kvc_cuda_decode_parse_name(split.c_str(), &cfg))
    die("'" + split + "' is not a dense/ragged decode kernel name", 1);
  kvc_cuda_module found = nullptr;
  kvc_cuda_function splitFn = nullptr;
  if (!kvc::hostcode::findKernel(split, &found, &splitFn))
    die(kvc::hostcode::missingKernelMessage(split), 2);
  kvc_decode_kernel k{};
  if (kvc_cuda_decode_kernel_get(found, name.c_str(), &k))
    die("occupancy of '" + split + "': " + kvc_cuda_last_error(), 2);
  Kernel r{k.cfg, k.resident_ctas};
  std::lock_guard<std::mutex> lock(cacheMutex);
  cache().emplace(name, r);
  return r;
}
} // namespace

extern "C" int64_t _mlir_ciface_kvc_rt_gpu_decode_splits(kvc_memref_1d *name, int64_t batch,
                                                         int64_t hkv, int64_t skv) {
  const std::string n = kvc::hostcode::kernelName(*name);
  if (batch < 1 || hkv < 1 || skv < 0)
    die("bad shape for '" + n + "': batch " + std::to_string(batch) + ", hkv " +
        std::to_string(hkv) + ", skv " + std::to_string(skv), 1);
  Kernel k = lookup(n);
  // Ragged kernels are planned by the capacity (max_len 0): the lengths are on the device, and
  // reading them would cost a synchronous copy per call. kvc-bench passes the longest row.
  kvc_decode_shape shape{batch, hkv, skv, /*num_splits=*/0, /*max_len=*/0};
  kvc_decode_plan plan{};
  if (kvc_cuda_decode_make_plan(&k.cfg, &shape, k.residentCtas, &plan))
    die("planning '" + n + "': " + kvc_cuda_last_error(), 2);
  return plan.num_splits;
}
