//===- KVCToGPU.h - kvc to GPU (NVVM backend) lowering -----------*- C++ -*-===//
//
// The pass itself (convert-kvc-to-gpu) is declared in kvc/Conversion/Passes.td. Its kernel
// generators: DecodeKernelGen.h (dense/ragged decode), EncodedKernelGen.h (KVComp-encoded
// decode), StoreKernelGen.h (KVComp store and window-append kernels); the shared merge kernel is
// lib/Conversion/KVCToGPU/SplitMerge.h.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_CONVERSION_KVCTOGPU_KVCTOGPU_H
#define KVC_CONVERSION_KVCTOGPU_KVCTOGPU_H

#include "kvc/Conversion/KVCToGPU/DecodeKernelGen.h"

#endif
