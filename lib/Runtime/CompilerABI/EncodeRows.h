//===- EncodeRows.h - kvc.encode's per-row loop, shared by the CPU and GPU runtimes ----===//
//
// A compiled kvc.encode hands the runtime strided [B, H, S, D] keys and values plus optional
// per-row lengths, and gets one codec head per (batch, KV head) row. The CPU runtime
// (EncodedCache.cpp) reads f32 memrefs in host memory; the GPU runtime (CUDA/GPUEncodedABI.cpp)
// reads f16/bf16/f32 copied from the device. Both gather rows and build the error-bounded
// (KVComp) heads here.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_LIB_RUNTIME_COMPILERABI_ENCODEROWS_H
#define KVC_LIB_RUNTIME_COMPILERABI_ENCODEROWS_H

#include "kvc/Runtime/Codec.h"
#include "kvc/Runtime/CompilerABI.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kvc::rt {

/// Tokens of row (b, h): lengths[b, h] for a ragged cache (`lengths` has rows), else S; -1
/// with `err` set when a length is outside [0, S] (it would index past the row).
inline int64_t rowTokens(const kvc_memref_i64_2d *lengths, int64_t b, int64_t h, int64_t S,
                         std::string &err) {
  if (lengths->sizes[0] <= 0)
    return S;
  const int64_t n =
      lengths->aligned[lengths->offset + b * lengths->strides[0] + h * lengths->strides[1]];
  if (n < 0 || n > S) {
    err = "lengths[" + std::to_string(b) + ", " + std::to_string(h) + "] = " +
          std::to_string(n) + " is outside [0, " + std::to_string(S) + "] (the cache's capacity)";
    return -1;
  }
  return n;
}

/// Row (b, h), tokens [0, n), of a strided [B, H, S, D] array as dense [n][D] floats. `at(i)`
/// reads the element at linear index i past the memref's offset.
template <class At>
std::vector<float> gatherRow(const int64_t sizes[4], const int64_t strides[4], int64_t b,
                             int64_t h, int64_t n, At at) {
  std::vector<float> out(size_t(n * sizes[3]));
  size_t k = 0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t d = 0; d < sizes[3]; ++d)
      out[k++] = at(b * strides[0] + h * strides[1] + t * strides[2] + d * strides[3]);
  return out;
}

/// One error-bounded codec head per row (b, h), row-major, each with the row's first
/// rowTokens(...) tokens appended; `keyAt`/`valueAt` as for gatherRow. Appends to `heads` as it
/// goes (the caller frees them, also on failure). Returns "" or what failed, naming the row.
template <class KeyAt, class ValueAt>
std::string encodeRows(const kvc_codec_params &p, const int64_t keySizes[4],
                       const int64_t keyStrides[4], const int64_t valueStrides[4],
                       const kvc_memref_i64_2d *lengths, KeyAt keyAt, ValueAt valueAt,
                       std::vector<kvc_codec_head *> &heads) {
  for (int64_t b = 0; b < keySizes[0]; ++b)
    for (int64_t h = 0; h < keySizes[1]; ++h) {
      std::string err;
      const int64_t n = rowTokens(lengths, b, h, keySizes[2], err);
      if (n < 0)
        return err;
      kvc_codec_head *head = nullptr;
      if (kvc_codec_head_create(&p, &head) != 0)
        return std::string("codec: ") + kvc_codec_last_error();
      heads.push_back(head);
      std::vector<float> k = gatherRow(keySizes, keyStrides, b, h, n, keyAt);
      std::vector<float> v = gatherRow(keySizes, valueStrides, b, h, n, valueAt);
      if (n > 0 && kvc_codec_head_append(head, k.data(), v.data(), uint64_t(n)) != 0)
        return "encoding row (batch " + std::to_string(b) + ", KV head " + std::to_string(h) +
               "): " + kvc_codec_last_error();
    }
  return "";
}

} // namespace kvc::rt

#endif
