//===- Store.cpp - kvc-bench store: KVComp block-encode (store) kernels ====//
//
//   kvc-bench store gen [--config D,KB,VB,ET,kblk|kch]... [--fixed-width D,KB]...
//                       [--threads N] [--prefix P] [-o OUT.mlir]
//   kvc-bench store check IN [--seed N] [--quick]
//   kvc-bench store bench IN [--jobs 8,64,256,2048] [--reps 50] [--warmup 5] [--json F]
//
// gen writes the store kernels (lib/Conversion/KVCToGPU/StoreKernelGen.cpp) of the given
// specialisations as one gpu.module (--fixed-width D,KB adds the fixed-width form's pair,
// FixedWidthStoreKernelGen.cpp; only those when no --config is given); `kvc-opt OUT.mlir --kvc-gpu-pipeline` lowers them to
// PTX (kvc-bench extract). check runs every kernel pair in IN (PTX or the pipeline's .mlir):
// codec heads are built on the CPU with libkvc_runtime's codec (prefill, then token-by-token
// appends, which cut and encode blocks with the prefill codebook), then every encoded block
// of every head is encoded again on the GPU from the same tokens and the same codebook, all
// blocks of a stream in one launch; words, vector bit offsets, word counts, mins and steps
// must be bit-identical. bench times one launch of the key and of the value kernel (CUDA
// events, median) for a number of blocks per launch.
//
//===----------------------------------------------------------------------===//
#include "BenchCommon.h"
#include "kvc/Conversion/KVCToGPU/StoreKernelGen.h"
#include "kvc/Runtime/CUDA.h"
#include "kvc/Runtime/CUDAEncoded.h"
#include "kvc/Runtime/Codec.h"

#include "../../lib/Runtime/Codec/Half.h" // the codec's own fp16 rounding (header only)

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

int kvcBenchStore(int argc, char **argv);

namespace {
using namespace kvcbench;

// The `assembly = "..."` string of a gpu.binary (same reader as kvc-bench.cpp's).

uint32_t fbits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bitsf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t toBf16(float f) { // round to nearest even (finite inputs)
  uint32_t x = fbits(f);
  return uint16_t((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

// One memref<?xT> kernel argument: MLIR's default descriptor (5 parameters).
struct Desc {
  kvc_cuda_ptr alloc = 0, aligned = 0;
  int64_t offset = 0, size = 0, stride = 1;
  void push(std::vector<void *> &p) {
    p.push_back(&alloc);
    p.push_back(&aligned);
    p.push_back(&offset);
    p.push_back(&size);
    p.push_back(&stride);
  }
};

struct DevBuf {
  kvc_cuda_ptr p = 0;
  size_t bytes = 0;
  DevBuf() = default;
  explicit DevBuf(size_t n) : bytes(std::max<size_t>(n, 4)) { CK(kvc_cuda_malloc(&p, bytes)); }
  DevBuf(const DevBuf &) = delete;
  DevBuf &operator=(const DevBuf &) = delete;
  ~DevBuf() {
    if (p)
      kvc_cuda_free(p);
  }
  template <class T> void up(const std::vector<T> &v) {
    if (!v.empty())
      CK(kvc_cuda_memcpy_htod(p, v.data(), v.size() * sizeof(T)));
  }
  template <class T> std::vector<T> down(size_t n) const {
    std::vector<T> v(n);
    if (n)
      CK(kvc_cuda_memcpy_dtoh(v.data(), p, n * sizeof(T)));
    return v;
  }
  Desc desc(size_t elems) const {
    Desc d;
    d.alloc = d.aligned = p;
    d.size = int64_t(elems);
    return d;
  }
};

// A kernel pair of one specialisation, parsed from its name.
struct Variant {
  std::string base;
  mlir::kvc::StoreKernelConfig cfg;
  kvc_cuda_function k = nullptr, v = nullptr;
  int kThreads = 0, vThreads = 0;
};

bool parseBase(const std::string &base, mlir::kvc::StoreKernelConfig &c) {
  // <prefix>_d<D>_kb<KB>_vb<VB>_<et>_<kblk|kch>
  size_t p = base.rfind("_d");
  if (p == std::string::npos)
    return false;
  int D, KB, VB;
  char et[8], gr[8];
  if (sscanf(base.c_str() + p, "_d%d_kb%d_vb%d_%7[a-z0-9]_%7[a-z]", &D, &KB, &VB, et, gr) != 5)
    return false;
  c.headDim = D;
  c.keyBlock = KB;
  c.valueBlock = VB;
  c.elemType = et;
  c.keyChannelGroups = std::string(gr) == "kch";
  return true;
}

struct Loaded {
  std::vector<Variant> variants;
  kvc_cuda_module mod = nullptr;
};

Loaded load(const std::string &path) {
  std::string ptx = extractPTX(readFile(path));
  CK(kvc_cuda_init(0));
  Loaded L;
  CK(kvc_cuda_module_load(ptx.c_str(), &L.mod));
  std::map<std::string, Variant> byBase;
  for (size_t p = ptx.find(".entry "); p != std::string::npos; p = ptx.find(".entry ", p + 1)) {
    size_t b = p + 7, e = ptx.find('(', b);
    std::string name = ptx.substr(b, e - b);
    size_t nt = ptx.find(".maxntid ", e);
    int threads = nt == std::string::npos ? 0 : atoi(ptx.c_str() + nt + 9);
    bool isK = name.size() > 7 && name.compare(name.size() - 7, 7, "_kstore") == 0;
    bool isV = name.size() > 7 && name.compare(name.size() - 7, 7, "_vstore") == 0;
    if (!isK && !isV)
      continue;
    std::string base = name.substr(0, name.size() - 7);
    Variant &V = byBase[base];
    V.base = base;
    if (!parseBase(base, V.cfg))
      die("cannot parse the specialisation of kernel " + name);
    kvc_cuda_function f;
    CK(kvc_cuda_module_get_function(L.mod, name.c_str(), &f));
    (isK ? V.k : V.v) = f;
    (isK ? V.kThreads : V.vThreads) = threads;
  }
  for (auto &kv : byBase) {
    if (!kv.second.k || !kv.second.v || kv.second.kThreads <= 0 || kv.second.vThreads <= 0)
      die("incomplete kernel pair " + kv.first);
    L.variants.push_back(kv.second);
  }
  if (L.variants.empty())
    die("no *_kstore/*_vstore kernels in " + path);
  return L;
}

// The encode table of one stream (the runtime's, CUDAEncoded.h).
std::vector<int32_t> encodeTable(const kvc_codec_huffman_tables &t) {
  std::vector<int32_t> tab(2 * (size_t(t.max_symbol) + 1));
  kvc_encoded_encode_table(&t, tab.data(), nullptr);
  return tab;
}

// Kernel launch over `jobs` (4 ints each) for one stream.
struct StreamBufs {
  std::vector<int32_t> jobs, enc;
  size_t words = 0, blocks = 0, vectors = 0, params = 0;
  int32_t maxsym = 0;
  float eps = 0;
};

void launchStore(kvc_cuda_function f, int threads, const DevBuf &src, size_t srcElems,
                 const DevBuf &jobs, size_t njobs, const DevBuf &enc, size_t encN,
                 const DevBuf &words, size_t cap, const DevBuf &top, const DevBuf &bo,
                 size_t blocks, const DevBuf &vo, size_t vecs, const DevBuf &mins,
                 const DevBuf &steps, size_t params, const DevBuf &res, float eps,
                 int32_t maxsym, kvc_cuda_stream s = nullptr) {
  Desc d[10] = {src.desc(srcElems),  jobs.desc(4 * njobs),  enc.desc(encN),
                words.desc(cap),     top.desc(1),           bo.desc(blocks),
                vo.desc(vecs),       mins.desc(params),     steps.desc(params),
                res.desc(4 * njobs)};
  std::vector<void *> p;
  for (Desc &x : d)
    x.push(p);
  int32_t capI = int32_t(std::min<size_t>(cap, 0x7FFFFFFF));
  p.push_back(&eps);
  p.push_back(&maxsym);
  p.push_back(&capI);
  CK(kvc_cuda_launch(f, unsigned(njobs), 1, 1, unsigned(threads), 1, 1, 0, s, p.data()));
}

// ------------------------------------------------------------------------------------------
// Data

enum class Kind { Gauss, Student, ConstPrefill, SignedZeros, Ties, Wide, ConstBlocks };
const char *kindName(Kind k) {
  switch (k) {
  case Kind::Gauss: return "gauss+outlier-channels";
  case Kind::Student: return "student-t2";
  case Kind::ConstPrefill: return "const-prefill(escapes)";
  case Kind::SignedZeros: return "relu-signed-zeros";
  case Kind::Ties: return "grid-ties";
  case Kind::Wide: return "wide-range(subnormal..65504)";
  case Kind::ConstBlocks: return "const-blocks";
  }
  return "?";
}

// K or V tokens [T x D] as float32 (before the element type's rounding).
std::vector<float> makeData(Kind kind, int64_t T, int64_t D, int64_t prefill, int64_t block,
                            bool isKey, std::mt19937 &rng) {
  std::vector<float> x(size_t(T * D));
  std::normal_distribution<float> n01(0.f, 1.f);
  std::uniform_real_distribution<float> u01(0.f, 1.f);
  std::vector<float> off(D), scl(D);
  for (int64_t c = 0; c < D; ++c) {
    off[c] = isKey ? 2.f * n01(rng) : 0.f;
    scl[c] = isKey ? (c % 17 == 3 ? 6.f : 0.5f + u01(rng)) : 1.f;
  }
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < D; ++c) {
      float &o = x[size_t(t * D + c)];
      switch (kind) {
      case Kind::Gauss:
        o = off[c] + scl[c] * n01(rng);
        break;
      case Kind::Student: {
        float z = n01(rng), a = n01(rng), b = n01(rng);
        o = z / std::sqrt(0.5f * (a * a + b * b) + 1e-6f);
        o = std::max(-60000.f, std::min(60000.f, o));
        break;
      }
      case Kind::ConstPrefill:
        o = t < prefill ? 1.25f : off[c] + scl[c] * n01(rng);
        break;
      case Kind::SignedZeros: {
        float g = n01(rng);
        o = g > 0.3f ? g : (u01(rng) < 0.5f ? -0.0f : 0.0f);
        break;
      }
      case Kind::Ties:
        o = float(int(u01(rng) * 9.f)); // integers 0..8: exact half-step ties for eps 0.25/0.5
        if ((t / block) % 3 == 1)
          o *= 0.5f;
        break;
      case Kind::Wide: {
        int e2 = int(u01(rng) * 40.f) - 26; // 2^-26 .. 2^14
        o = (u01(rng) < 0.5f ? -1.f : 1.f) * std::ldexp(1.f + u01(rng), e2);
        if (u01(rng) < 0.01f)
          o = (u01(rng) < 0.5f ? -1.f : 1.f) * (65504.f + 15.f * u01(rng)); // rounds to 65504
        break;
      }
      case Kind::ConstBlocks:
        o = (t / block) % 2 == 0 ? -3.5f : n01(rng);
        break;
      }
    }
  return x;
}

struct CheckStats {
  int cases = 0, failed = 0;
  uint64_t blocks = 0, words = 0, escapesK = 0, escapesV = 0;
};

// One case: H heads of one variant, one data kind, one (eps_k, eps_v).
bool runCase(const Variant &V, Kind kind, float epsK, float epsV, int H, int64_t blocksV,
             unsigned seed, CheckStats &st, bool verbose) {
  size_t nblocksS[2] = {0, 0};
  const auto &c = V.cfg;
  const int64_t D = c.headDim, KB = c.keyBlock, VB = c.valueBlock;
  kvc_codec_params prm;
  kvc_codec_default_params(&prm, uint32_t(D));
  prm.key_error = epsK;
  prm.value_error = epsV;
  prm.key_block_tokens = uint32_t(KB);
  prm.value_block_tokens = uint32_t(VB);
  prm.key_recent_tokens = 16;
  prm.value_recent_tokens = 16;
  prm.key_grouping = c.keyChannelGroups ? KVC_CODEC_KEY_CHANNEL : KVC_CODEC_KEY_BLOCK;
  const int64_t T = blocksV * VB + 16 + 3 + ((KB - 1) * 16 % 7); // a few pending tokens left
  const int64_t prefill = std::max<int64_t>(KB, VB) + 16 + VB / 2;
  std::mt19937 rng(seed);
  const std::string &ET = c.elemType;
  const size_t esize = ET == "f32" ? 4 : 2;

  // Source tokens of all heads ([H*T x D], element type) and the CPU heads.
  std::vector<uint8_t> srcK(size_t(H * T * D) * esize), srcV(srcK.size());
  struct Head {
    kvc_codec_head *h = nullptr;
    kvc_codec_stream_view view[2];
    kvc_codec_huffman_tables tab[2];
  };
  std::vector<Head> heads(H);
  for (int h = 0; h < H; ++h) {
    std::vector<float> k = makeData(kind, T, D, prefill, KB, true, rng);
    std::vector<float> v = makeData(kind, T, D, prefill, VB, false, rng);
    for (int which = 0; which < 2; ++which) {
      std::vector<float> &x = which ? v : k;
      std::vector<uint8_t> &dst = which ? srcV : srcK;
      for (size_t i = 0; i < x.size(); ++i) {
        uint8_t *o = &dst[(size_t(h) * T * D + i) * esize];
        if (ET == "f16") {
          uint16_t b = kvc::codec::floatToHalf(x[i]);
          std::memcpy(o, &b, 2);
          x[i] = kvc::codec::halfToFloat(b);
        } else if (ET == "bf16") {
          uint16_t b = toBf16(x[i]);
          if (std::fabs(bitsf(uint32_t(b) << 16)) >= 65520.f) // rounded up past fp16's range
            b = toBf16(std::copysign(65280.f, x[i]));
          std::memcpy(o, &b, 2);
          x[i] = bitsf(uint32_t(b) << 16);
        } else {
          std::memcpy(o, &x[i], 4);
        }
      }
    }
    CC(kvc_codec_head_create(&prm, &heads[h].h));
    CC(kvc_codec_head_append(heads[h].h, k.data(), v.data(), uint64_t(prefill)));
    for (int64_t t = prefill; t < T; ++t) // decode-time appends, one token each
      CC(kvc_codec_head_append(heads[h].h, &k[size_t(t * D)], &v[size_t(t * D)], 1));
    for (int s = 0; s < 2; ++s)
      CC(kvc_codec_head_view(heads[h].h, s, &heads[h].view[s], &heads[h].tab[s]));
  }

  bool ok = true;
  char tag[160];
  snprintf(tag, sizeof tag, "%s %s eps=(%g,%g)", V.base.c_str(), kindName(kind), epsK, epsV);
  DevBuf dK(srcK.size()), dV(srcV.size());
  dK.up(srcK);
  dV.up(srcV);
  for (int s = 0; s < 2; ++s) {
    const bool values = s == 1;
    // Jobs: every encoded block of every head; global block index = running count.
    std::vector<int32_t> jobs, enc;
    std::vector<size_t> blk0(H), tab0(H);
    size_t nblocks = 0, cpuWords = 0;
    const int64_t NT = values ? VB : KB, nvec = values ? D : KB;
    const int64_t P = values ? VB : (c.keyChannelGroups ? D : 1);
    for (int h = 0; h < H; ++h) {
      const kvc_codec_stream_view &w = heads[h].view[s];
      if (!w.has_codebook)
        die(std::string(tag) + ": head has no codebook");
      blk0[h] = nblocks;
      tab0[h] = enc.size();
      std::vector<int32_t> t = encodeTable(heads[h].tab[s]);
      enc.insert(enc.end(), t.begin(), t.end());
      for (uint32_t b = 0; b < w.num_blocks; ++b) {
        jobs.push_back(int32_t((int64_t(h) * T + int64_t(b) * NT) * D));
        jobs.push_back(int32_t(nblocks + b));
        jobs.push_back(int32_t(tab0[h]));
        jobs.push_back(0);
      }
      nblocks += w.num_blocks;
      cpuWords += w.num_words;
    }
    const size_t njobs = nblocks;
    const size_t cap = cpuWords + 4 + 64;
    DevBuf jd(jobs.size() * 4), ed(enc.size() * 4), wd(cap * 4), top(4), bo(nblocks * 4),
        vo(nblocks * nvec * 4), mn(nblocks * P * 4), sp(nblocks * P * 4), res(njobs * 16);
    jd.up(jobs);
    ed.up(enc);
    // Poison everything the kernel must write (words: it must zero its own).
    CK(kvc_cuda_memset_d8_async(wd.p, 0xA5, wd.bytes, nullptr));
    CK(kvc_cuda_memset_d8_async(bo.p, 0xFF, bo.bytes, nullptr));
    CK(kvc_cuda_memset_d8_async(vo.p, 0xFF, vo.bytes, nullptr));
    CK(kvc_cuda_memset_d8_async(mn.p, 0xFF, mn.bytes, nullptr));
    CK(kvc_cuda_memset_d8_async(sp.p, 0xFF, sp.bytes, nullptr));
    CK(kvc_cuda_memset_d8_async(res.p, 0xEE, res.bytes, nullptr));
    CK(kvc_cuda_memset_d8_async(top.p, 0, 4, nullptr));
    const float eps = values ? epsV : epsK;
    const int32_t maxsym = int32_t(heads[0].tab[s].max_symbol);
    launchStore(values ? V.v : V.k, values ? V.vThreads : V.kThreads, values ? dV : dK,
                size_t(H * T * D), jd, njobs, ed, enc.size(), wd, cap, top, bo, nblocks, vo,
                nblocks * nvec, mn, sp, nblocks * P, res, eps, maxsym);
    CK(kvc_cuda_synchronize());
    std::vector<uint32_t> gw = wd.down<uint32_t>(cap), gbo = bo.down<uint32_t>(nblocks),
                          gvo = vo.down<uint32_t>(nblocks * nvec);
    std::vector<uint32_t> gmn = mn.down<uint32_t>(nblocks * P), gsp = sp.down<uint32_t>(nblocks * P);
    std::vector<int32_t> gres = res.down<int32_t>(4 * njobs), gtop = top.down<int32_t>(1);
    size_t sumWords = 0;
    int reported = 0;
    auto fail = [&](const std::string &what) {
      ok = false;
      if (reported++ < 8)
        printf("  MISMATCH %s [%s]: %s\n", tag, values ? "V" : "K", what.c_str());
    };
    for (int h = 0; h < H; ++h) {
      const kvc_codec_stream_view &w = heads[h].view[s];
      for (uint32_t b = 0; b < w.num_blocks; ++b) {
        size_t j = blk0[h] + b;
        const int32_t *r = &gres[4 * j];
        uint32_t cw0 = w.block_word_offsets[b], cw1 = w.block_word_offsets[b + 1];
        std::string where = "head " + std::to_string(h) + " block " + std::to_string(b);
        if (r[3] != 0) {
          fail(where + ": status " + std::to_string(r[3]));
          continue;
        }
        sumWords += size_t(r[1]);
        if (uint32_t(r[1]) != cw1 - cw0) {
          fail(where + ": " + std::to_string(r[1]) + " words, CPU " + std::to_string(cw1 - cw0));
          continue;
        }
        if (gbo[j] != uint32_t(r[0])) {
          fail(where + ": bo " + std::to_string(gbo[j]) + " != res " + std::to_string(r[0]));
          continue;
        }
        for (uint32_t i = 0; i < cw1 - cw0; ++i)
          if (gw[gbo[j] + i] != w.words[cw0 + i]) {
            char m[96];
            snprintf(m, sizeof m, ": word %u: GPU %08x CPU %08x", i, gw[gbo[j] + i],
                     w.words[cw0 + i]);
            fail(where + m);
            break;
          }
        for (int64_t q = 0; q < nvec; ++q)
          if (gvo[j * nvec + q] != w.vector_bit_offsets[size_t(b) * nvec + q]) {
            fail(where + ": vector " + std::to_string(q) + " bit offset " +
                 std::to_string(gvo[j * nvec + q]) + " CPU " +
                 std::to_string(w.vector_bit_offsets[size_t(b) * nvec + q]));
            break;
          }
        for (int64_t g = 0; g < P; ++g) {
          uint32_t cm = fbits(w.mins[size_t(b) * P + g]), cs = fbits(w.steps[size_t(b) * P + g]);
          if (gmn[j * P + g] != cm || gsp[j * P + g] != cs) {
            char m[160];
            snprintf(m, sizeof m, ": group %lld (min, step) GPU (%08x, %08x) CPU (%08x, %08x)",
                     (long long)g, gmn[j * P + g], gsp[j * P + g], cm, cs);
            fail(where + m);
            break;
          }
        }
      }
      st.words += w.num_words;
    }
    if (size_t(gtop[0]) != sumWords)
      fail("top " + std::to_string(gtop[0]) + " != sum of block words " + std::to_string(sumWords));
    st.blocks += nblocks;
    nblocksS[s] = nblocks;
  }
  kvc_codec_stats cs;
  for (int h = 0; h < H; ++h) {
    CC(kvc_codec_head_stats(heads[h].h, &cs));
    st.escapesK += cs.key_escape_count;
    st.escapesV += cs.value_escape_count;
    kvc_codec_head_free(heads[h].h);
  }
  ++st.cases;
  if (!ok)
    ++st.failed;
  if (verbose)
    printf("  %s %s: %d heads, %zu K + %zu V blocks\n", ok ? "exact" : "DIFF ", tag, H,
           nblocksS[0], nblocksS[1]);
  return ok;
}

// Status paths: a non-finite / overflowing input (f32 and bf16 sources can carry one) and a
// too-small word buffer. Uses the variant's key kernel.
bool runStatusCase(const Variant &V) {
  const auto &c = V.cfg;
  const int64_t D = c.headDim, KB = c.keyBlock;
  const std::string &ET = c.elemType;
  const size_t esize = ET == "f32" ? 4 : 2;
  const int njobs = 3;
  std::vector<uint8_t> src(size_t(njobs * KB * D) * esize);
  std::mt19937 rng(7);
  std::normal_distribution<float> n01;
  for (size_t i = 0; i < size_t(njobs * KB * D); ++i) {
    float x = n01(rng);
    if (i == size_t(KB * D + 5)) // job 1: one bad element
      x = ET == "f16" ? INFINITY : 70000.f;
    uint8_t *o = &src[i * esize];
    if (ET == "f16") {
      uint16_t b = kvc::codec::floatToHalf(x);
      std::memcpy(o, &b, 2);
    } else if (ET == "bf16") {
      uint16_t b = toBf16(x);
      std::memcpy(o, &b, 2);
    } else {
      std::memcpy(o, &x, 4);
    }
  }
  // A codebook with only symbol 0 and the escape: every other symbol is escaped.
  kvc_codec_huffman_tables t{};
  uint8_t lens[2] = {1, 1};
  uint32_t codes[2] = {0, 1};
  t.num_coded_symbols = 1;
  t.escape_symbol = 1;
  t.max_symbol = 20;
  t.raw_bits = 5;
  t.code_lengths = lens;
  t.codes = codes;
  std::vector<int32_t> enc = encodeTable(t);
  std::vector<int32_t> jobs;
  for (int j = 0; j < njobs; ++j) {
    jobs.push_back(int32_t(j * KB * D));
    jobs.push_back(j);
    jobs.push_back(0);
    jobs.push_back(0);
  }
  const int64_t P = c.keyChannelGroups ? D : 1;
  DevBuf sd(src.size()), jd(jobs.size() * 4), ed(enc.size() * 4), top(4), bo(njobs * 4),
      vo(njobs * KB * 4), mn(njobs * P * 4), sp(njobs * P * 4), res(njobs * 16);
  sd.up(src);
  jd.up(jobs);
  ed.up(enc);
  bool ok = true;
  for (int capCase = 0; capCase < 2; ++capCase) {
    // Words per block here: KB*D symbols of 1 or 6 bits; capacity either ample or too small
    // for any block.
    size_t cap = capCase == 0 ? size_t(njobs * KB * D) : 8;
    DevBuf wd(cap * 4);
    CK(kvc_cuda_memset_d8_async(top.p, 0, 4, nullptr));
    CK(kvc_cuda_memset_d8_async(bo.p, 0xFF, bo.bytes, nullptr));
    launchStore(V.k, V.kThreads, sd, size_t(njobs * KB * D), jd, njobs, ed, enc.size(), wd, cap,
                top, bo, njobs, vo, njobs * KB, mn, sp, njobs * P, res, 0.05f, 20);
    CK(kvc_cuda_synchronize());
    std::vector<int32_t> r = res.down<int32_t>(4 * njobs);
    std::vector<uint32_t> b = bo.down<uint32_t>(njobs);
    for (int j = 0; j < njobs; ++j) {
      int want = j == 1 ? 1 : (capCase == 1 ? 2 : 0);
      bool good = r[4 * j + 3] == want && (want == 0) == (r[4 * j] >= 0) &&
                  (want == 0) == (b[j] != 0xFFFFFFFFu);
      if (!good) {
        printf("  STATUS %s cap=%zu job %d: status %d offset %d bo %08x, expected status %d\n",
               V.base.c_str(), cap, j, r[4 * j + 3], r[4 * j], b[j], want);
        ok = false;
      }
    }
  }
  printf("  status paths (%s): non-finite/overflow input -> 1, out of capacity -> 2: %s\n",
         V.base.c_str(), ok ? "ok" : "FAILED");
  return ok;
}

int cmdCheck(const std::string &path, unsigned seed, bool quick) {
  Loaded L = load(path);
  char dev[128] = "";
  CK(kvc_cuda_device_info(dev, sizeof dev, nullptr, nullptr, nullptr, nullptr));
  printf("device: %s\n", dev);
  CheckStats st;
  int statusFailed = 0;
  struct Eps {
    float k, v;
  };
  const std::vector<Eps> epsList = quick ? std::vector<Eps>{{0.05f, 0.1f}, {1e-4f, 1e-4f}}
                                         : std::vector<Eps>{{0.05f, 0.1f}, {0.005f, 0.01f},
                                                            {1e-4f, 1e-4f}, {0.25f, 0.5f},
                                                            {1.0f, 0.3f}};
  const std::vector<Kind> kinds = {Kind::Gauss,       Kind::Student, Kind::ConstPrefill,
                                   Kind::SignedZeros, Kind::Ties,    Kind::Wide,
                                   Kind::ConstBlocks};
  for (const Variant &V : L.variants) {
    printf("%s: key kernel %d threads, value kernel %d threads\n", V.base.c_str(), V.kThreads,
           V.vThreads);
    int before = st.failed, casesBefore = st.cases;
    for (const Eps &e : epsList)
      for (Kind k : kinds) {
        if (quick && !(k == Kind::Gauss || k == Kind::ConstPrefill || k == Kind::SignedZeros))
          continue;
        runCase(V, k, e.k, e.v, quick ? 2 : 4, quick ? 2 : 6, seed++, st, !quick);
      }
    printf("  %d/%d cases bit-exact\n", (st.cases - casesBefore) - (st.failed - before),
           st.cases - casesBefore);
    if (!runStatusCase(V))
      ++statusFailed;
  }
  printf("total: %d/%d cases bit-exact (%llu blocks, %llu words; escapes K %llu, V %llu), "
         "status paths %s\n",
         st.cases - st.failed, st.cases, (unsigned long long)st.blocks,
         (unsigned long long)st.words, (unsigned long long)st.escapesK,
         (unsigned long long)st.escapesV, statusFailed ? "FAILED" : "ok");
  return st.failed || statusFailed ? 1 : 0;
}

int cmdBench(const std::string &path, std::vector<int64_t> jobCounts, int reps, int warmup,
             const std::string &json) {
  Loaded L = load(path);
  char dev[128] = "";
  CK(kvc_cuda_device_info(dev, sizeof dev, nullptr, nullptr, nullptr, nullptr));
  std::ostringstream js;
  js << "{\n  \"device\": \"" << dev << "\",\n  \"timing\": \"CUDA events around one launch, "
     << "median of " << reps << " after " << warmup << " warm-up launches; inputs resident "
     << "(no L2 flush)\",\n  \"results\": [\n";
  bool first = true;
  printf("device: %s\n%-40s %6s %6s %8s %10s %10s %10s\n", dev, "variant", "stream", "blocks",
         "threads", "us/launch", "us/block", "GB/s in");
  for (const Variant &V : L.variants) {
    const auto &c = V.cfg;
    const int64_t D = c.headDim;
    // One head's codec (eps 0.05 / 0.1) supplies realistic codebooks.
    kvc_codec_params prm;
    kvc_codec_default_params(&prm, uint32_t(D));
    prm.key_block_tokens = uint32_t(c.keyBlock);
    prm.value_block_tokens = uint32_t(c.valueBlock);
    prm.key_grouping = c.keyChannelGroups ? KVC_CODEC_KEY_CHANNEL : KVC_CODEC_KEY_BLOCK;
    const int64_t T0 = 4 * std::max(c.keyBlock, c.valueBlock) + 256 + 128;
    std::mt19937 rng(3);
    std::vector<float> k = makeData(Kind::Gauss, T0, D, 0, c.keyBlock, true, rng);
    std::vector<float> v = makeData(Kind::Gauss, T0, D, 0, c.valueBlock, false, rng);
    kvc_codec_head *head;
    CC(kvc_codec_head_create(&prm, &head));
    CC(kvc_codec_head_append(head, k.data(), v.data(), uint64_t(T0)));
    for (int s = 0; s < 2; ++s) {
      const bool values = s == 1;
      kvc_codec_stream_view w;
      kvc_codec_huffman_tables t;
      CC(kvc_codec_head_view(head, s, &w, &t));
      std::vector<int32_t> enc = encodeTable(t);
      const int64_t NT = values ? c.valueBlock : c.keyBlock, nvec = values ? D : c.keyBlock;
      const int64_t P = values ? c.valueBlock : (c.keyChannelGroups ? D : 1);
      const size_t esize = c.elemType == "f32" ? 4 : 2;
      for (int64_t nj : jobCounts) {
        // nj distinct blocks (tokens repeat the head's data).
        std::vector<uint8_t> src(size_t(nj * NT * D) * esize);
        const std::vector<float> &x = values ? v : k;
        for (size_t i = 0; i < size_t(nj * NT * D); ++i) {
          float f = x[i % x.size()];
          uint8_t *o = &src[i * esize];
          if (c.elemType == "f16") {
            uint16_t b = kvc::codec::floatToHalf(f);
            std::memcpy(o, &b, 2);
          } else if (c.elemType == "bf16") {
            uint16_t b = toBf16(f);
            std::memcpy(o, &b, 2);
          } else {
            std::memcpy(o, &f, 4);
          }
        }
        std::vector<int32_t> jobs;
        for (int64_t j = 0; j < nj; ++j) {
          jobs.push_back(int32_t(j * NT * D));
          jobs.push_back(int32_t(j));
          jobs.push_back(0);
          jobs.push_back(0);
        }
        size_t cap = size_t(nj) * size_t(NT * D) * (t.max_code_length + t.raw_bits) / 32 + nj + 8;
        DevBuf sd(src.size()), jd(jobs.size() * 4), ed(enc.size() * 4), wd(cap * 4), top(4),
            bo(nj * 4), vo(nj * nvec * 4), mn(nj * P * 4), sp(nj * P * 4), res(nj * 16);
        sd.up(src);
        jd.up(jobs);
        ed.up(enc);
        std::vector<float> times;
        kvc_cuda_event e0, e1;
        CK(kvc_cuda_event_create(&e0));
        CK(kvc_cuda_event_create(&e1));
        for (int r = 0; r < warmup + reps; ++r) {
          CK(kvc_cuda_memset_d8_async(top.p, 0, 4, nullptr));
          CK(kvc_cuda_event_record(e0, nullptr));
          launchStore(values ? V.v : V.k, values ? V.vThreads : V.kThreads, sd,
                      size_t(nj * NT * D), jd, size_t(nj), ed, enc.size(), wd, cap, top, bo,
                      size_t(nj), vo, size_t(nj * nvec), mn, sp, size_t(nj * P), res,
                      values ? prm.value_error : prm.key_error, int32_t(t.max_symbol));
          CK(kvc_cuda_event_record(e1, nullptr));
          CK(kvc_cuda_stream_synchronize(nullptr));
          float ms;
          CK(kvc_cuda_event_elapsed_ms(&ms, e0, e1));
          if (r >= warmup)
            times.push_back(ms);
        }
        kvc_cuda_event_destroy(e0);
        kvc_cuda_event_destroy(e1);
        std::vector<int32_t> rr = res.down<int32_t>(4 * size_t(nj));
        for (int64_t j = 0; j < nj; ++j)
          if (rr[4 * j + 3] != 0)
            die("bench: job status " + std::to_string(rr[4 * j + 3]));
        std::sort(times.begin(), times.end());
        double us = times[times.size() / 2] * 1e3;
        double gbs = double(src.size()) / (us * 1e-6) / 1e9;
        int threads = values ? V.vThreads : V.kThreads;
        printf("%-40s %6s %6lld %8d %10.2f %10.3f %10.1f\n", V.base.c_str(), values ? "V" : "K",
               (long long)nj, threads, us, us / double(nj), gbs);
        js << (first ? "" : ",\n") << "    {\"variant\": \"" << V.base << "\", \"stream\": \""
           << (values ? "V" : "K") << "\", \"blocks\": " << nj << ", \"threads\": " << threads
           << ", \"us_per_launch\": " << us << ", \"us_per_block\": " << us / double(nj)
           << ", \"input_gbps\": " << gbs << "}";
        first = false;
      }
    }
    kvc_codec_head_free(head);
  }
  finishJson(js, json);
  return 0;
}

int cmdGen(const std::vector<std::string> &configs, const std::vector<std::string> &fwConfigs,
           int64_t threads, const std::string &prefix, const std::string &out) {
  std::string body;
  std::vector<std::string> list = configs;
  if (list.empty() && fwConfigs.empty())
    list = {"128,64,128,f16,kblk"};
  for (const std::string &s : fwConfigs) {
    const size_t comma = s.find(',');
    char *end = nullptr;
    const long long D = comma == std::string::npos ? 0 : strtoll(s.c_str(), &end, 10);
    const long long KB = D && end == s.c_str() + comma ? strtoll(s.c_str() + comma + 1, &end, 10)
                                                      : 0;
    if (!KB || *end)
      die("--fixed-width wants D,KB, got '" + s + "'");
    std::string err;
    std::string t = mlir::kvc::generateFixedWidthStoreKernelFuncs(
        D, KB, prefix.empty() ? "kvc_store" : prefix, err);
    if (t.empty())
      die("--fixed-width " + s + ": " + err);
    body += t;
  }
  for (const std::string &s : list) {
    mlir::kvc::StoreKernelConfig c;
    std::vector<std::string> f;
    std::stringstream ss(s);
    std::string x;
    while (std::getline(ss, x, ','))
      f.push_back(x);
    if (f.size() != 5 || (f[4] != "kblk" && f[4] != "kch"))
      die("--config wants D,KB,VB,ET,kblk|kch, got '" + s + "'");
    c.headDim = std::stoll(f[0]);
    c.keyBlock = std::stoll(f[1]);
    c.valueBlock = std::stoll(f[2]);
    c.elemType = f[3];
    c.keyChannelGroups = f[4] == "kch";
    if (threads)
      c.targetThreads = threads;
    if (!prefix.empty())
      c.prefix = prefix;
    std::string err;
    std::string t = mlir::kvc::generateStoreKernelFuncs(c, err);
    if (t.empty())
      die("config " + s + ": " + err);
    body += t;
  }
  std::string text = "// Generated by kvc-bench store gen (lib/Conversion/KVCToGPU/*StoreKernelGen.cpp).\n"
                     "module attributes {gpu.container_module} {\n"
                     "gpu.module @kvc_gpu {\n" + body + "}\n}\n";
  if (out.empty() || out == "-") {
    fwrite(text.data(), 1, text.size(), stdout);
  } else {
    std::ofstream f(out);
    if (!f)
      die("cannot write " + out);
    f << text;
  }
  return 0;
}

[[noreturn]] void usage() {
  fprintf(usageOut(),
          "usage: kvc-bench store gen [--config D,KB,VB,f16|bf16|f32,kblk|kch]... "
          "[--fixed-width D,KB]... [--threads N] [--prefix P] [-o OUT.mlir]\n"
          "       kvc-bench store check IN [--seed N] [--quick]\n"
          "       kvc-bench store bench IN [--jobs 8,64,256,2048] [--reps 50] [--warmup 5]"
          " [--json F]\n");
  usageExit();
}
} // namespace

int kvcBenchStore(int argc, char **argv) {
  kvcbench::benchCommand() = "kvc-bench store";
  if (argc < 3 || kvcbench::helpRequested())
    usage();
  std::string cmd = argv[2], in, out, json, prefix;
  std::vector<std::string> configs, fwConfigs;
  std::vector<int64_t> jobs = {8, 64, 256, 2048};
  int64_t threads = 0;
  int reps = 50, warmup = 5;
  unsigned seed = 1;
  bool quick = false;
  Options opts(usage);
  opts.str("-o", out).strs("--config", configs).strs("--fixed-width", fwConfigs).str("--prefix", prefix).i64("--threads", threads)
      .u32("--seed", seed).flag("--quick", quick).list("--jobs", jobs).i32("--reps", reps)
      .i32("--warmup", warmup).str("--json", json);
  std::vector<std::string> positional = opts.parse(argc, argv, 3);
  if (positional.size() > 1)
    usage();
  if (!positional.empty())
    in = positional[0];
  if (cmd == "gen")
    return cmdGen(configs, fwConfigs, threads, prefix, out);
  if (cmd == "check" && !in.empty())
    return cmdCheck(in, seed, quick);
  if (cmd == "bench" && !in.empty() && reps > 0)
    return cmdBench(in, jobs, reps, warmup, json);
  usage();
}
