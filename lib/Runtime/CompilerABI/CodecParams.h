//===- CodecParams.h - codec parameters from a #kvc.codec, for compiled code -----------===//
//
// Compiled kvc.encode passes the #kvc.codec fields as integers/doubles (CompilerABI.h). The CPU
// (EncodedCache.cpp) and GPU (CUDA/GPUEncodedABI.cpp) runtimes build their codec heads from the
// same kvc_codec_params.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_LIB_RUNTIME_COMPILERABI_CODECPARAMS_H
#define KVC_LIB_RUNTIME_COMPILERABI_CODECPARAMS_H

#include "kvc/Runtime/Codec.h"

#include <cstdint>

namespace kvc::rt {

/// The error-bounded (KVComp) codec parameters of a compiled kvc.encode; keyGroup is the
/// #kvc.codec enum (0 block, 2 channel).
inline kvc_codec_params codecParams(int64_t headDim, int64_t keyGroup, int64_t keyBlock,
                                    double keyError, int64_t valueBlock, double valueError,
                                    int64_t recentKeys, int64_t recentValues) {
  kvc_codec_params p;
  kvc_codec_default_params(&p, uint32_t(headDim));
  p.key_error = float(keyError);
  p.value_error = float(valueError);
  p.key_block_tokens = uint32_t(keyBlock);
  p.value_block_tokens = uint32_t(valueBlock);
  p.key_recent_tokens = uint32_t(recentKeys);
  p.value_recent_tokens = uint32_t(recentValues);
  p.key_grouping = keyGroup == 2 ? KVC_CODEC_KEY_CHANNEL : KVC_CODEC_KEY_BLOCK;
  return p;
}

} // namespace kvc::rt

#endif
