//===- EncodedCache.cpp - encoded KV caches for compiled kvc code -----------===//
//
// One codec head (Codec.h) per (batch, KV head) row. Error-bounded codecs (bits = 0) grow by
// appends; fixed-width KIVI codecs (bits > 0) are built once (the compiler rejects appends).
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/Codec.h"
#include "kvc/Runtime/CompilerABI.h"

#include "CodecParams.h"
#include "EncodeRows.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct EncodedCache {
  int64_t batch = 0, heads = 0, headDim = 0;
  bool ragged = false;
  int64_t bits = 0;
  std::vector<kvc_codec_head *> rows; // bits == 0
  std::vector<kvc_kivi_head *> kivi;  // bits > 0
  ~EncodedCache() {
    for (auto *h : rows)
      kvc_codec_head_free(h);
    for (auto *h : kivi)
      kvc_kivi_free(h);
  }
  int64_t rowTokens(int64_t r) const {
    return bits == 0 ? int64_t(kvc_codec_head_num_tokens(rows[size_t(r)]))
                     : int64_t(kvc_kivi_num_tokens(kivi[size_t(r)]));
  }
};

// Handles live until exit; keeping them here frees them then and lets leak checkers agree.
std::mutex registryMutex;
std::vector<std::unique_ptr<EncodedCache>> &registry() {
  static std::vector<std::unique_ptr<EncodedCache>> r;
  return r;
}

[[noreturn]] void fail(const char *what) {
  std::fprintf(stderr, "kvc runtime: encoded cache: %s: %s\n", what, kvc_codec_last_error());
  std::exit(1);
}

[[noreturn]] void failArg(const char *msg) {
  std::fprintf(stderr, "kvc runtime: encoded cache: %s\n", msg);
  std::exit(1);
}

EncodedCache *get(int64_t handle) { return reinterpret_cast<EncodedCache *>(handle); }

/// Row (b, h) of a strided [B, H, S, D] f32 memref, tokens [0, n), as dense [n][D].
std::vector<float> row(const kvc_memref_f32_4d *m, int64_t b, int64_t h, int64_t n) {
  const float *base = m->aligned + m->offset;
  return kvc::rt::gatherRow(m->sizes, m->strides, b, h, n, [base](int64_t i) { return base[i]; });
}

} // namespace

extern "C" {

int64_t _mlir_ciface_kvc_rt_encode(int64_t bits, int64_t keyGroup, int64_t keyBlock,
                                   double keyError, int64_t valueBlock, double valueError,
                                   int64_t entropy, int64_t recentKeys, int64_t recentValues,
                                   kvc_memref_f32_4d *keys, kvc_memref_f32_4d *values,
                                   kvc_memref_i64_2d *lengths) {
  (void)entropy; // see CompilerABI.h: storage is always Huffman-coded on the CPU runtime
  auto cache = std::make_unique<EncodedCache>();
  cache->batch = keys->sizes[0];
  cache->heads = keys->sizes[1];
  cache->headDim = keys->sizes[3];
  cache->bits = bits;
  cache->ragged = lengths->sizes[0] > 0;
  if (values->sizes[3] != cache->headDim)
    failArg("keys and values must have the same head dim for the codec");
  if (bits == 0) {
    const kvc_codec_params p = kvc::rt::codecParams(cache->headDim, keyGroup, keyBlock, keyError,
                                                    valueBlock, valueError, recentKeys,
                                                    recentValues);
    const float *kb = keys->aligned + keys->offset, *vb = values->aligned + values->offset;
    std::string err = kvc::rt::encodeRows(
        p, keys->sizes, keys->strides, values->strides, lengths,
        [kb](int64_t i) { return kb[i]; }, [vb](int64_t i) { return vb[i]; }, cache->rows);
    if (!err.empty())
      failArg(err.c_str());
  } else {
    for (int64_t b = 0; b < cache->batch; ++b)
      for (int64_t h = 0; h < cache->heads; ++h) {
        std::string err;
        const int64_t n = kvc::rt::rowTokens(lengths, b, h, keys->sizes[2], err);
        if (n < 0)
          failArg(err.c_str());
        std::vector<float> k = row(keys, b, h, n), v = row(values, b, h, n);
        kvc_kivi_params p;
        kvc_kivi_default_params(&p, uint32_t(cache->headDim), uint32_t(bits));
        p.group_tokens = uint32_t(keyBlock);
        p.recent_tokens = uint32_t(recentKeys);
        kvc_kivi_head *head = nullptr;
        if (kvc_kivi_quantize(&p, k.data(), v.data(), uint64_t(n), &head) != 0)
          fail("KIVI quantize");
        cache->kivi.push_back(head);
      }
  }
  std::lock_guard<std::mutex> lock(registryMutex);
  registry().push_back(std::move(cache));
  return reinterpret_cast<int64_t>(registry().back().get());
}

int64_t _mlir_ciface_kvc_rt_encoded_append(int64_t handle, kvc_memref_f32_4d *keys,
                                           kvc_memref_f32_4d *values) {
  EncodedCache *c = get(handle);
  if (c->bits != 0)
    failArg("appending to a fixed-width (KIVI) encoded cache is not supported");
  int64_t n = keys->sizes[2];
  for (int64_t b = 0; b < c->batch; ++b)
    for (int64_t h = 0; h < c->heads; ++h) {
      std::vector<float> k = row(keys, b, h, n), v = row(values, b, h, n);
      if (kvc_codec_head_append(c->rows[size_t(b * c->heads + h)], k.data(), v.data(),
                                uint64_t(n)) != 0)
        fail("append");
    }
  return handle;
}

int64_t kvc_rt_encoded_capacity(int64_t handle) {
  EncodedCache *c = get(handle);
  int64_t cap = 0;
  for (int64_t r = 0; r < c->batch * c->heads; ++r)
    cap = std::max(cap, c->rowTokens(r));
  return cap;
}

int64_t _mlir_ciface_kvc_rt_encoded_capacity(int64_t handle) {
  return kvc_rt_encoded_capacity(handle);
}

void _mlir_ciface_kvc_rt_encoded_decode(int64_t handle, kvc_memref_f32_4d *keys,
                                        kvc_memref_f32_4d *values) {
  EncodedCache *c = get(handle);
  int64_t d = c->headDim, cap = keys->sizes[2];
  std::vector<float> k, v;
  for (int64_t b = 0; b < c->batch; ++b)
    for (int64_t h = 0; h < c->heads; ++h) {
      int64_t r = b * c->heads + h, n = c->rowTokens(r);
      if (n > cap)
        failArg("decode buffer smaller than the cache");
      k.assign(size_t(n * d), 0.f);
      v.assign(size_t(n * d), 0.f);
      int status = c->bits == 0 ? kvc_codec_head_decode(c->rows[size_t(r)], k.data(), v.data())
                                : kvc_kivi_dequantize(c->kivi[size_t(r)], k.data(), v.data());
      if (n > 0 && status != 0)
        fail("decode");
      for (int64_t t = 0; t < cap; ++t)
        for (int64_t j = 0; j < d; ++j) {
          int64_t kOff = keys->offset + b * keys->strides[0] + h * keys->strides[1] +
                         t * keys->strides[2] + j * keys->strides[3];
          int64_t vOff = values->offset + b * values->strides[0] + h * values->strides[1] +
                         t * values->strides[2] + j * values->strides[3];
          keys->aligned[kOff] = t < n ? k[size_t(t * d + j)] : 0.f;
          values->aligned[vOff] = t < n ? v[size_t(t * d + j)] : 0.f;
        }
    }
}

void _mlir_ciface_kvc_rt_encoded_lengths(int64_t handle, kvc_memref_i64_2d *lengths) {
  EncodedCache *c = get(handle);
  for (int64_t b = 0; b < c->batch; ++b)
    for (int64_t h = 0; h < c->heads; ++h)
      lengths->aligned[lengths->offset + b * lengths->strides[0] + h * lengths->strides[1]] =
          c->rowTokens(b * c->heads + h);
}

void kvc_rt_encoded_bytes(int64_t handle, uint64_t *stored, uint64_t *fp16) {
  EncodedCache *c = get(handle);
  *stored = *fp16 = 0;
  for (int64_t r = 0; r < c->batch * c->heads; ++r) {
    kvc_codec_stats s;
    int status = c->bits == 0 ? kvc_codec_head_stats(c->rows[size_t(r)], &s)
                              : kvc_kivi_stats(c->kivi[size_t(r)], &s);
    if (status != 0)
      fail("stats");
    *stored += s.total_bytes;
    *fp16 += s.fp16_bytes;
  }
}

} // extern "C"
