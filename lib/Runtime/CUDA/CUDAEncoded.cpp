//===- CUDAEncoded.cpp - KVComp-encoded caches on the GPU -----------------===//
//
// Packs codec heads into the device form of EncodedKernelGen.h and launches the kernels.
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/CUDAEncoded.h"
#include "kvc/Runtime/CUDADecode.h"
#include "KernelArgs.h"

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>


namespace {
using kvc::cuda::desc;
using kvc::cuda::freeBuffers;
using kvc::cuda::Memref1D;
using kvc::cuda::launchCacheDecode;
using kvc::cuda::launchMerge;
using kvc::cuda::setPlanWorkspace;
using kvc::cuda::uploadBuffer;

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

// Device LUT entries: float(sym) | length with sym < 2^16 keeps the float exact; a miss's
// length field all ones makes a refill group that meets it fail its one length check.
static_assert(KVC_ENC_LUT_LEN_MASK < 128 && KVC_ENC_LUT_MISS == KVC_ENC_LUT_LEN_MASK,
              "LUT entry layout");

extern "C" {

int kvc_cuda_encoded_parse_name(const char *name, kvc_encoded_kernel_config *out) {
  std::string s(name);
  size_t pos = s.find("_d");
  while (pos != std::string::npos) {
    kvc_encoded_kernel_config c{};
    char qt[8] = {0};
    int consumed = 0;
    // _u<U> is followed by _enc, or by _r<G>_enc (a refill group other than 2; the decode
    // loop only, the ABI is the same).
    int group = 0, tail = 0;
    if (sscanf(s.c_str() + pos, "_d%d_g%d_q%d_%4[bf1632]_kb%d_vb%d_u%d%n", &c.head_dim,
               &c.group, &c.query_seq, qt, &c.key_block, &c.value_block, &c.unroll,
               &consumed) == 7 &&
        consumed > 0 &&
        ((sscanf(s.c_str() + pos + consumed, "_enc%n", &tail) == 0 && tail > 0) ||
         (sscanf(s.c_str() + pos + consumed, "_r%d_enc%n", &group, &tail) == 1 && tail > 0))) {
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
      a[54] = 16, a[55] = -1; // no escape code (a stream without a codebook has no blocks)
      std::vector<int32_t> l(2048, int32_t(KVC_ENC_LUT_MISS));
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
        // The escape's code, so a LUT miss tells it apart with one compare and searches only
        // lengths 12..16 otherwise (no escape: a length and code that never match).
        const uint32_t escLen = t.code_lengths[t.escape_symbol];
        a[54] = escLen ? int32_t(escLen) : 16;
        a[55] = escLen ? int32_t(t.codes[t.escape_symbol]) : -1;
        // Left-justified 16-bit limits of code lengths 12..15 (canonical codes: a long code's
        // length is 12 + the limits its top 16 bits reach) and the last sorted-symbol index.
        for (int len = 12; len <= 15; ++len)
          a[56 + len - 12] = int32_t((t.first_code[len] + t.length_count[len]) << (16 - len));
        a[60] = int32_t(t.num_codes) - 1;
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
    if (int rc = uploadBuffer(&out->buf[i], h.data[i], bytes)) {
      kvc_encoded_host_free(&h);
      kvc_cuda_encoded_free(out);
      return rc;
    }
  }
  kvc_encoded_host_free(&h);
  return 0;
}

void kvc_cuda_encoded_free(kvc_cuda_encoded_cache *c) { freeBuffers(c->buf, KVC_ENC_NUM_BUFFERS); }

int kvc_cuda_encoded_make_plan(const kvc_encoded_kernel_config *cfg,
                               const kvc_cuda_encoded_cache *c, int numSplits, int residentCtas,
                               kvc_encoded_plan *out) {
  const int64_t rows = c->batch * c->hkv;
  int splits = numSplits;
  if (splits <= 0) {
    const int64_t slots = residentCtas > 0 ? residentCtas : 4 * 132;
    const int64_t tiles = (c->max_tokens + cfg->value_block - 1) / cfg->value_block;
    // Up to one tile per split and 32 x the resident CTAs per row. Many rows (batch 32) tie at
    // one wave (s = 4) and at several (s = 33); the several-wave plan balances the rows'
    // varying decode times and measured 4.6% faster at batch 32 x 64k
    // (bench/gpu/results/h100-encoded-ov-splits.json; the cap was 4 x the resident CTAs). At
    // batch 1 one tile per split fills the wave: 4k 36.2 us against 51.3 at tiles/2, 16k 57.8
    // against 62.0 (h100-encoded-plan-b1-splits.txt; the cap was tiles / 2).
    const int64_t maxS = std::min<int64_t>(std::max<int64_t>(1, tiles),
                                           std::max<int64_t>(1, 32 * slots / rows));
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
  setPlanWorkspace(out, rows * cfg->group * cfg->query_seq, splits, cfg->head_dim);
  return 0;
}

int kvc_cuda_encoded_launch(kvc_cuda_function split, kvc_cuda_function merge,
                            const kvc_encoded_kernel_config *cfg, const kvc_cuda_encoded_cache *c,
                            const kvc_encoded_plan *plan, kvc_cuda_ptr q, kvc_cuda_ptr ws,
                            kvc_cuda_ptr out, kvc_cuda_stream stream) {
  const int64_t D = cfg->head_dim;
  return launchCacheDecode(split, merge, c->buf, c->len, KVC_ENC_NUM_BUFFERS, c->batch, c->hkv,
                           c->batch * c->hkv * cfg->group * cfg->query_seq, D, unsigned(D),
                           plan, q, ws, out, stream);
}

} // extern "C"

// ============================================================================================
// Appending on the GPU: layout with reserved capacity, precomputed row tables and store jobs.

namespace {
// One strided device-to-device copy of `height` rows of `width` bytes. Returns 1 when
// KVC_APPEND_ROW_COPIES is set (the caller then copies row by row: the comparison path of
// bench/gpu/run-append.sh), else 0 or the runtime's error code + 1000.
int copy2D(kvc_cuda_ptr dst, size_t dpitch, kvc_cuda_ptr src, size_t spitch, size_t width,
           size_t height, kvc_cuda_stream s) {
  static const bool rowCopies = std::getenv("KVC_APPEND_ROW_COPIES") != nullptr;
  if (rowCopies)
    return 1;
  const int rc = kvc_cuda_memcpy2d_dtod_async(dst, dpitch, src, spitch, width, height, s);
  return rc ? 1000 + rc : 0;
}

thread_local std::string appError;
int afail(const char **err, const std::string &msg) {
  appError = "kvc_cuda_encoded_append: " + msg;
  if (err)
    *err = appError.c_str();
  return -1;
}
int cudaFail(const char **err, int rc, const char *what) {
  appError = std::string("kvc_cuda_encoded_append: ") + what + ": " + kvc_cuda_last_error();
  if (err)
    *err = appError.c_str();
  return rc;
}
} // namespace

struct kvc_cuda_encoded_appender {
  int64_t R = 0, Hkv = 1, D = 0, KB = 0, VB = 0, M = 0, a = 0;
  std::vector<int64_t> T0;
  kvc_cuda_ptr rowsAll = 0; // (M + 1) row tables of R*8 int32
  struct Stream {
    int64_t block = 0, recent = 0, slots = 0, stride = 0, pmax = 0; // stride/pmax in tokens
    std::vector<int32_t> jobs;       // host copy, 4 per job, sorted by due count
    std::vector<int64_t> due;        // due[a] = jobs with due count <= a, a in 0..M
    std::vector<int64_t> jobRow;     // row of each job
    kvc_cuda_ptr jobsD = 0, resD = 0, encD = 0, top = 0;
    int64_t njobs = 0, encLen = 0, cap = 0, launched = 0, stored = 0, launches = 0;
    int64_t wordsPerBlock = 0, worstWords = 0;
    float eps = 0;
    int32_t maxsym = 0;
  } s[2];
  int64_t grows = 0, windowCopies = 0;
  uint64_t reserveBytes = 0;
  ~kvc_cuda_encoded_appender() {
    for (kvc_cuda_ptr p : {rowsAll, s[0].jobsD, s[0].resD, s[0].encD, s[0].top, s[1].jobsD,
                           s[1].resD, s[1].encD, s[1].top})
      if (p)
        kvc_cuda_free(p);
  }
};

extern "C" {

void kvc_encoded_encode_table(const kvc_codec_huffman_tables *t, int32_t *out,
                              uint32_t *max_bits) {
  const uint32_t esc = t->escape_symbol;
  uint32_t mb = 0;
  for (uint32_t s = 0; s <= t->max_symbol; ++s) {
    if (s < t->num_coded_symbols && t->code_lengths[s] != 0) {
      out[2 * s] = int32_t(t->codes[s]);
      out[2 * s + 1] = t->code_lengths[s];
    } else {
      out[2 * s] = int32_t((t->codes[esc] << t->raw_bits) | s);
      out[2 * s + 1] = int32_t(t->code_lengths[esc] + t->raw_bits);
    }
    mb = std::max(mb, uint32_t(out[2 * s + 1]));
  }
  if (max_bits)
    *max_bits = mb;
}

int kvc_cuda_encoded_store_kernels_find(kvc_cuda_module m, const char *ptx, int64_t D,
                                        int64_t KB, int64_t VB, kvc_encoded_store_kernels *out,
                                        const char **err) {
  std::memset(out, 0, sizeof *out);
  const std::string text(ptx ? ptx : "");
  const std::string tag = "_d" + std::to_string(D) + "_kb" + std::to_string(KB) + "_vb" +
                          std::to_string(VB) + "_f16_kblk";
  for (size_t p = text.find(".entry "); p != std::string::npos; p = text.find(".entry ", p + 1)) {
    size_t b = p + 7, e = text.find_first_of("( \n", b);
    std::string name = text.substr(b, e - b);
    for (int v = 0; v < 2; ++v) {
      const std::string suf = tag + (v ? "_vstore" : "_kstore");
      if (name.size() < suf.size() || name.compare(name.size() - suf.size(), suf.size(), suf))
        continue;
      size_t nt = text.find(".maxntid ", e);
      size_t next = text.find(".entry ", e);
      if (nt == std::string::npos || (next != std::string::npos && nt > next))
        return afail(err, "store kernel " + name + " has no .maxntid");
      int threads = atoi(text.c_str() + nt + 9);
      kvc_cuda_function f;
      if (int rc = kvc_cuda_module_get_function(m, name.c_str(), &f))
        return cudaFail(err, rc, "store kernel lookup");
      (v ? out->vstore : out->kstore) = f;
      (v ? out->vthreads : out->kthreads) = threads;
    }
  }
  if (!out->kstore || !out->vstore || out->kthreads <= 0 || out->vthreads <= 0)
    return afail(err, "no store kernel pair *" + tag + "_{kstore,vstore} in the PTX");
  out->head_dim = D;
  out->key_block = KB;
  out->value_block = VB;
  return 0;
}

int kvc_cuda_encoded_upload_appendable(const kvc_codec_head *const *heads, int64_t batch,
                                       int64_t hkv, int64_t maxNew,
                                       const kvc_encoded_reserve_options *opts,
                                       kvc_cuda_encoded_cache *out,
                                       kvc_cuda_encoded_appender **appOut, const char **err) {
  std::memset(out, 0, sizeof *out);
  *appOut = nullptr;
  if (maxNew < 0)
    return afail(err, "max_new_tokens must be >= 0");
  kvc_encoded_host_form H;
  if (int rc = kvc_encoded_pack(heads, batch, hkv, &H, err))
    return rc;
  auto *A = new kvc_cuda_encoded_appender();
  std::unique_ptr<kvc_cuda_encoded_appender> guard(A);
  struct HostFree {
    kvc_encoded_host_form *h;
    ~HostFree() { kvc_encoded_host_free(h); }
  } hf{&H};
  const int64_t R = batch * hkv, D = H.head_dim;
  A->R = R;
  A->Hkv = hkv;
  A->D = D;
  A->KB = H.key_block;
  A->VB = H.value_block;
  A->M = maxNew;
  const int32_t *info = static_cast<const int32_t *>(H.data[KVC_ENC_ROWS]);
  // Per row and stream: blocks, pending (unencoded) tokens, the encode table.
  std::vector<int64_t> nb[2], pend[2], encOff[2];
  std::vector<int32_t> enc[2];
  for (int st = 0; st < 2; ++st) {
    nb[st].resize(size_t(R));
    pend[st].resize(size_t(R));
    encOff[st].assign(size_t(R), -1);
  }
  A->T0.resize(size_t(R));
  uint32_t maxBits[2] = {0, 0};
  bool haveParams[2] = {false, false};
  for (int64_t r = 0; r < R; ++r) {
    kvc_codec_params p;
    if (kvc_codec_head_params(heads[r], &p))
      return afail(err, kvc_codec_last_error());
    const int64_t T = info[r * 8 + 0];
    A->T0[size_t(r)] = T;
    for (int st = 0; st < 2; ++st) {
      auto &S = A->s[st];
      const int64_t blk = st ? A->VB : A->KB;
      const int64_t rec = st ? p.value_recent_tokens : p.key_recent_tokens;
      const float eps = st ? p.value_error : p.key_error;
      const int64_t ntok = info[r * 8 + 1 + st];
      nb[st][size_t(r)] = ntok / blk;
      pend[st][size_t(r)] = T - ntok;
      if (!haveParams[st]) {
        S.block = blk;
        S.recent = rec;
        S.eps = eps;
        haveParams[st] = true;
      } else if (S.recent != rec || S.eps != eps) {
        return afail(err, std::string("row ") + std::to_string(r) + ": " +
                              (st ? "value" : "key") +
                              " error bound or recent window differs from row 0 (the store "
                              "kernels take one error bound per launch)");
      }
      if (pend[st][size_t(r)] >= rec + blk)
        return afail(err, "row " + std::to_string(r) + " holds a whole block past its window");
      kvc_codec_stream_view v;
      kvc_codec_huffman_tables t;
      if (kvc_codec_head_view(heads[r], st, &v, &t))
        return afail(err, kvc_codec_last_error());
      if (v.has_codebook) {
        uint32_t mb = 0;
        std::vector<int32_t> tab(2 * (size_t(t.max_symbol) + 1));
        kvc_encoded_encode_table(&t, tab.data(), &mb);
        if (S.maxsym == 0)
          S.maxsym = int32_t(t.max_symbol);
        else if (S.maxsym != int32_t(t.max_symbol))
          return afail(err, "rows have different max symbols");
        maxBits[st] = std::max(maxBits[st], mb);
        encOff[st][size_t(r)] = int64_t(enc[st].size());
        enc[st].insert(enc[st].end(), tab.begin(), tab.end());
      }
    }
  }
  // New blocks each row gets by token count a (the codec's cut rule, see CodecHead.cpp).
  auto newBlocks = [&](int st, int64_t r, int64_t a) -> int64_t {
    const auto &S = A->s[st];
    const int64_t pnd = pend[st][size_t(r)] + a;
    return pnd >= S.recent + S.block ? (pnd - S.recent) / S.block : 0;
  };
  for (int st = 0; st < 2; ++st) {
    auto &S = A->s[st];
    S.slots = 1;
    S.pmax = 0;
    for (int64_t r = 0; r < R; ++r) {
      S.slots = std::max(S.slots, nb[st][size_t(r)] + newBlocks(st, r, maxNew));
      S.pmax = std::max(S.pmax, pend[st][size_t(r)]);
    }
    S.stride = S.pmax + maxNew;
    if (R * S.stride * D >= (int64_t(1) << 31) || R * S.slots * std::max(S.block, D) >= (int64_t(1) << 31))
      return afail(err, "reserved windows or block tables exceed 2^31 elements (32-bit offsets)");
    const int64_t blockSymbols = S.block * D;
    const int64_t userWords = opts ? (st ? opts->words_per_value_block : opts->words_per_key_block) : 0;
    S.worstWords = (blockSymbols * int64_t(std::max(maxBits[st], 1u)) + 31) / 32 + 1;
    S.wordsPerBlock = userWords > 0 ? userWords : S.worstWords;
  }
  // Store jobs of every block max_new_tokens can cut, sorted by the count at which it falls due.
  for (int st = 0; st < 2; ++st) {
    auto &S = A->s[st];
    struct J {
      int64_t due, r, j;
    };
    std::vector<J> js;
    for (int64_t r = 0; r < R; ++r)
      for (int64_t j = 0; j < newBlocks(st, r, maxNew); ++j) {
        const int64_t due = S.recent + (j + 1) * S.block - pend[st][size_t(r)];
        if (due < 1)
          return afail(err, "internal: a block is due before any append");
        js.push_back({due, r, j});
      }
    std::sort(js.begin(), js.end(), [](const J &x, const J &y) {
      return x.due != y.due ? x.due < y.due : x.r != y.r ? x.r < y.r : x.j < y.j;
    });
    S.njobs = int64_t(js.size());
    S.due.assign(size_t(maxNew + 1), 0);
    size_t k = 0;
    for (int64_t a = 0; a <= maxNew; ++a) {
      while (k < js.size() && js[k].due <= a)
        ++k;
      S.due[size_t(a)] = int64_t(k);
    }
    for (const J &x : js) {
      const int64_t rec0 = (x.r * S.stride + S.pmax - pend[st][size_t(x.r)]) * D;
      S.jobs.push_back(int32_t(rec0 + x.j * S.block * D));
      S.jobs.push_back(int32_t(x.r * S.slots + nb[st][size_t(x.r)] + x.j));
      S.jobs.push_back(int32_t(encOff[st][size_t(x.r)])); // -1: no codebook
      S.jobs.push_back(0);
      S.jobRow.push_back(x.r);
    }
  }
  // The re-laid-out device form.
  std::vector<std::vector<uint8_t>> buf(KVC_ENC_NUM_BUFFERS);
  auto put = [&](int i, const void *p, size_t bytes) {
    buf[size_t(i)].assign(static_cast<const uint8_t *>(p), static_cast<const uint8_t *>(p) + bytes);
  };
  put(KVC_ENC_AUX, H.data[KVC_ENC_AUX], size_t(H.len[KVC_ENC_AUX]) * 4);
  put(KVC_ENC_SYMS, H.data[KVC_ENC_SYMS], size_t(H.len[KVC_ENC_SYMS]) * 4);
  put(KVC_ENC_LUT, H.data[KVC_ENC_LUT], size_t(H.len[KVC_ENC_LUT]) * 4);
  int64_t top0[2];
  for (int st = 0; st < 2; ++st) {
    auto &S = A->s[st];
    const int iw = st ? KVC_ENC_VW : KVC_ENC_KW, ibo = st ? KVC_ENC_VBO : KVC_ENC_KBO,
              ivo = st ? KVC_ENC_VVO : KVC_ENC_KVO, imn = st ? KVC_ENC_VMIN : KVC_ENC_KMIN,
              isp = st ? KVC_ENC_VSTEP : KVC_ENC_KSTEP, irc = st ? KVC_ENC_VREC : KVC_ENC_KREC;
    const int64_t vecs = st ? D : S.block, params = st ? S.block : 1;
    const int64_t words = H.len[iw] - 4; // pack appends 4 padding words
    top0[st] = words;
    S.cap = words + S.njobs * S.wordsPerBlock + 4;
    if (S.cap >= (int64_t(1) << 31))
      return afail(err, std::string(st ? "value" : "key") +
                            " word reserve exceeds 2^31 words; lower max_new_tokens or "
                            "words_per_block");
    std::vector<uint32_t> w(size_t(S.cap), 0u);
    std::memcpy(w.data(), H.data[iw], size_t(words) * 4);
    put(iw, w.data(), w.size() * 4);
    std::vector<int32_t> bo(size_t(R * S.slots), -1), vo(size_t(R * S.slots * vecs), -1);
    std::vector<float> mn(size_t(R * S.slots * params), 0.f), sp(mn.size(), 0.f);
    std::vector<uint16_t> rc(size_t(R * S.stride * D), 0);
    const int32_t *hbo = static_cast<const int32_t *>(H.data[ibo]),
                  *hvo = static_cast<const int32_t *>(H.data[ivo]);
    const float *hmn = static_cast<const float *>(H.data[imn]),
                *hsp = static_cast<const float *>(H.data[isp]);
    const uint16_t *hrc = static_cast<const uint16_t *>(H.data[irc]);
    for (int64_t r = 0; r < R; ++r) {
      const int64_t blk0 = info[r * 8 + 3 + st], rec0 = info[r * 8 + 5 + st];
      const int64_t g0 = r * S.slots;
      for (int64_t b = 0; b < nb[st][size_t(r)]; ++b) {
        bo[size_t(g0 + b)] = hbo[blk0 + b];
        for (int64_t i = 0; i < vecs; ++i)
          vo[size_t((g0 + b) * vecs + i)] = hvo[(blk0 + b) * vecs + i];
        for (int64_t i = 0; i < params; ++i) {
          mn[size_t((g0 + b) * params + i)] = hmn[(blk0 + b) * params + i];
          sp[size_t((g0 + b) * params + i)] = hsp[(blk0 + b) * params + i];
        }
      }
      const int64_t p = pend[st][size_t(r)];
      std::memcpy(&rc[size_t((r * S.stride + S.pmax - p) * D)], hrc + rec0, size_t(p * D) * 2);
    }
    put(ibo, bo.data(), bo.size() * 4);
    put(ivo, vo.data(), vo.size() * 4);
    put(imn, mn.data(), mn.size() * 4);
    put(isp, sp.data(), sp.size() * 4);
    put(irc, rc.data(), rc.size() * 2);
  }
  // Row tables for every appended count a = 0..M.
  std::vector<int32_t> rowsAll(size_t((maxNew + 1) * R * 8));
  for (int64_t a = 0; a <= maxNew; ++a)
    for (int64_t r = 0; r < R; ++r) {
      int32_t *o = &rowsAll[size_t((a * R + r) * 8)];
      o[0] = int32_t(A->T0[size_t(r)] + a);
      for (int st = 0; st < 2; ++st) {
        const auto &S = A->s[st];
        const int64_t nbl = newBlocks(st, r, a);
        o[1 + st] = int32_t((nb[st][size_t(r)] + nbl) * S.block);
        o[3 + st] = int32_t(r * S.slots);
        o[5 + st] = int32_t((r * S.stride + S.pmax - pend[st][size_t(r)] + nbl * S.block) * D);
      }
      o[7] = info[r * 8 + 7];
    }
  put(KVC_ENC_ROWS, rowsAll.data(), size_t(R) * 8 * 4);

  // Upload.
  out->batch = batch;
  out->hkv = hkv;
  out->head_dim = D;
  out->key_block = A->KB;
  out->value_block = A->VB;
  out->max_tokens = H.max_tokens;
  out->tokens = H.tokens;
  for (int i = 0; i < KVC_ENC_NUM_BUFFERS; ++i) {
    const int64_t eb = (i == KVC_ENC_KREC || i == KVC_ENC_VREC) ? 2 : 4;
    if (buf[size_t(i)].empty())
      buf[size_t(i)].resize(size_t(8 * eb), 0);
    out->len[i] = int64_t(buf[size_t(i)].size()) / eb;
    out->elem_bytes[i] = eb;
    const size_t bytes = buf[size_t(i)].size();
    out->device_bytes += bytes;
    if (i == KVC_ENC_AUX || i == KVC_ENC_SYMS || i == KVC_ENC_LUT)
      out->table_bytes += bytes;
    if (int rc = uploadBuffer(&out->buf[i], buf[size_t(i)].data(), bytes)) {
      kvc_cuda_encoded_free(out);
      return cudaFail(err, rc, "upload");
    }
  }
  auto upload = [&](kvc_cuda_ptr *p, const void *src, size_t bytes) -> int {
    const size_t b = std::max<size_t>(bytes, 16);
    if (int rc = kvc_cuda_malloc(p, b))
      return rc;
    A->reserveBytes += b;
    if (src && bytes)
      return kvc_cuda_memcpy_htod(*p, src, bytes);
    return 0;
  };
  int rc = upload(&A->rowsAll, rowsAll.data(), rowsAll.size() * 4);
  for (int st = 0; st < 2 && !rc; ++st) {
    auto &S = A->s[st];
    S.encLen = int64_t(enc[st].size());
    rc = upload(&S.jobsD, S.jobs.data(), S.jobs.size() * 4);
    if (!rc)
      rc = upload(&S.encD, enc[st].data(), enc[st].size() * 4);
    if (!rc)
      rc = upload(&S.resD, nullptr, size_t(S.njobs) * 16);
    if (!rc && S.njobs)
      rc = kvc_cuda_memset_d8_async(S.resD, 0xFF, size_t(S.njobs) * 16, nullptr); // status -1
    int32_t t0 = int32_t(top0[st]);
    if (!rc)
      rc = upload(&S.top, &t0, 4);
  }
  if (!rc)
    rc = kvc_cuda_synchronize();
  if (rc) {
    kvc_cuda_encoded_free(out);
    return cudaFail(err, rc, "upload");
  }
  *appOut = guard.release();
  return 0;
}

} // extern "C"

namespace {
// Launch arguments of stream st's store kernel on the nj jobs from j0 (and its window position
// for the next token): what prepare hands out and what the driver's own launches use.
kvc_encoded_append_stream streamArgs(const kvc_cuda_encoded_appender *A, int st, int64_t j0,
                                     int64_t nj) {
  const auto &S = A->s[st];
  kvc_encoded_append_stream o;
  o.window_offset = (S.pmax + A->a) * A->D;
  o.window_stride = S.stride * A->D;
  o.jobs = S.jobsD + uint64_t(j0) * 16;
  o.res = S.resD + uint64_t(j0) * 16;
  o.num_jobs = nj;
  o.enc = S.encD;
  o.top = S.top;
  o.enc_len = std::max<int64_t>(S.encLen, 1);
  o.word_capacity = S.cap;
  o.eps = S.eps;
  o.max_symbol = S.maxsym;
  return o;
}

int launchStore(kvc_cuda_encoded_appender *A, kvc_cuda_encoded_cache *c, int st,
                kvc_cuda_function f, int threads, kvc_cuda_ptr jobs, kvc_cuda_ptr res,
                int64_t njobs, kvc_cuda_stream stream) {
  kvc_encoded_append_stream o = streamArgs(A, st, 0, njobs);
  o.jobs = jobs;
  o.res = res;
  return kvc_cuda_encoded_store_launch(f, threads, c, st, &o, stream);
}

// Grows stream st's word buffer to at least `need` words (+ half again), keeping its contents.
int growWords(kvc_cuda_encoded_appender *A, kvc_cuda_encoded_cache *c, int st, int64_t need,
              kvc_cuda_stream stream) {
  auto &S = A->s[st];
  const int iw = st ? KVC_ENC_VW : KVC_ENC_KW;
  int64_t cap = std::max(need + need / 2, 2 * S.cap);
  cap = std::min<int64_t>(cap, 0x7FFFFFF0);
  if (cap <= S.cap || need > cap)
    return -2;
  kvc_cuda_ptr nw;
  if (int rc = kvc_cuda_malloc(&nw, size_t(cap) * 4))
    return rc;
  int rc = kvc_cuda_memset_d8_async(nw, 0, size_t(cap) * 4, stream);
  if (!rc)
    rc = kvc_cuda_memcpy_dtod_async(nw, c->buf[iw], size_t(S.cap) * 4, stream);
  if (!rc)
    rc = kvc_cuda_stream_synchronize(stream);
  if (rc) {
    kvc_cuda_free(nw);
    return rc;
  }
  kvc_cuda_free(c->buf[iw]);
  c->device_bytes += uint64_t(cap - S.cap) * 4;
  c->buf[iw] = nw;
  c->len[iw] = cap;
  S.cap = cap;
  ++A->grows;
  return 0;
}

std::string jobText(const kvc_cuda_encoded_appender *A, int st, int64_t j, const int32_t *res) {
  const auto &S = A->s[st];
  const int64_t r = S.jobRow[size_t(j)];
  return std::string(st ? "value" : "key") + " block " +
         std::to_string(S.jobs[size_t(4 * j + 1)] - r * S.slots) + " of row " + std::to_string(r) +
         " (batch " + std::to_string(r / A->Hkv) + ", KV head " + std::to_string(r % A->Hkv) +
         "): store status " +
         std::to_string(res[3]);
}

// The 4-int statuses of store jobs [j0, j0 + nj) of stream st into res (the stream that ran
// them synchronised).
int readStatuses(const kvc_cuda_encoded_appender *A, int st, int64_t j0, int64_t nj,
                 std::vector<int32_t> &res, const char **err) {
  res.assign(size_t(4 * nj), 0);
  if (int rc = kvc_cuda_memcpy_dtoh(res.data(), A->s[st].resD + uint64_t(j0) * 16,
                                    size_t(nj) * 16))
    return cudaFail(err, rc, "status read");
  return 0;
}

// Fails with the first of store jobs [j0, j0 + nj) of stream st whose status is not 0.
int checkStatuses(const kvc_cuda_encoded_appender *A, int st, int64_t j0, int64_t nj,
                  const char **err) {
  std::vector<int32_t> res;
  if (int rc = readStatuses(A, st, j0, nj, res, err))
    return rc;
  for (int64_t j = 0; j < nj; ++j) {
    const int32_t *q = &res[size_t(4 * j)];
    if (q[3] != 0)
      return afail(err, jobText(A, st, j0 + j, q) +
                            (q[3] == 1   ? " (a non-finite value or |x| >= 65520 in the block)"
                             : q[3] == 2 ? " (out of word capacity)"
                                         : " (not run)"));
  }
  return 0;
}

// The checks of an append of n > 0 tokens, and the due job range [j0, j1) of each stream.
int checkAppend(const kvc_cuda_encoded_appender *A, int64_t n, int64_t j0[2], int64_t j1[2],
                const char **err) {
  if (A->a + n > A->M)
    return afail(err, "appending " + std::to_string(n) + " tokens exceeds the reserve (" +
                          std::to_string(A->M - A->a) + " of " + std::to_string(A->M) +
                          " max_new_tokens left)");
  for (int st = 0; st < 2; ++st) {
    const auto &S = A->s[st];
    j0[st] = S.due[size_t(A->a)];
    j1[st] = S.due[size_t(A->a + n)];
    for (int64_t j = j0[st]; j < j1[st]; ++j)
      if (S.jobs[size_t(4 * j + 2)] < 0)
        return afail(err, "row " + std::to_string(S.jobRow[size_t(j)]) + ": a " +
                              (st ? "value" : "key") +
                              " block falls due but the stream has no codebook yet (its prefill "
                              "encoded no block; the codebook is built by the CPU codec)");
  }
  return 0;
}

// Step 4 of an append: the row table for a + n tokens, and the bookkeeping.
int advanceRows(kvc_cuda_encoded_appender *A, kvc_cuda_encoded_cache *c, int64_t n,
                const int64_t j0[2], const int64_t j1[2], kvc_cuda_stream stream,
                const char **err) {
  const int64_t a1 = A->a + n;
  if (int rc = kvc_cuda_memcpy_dtod_async(c->buf[KVC_ENC_ROWS],
                                          A->rowsAll + uint64_t(a1 * A->R * 8) * 4,
                                          size_t(A->R * 8) * 4, stream))
    return cudaFail(err, rc, "row table copy");
  for (int st = 0; st < 2; ++st) {
    A->s[st].launched = j1[st];
    A->s[st].stored += j1[st] - j0[st];
    A->s[st].launches += j1[st] > j0[st]; // one launch per stream and call (re-runs not counted)
  }
  A->a = a1;
  int64_t mx = 0;
  for (int64_t t : A->T0)
    mx = std::max(mx, t + a1);
  c->max_tokens = mx;
  c->tokens += uint64_t(n * A->R);
  return 0;
}
} // namespace

extern "C" {

int kvc_cuda_encoded_append_prepare(kvc_cuda_encoded_appender *A,
                                    const kvc_cuda_encoded_cache *c, int64_t n,
                                    kvc_encoded_append_stream out[2], const char **err) {
  std::memset(out, 0, 2 * sizeof *out);
  if (!A || !c)
    return afail(err, "null appender or cache");
  if (n < 0)
    return afail(err, "negative token count");
  int64_t j0[2] = {0, 0}, j1[2] = {0, 0};
  if (n > 0)
    if (int rc = checkAppend(A, n, j0, j1, err))
      return rc;
  for (int st = 0; st < 2; ++st)
    out[st] = streamArgs(A, st, j0[st], j1[st] - j0[st]);
  return 0;
}

int kvc_cuda_encoded_store_launch(kvc_cuda_function f, int threads,
                                  const kvc_cuda_encoded_cache *c, int st,
                                  const kvc_encoded_append_stream *s, kvc_cuda_stream stream) {
  const int irc = st ? KVC_ENC_VREC : KVC_ENC_KREC, iw = st ? KVC_ENC_VW : KVC_ENC_KW,
            ibo = st ? KVC_ENC_VBO : KVC_ENC_KBO, ivo = st ? KVC_ENC_VVO : KVC_ENC_KVO,
            imn = st ? KVC_ENC_VMIN : KVC_ENC_KMIN, isp = st ? KVC_ENC_VSTEP : KVC_ENC_KSTEP;
  Memref1D m[10] = {desc(c->buf[irc], c->len[irc]),  desc(s->jobs, 4 * s->num_jobs),
                    desc(s->enc, s->enc_len),         desc(c->buf[iw], s->word_capacity),
                    desc(s->top, 1),                  desc(c->buf[ibo], c->len[ibo]),
                    desc(c->buf[ivo], c->len[ivo]),   desc(c->buf[imn], c->len[imn]),
                    desc(c->buf[isp], c->len[isp]),   desc(s->res, 4 * s->num_jobs)};
  float eps = s->eps;
  int32_t maxsym = s->max_symbol, cap = int32_t(s->word_capacity);
  void *params[53];
  int n = 0;
  for (Memref1D &x : m)
    x.push(params, n);
  params[n++] = &eps;
  params[n++] = &maxsym;
  params[n++] = &cap;
  return kvc_cuda_launch(f, unsigned(s->num_jobs), 1, 1, unsigned(threads), 1, 1, 0, stream,
                         params);
}

int kvc_cuda_encoded_append_commit(kvc_cuda_encoded_appender *A, kvc_cuda_encoded_cache *c,
                                   int64_t n, kvc_cuda_stream stream, const char **err) {
  if (!A || !c)
    return afail(err, "null appender or cache");
  if (n <= 0)
    return n < 0 ? afail(err, "negative token count") : 0;
  int64_t j0[2], j1[2];
  if (int rc = checkAppend(A, n, j0, j1, err))
    return rc;
  if (int rc = kvc_cuda_stream_synchronize(stream))
    return cudaFail(err, rc, "store kernels");
  for (int st = 0; st < 2; ++st)
    if (j1[st] > j0[st])
      if (int rc = checkStatuses(A, st, j0[st], j1[st] - j0[st], err))
        return rc;
  return advanceRows(A, c, n, j0, j1, stream, err);
}

int kvc_cuda_encoded_append(kvc_cuda_encoded_appender *A, kvc_cuda_encoded_cache *c,
                            const kvc_encoded_store_kernels *sk, kvc_cuda_ptr kNew,
                            kvc_cuda_ptr vNew, int64_t n, kvc_cuda_stream stream, int flags,
                            const char **err) {
  if (!A || !c || !sk)
    return afail(err, "null appender, cache or store kernels");
  if (n < 0)
    return afail(err, "negative token count");
  if (n == 0)
    return 0;
  if (sk->head_dim != A->D || sk->key_block != A->KB || sk->value_block != A->VB)
    return afail(err, "store kernels are for D/KB/VB " + std::to_string(sk->head_dim) + "/" +
                          std::to_string(sk->key_block) + "/" + std::to_string(sk->value_block) +
                          ", the cache has " + std::to_string(A->D) + "/" + std::to_string(A->KB) +
                          "/" + std::to_string(A->VB));
  const int64_t a0 = A->a, D = A->D;
  int64_t j0[2], j1[2];
  if (int rc = checkAppend(A, n, j0, j1, err))
    return rc;
  // 1. The new tokens go after every row's window (same position r*S + P + a for all rows):
  // one 2-D copy per stream (row pitch S*D), or one copy per row with KVC_APPEND_ROW_COPIES.
  for (int st = 0; st < 2; ++st) {
    auto &S = A->s[st];
    const kvc_cuda_ptr dst = c->buf[st ? KVC_ENC_VREC : KVC_ENC_KREC] +
                             uint64_t((S.pmax + a0) * D) * 2,
                       src = st ? vNew : kNew;
    int rc = copy2D(dst, size_t(S.stride * D) * 2, src, size_t(n * D) * 2, size_t(n * D) * 2,
                    size_t(A->R), stream);
    if (rc >= 1000)
      return afail(err, std::string("window copy: ") + kvc_cuda_last_error());
    if (rc == 0) {
      ++A->windowCopies;
      continue;
    }
    for (int64_t r = 0; r < A->R; ++r) {
      if ((rc = kvc_cuda_memcpy_dtod_async(dst + uint64_t(r * S.stride * D) * 2,
                                           src + uint64_t(r * n * D) * 2, size_t(n * D) * 2,
                                           stream)))
        return cudaFail(err, rc, "window copy");
      ++A->windowCopies;
    }
  }
  // 2. Store launches: the blocks due in (a0, a1], all rows at once.
  for (int st = 0; st < 2; ++st) {
    auto &S = A->s[st];
    const int64_t nj = j1[st] - j0[st];
    if (!nj)
      continue;
    if (int rc = launchStore(A, c, st, st ? sk->vstore : sk->kstore,
                             st ? sk->vthreads : sk->kthreads, S.jobsD + uint64_t(j0[st]) * 16,
                             S.resD + uint64_t(j0[st]) * 16, nj, stream))
      return cudaFail(err, rc, "store launch");
  }
  // 3. Statuses (checked mode): status 1 fails the call, status 2 grows and re-runs.
  if ((flags & KVC_ENC_APPEND_CHECK) && (j1[0] > j0[0] || j1[1] > j0[1])) {
    if (int rc = kvc_cuda_stream_synchronize(stream))
      return cudaFail(err, rc, "store kernels");
    for (int st = 0; st < 2; ++st) {
      auto &S = A->s[st];
      const int64_t nj = j1[st] - j0[st];
      if (!nj)
        continue;
      std::vector<int32_t> res;
      if (int rc = readStatuses(A, st, j0[st], nj, res, err))
        return rc;
      for (int attempt = 0;; ++attempt) {
        std::vector<int64_t> retry;
        for (int64_t j = 0; j < nj; ++j) {
          const int32_t *q = &res[size_t(4 * j)];
          if (q[3] == 2)
            retry.push_back(j);
          else if (q[3] != 0)
            return afail(err, jobText(A, st, j0[st] + j, q) +
                                  (q[3] == 1 ? " (a non-finite value or |x| >= 65520 in the block)"
                                             : " (unexpected)"));
        }
        if (retry.empty())
          break;
        if (attempt == 3)
          return afail(err, "still out of word capacity after growing the buffer 3 times");
        int32_t top = 0;
        if (int rc = kvc_cuda_memcpy_dtoh(&top, S.top, 4))
          return cudaFail(err, rc, "status read");
        const int64_t need = int64_t(top) + int64_t(retry.size()) * S.worstWords + 4;
        int rc = growWords(A, c, st, need, stream);
        if (rc == -2)
          return afail(err, "out of word capacity and the buffer cannot grow past 2^31 words");
        if (rc)
          return cudaFail(err, rc, "growing the word buffer");
        // Re-run the failed jobs from a scratch job list.
        std::vector<int32_t> jl;
        for (int64_t j : retry)
          jl.insert(jl.end(), &S.jobs[size_t(4 * (j0[st] + j))],
                    &S.jobs[size_t(4 * (j0[st] + j))] + 4);
        kvc_cuda_ptr jd = 0, rd = 0;
        rc = kvc_cuda_malloc(&jd, jl.size() * 4);
        if (!rc)
          rc = kvc_cuda_malloc(&rd, jl.size() * 4);
        if (!rc)
          rc = kvc_cuda_memcpy_htod(jd, jl.data(), jl.size() * 4);
        if (!rc)
          rc = launchStore(A, c, st, st ? sk->vstore : sk->kstore,
                           st ? sk->vthreads : sk->kthreads, jd, rd, int64_t(retry.size()), stream);
        if (!rc)
          rc = kvc_cuda_stream_synchronize(stream);
        std::vector<int32_t> rr(jl.size());
        if (!rc)
          rc = kvc_cuda_memcpy_dtoh(rr.data(), rd, rr.size() * 4);
        for (size_t i = 0; !rc && i < retry.size(); ++i) {
          std::memcpy(&res[size_t(4 * retry[i])], &rr[4 * i], 16);
          rc = kvc_cuda_memcpy_htod(S.resD + uint64_t(j0[st] + retry[i]) * 16, &rr[4 * i], 16);
        }
        if (jd)
          kvc_cuda_free(jd);
        if (rd)
          kvc_cuda_free(rd);
        if (rc)
          return cudaFail(err, rc, "re-running out-of-capacity blocks");
      }
    }
  }
  // 4. The row table for a0 + n tokens.
  return advanceRows(A, c, n, j0, j1, stream, err);
}

int kvc_cuda_encoded_append_status(kvc_cuda_encoded_appender *A, kvc_cuda_stream stream,
                                   const char **err) {
  if (int rc = kvc_cuda_stream_synchronize(stream))
    return cudaFail(err, rc, "synchronize");
  for (int st = 0; st < 2; ++st)
    if (A->s[st].launched)
      if (int rc = checkStatuses(A, st, 0, A->s[st].launched, err))
        return rc;
  return 0;
}

void kvc_cuda_encoded_append_info(const kvc_cuda_encoded_appender *A,
                                  kvc_encoded_append_info *out) {
  std::memset(out, 0, sizeof *out);
  if (!A)
    return;
  out->appended = A->a;
  out->remaining = A->M - A->a;
  out->key_blocks_stored = A->s[0].stored;
  out->value_blocks_stored = A->s[1].stored;
  out->key_launches = A->s[0].launches;
  out->value_launches = A->s[1].launches;
  out->word_buffer_grows = A->grows;
  out->window_copies = A->windowCopies;
  out->reserve_bytes = A->reserveBytes;
}

void kvc_cuda_encoded_appender_free(kvc_cuda_encoded_appender *A) { delete A; }

} // extern "C"
