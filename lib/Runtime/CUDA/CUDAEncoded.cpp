//===- CUDAEncoded.cpp - KVComp-encoded caches on the GPU -----------------===//
//
// Packs codec heads into the device form of EncodedKernelGen.h and launches the kernels.
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/CUDAEncoded.h"

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {
struct Memref1D {
  uint64_t alloc, aligned;
  int64_t offset, size, stride;
  void push(void **params, int &n) {
    params[n++] = &alloc;
    params[n++] = &aligned;
    params[n++] = &offset;
    params[n++] = &size;
    params[n++] = &stride;
  }
};
Memref1D desc(kvc_cuda_ptr p, int64_t n) { return {p, p, 0, n, 1}; }

thread_local std::string encError;
int fail(const char **err, const std::string &msg) {
  encError = "kvc_encoded_pack: " + msg;
  if (err)
    *err = encError.c_str();
  return -1;
}

template <class T> void append(std::vector<T> &dst, const T *src, size_t n) {
  dst.insert(dst.end(), src, src + n);
}
} // namespace

extern "C" {

int kvc_cuda_encoded_parse_name(const char *name, kvc_encoded_kernel_config *out) {
  std::string s(name);
  size_t pos = s.find("_d");
  while (pos != std::string::npos) {
    kvc_encoded_kernel_config c{};
    char qt[8] = {0};
    int consumed = 0;
    if (sscanf(s.c_str() + pos, "_d%d_g%d_q%d_%4[bf1632]_kb%d_vb%d_u%d_enc%n", &c.head_dim,
               &c.group, &c.query_seq, qt, &c.key_block, &c.value_block, &c.unroll,
               &consumed) == 7 &&
        consumed > 0) {
      if (!std::strcmp(qt, "bf16"))
        c.query_type = 0, c.query_bytes = 2;
      else if (!std::strcmp(qt, "f16"))
        c.query_type = 1, c.query_bytes = 2;
      else if (!std::strcmp(qt, "f32"))
        c.query_type = 2, c.query_bytes = 4;
      else
        return -1;
      *out = c;
      return 0;
    }
    pos = s.find("_d", pos + 1);
  }
  return -1;
}

int kvc_encoded_pack(const kvc_codec_head *const *heads, int64_t batch, int64_t hkv,
                     kvc_encoded_host_form *out, const char **err) {
  std::memset(out, 0, sizeof *out);
  const int64_t rows = batch * hkv;
  if (rows <= 0 || !heads)
    return fail(err, "no heads");
  kvc_codec_params p0;
  if (kvc_codec_head_params(heads[0], &p0))
    return fail(err, kvc_codec_last_error());
  const int64_t D = p0.head_dim, KB = p0.key_block_tokens, VB = p0.value_block_tokens;
  std::vector<int32_t> rowInfo, aux, syms, lut, kbo, kvo, vbo, vvo;
  std::vector<uint32_t> kw, vw;
  std::vector<float> kmin, kstep, vmin, vstep;
  std::vector<uint16_t> krec, vrec;
  int64_t maxT = 0;
  uint64_t tokens = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const kvc_codec_head *h = heads[r];
    kvc_codec_params p;
    if (kvc_codec_head_params(h, &p))
      return fail(err, kvc_codec_last_error());
    if (int64_t(p.head_dim) != D || int64_t(p.key_block_tokens) != KB ||
        int64_t(p.value_block_tokens) != VB)
      return fail(err, "row " + std::to_string(r) + ": head dim / block sizes differ from row 0");
    if (p.key_grouping != KVC_CODEC_KEY_BLOCK)
      return fail(err, "per-channel key groups are not supported by the GPU kernels");
    const int64_t T = int64_t(kvc_codec_head_num_tokens(h));
    maxT = std::max(maxT, T);
    tokens += uint64_t(T);
    kvc_codec_stream_view sv[2];
    kvc_codec_huffman_tables tb[2];
    for (int s = 0; s < 2; ++s)
      if (kvc_codec_head_view(h, s, &sv[s], &tb[s]))
        return fail(err, kvc_codec_last_error());
    const int64_t nk = int64_t(sv[0].num_blocks) * KB, nv = int64_t(sv[1].num_blocks) * VB;
    int32_t info[8] = {int32_t(T),
                       int32_t(nk),
                       int32_t(nv),
                       int32_t(kbo.size()),
                       int32_t(vbo.size()),
                       int32_t(krec.size()),
                       int32_t(vrec.size()),
                       int32_t(aux.size())};
    append(rowInfo, info, 8);
    for (int s = 0; s < 2; ++s) {
      const kvc_codec_stream_view &v = sv[s];
      const kvc_codec_huffman_tables &t = tb[s];
      std::vector<uint32_t> &words = s ? vw : kw;
      std::vector<int32_t> &bo = s ? vbo : kbo, &vo = s ? vvo : kvo;
      std::vector<float> &mn = s ? vmin : kmin, &st = s ? vstep : kstep;
      std::vector<uint16_t> &rec = s ? vrec : krec;
      const uint64_t wbase = words.size();
      if (wbase + v.num_words >= (uint64_t(1) << 31))
        return fail(err, "a stream exceeds 2^31 words (32-bit offsets in the kernel ABI)");
      for (uint32_t b = 0; b < v.num_blocks; ++b)
        bo.push_back(int32_t(wbase + v.block_word_offsets[b]));
      append(vo, reinterpret_cast<const int32_t *>(v.vector_bit_offsets),
             size_t(v.num_blocks) * v.vectors_per_block);
      append(mn, v.mins, size_t(v.num_blocks) * v.params_per_block);
      append(st, v.steps, size_t(v.num_blocks) * v.params_per_block);
      append(words, v.words, size_t(v.num_words));
      append(rec, v.recent_fp16, size_t(v.recent_tokens) * D);
      std::vector<int32_t> a(64, 0);
      std::vector<int32_t> l(2048, 0);
      if (v.has_codebook) {
        if (t.lut_bits != 11)
          return fail(err, "LUT is not 11 bits");
        if (t.raw_bits > 16 || t.max_symbol >= 65536 || t.max_code_length > 16)
          return fail(err, "symbols >= 2^16 or codes > 16 bits are not supported");
        for (int i = 0; i < 17; ++i) {
          a[i] = int32_t(t.first_code[i]);
          a[17 + i] = int32_t(t.length_count[i]);
          a[34 + i] = int32_t(t.first_index[i]);
        }
        a[51] = int32_t(t.escape_symbol);
        a[52] = int32_t(t.raw_bits);
        a[53] = int32_t(syms.size());
        for (uint32_t i = 0; i < t.num_codes; ++i)
          syms.push_back(int32_t(t.sorted_symbols[i]));
        for (int w = 0; w < 2048; ++w) {
          uint32_t e = t.lut[w], len = e >> 16, sym = e & 0xFFFF;
          if (e == 0 || sym == t.escape_symbol)
            continue; // slow path
          float f = float(sym);
          uint32_t bits;
          std::memcpy(&bits, &f, 4);
          l[w] = int32_t(bits | len); // float(sym) < 2^16 has >= 7 zero low mantissa bits
        }
      }
      append(aux, a.data(), a.size());
      append(lut, l.data(), l.size());
    }
    // Keys use the recent window from nk on; the kernel indexes krec[krec0 + (t - nk)*D].
  }
  // The kernels prefetch up to 3 words past a vector's last word without a bounds check.
  kw.insert(kw.end(), 4, 0u);
  vw.insert(vw.end(), 4, 0u);
  // No zero-sized buffers.
  auto nz = [](auto &v) {
    if (v.empty())
      v.resize(8);
  };
  nz(syms), nz(kw), nz(vw), nz(kbo), nz(kvo), nz(vbo), nz(vvo), nz(kmin), nz(kstep), nz(vmin),
      nz(vstep), nz(krec), nz(vrec);
  const void *src[KVC_ENC_NUM_BUFFERS] = {rowInfo.data(), aux.data(), syms.data(), lut.data(),
                                          kw.data(), kbo.data(), kvo.data(), kmin.data(),
                                          kstep.data(), krec.data(), vw.data(), vbo.data(),
                                          vvo.data(), vmin.data(), vstep.data(), vrec.data()};
  const size_t lens[KVC_ENC_NUM_BUFFERS] = {rowInfo.size(), aux.size(),  syms.size(),
                                            lut.size(),     kw.size(),   kbo.size(),
                                            kvo.size(),     kmin.size(), kstep.size(),
                                            krec.size(),    vw.size(),   vbo.size(),
                                            vvo.size(),     vmin.size(), vstep.size(),
                                            vrec.size()};
  out->batch = batch;
  out->hkv = hkv;
  out->head_dim = D;
  out->key_block = KB;
  out->value_block = VB;
  out->max_tokens = maxT;
  out->tokens = tokens;
  for (int i = 0; i < KVC_ENC_NUM_BUFFERS; ++i) {
    const int64_t eb = (i == KVC_ENC_KREC || i == KVC_ENC_VREC) ? 2 : 4;
    out->len[i] = int64_t(lens[i]);
    out->elem_bytes[i] = eb;
    out->data[i] = std::malloc(lens[i] * size_t(eb));
    if (!out->data[i]) {
      kvc_encoded_host_free(out);
      return fail(err, "out of host memory");
    }
    std::memcpy(out->data[i], src[i], lens[i] * size_t(eb));
  }
  return 0;
}

void kvc_encoded_host_free(kvc_encoded_host_form *f) {
  for (int i = 0; i < KVC_ENC_NUM_BUFFERS; ++i) {
    std::free(f->data[i]);
    f->data[i] = nullptr;
  }
}

int kvc_cuda_encoded_upload(const kvc_codec_head *const *heads, int64_t batch, int64_t hkv,
                            kvc_cuda_encoded_cache *out, const char **err) {
  std::memset(out, 0, sizeof *out);
  kvc_encoded_host_form h;
  if (int rc = kvc_encoded_pack(heads, batch, hkv, &h, err))
    return rc;
  out->batch = h.batch;
  out->hkv = h.hkv;
  out->head_dim = h.head_dim;
  out->key_block = h.key_block;
  out->value_block = h.value_block;
  out->max_tokens = h.max_tokens;
  out->tokens = h.tokens;
  for (int i = 0; i < KVC_ENC_NUM_BUFFERS; ++i) {
    out->len[i] = h.len[i];
    out->elem_bytes[i] = h.elem_bytes[i];
    const size_t bytes = size_t(h.len[i] * h.elem_bytes[i]);
    out->device_bytes += bytes;
    if (i == KVC_ENC_AUX || i == KVC_ENC_SYMS || i == KVC_ENC_LUT)
      out->table_bytes += bytes;
    int rc = kvc_cuda_malloc(&out->buf[i], bytes);
    if (!rc)
      rc = kvc_cuda_memcpy_htod(out->buf[i], h.data[i], bytes);
    if (rc) {
      kvc_encoded_host_free(&h);
      kvc_cuda_encoded_free(out);
      return rc;
    }
  }
  kvc_encoded_host_free(&h);
  return 0;
}

void kvc_cuda_encoded_free(kvc_cuda_encoded_cache *c) {
  for (int i = 0; i < KVC_ENC_NUM_BUFFERS; ++i)
    if (c->buf[i]) {
      kvc_cuda_free(c->buf[i]);
      c->buf[i] = 0;
    }
}

int kvc_cuda_encoded_make_plan(const kvc_encoded_kernel_config *cfg,
                               const kvc_cuda_encoded_cache *c, int numSplits, int residentCtas,
                               kvc_encoded_plan *out) {
  const int64_t rows = c->batch * c->hkv;
  int splits = numSplits;
  if (splits <= 0) {
    const int64_t slots = residentCtas > 0 ? residentCtas : 4 * 132;
    const int64_t tiles = (c->max_tokens + cfg->value_block - 1) / cfg->value_block;
    const int64_t maxS = std::min<int64_t>(std::max<int64_t>(1, tiles / 2),
                                           std::max<int64_t>(1, 4 * slots / rows));
    int64_t bestS = 1, bestW = (rows + slots - 1) / slots;
    for (int64_t s = 2; s <= maxS; ++s) {
      int64_t w = (rows * s + slots - 1) / slots;
      if (w * bestS < bestW * s) {
        bestS = s;
        bestW = w;
      }
    }
    splits = int(bestS);
  }
  const int64_t nq = rows * cfg->group * cfg->query_seq;
  out->num_splits = splits;
  out->o_part_offset = 0;
  out->ml_part_offset = size_t(nq * splits * cfg->head_dim) * 4;
  out->workspace_bytes = out->ml_part_offset + size_t(nq * splits * 2) * 4;
  return 0;
}

int kvc_cuda_encoded_launch(kvc_cuda_function split, kvc_cuda_function merge,
                            const kvc_encoded_kernel_config *cfg, const kvc_cuda_encoded_cache *c,
                            const kvc_encoded_plan *plan, kvc_cuda_ptr q, kvc_cuda_ptr ws,
                            kvc_cuda_ptr out, kvc_cuda_stream stream) {
  const int64_t D = cfg->head_dim;
  const int64_t nq = c->batch * c->hkv * cfg->group * cfg->query_seq;
  Memref1D m[KVC_ENC_NUM_BUFFERS + 5];
  int nm = 0;
  m[nm++] = desc(q, nq * D);
  for (int i = 0; i < KVC_ENC_NUM_BUFFERS; ++i)
    m[nm++] = desc(c->buf[i], c->len[i]);
  m[nm++] = desc(ws + plan->o_part_offset, nq * plan->num_splits * D);
  m[nm++] = desc(ws + plan->ml_part_offset, nq * plan->num_splits * 2);
  void *params[5 * (KVC_ENC_NUM_BUFFERS + 5) + 4];
  int n = 0;
  for (int i = 0; i < nm; ++i)
    m[i].push(params, n);
  int rc = kvc_cuda_launch(split, unsigned(plan->num_splits), unsigned(c->hkv),
                           unsigned(c->batch), unsigned(D), 1, 1, 0, stream, params);
  if (rc)
    return rc;
  Memref1D mo = m[nm - 2], mm = m[nm - 1], mout = desc(out, nq * D);
  int64_t ns = plan->num_splits;
  n = 0;
  mo.push(params, n);
  mm.push(params, n);
  mout.push(params, n);
  params[n++] = &ns;
  return kvc_cuda_launch(merge, unsigned(nq), 1, 1, unsigned(D), 1, 1, 0, stream, params);
}

} // extern "C"
