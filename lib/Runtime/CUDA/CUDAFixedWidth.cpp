//===- CUDAFixedWidth.cpp - fixed-width (entropy = none) KVComp caches on the GPU --------===//
//
// Packs codec heads into the device form of CUDAFixedWidth.h (5-bit key and 4-bit value
// symbols in mma.sync fragment order, the rest of each row an fp16 window) and launches the
// split + merge kernels. Packing and unpacking need no CUDA; upload and launch go through the
// kvc_cuda_* wrappers, so this file builds against the stub as well.
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/CUDAFixedWidth.h"
#include "kvc/Runtime/CUDADecode.h"
#include "kvc/Runtime/CUDAEncoded.h"
#include "../Codec/Half.h"
#include "../Codec/Quantizer.h"
#include "KernelArgs.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {
using kvc::cuda::freeBuffers;
using kvc::cuda::launchCacheDecode;
using kvc::cuda::setPlanWorkspace;
using kvc::cuda::uploadBuffer;

thread_local std::string fwError;
int fail(const char **err, const char *fn, const std::string &msg) {
  fwError = std::string(fn) + ": " + msg;
  if (err)
    *err = fwError.c_str();
  return -1;
}

constexpr int64_t kTile = KVC_FW_TILE, kWarps = KVC_FW_WARPS, kWarpTokens = kTile / kWarps;

// Element (register i, half h) of lane l's m16n8k16 A fragment: row gid + 8*(i%2), column
// 2*tg + h + 8*(i/2) of the 16x16 tile (gid = l/4, tg = l%4). Pack and unpack both walk the
// fragments through this one mapping.
inline int fragRow(int lane, int i) { return lane / 4 + 8 * (i % 2); }
inline int fragCol(int lane, int i, int h) { return 2 * (lane % 4) + h + 8 * (i / 2); }
// Where element (i, h) sits in a nibble word, and bit 4 of fragment 4p+f's element in the
// key plane word p.
inline int nibbleShift(int i, int h) { return 16 * h + 4 * i; }
inline int planeShift(int f, int i, int h) { return 16 * h + 4 * (f % 4) + i; }

// Word j of lane l of warp w of global tile G, for U 16-byte loads per lane per tile.
inline int64_t wordIndex(int64_t G, int64_t w, int64_t U, int j, int lane) {
  return ((G * kWarps + w) * U + j / 4) * 128 + 4 * lane + j % 4;
}

// Token (within the tile) and channel of element (i, h) of fragment f of lane `lane`, warp w.
// Keys: f = kk*2 + mt, A = K (rows tokens 32w + 16mt.., columns channels 16kk..).
inline void keyElem(int64_t w, int f, int lane, int i, int h, int64_t &tok, int64_t &ch) {
  tok = kWarpTokens * w + 16 * (f % 2) + fragRow(lane, i);
  ch = 16 * (f / 2) + fragCol(lane, i, h);
}
// Values: f = kk*(D/16) + mt, A = V^T (rows channels 16mt.., columns tokens 32w + 16kk..).
inline void valueElem(int64_t D, int64_t w, int f, int lane, int i, int h, int64_t &tok,
                      int64_t &ch) {
  const int64_t mts = D / 16;
  tok = kWarpTokens * w + 16 * (f / mts) + fragCol(lane, i, h);
  ch = 16 * (f % mts) + fragRow(lane, i);
}

// Global tile G's words in kw/vw from the symbols of its 128 tokens (ks, vs: [128][D]), through
// the fragment mapping.
void packTile(const uint16_t *ks, const uint16_t *vs, int64_t D, int64_t G, uint32_t *kw,
              uint32_t *vw) {
  const int64_t KU4 = kvc_fw_key_u4(int(D)), VU4 = kvc_fw_value_u4(int(D));
  for (int64_t w = 0; w < kWarps; ++w)
    for (int lane = 0; lane < 32; ++lane) {
      uint32_t kl[40] = {0}, vl[32] = {0}; // D <= 256: 4*KU4 <= 40, 4*VU4 <= 32
      for (int f = 0; f < D / 8; ++f)
        for (int i = 0; i < 4; ++i)
          for (int h = 0; h < 2; ++h) {
            int64_t tok, ch;
            keyElem(w, f, lane, i, h, tok, ch);
            const uint32_t sk = ks[size_t(tok * D + ch)];
            kl[f] |= (sk & 15u) << nibbleShift(i, h);
            kl[D / 8 + f / 4] |= (sk >> 4 & 1u) << planeShift(f, i, h);
            valueElem(D, w, f, lane, i, h, tok, ch);
            vl[f] |= uint32_t(vs[size_t(tok * D + ch)]) << nibbleShift(i, h);
          }
      for (int j = 0; j < 4 * KU4; ++j)
        kw[wordIndex(G, w, KU4, j, lane)] = kl[j];
      for (int j = 0; j < 4 * VU4; ++j)
        vw[wordIndex(G, w, VU4, j, lane)] = vl[j];
    }
}

// Per-row facts of the packing (first pass), and where the row's data starts.
struct RowPlan {
  const kvc_codec_head *head;
  int64_t T, nk, nv, Tf, tileBase, windowBase, keyBlockBase;
  int64_t firstRow; // the first row with the same head pointer (itself if none before)
};

const char *streamName(int s) { return s ? "value" : "key"; }
} // namespace

extern "C" {

int kvc_cuda_fw_parse_name(const char *name, kvc_fw_kernel_config *out) {
  if (!name || !out)
    return -1;
  const std::string s(name);
  // The specialisation is the first `_d..` group that parses and ends the name with
  // _fw_split or _fw_merge (a tag may itself contain "_d").
  for (size_t pos = s.find("_d"); pos != std::string::npos; pos = s.find("_d", pos + 1)) {
    kvc_fw_kernel_config c{};
    char qt[8] = {0};
    int consumed = 0;
    if (sscanf(s.c_str() + pos, "_d%d_g%d_q%d_%4[bf16]_kb%d%n", &c.head_dim, &c.group,
               &c.query_seq, qt, &c.key_block, &consumed) != 5 ||
        consumed <= 0)
      continue;
    const std::string rest = s.substr(pos + size_t(consumed));
    if (rest != "_fw_split" && rest != "_fw_merge" && rest != "_fw_fm_split")
      continue;
    c.fused_merge = rest == "_fw_fm_split";
    if (!std::strcmp(qt, "bf16"))
      c.query_type = 0;
    else if (!std::strcmp(qt, "f16"))
      c.query_type = 1;
    else
      return -1;
    c.query_bytes = 2;
    // The kernels' limits (the fragment layout): names outside them are not fixed-width
    // kernels kvc emits.
    if (c.head_dim < 32 || c.head_dim > 256 || c.head_dim % 32 || c.group < 1 || c.group > 8 ||
        c.query_seq != 1 || (c.key_block != 32 && c.key_block != 64 && c.key_block != 128))
      return -1;
    *out = c;
    return 0;
  }
  return -1;
}

} // extern "C"

namespace {
// Per row, the symbols of each stream's encoded tokens from Tf on (those the form keeps in its
// fp16 window): what an appender needs besides the form.
using SymbolTails = std::vector<std::array<std::vector<uint16_t>, 2>>;

// kvc_fw_pack, also filling `tails` when given (the packing decodes every row's symbols once).
int packForm(const kvc_codec_head *const *heads, int64_t batch, int64_t hkv,
             kvc_fw_host_form *out, const char **err, SymbolTails *tails) {
  static const char *fn = "kvc_fw_pack";
  std::memset(out, 0, sizeof *out);
  const int64_t R = batch * hkv;
  if (batch <= 0 || hkv <= 0 || !heads)
    return fail(err, fn, "no heads (batch " + std::to_string(batch) + ", hkv " +
                             std::to_string(hkv) + ")");
  kvc_codec_params p0;
  if (!heads[0] || kvc_codec_head_params(heads[0], &p0))
    return fail(err, fn, std::string("row 0: ") + (heads[0] ? kvc_codec_last_error() : "null head"));
  const int64_t D = p0.head_dim, KB = p0.key_block_tokens;
  if (D % 32 || D > 256)
    return fail(err, fn, "row 0: head dim " + std::to_string(D) +
                             " is not supported (the fragment layout needs a multiple of 32, "
                             "at most 256)");
  if (KB != 32 && KB != 64 && KB != 128)
    return fail(err, fn, "row 0: key block " + std::to_string(KB) +
                             " tokens is not supported (32, 64 or 128: whole blocks per tile)");

  // Pass 1: every row's lengths and offsets, checked, so the buffers are allocated once.
  std::vector<RowPlan> plan(static_cast<size_t>(R));
  std::map<const kvc_codec_head *, int64_t> seen;
  int64_t tiles = 0, window = 0, maxT = 0, maxF = 0, maxW = 0;
  uint64_t tokens = 0, codeTokens = 0;
  for (int64_t r = 0; r < R; ++r) {
    const kvc_codec_head *h = heads[r];
    const std::string row = "row " + std::to_string(r) + ": ";
    kvc_codec_params p;
    if (!h || kvc_codec_head_params(h, &p))
      return fail(err, fn, row + (h ? kvc_codec_last_error() : "null head"));
    if (int64_t(p.head_dim) != D)
      return fail(err, fn, row + "head dim " + std::to_string(p.head_dim) +
                               " differs from row 0's " + std::to_string(D));
    if (int64_t(p.key_block_tokens) != KB)
      return fail(err, fn, row + "key block " + std::to_string(p.key_block_tokens) +
                               " tokens differs from row 0's " + std::to_string(KB));
    if (p.key_grouping != KVC_CODEC_KEY_BLOCK)
      return fail(err, fn, row + "per-channel key groups are not supported (the fixed-width "
                                 "form has one (min, step) per key block)");
    kvc_codec_stream_view sv[2];
    kvc_codec_huffman_tables tb[2];
    for (int s = 0; s < 2; ++s)
      if (kvc_codec_head_view(h, s, &sv[s], &tb[s]))
        return fail(err, fn, row + kvc_codec_last_error());
    RowPlan &P = plan[size_t(r)];
    P.head = h;
    P.T = int64_t(kvc_codec_head_num_tokens(h));
    P.nk = int64_t(sv[0].num_blocks) * sv[0].block_tokens;
    P.nv = int64_t(sv[1].num_blocks) * sv[1].block_tokens;
    if (sv[0].params_per_block != 1 || sv[1].params_per_block != sv[1].block_tokens ||
        P.nk + sv[0].recent_tokens != P.T || P.nv + sv[1].recent_tokens != P.T)
      return fail(err, fn, row + "unexpected stream layout (key params per block " +
                               std::to_string(sv[0].params_per_block) + ", value params per "
                               "block " + std::to_string(sv[1].params_per_block) + ")");
    P.Tf = std::min(P.nk, P.nv) / kTile * kTile;
    P.tileBase = tiles;
    P.windowBase = window;
    P.keyBlockBase = tiles * kTile / KB;
    auto it = seen.emplace(h, r).first;
    P.firstRow = it->second;
    tiles += P.Tf / kTile;
    window += P.T - P.Tf;
    maxT = std::max(maxT, P.T);
    maxF = std::max(maxF, P.Tf / kTile);
    maxW = std::max(maxW, (P.T + kTile - 1) / kTile - P.Tf / kTile);
    tokens += uint64_t(P.T);
    codeTokens += uint64_t(P.Tf);
  }
  const int64_t KU4 = kvc_fw_key_u4(int(D)), VU4 = kvc_fw_value_u4(int(D));
  const int64_t keyWordsPerTile = kWarps * KU4 * 128, valueWordsPerTile = kWarps * VU4 * 128;
  // The row table's fields are int32 (the kernels index with 64-bit offsets otherwise).
  if (maxT > INT32_MAX || tiles > INT32_MAX / kTile || window > INT32_MAX)
    return fail(err, fn, "the cache has " + std::to_string(tiles) + " code tiles and " +
                             std::to_string(window) + " window tokens in all; the row table's "
                             "32-bit fields hold at most 2^31 - 1 tokens");
  // Lengths in elements; empty buffers get 8 elements (no zero-sized allocations, as for the
  // encoded form).
  int64_t lens[KVC_FW_NUM_BUFFERS] = {};
  lens[KVC_FW_ROWS] = R * 4;
  lens[KVC_FW_KW] = tiles * keyWordsPerTile;
  lens[KVC_FW_VW] = tiles * valueWordsPerTile;
  lens[KVC_FW_KMIN] = lens[KVC_FW_KSTEP] = tiles * kTile / KB;
  lens[KVC_FW_VMIN] = lens[KVC_FW_VSTEP] = tiles * kTile;
  lens[KVC_FW_KREC] = lens[KVC_FW_VREC] = window * D;
  for (int i = 0; i < KVC_FW_NUM_BUFFERS; ++i)
    lens[i] = std::max<int64_t>(lens[i], 8);
  for (int i = 0; i < KVC_FW_NUM_BUFFERS; ++i) {
    const int64_t eb = (i == KVC_FW_KREC || i == KVC_FW_VREC) ? 2 : 4;
    out->len[i] = lens[i];
    out->elem_bytes[i] = eb;
    // calloc: the words are OR-ed together, and padding words must read 0.
    out->data[i] = std::calloc(size_t(lens[i]), size_t(eb));
    if (!out->data[i]) {
      kvc_fw_host_free(out);
      return fail(err, fn, "out of host memory");
    }
  }
  out->batch = batch;
  out->hkv = hkv;
  out->head_dim = D;
  out->key_block = KB;
  out->max_tokens = maxT;
  out->max_code_tiles = maxF;
  out->max_window_tiles = maxW;
  out->tokens = tokens;
  out->code_tokens = codeTokens;
  int32_t *rows = static_cast<int32_t *>(out->data[KVC_FW_ROWS]);
  uint32_t *kw = static_cast<uint32_t *>(out->data[KVC_FW_KW]);
  uint32_t *vw = static_cast<uint32_t *>(out->data[KVC_FW_VW]);
  float *kmin = static_cast<float *>(out->data[KVC_FW_KMIN]);
  float *kstep = static_cast<float *>(out->data[KVC_FW_KSTEP]);
  float *vmin = static_cast<float *>(out->data[KVC_FW_VMIN]);
  float *vstep = static_cast<float *>(out->data[KVC_FW_VSTEP]);
  uint16_t *krec = static_cast<uint16_t *>(out->data[KVC_FW_KREC]);
  uint16_t *vrec = static_cast<uint16_t *>(out->data[KVC_FW_VREC]);

  // Pass 2: the rows' data. A head that repeats (decode benchmarks replicate rows over the
  // batch) is decoded once; later rows copy its ranges.
  std::vector<uint16_t> sym[2];
  if (tails)
    tails->assign(size_t(R), {});
  for (int64_t r = 0; r < R; ++r) {
    const RowPlan &P = plan[size_t(r)];
    const std::string row = "row " + std::to_string(r) + ": ";
    const int32_t info[4] = {int32_t(P.T), int32_t(P.Tf), int32_t(P.tileBase),
                             int32_t(P.windowBase)};
    std::memcpy(rows + 4 * r, info, sizeof info);
    const int64_t F = P.Tf / kTile, W = P.T - P.Tf;
    if (P.firstRow != r) {
      const RowPlan &Q = plan[size_t(P.firstRow)];
      std::memcpy(kw + P.tileBase * keyWordsPerTile, kw + Q.tileBase * keyWordsPerTile,
                  size_t(F * keyWordsPerTile) * 4);
      std::memcpy(vw + P.tileBase * valueWordsPerTile, vw + Q.tileBase * valueWordsPerTile,
                  size_t(F * valueWordsPerTile) * 4);
      std::memcpy(kmin + P.keyBlockBase, kmin + Q.keyBlockBase, size_t(P.Tf / KB) * 4);
      std::memcpy(kstep + P.keyBlockBase, kstep + Q.keyBlockBase, size_t(P.Tf / KB) * 4);
      std::memcpy(vmin + P.tileBase * kTile, vmin + Q.tileBase * kTile, size_t(P.Tf) * 4);
      std::memcpy(vstep + P.tileBase * kTile, vstep + Q.tileBase * kTile, size_t(P.Tf) * 4);
      std::memcpy(krec + P.windowBase * D, krec + Q.windowBase * D, size_t(W * D) * 2);
      std::memcpy(vrec + P.windowBase * D, vrec + Q.windowBase * D, size_t(W * D) * 2);
      if (tails)
        (*tails)[size_t(r)] = (*tails)[size_t(P.firstRow)];
      continue;
    }
    kvc_codec_stream_view sv[2];
    kvc_codec_huffman_tables tb[2];
    kvc_codec_params p;
    if (kvc_codec_head_params(P.head, &p)) {
      kvc_fw_host_free(out);
      return fail(err, fn, row + kvc_codec_last_error());
    }
    const int64_t nEnc[2] = {P.nk, P.nv};
    for (int s = 0; s < 2; ++s) {
      if (kvc_codec_head_view(P.head, s, &sv[s], &tb[s])) {
        kvc_fw_host_free(out);
        return fail(err, fn, row + kvc_codec_last_error());
      }
      sym[s].assign(size_t(nEnc[s] * D), 0);
      if (nEnc[s] &&
          kvc_codec_head_decode_symbols(P.head, s, sym[s].data(), uint64_t(sym[s].size()))) {
        kvc_fw_host_free(out);
        return fail(err, fn, row + kvc_codec_last_error());
      }
    }
    // Symbol limits over the code tokens (the only ones stored at fixed width).
    const uint32_t limit[2] = {KVC_FW_KEY_MAX_SYMBOL, KVC_FW_VALUE_MAX_SYMBOL};
    const float eps[2] = {p.key_error, p.value_error};
    for (int s = 0; s < 2; ++s)
      for (int64_t e = 0; e < P.Tf * D; ++e)
        if (sym[s][size_t(e)] > limit[s]) {
          char buf[320];
          snprintf(buf, sizeof buf,
                   "%s symbol %u at token %lld channel %lld exceeds %u (%d-bit fixed width): "
                   "the %s error bound eps = %g is too small for the fixed-width form (the "
                   "codec's symbols reach round(1/eps); needs eps > %.4f)",
                   streamName(s), unsigned(sym[s][size_t(e)]), (long long)(e / D),
                   (long long)(e % D), limit[s], s ? 4 : 5, streamName(s), double(eps[s]),
                   1.0 / (double(limit[s]) + 0.5));
          kvc_fw_host_free(out);
          return fail(err, fn, row + buf);
        }
    // Code tiles: each lane's words, built from the fragment mapping.
    for (int64_t t = 0; t < F; ++t)
      packTile(sym[0].data() + t * kTile * D, sym[1].data() + t * kTile * D, D, P.tileBase + t,
               kw, vw);
    std::memcpy(kmin + P.keyBlockBase, sv[0].mins, size_t(P.Tf / KB) * 4);
    std::memcpy(kstep + P.keyBlockBase, sv[0].steps, size_t(P.Tf / KB) * 4);
    std::memcpy(vmin + P.tileBase * kTile, sv[1].mins, size_t(P.Tf) * 4);
    std::memcpy(vstep + P.tileBase * kTile, sv[1].steps, size_t(P.Tf) * 4);
    // The window [Tf, T): the codec's decoded values in fp16. Encoded tokens past Tf are
    // dequantized with the codec's own expression (bit-identical to kvc_codec_head_decode) and
    // rounded by its converter; recent tokens are its fp16 bits.
    for (int s = 0; s < 2; ++s) {
      uint16_t *rec = (s ? vrec : krec) + P.windowBase * D;
      const kvc_codec_stream_view &v = sv[s];
      for (int64_t tok = P.Tf; tok < P.T; ++tok)
        for (int64_t c = 0; c < D; ++c) {
          uint16_t x;
          if (tok < nEnc[s]) {
            const int64_t g = s ? tok : tok / KB; // value groups: one per token
            x = kvc::codec::floatToHalf(kvc::codec::dequantize(
                sym[s][size_t(tok * D + c)], v.mins[g], v.steps[g]));
          } else {
            x = v.recent_fp16[size_t((tok - nEnc[s]) * D + c)];
          }
          rec[(tok - P.Tf) * D + c] = x;
        }
    }
    if (tails)
      for (int s = 0; s < 2; ++s)
        (*tails)[size_t(r)][size_t(s)].assign(sym[s].begin() + P.Tf * D, sym[s].end());
  }
  return 0;
}
} // namespace

extern "C" {

int kvc_fw_pack(const kvc_codec_head *const *heads, int64_t batch, int64_t hkv,
                kvc_fw_host_form *out, const char **err) {
  return packForm(heads, batch, hkv, out, err, nullptr);
}

void kvc_fw_host_free(kvc_fw_host_form *f) {
  for (int i = 0; i < KVC_FW_NUM_BUFFERS; ++i) {
    std::free(f->data[i]);
    f->data[i] = nullptr;
  }
}

int kvc_fw_unpack_row(const kvc_fw_host_form *f, int64_t r, float *kOut, float *vOut,
                      const char **err) {
  static const char *fn = "kvc_fw_unpack_row";
  const int64_t R = f->batch * f->hkv, D = f->head_dim, KB = f->key_block;
  if (r < 0 || r >= R)
    return fail(err, fn, "row " + std::to_string(r) + " out of range (" + std::to_string(R) +
                             " rows)");
  const int32_t *info = static_cast<const int32_t *>(f->data[KVC_FW_ROWS]) + 4 * r;
  const int64_t T = info[0], Tf = info[1], tb = info[2], wb = info[3];
  const int64_t KU4 = kvc_fw_key_u4(int(D)), VU4 = kvc_fw_value_u4(int(D));
  if (T < 0 || Tf < 0 || Tf > T || Tf % kTile || tb < 0 || wb < 0 ||
      (Tf > 0 && (tb + Tf / kTile) * kWarps * KU4 * 128 > f->len[KVC_FW_KW]) ||
      (T > Tf && (wb + T - Tf) * D > f->len[KVC_FW_KREC]))
    return fail(err, fn, "row " + std::to_string(r) + ": inconsistent row entry (T " +
                             std::to_string(T) + ", Tf " + std::to_string(Tf) + ", tile base " +
                             std::to_string(tb) + ", window base " + std::to_string(wb) + ")");
  const uint32_t *kw = static_cast<const uint32_t *>(f->data[KVC_FW_KW]);
  const uint32_t *vw = static_cast<const uint32_t *>(f->data[KVC_FW_VW]);
  const float *kmin = static_cast<const float *>(f->data[KVC_FW_KMIN]);
  const float *kstep = static_cast<const float *>(f->data[KVC_FW_KSTEP]);
  const float *vmin = static_cast<const float *>(f->data[KVC_FW_VMIN]);
  const float *vstep = static_cast<const float *>(f->data[KVC_FW_VSTEP]);
  const uint16_t *krec = static_cast<const uint16_t *>(f->data[KVC_FW_KREC]);
  const uint16_t *vrec = static_cast<const uint16_t *>(f->data[KVC_FW_VREC]);
  for (int64_t t = 0; t < Tf / kTile; ++t) {
    const int64_t G = tb + t, t0 = t * kTile;
    for (int64_t w = 0; w < kWarps; ++w)
      for (int lane = 0; lane < 32; ++lane)
        for (int fr = 0; fr < D / 8; ++fr) {
          const uint32_t nk = kw[wordIndex(G, w, KU4, fr, lane)];
          const uint32_t pk = kw[wordIndex(G, w, KU4, int(D / 8 + fr / 4), lane)];
          const uint32_t nv = vw[wordIndex(G, w, VU4, fr, lane)];
          for (int i = 0; i < 4; ++i)
            for (int h = 0; h < 2; ++h) {
              int64_t tok, ch;
              keyElem(w, fr, lane, i, h, tok, ch);
              const uint32_t sk = (nk >> nibbleShift(i, h) & 15u) |
                                  (pk >> planeShift(fr, i, h) & 1u) << 4;
              const int64_t kg = (G * kTile + tok) / KB; // == (tb*128 + t0 + tok) / KB
              if (kOut)
                kOut[(t0 + tok) * D + ch] = kvc::codec::dequantize(sk, kmin[kg], kstep[kg]);
              valueElem(D, w, fr, lane, i, h, tok, ch);
              const uint32_t sv = nv >> nibbleShift(i, h) & 15u;
              const int64_t vg = G * kTile + tok;
              if (vOut)
                vOut[(t0 + tok) * D + ch] = kvc::codec::dequantize(sv, vmin[vg], vstep[vg]);
            }
        }
  }
  for (int64_t i = 0; i < (T - Tf) * D; ++i) {
    if (kOut)
      kOut[Tf * D + i] = kvc::codec::halfToFloat(krec[wb * D + i]);
    if (vOut)
      vOut[Tf * D + i] = kvc::codec::halfToFloat(vrec[wb * D + i]);
  }
  return 0;
}

int kvc_cuda_fw_upload_form(const kvc_fw_host_form *h, kvc_cuda_fw_cache *out,
                            const char **err) {
  std::memset(out, 0, sizeof *out);
  out->batch = h->batch;
  out->hkv = h->hkv;
  out->head_dim = h->head_dim;
  out->key_block = h->key_block;
  out->max_tokens = h->max_tokens;
  out->max_code_tiles = h->max_code_tiles;
  out->max_window_tiles = h->max_window_tiles;
  out->tokens = h->tokens;
  out->code_tokens = h->code_tokens;
  for (int i = 0; i < KVC_FW_NUM_BUFFERS; ++i) {
    out->len[i] = h->len[i];
    out->elem_bytes[i] = h->elem_bytes[i];
    const size_t bytes = size_t(h->len[i] * h->elem_bytes[i]);
    out->device_bytes += bytes;
    if (int rc = uploadBuffer(&out->buf[i], h->data[i], bytes)) {
      fwError = std::string("kvc_cuda_fw_upload: ") + kvc_cuda_last_error();
      if (err)
        *err = fwError.c_str();
      kvc_cuda_fw_free(out);
      return rc;
    }
  }
  return 0;
}

int kvc_cuda_fw_upload(const kvc_codec_head *const *heads, int64_t batch, int64_t hkv,
                       kvc_cuda_fw_cache *out, const char **err) {
  std::memset(out, 0, sizeof *out);
  kvc_fw_host_form h;
  if (int rc = kvc_fw_pack(heads, batch, hkv, &h, err))
    return rc;
  const int rc = kvc_cuda_fw_upload_form(&h, out, err);
  kvc_fw_host_free(&h);
  return rc;
}

void kvc_cuda_fw_free(kvc_cuda_fw_cache *c) { freeBuffers(c->buf, KVC_FW_NUM_BUFFERS); }

int kvc_cuda_fw_make_plan(const kvc_fw_kernel_config *cfg, const kvc_cuda_fw_cache *c,
                          int numSplits, int residentCtas, kvc_fw_plan *out) {
  int splits = numSplits;
  if (splits <= 0) {
    // The code splits by the encoded plan's own rule (one function, so the two plans cannot
    // drift apart), over 128-token tiles of the longest row's code part; then one split per
    // window tile, which the kernel gives a CTA of its own when the count allows.
    kvc_encoded_kernel_config ecfg{};
    ecfg.head_dim = cfg->head_dim;
    ecfg.group = cfg->group;
    ecfg.query_seq = cfg->query_seq;
    ecfg.value_block = KVC_FW_TILE;
    kvc_cuda_encoded_cache ec{};
    ec.batch = c->batch;
    ec.hkv = c->hkv;
    ec.max_tokens = c->max_code_tiles * KVC_FW_TILE;
    kvc_encoded_plan ep;
    if (int rc = kvc_cuda_encoded_make_plan(&ecfg, &ec, 0, residentCtas, &ep))
      return rc;
    splits = ep.num_splits + int(c->max_window_tiles);
  }
  setPlanWorkspace(out, c->batch * c->hkv * cfg->group * cfg->query_seq, splits, cfg->head_dim);
  out->counters_offset = out->workspace_bytes;
  if (cfg->fused_merge)
    out->workspace_bytes += size_t(c->batch * c->hkv) * 4;
  return 0;
}

int kvc_cuda_fw_init_workspace(const kvc_fw_kernel_config *cfg, const kvc_fw_plan *plan,
                               kvc_cuda_ptr ws, kvc_cuda_stream stream) {
  return kvc::cuda::zeroMergeCounters(cfg, plan, ws, stream);
}

int kvc_cuda_fw_launch(kvc_cuda_function split, kvc_cuda_function merge,
                       const kvc_fw_kernel_config *cfg, const kvc_cuda_fw_cache *c,
                       const kvc_fw_plan *plan, kvc_cuda_ptr q, kvc_cuda_ptr ws,
                       kvc_cuda_ptr out, kvc_cuda_stream stream) {
  // The kernel is specialised on D and the key block; another cache would be read with the
  // wrong word and parameter strides.
  if (cfg->head_dim != c->head_dim || cfg->key_block != c->key_block) {
    char buf[160];
    snprintf(buf, sizeof buf,
             "kvc_cuda_fw_launch: kernel D=%d key block %d, cache D=%lld key block %lld",
             cfg->head_dim, cfg->key_block, (long long)c->head_dim, (long long)c->key_block);
    kvc_cuda_set_last_error(buf);
    return -1;
  }
  return launchCacheDecode(split, merge, c->buf, c->len, KVC_FW_NUM_BUFFERS, c->batch, c->hkv,
                           c->batch * c->hkv * cfg->group * cfg->query_seq, cfg->head_dim,
                           KVC_FW_THREADS, plan, q, ws, out, stream,
                           cfg->fused_merge ? ws + plan->counters_offset : 0);
}

} // extern "C"

// ============================================================================================
// Appending (host-assisted): see CUDAFixedWidth.h.

namespace {
// One row's state between appends: the tokens past Tf that the codec encoded (their symbols)
// and those it keeps in fp16 (their bits), per stream.
struct AppendRow {
  kvc_codec_head *head = nullptr;
  int64_t T = 0, Tf = 0, Tf0 = 0, enc[2] = {0, 0};
  int64_t T0 = 0, enc0[2] = {0, 0}; // at creation
  int64_t wpos0 = 0; // window token t sits at element (wpos0 + t) * D of krec/vrec
  uint32_t maxSym[2] = {0, 0}; // the codec's largest symbol per stream (the row's error bounds)
  std::vector<uint16_t> sym[2]; // tokens [Tf, enc[s]) x D
  std::vector<uint16_t> raw[2]; // tokens [enc[s], T) x D, fp16 bits
};
// A changed element range [lo, hi) of buffer `buf`.
struct Span {
  int buf;
  int64_t lo, hi;
};
} // namespace

struct kvc_fw_appender {
  kvc_fw_host_form form{};
  std::vector<AppendRow> rows;
  int64_t D = 0, KB = 0, tileCap = 0, winCap = 0, maxWin = 0, maxNew = 0, appended = 0;
  bool broken = false;
  std::vector<Span> spans; // what the last append changed
  kvc_cuda_ptr staging = 0; // device staging of kvc_cuda_fw_append's batched copies
  size_t stagingBytes = 0;
  ~kvc_fw_appender() {
    if (staging)
      kvc_cuda_free(staging);
    for (AppendRow &r : rows)
      if (r.head)
        kvc_codec_head_free(r.head);
    kvc_fw_host_free(&form);
  }
};

namespace {
// A private copy of a codec head (appends must not touch the caller's).
kvc_codec_head *cloneHead(const kvc_codec_head *h) {
  size_t size = 0;
  if (kvc_codec_head_serialize(h, nullptr, 0, &size) && size == 0)
    return nullptr;
  std::vector<uint8_t> bytes(size);
  kvc_codec_head *out = nullptr;
  if (kvc_codec_head_serialize(h, bytes.data(), bytes.size(), &size) ||
      kvc_codec_head_deserialize(bytes.data(), size, &out))
    return nullptr;
  return out;
}

// Rewrites row r's window tokens [from, T) in the host form from its state, recording the span.
void writeWindow(kvc_fw_appender *a, int64_t r, int64_t from) {
  AppendRow &R = a->rows[size_t(r)];
  const int64_t D = a->D;
  kvc_codec_stream_view sv[2];
  kvc_codec_huffman_tables tb[2];
  for (int s = 0; s < 2; ++s)
    kvc_codec_head_view(R.head, s, &sv[s], &tb[s]);
  const int64_t base = R.wpos0; // window token t sits at base + t
  for (int s = 0; s < 2; ++s) {
    uint16_t *rec = static_cast<uint16_t *>(a->form.data[s ? KVC_FW_VREC : KVC_FW_KREC]);
    for (int64_t t = std::max(from, R.Tf); t < R.T; ++t)
      for (int64_t c = 0; c < D; ++c) {
        uint16_t x;
        if (t < R.enc[s]) {
          const int64_t g = s ? t : t / a->KB;
          x = kvc::codec::floatToHalf(kvc::codec::dequantize(
              R.sym[s][size_t((t - R.Tf) * D + c)], sv[s].mins[g], sv[s].steps[g]));
        } else {
          x = R.raw[s][size_t((t - R.enc[s]) * D + c)];
        }
        rec[(base + t) * D + c] = x;
      }
    if (std::max(from, R.Tf) < R.T)
      a->spans.push_back({s ? KVC_FW_VREC : KVC_FW_KREC, (base + std::max(from, R.Tf)) * D,
                          (base + R.T) * D});
  }
}

// The codec encoded tokens [Tf, enc[s]) of row r already; their symbols and parameters go into
// the (incomplete) tiles past Tf now, zeros standing for the tokens not encoded yet. The host
// path repacks a tile whole when it completes; the GPU store kernels (kvc_cuda_fw_gpu_append)
// write only the words and parameters of the blocks they encode, so these must be in place.
// Key words hold 32 tokens of one key block and value words 16 tokens of one value block
// (key blocks 32..128, value blocks a multiple of 16), so no word mixes the two kinds.
void prewritePartialTiles(kvc_fw_appender *a, int64_t r) {
  AppendRow &R = a->rows[size_t(r)];
  const int64_t D = a->D, KB = a->KB, end = std::max(R.enc[0], R.enc[1]);
  std::vector<uint16_t> ks(size_t(kTile * D)), vs(ks.size());
  for (int64_t G = R.Tf / kTile; G * kTile < end && G < a->tileCap; ++G) {
    std::fill(ks.begin(), ks.end(), 0);
    std::fill(vs.begin(), vs.end(), 0);
    for (int s = 0; s < 2; ++s)
      for (int64_t t = G * kTile; t < std::min(R.enc[s], (G + 1) * kTile); ++t)
        std::copy_n(R.sym[s].begin() + (t - R.Tf) * D, D, (s ? vs : ks).begin() + (t - G * kTile) * D);
    packTile(ks.data(), vs.data(), D, r * a->tileCap + G,
             static_cast<uint32_t *>(a->form.data[KVC_FW_KW]),
             static_cast<uint32_t *>(a->form.data[KVC_FW_VW]));
  }
  kvc_codec_stream_view sv[2];
  kvc_codec_huffman_tables tb[2];
  for (int s = 0; s < 2; ++s)
    kvc_codec_head_view(R.head, s, &sv[s], &tb[s]);
  const int64_t tok0 = r * a->tileCap * kTile, reserved = a->tileCap * kTile;
  float *kmin = static_cast<float *>(a->form.data[KVC_FW_KMIN]);
  float *kstep = static_cast<float *>(a->form.data[KVC_FW_KSTEP]);
  float *vmin = static_cast<float *>(a->form.data[KVC_FW_VMIN]);
  float *vstep = static_cast<float *>(a->form.data[KVC_FW_VSTEP]);
  for (int64_t b = R.Tf / KB; b < R.enc[0] / KB && (b + 1) * KB <= reserved; ++b) {
    kmin[tok0 / KB + b] = sv[0].mins[b];
    kstep[tok0 / KB + b] = sv[0].steps[b];
  }
  for (int64_t t = R.Tf; t < std::min(R.enc[1], reserved); ++t) {
    vmin[tok0 + t] = sv[1].mins[t];
    vstep[tok0 + t] = sv[1].steps[t];
  }
}

void writeRowEntry(kvc_fw_appender *a, int64_t r) {
  const AppendRow &R = a->rows[size_t(r)];
  int32_t *rows = static_cast<int32_t *>(a->form.data[KVC_FW_ROWS]);
  const int32_t info[4] = {int32_t(R.T), int32_t(R.Tf), int32_t(r * a->tileCap),
                           int32_t(R.wpos0 + R.Tf)};
  std::memcpy(rows + 4 * r, info, sizeof info);
}

void updateTotals(kvc_fw_appender *a) {
  kvc_fw_host_form &f = a->form;
  f.tokens = f.code_tokens = 0;
  f.max_tokens = f.max_code_tiles = f.max_window_tiles = 0;
  for (const AppendRow &R : a->rows) {
    f.tokens += uint64_t(R.T);
    f.code_tokens += uint64_t(R.Tf);
    f.max_tokens = std::max(f.max_tokens, R.T);
    f.max_code_tiles = std::max(f.max_code_tiles, R.Tf / kTile);
    f.max_window_tiles = std::max(f.max_window_tiles, (R.T + kTile - 1) / kTile - R.Tf / kTile);
  }
}
} // namespace

extern "C" {

int kvc_fw_appender_create(const kvc_codec_head *const *heads, int64_t batch, int64_t hkv,
                           int64_t maxNew, kvc_fw_appender **out, const char **err) {
  static const char *fn = "kvc_fw_appender_create";
  *out = nullptr;
  if (maxNew < 0)
    return fail(err, fn, "max_new_tokens must be >= 0, got " + std::to_string(maxNew));
  // The tight form checks every row (and gives the data of the code tiles and windows, and the
  // symbols past Tf).
  kvc_fw_host_form tight;
  SymbolTails tails;
  if (packForm(heads, batch, hkv, &tight, err, &tails))
    return -1;
  auto a = std::make_unique<kvc_fw_appender>();
  const int64_t R = batch * hkv, D = tight.head_dim, KB = tight.key_block;
  a->D = D;
  a->KB = KB;
  a->maxNew = maxNew;
  a->rows.resize(size_t(R));
  const int32_t *trows = static_cast<const int32_t *>(tight.data[KVC_FW_ROWS]);
  int64_t maxWin = 0, maxT = 0;
  for (int64_t r = 0; r < R; ++r) {
    maxWin = std::max<int64_t>(maxWin, trows[4 * r] - trows[4 * r + 1]);
    maxT = std::max<int64_t>(maxT, trows[4 * r]);
  }
  a->tileCap = (maxT + maxNew) / kTile;
  a->winCap = maxWin + maxNew;
  a->maxWin = maxWin;
  if ((a->tileCap + 1) * R > INT32_MAX / kTile || a->winCap * R > INT32_MAX)
    return kvc_fw_host_free(&tight), fail(err, fn, "the reserved layout exceeds the row "
                                                   "table's 32-bit fields");
  // The capacity layout: the tight form's rows moved to their reserved places.
  const int64_t KU4 = kvc_fw_key_u4(int(D)), VU4 = kvc_fw_value_u4(int(D));
  const int64_t kwTile = kWarps * KU4 * 128, vwTile = kWarps * VU4 * 128;
  kvc_fw_host_form &f = a->form;
  f = tight; // the scalars; the buffers are the appender's own
  for (int i = 0; i < KVC_FW_NUM_BUFFERS; ++i)
    f.data[i] = nullptr;
  int64_t lens[KVC_FW_NUM_BUFFERS];
  lens[KVC_FW_ROWS] = R * 4;
  lens[KVC_FW_KW] = R * a->tileCap * kwTile;
  lens[KVC_FW_VW] = R * a->tileCap * vwTile;
  lens[KVC_FW_KMIN] = lens[KVC_FW_KSTEP] = R * a->tileCap * kTile / KB;
  lens[KVC_FW_VMIN] = lens[KVC_FW_VSTEP] = R * a->tileCap * kTile;
  lens[KVC_FW_KREC] = lens[KVC_FW_VREC] = R * a->winCap * D;
  for (int i = 0; i < KVC_FW_NUM_BUFFERS; ++i) {
    lens[i] = std::max<int64_t>(lens[i], 8);
    f.len[i] = lens[i];
    f.data[i] = std::calloc(size_t(lens[i]), size_t(f.elem_bytes[i]));
    if (!f.data[i]) {
      kvc_fw_host_free(&tight);
      return fail(err, fn, "out of host memory");
    }
  }
  for (int64_t r = 0; r < R; ++r) {
    const int64_t T = trows[4 * r], Tf = trows[4 * r + 1], tb = trows[4 * r + 2],
                  wb = trows[4 * r + 3], F = Tf / kTile, ntb = r * a->tileCap;
    // Every row's window ends at the same offset maxWin within its reserve, so the token an
    // append adds sits at r * winCap + maxWin + (tokens appended): all rows' new tokens go
    // in one strided copy, whatever their lengths.
    const int64_t wpos0 = r * a->winCap + maxWin - T;
    auto move = [&](int buf, int64_t dst, int64_t src, int64_t n) {
      const size_t eb = size_t(f.elem_bytes[buf]);
      std::memcpy(static_cast<char *>(f.data[buf]) + dst * eb,
                  static_cast<const char *>(tight.data[buf]) + src * eb, size_t(n) * eb);
    };
    move(KVC_FW_KW, ntb * kwTile, tb * kwTile, F * kwTile);
    move(KVC_FW_VW, ntb * vwTile, tb * vwTile, F * vwTile);
    move(KVC_FW_KMIN, ntb * kTile / KB, tb * kTile / KB, Tf / KB);
    move(KVC_FW_KSTEP, ntb * kTile / KB, tb * kTile / KB, Tf / KB);
    move(KVC_FW_VMIN, ntb * kTile, tb * kTile, Tf);
    move(KVC_FW_VSTEP, ntb * kTile, tb * kTile, Tf);
    move(KVC_FW_KREC, (wpos0 + Tf) * D, wb * D, (T - Tf) * D);
    move(KVC_FW_VREC, (wpos0 + Tf) * D, wb * D, (T - Tf) * D);
    AppendRow &Row = a->rows[size_t(r)];
    Row.head = cloneHead(heads[r]);
    if (!Row.head) {
      kvc_fw_host_free(&tight);
      return fail(err, fn, "row " + std::to_string(r) + ": copying the codec head: " +
                               kvc_codec_last_error());
    }
    Row.T = Row.T0 = T;
    Row.Tf = Row.Tf0 = Tf;
    Row.wpos0 = wpos0;
    kvc_codec_params p;
    kvc_codec_head_params(Row.head, &p);
    Row.maxSym[0] = kvc::codec::maxSymbolFor(p.key_error);
    Row.maxSym[1] = kvc::codec::maxSymbolFor(p.value_error);
    // Appends quantize new blocks, whose symbols reach the codec's maximum: refuse bounds the
    // fixed widths cannot hold now rather than at the first tile an append completes.
    const uint32_t limit[2] = {KVC_FW_KEY_MAX_SYMBOL, KVC_FW_VALUE_MAX_SYMBOL};
    const float eps[2] = {p.key_error, p.value_error};
    for (int s = 0; s < 2; ++s)
      if (maxNew > 0 && Row.maxSym[s] > limit[s]) {
        char buf[240];
        snprintf(buf, sizeof buf,
                 "row %lld: the %s error bound eps = %g gives symbols up to %u, past the %d-bit "
                 "fixed width (appended blocks reach it); needs eps > %.4f",
                 (long long)r, streamName(s), double(eps[s]), Row.maxSym[s], s ? 4 : 5,
                 1.0 / (double(limit[s]) + 0.5));
        kvc_fw_host_free(&tight);
        return fail(err, fn, buf);
      }
    for (int s = 0; s < 2; ++s) {
      kvc_codec_stream_view sv;
      kvc_codec_huffman_tables tbl;
      kvc_codec_head_view(Row.head, s, &sv, &tbl);
      Row.enc[s] = Row.enc0[s] = int64_t(sv.num_blocks) * sv.block_tokens;
      Row.sym[s] = std::move(tails[size_t(r)][size_t(s)]);
      Row.raw[s].assign(sv.recent_fp16, sv.recent_fp16 + size_t(sv.recent_tokens) * D);
    }
    prewritePartialTiles(a.get(), r);
    writeRowEntry(a.get(), r);
  }
  kvc_fw_host_free(&tight);
  updateTotals(a.get());
  a->spans.clear();
  *out = a.release();
  return 0;
}

int kvc_fw_appender_append(kvc_fw_appender *a, const uint16_t *k, const uint16_t *v, int64_t n,
                           const char **err) {
  static const char *fn = "kvc_fw_appender_append";
  a->spans.clear();
  if (a->broken)
    return fail(err, fn, "an earlier append failed; the cache no longer matches its rows");
  if (n < 0)
    return fail(err, fn, "the token count must be >= 0, got " + std::to_string(n));
  if (n > a->maxNew - a->appended)
    return fail(err, fn, "appending " + std::to_string(n) + " tokens to " +
                             std::to_string(a->appended) + " already appended exceeds the "
                             "reserve of " + std::to_string(a->maxNew) + " per row");
  const int64_t D = a->D, KB = a->KB;
  // Non-finite tokens are refused before any row takes them (the appender stays usable).
  const int64_t all = int64_t(a->rows.size()) * n * D;
  for (int s = 0; s < 2; ++s)
    for (int64_t i = 0; i < all; ++i)
      if (((s ? v : k)[i] & 0x7C00u) == 0x7C00u)
        return fail(err, fn, std::string("row ") + std::to_string(i / (n * D)) + " token " +
                                 std::to_string(i / D % n) + ": non-finite " + streamName(s) +
                                 " (fp16 bits " + std::to_string((s ? v : k)[i]) + ")");
  std::vector<float> kf(size_t(n * D)), vf(size_t(n * D));
  for (int64_t r = 0; r < int64_t(a->rows.size()); ++r) {
    AppendRow &R = a->rows[size_t(r)];
    const std::string row = "row " + std::to_string(r) + ": ";
    const uint16_t *kin = k + r * n * D, *vin = v + r * n * D;
    for (int64_t i = 0; i < n * D; ++i) {
      kf[size_t(i)] = kvc::codec::halfToFloat(kin[i]);
      vf[size_t(i)] = kvc::codec::halfToFloat(vin[i]);
    }
    if (kvc_codec_head_append(R.head, kf.data(), vf.data(), uint64_t(n))) {
      a->broken = true;
      return fail(err, fn, row + kvc_codec_last_error());
    }
    R.raw[0].insert(R.raw[0].end(), kin, kin + n * D);
    R.raw[1].insert(R.raw[1].end(), vin, vin + n * D);
    const int64_t oldT = R.T, oldEnc[2] = {R.enc[0], R.enc[1]};
    R.T += n;
    // Tokens the codec encoded in this append: its (min, step) and its quantizer give the
    // symbols it holds (its inputs are these fp16 values).
    kvc_codec_stream_view sv[2];
    kvc_codec_huffman_tables tb[2];
    for (int s = 0; s < 2; ++s) {
      kvc_codec_head_view(R.head, s, &sv[s], &tb[s]);
      const int64_t enc = int64_t(sv[s].num_blocks) * sv[s].block_tokens;
      for (int64_t t = R.enc[s]; t < enc; ++t) {
        const int64_t g = s ? t : t / KB;
        const kvc::codec::GroupParams gp{sv[s].mins[g], sv[s].steps[g]};
        for (int64_t c = 0; c < D; ++c)
          R.sym[s].push_back(uint16_t(kvc::codec::quantize(
              kvc::codec::halfToFloat(R.raw[s][size_t((t - R.enc[s]) * D + c)]), gp,
              R.maxSym[s])));
      }
      R.raw[s].erase(R.raw[s].begin(), R.raw[s].begin() + (enc - R.enc[s]) * D);
      R.enc[s] = enc;
    }
    // Whole tiles both streams now encode become code tiles.
    const int64_t Tf = std::min(R.enc[0], R.enc[1]) / kTile * kTile;
    const uint32_t limit[2] = {KVC_FW_KEY_MAX_SYMBOL, KVC_FW_VALUE_MAX_SYMBOL};
    for (int s = 0; s < 2; ++s)
      for (int64_t e = 0; e < (Tf - R.Tf) * D; ++e)
        if (R.sym[s][size_t(e)] > limit[s]) {
          a->broken = true;
          return fail(err, fn, row + streamName(s) + " symbol " +
                                   std::to_string(R.sym[s][size_t(e)]) + " exceeds " +
                                   std::to_string(limit[s]) + " (the fixed width)");
        }
    if (Tf > R.Tf) {
      if (Tf / kTile > a->tileCap) {
        a->broken = true;
        return fail(err, fn, row + "more code tiles than reserved");
      }
      uint32_t *kw = static_cast<uint32_t *>(a->form.data[KVC_FW_KW]);
      uint32_t *vw = static_cast<uint32_t *>(a->form.data[KVC_FW_VW]);
      const int64_t KU4 = kvc_fw_key_u4(int(D)), VU4 = kvc_fw_value_u4(int(D));
      const int64_t G0 = r * a->tileCap + R.Tf / kTile, G1 = r * a->tileCap + Tf / kTile;
      for (int64_t G = G0; G < G1; ++G)
        packTile(R.sym[0].data() + (G - G0) * kTile * D, R.sym[1].data() + (G - G0) * kTile * D,
                 D, G, kw, vw);
      a->spans.push_back({KVC_FW_KW, G0 * kWarps * KU4 * 128, G1 * kWarps * KU4 * 128});
      a->spans.push_back({KVC_FW_VW, G0 * kWarps * VU4 * 128, G1 * kWarps * VU4 * 128});
      const int64_t tok0 = r * a->tileCap * kTile; // the row's first code token's slot
      float *kmin = static_cast<float *>(a->form.data[KVC_FW_KMIN]);
      float *kstep = static_cast<float *>(a->form.data[KVC_FW_KSTEP]);
      float *vmin = static_cast<float *>(a->form.data[KVC_FW_VMIN]);
      float *vstep = static_cast<float *>(a->form.data[KVC_FW_VSTEP]);
      for (int64_t b = R.Tf / KB; b < Tf / KB; ++b) {
        kmin[tok0 / KB + b] = sv[0].mins[b];
        kstep[tok0 / KB + b] = sv[0].steps[b];
      }
      for (int64_t t = R.Tf; t < Tf; ++t) {
        vmin[tok0 + t] = sv[1].mins[t];
        vstep[tok0 + t] = sv[1].steps[t];
      }
      for (int buf : {KVC_FW_KMIN, KVC_FW_KSTEP})
        a->spans.push_back({buf, (tok0 + R.Tf) / KB, (tok0 + Tf) / KB});
      for (int buf : {KVC_FW_VMIN, KVC_FW_VSTEP})
        a->spans.push_back({buf, tok0 + R.Tf, tok0 + Tf});
      for (int s = 0; s < 2; ++s)
        R.sym[s].erase(R.sym[s].begin(), R.sym[s].begin() + (Tf - R.Tf) * D);
      R.Tf = Tf;
    }
    // The window: the new tokens, and tokens whose stream the codec encoded in this append
    // (they now hold their dequantized values).
    writeWindow(a, r, std::min({oldT, oldEnc[0] < R.enc[0] ? oldEnc[0] : oldT,
                                oldEnc[1] < R.enc[1] ? oldEnc[1] : oldT}));
    writeRowEntry(a, r);
  }
  a->spans.push_back({KVC_FW_ROWS, 0, int64_t(a->rows.size()) * 4});
  a->appended += n;
  updateTotals(a);
  return 0;
}

const kvc_fw_host_form *kvc_fw_appender_form(const kvc_fw_appender *a) { return &a->form; }

int64_t kvc_fw_appender_changes(const kvc_fw_appender *a, int64_t i, int *buffer, int64_t *lo,
                                int64_t *hi) {
  if (i >= 0 && i < int64_t(a->spans.size())) {
    *buffer = a->spans[size_t(i)].buf;
    *lo = a->spans[size_t(i)].lo;
    *hi = a->spans[size_t(i)].hi;
  }
  return int64_t(a->spans.size());
}

void kvc_fw_appender_free(kvc_fw_appender *a) { delete a; }

int kvc_cuda_fw_upload_appendable(const kvc_fw_appender *a, kvc_cuda_fw_cache *out,
                                  const char **err) {
  return kvc_cuda_fw_upload_form(&a->form, out, err);
}

int kvc_cuda_fw_append(kvc_fw_appender *a, kvc_cuda_fw_cache *c, const uint16_t *k,
                       const uint16_t *v, int64_t n, const char **err) {
  static const char *fn = "kvc_cuda_fw_append";
  for (int i = 0; i < KVC_FW_NUM_BUFFERS; ++i)
    if (c->len[i] != a->form.len[i] || c->batch != a->form.batch || c->hkv != a->form.hkv ||
        c->head_dim != a->form.head_dim)
      return fail(err, fn, "the cache was not uploaded from this appender "
                           "(kvc_cuda_fw_upload_appendable)");
  if (kvc_fw_appender_append(a, k, v, n, err))
    return -1;
  // Kernels that read the buffers may still run on other (non-blocking) streams, and a copy from
  // pageable memory may return before it lands: synchronise on both sides of the copies.
  if (kvc_cuda_synchronize()) {
    a->broken = true;
    return fail(err, fn, std::string("synchronising: ") + kvc_cuda_last_error());
  }
  // The changes of one buffer usually come as one span per row, of equal length at a constant
  // stride (rows of equal length): those go as one host-to-device copy into a staging buffer
  // and one strided device copy, instead of a copy per row. Anything else is copied span by
  // span.
  auto copyFailed = [&](const char *what) {
    a->broken = true;
    return fail(err, fn, std::string(what) + kvc_cuda_last_error());
  };
  std::vector<Span> spans; // grouped by buffer, rows in order
  for (int buf = 0; buf < KVC_FW_NUM_BUFFERS; ++buf)
    for (const Span &s : a->spans)
      if (s.buf == buf && s.hi > s.lo)
        spans.push_back(s);
  for (size_t i = 0; i < spans.size();) {
    size_t j = i + 1;
    while (j < spans.size() && spans[j].buf == spans[i].buf)
      ++j;
    const int buf = spans[i].buf;
    const size_t eb = size_t(a->form.elem_bytes[buf]);
    const char *host = static_cast<const char *>(a->form.data[buf]);
    const int64_t len = spans[i].hi - spans[i].lo;
    const int64_t stride = j - i > 1 ? spans[i + 1].lo - spans[i].lo : 0;
    // KVC_FW_APPEND_PER_SPAN=1: always span by span (the comparison of run-fixed-width.sh).
    static const bool perSpan = std::getenv("KVC_FW_APPEND_PER_SPAN") != nullptr;
    bool strided = !perSpan && j - i > 2 && stride >= len;
    for (size_t t = i + 1; strided && t < j; ++t)
      strided = spans[t].hi - spans[t].lo == len && spans[t].lo - spans[t - 1].lo == stride;
    if (strided) {
      const size_t rowBytes = size_t(len) * eb, bytes = rowBytes * (j - i);
      if (bytes > a->stagingBytes) {
        if (a->staging)
          kvc_cuda_free(a->staging);
        a->staging = 0;
        a->stagingBytes = 0;
        if (kvc_cuda_malloc(&a->staging, bytes * 2))
          return copyFailed("staging buffer: ");
        a->stagingBytes = bytes * 2;
      }
      std::vector<char> gathered(bytes);
      for (size_t t = i; t < j; ++t)
        std::memcpy(gathered.data() + (t - i) * rowBytes, host + size_t(spans[t].lo) * eb,
                    rowBytes);
      if (kvc_cuda_memcpy_htod(a->staging, gathered.data(), bytes) ||
          kvc_cuda_memcpy2d_dtod_async(c->buf[buf] + uint64_t(spans[i].lo) * eb,
                                       size_t(stride) * eb, a->staging, rowBytes, rowBytes,
                                       j - i, nullptr))
        return copyFailed("copying to the device: ");
    } else {
      for (size_t t = i; t < j; ++t)
        if (kvc_cuda_memcpy_htod(c->buf[buf] + uint64_t(spans[t].lo) * eb,
                                 host + size_t(spans[t].lo) * eb,
                                 size_t(spans[t].hi - spans[t].lo) * eb))
          return copyFailed("copying to the device: ");
    }
    i = j;
  }
  if (kvc_cuda_synchronize()) {
    a->broken = true;
    return fail(err, fn, std::string("synchronising: ") + kvc_cuda_last_error());
  }
  c->max_tokens = a->form.max_tokens;
  c->max_code_tiles = a->form.max_code_tiles;
  c->max_window_tiles = a->form.max_window_tiles;
  c->tokens = a->form.tokens;
  c->code_tokens = a->form.code_tokens;
  return 0;
}

} // extern "C"

// ============================================================================================
// Appending on the GPU (store kernels): see CUDAFixedWidth.h.

namespace {
constexpr int kJobInts = 8;
constexpr int64_t kValueJobTokens = 16;

// One stream's store jobs (every block max_new_tokens can cut), sorted by the count of
// appended tokens at which the codec cuts them.
struct StoreJobs {
  std::vector<int32_t> jobs;        // kJobInts per job (the kernels' ABI)
  std::vector<int64_t> row, token;  // per job: row and first token (for messages)
  std::vector<int64_t> due;         // due[a] = jobs cut at counts <= a, a in 0..max_new
  kvc_cuda_ptr djobs = 0, dres = 0; // device copies: jobs, statuses
};
struct FormTotals {
  uint64_t tokens = 0, code_tokens = 0;
  int64_t max_tokens = 0, max_code_tiles = 0, max_window_tiles = 0;
};

// Tokens a codec stream has encoded after `a` appended tokens: it cuts the oldest whole blocks
// whenever at least block + recent are pending (CodecHead::cutBlocks), so the count depends on
// a alone, not on how the tokens were split into calls.
int64_t encodedAfter(int64_t enc0, int64_t pend0, int64_t block, int64_t recent, int64_t a) {
  const int64_t p = pend0 + a - recent;
  return p >= block ? enc0 + p / block * block : enc0;
}
} // namespace

struct kvc_fw_gpu_appender {
  int64_t R = 0, D = 0, KB = 0, winCap = 0, maxWin = 0, maxNew = 0, appended = 0;
  kvc_cuda_ptr rowsBuf = 0; // the cache's row table (identifies the cache)
  bool broken = false;
  StoreJobs st[2];
  kvc_cuda_ptr tables = 0; // the max_new + 1 row tables, R * 4 int32 each
  std::vector<FormTotals> totals;
  ~kvc_fw_gpu_appender() {
    for (StoreJobs &s : st) {
      if (s.djobs)
        kvc_cuda_free(s.djobs);
      if (s.dres)
        kvc_cuda_free(s.dres);
    }
    if (tables)
      kvc_cuda_free(tables);
  }
};

extern "C" {

int kvc_cuda_fw_store_kernels_find(kvc_cuda_module m, const char *ptx, int64_t D, int64_t KB,
                                   kvc_fw_store_kernels *out, const char **err) {
  static const char *fn = "kvc_cuda_fw_store_kernels_find";
  std::memset(out, 0, sizeof *out);
  const std::string text(ptx ? ptx : "");
  const std::string tag = "_d" + std::to_string(D) + "_kb" + std::to_string(KB) + "_fw";
  for (size_t p = text.find(".entry "); p != std::string::npos; p = text.find(".entry ", p + 1)) {
    const size_t b = p + 7, e = text.find_first_of("( \n", b);
    const std::string name = text.substr(b, e - b);
    static const char *kinds[3] = {"_kstore", "_vstore", "_tokens"};
    for (int v = 0; v < 3; ++v) {
      const std::string suf = tag + kinds[v];
      if (name.size() < suf.size() || name.compare(name.size() - suf.size(), suf.size(), suf))
        continue;
      kvc_cuda_function f;
      int threads = 0;
      if (kvc_cuda_module_get_function(m, name.c_str(), &f) ||
          kvc_cuda_function_max_threads(f, &threads))
        return fail(err, fn, name + ": " + kvc_cuda_last_error());
      const int64_t need = v == 2 ? D : KVC_FW_STORE_THREADS;
      if (threads < need)
        return fail(err, fn, name + " takes at most " + std::to_string(threads) +
                                 " threads per CTA, not " + std::to_string(need) +
                                 " (not a kvc fixed-width store kernel)");
      (v == 2 ? out->tokens : v ? out->vstore : out->kstore) = f;
    }
  }
  if (!out->kstore || !out->vstore || !out->tokens)
    return fail(err, fn, "no store kernels *" + tag + "_{kstore,vstore,tokens} in the PTX "
                         "(kvc-bench store gen --fixed-width " + std::to_string(D) + "," +
                         std::to_string(KB) + ")");
  out->head_dim = D;
  out->key_block = KB;
  return 0;
}

int kvc_cuda_fw_gpu_appender_create(const kvc_fw_appender *a, const kvc_cuda_fw_cache *c,
                                    kvc_fw_gpu_appender **out, const char **err) {
  static const char *fn = "kvc_cuda_fw_gpu_appender_create";
  *out = nullptr;
  if (a->appended || a->broken)
    return fail(err, fn, "the host appender has appended already; create the GPU appender "
                         "from a fresh kvc_fw_appender");
  for (int i = 0; i < KVC_FW_NUM_BUFFERS; ++i)
    if (c->len[i] != a->form.len[i] || !c->buf[i])
      return fail(err, fn, "the cache was not uploaded from this appender "
                           "(kvc_cuda_fw_upload_appendable)");
  auto g = std::make_unique<kvc_fw_gpu_appender>();
  const int64_t R = int64_t(a->rows.size()), D = a->D, KB = a->KB, maxNew = a->maxNew;
  g->R = R;
  g->D = D;
  g->KB = KB;
  g->winCap = a->winCap;
  g->maxNew = maxNew;
  g->maxWin = a->maxWin;
  g->rowsBuf = c->buf[KVC_FW_ROWS];
  // Jobs hold token and warp-unit indices, which the host appender's layout keeps below 2^31.
  struct Job {
    int64_t due, r, t0;
    std::array<int32_t, kJobInts> f;
  };
  std::vector<Job> jobs[2];
  for (int64_t r = 0; r < R; ++r) {
    const AppendRow &Row = a->rows[size_t(r)];
    kvc_codec_params p;
    kvc_codec_head_params(Row.head, &p);
    const float eps[2] = {p.key_error, p.value_error};
    const int64_t recent[2] = {p.key_recent_tokens, p.value_recent_tokens};
    for (int s = 0; s < 2; ++s) {
      kvc_codec_stream_view sv;
      kvc_codec_huffman_tables tb;
      kvc_codec_head_view(Row.head, s, &sv, &tb);
      const int64_t B = sv.block_tokens, pend0 = Row.T0 - Row.enc0[s];
      if (s && B % kValueJobTokens)
        return fail(err, fn, "row " + std::to_string(r) + ": value block of " +
                                 std::to_string(B) + " tokens; the store kernels need a "
                                 "multiple of 16");
      int32_t epsBits;
      std::memcpy(&epsBits, &eps[s], 4);
      for (int64_t j = 0;; ++j) {
        const int64_t due = recent[s] + (j + 1) * B - pend0;
        if (due > maxNew)
          break;
        if (due < 1)
          return fail(err, fn, "internal: a block is due before any append");
        const int64_t per = s ? kValueJobTokens : B;
        for (int64_t t0 = Row.enc0[s] + j * B; t0 < Row.enc0[s] + (j + 1) * B; t0 += per) {
          Job J{due, r, t0, {}};
          const int64_t tile = t0 / kTile, w = t0 % kTile / kWarpTokens;
          const bool reserved = tile < a->tileCap;
          const int64_t G = r * a->tileCap + tile;
          J.f[0] = int32_t(Row.wpos0 + t0);
          J.f[1] = reserved ? int32_t(G * kWarps + w) : -1;
          J.f[2] = !reserved ? -1
                   : s       ? int32_t(r * a->tileCap * kTile + t0)
                             : int32_t((r * a->tileCap * kTile + t0) / KB);
          J.f[3] = epsBits;
          J.f[4] = int32_t(Row.maxSym[s]);
          J.f[5] = int32_t(t0 % kWarpTokens / kValueJobTokens);
          jobs[s].push_back(J);
        }
      }
    }
  }
  for (int s = 0; s < 2; ++s) {
    std::sort(jobs[s].begin(), jobs[s].end(), [](const Job &x, const Job &y) {
      return x.due != y.due ? x.due < y.due : x.r != y.r ? x.r < y.r : x.t0 < y.t0;
    });
    StoreJobs &S = g->st[s];
    for (const Job &J : jobs[s]) {
      S.jobs.insert(S.jobs.end(), J.f.begin(), J.f.end());
      S.row.push_back(J.r);
      S.token.push_back(J.t0);
    }
    S.due.assign(size_t(maxNew + 1), 0);
    size_t k = 0;
    for (int64_t n = 0; n <= maxNew; ++n) {
      while (k < jobs[s].size() && jobs[s][k].due <= n)
        ++k;
      S.due[size_t(n)] = int64_t(k);
    }
  }
  // The row tables and totals after every count of appended tokens.
  std::vector<int32_t> tables(size_t((maxNew + 1) * R * 4));
  g->totals.resize(size_t(maxNew + 1));
  for (int64_t r = 0; r < R; ++r) {
    const AppendRow &Row = a->rows[size_t(r)];
    kvc_codec_params p;
    kvc_codec_head_params(Row.head, &p);
    int64_t B[2];
    for (int s = 0; s < 2; ++s) {
      kvc_codec_stream_view sv;
      kvc_codec_huffman_tables tb;
      kvc_codec_head_view(Row.head, s, &sv, &tb);
      B[s] = sv.block_tokens;
    }
    for (int64_t n = 0; n <= maxNew; ++n) {
      const int64_t T = Row.T0 + n;
      const int64_t ek = encodedAfter(Row.enc0[0], Row.T0 - Row.enc0[0], B[0],
                                      p.key_recent_tokens, n),
                    ev = encodedAfter(Row.enc0[1], Row.T0 - Row.enc0[1], B[1],
                                      p.value_recent_tokens, n);
      const int64_t Tf = std::max(Row.Tf0, std::min(ek, ev) / kTile * kTile);
      int32_t *e = tables.data() + (n * R + r) * 4;
      e[0] = int32_t(T);
      e[1] = int32_t(Tf);
      e[2] = int32_t(r * a->tileCap);
      e[3] = int32_t(Row.wpos0 + Tf);
      FormTotals &F = g->totals[size_t(n)];
      F.tokens += uint64_t(T);
      F.code_tokens += uint64_t(Tf);
      F.max_tokens = std::max(F.max_tokens, T);
      F.max_code_tiles = std::max(F.max_code_tiles, Tf / kTile);
      F.max_window_tiles = std::max(F.max_window_tiles, (T + kTile - 1) / kTile - Tf / kTile);
    }
  }
  if (std::memcmp(tables.data(), a->form.data[KVC_FW_ROWS], size_t(R * 4) * 4))
    return fail(err, fn, "internal: the row table at 0 appended tokens differs from the form's");
  // Empty lists (no block falls due within the reserve) still get a (4-byte) buffer.
  auto upload = [&](kvc_cuda_ptr *dst, const void *src, size_t bytes) {
    return bytes ? uploadBuffer(dst, src, bytes) : kvc_cuda_malloc(dst, 4);
  };
  if (upload(&g->tables, tables.data(), tables.size() * 4))
    return fail(err, fn, std::string("uploading the row tables: ") + kvc_cuda_last_error());
  for (StoreJobs &S : g->st) {
    std::vector<int32_t> zeros(std::max<size_t>(S.row.size(), 1), 0);
    if (upload(&S.djobs, S.jobs.data(), S.jobs.size() * 4) ||
        upload(&S.dres, zeros.data(), zeros.size() * 4))
      return fail(err, fn, std::string("uploading the store jobs: ") + kvc_cuda_last_error());
  }
  *out = g.release();
  return 0;
}

namespace {
// The statuses of stream s's jobs [j0, j1): 0, or -1 with the first failed job named.
int checkStatuses(kvc_fw_gpu_appender *g, int s, int64_t j0, int64_t j1, const char *fn,
                  const char **err) {
  if (j1 <= j0)
    return 0;
  const StoreJobs &S = g->st[s];
  std::vector<int32_t> res(size_t(j1 - j0));
  if (kvc_cuda_memcpy_dtoh(res.data(), S.dres + uint64_t(j0) * 4, res.size() * 4))
    return fail(err, fn, std::string("reading the store statuses: ") + kvc_cuda_last_error());
  for (int64_t j = j0; j < j1; ++j)
    if (res[size_t(j - j0)]) {
      const int64_t r = S.row[size_t(j)], t0 = S.token[size_t(j)];
      const int64_t n = s ? kValueJobTokens : g->KB;
      return fail(err, fn, "row " + std::to_string(r) + ": " + streamName(s) + " tokens [" +
                               std::to_string(t0) + ", " + std::to_string(t0 + n) +
                               ") hold a non-finite value (store status " +
                               std::to_string(res[size_t(j - j0)]) +
                               "); the appender is unusable");
    }
  return 0;
}
} // namespace

int kvc_cuda_fw_gpu_append_prepare(kvc_fw_gpu_appender *g, const kvc_cuda_fw_cache *c,
                                   int64_t n, kvc_fw_gpu_append_plan *out, const char **err) {
  static const char *fn = "kvc_cuda_fw_gpu_append";
  std::memset(out, 0, sizeof *out);
  if (g->broken)
    return fail(err, fn, "an earlier append failed; the cache no longer matches its rows");
  if (c->buf[KVC_FW_ROWS] != g->rowsBuf)
    return fail(err, fn, "the cache is not the one this appender was created for");
  if (n < 0)
    return fail(err, fn, "the token count must be >= 0, got " + std::to_string(n));
  if (n > g->maxNew - g->appended)
    return fail(err, fn, "appending " + std::to_string(n) + " tokens to " +
                             std::to_string(g->appended) + " already appended exceeds the "
                             "reserve of " + std::to_string(g->maxNew) + " per row");
  out->window_offset = (g->maxWin + g->appended) * g->D;
  out->window_stride = g->winCap * g->D;
  for (int s = 0; s < 2; ++s) {
    const StoreJobs &S = g->st[s];
    const int64_t j0 = S.due[size_t(g->appended)], j1 = S.due[size_t(g->appended + n)];
    // memref<?xi32> has an identity layout: the kernels ignore a descriptor's offset, so the
    // job range starts at the pointer itself.
    out->jobs[s] = S.djobs + uint64_t(j0 * kJobInts) * 4;
    out->res[s] = S.dres + uint64_t(j0) * 4;
    out->num_jobs[s] = j1 - j0;
  }
  return 0;
}

namespace {
// commit; `tableCopied`: the tokens kernel already copied the row table (unchecked appends).
int commitAppend(kvc_fw_gpu_appender *g, kvc_cuda_fw_cache *c, int64_t n, kvc_cuda_stream stream,
                 int flags, bool tableCopied, const char **err) {
  static const char *fn = "kvc_cuda_fw_gpu_append";
  if (g->broken || n < 0 || n > g->maxNew - g->appended)
    return fail(err, fn, "commit without a matching prepare");
  if (n == 0)
    return 0;
  const int64_t a0 = g->appended, a1 = a0 + n, R = g->R;
  if (flags & KVC_FW_APPEND_CHECK) {
    if (kvc_cuda_stream_synchronize(stream)) {
      g->broken = true;
      return fail(err, fn, std::string("synchronising: ") + kvc_cuda_last_error());
    }
    for (int s = 0; s < 2; ++s)
      if (checkStatuses(g, s, g->st[s].due[size_t(a0)], g->st[s].due[size_t(a1)], fn, err)) {
        g->broken = true;
        return -1;
      }
  }
  // The row table after a1 tokens (kernels enqueued before on this stream read the old one).
  if (!tableCopied &&
      kvc_cuda_memcpy_dtod_async(c->buf[KVC_FW_ROWS], g->tables + uint64_t(a1 * R * 4) * 4,
                                 size_t(R * 4) * 4, stream)) {
    g->broken = true;
    return fail(err, fn, std::string("copying the row table: ") + kvc_cuda_last_error());
  }
  const FormTotals &F = g->totals[size_t(a1)];
  c->max_tokens = F.max_tokens;
  c->max_code_tiles = F.max_code_tiles;
  c->max_window_tiles = F.max_window_tiles;
  c->tokens = F.tokens;
  c->code_tokens = F.code_tokens;
  g->appended = a1;
  return 0;
}
} // namespace

int kvc_cuda_fw_gpu_append_commit(kvc_fw_gpu_appender *g, kvc_cuda_fw_cache *c, int64_t n,
                                  kvc_cuda_stream stream, int flags, const char **err) {
  return commitAppend(g, c, n, stream, flags, /*tableCopied=*/false, err);
}

int kvc_cuda_fw_gpu_append(kvc_fw_gpu_appender *g, kvc_cuda_fw_cache *c,
                           const kvc_fw_store_kernels *sk, kvc_cuda_ptr k_new,
                           kvc_cuda_ptr v_new, int64_t n, kvc_cuda_stream stream, int flags,
                           const char **err) {
  static const char *fn = "kvc_cuda_fw_gpu_append";
  using kvc::cuda::desc;
  using kvc::cuda::Memref1D;
  if (!sk || sk->head_dim != g->D || sk->key_block != g->KB)
    return fail(err, fn, "store kernels for D=" + std::to_string(sk ? sk->head_dim : 0) +
                             " KB=" + std::to_string(sk ? sk->key_block : 0) +
                             ", the cache has D=" + std::to_string(g->D) +
                             " KB=" + std::to_string(g->KB));
  kvc_fw_gpu_append_plan P;
  if (kvc_cuda_fw_gpu_append_prepare(g, c, n, &P, err))
    return -1;
  if (n == 0)
    return 0;
  const int64_t R = g->R, D = g->D;
  auto cudaFailed = [&](const char *what) {
    g->broken = true;
    return fail(err, fn, std::string(what) + kvc_cuda_last_error());
  };
  // 1. The new tokens, raw fp16, after every row's window, and unless the statuses are to be
  // checked first, the row table after the append (kernels on this stream run in order: the
  // store kernels do not read it, decode launches enqueued before read the old one).
  const bool check = flags & KVC_FW_APPEND_CHECK;
  {
    Memref1D m[6] = {desc(k_new, R * n * D), desc(v_new, R * n * D),
                     desc(c->buf[KVC_FW_KREC], c->len[KVC_FW_KREC]),
                     desc(c->buf[KVC_FW_VREC], c->len[KVC_FW_VREC]),
                     desc(c->buf[KVC_FW_ROWS], c->len[KVC_FW_ROWS]),
                     desc(g->tables + uint64_t((g->appended + n) * R * 4) * 4, R * 4)};
    int64_t scal[4] = {n, P.window_offset, P.window_stride, check ? 0 : 1};
    void *params[34];
    int np = 0;
    for (Memref1D &x : m)
      x.push(params, np);
    for (int64_t &x : scal)
      params[np++] = &x;
    // One CTA per (row, token), flattened on x: y and z are capped at 65535.
    if (uint64_t(n) * uint64_t(R) > uint64_t(INT32_MAX))
      return fail(err, fn, "appending " + std::to_string(n) + " tokens to " + std::to_string(R) +
                               " rows at once exceeds one launch; append fewer tokens per call");
    if (kvc_cuda_launch(sk->tokens, unsigned(n * R), 1, 1, unsigned(D), 1, 1, 0, stream,
                        params))
      return cudaFailed("tokens kernel launch: ");
  }
  // 2. The blocks the codec cuts in this append, all rows at once: one launch per stream.
  for (int s = 0; s < 2; ++s) {
    const int64_t nj = P.num_jobs[s];
    if (!nj)
      continue;
    const int rec = s ? KVC_FW_VREC : KVC_FW_KREC, w = s ? KVC_FW_VW : KVC_FW_KW,
              mn = s ? KVC_FW_VMIN : KVC_FW_KMIN, sp = s ? KVC_FW_VSTEP : KVC_FW_KSTEP;
    Memref1D m[6] = {desc(c->buf[rec], c->len[rec]), desc(P.jobs[s], nj * kJobInts),
                     desc(c->buf[w], c->len[w]), desc(c->buf[mn], c->len[mn]),
                     desc(c->buf[sp], c->len[sp]), desc(P.res[s], nj)};
    void *params[30];
    int np = 0;
    for (Memref1D &x : m)
      x.push(params, np);
    if (kvc_cuda_launch(s ? sk->vstore : sk->kstore, unsigned(nj), 1, 1, KVC_FW_STORE_THREADS,
                        1, 1, 0, stream, params))
      return cudaFailed("store kernel launch: ");
  }
  // 3. Statuses (checked mode) and the row table.
  return commitAppend(g, c, n, stream, flags, /*tableCopied=*/!check, err);
}

int kvc_cuda_fw_gpu_append_status(kvc_fw_gpu_appender *g, const char **err) {
  static const char *fn = "kvc_cuda_fw_gpu_append_status";
  if (kvc_cuda_synchronize())
    return fail(err, fn, std::string("synchronising: ") + kvc_cuda_last_error());
  for (int s = 0; s < 2; ++s)
    if (checkStatuses(g, s, 0, g->st[s].due[size_t(g->appended)], fn, err)) {
      g->broken = true;
      return -1;
    }
  return 0;
}

int64_t kvc_fw_gpu_appender_appended(const kvc_fw_gpu_appender *g) { return g->appended; }

void kvc_fw_gpu_appender_jobs(const kvc_fw_gpu_appender *g, int64_t *key_jobs,
                              int64_t *value_jobs) {
  *key_jobs = g->st[0].due[size_t(g->appended)];
  *value_jobs = g->st[1].due[size_t(g->appended)];
}

void kvc_fw_gpu_appender_free(kvc_fw_gpu_appender *g) { delete g; }

} // extern "C"
