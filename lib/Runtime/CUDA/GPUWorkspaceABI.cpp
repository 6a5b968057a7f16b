//===- GPUWorkspaceABI.cpp - cached device workspaces for code compiled to the GPU ---------===//
//
// convert-kvc-to-gpu's host code needs scratch device memory for every decode op: the split
// kernels' partial outputs and (max, sum) pairs, and the fused merge's arrival counters. It
// used to gpu.alloc and gpu.dealloc them around every op, i.e. cuMemAlloc + cuMemFree (which
// synchronises the device and keeps HBM busy after it returns) several times per decode step.
// The host code now asks for them here: each thread keeps one buffer per (type, slot) that only
// ever grows, so after the first step a decode op costs no allocation at all.
//
// Sharing a slot between ops, and between calls, is safe because the host code finishes each
// op's launches before the next op starts (blocking launches). Threads have their own buffers,
// so concurrent calls from different threads do not share. An i32 workspace is zeroed when it
// is (re)allocated and its users leave it zero (the fused merge's last CTA resets its counter).
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/CUDA.h"
#include "kvc/Runtime/CompilerABI.h"
#include "HostCodeSupport.h"

#include <string>

namespace {

constexpr int64_t kSlots = 8;

// Status 1 for a bad request, 2 for a CUDA failure.
[[noreturn]] void die(const std::string &msg, int status = 1) {
  kvc::hostcode::fatal("GPU workspace", msg, status);
}

struct Buffer {
  kvc_cuda_ptr ptr = 0;
  size_t bytes = 0;
};

struct ThreadWorkspaces {
  Buffer f32[kSlots], i32[kSlots];
  void release() {
    for (Buffer *set : {f32, i32})
      for (int64_t s = 0; s < kSlots; ++s)
        if (set[s].ptr) {
          kvc_cuda_free(set[s].ptr); // errors ignored: also runs at thread and process exit
          set[s] = Buffer{};
        }
  }
  ~ThreadWorkspaces() { release(); }
};
thread_local ThreadWorkspaces tls;

void get(kvc_memref_1d *result, Buffer *set, const char *type, int64_t slot, int64_t elems,
         bool zero) {
  if (slot < 0 || slot >= kSlots)
    die(std::string(type) + " slot " + std::to_string(slot) + " out of range [0, " +
        std::to_string(kSlots) + ")");
  if (elems < 0)
    die(std::string(type) + " slot " + std::to_string(slot) + ": negative size " +
        std::to_string(elems));
  Buffer &buf = set[slot];
  const size_t bytes = size_t(elems > 0 ? elems : 1) * 4;
  if (bytes > buf.bytes) {
    if (kvc_cuda_init(0))
      die(kvc_cuda_last_error(), 2);
    if (buf.ptr && kvc_cuda_free(buf.ptr))
      die(std::string("freeing the old ") + type + " workspace: " + kvc_cuda_last_error(), 2);
    buf = Buffer{};
    kvc_cuda_ptr p = 0;
    if (kvc_cuda_malloc(&p, bytes))
      die("allocating " + std::to_string(bytes) + " bytes (" + type + " slot " +
          std::to_string(slot) + "): " + kvc_cuda_last_error(), 2);
    if (zero && (kvc_cuda_memset_d32_async(p, 0, bytes / 4, nullptr) || kvc_cuda_synchronize()))
      die(std::string("zeroing the ") + type + " workspace: " + kvc_cuda_last_error(), 2);
    buf = Buffer{p, bytes};
  }
  result->allocated = result->aligned = reinterpret_cast<void *>(uintptr_t(buf.ptr));
  result->offset = 0;
  result->sizes[0] = elems;
  result->strides[0] = 1;
}

} // namespace

extern "C" {
void _mlir_ciface_kvc_rt_gpu_workspace_f32(kvc_memref_1d *result, int64_t slot, int64_t elems) {
  get(result, tls.f32, "f32", slot, elems, /*zero=*/false);
}
void _mlir_ciface_kvc_rt_gpu_workspace_i32(kvc_memref_1d *result, int64_t slot, int64_t elems) {
  get(result, tls.i32, "i32", slot, elems, /*zero=*/true);
}
void kvc_rt_gpu_workspace_release(void) { tls.release(); }
} // extern "C"
