//===- CUDARuntime.cpp - kvc's CUDA driver-API runtime ---------------------===//
//
// libcuda is opened with dlopen and every entry point is resolved by the exact (versioned,
// e.g. cuMemAlloc_v2) symbol name that cuda.h maps it to, so nothing links against libcuda.
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/CUDA.h"

#include <cuda.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

namespace {
thread_local std::string lastError;

#define KVC_CUDA_FNS(X)                                                                          \
  X(cuInit)                                                                                      \
  X(cuDeviceGet)                                                                                 \
  X(cuDeviceGetAttribute)                                                                        \
  X(cuDeviceGetName)                                                                             \
  X(cuDevicePrimaryCtxRetain)                                                                    \
  X(cuCtxSetCurrent)                                                                             \
  X(cuCtxSynchronize)                                                                            \
  X(cuGetErrorName)                                                                              \
  X(cuGetErrorString)                                                                            \
  X(cuModuleLoadDataEx)                                                                          \
  X(cuModuleUnload)                                                                              \
  X(cuModuleGetFunction)                                                                         \
  X(cuFuncGetAttribute)                                                                          \
  X(cuOccupancyMaxActiveBlocksPerMultiprocessor)                                                 \
  X(cuMemAlloc)                                                                                  \
  X(cuMemAllocManaged)                                                                           \
  X(cuMemFree)                                                                                   \
  X(cuMemcpyHtoD)                                                                                \
  X(cuMemcpyDtoH)                                                                                \
  X(cuMemcpyDtoDAsync)                                                                           \
  X(cuMemcpy2DAsync)                                                                             \
  X(cuMemsetD8Async)                                                                             \
  X(cuMemsetD32Async)                                                                            \
  X(cuLaunchKernel)                                                                              \
  X(cuStreamCreate)                                                                              \
  X(cuStreamDestroy)                                                                             \
  X(cuStreamSynchronize)                                                                         \
  X(cuEventCreate)                                                                               \
  X(cuEventDestroy)                                                                              \
  X(cuEventRecord)                                                                               \
  X(cuEventElapsedTime)

struct Driver {
#define X(name) decltype(&::name) name = nullptr;
  KVC_CUDA_FNS(X)
#undef X
  bool loaded = false;
  std::string loadError;
  CUcontext ctx = nullptr;
  CUdevice dev = 0;
};

Driver drv;
std::once_flag loadOnce;

#define KVC_STR2(x) #x
#define KVC_STR(x) KVC_STR2(x)

void loadDriver() {
  void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    drv.loadError = std::string("dlopen(libcuda.so.1): ") + (e ? e : "not found") +
                    " (no NVIDIA driver on this machine?)";
    return;
  }
  // Resolve the exact symbols a program linked against these headers would use: the macros
  // of cuda.h map e.g. cuMemAlloc to cuMemAlloc_v2, and KVC_STR expands them first. (Asking
  // cuGetProcAddress for the base name at CUDA_VERSION is wrong for entry points whose newer
  // version changed signature without a macro, e.g. CUDA 13's cuCtxSynchronize_v2(ctx).)
  std::string missing;
#define X(name)                                                                                 \
  {                                                                                             \
    void *p = dlsym(h, KVC_STR(name));                                                          \
    if (!p)                                                                                     \
      missing += std::string(KVC_STR(name)) + " ";                                              \
    drv.name = reinterpret_cast<decltype(drv.name)>(p);                                         \
  }
  KVC_CUDA_FNS(X)
#undef X
  if (!missing.empty()) {
    drv.loadError = "libcuda.so.1 lacks: " + missing;
    return;
  }
  drv.loaded = true;
}

int fail(const char *call, CUresult r, const std::string &extra = "") {
  const char *name = nullptr, *str = nullptr;
  if (drv.cuGetErrorName)
    drv.cuGetErrorName(r, &name);
  if (drv.cuGetErrorString)
    drv.cuGetErrorString(r, &str);
  char buf[64];
  if (!name) {
    snprintf(buf, sizeof buf, "CUresult %d", int(r));
    name = buf;
  }
  lastError = std::string(call) + ": " + name + " (" + (str ? str : "unknown error") + ")";
  if (!extra.empty())
    lastError += "\n" + extra;
  return int(r) ? int(r) : -1;
}

int failRuntime(const std::string &msg) {
  lastError = msg;
  return -1;
}

bool ready() {
  if (!drv.loaded || !drv.ctx) {
    lastError = drv.loaded ? "kvc_cuda_init was not called" : "kvc_cuda_init was not called or failed: " + drv.loadError;
    return false;
  }
  return true;
}

#define CHECK(call, ...)                                                                        \
  do {                                                                                          \
    if (!ready())                                                                               \
      return -1;                                                                                \
    CUresult r_ = drv.call(__VA_ARGS__);                                                        \
    if (r_ != CUDA_SUCCESS)                                                                     \
      return fail(#call, r_);                                                                   \
  } while (0)
} // namespace

extern "C" {

const char *kvc_cuda_last_error(void) { return lastError.c_str(); }
void kvc_cuda_set_last_error(const char *msg) { lastError = msg ? msg : ""; }

int kvc_cuda_init(int ordinal) {
  std::call_once(loadOnce, loadDriver);
  if (!drv.loaded)
    return failRuntime(drv.loadError);
  CUresult r = drv.cuInit(0);
  if (r != CUDA_SUCCESS)
    return fail("cuInit", r);
  if ((r = drv.cuDeviceGet(&drv.dev, ordinal)) != CUDA_SUCCESS)
    return fail("cuDeviceGet", r);
  if (!drv.ctx && (r = drv.cuDevicePrimaryCtxRetain(&drv.ctx, drv.dev)) != CUDA_SUCCESS)
    return fail("cuDevicePrimaryCtxRetain", r);
  if ((r = drv.cuCtxSetCurrent(drv.ctx)) != CUDA_SUCCESS)
    return fail("cuCtxSetCurrent", r);
  return 0;
}

int kvc_cuda_device_info(char *name, size_t nameLen, int *smCount, int *l2, int *ccMajor,
                         int *ccMinor) {
  if (!ready())
    return -1;
  if (name && nameLen)
    CHECK(cuDeviceGetName, name, int(nameLen), drv.dev);
  if (smCount)
    CHECK(cuDeviceGetAttribute, smCount, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, drv.dev);
  if (l2)
    CHECK(cuDeviceGetAttribute, l2, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, drv.dev);
  if (ccMajor)
    CHECK(cuDeviceGetAttribute, ccMajor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, drv.dev);
  if (ccMinor)
    CHECK(cuDeviceGetAttribute, ccMinor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, drv.dev);
  return 0;
}

int kvc_cuda_module_load(const void *image, kvc_cuda_module *out) {
  if (!ready())
    return -1;
  static char infoLog[8192], errLog[8192];
  infoLog[0] = errLog[0] = 0;
  CUjit_option opts[] = {CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES,
                         CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void *vals[] = {infoLog, reinterpret_cast<void *>(uintptr_t(sizeof infoLog)), errLog,
                  reinterpret_cast<void *>(uintptr_t(sizeof errLog))};
  CUmodule m = nullptr;
  CUresult r = drv.cuModuleLoadDataEx(&m, image, 4, opts, vals);
  if (r != CUDA_SUCCESS)
    return fail("cuModuleLoadData", r, errLog[0] ? std::string("JIT log: ") + errLog : "");
  *out = reinterpret_cast<kvc_cuda_module>(m);
  return 0;
}

int kvc_cuda_module_unload(kvc_cuda_module m) {
  CHECK(cuModuleUnload, reinterpret_cast<CUmodule>(m));
  return 0;
}

int kvc_cuda_module_get_function(kvc_cuda_module m, const char *name, kvc_cuda_function *out) {
  if (!ready())
    return -1;
  CUfunction f = nullptr;
  CUresult r = drv.cuModuleGetFunction(&f, reinterpret_cast<CUmodule>(m), name);
  if (r != CUDA_SUCCESS)
    return fail("cuModuleGetFunction", r, std::string("function: ") + name);
  *out = reinterpret_cast<kvc_cuda_function>(f);
  return 0;
}

int kvc_cuda_function_info(kvc_cuda_function f, int *regs, int *smem) {
  if (regs)
    CHECK(cuFuncGetAttribute, regs, CU_FUNC_ATTRIBUTE_NUM_REGS, reinterpret_cast<CUfunction>(f));
  if (smem)
    CHECK(cuFuncGetAttribute, smem, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES,
          reinterpret_cast<CUfunction>(f));
  return 0;
}

int kvc_cuda_function_max_threads(kvc_cuda_function f, int *threads) {
  CHECK(cuFuncGetAttribute, threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
        reinterpret_cast<CUfunction>(f));
  return 0;
}

int kvc_cuda_occupancy(kvc_cuda_function f, int blockSize, size_t smem, int *ctas) {
  CHECK(cuOccupancyMaxActiveBlocksPerMultiprocessor, ctas, reinterpret_cast<CUfunction>(f),
        blockSize, smem);
  return 0;
}

int kvc_cuda_malloc(kvc_cuda_ptr *out, size_t bytes) {
  CUdeviceptr p = 0;
  CHECK(cuMemAlloc, &p, bytes);
  *out = p;
  return 0;
}
int kvc_cuda_malloc_managed(kvc_cuda_ptr *out, size_t bytes) {
  CUdeviceptr p = 0;
  CHECK(cuMemAllocManaged, &p, bytes, CU_MEM_ATTACH_GLOBAL);
  *out = p;
  return 0;
}
int kvc_cuda_free(kvc_cuda_ptr p) {
  CHECK(cuMemFree, CUdeviceptr(p));
  return 0;
}
int kvc_cuda_memcpy_htod(kvc_cuda_ptr dst, const void *src, size_t bytes) {
  CHECK(cuMemcpyHtoD, CUdeviceptr(dst), src, bytes);
  return 0;
}
int kvc_cuda_memcpy_dtoh(void *dst, kvc_cuda_ptr src, size_t bytes) {
  CHECK(cuMemcpyDtoH, dst, CUdeviceptr(src), bytes);
  return 0;
}
int kvc_cuda_memcpy_dtod_async(kvc_cuda_ptr dst, kvc_cuda_ptr src, size_t bytes,
                               kvc_cuda_stream s) {
  CHECK(cuMemcpyDtoDAsync, CUdeviceptr(dst), CUdeviceptr(src), bytes,
        reinterpret_cast<CUstream>(s));
  return 0;
}
int kvc_cuda_memcpy2d_dtod_async(kvc_cuda_ptr dst, size_t dst_pitch, kvc_cuda_ptr src,
                                 size_t src_pitch, size_t width, size_t height,
                                 kvc_cuda_stream s) {
  CUDA_MEMCPY2D m;
  std::memset(&m, 0, sizeof m);
  m.srcMemoryType = CU_MEMORYTYPE_DEVICE;
  m.srcDevice = CUdeviceptr(src);
  m.srcPitch = src_pitch;
  m.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  m.dstDevice = CUdeviceptr(dst);
  m.dstPitch = dst_pitch;
  m.WidthInBytes = width;
  m.Height = height;
  CHECK(cuMemcpy2DAsync, &m, reinterpret_cast<CUstream>(s));
  return 0;
}
int kvc_cuda_memset_d8_async(kvc_cuda_ptr dst, unsigned char v, size_t bytes, kvc_cuda_stream s) {
  CHECK(cuMemsetD8Async, CUdeviceptr(dst), v, bytes, reinterpret_cast<CUstream>(s));
  return 0;
}
int kvc_cuda_memset_d32_async(kvc_cuda_ptr dst, unsigned v, size_t count, kvc_cuda_stream s) {
  CHECK(cuMemsetD32Async, CUdeviceptr(dst), v, count, reinterpret_cast<CUstream>(s));
  return 0;
}

int kvc_cuda_launch(kvc_cuda_function f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                    unsigned by, unsigned bz, unsigned smem, kvc_cuda_stream s, void **params) {
  CHECK(cuLaunchKernel, reinterpret_cast<CUfunction>(f), gx, gy, gz, bx, by, bz, smem,
        reinterpret_cast<CUstream>(s), params, nullptr);
  return 0;
}

int kvc_cuda_stream_create(kvc_cuda_stream *out) {
  CUstream st = nullptr;
  CHECK(cuStreamCreate, &st, CU_STREAM_NON_BLOCKING);
  *out = reinterpret_cast<kvc_cuda_stream>(st);
  return 0;
}
int kvc_cuda_stream_destroy(kvc_cuda_stream s) {
  CHECK(cuStreamDestroy, reinterpret_cast<CUstream>(s));
  return 0;
}
int kvc_cuda_stream_synchronize(kvc_cuda_stream s) {
  CHECK(cuStreamSynchronize, reinterpret_cast<CUstream>(s));
  return 0;
}
int kvc_cuda_synchronize(void) {
  CHECK(cuCtxSynchronize);
  return 0;
}

int kvc_cuda_event_create(kvc_cuda_event *out) {
  CUevent ev = nullptr;
  CHECK(cuEventCreate, &ev, CU_EVENT_DEFAULT);
  *out = reinterpret_cast<kvc_cuda_event>(ev);
  return 0;
}
int kvc_cuda_event_destroy(kvc_cuda_event e) {
  CHECK(cuEventDestroy, reinterpret_cast<CUevent>(e));
  return 0;
}
int kvc_cuda_event_record(kvc_cuda_event e, kvc_cuda_stream s) {
  CHECK(cuEventRecord, reinterpret_cast<CUevent>(e), reinterpret_cast<CUstream>(s));
  return 0;
}
int kvc_cuda_event_elapsed_ms(float *ms, kvc_cuda_event a, kvc_cuda_event b) {
  CHECK(cuEventElapsedTime, ms, reinterpret_cast<CUevent>(a), reinterpret_cast<CUevent>(b));
  return 0;
}

} // extern "C"
