//===- KVCToGPU.h - kvc to GPU (NVVM backend) lowering -----------*- C++ -*-===//
//
// The pass itself (convert-kvc-to-gpu) is declared in kvc/Conversion/Passes.td; the kernel
// generator it uses is in DecodeKernelGen.h.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_CONVERSION_KVCTOGPU_KVCTOGPU_H
#define KVC_CONVERSION_KVCTOGPU_KVCTOGPU_H

#include "kvc/Conversion/KVCToGPU/DecodeKernelGen.h"

#endif
