// Unit and property tests of the KVComp-style codec and the KIVI baseline (C ABI only).
#include "CodecTestUtil.h"

#include <map>
#include <numeric>
#include <tuple>

using namespace kvc::codec::test;

namespace {

struct Groups {
  // Group extremes (fp16 values) of every encoded element, computed independently.
  std::vector<double> lo, hi;
};

// Extremes per element of the encoded K tokens (block or channel groups) and V tokens.
Groups keyGroups(const std::vector<float>& K16, uint64_t encoded, uint32_t d, uint32_t block,
                 bool per_channel) {
  Groups g{std::vector<double>(encoded * d), std::vector<double>(encoded * d)};
  for (uint64_t b = 0; b < encoded / block; ++b) {
    std::vector<double> lo(d, INFINITY), hi(d, -INFINITY);
    for (uint64_t t = b * block; t < (b + 1) * block; ++t)
      for (uint32_t c = 0; c < d; ++c) {
        uint32_t i = per_channel ? c : 0;
        lo[i] = std::min<double>(lo[i], K16[t * d + c]);
        hi[i] = std::max<double>(hi[i], K16[t * d + c]);
      }
    for (uint64_t t = b * block; t < (b + 1) * block; ++t)
      for (uint32_t c = 0; c < d; ++c) {
        uint32_t i = per_channel ? c : 0;
        g.lo[t * d + c] = lo[i];
        g.hi[t * d + c] = hi[i];
      }
  }
  return g;
}

Groups tokenGroups(const std::vector<float>& X16, uint64_t encoded, uint32_t d) {
  Groups g{std::vector<double>(encoded * d), std::vector<double>(encoded * d)};
  for (uint64_t t = 0; t < encoded; ++t) {
    double lo = INFINITY, hi = -INFINITY;
    for (uint32_t c = 0; c < d; ++c) {
      lo = std::min<double>(lo, X16[t * d + c]);
      hi = std::max<double>(hi, X16[t * d + c]);
    }
    for (uint32_t c = 0; c < d; ++c) {
      g.lo[t * d + c] = lo;
      g.hi[t * d + c] = hi;
    }
  }
  return g;
}

std::vector<float> toHalf(const std::vector<float>& x) {
  std::vector<float> out(x.size());
  std::transform(x.begin(), x.end(), out.begin(), roundToHalf);
  return out;
}

// Checks every element: encoded ones within the bound of their group, recent ones exact.
// Returns the largest error / (eps * range / 2) over non-constant groups (tightness).
double checkErrorBound(const std::vector<float>& X, const std::vector<float>& decoded,
                       const Groups& groups, uint64_t encoded, uint32_t d, double eps,
                       const char* what) {
  std::vector<float> X16 = toHalf(X);
  double worst_ratio = 0.0;
  uint64_t failures = 0;
  for (uint64_t i = 0; i < encoded * d; ++i) {
    double err = std::fabs(double(X16[i]) - double(decoded[i]));
    double bound = codecBound(eps, groups.lo[i], groups.hi[i]);
    if (!(err <= bound) && failures++ < 5)
      ADD_FAILURE() << what << " element " << i << ": |x - x^| = " << err << " > bound " << bound
                    << " (group [" << groups.lo[i] << ", " << groups.hi[i] << "], x16 " << X16[i]
                    << ", x^ " << decoded[i] << ")";
    if (groups.hi[i] > groups.lo[i])
      worst_ratio = std::max(worst_ratio, err / (0.5 * eps * (groups.hi[i] - groups.lo[i])));
    else if (err != 0.0 && failures++ < 5)
      ADD_FAILURE() << what << " constant group not exact at " << i;
  }
  for (uint64_t i = encoded * d; i < X.size(); ++i)
    if (decoded[i] != X16[i] && failures++ < 5)
      ADD_FAILURE() << what << " recent element " << i << " is not the fp16 value";
  EXPECT_EQ(failures, 0u) << what;
  return worst_ratio;
}

kvc_codec_params smallParams(uint32_t d, float ke, float ve, uint32_t grouping) {
  kvc_codec_params p;
  kvc_codec_default_params(&p, d);
  p.key_error = ke;
  p.value_error = ve;
  p.key_grouping = grouping;
  return p;
}

// ------------------------------------------------------------------------------------------
// Error bound on every element

using BoundCase = std::tuple<Distribution, float, float, uint32_t>;

class ErrorBoundTest : public ::testing::TestWithParam<BoundCase> {};

TEST_P(ErrorBoundTest, HoldsForEveryElement) {
  auto [dist, key_error, value_error, grouping] = GetParam();
  const uint32_t d = 64;
  const uint64_t T = 1000;
  std::vector<float> K = makeData(dist, T, d, 11), V = makeData(dist, T, d, 12);
  kvc_codec_params params = smallParams(d, key_error, value_error, grouping);
  HeadPtr head = makeHead(params);
  KVC_ASSERT_OK(kvc_codec_head_append(head.get(), K.data(), V.data(), T));
  kvc_codec_stats st;
  KVC_ASSERT_OK(kvc_codec_head_stats(head.get(), &st));
  // Cut rule: whole blocks older than the recent window.
  EXPECT_EQ(st.key_encoded_tokens, (T - 128) / 64 * 64);
  EXPECT_EQ(st.value_encoded_tokens, (T - 256) / 128 * 128);
  std::vector<float> Kd(T * d), Vd(T * d);
  KVC_ASSERT_OK(kvc_codec_head_decode(head.get(), Kd.data(), Vd.data()));
  std::vector<float> K16 = toHalf(K), V16 = toHalf(V);
  Groups kg = keyGroups(K16, st.key_encoded_tokens, d, 64, grouping == KVC_CODEC_KEY_CHANNEL);
  Groups vg = tokenGroups(V16, st.value_encoded_tokens, d);
  double k_tight = checkErrorBound(K, Kd, kg, st.key_encoded_tokens, d, key_error, "K");
  double v_tight = checkErrorBound(V, Vd, vg, st.value_encoded_tokens, d, value_error, "V");
  // The bound is also tight: some element gets close to half a step (non-constant data).
  if (dist != Distribution::ConstantGroups) {
    EXPECT_GT(k_tight, 0.8);
    EXPECT_GT(v_tight, 0.8);
  }
}

std::string boundCaseName(const ::testing::TestParamInfo<BoundCase>& info) {
  Distribution dist = std::get<0>(info.param);
  float ke = std::get<1>(info.param), ve = std::get<2>(info.param);
  uint32_t grouping = std::get<3>(info.param);
  return std::string(distributionName(dist)) + "_K" + std::to_string(int(ke * 1000 + 0.5f)) +
         "e3_V" + std::to_string(int(ve * 1000 + 0.5f)) + "e3_" +
         (grouping == KVC_CODEC_KEY_BLOCK ? "Block" : "Channel");
}

INSTANTIATE_TEST_SUITE_P(
    Codec, ErrorBoundTest,
    ::testing::Combine(::testing::Values(Distribution::Normal, Distribution::StudentT,
                                         Distribution::Cauchy, Distribution::ConstantGroups,
                                         Distribution::OutlierChannels),
                       ::testing::Values(0.005f, 0.02f, 0.05f, 0.1f),
                       ::testing::Values(0.01f, 0.05f, 0.1f, 0.2f),
                       ::testing::Values(uint32_t(KVC_CODEC_KEY_BLOCK),
                                         uint32_t(KVC_CODEC_KEY_CHANNEL))),
    boundCaseName);

TEST(Codec, ConstantGroupsAreExact) {
  const uint32_t d = 32;
  const uint64_t T = 700;
  std::vector<float> K(T * d, 1.5f), V(T * d, -0.375f);
  HeadPtr head = makeHead(smallParams(d, 0.05f, 0.1f, KVC_CODEC_KEY_BLOCK));
  KVC_ASSERT_OK(kvc_codec_head_append(head.get(), K.data(), V.data(), T));
  std::vector<float> Kd(T * d), Vd(T * d);
  KVC_ASSERT_OK(kvc_codec_head_decode(head.get(), Kd.data(), Vd.data()));
  EXPECT_EQ(Kd, K);
  EXPECT_EQ(Vd, V);
  kvc_codec_stream_view view;
  KVC_ASSERT_OK(kvc_codec_head_view(head.get(), KVC_CODEC_KEYS, &view, nullptr));
  ASSERT_GT(view.num_blocks, 0u);
  EXPECT_EQ(view.steps[0], 0.0f);
}

// ------------------------------------------------------------------------------------------
// Symbols: decoded == quantized (bit-exact), params == group extremes

// Reference decoder that walks the canonical tables bit by bit (the documented GPU layout).
std::vector<uint32_t> referenceDecode(const kvc_codec_stream_view& v,
                                      const kvc_codec_huffman_tables& t, uint32_t block,
                                      uint32_t vector) {
  const uint32_t* words = v.words + v.block_word_offsets[block];
  uint64_t bit = v.vector_bit_offsets[uint64_t(block) * v.vectors_per_block + vector];
  auto next_bit = [&] {
    uint32_t b = (words[bit >> 5] >> (31 - (bit & 31))) & 1u;
    ++bit;
    return b;
  };
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < v.symbols_per_vector; ++i) {
    uint32_t code = 0, symbol = UINT32_MAX;
    for (uint32_t len = 1; len <= t.max_code_length; ++len) {
      code = (code << 1) | next_bit();
      if (code - t.first_code[len] < t.length_count[len]) {
        symbol = t.sorted_symbols[t.first_index[len] + code - t.first_code[len]];
        break;
      }
    }
    EXPECT_NE(symbol, UINT32_MAX);
    if (symbol == t.escape_symbol) {
      symbol = 0;
      for (uint32_t k = 0; k < t.raw_bits; ++k)
        symbol = (symbol << 1) | next_bit();
    }
    out.push_back(symbol);
  }
  return out;
}

class SymbolRoundTripTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(SymbolRoundTripTest, DecodedSymbolsEqualQuantizedSymbols) {
  const uint32_t grouping = GetParam();
  const uint32_t d = 48;
  const uint64_t T = 900;
  std::vector<float> K = makeData(Distribution::OutlierChannels, T, d, 5);
  std::vector<float> V = makeData(Distribution::StudentT, T, d, 6);
  const float ke = 0.02f, ve = 0.05f;
  HeadPtr head = makeHead(smallParams(d, ke, ve, grouping));
  KVC_ASSERT_OK(kvc_codec_head_append(head.get(), K.data(), V.data(), T));

  for (int stream : {KVC_CODEC_KEYS, KVC_CODEC_VALUES}) {
    SCOPED_TRACE(stream == KVC_CODEC_KEYS ? "keys" : "values");
    const std::vector<float> X16 = toHalf(stream == KVC_CODEC_KEYS ? K : V);
    const double eps = stream == KVC_CODEC_KEYS ? ke : ve;
    kvc_codec_stream_view view;
    kvc_codec_huffman_tables tables;
    KVC_ASSERT_OK(kvc_codec_head_view(head.get(), stream, &view, &tables));
    ASSERT_GT(view.num_blocks, 0u);
    const uint64_t encoded = uint64_t(view.num_blocks) * view.block_tokens;
    std::vector<uint16_t> symbols(encoded * d);
    KVC_ASSERT_OK(kvc_codec_head_decode_symbols(head.get(), stream, symbols.data(), symbols.size()));
    uint64_t mismatches = 0;
    for (uint64_t t = 0; t < encoded; ++t)
      for (uint32_t c = 0; c < d; ++c) {
        uint32_t block = uint32_t(t / view.block_tokens), local = uint32_t(t % view.block_tokens);
        uint32_t g = view.params_per_block == 1 ? 0
                     : (stream == KVC_CODEC_KEYS ? c : local);
        float mn = view.mins[uint64_t(block) * view.params_per_block + g];
        float st = view.steps[uint64_t(block) * view.params_per_block + g];
        uint32_t expected =
            st == 0.0f ? 0u : uint32_t(std::nearbyint((double(X16[t * d + c]) - mn) / st));
        if (symbols[t * d + c] != expected && mismatches++ < 5)
          ADD_FAILURE() << "symbol mismatch at token " << t << " channel " << c;
      }
    EXPECT_EQ(mismatches, 0u);
    // Stored params are the group min and fp32(eps * range).
    for (uint32_t b = 0; b < view.num_blocks; ++b)
      for (uint32_t g = 0; g < view.params_per_block; ++g) {
        double lo = INFINITY, hi = -INFINITY;
        for (uint32_t local = 0; local < view.block_tokens; ++local)
          for (uint32_t c = 0; c < d; ++c) {
            uint32_t gi = view.params_per_block == 1 ? 0 : (stream == KVC_CODEC_KEYS ? c : local);
            if (gi != g)
              continue;
            double x = X16[(uint64_t(b) * view.block_tokens + local) * d + c];
            lo = std::min(lo, x);
            hi = std::max(hi, x);
          }
        EXPECT_EQ(view.mins[uint64_t(b) * view.params_per_block + g], float(lo));
        EXPECT_EQ(view.steps[uint64_t(b) * view.params_per_block + g],
                  float(double(float(eps)) * (hi - lo)));
      }
    // The documented tables decode the same symbols (independent bit-serial decoder).
    for (uint32_t b = 0; b < view.num_blocks; b += 3)
      for (uint32_t vec = 0; vec < view.vectors_per_block; vec += 5) {
        std::vector<uint32_t> ref = referenceDecode(view, tables, b, vec);
        for (uint32_t i = 0; i < view.symbols_per_vector; ++i) {
          uint64_t t = stream == KVC_CODEC_KEYS ? uint64_t(b) * view.block_tokens + vec
                                                : uint64_t(b) * view.block_tokens + i;
          uint32_t c = stream == KVC_CODEC_KEYS ? i : vec;
          ASSERT_EQ(ref[i], symbols[t * d + c]) << "block " << b << " vector " << vec;
        }
      }
    // LUT entries agree with the code lengths/codes.
    for (uint32_t s = 0; s <= tables.num_coded_symbols; ++s) {
      uint32_t len = tables.code_lengths[s];
      if (len == 0 || len > tables.lut_bits)
        continue;
      uint32_t entry = tables.lut[tables.codes[s] << (tables.lut_bits - len)];
      EXPECT_EQ(entry, (len << 16) | s);
    }
    EXPECT_LE(tables.max_code_length, 16u);
  }
}

INSTANTIATE_TEST_SUITE_P(Codec, SymbolRoundTripTest,
                         ::testing::Values(uint32_t(KVC_CODEC_KEY_BLOCK),
                                           uint32_t(KVC_CODEC_KEY_CHANNEL)));

// ------------------------------------------------------------------------------------------
// Growing cache: codebook reuse and the escape path

TEST(Codec, AppendsReuseTheCodebookAndEscapeUnseenSymbols) {
  const uint32_t d = 32;
  const float ke = 0.05f, ve = 0.1f;
  HeadPtr head = makeHead(smallParams(d, ke, ve, KVC_CODEC_KEY_BLOCK));
  // Prefill: constant data, so the codebook only knows symbol 0.
  const uint64_t prefill = 600;
  std::vector<float> K(prefill * d, 0.5f), V(prefill * d, -1.0f);
  KVC_ASSERT_OK(kvc_codec_head_append(head.get(), K.data(), V.data(), prefill));
  kvc_codec_huffman_tables before_k, before_v;
  KVC_ASSERT_OK(kvc_codec_head_view(head.get(), KVC_CODEC_KEYS, nullptr, &before_k));
  KVC_ASSERT_OK(kvc_codec_head_view(head.get(), KVC_CODEC_VALUES, nullptr, &before_v));
  ASSERT_EQ(before_k.num_coded_symbols, 1u);
  std::vector<uint8_t> lengths_k(before_k.code_lengths,
                                 before_k.code_lengths + before_k.num_coded_symbols + 1);
  std::vector<uint8_t> lengths_v(before_v.code_lengths,
                                 before_v.code_lengths + before_v.num_coded_symbols + 1);
  kvc_codec_stats st0;
  KVC_ASSERT_OK(kvc_codec_head_stats(head.get(), &st0));
  EXPECT_EQ(st0.key_escape_count, 0u);

  // Decode phase: random data, in chunks of 1..37 tokens.
  std::vector<float> Kn = makeData(Distribution::Normal, 700, d, 21);
  std::vector<float> Vn = makeData(Distribution::Normal, 700, d, 22);
  std::mt19937 rng(3);
  for (uint64_t t = 0; t < 700;) {
    uint64_t n = std::min<uint64_t>(700 - t, 1 + rng() % 37);
    KVC_ASSERT_OK(kvc_codec_head_append(head.get(), &Kn[t * d], &Vn[t * d], n));
    t += n;
  }
  K.insert(K.end(), Kn.begin(), Kn.end());
  V.insert(V.end(), Vn.begin(), Vn.end());
  const uint64_t T = K.size() / d;
  ASSERT_EQ(kvc_codec_head_num_tokens(head.get()), T);

  kvc_codec_huffman_tables after_k, after_v;
  KVC_ASSERT_OK(kvc_codec_head_view(head.get(), KVC_CODEC_KEYS, nullptr, &after_k));
  KVC_ASSERT_OK(kvc_codec_head_view(head.get(), KVC_CODEC_VALUES, nullptr, &after_v));
  EXPECT_EQ(std::vector<uint8_t>(after_k.code_lengths,
                                 after_k.code_lengths + after_k.num_coded_symbols + 1),
            lengths_k);
  EXPECT_EQ(std::vector<uint8_t>(after_v.code_lengths,
                                 after_v.code_lengths + after_v.num_coded_symbols + 1),
            lengths_v);
  kvc_codec_stats st;
  KVC_ASSERT_OK(kvc_codec_head_stats(head.get(), &st));
  EXPECT_EQ(st.key_encoded_tokens, (T - 128) / 64 * 64);
  EXPECT_EQ(st.value_encoded_tokens, (T - 256) / 128 * 128);
  EXPECT_GT(st.key_escape_count, 1000u);
  EXPECT_GT(st.value_escape_count, 1000u);

  std::vector<float> Kd(T * d), Vd(T * d);
  KVC_ASSERT_OK(kvc_codec_head_decode(head.get(), Kd.data(), Vd.data()));
  std::vector<float> K16 = toHalf(K), V16 = toHalf(V);
  checkErrorBound(K, Kd, keyGroups(K16, st.key_encoded_tokens, d, 64, false), st.key_encoded_tokens,
                  d, ke, "K");
  checkErrorBound(V, Vd, tokenGroups(V16, st.value_encoded_tokens, d), st.value_encoded_tokens, d,
                  ve, "V");
  // A serialize/deserialize round trip recounts the same escapes.
  std::vector<uint8_t> bytes = serialize(head.get());
  kvc_codec_head* raw = nullptr;
  KVC_ASSERT_OK(kvc_codec_head_deserialize(bytes.data(), bytes.size(), &raw));
  HeadPtr copy(raw);
  kvc_codec_stats st2;
  KVC_ASSERT_OK(kvc_codec_head_stats(copy.get(), &st2));
  EXPECT_EQ(st2.key_escape_count, st.key_escape_count);
  EXPECT_EQ(st2.value_huffman_payload_bits, st.value_huffman_payload_bits);
}

TEST(Codec, IncrementalAppendCutsBlocksAtTheRightTime) {
  const uint32_t d = 8;
  HeadPtr head = makeHead(smallParams(d, 0.05f, 0.1f, KVC_CODEC_KEY_BLOCK));
  std::vector<float> K = makeData(Distribution::Normal, 1000, d, 1);
  std::vector<float> V = makeData(Distribution::Normal, 1000, d, 2);
  for (uint64_t t = 0; t < 1000; ++t) {
    KVC_ASSERT_OK(kvc_codec_head_append(head.get(), &K[t * d], &V[t * d], 1));
    kvc_codec_stats st;
    KVC_ASSERT_OK(kvc_codec_head_stats(head.get(), &st));
    uint64_t n = t + 1;
    uint64_t k_expected = n >= 192 ? (n - 128) / 64 * 64 : 0;
    uint64_t v_expected = n >= 384 ? (n - 256) / 128 * 128 : 0;
    ASSERT_EQ(st.key_encoded_tokens, k_expected) << n;
    ASSERT_EQ(st.value_encoded_tokens, v_expected) << n;
    ASSERT_EQ(st.key_recent_tokens + st.key_encoded_tokens, n);
  }
}

// ------------------------------------------------------------------------------------------
// Input validation

TEST(Codec, RejectsNonFiniteAndOutOfRangeInput) {
  const uint32_t d = 16;
  HeadPtr head = makeHead(smallParams(d, 0.05f, 0.1f, KVC_CODEC_KEY_BLOCK));
  std::vector<float> K = makeData(Distribution::Normal, 300, d, 1);
  std::vector<float> V = makeData(Distribution::Normal, 300, d, 2);
  KVC_ASSERT_OK(kvc_codec_head_append(head.get(), K.data(), V.data(), 300));
  std::vector<uint8_t> before = serialize(head.get());

  std::vector<float> k = makeData(Distribution::Normal, 10, d, 3), v = k;
  k[37] = std::nanf("");
  EXPECT_EQ(kvc_codec_head_append(head.get(), k.data(), v.data(), 10), KVC_CODEC_ERR_NONFINITE_INPUT);
  EXPECT_NE(std::string(kvc_codec_last_error()).find("non-finite"), std::string::npos)
      << kvc_codec_last_error();
  k[37] = 0.0f;
  v[5] = -INFINITY;
  EXPECT_EQ(kvc_codec_head_append(head.get(), k.data(), v.data(), 10), KVC_CODEC_ERR_NONFINITE_INPUT);
  EXPECT_NE(std::string(kvc_codec_last_error()).find("V"), std::string::npos);
  v[5] = 1e5f;
  EXPECT_EQ(kvc_codec_head_append(head.get(), k.data(), v.data(), 10), KVC_CODEC_ERR_OUT_OF_RANGE);
  EXPECT_EQ(serialize(head.get()), before) << "a rejected append must not change the head";

  std::vector<float> q(d, 1.0f), scores(300);
  q[3] = std::nanf("");
  EXPECT_EQ(kvc_codec_head_scores(head.get(), q.data(), 1, scores.data()),
            KVC_CODEC_ERR_NONFINITE_INPUT);
  std::vector<float> p(300, 0.0f), out(d);
  p[299] = INFINITY;
  EXPECT_EQ(kvc_codec_head_apply(head.get(), p.data(), 1, out.data()), KVC_CODEC_ERR_NONFINITE_INPUT);

  kvc_kivi_params kp;
  kvc_kivi_default_params(&kp, d, 2);
  kvc_kivi_head* kivi = nullptr;
  k[0] = std::nanf("");
  EXPECT_EQ(kvc_kivi_quantize(&kp, k.data(), v.data(), 10, &kivi), KVC_CODEC_ERR_NONFINITE_INPUT);
  EXPECT_EQ(kivi, nullptr);
}

TEST(Codec, RejectsInvalidParams) {
  kvc_codec_params p;
  kvc_codec_head* head = nullptr;
  kvc_codec_default_params(&p, 0);
  EXPECT_EQ(kvc_codec_head_create(&p, &head), KVC_CODEC_ERR_INVALID_ARGUMENT);
  kvc_codec_default_params(&p, 64);
  p.key_error = 0.0f;
  EXPECT_EQ(kvc_codec_head_create(&p, &head), KVC_CODEC_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(kvc_codec_last_error()).find("key_error"), std::string::npos);
  p.key_error = std::nanf("");
  EXPECT_EQ(kvc_codec_head_create(&p, &head), KVC_CODEC_ERR_INVALID_ARGUMENT);
  kvc_codec_default_params(&p, 64);
  p.value_block_tokens = 0;
  EXPECT_EQ(kvc_codec_head_create(&p, &head), KVC_CODEC_ERR_INVALID_ARGUMENT);
  kvc_codec_default_params(&p, 64);
  p.key_grouping = 7;
  EXPECT_EQ(kvc_codec_head_create(&p, &head), KVC_CODEC_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(head, nullptr);
  EXPECT_EQ(kvc_codec_head_create(nullptr, &head), KVC_CODEC_ERR_INVALID_ARGUMENT);
}

// ------------------------------------------------------------------------------------------
// Serialization and corruption

HeadPtr sampleHead(uint32_t d = 16, uint64_t T = 700, uint32_t grouping = KVC_CODEC_KEY_BLOCK) {
  kvc_codec_params p = smallParams(d, 0.05f, 0.1f, grouping);
  p.key_block_tokens = 32;
  p.value_block_tokens = 64;
  p.key_recent_tokens = 40;
  p.value_recent_tokens = 50;
  HeadPtr head = makeHead(p);
  std::vector<float> K = makeData(Distribution::StudentT, T, d, 8);
  std::vector<float> V = makeData(Distribution::Normal, T, d, 9);
  EXPECT_EQ(kvc_codec_head_append(head.get(), K.data(), V.data(), T / 2), KVC_CODEC_OK);
  EXPECT_EQ(kvc_codec_head_append(head.get(), &K[T / 2 * d], &V[T / 2 * d], T - T / 2), KVC_CODEC_OK);
  return head;
}

// If a (possibly mutated) buffer deserializes, the head must be fully usable and re-serialize to
// the same bytes; otherwise it must report CORRUPT. Returns whether it was accepted.
bool exerciseBuffer(const std::vector<uint8_t>& bytes) {
  kvc_codec_head* raw = nullptr;
  int status = kvc_codec_head_deserialize(bytes.data(), bytes.size(), &raw);
  if (status != KVC_CODEC_OK) {
    EXPECT_EQ(status, KVC_CODEC_ERR_CORRUPT) << kvc_codec_last_error();
    EXPECT_EQ(raw, nullptr);
    EXPECT_NE(std::string(kvc_codec_last_error()), "");
    return false;
  }
  HeadPtr head(raw);
  kvc_codec_params p;
  EXPECT_EQ(kvc_codec_head_params(head.get(), &p), KVC_CODEC_OK);
  uint64_t T = kvc_codec_head_num_tokens(head.get());
  if (T * p.head_dim <= (1u << 22)) {
    std::vector<float> K(T * p.head_dim), V(T * p.head_dim);
    EXPECT_EQ(kvc_codec_head_decode(head.get(), K.data(), V.data()), KVC_CODEC_OK)
        << kvc_codec_last_error();
  }
  EXPECT_EQ(serialize(head.get()), bytes);
  return true;
}

TEST(CodecSerialize, RoundTripIsExactAndDeterministic) {
  for (uint32_t grouping : {uint32_t(KVC_CODEC_KEY_BLOCK), uint32_t(KVC_CODEC_KEY_CHANNEL)}) {
    HeadPtr head = sampleHead(16, 700, grouping);
    std::vector<uint8_t> bytes = serialize(head.get());
    ASSERT_TRUE(exerciseBuffer(bytes));
    kvc_codec_head* raw = nullptr;
    KVC_ASSERT_OK(kvc_codec_head_deserialize(bytes.data(), bytes.size(), &raw));
    HeadPtr copy(raw);
    const uint64_t T = 700, d = 16;
    std::vector<float> K1(T * d), V1(T * d), K2(T * d), V2(T * d);
    KVC_ASSERT_OK(kvc_codec_head_decode(head.get(), K1.data(), V1.data()));
    KVC_ASSERT_OK(kvc_codec_head_decode(copy.get(), K2.data(), V2.data()));
    EXPECT_EQ(K1, K2);
    EXPECT_EQ(V1, V2);
    // Appending to the original and to the copy gives identical heads.
    std::vector<float> k = makeData(Distribution::Cauchy, 150, d, 77), v = k;
    KVC_ASSERT_OK(kvc_codec_head_append(head.get(), k.data(), v.data(), 150));
    KVC_ASSERT_OK(kvc_codec_head_append(copy.get(), k.data(), v.data(), 150));
    EXPECT_EQ(serialize(head.get()), serialize(copy.get()));
    // Capacity too small is reported, with the needed size.
    size_t size = 0;
    std::vector<uint8_t> small(10);
    EXPECT_EQ(kvc_codec_head_serialize(head.get(), small.data(), small.size(), &size),
              KVC_CODEC_ERR_BUFFER_TOO_SMALL);
    EXPECT_EQ(size, serialize(head.get()).size());
  }
}

TEST(CodecSerialize, EveryByteFlipIsRejected) {
  HeadPtr head = sampleHead(8, 400);
  std::vector<uint8_t> bytes = serialize(head.get());
  for (size_t i = 0; i < bytes.size(); ++i)
    for (uint8_t mask : {uint8_t(0x01), uint8_t(0x80), uint8_t(0xff)}) {
      std::vector<uint8_t> bad = bytes;
      bad[i] ^= mask;
      kvc_codec_head* raw = nullptr;
      ASSERT_EQ(kvc_codec_head_deserialize(bad.data(), bad.size(), &raw), KVC_CODEC_ERR_CORRUPT)
          << "flip at byte " << i;
      ASSERT_EQ(raw, nullptr);
    }
}

TEST(CodecSerialize, EveryTruncationIsRejected) {
  HeadPtr head = sampleHead(8, 400);
  std::vector<uint8_t> bytes = serialize(head.get());
  for (size_t n = 0; n < bytes.size(); ++n) {
    kvc_codec_head* raw = nullptr;
    ASSERT_EQ(kvc_codec_head_deserialize(bytes.data(), n, &raw), KVC_CODEC_ERR_CORRUPT) << n;
    // Truncated but re-sealed (checksum fixed): the structure checks must catch it.
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    reseal(cut);
    ASSERT_EQ(kvc_codec_head_deserialize(cut.data(), cut.size(), &raw), KVC_CODEC_ERR_CORRUPT) << n;
  }
  std::vector<uint8_t> longer = bytes;
  longer.insert(longer.end() - 4, {0, 0, 0, 0});
  reseal(longer);
  EXPECT_FALSE(exerciseBuffer(longer));
}

TEST(CodecSerialize, ResealedMutationsNeverCrash) {
  // With the checksum fixed up, every mutation reaches the structural validation and the
  // decoder: each buffer is either rejected as CORRUPT or yields a fully working head.
  HeadPtr head = sampleHead(8, 400);
  const std::vector<uint8_t> bytes = serialize(head.get());
  std::mt19937 rng(99);
  int accepted = 0, rejected = 0;
  for (size_t i = 0; i + 4 < bytes.size(); ++i) {
    std::vector<uint8_t> bad = bytes;
    bad[i] ^= uint8_t(1u << (i % 8));
    reseal(bad);
    (exerciseBuffer(bad) ? accepted : rejected)++;
  }
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<uint8_t> bad = bytes;
    int edits = 1 + rng() % 8;
    for (int e = 0; e < edits; ++e)
      bad[rng() % (bad.size() - 4)] = uint8_t(rng());
    reseal(bad);
    (exerciseBuffer(bad) ? accepted : rejected)++;
  }
  // Flips inside float payloads (mins, steps, fp16 recent) can be valid; structure flips not.
  EXPECT_GT(rejected, accepted / 4);
  EXPECT_GT(rejected, 100);
  std::printf("  [resealed mutations] accepted %d, rejected %d\n", accepted, rejected);
}

TEST(CodecSerialize, RandomGarbageIsRejected) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<uint8_t> junk(rng() % 600);
    for (uint8_t& b : junk)
      b = uint8_t(rng());
    if (trial % 2 && junk.size() >= 8) { // plausible header start
      std::memcpy(junk.data(), "KVCH", 4);
      uint32_t version = 1;
      std::memcpy(junk.data() + 4, &version, 4);
      reseal(junk);
    }
    kvc_codec_head* raw = nullptr;
    ASSERT_EQ(kvc_codec_head_deserialize(junk.data(), junk.size(), &raw), KVC_CODEC_ERR_CORRUPT);
  }
  kvc_codec_head* raw = nullptr;
  EXPECT_EQ(kvc_codec_head_deserialize(nullptr, 0, &raw), KVC_CODEC_ERR_CORRUPT);
}

TEST(CodecSerialize, TargetedStructuralCorruptionIsDetected) {
  HeadPtr head = sampleHead(8, 400);
  const std::vector<uint8_t> bytes = serialize(head.get());
  kvc_codec_stats st;
  KVC_ASSERT_OK(kvc_codec_head_stats(head.get(), &st));
  kvc_codec_huffman_tables kt;
  KVC_ASSERT_OK(kvc_codec_head_view(head.get(), KVC_CODEC_KEYS, nullptr, &kt));
  const size_t header = 72, key_codebook = header + 4; // docs/codec.md layout
  // A code length above the limit.
  std::vector<uint8_t> bad = bytes;
  bad[key_codebook] = 17;
  reseal(bad);
  EXPECT_FALSE(exerciseBuffer(bad));
  // Code lengths that violate Kraft (all 1).
  bad = bytes;
  for (uint32_t s = 0; s <= kt.num_coded_symbols; ++s)
    bad[key_codebook + s] = 1;
  reseal(bad);
  EXPECT_FALSE(exerciseBuffer(bad));
  // The key block count is one too large.
  bad = bytes;
  bad[48] += 1;
  reseal(bad);
  EXPECT_FALSE(exerciseBuffer(bad));
  // Token count inconsistent with the blocks + recent window.
  bad = bytes;
  bad[40] += 1;
  reseal(bad);
  EXPECT_FALSE(exerciseBuffer(bad));
}

// ------------------------------------------------------------------------------------------
// Fused kernels vs dense math on the decoded data

class FusedKernelTest : public ::testing::TestWithParam<std::tuple<uint32_t, uint32_t>> {};

TEST_P(FusedKernelTest, MatchesDenseMathOnDecodedData) {
  auto [grouping, d] = GetParam();
  const uint64_t T = 1500;
  const uint32_t g = 4; // GQA: 4 query heads share this KV head
  std::vector<float> K = makeData(Distribution::OutlierChannels, T, d, 31);
  std::vector<float> V = makeData(Distribution::StudentT, T, d, 32);
  HeadPtr head = makeHead(smallParams(d, 0.05f, 0.1f, grouping));
  KVC_ASSERT_OK(kvc_codec_head_append(head.get(), K.data(), V.data(), T - 70));
  for (uint64_t t = T - 70; t < T; ++t) // decode-phase appends
    KVC_ASSERT_OK(kvc_codec_head_append(head.get(), &K[t * d], &V[t * d], 1));
  std::vector<float> Kd(T * d), Vd(T * d);
  KVC_ASSERT_OK(kvc_codec_head_decode(head.get(), Kd.data(), Vd.data()));

  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  std::vector<float> q(g * d);
  for (float& x : q)
    x = normal(rng);
  std::vector<float> scores(g * T);
  KVC_ASSERT_OK(kvc_codec_head_scores(head.get(), q.data(), g, scores.data()));
  double worst = 0.0;
  for (uint32_t i = 0; i < g; ++i)
    for (uint64_t t = 0; t < T; ++t) {
      double dense = 0.0, magnitude = 0.0;
      for (uint32_t c = 0; c < d; ++c) {
        dense += double(q[i * d + c]) * Kd[t * d + c];
        magnitude += std::fabs(double(q[i * d + c]) * Kd[t * d + c]);
      }
      double rel = std::fabs(scores[i * T + t] - dense) / std::max(magnitude, 1e-30);
      worst = std::max(worst, rel);
    }
  EXPECT_LE(worst, 1e-5) << "q.K^T relative error";
  std::printf("  [fused] q.K^T worst relative error %.3g\n", worst);

  // Softmax-like weights, plus signed weights.
  std::vector<float> p(g * T);
  for (uint32_t i = 0; i < g; ++i) {
    double sum = 0.0;
    for (uint64_t t = 0; t < T; ++t)
      sum += (p[i * T + t] = std::exp(scores[i * T + t] / std::sqrt(float(d)) * 0.1f));
    for (uint64_t t = 0; t < T; ++t)
      p[i * T + t] = float(p[i * T + t] / sum);
  }
  for (uint64_t t = 0; t < T; t += 7)
    p[3 * T + t] = -p[3 * T + t];
  std::vector<float> out(g * d);
  KVC_ASSERT_OK(kvc_codec_head_apply(head.get(), p.data(), g, out.data()));
  worst = 0.0;
  for (uint32_t i = 0; i < g; ++i)
    for (uint32_t c = 0; c < d; ++c) {
      double dense = 0.0, magnitude = 0.0;
      for (uint64_t t = 0; t < T; ++t) {
        dense += double(p[i * T + t]) * Vd[t * d + c];
        magnitude += std::fabs(double(p[i * T + t]) * Vd[t * d + c]);
      }
      worst = std::max(worst, std::fabs(out[i * d + c] - dense) / std::max(magnitude, 1e-30));
    }
  EXPECT_LE(worst, 1e-5) << "p.V relative error";
  std::printf("  [fused] p.V worst relative error %.3g\n", worst);
}

INSTANTIATE_TEST_SUITE_P(Codec, FusedKernelTest,
                         ::testing::Combine(::testing::Values(uint32_t(KVC_CODEC_KEY_BLOCK),
                                                              uint32_t(KVC_CODEC_KEY_CHANNEL)),
                                            ::testing::Values(64u, 128u)));

// ------------------------------------------------------------------------------------------
// Accounting

TEST(CodecStats, SumsMatchTheSerializedSize) {
  for (uint64_t T : {0u, 10u, 200u, 700u, 3000u}) {
    SCOPED_TRACE(T);
    const uint32_t d = 64;
    HeadPtr head = makeHead(smallParams(d, 0.05f, 0.1f, KVC_CODEC_KEY_BLOCK));
    std::vector<float> K = makeData(Distribution::Normal, T, d, 1);
    std::vector<float> V = makeData(Distribution::Normal, T, d, 2);
    KVC_ASSERT_OK(kvc_codec_head_append(head.get(), K.data(), V.data(), T));
    kvc_codec_stats st;
    KVC_ASSERT_OK(kvc_codec_head_stats(head.get(), &st));
    EXPECT_EQ(st.total_bytes, serialize(head.get()).size());
    EXPECT_EQ(st.total_bytes, st.bitstream_bytes + st.offset_bytes + st.quant_param_bytes +
                                  st.codebook_bytes + st.recent_bytes + st.header_bytes);
    EXPECT_EQ(st.fp16_bytes, 4 * T * d);
    EXPECT_EQ(st.recent_bytes, 2 * (st.key_recent_tokens + st.value_recent_tokens) * d);
    if (T == 0)
      continue;
    EXPECT_DOUBLE_EQ(st.compression_ratio, double(st.fp16_bytes) / st.total_bytes);
    EXPECT_DOUBLE_EQ(st.bits_per_element, 8.0 * st.total_bytes / (2.0 * T * d));
    kvc_codec_stream_view kv, vv;
    KVC_ASSERT_OK(kvc_codec_head_view(head.get(), KVC_CODEC_KEYS, &kv, nullptr));
    KVC_ASSERT_OK(kvc_codec_head_view(head.get(), KVC_CODEC_VALUES, &vv, nullptr));
    EXPECT_EQ(st.bitstream_bytes, 4 * (kv.num_words + vv.num_words));
    EXPECT_EQ(st.offset_bytes, 4 * (kv.num_blocks + 1 + uint64_t(kv.num_blocks) * kv.vectors_per_block +
                                    vv.num_blocks + 1 + uint64_t(vv.num_blocks) * vv.vectors_per_block));
    EXPECT_EQ(st.quant_param_bytes, 8 * (uint64_t(kv.num_blocks) * kv.params_per_block +
                                         uint64_t(vv.num_blocks) * vv.params_per_block));
    EXPECT_EQ(st.key_fixed_width_bits, 5u);   // eps 0.05: symbols 0..20
    EXPECT_EQ(st.value_fixed_width_bits, 4u); // eps 0.1: symbols 0..10
    EXPECT_LE(st.key_huffman_payload_bits, 32 * kv.num_words);
    EXPECT_GT(st.key_huffman_payload_bits + 32, 32 * kv.num_words - 32 * kv.num_blocks);
    if (T == 3000) {
      // Huffman beats fixed width on Gaussian data, and the whole thing beats fp16 by > 3x.
      EXPECT_LT(st.key_huffman_payload_bits, st.key_encoded_tokens * d * st.key_fixed_width_bits);
      EXPECT_GT(st.compression_ratio, 3.0);
      EXPECT_GT(st.compression_ratio, st.quant_only_compression_ratio);
    }
  }
}

// ------------------------------------------------------------------------------------------
// KIVI baseline

class KiviTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(KiviTest, ErrorWithinHalfAStep) {
  const uint32_t bits = GetParam();
  const uint32_t d = 32;
  const uint64_t T = 500;
  std::vector<float> K = makeData(Distribution::OutlierChannels, T, d, 41);
  std::vector<float> V = makeData(Distribution::StudentT, T, d, 42);
  kvc_kivi_params params;
  kvc_kivi_default_params(&params, d, bits);
  kvc_kivi_head* raw = nullptr;
  KVC_ASSERT_OK(kvc_kivi_quantize(&params, K.data(), V.data(), T, &raw));
  KiviPtr kivi(raw);
  std::vector<float> Kd(T * d), Vd(T * d);
  KVC_ASSERT_OK(kvc_kivi_dequantize(kivi.get(), Kd.data(), Vd.data()));
  const uint64_t k_quant = (T - 128) / 32 * 32, v_quant = T - 128;
  std::vector<float> K16 = toHalf(K), V16 = toHalf(V);
  const double levels = double((1u << bits) - 1);
  double tight = 0.0;
  auto check = [&](const std::vector<float>& X16, const std::vector<float>& Xd, uint64_t i,
                   double lo, double hi) {
    double err = std::fabs(double(X16[i]) - Xd[i]);
    double half_step = 0.5 * (hi - lo) / levels;
    double bound = half_step * (1.0 + 0x1p-20) + 0x1p-22 * std::max(std::fabs(lo), std::fabs(hi));
    EXPECT_LE(err, bound) << "element " << i;
    if (hi > lo)
      tight = std::max(tight, err / half_step);
  };
  for (uint64_t g = 0; g < k_quant / 32; ++g)
    for (uint32_t c = 0; c < d; ++c) {
      double lo = INFINITY, hi = -INFINITY;
      for (uint64_t t = g * 32; t < g * 32 + 32; ++t) {
        lo = std::min<double>(lo, K16[t * d + c]);
        hi = std::max<double>(hi, K16[t * d + c]);
      }
      for (uint64_t t = g * 32; t < g * 32 + 32; ++t)
        check(K16, Kd, t * d + c, lo, hi);
    }
  for (uint64_t t = 0; t < v_quant; ++t) {
    double lo = INFINITY, hi = -INFINITY;
    for (uint32_t c = 0; c < d; ++c) {
      lo = std::min<double>(lo, V16[t * d + c]);
      hi = std::max<double>(hi, V16[t * d + c]);
    }
    for (uint32_t c = 0; c < d; ++c)
      check(V16, Vd, t * d + c, lo, hi);
  }
  EXPECT_GT(tight, 0.5);
  for (uint64_t i = k_quant * d; i < T * d; ++i)
    ASSERT_EQ(Kd[i], K16[i]);
  for (uint64_t i = v_quant * d; i < T * d; ++i)
    ASSERT_EQ(Vd[i], V16[i]);

  kvc_codec_stats st;
  KVC_ASSERT_OK(kvc_kivi_stats(kivi.get(), &st));
  EXPECT_EQ(st.key_encoded_tokens, k_quant);
  EXPECT_EQ(st.value_encoded_tokens, v_quant);
  EXPECT_EQ(st.bitstream_bytes, (k_quant * d * bits + 7) / 8 + (v_quant * d * bits + 7) / 8);
  EXPECT_EQ(st.quant_param_bytes, 8 * (k_quant / 32 * d + v_quant));
  EXPECT_EQ(st.recent_bytes, 2 * d * ((T - k_quant) + (T - v_quant)));
  EXPECT_EQ(st.total_bytes, st.bitstream_bytes + st.quant_param_bytes + st.recent_bytes + st.header_bytes);
  EXPECT_DOUBLE_EQ(st.compression_ratio, double(4 * T * d) / st.total_bytes);
}

INSTANTIATE_TEST_SUITE_P(Codec, KiviTest, ::testing::Values(2u, 3u, 4u, 8u));

TEST(Kivi, RejectsBadBits) {
  kvc_kivi_params params;
  kvc_kivi_default_params(&params, 8, 5);
  std::vector<float> K(80, 0.0f);
  kvc_kivi_head* raw = nullptr;
  EXPECT_EQ(kvc_kivi_quantize(&params, K.data(), K.data(), 10, &raw), KVC_CODEC_ERR_INVALID_ARGUMENT);
}

} // namespace
