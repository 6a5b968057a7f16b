//===- CUDAStub.cpp - kvc_cuda_* when built without the CUDA toolkit -------===//
#include "kvc/Runtime/CUDA.h"

namespace {
const char *kMsg = "kvc runtime was built without the CUDA toolkit (no cuda.h at configure time)";
}

extern "C" {
const char *kvc_cuda_last_error(void) { return kMsg; }
void kvc_cuda_set_last_error(const char *) {}
int kvc_cuda_init(int) { return -1; }
int kvc_cuda_device_info(char *, size_t, int *, int *, int *, int *) { return -1; }
int kvc_cuda_module_load(const void *, kvc_cuda_module *) { return -1; }
int kvc_cuda_module_unload(kvc_cuda_module) { return -1; }
int kvc_cuda_module_get_function(kvc_cuda_module, const char *, kvc_cuda_function *) { return -1; }
int kvc_cuda_function_info(kvc_cuda_function, int *, int *) { return -1; }
int kvc_cuda_function_max_threads(kvc_cuda_function, int *) { return -1; }
int kvc_cuda_occupancy(kvc_cuda_function, int, size_t, int *) { return -1; }
int kvc_cuda_malloc(kvc_cuda_ptr *, size_t) { return -1; }
int kvc_cuda_malloc_managed(kvc_cuda_ptr *, size_t) { return -1; }
int kvc_cuda_free(kvc_cuda_ptr) { return -1; }
int kvc_cuda_memcpy_htod(kvc_cuda_ptr, const void *, size_t) { return -1; }
int kvc_cuda_memcpy_dtoh(void *, kvc_cuda_ptr, size_t) { return -1; }
int kvc_cuda_memcpy_dtod_async(kvc_cuda_ptr, kvc_cuda_ptr, size_t, kvc_cuda_stream) { return -1; }
int kvc_cuda_memcpy2d_dtod_async(kvc_cuda_ptr, size_t, kvc_cuda_ptr, size_t, size_t, size_t,
                                 kvc_cuda_stream) {
  return -1;
}
int kvc_cuda_memset_d8_async(kvc_cuda_ptr, unsigned char, size_t, kvc_cuda_stream) { return -1; }
int kvc_cuda_memset_d32_async(kvc_cuda_ptr, unsigned, size_t, kvc_cuda_stream) { return -1; }
int kvc_cuda_launch(kvc_cuda_function, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                    unsigned, kvc_cuda_stream, void **) {
  return -1;
}
int kvc_cuda_stream_create(kvc_cuda_stream *) { return -1; }
int kvc_cuda_stream_destroy(kvc_cuda_stream) { return -1; }
int kvc_cuda_stream_synchronize(kvc_cuda_stream) { return -1; }
int kvc_cuda_synchronize(void) { return -1; }
int kvc_cuda_event_create(kvc_cuda_event *) { return -1; }
int kvc_cuda_event_destroy(kvc_cuda_event) { return -1; }
int kvc_cuda_event_record(kvc_cuda_event, kvc_cuda_stream) { return -1; }
int kvc_cuda_event_elapsed_ms(float *, kvc_cuda_event, kvc_cuda_event) { return -1; }
}
