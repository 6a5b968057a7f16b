/*===- CUDA.h - kvc's CUDA driver-API runtime (C ABI) ------------------------===
 *
 * A thin runtime over the CUDA driver API for the kernels kvc emits (kvc-gpu-pipeline):
 * module loading from PTX or cubin bytes, functions, device memory, launches, streams and
 * events. It does not link against libcuda: libcuda.so.1 is opened on first use
 * (kvc_cuda_init) and its entry points are resolved by their versioned names, so
 * libkvc_runtime.so still loads on machines without a driver, where kvc_cuda_init fails
 * cleanly. No dependency on MLIR's runner libraries.
 *
 * Every function returns 0 on success or a non-zero CUresult (or -1 for errors raised by the
 * runtime itself); kvc_cuda_last_error() then names the failing CUDA call and the driver's
 * error name and string, e.g.
 *   "cuModuleLoadData: CUDA_ERROR_INVALID_PTX (a PTX JIT compilation failed)".
 * The runtime uses the device's primary context (cuDevicePrimaryCtxRetain), made current on
 * the calling thread by kvc_cuda_init.
 *===----------------------------------------------------------------------===*/
#ifndef KVC_RUNTIME_CUDA_H
#define KVC_RUNTIME_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kvc_cuda_module_s *kvc_cuda_module;
typedef struct kvc_cuda_function_s *kvc_cuda_function;
typedef struct kvc_cuda_stream_s *kvc_cuda_stream;  /* NULL = the legacy default stream */
typedef struct kvc_cuda_event_s *kvc_cuda_event;
typedef uint64_t kvc_cuda_ptr;                        /* a CUdeviceptr */

/* Loads libcuda, initialises the driver, retains device `ordinal`'s primary context and makes
 * it current. Idempotent per device. */
int kvc_cuda_init(int ordinal);
/* The last error message of the calling thread ("" if none). */
const char *kvc_cuda_last_error(void);
/* Sets it (for the runtime's own errors, e.g. a launch configuration it refuses). */
void kvc_cuda_set_last_error(const char *msg);
/* Device name, SM count, L2 bytes, compute capability; any pointer may be NULL. */
int kvc_cuda_device_info(char *name, size_t name_len, int *sm_count, int *l2_bytes,
                         int *cc_major, int *cc_minor);

/* `image`: NUL-terminated PTX text, or cubin/fatbin bytes (cuModuleLoadData). The JIT log is
 * appended to the error message when loading PTX fails. */
int kvc_cuda_module_load(const void *image, kvc_cuda_module *out);
int kvc_cuda_module_unload(kvc_cuda_module m);
int kvc_cuda_module_get_function(kvc_cuda_module m, const char *name, kvc_cuda_function *out);
/* Registers per thread and static shared bytes of a function (either pointer may be NULL). */
int kvc_cuda_function_info(kvc_cuda_function f, int *regs, int *static_smem);
/* The most threads per CTA the function can be launched with (its PTX .maxntid if any). */
int kvc_cuda_function_max_threads(kvc_cuda_function f, int *threads);
/* CTAs of `block_size` threads that fit on one SM (cuOccupancyMaxActiveBlocksPerMultiprocessor). */
int kvc_cuda_occupancy(kvc_cuda_function f, int block_size, size_t dynamic_smem, int *ctas_per_sm);

int kvc_cuda_malloc(kvc_cuda_ptr *out, size_t bytes);
/* Managed (unified) memory: the same address is valid on the host and the device. */
int kvc_cuda_malloc_managed(kvc_cuda_ptr *out, size_t bytes);
int kvc_cuda_free(kvc_cuda_ptr p);
int kvc_cuda_memcpy_htod(kvc_cuda_ptr dst, const void *src, size_t bytes);
int kvc_cuda_memcpy_dtoh(void *dst, kvc_cuda_ptr src, size_t bytes);
int kvc_cuda_memcpy_dtod_async(kvc_cuda_ptr dst, kvc_cuda_ptr src, size_t bytes,
                               kvc_cuda_stream s);
/* `height` rows of `width` bytes, row pitches in bytes (cuMemcpy2DAsync, device to device). */
int kvc_cuda_memcpy2d_dtod_async(kvc_cuda_ptr dst, size_t dst_pitch, kvc_cuda_ptr src,
                                 size_t src_pitch, size_t width, size_t height,
                                 kvc_cuda_stream s);
int kvc_cuda_memset_d8_async(kvc_cuda_ptr dst, unsigned char value, size_t bytes,
                             kvc_cuda_stream s);
/* `count` 32-bit words (dst 4-byte aligned). */
int kvc_cuda_memset_d32_async(kvc_cuda_ptr dst, unsigned value, size_t count, kvc_cuda_stream s);

/* params: one pointer per kernel parameter, as cuLaunchKernel takes them. */
int kvc_cuda_launch(kvc_cuda_function f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                    unsigned by, unsigned bz, unsigned smem_bytes, kvc_cuda_stream s,
                    void **params);

int kvc_cuda_stream_create(kvc_cuda_stream *out);
int kvc_cuda_stream_destroy(kvc_cuda_stream s);
int kvc_cuda_stream_synchronize(kvc_cuda_stream s);
int kvc_cuda_synchronize(void);

int kvc_cuda_event_create(kvc_cuda_event *out);
int kvc_cuda_event_destroy(kvc_cuda_event e);
int kvc_cuda_event_record(kvc_cuda_event e, kvc_cuda_stream s);
int kvc_cuda_event_elapsed_ms(float *ms, kvc_cuda_event start, kvc_cuda_event end);

#ifdef __cplusplus
}
#endif

#endif /* KVC_RUNTIME_CUDA_H */
