//===- VoteBench.cpp - kvc-vote-bench: per-head overhead of GVote voting ---===//
//
// Builds one random KV head shaped like a Gemma-3-270M global layer at a given context
// (defaults: T = 2048, head_dim 256, d_model 640, g = 4 query heads per KV head) with a
// Gaussian hidden-state model, then times kvc_vote_gvote_head for each S in --samples
// (median and mean over --reps calls, after one warm-up) and Expected Attention
// (kvc_vote_expected_attention, full covariance) for comparison. Prints the kept-set size.
//
//   kvc-vote-bench [--T 2048] [--d 256] [--dmodel 640] [--g 4] [--samples 8,16]
//                  [--reps 50] [--current 1] [--p 0.95] [--seed 1] [--key-scale 4]
//
// Keys are projections of sampled hidden states (K = H W_k^T with W_k entries of standard
// deviation key_scale/sqrt(d_model), RoPE'd at their positions) and the current query is
// W_q h (RoPE'd at T-1): logits of standard deviation ~ key_scale, so attention is peaked.
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/Vote.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <time.h>
#include <vector>

namespace {

struct Config {
  int64_t T = 2048, d = 256, dModel = 640, g = 4, current = 1;
  std::vector<int> samples = {8, 16};
  int reps = 50;
  double p = 0.95;
  double keyScale = 4.0;
  unsigned seed = 1;
};

std::vector<int> parseList(const char* s) {
  std::vector<int> out;
  for (const char* c = s; *c;) {
    out.push_back(std::atoi(c));
    while (*c && *c != ',') ++c;
    if (*c == ',') ++c;
  }
  return out;
}

void rope(float* x, int64_t d, double pos, double theta) {
  const int64_t h = d / 2;
  for (int64_t i = 0; i < h; ++i) {
    const double a = pos * std::pow(theta, -2.0 * double(i) / double(d));
    const double x1 = x[i], x2 = x[i + h];
    x[i] = float(x1 * std::cos(a) - x2 * std::sin(a));
    x[i + h] = float(x2 * std::cos(a) + x1 * std::sin(a));
  }
}

/// CPU time of the calling thread in ms (on a shared machine, wall time also counts the time
/// other processes hold the core; OpenBLAS runs single-threaded here, see the docs command).
double threadCpuMs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) * 1e-6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--T") c.T = std::atoll(v);
    else if (k == "--d") c.d = std::atoll(v);
    else if (k == "--dmodel") c.dModel = std::atoll(v);
    else if (k == "--g") c.g = std::atoll(v);
    else if (k == "--samples") c.samples = parseList(v);
    else if (k == "--reps") c.reps = std::atoi(v);
    else if (k == "--current") c.current = std::atoll(v);
    else if (k == "--p") c.p = std::atof(v);
    else if (k == "--key-scale") c.keyScale = std::atof(v);
    else if (k == "--seed") c.seed = unsigned(std::atoi(v));
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  const int64_t T = c.T, d = c.d, D = c.dModel, g = c.g;
  const double theta = 1e6;  // Gemma 3 global layers
  std::mt19937 rng(c.seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> unif(0.2f, 2.0f);
  std::vector<float> mean(D), var(D), Wq(g * d * D), Wk(d * D);
  for (auto& x : mean) x = 0.3f * normal(rng);
  for (auto& x : var) x = unif(rng);
  const float w = 1.f / std::sqrt(float(D));
  for (auto& x : Wq) x = w * normal(rng);
  for (auto& x : Wk) x = float(c.keyScale) * w * normal(rng);
  auto sampleHidden = [&](std::vector<float>& h) {
    h.resize(D);
    for (int64_t i = 0; i < D; ++i) h[i] = mean[i] + std::sqrt(var[i]) * normal(rng);
  };
  std::vector<float> keys(T * d), h;
  for (int64_t t = 0; t < T; ++t) {
    sampleHidden(h);
    for (int64_t r = 0; r < d; ++r) {
      double acc = 0;
      for (int64_t i = 0; i < D; ++i) acc += double(Wk[r * D + i]) * h[i];
      keys[t * d + r] = float(acc);
    }
    rope(&keys[t * d], d, double(t), theta);
  }
  std::vector<float> current(g * c.current * d);
  for (int64_t r = 0; r < c.current; ++r) {
    sampleHidden(h);
    for (int64_t j = 0; j < g; ++j) {
      float* q = &current[(j * c.current + r) * d];
      for (int64_t k = 0; k < d; ++k) {
        double acc = 0;
        for (int64_t i = 0; i < D; ++i) acc += double(Wq[(j * d + k) * D + i]) * h[i];
        q[k] = float(acc);
      }
      rope(q, d, double(T - c.current + r), theta);
    }
  }

  kvc_vote_head head{};
  head.keys = keys.data();
  head.seq_len = T;
  head.head_dim = d;
  head.current_queries = current.data();
  head.n_current = c.current;
  head.n_query_heads = g;
  head.hidden_mean = mean.data();
  head.hidden_var = var.data();
  head.d_model = D;
  head.w_q = Wq.data();
  head.position = -1;

  std::printf("kvc-vote-bench: T=%lld head_dim=%lld d_model=%lld g=%lld current=%lld p=%.3f "
              "key_scale=%.2f reps=%d backend=%s\n",
              (long long)T, (long long)d, (long long)D, (long long)g, (long long)c.current, c.p,
              c.keyScale, c.reps, kvc_compress_backend());
  std::vector<int64_t> kept(T);
  for (int S : c.samples) {
    kvc_vote_options o;
    kvc_vote_default_options(&o);
    o.p = c.p;
    o.n_samples = S;
    o.rope_theta = theta;
    kvc_vote_stats st{};
    int64_t n = 0;
    std::vector<double> times, cpu;
    for (int r = 0; r <= c.reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      const double c0 = threadCpuMs();
      if (kvc_vote_gvote_head(&head, &o, kept.data(), &n, &st) != 0) {
        std::fprintf(stderr, "error: %s\n", kvc_vote_last_error());
        return 1;
      }
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (r > 0) {
        times.push_back(ms);
        cpu.push_back(threadCpuMs() - c0);
      }
    }
    std::printf("gvote S=%-3d  wall median %.3f ms  cpu median %.3f ms per head | kept %lld/%lld "
                "(B_step %lld, |C0| %lld, votes %lld, current mass %.4f)\n",
                S, median(times), median(cpu), (long long)st.n_kept, (long long)T,
                (long long)st.step_budget, (long long)st.nucleus_size, (long long)st.vote_size,
                st.current_mass);
  }

  // Expected Attention with full covariance: mu_q = W_q mu, Sigma_q = W_q diag(var) W_q^T.
  std::vector<float> mq(g * d), cq(g * d * d);
  for (int64_t j = 0; j < g; ++j)
    for (int64_t a = 0; a < d; ++a) {
      const float* wa = &Wq[(j * d + a) * D];
      double acc = 0;
      for (int64_t i = 0; i < D; ++i) acc += double(wa[i]) * mean[i];
      mq[j * d + a] = float(acc);
      for (int64_t b = 0; b < d; ++b) {
        const float* wb = &Wq[(j * d + b) * D];
        double cov = 0;
        for (int64_t i = 0; i < D; ++i) cov += double(wa[i]) * var[i] * wb[i];
        cq[(j * d + a) * d + b] = float(cov);
      }
    }
  kvc_vote_options o;
  kvc_vote_default_options(&o);
  o.rope_theta = theta;
  std::vector<float> scores(T);
  std::vector<double> times, cpu;
  const int eaReps = std::max(1, c.reps / 5);
  for (int r = 0; r <= eaReps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = threadCpuMs();
    if (kvc_vote_expected_attention(keys.data(), nullptr, T, d, d, mq.data(), cq.data(), g, -1,
                                    0.0, &o, scores.data()) != 0) {
      std::fprintf(stderr, "error: %s\n", kvc_vote_last_error());
      return 1;
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) {
      times.push_back(ms);
      cpu.push_back(threadCpuMs() - c0);
    }
  }
  std::printf("expected attention (full covariance, n_future 512)  wall median %.3f ms  "
              "cpu median %.3f ms per head\n",
              median(times), median(cpu));
  return 0;
}
