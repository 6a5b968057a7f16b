//===- SyntheticHeads.h - synthetic codec heads for kvc-bench ---------*- C++ -*-===//
//
// The codec heads kvc-bench's encoded and fixed-width commands pack and check (Encoded.cpp,
// FixedWidth.cpp): post-RoPE-like keys and Gaussian values, encoded by the CPU codec.
// Header-only, like BenchCommon.h.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_TOOLS_KVC_BENCH_SYNTHETICHEADS_H
#define KVC_TOOLS_KVC_BENCH_SYNTHETICHEADS_H

#include "BenchCommon.h"
#include "kvc/Runtime/Codec.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <thread>
#include <vector>

namespace kvcbench {

// Synthetic head (like kvc-codec-bench): keys with per-channel offsets/scales and x6 outlier
// channels (post-RoPE-like), Gaussian values. mode 1: the first 400 tokens are constant, so
// the codebook (built from the first blocks) has only symbol 0 and later blocks are mostly
// escapes (exercises the kernel's slow path). `params` (head_dim D) replaces
// kvc_codec_default_params(D) when given.
struct Head {
  kvc_codec_head *h = nullptr;
  ~Head() {
    if (h)
      kvc_codec_head_free(h);
  }
};
inline std::unique_ptr<Head> makeHead(int64_t T, int64_t D, uint64_t seed, int mode,
                                      const kvc_codec_params *params = nullptr) {
  auto H = std::make_unique<Head>();
  kvc_codec_params p;
  if (params)
    p = *params;
  else
    kvc_codec_default_params(&p, uint32_t(D));
  CC(kvc_codec_head_create(&p, &H->h));
  if (T == 0)
    return H;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> N(0.f, 1.f);
  std::vector<float> off(D), sc(D);
  for (int64_t c = 0; c < D; ++c) {
    off[c] = 0.5f * N(rng);
    sc[c] = (c % 37 == 5) ? 6.0f : 1.0f + 0.3f * std::fabs(N(rng));
  }
  std::vector<float> K(static_cast<size_t>(T * D)), V(size_t(T * D));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < D; ++c) {
      bool cst = mode == 1 && t < 400;
      K[size_t(t * D + c)] = cst ? 0.25f : off[c] + sc[c] * N(rng);
      V[size_t(t * D + c)] = cst ? -0.5f : 0.7f * N(rng);
    }
  if (mode == 1 && T > 400) {
    CC(kvc_codec_head_append(H->h, K.data(), V.data(), 400));
    CC(kvc_codec_head_append(H->h, K.data() + 400 * D, V.data() + 400 * D, uint64_t(T - 400)));
  } else {
    CC(kvc_codec_head_append(H->h, K.data(), V.data(), uint64_t(T)));
  }
  return H;
}

// Builds heads in parallel (independent handles).
inline std::vector<std::unique_ptr<Head>> makeHeads(const std::vector<int64_t> &lens, int64_t D,
                                                    uint64_t seed, int mode,
                                                    const kvc_codec_params *params = nullptr) {
  std::vector<std::unique_ptr<Head>> hs(lens.size());
  unsigned nt = std::max(1u, std::min<unsigned>(16, std::thread::hardware_concurrency()));
  std::vector<std::thread> th;
  for (unsigned w = 0; w < nt; ++w)
    th.emplace_back([&, w] {
      for (size_t i = w; i < lens.size(); i += nt)
        hs[i] = makeHead(lens[i], D, seed * 1000003 + i, mode, params);
    });
  for (auto &t : th)
    t.join();
  return hs;
}

// The `decode` commands' caches: `base` (one head per KV head) repeated for every batch row
// (row b*Hkv + kh holds base[kh]; the upload gives each row its own copy on the device), and
// the JSON documents' "data" field that says so.
inline std::vector<const kvc_codec_head *>
replicatedRows(const std::vector<std::unique_ptr<Head>> &base, int64_t B) {
  const int64_t hkv = int64_t(base.size());
  std::vector<const kvc_codec_head *> hp;
  for (int64_t r = 0; r < B * hkv; ++r)
    hp.push_back(base[size_t(r % hkv)]->h);
  return hp;
}
inline const char *kReplicatedHeadsData =
    "synthetic: keys per-channel offset/scale with x6 outlier channels, values 0.7*N(0,1); Hkv "
    "distinct heads per context, replicated (own copies) over the batch";

} // namespace kvcbench

#endif
