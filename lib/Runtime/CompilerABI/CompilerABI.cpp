//===- CompilerABI.cpp - entry points for compiled kvc code ------------------===//
//
// Adapts kvc.compress's lowering (memref descriptors, one call per layer) to the compression
// library's per-head jobs. Data are copied on `add`: the compiled program may free its buffers
// before `run`.
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/CompilerABI.h"
#include "kvc/Runtime/Compress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

struct Layer {
  int64_t batch = 0, kvHeads = 0, seqLen = 0, headDim = 0, valueDim = 0;
  int64_t queryHeads = 0, queriesPerHead = 0;
  std::vector<float> keys, values, queries; // [B][H][S][D], [B][H][S][Dv], [B][Hq][M][D]
  std::vector<float> outKeys, outValues;    // per job, budget rows (filled by run)
  std::vector<int64_t> budgets;             // [B][H]
};

struct Session {
  int64_t method, budget, budgetMode, sinks, recent;
  double ratio;
  std::vector<Layer> layers;
};

[[noreturn]] void fail(const char *what) {
  std::fprintf(stderr, "kvc runtime: kvc.compress failed: %s: %s\n", what,
               kvc_compress_last_error());
  std::exit(1);
}

[[noreturn]] void failArg(const char *msg) {
  std::fprintf(stderr, "kvc runtime: kvc.compress failed: %s\n", msg);
  std::exit(1);
}

/// Copies a strided 4-D memref into a dense row-major vector.
std::vector<float> gather(const kvc_memref_f32_4d *m) {
  const int64_t *n = m->sizes, *s = m->strides;
  std::vector<float> out(size_t(n[0] * n[1] * n[2] * n[3]));
  size_t k = 0;
  for (int64_t a = 0; a < n[0]; ++a)
    for (int64_t b = 0; b < n[1]; ++b)
      for (int64_t c = 0; c < n[2]; ++c)
        for (int64_t d = 0; d < n[3]; ++d)
          out[k++] = m->aligned[m->offset + a * s[0] + b * s[1] + c * s[2] + d * s[3]];
  return out;
}

int64_t headBudget(const Session &s, int64_t seqLen) {
  int64_t t = s.ratio > 0 ? int64_t(std::llround(s.ratio * double(seqLen))) : s.budget;
  int64_t floor = std::min(seqLen, s.sinks + s.recent);
  return std::clamp(t, floor, seqLen);
}

} // namespace

extern "C" {

int64_t _mlir_ciface_kvc_rt_compress_begin(int64_t method, double ratio, int64_t budget,
                                           int64_t budgetMode, int64_t sinks, int64_t recent,
                                           int64_t nLayers) {
  if (nLayers <= 0)
    failArg("no layers");
  auto *s = new Session{method, budget, budgetMode, sinks, recent, ratio, {}};
  s->layers.resize(size_t(nLayers));
  return reinterpret_cast<int64_t>(s);
}

void _mlir_ciface_kvc_rt_compress_add(int64_t handle, int64_t layer, kvc_memref_f32_4d *keys,
                                      kvc_memref_f32_4d *values, kvc_memref_f32_4d *queries) {
  auto *s = reinterpret_cast<Session *>(handle);
  if (layer < 0 || layer >= int64_t(s->layers.size()))
    failArg("layer index out of range");
  Layer &l = s->layers[size_t(layer)];
  l.batch = keys->sizes[0];
  l.kvHeads = keys->sizes[1];
  l.seqLen = keys->sizes[2];
  l.headDim = keys->sizes[3];
  l.valueDim = values->sizes[3];
  l.queryHeads = queries->sizes[1];
  l.queriesPerHead = queries->sizes[2];
  if (l.kvHeads <= 0 || (l.queriesPerHead > 0 && l.queryHeads % l.kvHeads != 0))
    failArg("query heads must be a multiple of KV heads");
  l.keys = gather(keys);
  l.values = gather(values);
  l.queries = gather(queries);
}

void _mlir_ciface_kvc_rt_compress_run(int64_t handle) {
  auto *s = reinterpret_cast<Session *>(handle);
  kvc_compress_options opts;
  kvc_compress_default_options(&opts);
  opts.method = int32_t(s->method);
  opts.n_sink = s->sinks;
  opts.n_recent = s->recent;
  std::vector<kvc_compress_job> jobs;
  std::vector<std::pair<size_t, int64_t>> owner; // (layer, b*H + h)
  for (size_t li = 0; li < s->layers.size(); ++li) {
    Layer &l = s->layers[li];
    int64_t group = l.queriesPerHead > 0 ? l.queryHeads / l.kvHeads : 1;
    opts.n_query_heads = group; // one value for every layer: checked below
    l.budgets.assign(size_t(l.batch * l.kvHeads), 0);
    l.outKeys.assign(size_t(l.batch * l.kvHeads * l.seqLen * l.headDim), 0.f);
    l.outValues.assign(size_t(l.batch * l.kvHeads * l.seqLen * l.valueDim), 0.f);
    for (int64_t b = 0; b < l.batch; ++b)
      for (int64_t h = 0; h < l.kvHeads; ++h) {
        kvc_compress_job job{};
        int64_t row = b * l.kvHeads + h;
        job.keys = l.keys.data() + row * l.seqLen * l.headDim;
        job.values = l.values.data() + row * l.seqLen * l.valueDim;
        // Query heads h*g .. h*g+g-1 of batch b are contiguous [g][M][D].
        job.queries = l.queriesPerHead > 0
                          ? l.queries.data() + (b * l.queryHeads + h * group) *
                                                   l.queriesPerHead * l.headDim
                          : nullptr;
        job.n_queries = l.queriesPerHead > 0 ? group * l.queriesPerHead : 0;
        job.seq_len = l.seqLen;
        job.head_dim = l.headDim;
        job.value_dim = l.valueDim;
        job.budget = headBudget(*s, l.seqLen);
        job.out_keys = l.outKeys.data() + row * l.seqLen * l.headDim;
        job.out_values = l.outValues.data() + row * l.seqLen * l.valueDim;
        jobs.push_back(job);
        owner.push_back({li, row});
      }
  }
  // The library takes one GQA group size per call; layers of one model share it.
  for (const Layer &l : s->layers)
    if (l.queriesPerHead > 0 && l.queryHeads / l.kvHeads != opts.n_query_heads)
      failArg("all layers of one kvc.compress must have the same GQA group size");
  if (s->budgetMode == 1) {
    int64_t total = 0;
    for (auto &j : jobs)
      total += j.budget;
    std::vector<double> difficulty(jobs.size());
    std::vector<int64_t> budgets(jobs.size());
    double spread = 0;
    if (kvc_compress_pilot(jobs.data(), int64_t(jobs.size()), total,
                           std::min<int64_t>(s->sinks + s->recent, total), /*alpha=*/0.5, &opts,
                           /*num_threads=*/0, difficulty.data(), budgets.data(), &spread) != 0)
      fail("pilot budget allocation");
    for (size_t i = 0; i < jobs.size(); ++i)
      jobs[i].budget = budgets[i];
  }
  if (kvc_compress_heads(jobs.data(), int64_t(jobs.size()), &opts, /*num_threads=*/0) != 0)
    fail("compression");
  for (size_t i = 0; i < jobs.size(); ++i) {
    Layer &l = s->layers[owner[i].first];
    l.budgets[size_t(owner[i].second)] = jobs[i].stats.n_out;
  }
}

void _mlir_ciface_kvc_rt_compress_get(int64_t handle, int64_t layer, kvc_memref_f32_4d *keys,
                                      kvc_memref_f32_4d *values, kvc_memref_i64_2d *lengths) {
  auto *s = reinterpret_cast<Session *>(handle);
  const Layer &l = s->layers[size_t(layer)];
  if (keys->sizes[2] < l.seqLen || values->sizes[2] < l.seqLen)
    failArg("output capacity smaller than the cache");
  for (int64_t b = 0; b < l.batch; ++b)
    for (int64_t h = 0; h < l.kvHeads; ++h) {
      int64_t row = b * l.kvHeads + h;
      int64_t t = l.budgets[size_t(row)];
      lengths->aligned[lengths->offset + b * lengths->strides[0] + h * lengths->strides[1]] = t;
      for (int64_t j = 0; j < keys->sizes[2]; ++j) {
        for (int64_t d = 0; d < l.headDim; ++d)
          keys->aligned[keys->offset + b * keys->strides[0] + h * keys->strides[1] +
                        j * keys->strides[2] + d * keys->strides[3]] =
              j < t ? l.outKeys[size_t((row * l.seqLen + j) * l.headDim + d)] : 0.f;
        for (int64_t d = 0; d < l.valueDim; ++d)
          values->aligned[values->offset + b * values->strides[0] + h * values->strides[1] +
                          j * values->strides[2] + d * values->strides[3]] =
              j < t ? l.outValues[size_t((row * l.seqLen + j) * l.valueDim + d)] : 0.f;
      }
    }
}

void _mlir_ciface_kvc_rt_compress_end(int64_t handle) {
  delete reinterpret_cast<Session *>(handle);
}

} // extern "C"
