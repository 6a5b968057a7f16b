// kvc-codec-make-seeds <dir>: writes small serialized heads (prefixed with the fuzzer's mode
// byte) covering both key groupings, escapes, empty streams and recent-only heads. The files
// under test/Runtime/Codec/corpus/ were produced by this tool.
#include "kvc/Runtime/Codec.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

struct Seed {
  const char* name;
  uint32_t d, key_block, value_block, key_recent, value_recent, grouping;
  float key_error, value_error;
  uint64_t prefill, appended;
  bool constant_prefill;
};

int writeSeed(const std::string& dir, const Seed& s) {
  kvc_codec_params p;
  kvc_codec_default_params(&p, s.d);
  p.key_block_tokens = s.key_block;
  p.value_block_tokens = s.value_block;
  p.key_recent_tokens = s.key_recent;
  p.value_recent_tokens = s.value_recent;
  p.key_grouping = s.grouping;
  p.key_error = s.key_error;
  p.value_error = s.value_error;
  kvc_codec_head* head = nullptr;
  if (kvc_codec_head_create(&p, &head) != KVC_CODEC_OK)
    return 1;
  std::mt19937 rng(s.d * 131 + s.prefill);
  std::student_t_distribution<float> heavy(3.0f);
  uint64_t total = s.prefill + s.appended;
  std::vector<float> K(total * s.d), V(total * s.d);
  for (uint64_t i = 0; i < K.size(); ++i) {
    bool constant = s.constant_prefill && i < s.prefill * s.d;
    K[i] = constant ? 0.5f : std::fmax(-100.f, std::fmin(100.f, heavy(rng)));
    V[i] = constant ? -0.25f : std::fmax(-100.f, std::fmin(100.f, heavy(rng)));
  }
  if (kvc_codec_head_append(head, K.data(), V.data(), s.prefill) != KVC_CODEC_OK)
    return 1;
  for (uint64_t t = s.prefill; t < total; ++t)
    if (kvc_codec_head_append(head, &K[t * s.d], &V[t * s.d], 1) != KVC_CODEC_OK)
      return 1;
  size_t size = 0;
  kvc_codec_head_serialize(head, nullptr, 0, &size);
  std::vector<uint8_t> bytes(size + 1);
  bytes[0] = 1; // fuzzer mode: re-seal the checksum
  kvc_codec_head_serialize(head, bytes.data() + 1, size, &size);
  kvc_codec_head_free(head);
  std::string path = dir + "/" + s.name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f)
    return 1;
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  std::printf("%s: %zu bytes\n", path.c_str(), bytes.size());
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output-dir>\n", argv[0]);
    return 2;
  }
  const Seed seeds[] = {
      {"block_small", 4, 8, 16, 8, 16, KVC_CODEC_KEY_BLOCK, 0.05f, 0.1f, 60, 5, false},
      {"channel_small", 4, 8, 8, 4, 4, KVC_CODEC_KEY_CHANNEL, 0.02f, 0.2f, 40, 3, false},
      {"escapes", 3, 4, 4, 2, 2, KVC_CODEC_KEY_BLOCK, 0.1f, 0.1f, 16, 12, true},
      {"fine_eps", 2, 8, 8, 0, 0, KVC_CODEC_KEY_BLOCK, 0.001f, 0.005f, 32, 0, false},
      {"recent_only", 4, 64, 128, 128, 256, KVC_CODEC_KEY_BLOCK, 0.05f, 0.1f, 20, 2, false},
      {"empty", 8, 64, 128, 128, 256, KVC_CODEC_KEY_BLOCK, 0.05f, 0.1f, 0, 0, false},
  };
  int failures = 0;
  for (const Seed& s : seeds)
    failures += writeSeed(argv[1], s);
  return failures ? 1 : 0;
}
