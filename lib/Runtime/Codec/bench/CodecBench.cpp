// kvc-codec-bench: CPU throughput of the codec on a synthetic but realistic head.
// Throughput is fp16-equivalent: bytes the same tokens would take in fp16 / wall time
// (K+V for encode/decode, K only for q.K^T, V only for p.V). Single thread.
//
// Usage: kvc-codec-bench [--tokens T,T,...] [--dims d,d,...] [--key-error e] [--value-error e]
//                        [--queries g] [--repeat n]
#include "kvc/Runtime/Codec.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

std::vector<int> parseList(const char* s) {
  std::vector<int> out;
  for (const char* p = s; *p;) {
    out.push_back(std::atoi(p));
    const char* comma = std::strchr(p, ',');
    if (!comma)
      break;
    p = comma + 1;
  }
  return out;
}

void check(int status, const char* what) {
  if (status != KVC_CODEC_OK) {
    std::fprintf(stderr, "%s failed: %s\n", what, kvc_codec_last_error());
    std::exit(1);
  }
}

// Keys: per-channel offsets/scales with a few outlier channels (like post-RoPE keys);
// values: roughly Gaussian per token.
void makeHead(int T, int d, std::vector<float>& K, std::vector<float>& V, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> offset(d), scale(d);
  for (int c = 0; c < d; ++c) {
    offset[c] = 0.5f * normal(rng);
    scale[c] = (c % 37 == 5) ? 6.0f : 1.0f + 0.3f * std::fabs(normal(rng));
  }
  K.resize(size_t(T) * d);
  V.resize(size_t(T) * d);
  for (int t = 0; t < T; ++t)
    for (int c = 0; c < d; ++c) {
      K[size_t(t) * d + c] = offset[c] + scale[c] * normal(rng);
      V[size_t(t) * d + c] = 0.7f * normal(rng);
    }
}

template <typename F> double bestSeconds(int repeat, F&& f) {
  double best = 1e30;
  for (int r = 0; r < repeat; ++r) {
    auto start = std::chrono::steady_clock::now();
    f();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::min(best, s);
  }
  return best;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<int> token_counts = {2048, 8192};
  std::vector<int> dims = {128, 256};
  float key_error = 0.05f, value_error = 0.1f;
  int queries = 4, repeat = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--tokens") token_counts = parseList(argv[i + 1]);
    else if (flag == "--dims") dims = parseList(argv[i + 1]);
    else if (flag == "--key-error") key_error = std::strtof(argv[i + 1], nullptr);
    else if (flag == "--value-error") value_error = std::strtof(argv[i + 1], nullptr);
    else if (flag == "--queries") queries = std::atoi(argv[i + 1]);
    else if (flag == "--repeat") repeat = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  std::printf("kvc-codec-bench: eps K=%g V=%g, %d queries (GQA), best of %d, 1 thread\n",
              key_error, value_error, queries, repeat);
  std::printf("%6s %4s | %8s %8s %8s %8s | %6s %6s %6s %6s | %6s %6s\n", "T", "d", "enc GB/s",
              "dec GB/s", "qK GB/s", "pV GB/s", "bits/e", "ratio", "Kb/e", "Vb/e", "q-only",
              "KIVI2");
  for (int T : token_counts)
    for (int d : dims) {
      std::vector<float> K, V;
      makeHead(T, d, K, V, 1234 + T + d);
      kvc_codec_params params;
      kvc_codec_default_params(&params, d);
      params.key_error = key_error;
      params.value_error = value_error;
      kvc_codec_head* head = nullptr;
      double encode_s = bestSeconds(repeat, [&] {
        if (head)
          kvc_codec_head_free(head);
        check(kvc_codec_head_create(&params, &head), "create");
        check(kvc_codec_head_append(head, K.data(), V.data(), T), "append");
      });
      std::vector<float> Kd(K.size()), Vd(V.size());
      double decode_s =
          bestSeconds(repeat, [&] { check(kvc_codec_head_decode(head, Kd.data(), Vd.data()), "decode"); });
      std::vector<float> q(size_t(queries) * d, 0.1f), scores(size_t(queries) * T);
      std::vector<float> p(size_t(queries) * T, 1.0f / T), out(size_t(queries) * d);
      double scores_s = bestSeconds(
          repeat, [&] { check(kvc_codec_head_scores(head, q.data(), queries, scores.data()), "scores"); });
      double apply_s = bestSeconds(
          repeat, [&] { check(kvc_codec_head_apply(head, p.data(), queries, out.data()), "apply"); });
      kvc_codec_stats st;
      check(kvc_codec_head_stats(head, &st), "stats");

      kvc_kivi_params kp;
      kvc_kivi_default_params(&kp, d, 2);
      kvc_kivi_head* kivi = nullptr;
      check(kvc_kivi_quantize(&kp, K.data(), V.data(), T, &kivi), "kivi");
      kvc_codec_stats ks;
      check(kvc_kivi_stats(kivi, &ks), "kivi stats");
      kvc_kivi_free(kivi);

      const double kv_bytes = 2.0 * T * d * 2, one_bytes = double(T) * d * 2;
      std::printf("%6d %4d | %8.3f %8.3f %8.3f %8.3f | %6.3f %6.2f %6.3f %6.3f | %6.2f %6.2f\n",
                  T, d, kv_bytes / encode_s * 1e-9, kv_bytes / decode_s * 1e-9,
                  one_bytes / scores_s * 1e-9, one_bytes / apply_s * 1e-9, st.bits_per_element,
                  st.compression_ratio, st.key_encoded_bits_per_element,
                  st.value_encoded_bits_per_element, st.quant_only_compression_ratio,
                  ks.compression_ratio);
      kvc_codec_head_free(head);
    }
  std::printf("columns: bits/e and ratio over all stored bytes (incl. fp16 recent windows and all\n"
              "metadata); Kb/e, Vb/e: encoded part only; q-only: ratio with fixed-width symbols;\n"
              "KIVI2: 2-bit KIVI baseline ratio on the same data.\n");
  return 0;
}
