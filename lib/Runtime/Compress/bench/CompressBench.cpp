//===- CompressBench.cpp - kvc-compress-bench: KVSculpt timing on random heads ===//
//
// Builds heads shaped like Gemma 3 270M at a 2048-token context (by default 3 global heads
// with T = 2048 and 15 sliding-window heads with T = 512; head_dim 256; 4 query heads per KV
// head, each with 64 observation queries + 128 synthetic future queries), compresses them
// with kvc_compress_heads at each ratio r (kept fraction) and prints the time per head and
// the training loss before (Select+Fit) and after KVSculpt.
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/Compress.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sys/resource.h>
#include <string>
#include <vector>

namespace {

struct Config {
  int globalHeads = 3, localHeads = 15;
  int64_t globalLen = 2048, localLen = 512;
  int64_t headDim = 256, queryHeads = 4, observed = 64, synthetic = 128;
  std::vector<double> ratios = {0.3, 0.5, 0.7};
  int threads = 0, rounds = -1, keyIters = -1;
  double lseWeight = -1;
  int method = KVC_COMPRESS_SCULPT;
  unsigned seed = 1;
};

struct Head {
  int64_t T;
  std::vector<float> keys, values, queries;
  // Held-out check: fresh queries at future positions and tokens appended after the cache.
  std::vector<float> heldQueries, newKeys, newValues;
};

constexpr int64_t kHeldOutQueries = 64, kAppended = 16;

void rope(float* x, int64_t d, double position, double theta) {
  for (int64_t i = 0; i < d / 2; ++i) {
    const double a = position * std::pow(theta, -2.0 * double(i) / double(d));
    const double c = std::cos(a), s = std::sin(a), x1 = x[i], x2 = x[i + d / 2];
    x[i] = float(x1 * c - x2 * s);
    x[i + d / 2] = float(x2 * c + x1 * s);
  }
}

/// Random head with some structure: shared mean directions, decaying channel scales and
/// lognormal per-token key norms (a few tokens draw much of the attention), RoPE'd keys.
Head makeHead(const Config& cfg, int64_t T, double theta, std::mt19937& rng) {
  const int64_t d = cfg.headDim, g = cfg.queryHeads, nObs = cfg.observed;
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> channel(d), meanK(d), meanQ(d);
  for (int64_t i = 0; i < d; ++i) {
    channel[i] = float(1.5 * std::exp(-double(i % (d / 2)) / double(d / 4)));
    meanK[i] = 0.5f * normal(rng);
    meanQ[i] = 0.5f * normal(rng);
  }
  Head h;
  h.T = T;
  h.keys.resize(T * d);
  h.values.resize(T * cfg.headDim);
  for (int64_t t = 0; t < T; ++t) {
    const float norm = std::exp(0.5f * normal(rng)) * (t < 4 ? 3.f : 1.f);
    for (int64_t i = 0; i < d; ++i) h.keys[t * d + i] = meanK[i] + norm * channel[i] * normal(rng);
    rope(&h.keys[t * d], d, double(t), theta);
    for (int64_t i = 0; i < cfg.headDim; ++i) h.values[t * cfg.headDim + i] = normal(rng);
  }
  // Per query head: nObs observation queries at positions T-nObs..T-1, then synthetic ones.
  std::vector<float> observed(g * nObs * d);
  std::vector<int64_t> positions(nObs);
  for (int64_t k = 0; k < nObs; ++k) positions[k] = T - nObs + k;
  for (int64_t q = 0; q < g * nObs; ++q) {
    for (int64_t i = 0; i < d; ++i) observed[q * d + i] = meanQ[i] + channel[i] * normal(rng);
    rope(&observed[q * d], d, double(positions[q % nObs]), theta);
  }
  std::vector<float> synthetic(g * cfg.synthetic * d);
  if (kvc_compress_synthetic_queries(observed.data(), positions.data(), nObs, g, d, 0, theta,
                                     1.0, T - 1, cfg.synthetic, synthetic.data(), nullptr)) {
    std::fprintf(stderr, "synthetic queries: %s\n", kvc_compress_last_error());
    std::exit(1);
  }
  h.heldQueries.resize(g * kHeldOutQueries * d);
  for (int64_t q = 0; q < g * kHeldOutQueries; ++q) {
    for (int64_t i = 0; i < d; ++i) h.heldQueries[q * d + i] = meanQ[i] + channel[i] * normal(rng);
    rope(&h.heldQueries[q * d], d, double(T + kAppended + q % kHeldOutQueries), theta);
  }
  h.newKeys.resize(kAppended * d);
  h.newValues.resize(kAppended * cfg.headDim);
  for (int64_t t = 0; t < kAppended; ++t) {
    const float norm = std::exp(0.5f * normal(rng));
    for (int64_t i = 0; i < d; ++i) h.newKeys[t * d + i] = meanK[i] + norm * channel[i] * normal(rng);
    rope(&h.newKeys[t * d], d, double(T + t), theta);
    for (int64_t i = 0; i < cfg.headDim; ++i) h.newValues[t * cfg.headDim + i] = normal(rng);
  }
  const int64_t perHead = nObs + cfg.synthetic;
  h.queries.resize(g * perHead * d);
  for (int64_t q = 0; q < g; ++q) {
    std::memcpy(&h.queries[(q * perHead) * d], &observed[q * nObs * d], nObs * d * sizeof(float));
    std::memcpy(&h.queries[(q * perHead + nObs) * d], &synthetic[q * cfg.synthetic * d],
                cfg.synthetic * d * sizeof(float));
  }
  return h;
}

double cpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

/// Relative error ||O_c - O||^2 / ||O||^2 of held-out queries attending to the cache followed
/// by the appended tokens, compressed cache vs full cache.
double heldOutError(const Head& h, const float* keys, const float* values, int64_t rows,
                    int64_t d) {
  const int64_t m = int64_t(h.heldQueries.size()) / d;
  std::vector<float> full(m * d), comp(m * d);
  kvc_compress_attention(h.heldQueries.data(), m, h.keys.data(), h.values.data(), h.T,
                         h.newKeys.data(), h.newValues.data(), kAppended, d, d, 0.f, full.data(),
                         nullptr);
  kvc_compress_attention(h.heldQueries.data(), m, keys, values, rows, h.newKeys.data(),
                         h.newValues.data(), kAppended, d, d, 0.f, comp.data(), nullptr);
  double err = 0, ref = 0;
  for (size_t i = 0; i < full.size(); ++i) {
    err += double(comp[i] - full[i]) * double(comp[i] - full[i]);
    ref += double(full[i]) * double(full[i]);
  }
  return err / ref;
}

std::vector<double> parseList(const char* s) {
  std::vector<double> out;
  for (const char* p = s; *p;) {
    char* end;
    out.push_back(std::strtod(p, &end));
    p = *end == ',' ? end + 1 : end;
    if (end == p && *p) break;
  }
  return out;
}

void usage() {
  std::printf(
      "usage: kvc-compress-bench [--ratios 0.3,0.5,0.7] [--threads N] [--rounds R]\n"
      "  [--key-iters K] [--lse-weight W] [--method sculpt|select-fit|snapkv|h2o|streaming]\n"
      "  [--global-heads 3] [--local-heads 15] [--global-len 2048] [--local-len 512]\n"
      "  [--head-dim 256] [--query-heads 4] [--observed 64] [--synthetic 128] [--seed 1]\n");
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) { usage(); std::exit(2); }
      return argv[++i];
    };
    if (a == "--ratios") cfg.ratios = parseList(next());
    else if (a == "--threads") cfg.threads = std::atoi(next());
    else if (a == "--rounds") cfg.rounds = std::atoi(next());
    else if (a == "--key-iters") cfg.keyIters = std::atoi(next());
    else if (a == "--lse-weight") cfg.lseWeight = std::atof(next());
    else if (a == "--global-heads") cfg.globalHeads = std::atoi(next());
    else if (a == "--local-heads") cfg.localHeads = std::atoi(next());
    else if (a == "--global-len") cfg.globalLen = std::atoll(next());
    else if (a == "--local-len") cfg.localLen = std::atoll(next());
    else if (a == "--head-dim") cfg.headDim = std::atoll(next());
    else if (a == "--query-heads") cfg.queryHeads = std::atoll(next());
    else if (a == "--observed") cfg.observed = std::atoll(next());
    else if (a == "--synthetic") cfg.synthetic = std::atoll(next());
    else if (a == "--seed") cfg.seed = unsigned(std::atoi(next()));
    else if (a == "--method") {
      const std::string m = next();
      cfg.method = m == "streaming" ? KVC_COMPRESS_STREAMING
                   : m == "snapkv"  ? KVC_COMPRESS_SNAPKV
                   : m == "h2o"     ? KVC_COMPRESS_H2O
                   : m == "select-fit" ? KVC_COMPRESS_SELECT_FIT
                                       : KVC_COMPRESS_SCULPT;
    } else { usage(); return a == "--help" || a == "-h" ? 0 : 2; }
  }

  std::mt19937 rng(cfg.seed);
  std::vector<Head> heads;
  for (int i = 0; i < cfg.globalHeads; ++i) heads.push_back(makeHead(cfg, cfg.globalLen, 1e6, rng));
  for (int i = 0; i < cfg.localHeads; ++i) heads.push_back(makeHead(cfg, cfg.localLen, 1e4, rng));

  kvc_compress_options opts;
  kvc_compress_default_options(&opts);
  opts.method = cfg.method;
  opts.n_query_heads = cfg.queryHeads;
  if (cfg.rounds >= 0) opts.sculpt_rounds = cfg.rounds;
  if (cfg.keyIters > 0) opts.sculpt_key_iters = cfg.keyIters;
  if (cfg.lseWeight >= 0) opts.lse_weight = cfg.lseWeight;
  const int64_t m = cfg.queryHeads * (cfg.observed + cfg.synthetic);
  std::printf("backend: %s\n", kvc_compress_backend());
  std::printf("heads: %d x T=%lld + %d x T=%lld, d=%lld, m=%lld queries/head, method %d, "
              "rounds %d x %d L-BFGS iters, lse_weight %g\n",
              cfg.globalHeads, (long long)cfg.globalLen, cfg.localHeads, (long long)cfg.localLen,
              (long long)cfg.headDim, (long long)m, opts.method, opts.sculpt_rounds,
              opts.sculpt_key_iters, opts.lse_weight);

  for (double r : cfg.ratios) {
    std::vector<kvc_compress_job> jobs(heads.size());
    std::vector<std::vector<float>> outK(heads.size()), outV(heads.size());
    for (size_t i = 0; i < heads.size(); ++i) {
      const Head& h = heads[i];
      const int64_t budget = std::max<int64_t>(int64_t(std::lround(r * double(h.T))), 68);
      outK[i].resize(budget * cfg.headDim);
      outV[i].resize(budget * cfg.headDim);
      jobs[i] = kvc_compress_job{};
      jobs[i].keys = h.keys.data();
      jobs[i].values = h.values.data();
      jobs[i].queries = h.queries.data();
      jobs[i].seq_len = h.T;
      jobs[i].head_dim = cfg.headDim;
      jobs[i].value_dim = cfg.headDim;
      jobs[i].n_queries = m;
      jobs[i].budget = budget;
      jobs[i].out_keys = outK[i].data();
      jobs[i].out_values = outV[i].data();
    }
    const double cpu0 = cpuSeconds();
    const auto t0 = std::chrono::steady_clock::now();
    const int status = kvc_compress_heads(jobs.data(), int64_t(jobs.size()), &opts, cfg.threads);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpuSeconds() - cpu0;
    if (status != 0) {
      std::fprintf(stderr, "kvc_compress_heads failed: %s\n", kvc_compress_last_error());
      return 1;
    }
    double secG = 0, secL = 0, relStartG = 0, relEndG = 0, relStartL = 0, relEndL = 0;
    double lossStart = 0, lossEnd = 0;
    int evals = 0;
    double heldOut = 0;
    for (size_t i = 0; i < jobs.size(); ++i) {
      const auto& s = jobs[i].stats;
      const bool global = int(i) < cfg.globalHeads;
      (global ? secG : secL) += s.seconds;
      (global ? relStartG : relStartL) += s.initial_rel_mse;
      (global ? relEndG : relEndL) += s.final_rel_mse;
      lossStart += s.initial_loss;
      lossEnd += s.final_loss;
      evals += s.evaluations;
      heldOut += heldOutError(heads[i], outK[i].data(), outV[i].data(), s.n_out, cfg.headDim);
    }
    const int nG = std::max(cfg.globalHeads, 1), nL = std::max(cfg.localHeads, 1);
    std::printf("r=%.2f  wall %.2f s (cpu %.2f s) for %zu heads | s/head: global %.3f, local %.3f | "
                "rel MSE (Select+Fit -> final): global %.4g -> %.4g, local %.4g -> %.4g | "
                "mean loss %.4g -> %.4g (x%.2f) | held-out rel err %.4g | %d evals\n",
                r, wall, cpu, jobs.size(), secG / nG, secL / nL, relStartG / nG, relEndG / nG,
                relStartL / nL, relEndL / nL, lossStart / jobs.size(), lossEnd / jobs.size(),
                lossEnd > 0 ? lossStart / lossEnd : 0.0, heldOut / double(jobs.size()), evals);
    std::fflush(stdout);
  }
  return 0;
}
