//===- HostCodeSupport.h - shared by libkvc_runtime's entry points for compiled host code -*- C++ -*-===//
//
// The entry points that convert-kvc-to-gpu's host code calls (MgpuABI.cpp, GPUWorkspaceABI.cpp,
// GPUDecodeABI.cpp, GPUEncodedABI.cpp) share how they stop on an error and how they find the
// program's own kernels: MgpuABI.cpp records every gpu.binary the program registers
// (mgpuModuleLoad from its global constructor), and the split-count plans look kernels up there
// by the name the host code passes.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_RUNTIME_CUDA_HOSTCODESUPPORT_H
#define KVC_RUNTIME_CUDA_HOSTCODESUPPORT_H

#include "kvc/Runtime/CUDA.h"
#include "kvc/Runtime/CompilerABI.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace kvc::hostcode {
/// Prints "kvc runtime: <component>: <msg>" and exits with `status` through _Exit: the program
/// may be mid-way through a call on another thread, so static destructors must not run.
[[noreturn]] inline void fatal(const char *component, const std::string &msg, int status) {
  std::fprintf(stderr, "kvc runtime: %s: %s\n", component, msg.c_str());
  std::fflush(stderr);
  std::_Exit(status);
}

/// The kernel name the host code passes NUL-terminated in an i8 memref.
inline std::string kernelName(const kvc_memref_1d &name) {
  const char *p = static_cast<const char *>(name.aligned) + name.offset;
  return std::string(p, strnlen(p, size_t(name.sizes[0])));
}

/// Finds function `name` in the registered modules (each loaded on first use; one that fails
/// to load stops the program, as a failing launch would). False if none has it.
bool findKernel(const std::string &name, kvc_cuda_module *module, kvc_cuda_function *function);

/// The message for a split kernel the host code names but the registered modules lack.
inline std::string missingKernelMessage(const std::string &split) {
  return "no kernel '" + split + "' in the program's GPU modules (is the program's mgpu* ABI "
         "libkvc_runtime's? with another GPU runtime, set convert-kvc-to-gpu num-splits)";
}
} // namespace kvc::hostcode

#endif
