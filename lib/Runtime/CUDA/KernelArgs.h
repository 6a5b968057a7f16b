//===- KernelArgs.h - kernel parameters of kvc's generated GPU kernels ------*- C++ -*-===//
//
// The kernels convert-kvc-to-gpu emits take every buffer as MLIR's default descriptor of a 1-D
// memref<?xT>: five parameters (allocated ptr, aligned ptr, offset, size, stride). The launchers
// (CUDADecode.cpp, CUDAEncoded.cpp) build them with this, and launch the shared merge kernel
// with launchMerge.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_LIB_RUNTIME_CUDA_KERNELARGS_H
#define KVC_LIB_RUNTIME_CUDA_KERNELARGS_H

#include "kvc/Runtime/CUDA.h"
#include "kvc/Runtime/CUDADecode.h"

#include <cstdint>

namespace kvc::cuda {

struct Memref1D {
  uint64_t alloc, aligned;
  int64_t offset, size, stride;
  /// Appends the five parameter pointers (this object must outlive the launch call).
  void push(void **params, int &n) {
    params[n++] = &alloc;
    params[n++] = &aligned;
    params[n++] = &offset;
    params[n++] = &size;
    params[n++] = &stride;
  }
};

/// The descriptor of `n` contiguous elements at device address `p`.
inline Memref1D desc(kvc_cuda_ptr p, int64_t n) { return {p, p, 0, n, 1}; }

/// Launches a merge kernel (grid: nq query rows) with its CTA size, the PTX .maxntid: D * slices
/// since the parallel merge, D before. Anything else (e.g. a merge without .maxntid, which
/// reports 1024) is not a kvc merge for this head dim.
inline int launchMerge(kvc_cuda_function merge, int64_t nq, int64_t D, kvc_cuda_stream stream,
                       void **params) {
  int threads = 0;
  if (int rc = kvc_cuda_function_max_threads(merge, &threads))
    return rc;
  if (threads != D && threads != kvc_decode_merge_threads(D)) {
    kvc_cuda_set_last_error("merge kernel: its .maxntid is neither D nor "
                            "kvc_decode_merge_threads(D) (not a kvc merge for this head dim)");
    return -1;
  }
  return kvc_cuda_launch(merge, unsigned(nq), 1, 1, unsigned(threads), 1, 1, 0, stream, params);
}

} // namespace kvc::cuda

#endif
