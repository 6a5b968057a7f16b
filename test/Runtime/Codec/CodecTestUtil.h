// Helpers shared by the codec unit tests: RAII handles, data generators, an independent fp16
// rounding and CRC-32, and the error bound the codec documents.
#ifndef KVC_TEST_RUNTIME_CODEC_CODECTESTUTIL_H
#define KVC_TEST_RUNTIME_CODEC_CODECTESTUTIL_H

#include "kvc/Runtime/Codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace kvc::codec::test {

struct HeadDeleter {
  void operator()(kvc_codec_head* h) const { kvc_codec_head_free(h); }
};
using HeadPtr = std::unique_ptr<kvc_codec_head, HeadDeleter>;

struct KiviDeleter {
  void operator()(kvc_kivi_head* h) const { kvc_kivi_free(h); }
};
using KiviPtr = std::unique_ptr<kvc_kivi_head, KiviDeleter>;

#define KVC_ASSERT_OK(expr)                                                                        \
  do {                                                                                             \
    int kvc_status_ = (expr);                                                                      \
    ASSERT_EQ(kvc_status_, KVC_CODEC_OK) << #expr << ": " << kvc_codec_last_error();              \
  } while (0)

// fp16 rounding via the compiler's _Float16 (independent of the library's bit manipulation).
inline float roundToHalf(float x) { return static_cast<float>(static_cast<_Float16>(x)); }

enum class Distribution { Normal, StudentT, Cauchy, ConstantGroups, OutlierChannels };

inline const char* distributionName(Distribution d) {
  switch (d) {
  case Distribution::Normal: return "Normal";
  case Distribution::StudentT: return "StudentT2";
  case Distribution::Cauchy: return "Cauchy";
  case Distribution::ConstantGroups: return "ConstantGroups";
  case Distribution::OutlierChannels: return "OutlierChannels";
  }
  return "?";
}

// Fills [tokens x d]. ConstantGroups makes every `constant_run`-token run constant (so key
// blocks, key channels and value tokens all contain constant groups) with some variable runs.
inline std::vector<float> makeData(Distribution dist, uint64_t tokens, uint32_t d, uint32_t seed,
                                   uint32_t constant_run = 64) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::student_t_distribution<double> student(2.0);
  std::cauchy_distribution<double> cauchy(0.0, 1.0);
  std::vector<float> out(tokens * d);
  auto clampHalf = [](double x) { return static_cast<float>(std::clamp(x, -60000.0, 60000.0)); };
  for (uint64_t t = 0; t < tokens; ++t)
    for (uint32_t c = 0; c < d; ++c) {
      double x = 0.0;
      switch (dist) {
      case Distribution::Normal: x = normal(rng); break;
      case Distribution::StudentT: x = student(rng); break;
      case Distribution::Cauchy: x = cauchy(rng); break;
      case Distribution::ConstantGroups: {
        uint64_t run = t / constant_run;
        x = (run % 3 == 2) ? normal(rng) : 0.25 * static_cast<double>(run % 7) - 0.5;
        break;
      }
      case Distribution::OutlierChannels:
        x = normal(rng) + (c % 17 == 3 ? 40.0 + 20.0 * normal(rng) : 0.0) + (c == 1 ? -300.0 : 0.0);
        break;
      }
      out[t * d + c] = clampHalf(x);
    }
  return out;
}

// The documented bound for an element of a group with fp16 extremes lo/hi (docs/codec.md).
inline double codecBound(double eps, double lo, double hi) {
  return 0.5 * eps * (hi - lo) * (1.0 + 0x1p-20) + 0x1p-22 * std::max(std::fabs(lo), std::fabs(hi));
}

inline HeadPtr makeHead(const kvc_codec_params& params) {
  kvc_codec_head* raw = nullptr;
  int status = kvc_codec_head_create(&params, &raw);
  EXPECT_EQ(status, KVC_CODEC_OK) << kvc_codec_last_error();
  return HeadPtr(raw);
}

inline std::vector<uint8_t> serialize(const kvc_codec_head* head) {
  size_t size = 0;
  EXPECT_EQ(kvc_codec_head_serialize(head, nullptr, 0, &size), KVC_CODEC_OK);
  std::vector<uint8_t> bytes(size);
  EXPECT_EQ(kvc_codec_head_serialize(head, bytes.data(), bytes.size(), &size), KVC_CODEC_OK)
      << kvc_codec_last_error();
  return bytes;
}

// Standard (zlib) CRC-32, written independently of the library, to re-seal mutated buffers.
inline uint32_t referenceCrc32(const uint8_t* data, size_t size) {
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k)
      crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

inline void reseal(std::vector<uint8_t>& bytes) {
  if (bytes.size() < 4)
    return;
  uint32_t crc = referenceCrc32(bytes.data(), bytes.size() - 4);
  std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
}

} // namespace kvc::codec::test

#endif
