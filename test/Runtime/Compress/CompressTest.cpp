//===- CompressTest.cpp - unit tests of the compression library (C ABI) ---===//
#include "kvc/Runtime/Compress.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace {

using Floats = std::vector<float>;

Floats randomMatrix(std::mt19937& rng, int64_t rows, int64_t cols, float stddev = 1.f,
                    float mean = 0.f) {
  std::normal_distribution<float> normal(mean, stddev);
  Floats out(rows * cols);
  for (float& x : out) x = normal(rng);
  return out;
}

/// A head with a few high-norm keys so attention is not uniform.
struct Head {
  int64_t T, d, dv, m;
  Floats keys, values, queries;
};

Head makeHead(unsigned seed, int64_t T, int64_t d, int64_t dv, int64_t m) {
  std::mt19937 rng(seed);
  Head h{T, d, dv, m, randomMatrix(rng, T, d), randomMatrix(rng, T, dv),
         randomMatrix(rng, m, d, 1.f, 0.3f)};
  std::uniform_real_distribution<float> u(0.5f, 2.5f);
  for (int64_t t = 0; t < T; ++t) {
    const float s = u(rng);
    for (int64_t i = 0; i < d; ++i) h.keys[t * d + i] *= s;
  }
  return h;
}

kvc_compress_options options(int method, int64_t nSink = 4, int64_t nRecent = 16) {
  kvc_compress_options o;
  kvc_compress_default_options(&o);
  o.method = method;
  o.n_sink = nSink;
  o.n_recent = nRecent;
  return o;
}

struct Result {
  int status;
  Floats keys, values;
  std::vector<int64_t> indices;
  kvc_compress_stats stats;
};

Result compress(const Head& h, int64_t budget, const kvc_compress_options& o) {
  Result r;
  const int64_t rows = std::max<int64_t>(budget, 1);
  r.keys.assign(rows * h.d, -777.f);
  r.values.assign(rows * h.dv, -777.f);
  r.indices.assign(rows, -777);
  r.status = kvc_compress_head(h.keys.data(), h.values.data(), h.T, h.d, h.dv,
                               h.m ? h.queries.data() : nullptr, h.m, budget, &o, r.keys.data(),
                               r.values.data(), r.indices.data(), &r.stats);
  return r;
}

bool allFinite(const Floats& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

/// Training loss of a compressed output recomputed independently through the C ABI:
/// targets from full attention, then kvc_compress_sculpt_loss on [sinks; middle; recent].
double recomputeLoss(const Head& h, const Result& r, int64_t nSink, int64_t nRecent,
                     double lseWeight) {
  Floats Y(h.m * h.dv), z(h.m);
  EXPECT_EQ(0, kvc_compress_attention(h.queries.data(), h.m, h.keys.data(), h.values.data(), h.T,
                                      nullptr, nullptr, 0, h.d, h.dv, 0.f, Y.data(), z.data()));
  const int64_t n = r.stats.n_out, nMid = n - nSink - nRecent;
  Floats retK, retV;
  for (int64_t i = 0; i < n; ++i) {
    if (i >= nSink && i < nSink + nMid) continue;
    retK.insert(retK.end(), r.keys.begin() + i * h.d, r.keys.begin() + (i + 1) * h.d);
    retV.insert(retV.end(), r.values.begin() + i * h.dv, r.values.begin() + (i + 1) * h.dv);
  }
  double loss = -1;
  EXPECT_EQ(0, kvc_compress_sculpt_loss(h.queries.data(), h.m, r.keys.data() + nSink * h.d,
                                        r.values.data() + nSink * h.dv, nMid, retK.data(),
                                        retV.data(), nSink + nRecent, Y.data(), z.data(), h.d,
                                        h.dv, 0.f, lseWeight, &loss, nullptr));
  return loss;
}

//===-- Value fit -------------------------------------------------------===//

TEST(CompressFitValues, RecoversValuesGeneratedThroughTheAttentionMap) {
  std::mt19937 rng(7);
  const int64_t m = 300, d = 16, dv = 8, tc = 12, r = 4;
  const Floats Q = randomMatrix(rng, m, d), Ck = randomMatrix(rng, tc, d, 1.5f);
  const Floats Kr = randomMatrix(rng, r, d), Vr = randomMatrix(rng, r, dv);
  const Floats trueCv = randomMatrix(rng, tc, dv);
  // Y = A_c Cv + A_r Vr with A = softmax over [Ck; Kr]: exactly attention over the pairs.
  Floats Y(m * dv);
  ASSERT_EQ(0, kvc_compress_attention(Q.data(), m, Ck.data(), trueCv.data(), tc, Kr.data(),
                                      Vr.data(), r, d, dv, 0.f, Y.data(), nullptr));
  Floats fitted(tc * dv, 0.f);
  ASSERT_EQ(0, kvc_compress_fit_values(Q.data(), m, Ck.data(), tc, Kr.data(), Vr.data(), r,
                                       Y.data(), d, dv, 0.f, 1e-12, fitted.data()))
      << kvc_compress_last_error();
  float maxErr = 0;
  for (size_t i = 0; i < fitted.size(); ++i) maxErr = std::max(maxErr, std::abs(fitted[i] - trueCv[i]));
  EXPECT_LT(maxErr, 1e-4f);

  // The default relative ridge (1e-3) biases the solution only slightly.
  ASSERT_EQ(0, kvc_compress_fit_values(Q.data(), m, Ck.data(), tc, Kr.data(), Vr.data(), r,
                                       Y.data(), d, dv, 0.f, 1e-3, fitted.data()));
  maxErr = 0;
  for (size_t i = 0; i < fitted.size(); ++i) maxErr = std::max(maxErr, std::abs(fitted[i] - trueCv[i]));
  EXPECT_LT(maxErr, 0.2f);
  EXPECT_GT(maxErr, 1e-6f);  // and the ridge is really applied
}

//===-- Gradient --------------------------------------------------------===//

class CompressGradient : public ::testing::TestWithParam<double> {};

TEST_P(CompressGradient, MatchesCentralFiniteDifferences) {
  const double lseWeight = GetParam();
  std::mt19937 rng(11);
  const int64_t m = 40, d = 8, dv = 5, tc = 6, r = 3;
  const Floats Q = randomMatrix(rng, m, d), Kr = randomMatrix(rng, r, d);
  const Floats Vr = randomMatrix(rng, r, dv), Cv = randomMatrix(rng, tc, dv, 2.f);
  const Floats Y = randomMatrix(rng, m, dv), z = randomMatrix(rng, m, 1, 1.f, 2.f);
  Floats Ck = randomMatrix(rng, tc, d, 1.5f);
  const float scale = 0.5f;
  double loss = 0;
  Floats grad(tc * d, 0.f);
  ASSERT_EQ(0, kvc_compress_sculpt_loss(Q.data(), m, Ck.data(), Cv.data(), tc, Kr.data(),
                                        Vr.data(), r, Y.data(), z.data(), d, dv, scale,
                                        lseWeight, &loss, grad.data()))
      << kvc_compress_last_error();
  double errSq = 0, gradSq = 0;
  const float h = 2e-3f;
  for (int64_t k = 0; k < tc * d; ++k) {
    const float saved = Ck[k];
    double plus = 0, minus = 0;
    Ck[k] = saved + h;
    ASSERT_EQ(0, kvc_compress_sculpt_loss(Q.data(), m, Ck.data(), Cv.data(), tc, Kr.data(),
                                          Vr.data(), r, Y.data(), z.data(), d, dv, scale,
                                          lseWeight, &plus, nullptr));
    Ck[k] = saved - h;
    ASSERT_EQ(0, kvc_compress_sculpt_loss(Q.data(), m, Ck.data(), Cv.data(), tc, Kr.data(),
                                          Vr.data(), r, Y.data(), z.data(), d, dv, scale,
                                          lseWeight, &minus, nullptr));
    Ck[k] = saved;
    const double fd = (plus - minus) / (double(Ck[k] + h) - double(Ck[k] - h));
    errSq += (fd - grad[k]) * (fd - grad[k]);
    gradSq += double(grad[k]) * grad[k];
    EXPECT_NEAR(fd, grad[k], 2e-3 + 2e-2 * std::abs(fd)) << "coordinate " << k;
  }
  EXPECT_GT(gradSq, 1e-4);  // a meaningful gradient, not ~0 everywhere
  EXPECT_LT(std::sqrt(errSq / gradSq), 5e-3);
}

INSTANTIATE_TEST_SUITE_P(LseWeights, CompressGradient, ::testing::Values(0.0, 1.0));

//===-- KVSculpt optimization ------------------------------------------------===//

TEST(CompressSculpt, LossDecreasesMonotonicallyFromSelectFit) {
  const Head h = makeHead(3, 256, 32, 32, 96);
  kvc_compress_options o = options(KVC_COMPRESS_SCULPT);
  o.n_query_heads = 2;
  const int64_t budget = 80;

  kvc_compress_options sf = o;
  sf.method = KVC_COMPRESS_SELECT_FIT;
  const Result selectFit = compress(h, budget, sf);
  ASSERT_EQ(0, selectFit.status) << kvc_compress_last_error();

  double previous = std::numeric_limits<double>::infinity();
  for (int rounds = 0; rounds <= 6; ++rounds) {
    o.sculpt_rounds = rounds;
    const Result r = compress(h, budget, o);
    ASSERT_EQ(0, r.status) << kvc_compress_last_error();
    // The start is exactly Select+Fit.
    EXPECT_NEAR(r.stats.initial_loss, selectFit.stats.final_loss,
                1e-9 * selectFit.stats.final_loss);
    EXPECT_LE(r.stats.final_loss, previous) << "rounds " << rounds;
    EXPECT_LE(r.stats.final_loss, r.stats.initial_loss);
    // The reported loss is the loss of the returned pairs.
    EXPECT_NEAR(recomputeLoss(h, r, 4, 16, o.lse_weight), r.stats.final_loss, 1e-4 * r.stats.final_loss);
    previous = r.stats.final_loss;
    if (rounds == 0) EXPECT_EQ(r.stats.final_loss, r.stats.initial_loss);
  }
  // Six rounds of 5 L-BFGS steps improve clearly on Select+Fit.
  EXPECT_LT(previous, 0.7 * selectFit.stats.final_loss);
}

TEST(CompressSculpt, DivergingOptimizationReturnsFiniteBestIterate) {
  const Head h = makeHead(5, 200, 16, 16, 64);
  for (int nanAfter : {0, 1, 4}) {
    kvc_compress_options o = options(KVC_COMPRESS_SCULPT);
    o.sculpt_rounds = 4;
    o.debug_nan_after_evals = nanAfter;
    const Result r = compress(h, 60, o);
    ASSERT_EQ(0, r.status) << kvc_compress_last_error();
    EXPECT_EQ(1, r.stats.fell_back);
    EXPECT_TRUE(allFinite(Floats(r.keys.begin(), r.keys.begin() + 60 * h.d)));
    EXPECT_TRUE(allFinite(Floats(r.values.begin(), r.values.begin() + 60 * h.dv)));
    EXPECT_TRUE(std::isfinite(r.stats.final_loss));
    EXPECT_LE(r.stats.final_loss, r.stats.initial_loss);
    EXPECT_NEAR(recomputeLoss(h, r, 4, 16, o.lse_weight), r.stats.final_loss, 1e-4 * r.stats.final_loss);
  }
  kvc_compress_options clean = options(KVC_COMPRESS_SCULPT);
  clean.sculpt_rounds = 4;
  EXPECT_EQ(0, compress(h, 60, clean).stats.fell_back);
}

TEST(CompressSculpt, OutputLayoutMarksSynthesizedSlots) {
  const Head h = makeHead(9, 120, 16, 8, 32);
  kvc_compress_options o = options(KVC_COMPRESS_SCULPT, 2, 8);
  o.sculpt_rounds = 2;
  const Result r = compress(h, 30, o);
  ASSERT_EQ(0, r.status) << kvc_compress_last_error();
  EXPECT_EQ(30, r.stats.n_out);
  for (int64_t i = 0; i < 30; ++i) {
    const int64_t expected = i < 2 ? i : i < 22 ? -1 : 120 - 30 + i;
    EXPECT_EQ(expected, r.indices[i]) << i;
  }
  // Retained rows are exact copies.
  for (int64_t i : {0, 1, 22, 29})
    for (int64_t c = 0; c < h.d; ++c)
      ASSERT_EQ(r.keys[i * h.d + c], h.keys[r.indices[i] * h.d + c]);
}

//===-- Selection methods -------------------------------------------------===//

TEST(CompressSelection, StreamingKeepsExactlySinksAndRecent) {
  const Head h = makeHead(1, 100, 8, 4, 0);
  const Result r = compress(h, 40, options(KVC_COMPRESS_STREAMING, 4, 16));
  ASSERT_EQ(0, r.status) << kvc_compress_last_error();
  ASSERT_EQ(40, r.stats.n_out);
  std::vector<int64_t> expected = {0, 1, 2, 3};
  for (int64_t i = 64; i < 100; ++i) expected.push_back(i);
  EXPECT_EQ(expected, std::vector<int64_t>(r.indices.begin(), r.indices.begin() + 40));
  for (int64_t i = 0; i < 40; ++i)
    for (int64_t c = 0; c < h.d; ++c)
      ASSERT_EQ(r.keys[i * h.d + c], h.keys[expected[i] * h.d + c]);
}

/// Head whose key `planted` is aligned with every query: it draws most attention.
Head plantedHead(int64_t planted) {
  Head h = makeHead(21, 200, 16, 8, 48);
  std::vector<double> meanQ(h.d, 0.0);
  for (int64_t i = 0; i < h.m; ++i)
    for (int64_t c = 0; c < h.d; ++c) meanQ[c] += h.queries[i * h.d + c] / double(h.m);
  double norm = 0;
  for (double x : meanQ) norm += x * x;
  for (int64_t c = 0; c < h.d; ++c) h.keys[planted * h.d + c] = float(12.0 * meanQ[c] / std::sqrt(norm));
  return h;
}

TEST(CompressSelection, H2OPicksPlantedHeavyHitter) {
  const Head h = plantedHead(77);
  const Result r = compress(h, 4 + 16 + 1, options(KVC_COMPRESS_H2O));
  ASSERT_EQ(0, r.status) << kvc_compress_last_error();
  EXPECT_EQ(77, r.indices[4]);
}

TEST(CompressSelection, SnapKVPicksPlantedKeyAndItsNeighbourhood) {
  const Head h = plantedHead(77);
  for (int pool : {KVC_COMPRESS_POOL_AVG, KVC_COMPRESS_POOL_MAX}) {
    kvc_compress_options o = options(KVC_COMPRESS_SNAPKV);
    o.snapkv_window = 8;
    o.snapkv_pool = pool;
    const Result r = compress(h, 4 + 16 + 5, o);
    ASSERT_EQ(0, r.status) << kvc_compress_last_error();
    const std::vector<int64_t> middle(r.indices.begin() + 4, r.indices.begin() + 9);
    EXPECT_NE(middle.end(), std::find(middle.begin(), middle.end(), 77)) << "pool " << pool;
    // Pooling over kernel 5 makes the planted key's neighbours win the other slots.
    EXPECT_EQ((std::vector<int64_t>{75, 76, 77, 78, 79}), middle) << "pool " << pool;
  }
}

TEST(CompressSelection, SelectFitKeepsPlantedKeyAndImprovesOnOriginalValues) {
  const Head h = plantedHead(77);
  const Result sf = compress(h, 4 + 16 + 10, options(KVC_COMPRESS_SELECT_FIT));
  ASSERT_EQ(0, sf.status) << kvc_compress_last_error();
  const std::vector<int64_t> middle(sf.indices.begin() + 4, sf.indices.begin() + 14);
  EXPECT_NE(middle.end(), std::find(middle.begin(), middle.end(), 77));
  EXPECT_TRUE(std::is_sorted(middle.begin(), middle.end()));
  // Refit values beat keeping the original values of the same keys.
  EXPECT_LT(sf.stats.final_loss, recomputeLoss(h, [&] {
              Result copy = sf;
              for (int64_t i = 4; i < 14; ++i)
                std::copy_n(h.values.begin() + copy.indices[i] * h.dv, h.dv,
                            copy.values.begin() + i * h.dv);
              return copy;
            }(), 4, 16, options(KVC_COMPRESS_SELECT_FIT).lse_weight));
}

//===-- Defined behaviour at the edges ----------------------------------------===//

TEST(CompressEdges, NonFiniteInputIsRejected) {
  for (int which = 0; which < 3; ++which) {
    Head h = makeHead(2, 50, 8, 8, 16);
    Floats& target = which == 0 ? h.keys : which == 1 ? h.values : h.queries;
    target[17] = which == 2 ? std::numeric_limits<float>::infinity()
                            : std::numeric_limits<float>::quiet_NaN();
    const Result r = compress(h, 30, options(KVC_COMPRESS_SCULPT));
    EXPECT_EQ(KVC_COMPRESS_ERR_NONFINITE_INPUT, r.status);
    const std::string message = kvc_compress_last_error();
    EXPECT_NE(std::string::npos,
              message.find(which == 0 ? "keys" : which == 1 ? "values" : "queries"))
        << message;
  }
}

TEST(CompressEdges, BudgetAtLeastSeqLenCopiesTheCache) {
  const Head h = makeHead(4, 50, 8, 6, 16);
  for (int64_t budget : {50, 64}) {
    const Result r = compress(h, budget, options(KVC_COMPRESS_SCULPT));
    ASSERT_EQ(0, r.status) << kvc_compress_last_error();
    EXPECT_EQ(1, r.stats.exact_copy);
    EXPECT_EQ(50, r.stats.n_out);
    EXPECT_EQ(h.keys, Floats(r.keys.begin(), r.keys.begin() + 50 * h.d));
    EXPECT_EQ(h.values, Floats(r.values.begin(), r.values.begin() + 50 * h.dv));
    for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(i, r.indices[i]);
    EXPECT_EQ(0.0, r.stats.final_loss);
  }
  const Result compressed = compress(h, 49, options(KVC_COMPRESS_SCULPT));
  EXPECT_EQ(0, compressed.stats.exact_copy);
}

TEST(CompressEdges, BudgetBelowSinksPlusRecentIsAnError) {
  const Head h = makeHead(4, 100, 8, 8, 16);
  const Result r = compress(h, 19, options(KVC_COMPRESS_H2O, 4, 16));
  EXPECT_EQ(KVC_COMPRESS_ERR_BUDGET, r.status);
  EXPECT_NE(std::string::npos, std::string(kvc_compress_last_error()).find("n_sink + n_recent"));
  EXPECT_EQ(0, compress(h, 20, options(KVC_COMPRESS_H2O, 4, 16)).status);
  // Budget 0: an error while sinks/recent need room, an empty result otherwise.
  EXPECT_EQ(KVC_COMPRESS_ERR_BUDGET, compress(h, 0, options(KVC_COMPRESS_SCULPT)).status);
  const Result empty = compress(h, 0, options(KVC_COMPRESS_SCULPT, 0, 0));
  EXPECT_EQ(0, empty.status) << kvc_compress_last_error();
  EXPECT_EQ(0, empty.stats.n_out);
  EXPECT_EQ(-777.f, empty.keys[0]);
}

TEST(CompressEdges, EmptyHeadAndMissingQueries) {
  const Head empty = makeHead(4, 0, 8, 8, 16);
  const Result r = compress(empty, 10, options(KVC_COMPRESS_SCULPT));
  EXPECT_EQ(0, r.status) << kvc_compress_last_error();
  EXPECT_EQ(0, r.stats.n_out);

  const Head noQueries = makeHead(4, 100, 8, 8, 0);
  for (int method : {KVC_COMPRESS_SNAPKV, KVC_COMPRESS_H2O, KVC_COMPRESS_SELECT_FIT,
                     KVC_COMPRESS_SCULPT})
    EXPECT_EQ(KVC_COMPRESS_ERR_NO_QUERIES, compress(noQueries, 50, options(method)).status);
  EXPECT_EQ(0, compress(noQueries, 50, options(KVC_COMPRESS_STREAMING)).status);
}

TEST(CompressEdges, BadOptionsAreRejected) {
  const Head h = makeHead(4, 100, 8, 8, 16);
  kvc_compress_options o = options(KVC_COMPRESS_SCULPT);
  o.method = 99;
  EXPECT_EQ(KVC_COMPRESS_ERR_INVALID_ARGUMENT, compress(h, 50, o).status);
  o = options(KVC_COMPRESS_SNAPKV);
  o.n_query_heads = 3;  // 16 queries are not 3 blocks
  EXPECT_EQ(KVC_COMPRESS_ERR_INVALID_ARGUMENT, compress(h, 50, o).status);
}

//===-- Batch ------------------------------------------------------------===//

TEST(CompressBatch, RaggedBudgetsAreHonouredAndMatchSingleHeadCalls) {
  std::vector<Head> heads;
  const std::vector<int64_t> lengths = {300, 80, 150, 40, 220};
  const std::vector<int64_t> budgets = {90, 30, 150, 50, 21};  // incl. t = T and t > T
  for (size_t i = 0; i < lengths.size(); ++i) heads.push_back(makeHead(100 + i, lengths[i], 16, 12, 32));
  kvc_compress_options o = options(KVC_COMPRESS_SCULPT, 4, 16);
  o.sculpt_rounds = 2;
  std::vector<kvc_compress_job> jobs(heads.size());
  std::vector<Floats> outK(heads.size()), outV(heads.size());
  std::vector<std::vector<int64_t>> outI(heads.size());
  for (size_t i = 0; i < heads.size(); ++i) {
    outK[i].assign((budgets[i] + 1) * 16, -777.f);
    outV[i].assign((budgets[i] + 1) * 12, -777.f);
    outI[i].assign(budgets[i] + 1, -777);
    jobs[i] = kvc_compress_job{};
    jobs[i].keys = heads[i].keys.data();
    jobs[i].values = heads[i].values.data();
    jobs[i].queries = heads[i].queries.data();
    jobs[i].seq_len = lengths[i];
    jobs[i].head_dim = 16;
    jobs[i].value_dim = 12;
    jobs[i].n_queries = 32;
    jobs[i].budget = budgets[i];
    jobs[i].out_keys = outK[i].data();
    jobs[i].out_values = outV[i].data();
    jobs[i].out_indices = outI[i].data();
  }
  ASSERT_EQ(0, kvc_compress_heads(jobs.data(), int64_t(jobs.size()), &o, 2))
      << kvc_compress_last_error();
  for (size_t i = 0; i < heads.size(); ++i) {
    const int64_t expectedRows = std::min(budgets[i], lengths[i]);
    EXPECT_EQ(0, jobs[i].status);
    EXPECT_EQ(expectedRows, jobs[i].stats.n_out) << "job " << i;
    EXPECT_EQ(budgets[i] >= lengths[i] ? 1 : 0, jobs[i].stats.exact_copy);
    EXPECT_NE(-777.f, outK[i][expectedRows * 16 - 1]);
    EXPECT_EQ(-777.f, outK[i][expectedRows * 16]);  // nothing written past the budget
    const Result single = compress(heads[i], budgets[i], o);
    ASSERT_EQ(0, single.status);
    for (int64_t k = 0; k < expectedRows * 16; ++k) ASSERT_EQ(single.keys[k], outK[i][k]) << i;
    for (int64_t k = 0; k < expectedRows * 12; ++k) ASSERT_EQ(single.values[k], outV[i][k]) << i;
  }
  // A failing job reports its index and status.
  jobs[1].budget = 5;
  EXPECT_EQ(KVC_COMPRESS_ERR_BUDGET, kvc_compress_heads(jobs.data(), int64_t(jobs.size()), &o, 2));
  EXPECT_NE(std::string::npos, std::string(kvc_compress_last_error()).find("job 1"));
  EXPECT_EQ(KVC_COMPRESS_ERR_BUDGET, jobs[1].status);
}

//===-- Budget allocation -------------------------------------------------===//

int64_t sum(const std::vector<int64_t>& v) { return std::accumulate(v.begin(), v.end(), int64_t(0)); }

TEST(CompressBudgets, SumIsExactAndBoundsHold) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int64_t> len(20, 400);
  std::lognormal_distribution<double> diff(0.0, 2.0);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 1 + trial % 17;
    std::vector<int64_t> T(n);
    std::vector<double> e(n);
    for (int c = 0; c < n; ++c) {
      T[c] = len(rng);
      e[c] = trial % 5 == 0 && c == 0 ? 0.0 : diff(rng);
    }
    const int64_t tMin = 10 + trial % 30;
    int64_t lo = 0;
    for (int64_t t : T) lo += std::min(tMin, t);
    const int64_t total = lo + (sum(T) - lo) * (trial % 11) / 10;
    std::vector<int64_t> budgets(n, -1);
    double spread = 0;
    ASSERT_EQ(0, kvc_compress_allocate_budgets(e.data(), T.data(), n, total, tMin,
                                               0.25 * (trial % 5), budgets.data(), &spread))
        << kvc_compress_last_error();
    EXPECT_EQ(total, sum(budgets)) << "trial " << trial;
    for (int c = 0; c < n; ++c) {
      EXPECT_GE(budgets[c], std::min(tMin, T[c])) << "trial " << trial;
      EXPECT_LE(budgets[c], T[c]) << "trial " << trial;
    }
    EXPECT_GE(spread, 1.0);
  }
}

TEST(CompressBudgets, ProportionalToSizeTimesDifficultyPowerAlpha) {
  const std::vector<int64_t> T = {1000, 1000, 2000};
  const std::vector<double> e = {1.0, 4.0, 1.0};
  std::vector<int64_t> b(3);
  double spread = 0;
  // weights T*e^0.5 = 1000, 2000, 2000 -> 200, 400, 400 of 1000.
  ASSERT_EQ(0, kvc_compress_allocate_budgets(e.data(), T.data(), 3, 1000, 0, 0.5, b.data(), &spread));
  EXPECT_EQ((std::vector<int64_t>{200, 400, 400}), b);
  EXPECT_DOUBLE_EQ(4.0, spread);
  // A bound binds: component 1 is capped at its size and the rest is re-split.
  const std::vector<int64_t> small = {1000, 100, 1000};
  const std::vector<double> hard = {1.0, 10000.0, 1.0};
  ASSERT_EQ(0, kvc_compress_allocate_budgets(hard.data(), small.data(), 3, 700, 0, 1.0, b.data(), nullptr));
  EXPECT_EQ((std::vector<int64_t>{300, 100, 300}), b);
  // Infeasible totals are errors.
  EXPECT_EQ(KVC_COMPRESS_ERR_BUDGET,
            kvc_compress_allocate_budgets(e.data(), T.data(), 3, 5000, 0, 0.5, b.data(), nullptr));
  EXPECT_EQ(KVC_COMPRESS_ERR_BUDGET,
            kvc_compress_allocate_budgets(e.data(), T.data(), 3, 100, 50, 0.5, b.data(), nullptr));
  const std::vector<double> bad = {1.0, std::nan(""), 1.0};
  EXPECT_NE(0, kvc_compress_allocate_budgets(bad.data(), T.data(), 3, 1000, 0, 0.5, b.data(), nullptr));
}

TEST(CompressBudgets, PilotGivesMoreToHarderHeads) {
  // Head 0: attention spread over many keys (hard); head 1: values nearly constant (easy).
  Head hard = makeHead(31, 200, 16, 16, 48);
  Head easy = makeHead(32, 200, 16, 16, 48);
  for (int64_t t = 0; t < easy.T; ++t)
    for (int64_t c = 0; c < easy.dv; ++c) easy.values[t * easy.dv + c] = 1.f + 1e-3f * easy.values[t * easy.dv + c];
  std::vector<kvc_compress_job> jobs(2);
  const Head* heads[2] = {&hard, &easy};
  for (int i = 0; i < 2; ++i) {
    jobs[i] = kvc_compress_job{};
    jobs[i].keys = heads[i]->keys.data();
    jobs[i].values = heads[i]->values.data();
    jobs[i].queries = heads[i]->queries.data();
    jobs[i].seq_len = 200;
    jobs[i].head_dim = 16;
    jobs[i].value_dim = 16;
    jobs[i].n_queries = 48;
  }
  kvc_compress_options o = options(KVC_COMPRESS_SCULPT);
  std::vector<double> e(2);
  std::vector<int64_t> b(2);
  double spread = 0;
  ASSERT_EQ(0, kvc_compress_pilot(jobs.data(), 2, 160, 0, 0.5, &o, 2, e.data(), b.data(), &spread))
      << kvc_compress_last_error();
  EXPECT_EQ(160, b[0] + b[1]);
  EXPECT_GT(e[0], e[1]);
  EXPECT_GT(b[0], b[1]);
  EXPECT_GE(b[1], 20);  // n_sink + n_recent is the floor
  EXPECT_NEAR(spread, e[0] / e[1], 1e-9 * spread);
  EXPECT_EQ(b[0], jobs[0].budget);
}

//===-- Synthetic queries and attention -------------------------------------===//

void referenceRope(std::vector<double>& x, double position, double theta, double positionScale) {
  const size_t d = x.size(), half = d / 2;
  for (size_t i = 0; i < half; ++i) {
    const double a = position * positionScale * std::pow(theta, -2.0 * double(i) / double(d));
    const double x1 = x[i], x2 = x[i + half];
    x[i] = x1 * std::cos(a) - x2 * std::sin(a);
    x[i + half] = x2 * std::cos(a) + x1 * std::sin(a);
  }
}

TEST(CompressSynthetic, DerotatesAndRerotatesAtFuturePositions) {
  std::mt19937 rng(13);
  const int64_t d = 32, n = 6, heads = 2;
  const double theta = 10000.0, posScale = 0.5;
  const std::vector<int64_t> positions = {90, 91, 92, 95, 97, 99};
  const Floats raw = randomMatrix(rng, heads * n, d);
  Floats rotated(raw.size());
  for (int64_t q = 0; q < heads * n; ++q) {
    std::vector<double> x(raw.begin() + q * d, raw.begin() + (q + 1) * d);
    referenceRope(x, double(positions[q % n]), theta, posScale);
    std::copy(x.begin(), x.end(), rotated.begin() + q * d);
  }
  const int64_t nOut = 3;  // sources 0, 2, 4
  Floats out(heads * nOut * d);
  std::vector<int64_t> outPos(nOut);
  ASSERT_EQ(0, kvc_compress_synthetic_queries(rotated.data(), positions.data(), n, heads, d, 0,
                                              theta, posScale, 99, nOut, out.data(),
                                              outPos.data()))
      << kvc_compress_last_error();
  EXPECT_EQ((std::vector<int64_t>{100, 101, 102}), outPos);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t k = 0; k < nOut; ++k) {
      std::vector<double> x(raw.begin() + (h * n + 2 * k) * d, raw.begin() + (h * n + 2 * k + 1) * d);
      referenceRope(x, double(100 + k), theta, posScale);
      for (int64_t i = 0; i < d; ++i) ASSERT_NEAR(x[i], out[(h * nOut + k) * d + i], 1e-4) << h << k << i;
    }
  EXPECT_NE(0, kvc_compress_synthetic_queries(rotated.data(), positions.data(), n, heads, d, 31,
                                              theta, 1.0, 99, nOut, out.data(), nullptr));
}

TEST(CompressAttention, MatchesDoublePrecisionReference) {
  std::mt19937 rng(17);
  const int64_t m = 5, d = 8, dv = 3, T = 7, extra = 2;
  const Floats Q = randomMatrix(rng, m, d), K = randomMatrix(rng, T, d), V = randomMatrix(rng, T, dv);
  const Floats K2 = randomMatrix(rng, extra, d), V2 = randomMatrix(rng, extra, dv);
  Floats out(m * dv), lse(m);
  ASSERT_EQ(0, kvc_compress_attention(Q.data(), m, K.data(), V.data(), T, K2.data(), V2.data(),
                                      extra, d, dv, 0.f, out.data(), lse.data()));
  const double scale = 1.0 / std::sqrt(double(d));
  for (int64_t i = 0; i < m; ++i) {
    std::vector<double> logits;
    for (int64_t j = 0; j < T + extra; ++j) {
      const float* k = j < T ? &K[j * d] : &K2[(j - T) * d];
      double s = 0;
      for (int64_t c = 0; c < d; ++c) s += double(Q[i * d + c]) * k[c];
      logits.push_back(scale * s);
    }
    double z = 0;
    for (double s : logits) z += std::exp(s);
    EXPECT_NEAR(std::log(z), lse[i], 1e-5);
    for (int64_t c = 0; c < dv; ++c) {
      double o = 0;
      for (int64_t j = 0; j < T + extra; ++j)
        o += std::exp(logits[j]) / z * (j < T ? V[j * dv + c] : V2[(j - T) * dv + c]);
      EXPECT_NEAR(o, out[i * dv + c], 1e-5);
    }
  }
  Floats bad = Q;
  bad[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(KVC_COMPRESS_ERR_NONFINITE_INPUT,
            kvc_compress_attention(bad.data(), m, K.data(), V.data(), T, nullptr, nullptr, 0, d,
                                   dv, 0.f, out.data(), nullptr));
}

TEST(CompressBackend, DescribesTheGemmBackend) {
  const std::string backend = kvc_compress_backend();
  EXPECT_TRUE(backend.rfind("openblas ", 0) == 0 || backend == "eigen") << backend;
}

}  // namespace

//===-- Select+Fit / KVSculpt from a given kept set -------------------------===//

namespace {

Result compressFromKept(const Head& h, const std::vector<int64_t>& kept,
                        const kvc_compress_options& o, int32_t anchor = 0) {
  Result r;
  const int64_t rows = std::max<int64_t>(int64_t(kept.size()), 1);
  r.keys.assign(rows * h.d, -777.f);
  r.values.assign(rows * h.dv, -777.f);
  r.indices.assign(rows, -777);
  r.status = kvc_compress_head_from_kept(h.keys.data(), h.values.data(), h.T, h.d, h.dv,
                                         h.m ? h.queries.data() : nullptr, h.m, kept.data(),
                                         int64_t(kept.size()), anchor, &o, r.keys.data(), r.values.data(),
                                         r.indices.data(), &r.stats);
  return r;
}

/// The kept set of a selection result: sinks, the selected middle and recent rows.
std::vector<int64_t> keptOf(const Result& selectFit) {
  return std::vector<int64_t>(selectFit.indices.begin(),
                              selectFit.indices.begin() + selectFit.stats.n_out);
}

}  // namespace

TEST(CompressFromKept, OnTheMethodsOwnSelectionEqualsCompressHead) {
  const Head h = makeHead(21, 240, 32, 24, 80);
  for (int method : {KVC_COMPRESS_SELECT_FIT, KVC_COMPRESS_SCULPT}) {
    kvc_compress_options o = options(method);
    o.n_query_heads = 2;
    o.sculpt_rounds = 3;
    kvc_compress_options sf = o;
    sf.method = KVC_COMPRESS_SELECT_FIT;
    const Result own = compress(h, 70, sf);
    ASSERT_EQ(0, own.status) << kvc_compress_last_error();
    const Result ref = compress(h, 70, o);
    ASSERT_EQ(0, ref.status) << kvc_compress_last_error();
    const Result r = compressFromKept(h, keptOf(own), o);
    ASSERT_EQ(0, r.status) << kvc_compress_last_error();
    EXPECT_EQ(70, r.stats.n_out);
    // Same start, same optimization, same rows: bitwise equal output and identical stats.
    for (int64_t i = 0; i < 70 * h.d; ++i) ASSERT_EQ(ref.keys[i], r.keys[i]) << method << " k" << i;
    for (int64_t i = 0; i < 70 * h.dv; ++i) ASSERT_EQ(ref.values[i], r.values[i]) << method << " v" << i;
    for (int64_t i = 0; i < 70; ++i) EXPECT_EQ(ref.indices[i], r.indices[i]) << i;
    EXPECT_EQ(ref.stats.final_loss, r.stats.final_loss);
    EXPECT_EQ(ref.stats.initial_loss, r.stats.initial_loss);
    EXPECT_EQ(ref.stats.rounds, r.stats.rounds);
  }
}

TEST(CompressFromKept, ArbitraryKeptSetIsDistilledAndRetainedRowsStayExact) {
  const Head h = makeHead(22, 200, 16, 16, 64);
  // A scattered kept set that is not any method's selection (sinks 0..3, recent 184..199).
  std::vector<int64_t> kept = {0, 1, 2, 3};
  for (int64_t t = 7; t < 184; t += 5) kept.push_back(t);
  for (int64_t t = 184; t < 200; ++t) kept.push_back(t);
  const int64_t n = int64_t(kept.size());

  // Plain eviction loss of the kept set, through the C ABI.
  Floats Y(h.m * h.dv), z(h.m), kk, kv, rk, rv;
  ASSERT_EQ(0, kvc_compress_attention(h.queries.data(), h.m, h.keys.data(), h.values.data(), h.T,
                                      nullptr, nullptr, 0, h.d, h.dv, 0.f, Y.data(), z.data()));
  int64_t nComp = 0;
  for (int64_t t : kept) {
    const bool retained = t < 4 || t >= 184;
    Floats& K = retained ? rk : kk;
    Floats& V = retained ? rv : kv;
    K.insert(K.end(), h.keys.begin() + t * h.d, h.keys.begin() + (t + 1) * h.d);
    V.insert(V.end(), h.values.begin() + t * h.dv, h.values.begin() + (t + 1) * h.dv);
    nComp += retained ? 0 : 1;
  }
  double evictLoss = -1;
  ASSERT_EQ(0, kvc_compress_sculpt_loss(h.queries.data(), h.m, kk.data(), kv.data(), nComp,
                                        rk.data(), rv.data(), n - nComp, Y.data(), z.data(), h.d,
                                        h.dv, 0.f, 1.0, &evictLoss, nullptr));

  kvc_compress_options fit = options(KVC_COMPRESS_SELECT_FIT);
  const Result f = compressFromKept(h, kept, fit);
  ASSERT_EQ(0, f.status) << kvc_compress_last_error();
  kvc_compress_options sc = options(KVC_COMPRESS_SCULPT);
  sc.sculpt_rounds = 4;
  const Result s = compressFromKept(h, kept, sc);
  ASSERT_EQ(0, s.status) << kvc_compress_last_error();
  EXPECT_EQ(n, f.stats.n_out);
  EXPECT_EQ(n, s.stats.n_out);
  // The value refit starts sculpt; sculpt only improves; both beat eviction.
  EXPECT_EQ(f.stats.final_loss, s.stats.initial_loss);
  EXPECT_LT(f.stats.final_loss, evictLoss);
  EXPECT_LT(s.stats.final_loss, 0.9 * f.stats.final_loss);
  for (int64_t i = 0; i < n; ++i) {
    const bool retained = kept[i] < 4 || kept[i] >= 184;
    EXPECT_EQ(f.indices[i], kept[i]);
    EXPECT_EQ(s.indices[i], retained ? kept[i] : -1) << i;
    // Select+Fit keeps every kept key; retained rows keep their values too.
    for (int64_t c = 0; c < h.d; ++c) ASSERT_EQ(f.keys[i * h.d + c], h.keys[kept[i] * h.d + c]);
    if (retained)
      for (int64_t c = 0; c < h.dv; ++c) {
        ASSERT_EQ(s.keys[i * h.d + c % h.d], h.keys[kept[i] * h.d + c % h.d]);
        ASSERT_EQ(s.values[i * h.dv + c], h.values[kept[i] * h.dv + c]);
      }
  }
  EXPECT_TRUE(allFinite(s.keys));
  EXPECT_TRUE(allFinite(s.values));
}

TEST(CompressFromKept, EdgesAndErrors) {
  const Head h = makeHead(23, 64, 8, 8, 16);
  kvc_compress_options o = options(KVC_COMPRESS_SCULPT, 2, 4);
  // Everything kept: exact copy.
  std::vector<int64_t> all(64);
  std::iota(all.begin(), all.end(), int64_t(0));
  Result r = compressFromKept(h, all, o);
  ASSERT_EQ(0, r.status);
  EXPECT_EQ(1, r.stats.exact_copy);
  for (int64_t i = 0; i < 64 * h.dv; ++i) ASSERT_EQ(r.values[i], h.values[i]);
  // Only sinks and recent: gathered unchanged.
  r = compressFromKept(h, {0, 1, 60, 61, 62, 63}, o);
  ASSERT_EQ(0, r.status);
  EXPECT_EQ(6, r.stats.n_out);
  EXPECT_EQ(0, r.stats.exact_copy);
  for (int64_t c = 0; c < h.dv; ++c) ASSERT_EQ(r.values[2 * h.dv + c], h.values[60 * h.dv + c]);
  // Not ascending, duplicate, out of range.
  for (const std::vector<int64_t>& bad :
       {std::vector<int64_t>{5, 3}, std::vector<int64_t>{3, 3}, std::vector<int64_t>{1, 64},
        std::vector<int64_t>{-1, 2}}) {
    r = compressFromKept(h, bad, o);
    EXPECT_EQ(KVC_COMPRESS_ERR_INVALID_ARGUMENT, r.status);
    EXPECT_NE(std::string(kvc_compress_last_error()).find("ascending"), std::string::npos);
  }
  // Selection-only methods are refused; non-finite input is reported.
  kvc_compress_options snap = options(KVC_COMPRESS_SNAPKV, 2, 4);
  EXPECT_EQ(KVC_COMPRESS_ERR_INVALID_ARGUMENT, compressFromKept(h, {0, 10, 63}, snap).status);
  Head bad = h;
  bad.values[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(KVC_COMPRESS_ERR_NONFINITE_INPUT, compressFromKept(bad, {0, 10, 63}, o).status);
}

TEST(CompressFromKept, AnchoredRidgeKeepsUnattendedValues) {
  // Queries attend to a narrow band of keys; a kept key far from every query direction gets
  // ~zero attention. Plain ridge shrinks its value toward 0, the anchored ridge keeps it.
  Head h = makeHead(24, 160, 16, 8, 48);
  const int64_t cold = 50;
  // Every query has a large first channel; the cold key points the other way (logit ~ -30).
  for (int64_t i = 0; i < h.m; ++i) h.queries[i * h.d] += 6.f;
  for (int64_t c = 0; c < h.d; ++c) h.keys[cold * h.d + c] = c == 0 ? -20.f : 0.f;
  for (int64_t c = 0; c < h.dv; ++c) h.values[cold * h.dv + c] = 3.f;
  std::vector<int64_t> kept = {0, 1, 2, 3, cold};
  for (int64_t t = 60; t < 160; t += 3) kept.push_back(t);
  kvc_compress_options o = options(KVC_COMPRESS_SELECT_FIT, 4, 16);
  o.ridge_lambda = 1e-1;
  const Result plain = compressFromKept(h, kept, o, 0);
  const Result anchored = compressFromKept(h, kept, o, 1);
  ASSERT_EQ(0, plain.status) << kvc_compress_last_error();
  ASSERT_EQ(0, anchored.status) << kvc_compress_last_error();
  for (int64_t c = 0; c < h.dv; ++c) {
    EXPECT_NEAR(3.f, anchored.values[4 * h.dv + c], 1e-3);
    EXPECT_LT(std::fabs(plain.values[4 * h.dv + c]), 1.f);
  }
  // Both still beat plain eviction on the training loss: the anchor changes the prior only.
  kvc_compress_options evict = o;
  const Result none = compressFromKept(h, {}, evict, 1);  // smoke: empty kept set
  EXPECT_EQ(0, none.status);
  EXPECT_LT(anchored.stats.final_loss, anchored.stats.initial_loss + 1e-12);
  kvc_compress_options sc = options(KVC_COMPRESS_SCULPT, 4, 16);
  sc.sculpt_rounds = 2;
  const Result s = compressFromKept(h, kept, sc, 1);
  ASSERT_EQ(0, s.status) << kvc_compress_last_error();
  EXPECT_LE(s.stats.final_loss, s.stats.initial_loss);
}
