// libFuzzer target kvc-codec-fuzz: arbitrary bytes -> deserializer -> decoder, fused kernels,
// append and re-serialization. Input: one mode byte, then a serialized head. With mode bit 0
// set, the trailing CRC-32 is recomputed first so that mutations reach the structural checks
// and the bitstream decoder instead of stopping at the checksum.
//
// Invariants checked (a violation aborts):
//  - deserialize either fails with KVC_CODEC_ERR_CORRUPT or yields a head that decodes, runs
//    both fused kernels and re-serializes to exactly the same bytes;
//  - appending to an accepted head succeeds and its serialization is accepted again.
//
// Run: build*/bin/kvc-codec-fuzz -max_total_time=30 <corpus-dir> test/Runtime/Codec/corpus
#include "kvc/Runtime/Codec.h"

#include "CodecHead.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

void check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "kvc-codec-fuzz invariant violated: %s (%s)\n", what,
                 kvc_codec_last_error());
    std::abort();
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1)
    return 0;
  const uint8_t mode = data[0];
  std::vector<uint8_t> bytes(data + 1, data + size);
  if ((mode & 1) && bytes.size() >= 4) {
    uint32_t crc = kvc::codec::crc32(bytes.data(), bytes.size() - 4);
    std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
  }
  kvc_codec_head* head = nullptr;
  int status = kvc_codec_head_deserialize(bytes.data(), bytes.size(), &head);
  if (status != KVC_CODEC_OK) {
    check(status == KVC_CODEC_ERR_CORRUPT && head == nullptr, "rejection must be CORRUPT");
    return 0;
  }
  kvc_codec_params params;
  check(kvc_codec_head_params(head, &params) == KVC_CODEC_OK, "params");
  const uint64_t T = kvc_codec_head_num_tokens(head);
  const uint64_t d = params.head_dim;
  if (T * d <= (uint64_t{1} << 22)) {
    std::vector<float> K(T * d), V(T * d);
    check(kvc_codec_head_decode(head, K.data(), V.data()) == KVC_CODEC_OK, "decode");
    const uint32_t queries = 2;
    std::vector<float> q(queries * d, 0.5f), scores(queries * T), p(queries * T, 0.25f),
        out(queries * d);
    check(kvc_codec_head_scores(head, q.data(), queries, scores.data()) == KVC_CODEC_OK, "scores");
    check(kvc_codec_head_apply(head, p.data(), queries, out.data()) == KVC_CODEC_OK, "apply");
  }
  size_t needed = 0;
  check(kvc_codec_head_serialize(head, nullptr, 0, &needed) == KVC_CODEC_OK, "size");
  std::vector<uint8_t> again(needed);
  check(kvc_codec_head_serialize(head, again.data(), again.size(), &needed) == KVC_CODEC_OK,
        "serialize");
  check(again == bytes, "re-serialization differs from the accepted input");

  // Appending with whatever codebook the input carried must work and stay decodable.
  const uint64_t extra = 1 + (mode >> 1) % 200;
  if (extra * d <= (uint64_t{1} << 20)) {
    std::vector<float> k(extra * d), v(extra * d);
    for (uint64_t i = 0; i < k.size(); ++i) {
      k[i] = static_cast<float>(static_cast<int>((i * 2654435761u + mode) % 2001) - 1000) * 0.01f;
      v[i] = static_cast<float>(static_cast<int>((i * 40503u + 7 * mode) % 999) - 499) * 0.003f;
    }
    check(kvc_codec_head_append(head, k.data(), v.data(), extra) == KVC_CODEC_OK, "append");
    check(kvc_codec_head_serialize(head, nullptr, 0, &needed) == KVC_CODEC_OK, "size 2");
    again.resize(needed);
    check(kvc_codec_head_serialize(head, again.data(), again.size(), &needed) == KVC_CODEC_OK,
          "serialize 2");
    kvc_codec_head* reparsed = nullptr;
    check(kvc_codec_head_deserialize(again.data(), again.size(), &reparsed) == KVC_CODEC_OK,
          "an appended head must deserialize");
    kvc_codec_head_free(reparsed);
  }
  kvc_codec_head_free(head);
  return 0;
}
