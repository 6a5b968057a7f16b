//===- VoteTest.cpp - unit tests of the voting-budget library (Vote.h) ----===//
#include "kvc/Runtime/Vote.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

using Floats = std::vector<float>;
using Indices = std::vector<int64_t>;

Floats randomMatrix(std::mt19937& rng, int64_t rows, int64_t cols, float stddev = 1.f,
                    float mean = 0.f) {
  std::normal_distribution<float> normal(mean, stddev);
  Floats out(rows * cols);
  for (float& x : out) x = normal(rng);
  return out;
}

/// NeoX half-split rotation of x[0..d) at `position` (rotary_dim = d), in double.
void ropeRef(double* x, int64_t d, double position, double theta) {
  const int64_t h = d / 2;
  for (int64_t i = 0; i < h; ++i) {
    const double a = position * std::pow(theta, -2.0 * double(i) / double(d));
    const double x1 = x[i], x2 = x[i + h];
    x[i] = x1 * std::cos(a) - x2 * std::sin(a);
    x[i + h] = x2 * std::cos(a) + x1 * std::sin(a);
  }
}

std::vector<double> softmaxRef(const float* q, const Floats& keys, int64_t T, int64_t d,
                               double scale) {
  std::vector<double> l(T);
  for (int64_t j = 0; j < T; ++j) {
    double s = 0;
    for (int64_t i = 0; i < d; ++i) s += double(q[i]) * keys[j * d + i];
    l[j] = scale * s;
  }
  const double mx = *std::max_element(l.begin(), l.end());
  double z = 0;
  for (double& x : l) z += (x = std::exp(x - mx));
  for (double& x : l) x /= z;
  return l;
}

/// A GVote head: T keys with varied norms, g query heads with n_current current queries,
/// a d_model-dimensional Gaussian and W_q.
struct Problem {
  int64_t T, d, D, g, m0;
  Floats keys, current, mean, var, wq, bq;
  kvc_vote_head head() const {
    kvc_vote_head h{};
    h.keys = keys.data();
    h.seq_len = T;
    h.head_dim = d;
    h.current_queries = current.data();
    h.n_current = m0;
    h.n_query_heads = g;
    h.hidden_mean = mean.data();
    h.hidden_var = var.data();
    h.d_model = D;
    h.w_q = wq.data();
    h.b_q = bq.empty() ? nullptr : bq.data();
    h.position = -1;
    return h;
  }
};

Problem makeProblem(unsigned seed, int64_t T = 300, int64_t d = 16, int64_t D = 24,
                    int64_t g = 2, int64_t m0 = 1, float keyScale = 2.5f) {
  std::mt19937 rng(seed);
  Problem p{T, d, D, g, m0, randomMatrix(rng, T, d, keyScale),
            randomMatrix(rng, g * m0, d, 1.f), randomMatrix(rng, D, 1, 0.5f),
            Floats(D), randomMatrix(rng, g * d, D, 1.f / std::sqrt(float(D))), {}};
  std::uniform_real_distribution<float> u(0.3f, 1.5f);
  for (float& v : p.var) v = u(rng);
  for (int64_t t = 0; t < T; ++t) {  // varied key norms: attention is not uniform
    const float s = u(rng);
    for (int64_t i = 0; i < d; ++i) p.keys[t * d + i] *= s;
  }
  return p;
}

kvc_vote_options voteOptions(int32_t S = 8, double pNuc = 0.9, int64_t nSink = 2,
                             int64_t nRecent = 4) {
  kvc_vote_options o;
  kvc_vote_default_options(&o);
  o.n_samples = S;
  o.p = pNuc;
  o.n_sink = nSink;
  o.n_recent = nRecent;
  return o;
}

struct VoteResult {
  int status;
  Indices kept;
  kvc_vote_stats stats;
};

VoteResult gvote(const kvc_vote_head& h, const kvc_vote_options& o) {
  VoteResult r;
  r.kept.assign(std::max<int64_t>(h.seq_len, 1), -777);
  int64_t n = -1;
  r.status = kvc_vote_gvote_head(&h, &o, r.kept.data(), &n, &r.stats);
  r.kept.resize(r.status == 0 ? n : 0);
  return r;
}

Indices nucleusOf(const Floats& q, int64_t m, const Floats& keys, int64_t T, int64_t d, double p,
                  Indices* sizes = nullptr) {
  Indices kept(std::max<int64_t>(T, 1)), sz(std::max<int64_t>(m, 1));
  int64_t n = -1;
  EXPECT_EQ(0, kvc_vote_nucleus(q.data(), m, keys.data(), T, d, 0.f, p, kept.data(), &n,
                                sz.data()))
      << kvc_vote_last_error();
  kept.resize(std::max<int64_t>(n, 0));
  if (sizes) *sizes = Indices(sz.begin(), sz.begin() + m);
  return kept;
}

/// Address of a temporary, valid until the end of the full expression.
const kvc_vote_head* addr(const kvc_vote_head& h) { return &h; }

bool isSubset(const Indices& a, const Indices& b) {  // a ⊆ b, both sorted
  return std::includes(b.begin(), b.end(), a.begin(), a.end());
}

bool strictlyAscending(const Indices& v) {
  return std::adjacent_find(v.begin(), v.end(), [](int64_t a, int64_t b) { return a >= b; }) ==
         v.end();
}

//===-- Nucleus -----------------------------------------------------------===//

TEST(VoteNucleus, ReachesMassPAndIsMinimal) {
  const Problem pr = makeProblem(1, 400, 16, 8, 1, 3);
  const double scale = 1.0 / 4.0;
  for (double p : {0.3, 0.5, 0.9, 0.95, 0.99, 1.0}) {
    Indices unionRef;
    Indices sizes;
    const Indices all = nucleusOf(pr.current, 3, pr.keys, pr.T, pr.d, p, &sizes);
    for (int64_t r = 0; r < 3; ++r) {
      const Floats q(pr.current.begin() + r * pr.d, pr.current.begin() + (r + 1) * pr.d);
      const Indices set = nucleusOf(q, 1, pr.keys, pr.T, pr.d, p);
      ASSERT_TRUE(strictlyAscending(set));
      EXPECT_EQ(int64_t(set.size()), sizes[r]);
      const std::vector<double> w = softmaxRef(q.data(), pr.keys, pr.T, pr.d, scale);
      double mass = 0, smallestIn = 1, largestOut = 0;
      std::vector<char> in(pr.T, 0);
      for (int64_t j : set) {
        in[j] = 1;
        mass += w[j];
        smallestIn = std::min(smallestIn, w[j]);
      }
      for (int64_t j = 0; j < pr.T; ++j)
        if (!in[j]) largestOut = std::max(largestOut, w[j]);
      EXPECT_GE(mass, p - 1e-5) << "p=" << p;                       // reaches p
      EXPECT_LT(mass - smallestIn, p + 1e-5) << "p=" << p;          // minimal
      EXPECT_GE(smallestIn, largestOut * (1 - 1e-4)) << "p=" << p;  // the heaviest keys
      if (p < 1.0) EXPECT_LT(int64_t(set.size()), pr.T);
      std::vector<int64_t> merged;
      std::set_union(unionRef.begin(), unionRef.end(), set.begin(), set.end(),
                     std::back_inserter(merged));
      unionRef = merged;
    }
    EXPECT_EQ(all, unionRef) << "the multi-query result is the union of the rows' sets";
  }
}

TEST(VoteNucleus, RejectsBadP) {
  const Problem pr = makeProblem(2, 50);
  Indices kept(50);
  int64_t n;
  for (double p : {0.0, -0.1, 1.0000001, 2.0, std::nan("")}) {
    EXPECT_EQ(KVC_COMPRESS_ERR_INVALID_ARGUMENT,
              kvc_vote_nucleus(pr.current.data(), 1, pr.keys.data(), pr.T, pr.d, 0.f, p,
                               kept.data(), &n, nullptr))
        << p;
    EXPECT_NE(std::string(kvc_vote_last_error()).find("p must be in (0, 1]"), std::string::npos);
  }
}

//===-- GVote -------------------------------------------------------------===//

TEST(VoteGVote, DeterministicGivenTheSeed) {
  const Problem pr = makeProblem(3);
  kvc_vote_options o = voteOptions(8, 0.9);
  o.seed = 42;
  const VoteResult a = gvote(pr.head(), o), b = gvote(pr.head(), o);
  ASSERT_EQ(0, a.status) << kvc_vote_last_error();
  ASSERT_EQ(0, b.status);
  EXPECT_EQ(a.kept, b.kept);
  EXPECT_LT(int64_t(a.kept.size()), pr.T);  // otherwise the comparison below is vacuous
  int differing = 0;
  for (uint64_t seed = 43; seed < 53; ++seed) {
    o.seed = seed;
    const VoteResult c = gvote(pr.head(), o);
    ASSERT_EQ(0, c.status);
    differing += c.kept != a.kept;
  }
  EXPECT_GT(differing, 0) << "ten other seeds all gave the same kept set";

  // The synthetic queries themselves: same seed identical, another seed different.
  o.seed = 7;
  const int64_t n = pr.g * o.n_samples * pr.d;
  Floats q1(n), q2(n), q3(n);
  std::vector<int64_t> pos1(o.n_samples), pos2(o.n_samples);
  ASSERT_EQ(0, kvc_vote_sample_queries(addr(pr.head()), &o, q1.data(), pos1.data()));
  ASSERT_EQ(0, kvc_vote_sample_queries(addr(pr.head()), &o, q2.data(), pos2.data()));
  o.seed = 8;
  ASSERT_EQ(0, kvc_vote_sample_queries(addr(pr.head()), &o, q3.data(), nullptr));
  EXPECT_EQ(q1, q2);
  EXPECT_EQ(pos1, pos2);
  EXPECT_NE(q1, q3);
}

class VotePlanted : public ::testing::TestWithParam<int> {};

/// A key aligned with every group head's mean query (rotated to the future position when
/// RoPE is on) is kept by every seed, although the current query looks elsewhere.
TEST_P(VotePlanted, KeyEverySampledQueryAttendsToIsAlwaysKept) {
  const bool rope = GetParam() != 0;
  Problem pr = makeProblem(4, 500, 16, 24, 2, 1, 1.0f);
  for (float& x : pr.mean) x *= 4.f;  // queries dominated by the mean
  for (float& v : pr.var) v *= 0.05f;
  const int64_t planted = 250, decoy = 100, L = pr.T - 1;
  // Planted key: sum over heads of W_q^j mu (pre-RoPE), rotated at L+1 if RoPE is on.
  std::vector<double> k(pr.d, 0.0);
  for (int64_t j = 0; j < pr.g; ++j)
    for (int64_t a = 0; a < pr.d; ++a) {
      double acc = 0;
      for (int64_t i = 0; i < pr.D; ++i)
        acc += double(pr.wq[(j * pr.d + a) * pr.D + i]) * pr.mean[i];
      k[a] += acc;
    }
  double norm = 0;
  for (double x : k) norm += x * x;
  for (double& x : k) x *= 12.0 / std::sqrt(norm);
  if (rope) ropeRef(k.data(), pr.d, double(L + 1), 10000.0);
  for (int64_t a = 0; a < pr.d; ++a) pr.keys[planted * pr.d + a] = float(k[a]);
  // The current queries attend to a decoy key only.
  for (int64_t j = 0; j < pr.g; ++j)
    for (int64_t a = 0; a < pr.d; ++a) pr.current[j * pr.d + a] = pr.keys[decoy * pr.d + a];
  for (int64_t a = 0; a < pr.d; ++a) pr.keys[decoy * pr.d + a] *= 3.f;

  kvc_vote_options o = voteOptions(8, 0.9);
  o.apply_rope = rope ? 1 : 0;
  o.n_future = 1;
  for (uint64_t seed = 0; seed < 10; ++seed) {
    o.seed = seed;
    const VoteResult r = gvote(pr.head(), o);
    ASSERT_EQ(0, r.status) << kvc_vote_last_error();
    const Indices c0 = nucleusOf(pr.current, pr.g, pr.keys, pr.T, pr.d, 0.9);
    EXPECT_FALSE(std::binary_search(c0.begin(), c0.end(), planted)) << "test setup";
    EXPECT_TRUE(std::binary_search(r.kept.begin(), r.kept.end(), planted)) << "seed " << seed;
    EXPECT_LT(int64_t(r.kept.size()), pr.T / 2) << "the vote is selective";
  }
}

INSTANTIATE_TEST_SUITE_P(RopeOffOn, VotePlanted, ::testing::Values(0, 1));

TEST(VoteGVote, BudgetGrowsWithPAndWithS) {
  const Problem pr = makeProblem(5, 600, 16, 24, 2, 2);
  Indices previous;
  int64_t first = -1, last = -1;
  for (double p : {0.3, 0.5, 0.7, 0.9, 0.95, 0.99}) {
    kvc_vote_options o = voteOptions(8, p);
    const VoteResult r = gvote(pr.head(), o);
    ASSERT_EQ(0, r.status) << kvc_vote_last_error();
    EXPECT_TRUE(isSubset(previous, r.kept)) << "p=" << p;
    EXPECT_EQ(r.stats.n_kept, int64_t(r.kept.size()));
    previous = r.kept;
    if (first < 0) first = r.stats.n_kept;
    last = r.stats.n_kept;
  }
  EXPECT_GT(last, first);
  EXPECT_LT(first, pr.T);

  previous.clear();
  first = last = -1;
  for (int S : {0, 1, 2, 4, 8, 16, 32}) {
    kvc_vote_options o = voteOptions(S, 0.8);
    o.seed = 99;
    const VoteResult r = gvote(pr.head(), o);
    ASSERT_EQ(0, r.status) << kvc_vote_last_error();
    EXPECT_TRUE(isSubset(previous, r.kept)) << "S=" << S;  // samples are a prefix stream
    EXPECT_EQ(r.stats.n_synthetic, int64_t(S) * pr.g);
    previous = r.kept;
    if (first < 0) first = r.stats.n_kept;
    last = r.stats.n_kept;
  }
  EXPECT_GT(last, first);
}

/// kept == C0 ∪ sinks ∪ recent ∪ (top-B_step of every synthetic query), B_step = max of the
/// current queries' nucleus sizes, all recomputed here from the public building blocks.
TEST(VoteGVote, KeptIsTheUnionOfVotesNucleusSinksAndRecent) {
  for (int32_t reduce : {KVC_VOTE_STEP_MAX, KVC_VOTE_STEP_MEAN}) {
    const Problem pr = makeProblem(6, 400, 16, 24, 3, 2);
    kvc_vote_options o = voteOptions(6, 0.9, 3, 7);
    o.step_reduce = reduce;
    const VoteResult r = gvote(pr.head(), o);
    ASSERT_EQ(0, r.status) << kvc_vote_last_error();
    ASSERT_TRUE(strictlyAscending(r.kept));

    Indices sizes;
    const Indices c0 = nucleusOf(pr.current, pr.g * pr.m0, pr.keys, pr.T, pr.d, o.p, &sizes);
    const int64_t maxSize = *std::max_element(sizes.begin(), sizes.end());
    const double meanSize = std::accumulate(sizes.begin(), sizes.end(), 0.0) / sizes.size();
    const int64_t bStep =
        reduce == KVC_VOTE_STEP_MAX ? maxSize : int64_t(std::ceil(meanSize - 1e-9));
    EXPECT_EQ(r.stats.step_budget, bStep);
    EXPECT_EQ(r.stats.nucleus_size, int64_t(c0.size()));

    Floats synth(pr.g * o.n_samples * pr.d);
    ASSERT_EQ(0, kvc_vote_sample_queries(addr(pr.head()), &o, synth.data(), nullptr));
    std::set<int64_t> expected(c0.begin(), c0.end()), voted;
    for (int64_t j = 0; j < o.n_sink; ++j) expected.insert(j);
    for (int64_t j = pr.T - o.n_recent; j < pr.T; ++j) expected.insert(j);
    for (int64_t q = 0; q < pr.g * o.n_samples; ++q) {
      const std::vector<double> w = softmaxRef(&synth[q * pr.d], pr.keys, pr.T, pr.d, 0.25);
      std::vector<int64_t> order(pr.T);
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(),
                [&](int64_t a, int64_t b) { return w[a] > w[b] || (w[a] == w[b] && a < b); });
      for (int64_t k = 0; k < bStep; ++k) voted.insert(order[k]);
    }
    EXPECT_EQ(r.stats.vote_size, int64_t(voted.size()));
    expected.insert(voted.begin(), voted.end());
    EXPECT_EQ(r.kept, Indices(expected.begin(), expected.end()));
    EXPECT_LT(int64_t(r.kept.size()), pr.T);
    EXPECT_GE(r.stats.current_mass, o.p - 1e-6);
  }
}

TEST(VoteGVote, NoSamplesKeepsTheNucleusSinksAndRecentOnly) {
  Problem pr = makeProblem(7, 300);
  kvc_vote_options o = voteOptions(0, 0.9, 2, 5);
  kvc_vote_head h = pr.head();
  h.w_q = nullptr;  // not needed without samples
  h.hidden_mean = h.hidden_var = nullptr;
  const VoteResult r = gvote(h, o);
  ASSERT_EQ(0, r.status) << kvc_vote_last_error();
  std::set<int64_t> expected;
  for (int64_t j : nucleusOf(pr.current, pr.g, pr.keys, pr.T, pr.d, 0.9)) expected.insert(j);
  for (int64_t j = 0; j < 2; ++j) expected.insert(j);
  for (int64_t j = pr.T - 5; j < pr.T; ++j) expected.insert(j);
  EXPECT_EQ(r.kept, Indices(expected.begin(), expected.end()));
  EXPECT_EQ(r.stats.vote_size, 0);
  EXPECT_EQ(r.stats.n_synthetic, 0);
}

TEST(VoteGVote, EdgeCases) {
  Problem pr = makeProblem(8, 40);
  // T = 0: empty.
  {
    kvc_vote_head h = pr.head();
    h.seq_len = 0;
    const VoteResult r = gvote(h, voteOptions());
    ASSERT_EQ(0, r.status) << kvc_vote_last_error();
    EXPECT_TRUE(r.kept.empty());
    EXPECT_EQ(r.stats.n_kept, 0);
  }
  // sinks + recent >= T: everything, without voting.
  {
    const VoteResult r = gvote(pr.head(), voteOptions(8, 0.5, 20, 20));
    ASSERT_EQ(0, r.status);
    Indices all(pr.T);
    std::iota(all.begin(), all.end(), 0);
    EXPECT_EQ(r.kept, all);
    EXPECT_EQ(r.stats.keep_all, 1);
    const VoteResult r2 = gvote(pr.head(), voteOptions(8, 0.5, 0, 1000));
    EXPECT_EQ(r2.kept, all);
  }
  // p outside (0, 1].
  for (double p : {0.0, -1.0, 1.5, std::nan("")}) {
    const VoteResult r = gvote(pr.head(), voteOptions(8, p));
    EXPECT_EQ(KVC_COMPRESS_ERR_INVALID_ARGUMENT, r.status) << p;
    EXPECT_NE(std::string(kvc_vote_last_error()).find("p must be"), std::string::npos);
  }
  EXPECT_EQ(0, gvote(pr.head(), voteOptions(8, 1.0)).status);
  // Non-finite inputs, each array in turn.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (int which = 0; which < 5; ++which) {
    Problem bad = pr;
    bad.bq.assign(pr.g * pr.d, 0.f);
    Floats* arrays[] = {&bad.keys, &bad.current, &bad.mean, &bad.var, &bad.wq};
    (*arrays[which])[3] = which % 2 ? inf : nan;
    const VoteResult r = gvote(bad.head(), voteOptions());
    EXPECT_EQ(KVC_COMPRESS_ERR_NONFINITE_INPUT, r.status) << which;
    EXPECT_NE(std::string(kvc_vote_last_error()).find("NaN or Inf"), std::string::npos);
  }
  // Negative variance, missing current queries, bad RoPE dims.
  {
    Problem bad = pr;
    bad.var[0] = -1.f;
    EXPECT_EQ(KVC_COMPRESS_ERR_INVALID_ARGUMENT, gvote(bad.head(), voteOptions()).status);
    kvc_vote_head h = pr.head();
    h.n_current = 0;
    EXPECT_EQ(KVC_COMPRESS_ERR_NO_QUERIES, gvote(h, voteOptions()).status);
    kvc_vote_options o = voteOptions();
    o.rotary_dim = 7;
    EXPECT_EQ(KVC_COMPRESS_ERR_INVALID_ARGUMENT, gvote(pr.head(), o).status);
  }
  // A success clears the message.
  EXPECT_EQ(0, gvote(pr.head(), voteOptions()).status);
  EXPECT_STREQ("", kvc_vote_last_error());
}

TEST(VoteGVote, BatchOnThreadsEqualsSingleHeadCalls) {
  std::vector<Problem> problems = {makeProblem(11, 300), makeProblem(12, 500, 16, 24, 2, 2),
                                   makeProblem(13, 120), makeProblem(14, 0)};
  kvc_vote_options o = voteOptions(8, 0.9);
  o.seed = 5;
  std::vector<kvc_vote_job> jobs(problems.size());
  std::vector<Indices> outs(problems.size());
  for (size_t i = 0; i < problems.size(); ++i) {
    outs[i].assign(std::max<int64_t>(problems[i].T, 1), -1);
    jobs[i] = kvc_vote_job{};
    jobs[i].head = problems[i].head();
    jobs[i].kept_out = outs[i].data();
  }
  ASSERT_EQ(0, kvc_vote_gvote_heads(jobs.data(), int64_t(jobs.size()), &o, 2))
      << kvc_vote_last_error();
  for (size_t i = 0; i < problems.size(); ++i) {
    const VoteResult single = gvote(problems[i].head(), o);
    ASSERT_EQ(0, single.status);
    EXPECT_EQ(jobs[i].status, 0);
    EXPECT_EQ(Indices(outs[i].begin(), outs[i].begin() + jobs[i].n_kept), single.kept) << i;
    EXPECT_EQ(jobs[i].stats.n_kept, single.stats.n_kept);
  }
  // A failing job: its status, and the first failure's message with its index.
  problems[1].keys[7] = std::numeric_limits<float>::quiet_NaN();
  jobs[1].head = problems[1].head();
  EXPECT_EQ(KVC_COMPRESS_ERR_NONFINITE_INPUT,
            kvc_vote_gvote_heads(jobs.data(), int64_t(jobs.size()), &o, 2));
  EXPECT_EQ(jobs[0].status, 0);
  EXPECT_EQ(jobs[1].status, KVC_COMPRESS_ERR_NONFINITE_INPUT);
  EXPECT_EQ(std::string(kvc_vote_last_error()).rfind("job 1: ", 0), 0u) << kvc_vote_last_error();
}

//===-- Synthetic queries ---------------------------------------------------===//

TEST(VoteSampleQueries, MomentsMatchTheGaussianThroughTheProjection) {
  Problem pr = makeProblem(9, 10, 4, 6, 2, 1);
  std::mt19937 rng(3);
  pr.bq = randomMatrix(rng, pr.g, pr.d, 0.5f);
  kvc_vote_options o = voteOptions(40000);
  o.apply_rope = 0;
  o.q_norm = KVC_VOTE_QNORM_NONE;
  const int64_t S = o.n_samples;
  Floats q(pr.g * S * pr.d);
  ASSERT_EQ(0, kvc_vote_sample_queries(addr(pr.head()), &o, q.data(), nullptr))
      << kvc_vote_last_error();
  for (int64_t j = 0; j < pr.g; ++j)
    for (int64_t a = 0; a < pr.d; ++a) {
      const float* w = &pr.wq[(j * pr.d + a) * pr.D];
      double mu = pr.bq[j * pr.d + a], var = 0;
      for (int64_t i = 0; i < pr.D; ++i) {
        mu += double(w[i]) * pr.mean[i];
        var += double(w[i]) * w[i] * pr.var[i];
      }
      double m = 0, m2 = 0;
      for (int64_t s = 0; s < S; ++s) m += q[(j * S + s) * pr.d + a];
      m /= double(S);
      for (int64_t s = 0; s < S; ++s) {
        const double e = q[(j * S + s) * pr.d + a] - m;
        m2 += e * e;
      }
      m2 /= double(S - 1);
      EXPECT_NEAR(m, mu, 5 * std::sqrt(var / double(S))) << j << "," << a;
      EXPECT_NEAR(m2 / var, 1.0, 0.05) << j << "," << a;  // sd of the ratio ~ 0.007
    }
}

TEST(VoteSampleQueries, NormConventionsAndRope) {
  const Problem pr = makeProblem(10, 20, 8, 12, 2, 1);
  std::mt19937 rng(5);
  const Floats w = randomMatrix(rng, pr.d, 1, 0.3f);
  Floats onePlusW(w);
  for (float& x : onePlusW) x += 1.f;
  kvc_vote_options o = voteOptions(16);
  o.apply_rope = 0;
  const int64_t n = pr.g * o.n_samples * pr.d;
  Floats gemma(n), qwen(n), plain(n), rotated(n);
  kvc_vote_head h = pr.head();
  h.q_norm_weight = w.data();
  o.q_norm = KVC_VOTE_QNORM_GEMMA;
  ASSERT_EQ(0, kvc_vote_sample_queries(&h, &o, gemma.data(), nullptr));
  h.q_norm_weight = onePlusW.data();
  o.q_norm = KVC_VOTE_QNORM_QWEN;
  ASSERT_EQ(0, kvc_vote_sample_queries(&h, &o, qwen.data(), nullptr));
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(gemma[i], qwen[i], 1e-5f);
  // Without a weight, each query has unit RMS.
  h.q_norm_weight = nullptr;
  ASSERT_EQ(0, kvc_vote_sample_queries(&h, &o, plain.data(), nullptr));
  for (int64_t r = 0; r < pr.g * o.n_samples; ++r) {
    double ms = 0;
    for (int64_t a = 0; a < pr.d; ++a) ms += double(plain[r * pr.d + a]) * plain[r * pr.d + a];
    EXPECT_NEAR(ms / pr.d, 1.0, 1e-4);
  }
  // RoPE: the rotated queries are the unrotated ones turned by their sampled positions.
  o.apply_rope = 1;
  o.rope_theta = 500.0;
  o.n_future = 64;
  std::vector<int64_t> pos(o.n_samples);
  ASSERT_EQ(0, kvc_vote_sample_queries(&h, &o, rotated.data(), pos.data()));
  std::set<int64_t> distinct(pos.begin(), pos.end());
  EXPECT_GT(distinct.size(), 4u);
  for (int64_t s = 0; s < o.n_samples; ++s) {
    EXPECT_GE(pos[s], pr.T);  // L + 1 with L = T - 1
    EXPECT_LE(pos[s], pr.T - 1 + 64);
    for (int64_t j = 0; j < pr.g; ++j) {
      std::vector<double> x(plain.begin() + (j * o.n_samples + s) * pr.d,
                            plain.begin() + (j * o.n_samples + s + 1) * pr.d);
      ropeRef(x.data(), pr.d, double(pos[s]), 500.0);
      for (int64_t a = 0; a < pr.d; ++a)
        EXPECT_NEAR(rotated[(j * o.n_samples + s) * pr.d + a], x[a], 1e-4);
    }
  }
}

//===-- Expected Attention ----------------------------------------------------===//

/// Monte-Carlo E[exp(s q.k_j)] with q ~ N(mu, Sigma) (rotated at L+1 when RoPE is on),
/// normalized over keys and averaged over the heads, against the closed form.
class VoteExpectedAttention : public ::testing::TestWithParam<int> {};

TEST_P(VoteExpectedAttention, MatchesMonteCarlo) {
  const bool rope = GetParam() != 0;
  const int64_t d = 8, g = 2, T = 30;
  std::mt19937 rng(21);
  const Floats keys = randomMatrix(rng, T, d, 1.0f);
  const Floats mean = randomMatrix(rng, g, d, 0.7f);
  Floats cov(g * d * d, 0.f);
  std::vector<std::vector<double>> chol(g, std::vector<double>(d * d, 0.0));
  for (int64_t j = 0; j < g; ++j) {
    // Sigma = A A^T with lower-triangular A (its own Cholesky factor).
    const Floats a = randomMatrix(rng, d, d, 0.35f);
    for (int64_t r = 0; r < d; ++r)
      for (int64_t c = 0; c <= r; ++c) chol[j][r * d + c] = a[r * d + c];
    for (int64_t r = 0; r < d; ++r)
      for (int64_t c = 0; c < d; ++c) {
        double s = 0;
        for (int64_t k = 0; k < d; ++k) s += chol[j][r * d + k] * chol[j][c * d + k];
        cov[(j * d + r) * d + c] = float(s);
      }
  }
  kvc_vote_options o = voteOptions();
  o.n_sink = 0;
  o.apply_rope = rope ? 1 : 0;
  o.n_future = 1;
  o.rope_theta = 100.0;
  const int64_t position = 40;
  Floats scores(T);
  ASSERT_EQ(0, kvc_vote_expected_attention(keys.data(), nullptr, T, d, d, mean.data(), cov.data(),
                                           g, position, 0.0, &o, scores.data()))
      << kvc_vote_last_error();

  const double s = 1.0 / std::sqrt(double(d));
  std::vector<double> ref(T, 0.0);
  std::mt19937_64 mc(5);
  std::normal_distribution<double> normal;
  const int N = 400000;
  std::vector<double> z(d), q(d);
  for (int64_t j = 0; j < g; ++j) {
    std::vector<double> e(T, 0.0);
    for (int n = 0; n < N; ++n) {
      for (auto& x : z) x = normal(mc);
      for (int64_t r = 0; r < d; ++r) {
        q[r] = mean[j * d + r];
        for (int64_t c = 0; c <= r; ++c) q[r] += chol[j][r * d + c] * z[c];
      }
      if (rope) ropeRef(q.data(), d, double(position + 1), 100.0);
      for (int64_t t = 0; t < T; ++t) {
        double dot = 0;
        for (int64_t r = 0; r < d; ++r) dot += q[r] * keys[t * d + r];
        e[t] += std::exp(s * dot);
      }
    }
    const double total = std::accumulate(e.begin(), e.end(), 0.0);
    for (int64_t t = 0; t < T; ++t) ref[t] += e[t] / total / double(g);
  }
  double worst = 0;
  for (int64_t t = 0; t < T; ++t) worst = std::max(worst, std::abs(scores[t] / ref[t] - 1.0));
  EXPECT_LT(worst, 0.03) << "worst relative error vs Monte Carlo";
  // And the covariance matters: the mean-only score is measurably different.
  Floats meanOnly(T);
  ASSERT_EQ(0, kvc_vote_expected_attention(keys.data(), nullptr, T, d, d, mean.data(), nullptr, g,
                                           position, 0.0, &o, meanOnly.data()));
  double diff = 0;
  for (int64_t t = 0; t < T; ++t) diff = std::max(diff, std::abs(meanOnly[t] / ref[t] - 1.0));
  EXPECT_GT(diff, 0.05);
}

INSTANTIATE_TEST_SUITE_P(RopeOffOn, VoteExpectedAttention, ::testing::Values(0, 1));

TEST(VoteExpectedAttentionRules, AveragedRopeValueNormAndSinks) {
  const int64_t d = 6, g = 1, T = 12, dv = 3, nFuture = 5, position = 9;
  const double theta = 50.0;
  std::mt19937 rng(31);
  const Floats keys = randomMatrix(rng, T, d), values = randomMatrix(rng, T, dv);
  const Floats mean = randomMatrix(rng, g, d);
  Floats cov(d * d, 0.f);
  for (int64_t i = 0; i < d; ++i) cov[i * d + i] = 0.2f + 0.1f * float(i);
  cov[1] = cov[d] = 0.05f;
  // Reference: explicit average of the rotation matrices (as kvpress), then the formula.
  std::vector<double> R(d * d, 0.0);
  for (int64_t k = 1; k <= nFuture; ++k)
    for (int64_t c = 0; c < d; ++c) {
      std::vector<double> e(d, 0.0);
      e[c] = 1.0;
      ropeRef(e.data(), d, double(position + k), theta);
      for (int64_t r = 0; r < d; ++r) R[r * d + c] += e[r] / nFuture;
    }
  std::vector<double> mu(d, 0.0), RS(d * d, 0.0), Sig(d * d, 0.0);
  for (int64_t r = 0; r < d; ++r)
    for (int64_t c = 0; c < d; ++c) mu[r] += R[r * d + c] * mean[c];
  for (int64_t r = 0; r < d; ++r)
    for (int64_t c = 0; c < d; ++c)
      for (int64_t k = 0; k < d; ++k) RS[r * d + c] += R[r * d + k] * cov[k * d + c];
  for (int64_t r = 0; r < d; ++r)
    for (int64_t c = 0; c < d; ++c)
      for (int64_t k = 0; k < d; ++k) Sig[r * d + c] += RS[r * d + k] * R[c * d + k];
  const int64_t nSink = 2;
  const double s = 0.3, eps = 0.01;
  std::vector<double> logit(T - nSink);
  for (int64_t t = nSink; t < T; ++t) {
    double a = 0, b = 0;
    for (int64_t r = 0; r < d; ++r) {
      a += mu[r] * keys[t * d + r];
      for (int64_t c = 0; c < d; ++c) b += keys[t * d + r] * Sig[r * d + c] * keys[t * d + c];
    }
    logit[t - nSink] = s * a + 0.5 * s * s * b;
  }
  const double mx = *std::max_element(logit.begin(), logit.end());
  double z = 0;
  for (double& x : logit) z += (x = std::exp(x - mx));
  std::vector<double> ref(T);
  for (int64_t t = nSink; t < T; ++t) {
    double vn = 0;
    for (int64_t i = 0; i < dv; ++i) vn += double(values[t * dv + i]) * values[t * dv + i];
    ref[t] = (logit[t - nSink] / z + eps) * std::sqrt(vn);
  }
  const double top = *std::max_element(ref.begin() + nSink, ref.end());
  ref[0] = ref[1] = top;

  kvc_vote_options o = voteOptions();
  o.n_sink = nSink;
  o.scale = float(s);
  o.n_future = nFuture;
  o.rope_theta = theta;
  Floats scores(T);
  ASSERT_EQ(0, kvc_vote_expected_attention(keys.data(), values.data(), T, d, dv, mean.data(),
                                           cov.data(), g, position, eps, &o, scores.data()))
      << kvc_vote_last_error();
  for (int64_t t = 0; t < T; ++t) EXPECT_NEAR(scores[t], ref[t], 1e-5 * (1 + ref[t])) << t;

  Floats bad(keys);
  bad[4] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(KVC_COMPRESS_ERR_NONFINITE_INPUT,
            kvc_vote_expected_attention(bad.data(), values.data(), T, d, dv, mean.data(),
                                        cov.data(), g, position, eps, &o, scores.data()));
}

//===-- Top-k, AdaKV, PyramidKV -----------------------------------------------===//

TEST(VoteSelectTopk, KeepsSinksRecentAndTheBestScores) {
  const Floats scores = {9, 0, 5, 1, 7, 7, 2, 3, 8, 0};
  Indices kept(6);
  ASSERT_EQ(0, kvc_vote_select_topk(scores.data(), 10, 6, 1, 2, kept.data()));
  EXPECT_EQ(kept, (Indices{0, 2, 4, 5, 8, 9}));  // 0 sink; 8, 9 recent; 4, 5, 2 best middle
  EXPECT_EQ(KVC_COMPRESS_ERR_BUDGET, kvc_vote_select_topk(scores.data(), 10, 2, 1, 2, kept.data()));
  Indices all(10);
  ASSERT_EQ(0, kvc_vote_select_topk(scores.data(), 10, 50, 1, 2, all.data()));
  EXPECT_EQ(all, (Indices{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(VoteAdaKV, BudgetsSumToTheLayerBudgetAndHonourTheMinimum) {
  const int64_t H = 6, T = 120, nSink = 2, nRecent = 3, minHead = 12, B = 240;
  std::mt19937 rng(41);
  Floats scores = randomMatrix(rng, H, T);
  for (int64_t t = 0; t < T; ++t) scores[1 * T + t] += 3.f;  // head 1 is "important"
  for (int64_t t = 0; t < T; ++t) scores[4 * T + t] -= 3.f;  // head 4 is not
  Indices budgets(H), kept(B);
  ASSERT_EQ(0, kvc_vote_adakv(scores.data(), H, T, B, minHead, nSink, nRecent, budgets.data(),
                              kept.data()))
      << kvc_vote_last_error();
  EXPECT_EQ(std::accumulate(budgets.begin(), budgets.end(), int64_t(0)), B);
  for (int64_t h = 0; h < H; ++h) EXPECT_GE(budgets[h], minHead) << h;
  EXPECT_EQ(budgets[4], minHead);
  EXPECT_GT(budgets[1], 2 * B / H);
  // Reference: per-head minimum (sinks, recent, best), then the global top of the rest.
  std::vector<char> ref(H * T, 0);
  std::vector<std::pair<float, int64_t>> rest;
  for (int64_t h = 0; h < H; ++h) {
    std::vector<std::pair<float, int64_t>> mid;
    for (int64_t t = 0; t < T; ++t) {
      if (t < nSink || t >= T - nRecent) ref[h * T + t] = 1;
      else mid.push_back({-scores[h * T + t], t});
    }
    std::sort(mid.begin(), mid.end());
    for (int64_t k = 0; k < int64_t(mid.size()); ++k) {
      if (k < minHead - nSink - nRecent) ref[h * T + mid[k].second] = 1;
      else rest.push_back({-scores[h * T + mid[k].second], h * T + mid[k].second});
    }
  }
  std::sort(rest.begin(), rest.end());
  for (int64_t k = 0; k < B - H * minHead; ++k) ref[rest[k].second] = 1;
  int64_t offset = 0;
  for (int64_t h = 0; h < H; ++h) {
    Indices expected;
    for (int64_t t = 0; t < T; ++t)
      if (ref[h * T + t]) expected.push_back(t);
    EXPECT_EQ(Indices(kept.begin() + offset, kept.begin() + offset + budgets[h]), expected) << h;
    offset += budgets[h];
  }
  // Infeasible budgets.
  EXPECT_EQ(KVC_COMPRESS_ERR_BUDGET, kvc_vote_adakv(scores.data(), H, T, H * minHead - 1, minHead,
                                                    nSink, nRecent, budgets.data(), kept.data()));
  Indices bigKept(H * T + 1);
  EXPECT_EQ(KVC_COMPRESS_ERR_BUDGET, kvc_vote_adakv(scores.data(), H, T, H * T + 1, 0, 0, 0,
                                                    budgets.data(), bigKept.data()));
  scores[5] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(KVC_COMPRESS_ERR_NONFINITE_INPUT,
            kvc_vote_adakv(scores.data(), H, T, B, minHead, nSink, nRecent, budgets.data(),
                           kept.data()));
}

TEST(VotePyramid, BudgetsSumToTheTotalAndDecreaseOverLayers) {
  for (int64_t L : {1, 2, 7, 18, 26}) {
    for (double beta : {1.0, 5.0, 20.0}) {
      const int64_t window = 8, total = L * 200 + 3;
      Indices b(L);
      ASSERT_EQ(0, kvc_vote_pyramid_budgets(L, total, window, beta, b.data()))
          << kvc_vote_last_error();
      EXPECT_EQ(std::accumulate(b.begin(), b.end(), int64_t(0)), total) << L << " " << beta;
      for (int64_t l = 1; l < L; ++l) EXPECT_LE(b[l], b[l - 1]) << L << " " << beta << " " << l;
      for (int64_t l = 0; l < L; ++l) EXPECT_GE(b[l], window);
      if (L > 2 && beta > 1) {
        EXPECT_GT(b[0], b[L - 1] + 100);
        // kvpress: first layer 2a - a/beta, last a/beta (plus the window), a = (total/L - w).
        const double a = double(total - L * window) / double(L);
        EXPECT_NEAR(double(b[0] - window), 2 * a - a / beta, 1.0);
        EXPECT_NEAR(double(b[L - 1] - window), a / beta, 1.0);
      }
    }
  }
  Indices b(4);
  EXPECT_EQ(KVC_COMPRESS_ERR_BUDGET, kvc_vote_pyramid_budgets(4, 31, 8, 20, b.data()));
  EXPECT_EQ(KVC_COMPRESS_ERR_INVALID_ARGUMENT, kvc_vote_pyramid_budgets(4, 100, 8, 0.5, b.data()));
}

//===-- Composition with Select+Fit -----------------------------------------===//

TEST(VoteFitKept, MatchesSelectFitOnItsOwnSelectionAndImprovesTheGVoteSet) {
  std::mt19937 rng(51);
  const int64_t T = 200, d = 16, dv = 8, m = 64, budget = 60, nSink = 4, nRecent = 8;
  const Floats K = randomMatrix(rng, T, d, 1.5f), V = randomMatrix(rng, T, dv);
  const Floats Q = randomMatrix(rng, m, d, 1.f, 0.2f);
  kvc_compress_options co;
  kvc_compress_default_options(&co);
  co.method = KVC_COMPRESS_SELECT_FIT;
  co.n_sink = nSink;
  co.n_recent = nRecent;
  Floats ck(budget * d), cv(budget * dv);
  Indices idx(budget);
  ASSERT_EQ(0, kvc_compress_head(K.data(), V.data(), T, d, dv, Q.data(), m, budget, &co,
                                 ck.data(), cv.data(), idx.data(), nullptr))
      << kvc_compress_last_error();
  Floats fk(budget * d), fv(budget * dv);
  ASSERT_EQ(0, kvc_vote_fit_kept(K.data(), V.data(), T, d, dv, Q.data(), m, idx.data(), budget,
                                 0.f, co.ridge_lambda, nSink, nRecent, fk.data(), fv.data()))
      << kvc_vote_last_error();
  EXPECT_EQ(fk, ck);
  for (size_t i = 0; i < fv.size(); ++i) EXPECT_NEAR(fv[i], cv[i], 2e-4f) << i;

  // Fitting the values of a kept set never does worse on the fit queries than plain eviction.
  const Floats q0 = randomMatrix(rng, 2, d, 1.f, 0.2f);
  Problem pr{T, d, 8, 2, 1, K, q0, randomMatrix(rng, 8, 1), Floats(8, 1.f),
             randomMatrix(rng, 2 * d, 8, 0.35f), {}};
  const VoteResult r = gvote(pr.head(), voteOptions(2, 0.5, nSink, nRecent));
  ASSERT_EQ(0, r.status) << kvc_vote_last_error();
  const int64_t n = int64_t(r.kept.size());
  ASSERT_LT(n, T);
  Floats gk(n * d), gv(n * dv), evK(n * d), evV(n * dv);
  ASSERT_EQ(0, kvc_vote_fit_kept(K.data(), V.data(), T, d, dv, Q.data(), m, r.kept.data(), n, 0.f,
                                 1e-6, nSink, nRecent, gk.data(), gv.data()));
  ASSERT_EQ(0, kvc_vote_fit_kept(K.data(), V.data(), T, d, dv, nullptr, 0, r.kept.data(), n, 0.f,
                                 1e-6, nSink, nRecent, evK.data(), evV.data()));
  for (int64_t k = 0; k < n; ++k)
    for (int64_t i = 0; i < dv; ++i) ASSERT_EQ(evV[k * dv + i], V[r.kept[k] * dv + i]);
  auto err = [&](const Floats& keys, const Floats& values) {
    Floats Y(m * dv), O(m * dv);
    EXPECT_EQ(0, kvc_compress_attention(Q.data(), m, K.data(), V.data(), T, nullptr, nullptr, 0, d,
                                        dv, 0.f, Y.data(), nullptr));
    EXPECT_EQ(0, kvc_compress_attention(Q.data(), m, keys.data(), values.data(), n, nullptr,
                                        nullptr, 0, d, dv, 0.f, O.data(), nullptr));
    double e = 0;
    for (int64_t i = 0; i < m * dv; ++i) e += double(O[i] - Y[i]) * (O[i] - Y[i]);
    return e;
  };
  EXPECT_LT(err(gk, gv), err(evK, evV));
  // Bad kept lists.
  Indices unsorted = {5, 3};
  EXPECT_EQ(KVC_COMPRESS_ERR_INVALID_ARGUMENT,
            kvc_vote_fit_kept(K.data(), V.data(), T, d, dv, Q.data(), m, unsorted.data(), 2, 0.f,
                              1e-3, 0, 0, gk.data(), gv.data()));
}

}  // namespace
