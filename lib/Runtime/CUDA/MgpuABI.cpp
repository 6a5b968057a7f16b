//===- MgpuABI.cpp - the mgpu* entry points of MLIR's GPU host lowering, on kvc's runtime ---===//
//
// `kvc-gpu-pipeline{host=llvm}` lowers the host side of convert-kvc-to-gpu with upstream
// gpu-to-llvm, whose code (and the gpu.binary's load/unload constructors) calls the mgpu* C ABI
// that MLIR's own CUDA runner library provides. kvc implements the subset its host code uses
// here, on libkvc_runtime's driver-API loader (CUDA.h), so compiled programs need no MLIR
// library at run time. The ABI has no error returns: a failing call prints the CUDA call and
// the driver's message and exits with status 2 (continuing would run kernels on bad memory).
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/CUDA.h"
#include "HostCodeSupport.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

namespace {
// _Exit, not exit: the program may be mid-way through a launch from static-lifetime code.
[[noreturn]] void die(const char *what) {
  fprintf(stderr, "kvc runtime (mgpu ABI): %s: %s\n", what, kvc_cuda_last_error());
  fflush(stderr);
  _Exit(2);
}
#define MGPU_CHECK(call)                                                                       \
  do {                                                                                         \
    if ((call) != 0)                                                                           \
      die(#call);                                                                              \
  } while (0)
void init() { MGPU_CHECK(kvc_cuda_init(0)); }

// gpu-to-llvm creates a stream for every blocking launch and every async alloc/memset/dealloc,
// synchronises it and destroys it. Creating a driver stream costs microseconds per call, so
// destroyed streams go to a per-thread pool and are handed out again (a stream reused before
// its work finished would only order that work before the new work).
struct StreamPool {
  std::vector<kvc_cuda_stream> idle;
  ~StreamPool() {
    for (kvc_cuda_stream s : idle)
      kvc_cuda_stream_destroy(s); // errors ignored: runs at thread and process exit
  }
};
thread_local StreamPool streamPool;
constexpr size_t kMaxIdleStreams = 8;

// The gpu.binary's load/unload run as global constructor/destructor, i.e. before and after the
// runtime's own static objects live. So loading does no CUDA work there: it records the image
// (NUL-terminated PTX for format=isa, or a cubin/fatbin), and the module is loaded on the first
// function lookup, which happens at the first launch. Unloading at exit is left to the driver's
// process teardown. The registered modules are searched by kvc::hostcode::findKernel.
struct LazyModule {
  const void *image;
  kvc_cuda_module module;
};
std::mutex modulesMutex; // constant-initialised, so usable from the constructors
std::vector<LazyModule *> &modules() {
  static std::vector<LazyModule *> *m = new std::vector<LazyModule *>; // never destroyed
  return *m;
}
std::mutex loadMutex;
void ensureLoaded(LazyModule *lazy) {
  std::lock_guard<std::mutex> lock(loadMutex);
  if (!lazy->module) {
    init();
    MGPU_CHECK(kvc_cuda_module_load(lazy->image, &lazy->module));
  }
}
} // namespace

bool kvc::hostcode::findKernel(const std::string &name, kvc_cuda_module *module,
                               kvc_cuda_function *function) {
  std::vector<LazyModule *> snapshot;
  {
    std::lock_guard<std::mutex> lock(modulesMutex);
    snapshot = modules();
  }
  for (LazyModule *m : snapshot) {
    ensureLoaded(m);
    if (kvc_cuda_module_get_function(m->module, name.c_str(), function) == 0) {
      *module = m->module;
      return true;
    }
  }
  return false;
}
extern "C" {

void *mgpuModuleLoadJIT(void *data, int /*optLevel*/) {
  auto *m = new LazyModule{data, nullptr};
  std::lock_guard<std::mutex> lock(modulesMutex);
  modules().push_back(m);
  return m;
}
void *mgpuModuleLoad(void *data, size_t /*size*/) { return mgpuModuleLoadJIT(data, 3); }
void mgpuModuleUnload(void *module) {
  {
    std::lock_guard<std::mutex> lock(modulesMutex);
    auto &ms = modules();
    for (size_t i = 0; i < ms.size(); ++i)
      if (ms[i] == module) {
        ms.erase(ms.begin() + i);
        break;
      }
  }
  delete static_cast<LazyModule *>(module);
}
void *mgpuModuleGetFunction(void *module, const char *name) {
  auto *lazy = static_cast<LazyModule *>(module);
  ensureLoaded(lazy);
  kvc_cuda_function f = nullptr;
  MGPU_CHECK(kvc_cuda_module_get_function(lazy->module, name, &f));
  return f;
}
void mgpuLaunchKernel(void *function, intptr_t gx, intptr_t gy, intptr_t gz, intptr_t bx,
                      intptr_t by, intptr_t bz, int32_t smem, void *stream, void **params,
                      void ** /*extra*/, size_t /*paramsCount*/) {
  MGPU_CHECK(kvc_cuda_launch(static_cast<kvc_cuda_function>(function), unsigned(gx), unsigned(gy),
                             unsigned(gz), unsigned(bx), unsigned(by), unsigned(bz),
                             unsigned(smem), static_cast<kvc_cuda_stream>(stream), params));
}
void *mgpuStreamCreate() {
  if (!streamPool.idle.empty()) {
    kvc_cuda_stream s = streamPool.idle.back();
    streamPool.idle.pop_back();
    return s;
  }
  init();
  kvc_cuda_stream s = nullptr;
  MGPU_CHECK(kvc_cuda_stream_create(&s));
  return s;
}
void mgpuStreamDestroy(void *stream) {
  if (streamPool.idle.size() < kMaxIdleStreams) {
    streamPool.idle.push_back(static_cast<kvc_cuda_stream>(stream));
    return;
  }
  MGPU_CHECK(kvc_cuda_stream_destroy(static_cast<kvc_cuda_stream>(stream)));
}
void mgpuStreamSynchronize(void *stream) {
  MGPU_CHECK(kvc_cuda_stream_synchronize(static_cast<kvc_cuda_stream>(stream)));
}
// gpu.alloc: device memory, or managed memory (host_shared) that the host may read and write.
void *mgpuMemAlloc(uint64_t bytes, void * /*stream*/, bool isHostShared) {
  init();
  kvc_cuda_ptr p = 0;
  if (isHostShared)
    MGPU_CHECK(kvc_cuda_malloc_managed(&p, bytes));
  else
    MGPU_CHECK(kvc_cuda_malloc(&p, bytes));
  return reinterpret_cast<void *>(p);
}
void mgpuMemFree(void *ptr, void * /*stream*/) {
  MGPU_CHECK(kvc_cuda_free(reinterpret_cast<kvc_cuda_ptr>(ptr)));
}
// gpu.memset of a 32-bit element memref: `count` elements (not bytes), queued on `stream`.
void mgpuMemset32(void *dst, unsigned value, size_t count, void *stream) {
  MGPU_CHECK(kvc_cuda_memset_d32_async(reinterpret_cast<kvc_cuda_ptr>(dst), value, count,
                                       static_cast<kvc_cuda_stream>(stream)));
}

} // extern "C"
