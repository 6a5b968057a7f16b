//===- KernelArgs.h - kernel parameters of kvc's generated GPU kernels ------*- C++ -*-===//
//
// The kernels convert-kvc-to-gpu emits take every buffer as MLIR's default descriptor of a 1-D
// memref<?xT>: five parameters (allocated ptr, aligned ptr, offset, size, stride). The launchers
// (CUDADecode.cpp, CUDAEncoded.cpp) build them with this.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_LIB_RUNTIME_CUDA_KERNELARGS_H
#define KVC_LIB_RUNTIME_CUDA_KERNELARGS_H

#include "kvc/Runtime/CUDA.h"

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

} // namespace kvc::cuda

#endif
