//===- Vote.cpp - kvc.vote for compiled kvc code ------------------------------===//
#include "kvc/Runtime/CompilerABI.h"
#include "kvc/Runtime/Vote.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {
template <typename M> float at(const M *m, std::initializer_list<int64_t> idx) {
  int64_t off = m->offset, k = 0;
  for (int64_t i : idx)
    off += i * m->strides[k++];
  return m->aligned[off];
}
} // namespace

extern "C" void _mlir_ciface_kvc_rt_vote(double p, int64_t samples, int64_t seed, int64_t sinks,
                                         int64_t recent, double ropeTheta, int64_t nFuture,
                                         kvc_memref_f32_4d *keys, kvc_memref_f32_4d *queries,
                                         kvc_memref_f32_1d *hiddenMean,
                                         kvc_memref_f32_1d *hiddenVar, kvc_memref_f32_3d *wq,
                                         kvc_memref_i64_3d *kept, kvc_memref_i64_2d *counts) {
  int64_t B = keys->sizes[0], H = keys->sizes[1], S = keys->sizes[2], D = keys->sizes[3];
  int64_t Hq = queries->sizes[1], M = queries->sizes[2], dModel = hiddenMean->sizes[0];
  int64_t g = Hq / H;
  kvc_vote_options opts;
  kvc_vote_default_options(&opts);
  opts.p = p;
  opts.n_samples = int32_t(samples);
  opts.seed = uint64_t(seed);
  opts.n_sink = sinks;
  opts.n_recent = recent;
  opts.rope_theta = ropeTheta;
  opts.n_future = nFuture;
  std::vector<float> mean(static_cast<size_t>(dModel)), var(static_cast<size_t>(dModel));
  for (int64_t i = 0; i < dModel; ++i) {
    mean[size_t(i)] = at(hiddenMean, {i});
    var[size_t(i)] = at(hiddenVar, {i});
  }
  std::vector<float> k(size_t(S * D)), q(size_t(g * M * D)), w(size_t(g * D * dModel));
  std::vector<int64_t> out(static_cast<size_t>(S));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t t = 0; t < S; ++t)
        for (int64_t d = 0; d < D; ++d)
          k[size_t(t * D + d)] = at(keys, {b, h, t, d});
      for (int64_t j = 0; j < g; ++j) {
        for (int64_t m = 0; m < M; ++m)
          for (int64_t d = 0; d < D; ++d)
            q[size_t((j * M + m) * D + d)] = at(queries, {b, h * g + j, m, d});
        for (int64_t d = 0; d < D; ++d)
          for (int64_t i = 0; i < dModel; ++i)
            w[size_t((j * D + d) * dModel + i)] = at(wq, {h * g + j, d, i});
      }
      kvc_vote_head head{};
      head.keys = k.data();
      head.seq_len = S;
      head.head_dim = D;
      head.current_queries = q.data();
      head.n_current = M;
      head.n_query_heads = g;
      head.hidden_mean = mean.data();
      head.hidden_var = var.data();
      head.d_model = dModel;
      head.w_q = w.data();
      head.position = -1;
      int64_t n = 0;
      if (kvc_vote_gvote_head(&head, &opts, out.data(), &n, nullptr) != 0) {
        std::fprintf(stderr, "kvc runtime: kvc.vote failed: %s\n", kvc_vote_last_error());
        std::exit(1);
      }
      for (int64_t j = 0; j < kept->sizes[2]; ++j)
        kept->aligned[kept->offset + b * kept->strides[0] + h * kept->strides[1] +
                      j * kept->strides[2]] = j < n ? out[size_t(j)] : -1;
      counts->aligned[counts->offset + b * counts->strides[0] + h * counts->strides[1]] = n;
    }
}
