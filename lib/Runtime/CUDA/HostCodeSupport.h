//===- MgpuModules.h - the compiled program's GPU modules, for the runtime's own use -*- C++ -*-===//
//
// MgpuABI.cpp records every gpu.binary the program registers (mgpuModuleLoad from its global
// constructor). Runtime entry points that need the program's kernels themselves, not only a
// launch (kvc_rt_gpu_decode_splits asks for a kernel's occupancy), find them here.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_RUNTIME_CUDA_MGPUMODULES_H
#define KVC_RUNTIME_CUDA_MGPUMODULES_H

#include "kvc/Runtime/CUDA.h"

#include <functional>

namespace kvc::mgpu {
/// Calls `f` with each registered module (loaded on first use) until it returns true. Returns
/// whether one did; a module that fails to load stops the program (as a failing launch would).
bool forEachModule(const std::function<bool(kvc_cuda_module)> &f);
} // namespace kvc::mgpu

#endif
