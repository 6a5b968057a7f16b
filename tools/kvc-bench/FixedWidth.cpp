//===- FixedWidth.cpp - kvc-bench fixed-width: fixed-width (entropy = none) cache kernels -===//
//
//   kvc-bench fixed-width selftest           (no GPU: kvc_fw_pack / kvc_fw_unpack_row vs the codec)
//   kvc-bench fixed-width info IN
//   kvc-bench fixed-width check IN [--quick] [--seed N] [--tol X]
//   kvc-bench fixed-width append-check IN [--store STORE] [--quick] [--seed N] [--tol X]
//       (kvc_cuda_fw_append; with --store, kvc_cuda_fw_gpu_append and the store kernels in
//       STORE: PTX or pipeline .mlir of `kvc-bench store gen --fixed-width D,KB`)
//   kvc-bench fixed-width check-npy IN --case DIR [--case DIR ...] [--tol X] [--splits N]
//                                   [--store STORE]   (also: the cases' last tokens appended on
//                                   the GPU, against the host appender)
//   kvc-bench fixed-width decode IN [--json F] [--batches 1,8,32] [--contexts 4096,16384,65536]
//                                   [--hkv 8] [--reps 30] [--warmup 5] [--splits N]
//                                   [--flush dirty|clean] [--settle-ms 100]
//
// IN is the PTX (or the kvc-gpu-pipeline .mlir) of the fixed-width decode kernels
// (<tag>_d<D>_g<g>_q<Sq>_<bf16|f16>_kb<KB>_fw_split/_merge, include/kvc/Runtime/CUDAFixedWidth.h).
// The caches are built with the codec library (kvc_codec_default_params(D): K eps 0.05
// BlockQuant, V eps 0.1 TokenQuant, recent windows 128/256; key blocks of the kernel's KB) and
// packed with kvc_fw_pack. check compares against a float64 reference of attention over the
// *unpacked* cache (kvc_fw_unpack_row: the codes dequantized, the window in fp16). check-npy
// does the same on real-model caches (python -m kvc.bench.gemma_decode_cases: q/k/v/expected
// [/lengths] .npy per case folder, e.g. Gemma 3 270M through bench/gpu/gemma-fixed-width.mlir):
// the codec's heads built from the case's K/V, every matching variant (D, g, Sq) on the case's
// queries, judged against the same reference; the distance to expected.npy (kvc's CPU path on
// the uncompressed cache) is printed as information. The case folders are read and checked
// before the device is touched. decode times
// split+merge like `kvc-bench encoded decode` (BenchCommon.h's Timer and flushes) and writes
// the same JSON records, with "form": "fixed-width".
//
//===----------------------------------------------------------------------===//
#include "BenchCommon.h"
#include "CacheKernels.h"
#include "FixedWidthAppend.h"
#include "SyntheticHeads.h"
#include "kvc/Runtime/CUDA.h"
#include "kvc/Runtime/CUDAEncoded.h"
#include "kvc/Runtime/CUDAFixedWidth.h"
#include "kvc/Runtime/Codec.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

int kvcBenchFixedWidth(int argc, char **argv);

namespace {
using namespace kvcbench;

using Variant = FwVariant;
using Loaded = LoadedKernels<Variant>;

Loaded load(const std::string &path) {
  return loadKernels(path, fwVariants,
                     "fixed-width cache kernels (<tag>_d<D>_g<g>_q<Sq>_<bf16|f16>_kb<KB>_fw_split)");
}

const char *qtName(int qt) { return qt == 0 ? "bf16" : "f16"; }

// The codec parameters of a kernel's caches: the defaults (K eps 0.05, V eps 0.1, recent
// 128/256) with the kernel's key block.
kvc_codec_params kernelParams(const kvc_fw_kernel_config &cfg) {
  kvc_codec_params p;
  kvc_codec_default_params(&p, uint32_t(cfg.head_dim));
  p.key_block_tokens = uint32_t(cfg.key_block);
  return p;
}

void packOrDie(const std::vector<const kvc_codec_head *> &hp, int64_t B, int64_t Hkv,
               kvc_fw_host_form *F) {
  const char *err = nullptr;
  if (kvc_fw_pack(hp.data(), B, Hkv, F, &err))
    die(std::string("pack failed: ") + (err ? err : "?"));
}

// The unpacked rows of a host form, for referenceAttention.
auto unpackedRows(const kvc_fw_host_form &F) {
  return [&F](int64_t r, std::vector<float> &K, std::vector<float> &V) -> int64_t {
    const int64_t T = static_cast<const int32_t *>(F.data[KVC_FW_ROWS])[4 * r];
    K.resize(size_t(T * F.head_dim));
    V.resize(size_t(T * F.head_dim));
    const char *err = nullptr;
    if (kvc_fw_unpack_row(&F, r, K.data(), V.data(), &err))
      die(std::string("unpack failed: ") + (err ? err : "?"));
    return T;
  };
}

// Uploads the host form F (freed here), runs split + merge on the queries qraw ([B, Hkv*g, Sq,
// D] of the kernel's query type; outputs NaN-poisoned first) with `splits` (0: the plan), and
// returns the outputs.
std::vector<double> uploadRun(const Loaded &L, const Variant &V, kvc_fw_host_form &F,
                              const std::vector<uint16_t> &qraw, int splits, int *usedSplits) {
  const auto &cfg = V.cfg;
  kvc_cuda_fw_cache cache;
  const char *err = nullptr;
  if (int rc = kvc_cuda_fw_upload_form(&F, &cache, &err))
    die(std::string("upload failed: ") + (err ? err : kvc_cuda_last_error()) + " (" +
        std::to_string(rc) + ")");
  kvc_fw_host_free(&F);
  kvc_fw_plan plan;
  CK(kvc_cuda_fw_make_plan(&cfg, &cache, splits, L.sms * V.ctasPerSM, &plan));
  *usedSplits = plan.num_splits;
  const std::vector<uint8_t> out =
      runPoisoned(qraw, qraw.size() * 2, plan, [&](kvc_cuda_ptr dq, kvc_cuda_ptr dws,
                                                   kvc_cuda_ptr dout) {
        CK(kvc_cuda_fw_init_workspace(&cfg, &plan, dws, nullptr));
        CK(kvc_cuda_fw_launch(V.split, V.merge, &cfg, &cache, &plan, dq, dws, dout, nullptr));
      });
  kvc_cuda_fw_free(&cache);
  return outputValues(out, cfg.query_type);
}

// nq queries uniform in [-2, 2): their bits in the kernel's type (bf16 or f16) and their values.
void randomQueries(std::mt19937 &rng, int64_t nq, bool bf, std::vector<uint16_t> &raw,
                   std::vector<float> &val) {
  std::uniform_real_distribution<float> U(-2.f, 2.f);
  raw.resize(static_cast<size_t>(nq));
  val.resize(static_cast<size_t>(nq));
  for (size_t i = 0; i < raw.size(); ++i) {
    raw[i] = toHalfBits(U(rng), bf);
    val[i] = fromHalfBits(raw[i], bf);
  }
}

// Error bounds just above the fixed widths' limits (1/31.5, 1/15.5): the codec's symbols then
// reach 31 for keys and 15 for values, the top of the 5- and 4-bit fields.
constexpr float kKeyEpsAtLimit = 0.0318f, kValueEpsAtLimit = 0.0646f;

// ----------------------------------------------------------------------------- check
struct Case {
  int64_t batch, hkv, T;
  int splits;  // 0: the plan
  bool ragged; // row lengths 0, 1, T, then uniform in [0, T]
  bool atLimits = false; // error bounds whose symbols fill the 5/4-bit fields
};

double runCase(const Loaded &L, const Variant &V, const Case &C, std::mt19937 &rng,
               double *maxAbs, int *usedSplits, std::string *note) {
  const auto &cfg = V.cfg;
  const int64_t D = cfg.head_dim, g = cfg.group, Sq = cfg.query_seq;
  const int64_t B = C.batch, Hkv = C.hkv, rows = B * Hkv;
  std::vector<int64_t> lens(size_t(rows), C.T);
  if (C.ragged) {
    std::uniform_int_distribution<int64_t> UL(0, C.T);
    for (size_t i = 0; i < lens.size(); ++i)
      lens[i] = i == 0 ? 0 : i == 1 ? 1 : i == 2 ? C.T : UL(rng);
  }
  kvc_codec_params prm = kernelParams(cfg);
  if (C.atLimits) {
    prm.key_error = kKeyEpsAtLimit;
    prm.value_error = kValueEpsAtLimit;
  }
  auto heads = makeHeads(lens, D, rng(), 0, &prm);
  std::vector<const kvc_codec_head *> hp;
  for (auto &h : heads)
    hp.push_back(h->h);
  kvc_fw_host_form F;
  packOrDie(hp, B, Hkv, &F);
  char buf[160];
  snprintf(buf, sizeof buf, "code tokens %llu of %llu, max code tiles %lld, max window tiles %lld",
           (unsigned long long)F.code_tokens, (unsigned long long)F.tokens,
           (long long)F.max_code_tiles, (long long)F.max_window_tiles);
  *note = buf;
  const int qt = cfg.query_type;
  const bool bf = qt == 0;
  std::vector<float> qf;
  std::vector<uint16_t> qraw;
  randomQueries(rng, B * Hkv * g * Sq * D, bf, qraw, qf);
  // float64 reference over the unpacked cache: what the kernel is given, exactly.
  const std::vector<double> ref = referenceAttention(qf, B, Hkv, g, Sq, D, unpackedRows(F));
  return relativeL2(uploadRun(L, V, F, qraw, C.splits, usedSplits), ref, maxAbs);
}

// Appends on the GPU cache: per kernel variant, a batch of rows (ragged: lengths 0, 300, 1000,
// 4097, ...) takes single-token appends (and a chunk of 100 at the end); every 50 appends the
// kernel runs on the device cache and is compared with float64 attention over the host
// appender's form (which the selftest checks against the codec). Without `storePath` the
// device cache is that appender's (kvc_cuda_fw_append: host codec + copies) and must equal its
// host form byte for byte, so a copy that missed the device shows. With it, the store kernels
// in storePath append on the GPU (kvc_cuda_fw_gpu_append, tokens uploaded first) and the
// device form must equal the host form in every live part (fwLiveDiff). `quick`: fewer
// appends.
int cmdAppendCheck(const std::string &path, const std::string &storePath, unsigned seed,
                   double tol, bool quick) {
  const bool gpu = !storePath.empty();
  // The store kernels' file is read before any device work, so a bad path is named first.
  const std::string storePtx = gpu ? extractPTX(readFile(storePath)) : "";
  Loaded L = load(path);
  printf("device: %s, %d SMs\n", L.device.c_str(), L.sms);
  kvc_cuda_module storeModule = nullptr;
  if (gpu) {
    CK(kvc_cuda_module_load(storePtx.c_str(), &storeModule));
    printf("appends on the GPU: store kernels from %s\n", storePath.c_str());
  }
  std::mt19937 rng(seed);
  int failures = 0, total = 0;
  const int steps = quick ? 60 : 300;
  // Ragged rows and 64 or 256 rows of one length (batch 8 or 32 of 8 KV heads).
  struct Layout {
    int64_t B, Hkv;
    std::vector<int64_t> lens;
    const char *what;
  };
  const std::vector<Layout> layouts = {
      {2, 2, {0, 300, 1000, 4097}, "rows of 0, 300, 1000, 4097 tokens"},
      {8, 8, std::vector<int64_t>(64, 2000), "64 rows of 2000 tokens"},
      {32, 8, std::vector<int64_t>(256, 1000), "256 rows of 1000 tokens"}};
  for (const Variant &V : L.variants)
  for (const Layout &Lay : layouts) {
    const auto &cfg = V.cfg;
    const int64_t D = cfg.head_dim, g = cfg.group, Sq = cfg.query_seq, B = Lay.B, Hkv = Lay.Hkv;
    const std::vector<int64_t> &lens = Lay.lens;
    const kvc_codec_params prm = kernelParams(cfg);
    auto heads = makeHeads(lens, D, rng(), 0, &prm);
    std::vector<const kvc_codec_head *> hp;
    for (auto &h : heads)
      hp.push_back(h->h);
    kvc_fw_appender *A = nullptr;
    const char *err = nullptr;
    if (kvc_fw_appender_create(hp.data(), B, Hkv, steps + 100, &A, &err))
      die(std::string("appender: ") + (err ? err : "?"));
    // GPU appends start from a fresh appender of the same heads; A is the reference.
    kvc_cuda_fw_cache hostCache;
    FwGpuCache gc;
    kvc_fw_store_kernels sk{};
    kvc_cuda_ptr dk = 0, dv = 0;
    if (gpu) {
      const std::string why = gc.init(hp.data(), B, Hkv, steps + 100);
      if (!why.empty())
        die("GPU appender: " + why);
      if (kvc_cuda_fw_store_kernels_find(storeModule, storePtx.c_str(), D, cfg.key_block, &sk,
                                         &err))
        die(std::string("GPU appender: ") + (err ? err : "?"));
      CK(kvc_cuda_malloc(&dk, size_t(B * Hkv * 100 * D) * 2));
      CK(kvc_cuda_malloc(&dv, size_t(B * Hkv * 100 * D) * 2));
    } else if (kvc_cuda_fw_upload_appendable(A, &hostCache, &err)) {
      die(std::string("upload: ") + (err ? err : kvc_cuda_last_error()));
    }
    kvc_cuda_fw_cache &cache = gpu ? gc.cache : hostCache;
    kvc_fw_gpu_appender *G = gc.gpu;
    printf("variant %s: %s, %d single-token appends, then 100\n", V.name.c_str(), Lay.what,
           steps);
    std::normal_distribution<float> N(0.f, 1.f);
    const bool bf = cfg.query_type == 0;
    double appendUs = 0; // wall time of the single-token appends (host codec + copies)
    for (int step = 1; step <= steps + 1; ++step) {
      const int64_t n = step <= steps ? 1 : 100;
      std::vector<uint16_t> k(size_t(B * Hkv * n * D)), v(k.size());
      for (size_t i = 0; i < k.size(); ++i) {
        k[i] = toHalfBits(0.3f + 1.5f * N(rng), false);
        v[i] = toHalfBits(0.7f * N(rng), false);
      }
      if (gpu) {
        if (kvc_fw_appender_append(A, k.data(), v.data(), n, &err))
          die(std::string("reference append: ") + (err ? err : "?"));
        CK(kvc_cuda_memcpy_htod(dk, k.data(), k.size() * 2));
        CK(kvc_cuda_memcpy_htod(dv, v.data(), v.size() * 2));
      }
      // Timed: the append itself (GPU: tokens already on the device, until the work is done).
      const auto t0 = std::chrono::steady_clock::now();
      if (gpu) {
        if (kvc_cuda_fw_gpu_append(G, &cache, &sk, dk, dv, n, nullptr, 0, &err) ||
            kvc_cuda_synchronize())
          die(std::string("GPU append: ") + (err ? err : kvc_cuda_last_error()));
      } else if (kvc_cuda_fw_append(A, &cache, k.data(), v.data(), n, &err)) {
        die(std::string("append: ") + (err ? err : "?"));
      }
      if (n == 1)
        appendUs += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() -
                                                               t0).count();
      if (step % 50 && step != 1 && step != steps + 1)
        continue;
      std::vector<float> qf;
      std::vector<uint16_t> qraw;
      randomQueries(rng, B * Hkv * g * Sq * D, bf, qraw, qf);
      const kvc_fw_host_form &F = *kvc_fw_appender_form(A);
      const std::vector<double> ref = referenceAttention(qf, B, Hkv, g, Sq, D, unpackedRows(F));
      kvc_fw_plan plan;
      CK(kvc_cuda_fw_make_plan(&cfg, &cache, 0, L.sms * V.ctasPerSM, &plan));
      const std::vector<uint8_t> out =
          runPoisoned(qraw, qraw.size() * 2, plan, [&](kvc_cuda_ptr dq, kvc_cuda_ptr dws,
                                                       kvc_cuda_ptr dout) {
            CK(kvc_cuda_fw_init_workspace(&cfg, &plan, dws, nullptr));
            CK(kvc_cuda_fw_launch(V.split, V.merge, &cfg, &cache, &plan, dq, dws, dout,
                                  nullptr));
          });
      double maxAbs = 0;
      const double e = relativeL2(outputValues(out, cfg.query_type), ref, &maxAbs);
      // The device form must equal the host form byte for byte (every change was copied), or
      // with GPU appends in every part the kernels read.
      int differing = -1;
      std::string live;
      if (gpu) {
        if (kvc_cuda_fw_gpu_append_status(G, &err))
          die(std::string("GPU append status: ") + (err ? err : "?"));
        live = fwLiveDiff(F, cache);
        if (!live.empty())
          printf("  device form: %s from the host appender's\n", live.c_str());
      } else {
        for (int i = 0; i < KVC_FW_NUM_BUFFERS && differing < 0; ++i) {
          std::vector<uint8_t> dev(size_t(F.len[i] * F.elem_bytes[i]));
          CK(kvc_cuda_memcpy_dtoh(dev.data(), cache.buf[i], dev.size()));
          if (std::memcmp(dev.data(), F.data[i], dev.size()))
            differing = i;
        }
        if (differing >= 0)
          printf("  device buffer %d differs from the appender's host form\n", differing);
      }
      const bool ok = e <= tol && differing < 0 && live.empty();
      failures += !ok;
      ++total;
      printf("  %s after %d appends: code tokens %llu of %llu, splits %d: rel_l2=%.3e "
             "max_abs=%.3e\n",
             ok ? "PASS" : "FAIL", step, (unsigned long long)cache.code_tokens,
             (unsigned long long)cache.tokens, plan.num_splits, e, maxAbs);
    }
    printf("  single-token append of %lld rows (%s): %.1f us on average\n", (long long)(B * Hkv),
           gpu ? "GPU store kernels, tokens on the device, until done"
               : "host codec + copies to the device",
           appendUs / steps);
    if (gpu) {
      // Device time of back-to-back appends (no synchronisation between them, as in a decode
      // loop): 16 warm-up appends, then 200 between two events, on a fresh cache of the heads.
      FwGpuCache timed;
      const std::string why = timed.init(hp.data(), B, Hkv, 216);
      if (!why.empty())
        die("timing appender: " + why);
      kvc_cuda_fw_cache &tc = timed.cache;
      kvc_fw_gpu_appender *TG = timed.gpu;
      kvc_cuda_stream st;
      kvc_cuda_event e0, e1;
      CK(kvc_cuda_stream_create(&st));
      CK(kvc_cuda_event_create(&e0));
      CK(kvc_cuda_event_create(&e1));
      for (int i = 0; i < 216; ++i) {
        if (i == 16)
          CK(kvc_cuda_event_record(e0, st));
        if (kvc_cuda_fw_gpu_append(TG, &tc, &sk, dk, dv, 1, st, 0, &err))
          die(std::string("timed GPU append: ") + (err ? err : "?"));
      }
      CK(kvc_cuda_event_record(e1, st));
      CK(kvc_cuda_stream_synchronize(st));
      if (kvc_cuda_fw_gpu_append_status(TG, &err))
        die(std::string("timed GPU append status: ") + (err ? err : "?"));
      float ms = 0;
      CK(kvc_cuda_event_elapsed_ms(&ms, e0, e1));
      printf("  single-token append of %lld rows, back to back on a stream (events around 200; "
             "includes any wait for the host to enqueue): %.1f us per append\n",
             (long long)(B * Hkv), 1e3 * double(ms) / 200);
      kvc_cuda_event_destroy(e0);
      kvc_cuda_event_destroy(e1);
      kvc_cuda_stream_destroy(st);
    }
    if (!gpu)
      kvc_cuda_fw_free(&hostCache);
    kvc_fw_appender_free(A);
    if (dk)
      kvc_cuda_free(dk);
    if (dv)
      kvc_cuda_free(dv);
  }
  printf("fixed-width append-check: %d/%d passed (tolerance rel_l2 <= %.1e, vs float64 "
         "attention over the appender's host form)\n",
         total - failures, total, tol);
  return failures ? 1 : 0;
}

int cmdCheck(const std::string &path, unsigned seed, double tol, bool quick) {
  Loaded L = load(path);
  printf("device: %s, %d SMs\n", L.device.c_str(), L.sms);
  std::mt19937 rng(seed);
  int failures = 0, total = 0;
  // T: one token, under a tile, a whole tile, a tile and one, window-only rows (300: the codec
  // encodes no values yet), partial last tiles, a long row; splits 1, 3, many (empty code
  // splits) and the plan; ragged rows with lengths 0, 1 and T.
  std::vector<Case> cases = {{1, 8, 1, 0, false},     {1, 2, 100, 0, false},
                             {1, 4, 128, 0, false},   {2, 2, 129, 3, false},
                             {1, 8, 300, 0, false},   {2, 8, 1000, 0, false},
                             {1, 2, 1000, 64, false}, {1, 4, 4097, 1, false},
                             {2, 2, 4097, 3, false},  {1, 8, 16384, 0, false},
                             {1, 2, 16384, 1, false}, {2, 4, 16384, 3, false},
                             {2, 4, 3000, 0, true},   {2, 8, 4097, 3, true},
                             {2, 4, 4097, 0, false, true}, {1, 2, 16384, 3, true, true}};
  if (quick)
    cases = {{1, 8, 100, 0, false}, {1, 2, 1000, 3, false}, {2, 2, 4097, 0, true}};
  for (const Variant &V : L.variants) {
    printf("variant %s (regs %d, smem %d B, %d CTAs/SM)\n", V.name.c_str(), V.regs, V.smem,
           V.ctasPerSM);
    for (const Case &C : cases) {
      double maxAbs = 0;
      int splits = 0;
      std::string note;
      const double err = runCase(L, V, C, rng, &maxAbs, &splits, &note);
      const bool ok = err <= tol;
      failures += !ok;
      ++total;
      printf("  %s B=%lld Hkv=%lld T=%lld splits=%d%s%s: rel_l2=%.3e max_abs=%.3e (%s)\n",
             ok ? "PASS" : "FAIL", (long long)C.batch, (long long)C.hkv, (long long)C.T, splits,
             C.ragged ? " ragged rows (0, 1, T, random)" : "",
             C.atLimits ? " eps at the widths' limits" : "", err, maxAbs, note.c_str());
    }
  }
  printf("fixed-width check: %d/%d passed (tolerance rel_l2 <= %.1e, vs float64 attention over "
         "the unpacked cache)\n",
         total - failures, total, tol);
  return failures ? 1 : 0;
}

// ----------------------------------------------------------------------------- check-npy
// A real-model case folder (python -m kvc.bench.gemma_decode_cases): q [B, Hq, Sq, D],
// k and v [B, Hkv, S, D], expected [B, Hq, Sq, D] (kvc's CPU path on the uncompressed cache),
// all float32, and for ragged batches lengths int64 [B, Hkv] (row b*Hkv + h holds
// lengths[b, h] <= S tokens). Read and checked on the host before any device work.
struct NpyCase {
  std::string dir;
  Npy q, k, v, ex;
  std::vector<int64_t> lens; // per KV row
  bool ragged = false;
  int64_t B = 0, Hq = 0, Sq = 0, D = 0, Hkv = 0, S = 0, g = 0;
};

std::string shapeStr(const std::vector<int64_t> &s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i)
    r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

NpyCase readCase(const std::string &dir) {
  const char *want = "want q.npy, k.npy, v.npy, expected.npy and, for ragged rows, lengths.npy, "
                     "as python -m kvc.bench.gemma_decode_cases writes them";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    die(dir + ": no such case directory (" + want + ")");
  for (const char *f : {"q.npy", "k.npy", "v.npy", "expected.npy"})
    if (!std::filesystem::is_regular_file(dir + "/" + f, ec))
      die(dir + ": missing " + f + " (" + want + ")");
  NpyCase C;
  C.dir = dir;
  auto f32 = [&](const char *name, size_t rank) {
    Npy n = readNpy(dir + "/" + name);
    if (!n.i64.empty() || n.shape.size() != rank)
      die(dir + "/" + name + ": want a float32 array of rank " + std::to_string(rank) + ", got " +
          (n.i64.empty() ? "float32 " : "int64 ") + shapeStr(n.shape));
    for (int64_t d : n.shape)
      if (d < 1)
        die(dir + "/" + name + ": empty dimension in " + shapeStr(n.shape));
    return n;
  };
  C.q = f32("q.npy", 4);
  C.k = f32("k.npy", 4);
  C.v = f32("v.npy", 4);
  C.ex = f32("expected.npy", 4);
  C.B = C.q.shape[0], C.Hq = C.q.shape[1], C.Sq = C.q.shape[2], C.D = C.q.shape[3];
  C.Hkv = C.k.shape[1], C.S = C.k.shape[2];
  if (C.k.shape[0] != C.B || C.k.shape[3] != C.D)
    die(dir + ": k.npy " + shapeStr(C.k.shape) + " does not match q.npy " + shapeStr(C.q.shape) +
        " (want k [B, Hkv, S, D] with q's B and D)");
  if (C.v.shape != C.k.shape)
    die(dir + ": v.npy " + shapeStr(C.v.shape) + " differs from k.npy " + shapeStr(C.k.shape));
  if (C.ex.shape != C.q.shape)
    die(dir + ": expected.npy " + shapeStr(C.ex.shape) + " differs from q.npy " +
        shapeStr(C.q.shape));
  if (C.Hq % C.Hkv)
    die(dir + ": Hq = " + std::to_string(C.Hq) + " is not a multiple of Hkv = " +
        std::to_string(C.Hkv));
  C.g = C.Hq / C.Hkv;
  C.lens.assign(size_t(C.B * C.Hkv), C.S);
  C.ragged = std::filesystem::exists(dir + "/lengths.npy", ec);
  if (C.ragged) {
    Npy ln = readNpy(dir + "/lengths.npy");
    if (ln.i64.size() != size_t(C.B * C.Hkv) || ln.shape.size() != 2)
      die(dir + "/lengths.npy: want int64 [B, Hkv] = [" + std::to_string(C.B) + ", " +
          std::to_string(C.Hkv) + "], got " + (ln.i64.empty() ? "float32 " : "int64 ") +
          shapeStr(ln.shape));
    for (size_t r = 0; r < ln.i64.size(); ++r)
      if (ln.i64[r] < 0 || ln.i64[r] > C.S)
        die(dir + "/lengths.npy: row " + std::to_string(r) + " has " +
            std::to_string(ln.i64[r]) + " tokens, outside [0, S = " + std::to_string(C.S) + "]");
    C.lens = ln.i64;
  }
  return C;
}

// Every case through every fixed-width variant of IN with its D, g and Sq (bf16 ones; f16
// ones where the module has no bf16 one): one codec head per (batch row, KV head) from the
// case's keys and values (kvc_codec_default_params, as `encoded check-npy`: K eps 0.05, V eps
// 0.1, value block 128, recent windows 128/256; the variant's key block), packed with
// kvc_fw_pack and run on the case's queries rounded to the kernel's type. Pass: rel. L2 <= tol
// against float64 attention over the *unpacked* cache (kvc_fw_unpack_row). Printed, not
// judged: the kernel's and that reference's distance to expected.npy (kvc's CPU path on the
// uncompressed cache: what the quantization and the fp16 window cost), the code / window split
// of the tokens and the device form's bits per element.
// A case's queries in the kernel's type (bf16 or f16): their bits and their values.
void caseQueries(const NpyCase &C, bool bf, std::vector<uint16_t> &raw, std::vector<float> &val) {
  raw.resize(C.q.f32.size());
  val.resize(C.q.f32.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    raw[i] = toHalfBits(C.q.f32[i], bf);
    val[i] = fromHalfBits(raw[i], bf);
  }
}

// check-npy --store: the case's last A tokens of every row (A = half the shortest row, at most
// 600) appended through the GPU store kernels to a cache of the rest, 200 one token at a time
// and the remainder at once; the live device form must equal the host appender's after the
// same tokens, and attention on it must match float64 over that form. Returns "" or a failure;
// *skipped when a row is too short to split.
std::string gpuAppendNpy(const Loaded &L, const Variant &V, const NpyCase &C,
                         kvc_cuda_module storeModule, const std::string &storePtx, double tol,
                         std::string *info, bool *skipped) {
  const kvc_codec_params prm = kernelParams(V.cfg);
  const int64_t R = C.B * C.Hkv, S = C.S, D = C.D;
  int64_t A = *std::min_element(C.lens.begin(), C.lens.end()) / 2;
  A = std::min<int64_t>(A, 600);
  *skipped = A < 1;
  if (*skipped)
    return "";
  std::vector<std::unique_ptr<Head>> heads(static_cast<size_t>(R));
  std::vector<const kvc_codec_head *> hp;
  for (int64_t r = 0; r < R; ++r) {
    heads[size_t(r)] = std::make_unique<Head>();
    CC(kvc_codec_head_create(&prm, &heads[size_t(r)]->h));
    CC(kvc_codec_head_append(heads[size_t(r)]->h, &C.k.f32[size_t(r * S * D)],
                             &C.v.f32[size_t(r * S * D)], uint64_t(C.lens[size_t(r)] - A)));
    hp.push_back(heads[size_t(r)]->h);
  }
  const char *err = nullptr;
  kvc_fw_store_kernels sk{};
  // Setup failures (e.g. no store kernels for this D and key block) fail this case only.
  FwGpuCache gc;
  std::string setup = gc.init(hp.data(), C.B, C.Hkv, A);
  if (setup.empty() && kvc_cuda_fw_store_kernels_find(storeModule, storePtx.c_str(), D,
                                                      V.cfg.key_block, &sk, &err))
    setup = err ? err : "?";
  kvc_fw_appender *ref = nullptr;
  if (setup.empty() && kvc_fw_appender_create(hp.data(), C.B, C.Hkv, A, &ref, &err))
    setup = err ? err : "?";
  if (!setup.empty())
    return "GPU appender: " + setup;
  kvc_cuda_fw_cache &cache = gc.cache;
  kvc_fw_gpu_appender *G = gc.gpu;
  kvc_cuda_ptr dk = 0, dv = 0;
  CK(kvc_cuda_malloc(&dk, size_t(R * A * D) * 2));
  CK(kvc_cuda_malloc(&dv, size_t(R * A * D) * 2));
  std::string failed;
  for (int64_t a = 0; a < A && failed.empty();) {
    const int64_t n = a < 200 ? 1 : A - a;
    std::vector<uint16_t> k(size_t(R * n * D)), v(k.size());
    for (int64_t r = 0; r < R; ++r)
      for (int64_t i = 0; i < n * D; ++i) {
        const size_t src = size_t((r * S + C.lens[size_t(r)] - A + a) * D + i);
        k[size_t(r * n * D + i)] = toHalfBits(C.k.f32[src], false);
        v[size_t(r * n * D + i)] = toHalfBits(C.v.f32[src], false);
      }
    CK(kvc_cuda_memcpy_htod(dk, k.data(), k.size() * 2));
    CK(kvc_cuda_memcpy_htod(dv, v.data(), v.size() * 2));
    if (kvc_fw_appender_append(ref, k.data(), v.data(), n, &err) ||
        kvc_cuda_fw_gpu_append(G, &cache, &sk, dk, dv, n, nullptr, KVC_FW_APPEND_CHECK, &err))
      failed = err ? err : "append failed";
    a += n;
  }
  const kvc_fw_host_form &F = *kvc_fw_appender_form(ref);
  if (failed.empty())
    failed = fwLiveDiff(F, cache);
  if (failed.empty()) {
    std::vector<uint16_t> qraw;
    std::vector<float> qf;
    caseQueries(C, V.cfg.query_type == 0, qraw, qf);
    const std::vector<double> refOut =
        referenceAttention(qf, C.B, C.Hkv, C.g, C.Sq, D, unpackedRows(F));
    kvc_fw_plan plan;
    CK(kvc_cuda_fw_make_plan(&V.cfg, &cache, 0, L.sms * V.ctasPerSM, &plan));
    const std::vector<uint8_t> out =
        runPoisoned(qraw, qraw.size() * 2, plan, [&](kvc_cuda_ptr dq, kvc_cuda_ptr dws,
                                                     kvc_cuda_ptr dout) {
          CK(kvc_cuda_fw_init_workspace(&V.cfg, &plan, dws, nullptr));
          CK(kvc_cuda_fw_launch(V.split, V.merge, &V.cfg, &cache, &plan, dq, dws, dout,
                                nullptr));
        });
    const double e = relativeL2(outputValues(out, V.cfg.query_type), refOut);
    int64_t kj = 0, vj = 0;
    kvc_fw_gpu_appender_jobs(G, &kj, &vj);
    char buf[240];
    snprintf(buf, sizeof buf, "%lld tokens per row appended on the GPU (%lld key, %lld value "
             "store jobs), code tokens %llu of %llu, device form = host appender's, rel_l2 "
             "%.3e", (long long)A, (long long)kj, (long long)vj,
             (unsigned long long)cache.code_tokens, (unsigned long long)cache.tokens, e);
    *info = buf;
    if (!(e <= tol))
      failed = std::string("attention on the GPU-appended cache: ") + buf;
  }
  kvc_cuda_free(dk);
  kvc_cuda_free(dv);
  kvc_fw_appender_free(ref);
  return failed;
}

int cmdCheckNpy(const std::string &path, const std::vector<std::string> &dirs, double tol,
                int splits, const std::string &storePath) {
  std::vector<NpyCase> cases;
  for (const std::string &dir : dirs)
    cases.push_back(readCase(dir));
  const std::string storePtx = storePath.empty() ? "" : extractPTX(readFile(storePath));
  Loaded L = load(path);
  printf("device: %s, %d SMs\n", L.device.c_str(), L.sms);
  kvc_cuda_module storeModule = nullptr;
  if (!storePath.empty())
    CK(kvc_cuda_module_load(storePtx.c_str(), &storeModule));
  int failures = 0, total = 0;
  for (const NpyCase &C : cases) {
    std::vector<const Variant *> vs;
    for (int qt : {0, 1}) {
      for (const Variant &V : L.variants)
        if (V.cfg.head_dim == C.D && V.cfg.group == C.g && V.cfg.query_seq == C.Sq &&
            V.cfg.query_type == qt)
          vs.push_back(&V);
      if (!vs.empty())
        break;
    }
    if (vs.empty()) {
      printf("  FAIL %s: no fixed-width kernel with D=%lld g=%lld Sq=%lld in %s\n",
             C.dir.c_str(), (long long)C.D, (long long)C.g, (long long)C.Sq, path.c_str());
      ++failures;
      ++total;
      continue;
    }
    const std::vector<double> expected(C.ex.f32.begin(), C.ex.f32.end());
    for (const Variant *V : vs) {
      ++total;
      const bool bf = V->cfg.query_type == 0;
      const kvc_codec_params prm = kernelParams(V->cfg);
      const int64_t R = C.B * C.Hkv, S = C.S, D = C.D;
      std::vector<std::unique_ptr<Head>> heads(static_cast<size_t>(R));
      std::vector<const kvc_codec_head *> hp;
      for (int64_t r = 0; r < R; ++r) {
        heads[size_t(r)] = std::make_unique<Head>();
        CC(kvc_codec_head_create(&prm, &heads[size_t(r)]->h));
        if (const int64_t T = C.lens[size_t(r)])
          CC(kvc_codec_head_append(heads[size_t(r)]->h, &C.k.f32[size_t(r * S * D)],
                                   &C.v.f32[size_t(r * S * D)], uint64_t(T)));
        hp.push_back(heads[size_t(r)]->h);
      }
      kvc_fw_host_form F;
      const char *err = nullptr;
      if (kvc_fw_pack(hp.data(), C.B, C.Hkv, &F, &err)) {
        printf("  FAIL %s: %s: %s\n", C.dir.c_str(), V->name.c_str(),
               err ? err : "kvc_fw_pack failed");
        ++failures;
        continue;
      }
      double formBytes = 0;
      for (int i = 0; i < KVC_FW_NUM_BUFFERS; ++i)
        formBytes += double(F.len[i]) * double(F.elem_bytes[i]);
      const double bits = 8.0 * formBytes / (2.0 * double(std::max<uint64_t>(F.tokens, 1)) * D);
      const uint64_t codeTokens = F.code_tokens, tokens = F.tokens;
      std::vector<uint16_t> qraw;
      std::vector<float> qf;
      caseQueries(C, bf, qraw, qf);
      const std::vector<double> ref =
          referenceAttention(qf, C.B, C.Hkv, C.g, C.Sq, D, unpackedRows(F));
      int used = 0;
      const std::vector<double> got = uploadRun(L, *V, F, qraw, splits, &used);
      double maxAbs = 0;
      const double e = relativeL2(got, ref, &maxAbs);
      const double eCpu = relativeL2(got, expected), refCpu = relativeL2(ref, expected);
      const bool ok = e <= tol;
      failures += !ok;
      printf("  %s %s: %s B=%lld Hq=%lld Hkv=%lld S=%lld D=%lld splits=%d%s, code tokens %llu of "
             "%llu, %.2f bits/elem: rel_l2 vs float64 over the unpacked cache %.3e (max_abs "
             "%.3e); vs the uncompressed CPU path (expected.npy) %.3e (the float64 reference: "
             "%.3e)\n",
             ok ? "PASS" : "FAIL", C.dir.c_str(), V->name.c_str(), (long long)C.B,
             (long long)C.Hq, (long long)C.Hkv, (long long)S, (long long)D, used,
             C.ragged ? " ragged" : "", (unsigned long long)codeTokens,
             (unsigned long long)tokens, bits, e, maxAbs, eCpu, refCpu);
      if (storeModule) {
        std::string info;
        bool skipped = false;
        const std::string bad =
            gpuAppendNpy(L, *V, C, storeModule, storePtx, tol, &info, &skipped);
        if (skipped) {
          printf("  SKIP %s: %s appends: a row has fewer than 2 tokens\n", C.dir.c_str(),
                 V->name.c_str());
          continue;
        }
        ++total;
        failures += !bad.empty();
        printf("  %s %s: %s appends: %s\n", bad.empty() ? "PASS" : "FAIL", C.dir.c_str(),
               V->name.c_str(), bad.empty() ? info.c_str() : bad.c_str());
      }
    }
  }
  printf("fixed-width check-npy: %d/%d passed (tolerance rel_l2 <= %.1e, vs float64 attention "
         "over the unpacked cache; the distance to expected.npy is reported, not judged)\n",
         total - failures, total, tol);
  return failures ? 1 : 0;
}

// ----------------------------------------------------------------------------- decode
int cmdDecode(const std::string &path, const std::string &json, const std::vector<int64_t> &batches,
              const std::vector<int64_t> &contexts, int warmup, int reps, int forceSplits,
              int64_t hkv) {
  Loaded L = load(path);
  Timer T(L.l2);
  std::ostringstream js;
  const double copyTBs = startDecodeTiming(L, T, warmup, reps, js);
  js << ",\n  \"form\": \"fixed-width\""
     << ",\n  \"codec\": \"kvc_codec_default_params with the kernel's key block: K eps 0.05 "
        "(BlockQuant), V eps 0.1 (TokenQuant), recent 128/256; stored at 5-bit keys, 4-bit "
        "values, fp16 from Tf = floor(min(key, value encoded tokens) / 128) * 128 on\""
     << ",\n  \"data\": \"" << kReplicatedHeadsData << "\"";
  jsonOpenResults(js, "split+merge");
  bool first = true;
  printf("%-44s %5s %7s %6s %9s %9s %9s %7s %6s %8s %7s\n", "variant", "batch", "context",
         "splits", "time_us", "dev_MB", "bf16_MB", "bits/el", "code%", "TB/s", "%copy");
  for (const Variant &V : L.variants) {
    const int64_t D = V.cfg.head_dim, g = V.cfg.group, Sq = V.cfg.query_seq;
    const kvc_codec_params prm = kernelParams(V.cfg);
    for (int64_t S : contexts) {
      auto base = makeHeads(std::vector<int64_t>(size_t(hkv), S), D, uint64_t(S), 0, &prm);
      double codecBits = 0, quantBits = 0;
      for (auto &h : base) {
        kvc_codec_stats st;
        CC(kvc_codec_head_stats(h->h, &st));
        codecBits += st.bits_per_element / double(hkv);
        quantBits += 8.0 * double(st.quant_only_total_bytes) /
                     (2.0 * double(st.num_tokens) * double(st.head_dim)) / double(hkv);
      }
      for (int64_t B : batches) {
        const std::vector<const kvc_codec_head *> hp = replicatedRows(base, B);
        kvc_cuda_fw_cache cache;
        const char *err = nullptr;
        if (kvc_cuda_fw_upload(hp.data(), B, hkv, &cache, &err))
          die(std::string("upload failed: ") + (err ? err : kvc_cuda_last_error()));
        kvc_fw_plan plan;
        CK(kvc_cuda_fw_make_plan(&V.cfg, &cache, forceSplits, L.sms * V.ctasPerSM, &plan));
        const double ms = timeSplitMerge(
            T, warmup, reps, B * hkv * g * Sq * D, V.cfg.query_type, 2, plan,
            [&, zeroed = false](kvc_cuda_ptr dq, kvc_cuda_ptr dws, kvc_cuda_ptr dout) mutable {
              if (!zeroed) // the fused merge's counters, once per workspace (a warm-up run)
                CK(kvc_cuda_fw_init_workspace(&V.cfg, &plan, dws, nullptr));
              zeroed = true;
              CK(kvc_cuda_fw_launch(V.split, V.merge, &V.cfg, &cache, &plan, dq, dws, dout,
                                    nullptr));
            });
        const DecodeRate rate(ms, double(cache.device_bytes), B, hkv, S, D);
        const double devBytes = rate.bytes, bf16Bytes = rate.bf16Bytes, bits = rate.bits,
                     tbs = rate.tbs;
        const double codeFrac = double(cache.code_tokens) / double(std::max<uint64_t>(1, cache.tokens));
        printf("%-44s %5lld %7lld %6d %9.1f %9.1f %9.1f %7.3f %5.1f%% %8.3f %6.1f%%\n",
               V.name.c_str(), (long long)B, (long long)S, plan.num_splits, ms * 1e3,
               devBytes / 1e6, bf16Bytes / 1e6, bits, 100.0 * codeFrac, tbs,
               100.0 * tbs / copyTBs);
        // The keys of `kvc-bench encoded decode`'s records (python/kvc/bench reads them), plus
        // the form and the code/window split of the tokens.
        js << (first ? "" : ",\n") << "    {\"backend\": \"kvc-fixed-width\", \"form\": "
           << "\"fixed-width\", \"variant\": \"" << V.name << "\", \"batch\": " << B
           << ", \"hq\": " << hkv * g << ", \"hkv\": " << hkv << ", \"d\": " << D
           << ", \"key_block\": " << V.cfg.key_block << ", \"context\": " << S
           << ", \"splits\": " << plan.num_splits << ", \"regs\": " << V.regs
           << ", \"ctas_per_sm\": " << V.ctasPerSM << ", \"time_us\": " << ms * 1e3
           << ", \"bytes\": " << devBytes << ", \"table_bytes\": 0"
           << ", \"bf16_bytes\": " << bf16Bytes << ", \"bits_per_element\": " << bits
           << ", \"codec_bits_per_element\": " << codecBits
           << ", \"codec_quant_only_bits_per_element\": " << quantBits
           << ", \"tokens\": " << cache.tokens << ", \"code_tokens\": " << cache.code_tokens
           << ", \"tbps\": " << tbs << ", \"equiv_bf16_tbps\": " << bf16Bytes / (ms * 1e-3) / 1e12
           << ", \"frac_copy\": " << tbs / copyTBs << "}";
        first = false;
        kvc_cuda_fw_free(&cache);
        gFreedSinceSettle = true; // the device form's buffers
      }
    }
  }
  finishJson(js, json);
  return 0;
}

int cmdInfo(const std::string &path) {
  Loaded L = load(path);
  printf("device: %s, %d SMs\n", L.device.c_str(), L.sms);
  for (const Variant &V : L.variants)
    printf("%s: D=%d g=%d Sq=%d q=%s key_block=%d regs=%d smem=%d ctas/SM=%d\n", V.name.c_str(),
           V.cfg.head_dim, V.cfg.group, V.cfg.query_seq, qtName(V.cfg.query_type),
           V.cfg.key_block, V.regs, V.smem, V.ctasPerSM);
  return 0;
}

// ----------------------------------------------------------------------------- selftest
// CPU-only check of the device form. For every row of every case:
//  - the row entry (T, Tf, tile_base, window_base) against the codec's encoded token counts;
//  - kvc_fw_unpack_row against kvc_codec_head_decode: code tokens bit for bit, window tokens
//    equal to the decode rounded to fp16 (by the compiler's _Float16, not kvc's converter);
//  - every code symbol read back from the words by the header's element mapping, written out
//    here per element (not the runtime's per-lane loop), against
//    kvc_codec_head_decode_symbols; the (min, step) entries against the codec's views; the
//    key words past the bit planes are 0.

// Bits of a float (exact comparisons).
uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Key symbol of code token `tok` (within the row), channel c, from the words (header layout).
uint32_t keySymbolAt(const uint32_t *kw, int64_t D, int64_t tileBase, int64_t tok, int64_t c) {
  const int64_t KU4 = kvc_fw_key_u4(int(D));
  const int64_t G = tileBase + tok / 128, tt = tok % 128, w = tt / 32;
  const int64_t mt = (tt % 32) / 16, row = tt % 16, kk = c / 16, col = c % 16;
  const int64_t f = kk * 2 + mt;
  const int64_t i = row / 8 + 2 * (col / 8), h = col % 2;
  const int64_t lane = 4 * (row % 8) + (col % 8) / 2;
  auto word = [&](int64_t j) { return kw[((G * 4 + w) * KU4 + j / 4) * 128 + 4 * lane + j % 4]; };
  const uint32_t lo = word(f) >> (16 * h + 4 * i) & 15u;
  const uint32_t hi = word(D / 8 + f / 4) >> (16 * h + 4 * (f % 4) + i) & 1u;
  return lo | hi << 4;
}
// Value symbol of code token `tok`, channel c (A = V^T: rows channels, columns tokens).
uint32_t valueSymbolAt(const uint32_t *vw, int64_t D, int64_t tileBase, int64_t tok, int64_t c) {
  const int64_t VU4 = kvc_fw_value_u4(int(D));
  const int64_t G = tileBase + tok / 128, tt = tok % 128, w = tt / 32;
  const int64_t kk = (tt % 32) / 16, col = tt % 16, mt = c / 16, row = c % 16;
  const int64_t f = kk * (D / 16) + mt;
  const int64_t i = row / 8 + 2 * (col / 8), h = col % 2;
  const int64_t lane = 4 * (row % 8) + (col % 8) / 2;
  return vw[((G * 4 + w) * VU4 + f / 4) * 128 + 4 * lane + f % 4] >> (16 * h + 4 * i) & 15u;
}

// The codec's defaults for head dim D with key block KB and, where >= 0, the value block and
// the recent windows of a selftest case.
kvc_codec_params caseParams(int64_t D, int64_t KB, int valueBlock, int keyRecent,
                            int valueRecent) {
  kvc_codec_params p;
  kvc_codec_default_params(&p, uint32_t(D));
  p.key_block_tokens = uint32_t(KB);
  if (valueBlock >= 0)
    p.value_block_tokens = uint32_t(valueBlock);
  if (keyRecent >= 0)
    p.key_recent_tokens = uint32_t(keyRecent);
  if (valueRecent >= 0)
    p.value_recent_tokens = uint32_t(valueRecent);
  return p;
}

struct SelfCase {
  const char *what;
  int64_t D, KB, B, Hkv;
  std::vector<int64_t> lens; // per distinct row: B*Hkv, or Hkv with `shared`
  bool shared;               // batch b > 0 repeats batch 0's head pointers
  int keyRecent = -1, valueRecent = -1, valueBlock = -1; // -1: the codec's default
  bool atLimits = false; // error bounds whose symbols fill the widths (keys 31, values 15)
};


// Checks one packed case; returns "" or the first mismatch.
std::string checkForm(const SelfCase &C, const kvc_fw_host_form &F,
                      const std::vector<const kvc_codec_head *> &hp, uint64_t &elements) {
  const int64_t D = C.D, KB = C.KB, R = C.B * C.Hkv;
  const int64_t KU4 = kvc_fw_key_u4(int(D)), VU4 = kvc_fw_value_u4(int(D));
  const int32_t *rows = static_cast<const int32_t *>(F.data[KVC_FW_ROWS]);
  const uint32_t *kw = static_cast<const uint32_t *>(F.data[KVC_FW_KW]);
  const uint32_t *vw = static_cast<const uint32_t *>(F.data[KVC_FW_VW]);
  const float *kmin = static_cast<const float *>(F.data[KVC_FW_KMIN]);
  const float *kstep = static_cast<const float *>(F.data[KVC_FW_KSTEP]);
  const float *vmin = static_cast<const float *>(F.data[KVC_FW_VMIN]);
  const float *vstep = static_cast<const float *>(F.data[KVC_FW_VSTEP]);
  if (F.head_dim != D || F.key_block != KB || F.batch != C.B || F.hkv != C.Hkv)
    return "form header differs from the case";
  int64_t tileBase = 0, windowBase = 0, maxT = 0, maxF = 0, maxW = 0;
  uint64_t tokens = 0, codeTokens = 0;
  for (int64_t r = 0; r < R; ++r) {
    const std::string at = "row " + std::to_string(r) + ": ";
    const kvc_codec_head *h = hp[size_t(r)];
    kvc_codec_stream_view sv[2];
    kvc_codec_huffman_tables tb[2];
    for (int s = 0; s < 2; ++s)
      CC(kvc_codec_head_view(h, s, &sv[s], &tb[s]));
    const int64_t T = int64_t(kvc_codec_head_num_tokens(h));
    const int64_t nk = int64_t(sv[0].num_blocks) * sv[0].block_tokens;
    const int64_t nv = int64_t(sv[1].num_blocks) * sv[1].block_tokens;
    const int64_t Tf = std::min(nk, nv) / 128 * 128;
    const int32_t *ri = rows + 4 * r;
    if (ri[0] != T || ri[1] != Tf || ri[2] != tileBase || ri[3] != windowBase)
      return at + "row entry (" + std::to_string(ri[0]) + ", " + std::to_string(ri[1]) + ", " +
             std::to_string(ri[2]) + ", " + std::to_string(ri[3]) + "), want (" +
             std::to_string(T) + ", " + std::to_string(Tf) + ", " + std::to_string(tileBase) +
             ", " + std::to_string(windowBase) + ")";
    // Unpack against the codec's decode.
    std::vector<float> K(size_t(T * D)), V(size_t(T * D)), Ku(size_t(T * D)), Vu(size_t(T * D));
    if (T)
      CC(kvc_codec_head_decode(h, K.data(), V.data()));
    const char *err = nullptr;
    if (kvc_fw_unpack_row(&F, r, Ku.data(), Vu.data(), &err))
      return at + "unpack failed: " + (err ? err : "?");
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < D; ++c)
        for (int s = 0; s < 2; ++s) {
          const float want = (s ? V : K)[size_t(t * D + c)];
          const float got = (s ? Vu : Ku)[size_t(t * D + c)];
          const float exp = t < Tf ? want : float(static_cast<_Float16>(want));
          if (bitsOf(got) != bitsOf(exp)) {
            char b[200];
            snprintf(b, sizeof b, "%s token %lld channel %lld (%s): unpacked %.9g, want %.9g",
                     s ? "value" : "key", (long long)t, (long long)c,
                     t < Tf ? "code, the codec's decode" : "window, its fp16 rounding",
                     double(got), double(exp));
            return at + b;
          }
          ++elements;
        }
    // Symbols from the words, element by element, and the quantization parameters.
    std::vector<uint16_t> ks(size_t(nk * D)), vs(size_t(nv * D));
    if (nk)
      CC(kvc_codec_head_decode_symbols(h, KVC_CODEC_KEYS, ks.data(), ks.size()));
    if (nv)
      CC(kvc_codec_head_decode_symbols(h, KVC_CODEC_VALUES, vs.data(), vs.size()));
    for (int64_t t = 0; t < Tf; ++t) {
      for (int64_t c = 0; c < D; ++c) {
        const uint32_t k = keySymbolAt(kw, D, tileBase, t, c);
        const uint32_t v = valueSymbolAt(vw, D, tileBase, t, c);
        if (k != ks[size_t(t * D + c)] || v != vs[size_t(t * D + c)])
          return at + "symbols at token " + std::to_string(t) + " channel " + std::to_string(c) +
                 ": key " + std::to_string(k) + " (codec " + std::to_string(ks[size_t(t * D + c)]) +
                 "), value " + std::to_string(v) + " (codec " +
                 std::to_string(vs[size_t(t * D + c)]) + ")";
      }
      const int64_t kg = (tileBase * 128 + t) / KB, vg = tileBase * 128 + t;
      if (bitsOf(kmin[kg]) != bitsOf(sv[0].mins[t / KB]) ||
          bitsOf(kstep[kg]) != bitsOf(sv[0].steps[t / KB]) ||
          bitsOf(vmin[vg]) != bitsOf(sv[1].mins[t]) || bitsOf(vstep[vg]) != bitsOf(sv[1].steps[t]))
        return at + "(min, step) of token " + std::to_string(t) + " differ from the codec's";
    }
    // Key words past the 5th-bit planes are padding (0).
    for (int64_t G = tileBase; G < tileBase + Tf / 128; ++G)
      for (int64_t w = 0; w < 4; ++w)
        for (int64_t lane = 0; lane < 32; ++lane)
          for (int64_t j = D / 8 + D / 32; j < 4 * KU4; ++j)
            if (kw[((G * 4 + w) * KU4 + j / 4) * 128 + 4 * lane + j % 4])
              return at + "padding key word " + std::to_string(j) + " is not 0";
    tileBase += Tf / 128;
    windowBase += T - Tf;
    maxT = std::max(maxT, T);
    maxF = std::max(maxF, Tf / 128);
    maxW = std::max(maxW, (T + 127) / 128 - Tf / 128);
    tokens += uint64_t(T);
    codeTokens += uint64_t(Tf);
  }
  auto atLeast8 = [](int64_t n) { return std::max<int64_t>(n, 8); };
  if (F.len[KVC_FW_KW] != atLeast8(tileBase * 4 * KU4 * 128) ||
      F.len[KVC_FW_VW] != atLeast8(tileBase * 4 * VU4 * 128) ||
      F.len[KVC_FW_KMIN] != atLeast8(tileBase * 128 / KB) ||
      F.len[KVC_FW_VSTEP] != atLeast8(tileBase * 128) ||
      F.len[KVC_FW_KREC] != atLeast8(windowBase * D) || F.len[KVC_FW_ROWS] != R * 4)
    return "buffer lengths differ from the layout";
  if (F.max_tokens != maxT || F.max_code_tiles != maxF || F.max_window_tiles != maxW ||
      F.tokens != tokens || F.code_tokens != codeTokens)
    return "form totals differ (max tokens/code tiles/window tiles, tokens, code tokens)";
  return "";
}

// Appends (kvc_fw_appender): after each checked append, every row of the appender's form must
// unpack bit-exactly to what kvc_fw_pack gives for reference heads that received the same
// tokens through kvc_codec_head_append; and a shadow of the initial form that replays only the
// changes each append reports (what kvc_cuda_fw_append copies to the device) must equal the
// form byte for byte. Returns the number of failed cases; counts checks and elements.
struct AppendCase {
  const char *what;
  int64_t D, KB;
  std::vector<int64_t> lens;   // initial tokens per row (B = 1, Hkv = rows)
  int64_t maxNew;
  std::vector<int64_t> chunks; // tokens per append, in order
  int checkEvery;              // check after every k-th append (and the last)
  int valueBlock = -1, keyRecent = -1, valueRecent = -1; // -1: the codec's default
  std::vector<std::pair<float, float>> eps = {};         // per row (K, V); empty: defaults
};

std::vector<int64_t> repeatChunks(std::initializer_list<std::pair<int64_t, int64_t>> runs) {
  std::vector<int64_t> v;
  for (auto [count, n] : runs)
    v.insert(v.end(), size_t(count), n);
  return v;
}

int appendSelftest(int &checks, uint64_t &compared) {
  const std::vector<AppendCase> cases = {
      {"D=128 KB=64 rows of 0, 300, 1000 tokens, 400 single-token appends then 2 x 150", 128, 64,
       {0, 300, 1000}, 700, repeatChunks({{400, 1}, {2, 150}}), 50},
      {"D=64 KB=32 rows of 129 and 4097 tokens, 40 appends of 7", 64, 32, {129, 4097}, 300,
       repeatChunks({{40, 7}}), 8},
      {"D=256 KB=128 one row of 1000 tokens, 3 appends of 100", 256, 128, {1000}, 300,
       repeatChunks({{3, 100}}), 1},
      {"D=128 KB=64 value block 256, no codec windows, 5 appends of 60", 128, 64, {500, 2000},
       300, repeatChunks({{5, 60}}), 1, 256, 0, 0},
      {"D=64 KB=32 keys limit Tf (recent keys 300, values 0), 20 appends of 13", 64, 32, {700},
       300, repeatChunks({{20, 13}}), 4, -1, 300, 0},
      {"D=128 KB=64 rows with different error bounds (0.04/0.07, 0.05/0.1, 0.1/0.1)", 128, 64,
       {1000, 1000, 1000}, 400, repeatChunks({{200, 1}, {1, 200}}), 40, -1, -1, -1,
       {{0.04f, 0.07f}, {0.05f, 0.1f}, {0.1f, 0.1f}}},
      {"D=128 KB=64 error bounds at the widths' limits", 128, 64, {300, 1200}, 400,
       repeatChunks({{4, 100}}), 1, -1, -1, -1,
       {{kKeyEpsAtLimit, kValueEpsAtLimit}, {kKeyEpsAtLimit, kValueEpsAtLimit}}},
  };
  int failures = 0;
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const AppendCase &C = cases[ci];
    const int64_t R = int64_t(C.lens.size()), D = C.D;
    std::vector<kvc_codec_params> prm(static_cast<size_t>(R));
    for (int64_t r = 0; r < R; ++r) {
      kvc_codec_params &p = prm[size_t(r)];
      p = caseParams(D, C.KB, C.valueBlock, C.keyRecent, C.valueRecent);
      if (!C.eps.empty()) {
        p.key_error = C.eps[size_t(r)].first;
        p.value_error = C.eps[size_t(r)].second;
      }
    }
    std::vector<std::unique_ptr<Head>> heads, refs;
    std::vector<const kvc_codec_head *> hp, rp;
    for (int64_t r = 0; r < R; ++r) {
      heads.push_back(makeHead(C.lens[size_t(r)], D, 4242 + 31 * ci + r, 0, &prm[size_t(r)]));
      refs.push_back(makeHead(C.lens[size_t(r)], D, 4242 + 31 * ci + r, 0, &prm[size_t(r)]));
      hp.push_back(heads.back()->h);
      rp.push_back(refs.back()->h);
    }
    kvc_fw_appender *A = nullptr;
    const char *err = nullptr;
    if (kvc_fw_appender_create(hp.data(), 1, R, C.maxNew, &A, &err))
      die(std::string("appender: ") + (err ? err : "?"));
    // The device's view: the initial form, then only the reported changes.
    const kvc_fw_host_form *form = kvc_fw_appender_form(A);
    std::vector<std::vector<uint8_t>> shadow(KVC_FW_NUM_BUFFERS);
    for (int i = 0; i < KVC_FW_NUM_BUFFERS; ++i) {
      const uint8_t *p = static_cast<const uint8_t *>(form->data[i]);
      shadow[size_t(i)].assign(p, p + form->len[i] * form->elem_bytes[i]);
    }
    std::mt19937_64 rng(99 + ci);
    std::normal_distribution<float> N(0.f, 1.f);
    std::string bad;
    int64_t total = 0;
    for (size_t step = 0; step < C.chunks.size() && bad.empty(); ++step) {
      const int64_t n = C.chunks[step];
      std::vector<uint16_t> k(size_t(R * n * D)), v(k.size());
      for (size_t i = 0; i < k.size(); ++i) {
        k[i] = toHalfBits(0.3f + 1.5f * N(rng), false);
        v[i] = toHalfBits(0.7f * N(rng), false);
      }
      if (kvc_fw_appender_append(A, k.data(), v.data(), n, &err)) {
        bad = std::string("append failed: ") + (err ? err : "?");
        break;
      }
      total += n;
      int buf = 0;
      int64_t lo = 0, hi = 0;
      const int64_t changes = kvc_fw_appender_changes(A, 0, &buf, &lo, &hi);
      for (int64_t c = 0; c < changes; ++c) {
        kvc_fw_appender_changes(A, c, &buf, &lo, &hi);
        const size_t eb = size_t(form->elem_bytes[buf]);
        std::memcpy(shadow[size_t(buf)].data() + size_t(lo) * eb,
                    static_cast<const uint8_t *>(form->data[buf]) + size_t(lo) * eb,
                    size_t(hi - lo) * eb);
      }
      std::vector<float> kf(size_t(n * D)), vf(kf.size());
      for (int64_t r = 0; r < R; ++r) {
        for (int64_t i = 0; i < n * D; ++i) {
          kf[size_t(i)] = fromHalfBits(k[size_t(r * n * D + i)], false);
          vf[size_t(i)] = fromHalfBits(v[size_t(r * n * D + i)], false);
        }
        CC(kvc_codec_head_append(refs[size_t(r)]->h, kf.data(), vf.data(), uint64_t(n)));
      }
      if ((step + 1) % size_t(C.checkEvery) && step + 1 != C.chunks.size())
        continue;
      ++checks;
      for (int i = 0; i < KVC_FW_NUM_BUFFERS && bad.empty(); ++i)
        if (std::memcmp(shadow[size_t(i)].data(), form->data[i], shadow[size_t(i)].size()))
          bad = "after " + std::to_string(total) + " appended tokens buffer " +
                std::to_string(i) + " differs from its replayed changes (a change not reported, "
                "so not copied to the device)";
      kvc_fw_host_form ref;
      packOrDie(rp, 1, R, &ref);
      for (int64_t r = 0; r < R && bad.empty(); ++r) {
        const int32_t *gi = static_cast<const int32_t *>(form->data[KVC_FW_ROWS]) + 4 * r;
        const int32_t *ri = static_cast<const int32_t *>(ref.data[KVC_FW_ROWS]) + 4 * r;
        if (gi[0] != ri[0] || gi[1] != ri[1]) {
          bad = "row " + std::to_string(r) + " after " + std::to_string(total) +
                " appended tokens: T/Tf " + std::to_string(gi[0]) + "/" + std::to_string(gi[1]) +
                ", the codec's " + std::to_string(ri[0]) + "/" + std::to_string(ri[1]);
          break;
        }
        const size_t T = size_t(ri[0]);
        std::vector<float> gk(T * size_t(D)), gv(gk.size()), rk(gk.size()), rv(gk.size());
        if (T && (kvc_fw_unpack_row(form, r, gk.data(), gv.data(), &err) ||
                  kvc_fw_unpack_row(&ref, r, rk.data(), rv.data(), &err))) {
          bad = std::string("unpack: ") + (err ? err : "?");
          break;
        }
        for (size_t i = 0; i < gk.size() && bad.empty(); ++i) {
          if (bitsOf(gk[i]) != bitsOf(rk[i]) || bitsOf(gv[i]) != bitsOf(rv[i]))
            bad = "row " + std::to_string(r) + " after " + std::to_string(total) +
                  " appended tokens: token " + std::to_string(i / size_t(D)) + " channel " +
                  std::to_string(i % size_t(D)) + " differs from the repacked codec rows";
          ++compared;
        }
      }
      if (bad.empty() && (form->tokens != ref.tokens || form->code_tokens != ref.code_tokens ||
                          form->max_code_tiles != ref.max_code_tiles ||
                          form->max_window_tiles != ref.max_window_tiles))
        bad = "form totals differ from the repacked codec rows";
      kvc_fw_host_free(&ref);
    }
    // The caller's heads are copied, not appended to; refused appends leave it usable.
    if (bad.empty() && kvc_codec_head_num_tokens(hp[0]) != uint64_t(C.lens[0]))
      bad = "the caller's head was appended to";
    if (bad.empty()) {
      const int64_t over = C.maxNew - total + 1;
      std::vector<uint16_t> many(size_t(R * over * D), 0), one(size_t(R * D), 0x7C00u); // +inf
      if (!kvc_fw_appender_append(A, many.data(), many.data(), over, &err) ||
          std::string(err ? err : "").find("reserve") == std::string::npos)
        bad = "appending past the reserve was not refused";
      else if (total < C.maxNew && (!kvc_fw_appender_append(A, one.data(), one.data(), 1, &err) ||
                                    std::string(err ? err : "").find("non-finite") ==
                                        std::string::npos))
        bad = "a non-finite token was not refused";
      else if (total < C.maxNew && kvc_fw_appender_append(A, many.data(), many.data(), 1, &err))
        bad = std::string("a refused append left the appender unusable: ") + (err ? err : "?");
    }
    kvc_fw_appender_free(A);
    failures += !bad.empty();
    printf("  %s appends, %s: %lld tokens appended per row%s%s\n", bad.empty() ? "PASS" : "FAIL",
           C.what, (long long)total, bad.empty() ? "" : ": ", bad.c_str());
  }
  // Error bounds the widths cannot hold are refused when the cache takes appends.
  {
    kvc_codec_params p;
    kvc_codec_default_params(&p, 128);
    p.key_error = 0.01f;
    auto h = makeHead(100, 128, 7, 0, &p);
    const kvc_codec_head *hp[1] = {h->h};
    kvc_fw_appender *A = nullptr;
    const char *err = nullptr;
    const bool ok = kvc_fw_appender_create(hp, 1, 1, 64, &A, &err) == -1 &&
                    std::string(err ? err : "").find("error bound eps = 0.01") != std::string::npos;
    if (A)
      kvc_fw_appender_free(A);
    failures += !ok;
    printf("  %s refused, appendable cache with key eps 0.01: %s\n", ok ? "PASS" : "FAIL",
           err ? err : "created without an error");
  }
  return failures;
}

int cmdSelftest() {
  std::vector<SelfCase> cases = {
      {"T=1", 128, 64, 1, 2, {1, 1}, false},
      {"T=100 (the codec encoded nothing)", 128, 64, 1, 2, {100, 100}, false},
      {"T=128, no codec windows: one whole code tile", 32, 32, 1, 2, {128, 128}, false, 0, 0},
      {"T=300 (values not encoded yet: all window)", 64, 128, 1, 2, {300, 300}, false},
      {"T=300, short codec windows", 64, 128, 1, 2, {300, 300}, false, 16, 16, 32},
      {"T=1000", 256, 64, 1, 2, {1000, 1000}, false},
      {"T=1000, value block 100, no codec windows", 32, 64, 1, 2, {1000, 1000}, false, 0, 0, 100},
      {"T=4097, batch 2 repeating batch 0's heads", 128, 32, 2, 2, {4097, 4097}, true},
      {"T=4097", 64, 32, 1, 2, {4097, 4097}, false},
      {"T=1000 and 4097 (one padding key word per lane)", 96, 128, 1, 2, {1000, 4097}, false},
      {"ragged rows (0, 1, 100, 4097, 1000, 300)", 128, 128, 2, 3, {0, 1, 100, 4097, 1000, 300},
       false},
      {"T=4097, error bounds at the widths' limits (key symbols to 31, values to 15)", 128, 64,
       1, 2, {4097, 4097}, false, -1, -1, -1, true},
  };
  int failures = 0, packFailures = 0;
  uint64_t elements = 0, codeTokens = 0, windowTokens = 0;
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const SelfCase &C = cases[ci];
    kvc_codec_params prm = caseParams(C.D, C.KB, C.valueBlock, C.keyRecent, C.valueRecent);
    if (C.atLimits) {
      prm.key_error = kKeyEpsAtLimit;
      prm.value_error = kValueEpsAtLimit;
    }
    auto heads = makeHeads(C.lens, C.D, 777 + ci, 0, &prm);
    if (C.atLimits) {
      // The case is only worth its name if the symbols do reach the top of each field.
      uint32_t top[2] = {0, 0};
      for (auto &h : heads)
        for (int s = 0; s < 2; ++s) {
          kvc_codec_stream_view sv;
          kvc_codec_huffman_tables tb;
          CC(kvc_codec_head_view(h->h, s, &sv, &tb));
          std::vector<uint16_t> sym(size_t(sv.num_blocks) * sv.block_tokens * size_t(C.D));
          if (!sym.empty())
            CC(kvc_codec_head_decode_symbols(h->h, s, sym.data(), sym.size()));
          for (uint16_t x : sym)
            top[s] = std::max<uint32_t>(top[s], x);
        }
      if (top[0] != KVC_FW_KEY_MAX_SYMBOL || top[1] != KVC_FW_VALUE_MAX_SYMBOL) {
        printf("  FAIL %s: the largest symbols are %u (keys) and %u (values), not %d and %d\n",
               C.what, top[0], top[1], KVC_FW_KEY_MAX_SYMBOL, KVC_FW_VALUE_MAX_SYMBOL);
        ++packFailures;
        continue;
      }
    }
    std::vector<const kvc_codec_head *> hp;
    for (int64_t r = 0; r < C.B * C.Hkv; ++r)
      hp.push_back(heads[size_t(C.shared ? r % C.Hkv : r)]->h);
    kvc_fw_host_form F;
    packOrDie(hp, C.B, C.Hkv, &F);
    const std::string err = checkForm(C, F, hp, elements);
    packFailures += !err.empty();
    codeTokens += F.code_tokens;
    windowTokens += F.tokens - F.code_tokens;
    printf("  %s D=%lld KB=%lld B=%lld Hkv=%lld %s: %llu code tokens, %llu window tokens, max "
           "code tiles %lld, max window tiles %lld%s%s\n",
           err.empty() ? "PASS" : "FAIL", (long long)C.D, (long long)C.KB, (long long)C.B,
           (long long)C.Hkv, C.what, (unsigned long long)F.code_tokens,
           (unsigned long long)(F.tokens - F.code_tokens), (long long)F.max_code_tiles,
           (long long)F.max_window_tiles, err.empty() ? "" : ": ", err.c_str());
    kvc_fw_host_free(&F);
  }

  // Inputs the form cannot hold: -1 and a message naming the problem.
  struct Bad {
    const char *what, *expect;
    int64_t D, KB;
    float keyEps, valueEps;
    int mode; // 0 one row, 1 a second row with key block 32, 2 per-channel keys, 3 no heads
  };
  const std::vector<Bad> bad = {
      {"key eps 0.01", "key symbol", 128, 64, 0.01f, 0.1f, 0},
      {"value eps 0.05", "value symbol", 128, 64, 0.05f, 0.05f, 0},
      {"D = 48", "head dim 48", 48, 64, 0.05f, 0.1f, 0},
      {"D = 288", "head dim 288", 288, 64, 0.05f, 0.1f, 0},
      {"key block 16", "key block 16", 128, 16, 0.05f, 0.1f, 0},
      {"mixed key blocks", "key block 32 tokens differs", 128, 64, 0.05f, 0.1f, 1},
      {"per-channel key groups", "per-channel", 128, 64, 0.05f, 0.1f, 2},
      {"no heads", "no heads", 128, 64, 0.05f, 0.1f, 3},
  };
  int badOk = 0;
  for (const Bad &X : bad) {
    kvc_codec_params prm;
    kvc_codec_default_params(&prm, uint32_t(X.D));
    prm.key_block_tokens = uint32_t(X.KB);
    prm.key_error = X.keyEps;
    prm.value_error = X.valueEps;
    if (X.mode == 2)
      prm.key_grouping = KVC_CODEC_KEY_CHANNEL;
    auto h0 = makeHead(1000, X.D, 5, 0, &prm);
    prm.key_block_tokens = 32;
    auto h1 = makeHead(1000, X.D, 6, 0, &prm);
    std::vector<const kvc_codec_head *> hp = {h0->h, X.mode == 1 ? h1->h : h0->h};
    kvc_fw_host_form F;
    const char *err = nullptr;
    const int rc = kvc_fw_pack(hp.data(), X.mode == 3 ? 0 : 1, 2, &F, &err);
    const std::string msg = err ? err : "";
    const bool ok = rc == -1 && msg.find(X.expect) != std::string::npos;
    badOk += ok;
    failures += !ok;
    printf("  %s refused, %s: %s\n", ok ? "PASS" : "FAIL", X.what,
           rc ? msg.c_str() : "packed without an error");
    if (!rc)
      kvc_fw_host_free(&F);
  }
  int appendChecks = 0;
  uint64_t appendCompared = 0;
  const int appendFailures = appendSelftest(appendChecks, appendCompared);
  printf("fixed-width selftest: %zu/%zu packs checked (%llu code tokens, %llu window tokens, "
         "%llu elements compared with the codec), %d/%zu bad inputs refused, appends: %d "
         "failed (%d checks, %llu elements compared with repacked codec rows)\n",
         cases.size() - size_t(packFailures), cases.size(),
         (unsigned long long)codeTokens, (unsigned long long)windowTokens,
         (unsigned long long)elements, badOk, bad.size(), appendFailures, appendChecks,
         (unsigned long long)appendCompared);
  return failures || packFailures || appendFailures ? 1 : 0;
}

[[noreturn]] void usage() {
  fprintf(usageOut(),
          "usage: kvc-bench fixed-width selftest     (CPU only: packing and unpacking vs the "
          "codec)\n"
          "       kvc-bench fixed-width info IN\n"
          "       kvc-bench fixed-width check IN [--quick] [--seed N] [--tol X]\n"
          "       kvc-bench fixed-width append-check IN [--store STORE] [--quick] [--seed N] "
          "[--tol X]\n"
          "       kvc-bench fixed-width check-npy IN --case DIR [--case DIR ...] [--tol X] "
          "[--splits N] [--store STORE]\n"
          "       kvc-bench fixed-width decode IN [--json F] [--batches 1,8,32] "
          "[--contexts 4096,16384,65536] [--hkv 8] [--reps 30] [--warmup 5] [--splits N] "
          "[--flush dirty|clean] [--settle-ms 100]\n");
  usageExit();
}

// A value outside its range: exit 2, before any device work.
void need(bool ok, const std::string &msg) {
  if (!ok) {
    fprintf(stderr, "%s: %s\n", benchCommand().c_str(), msg.c_str());
    exit(2);
  }
}
} // namespace

int kvcBenchFixedWidth(int argc, char **argv) {
  kvcbench::benchCommand() = "kvc-bench fixed-width";
  if (isSelftest(argc, argv, usage))
    return cmdSelftest();
  CacheCommandLine cl(argv);
  const std::string &cmd = cl.cmd;
  if (cmd != "info" && cmd != "check" && cmd != "check-npy" && cmd != "decode" &&
      cmd != "append-check")
    usage();
  double tol = 1e-2;
  std::string store;
  Options opts(usage);
  cl.bind(opts).f64("--tol", tol).str("--store", store);
  if (!opts.parse(argc, argv, 4).empty())
    usage();
  // --case belongs to check-npy, which needs at least one; --store to append-check and
  // check-npy.
  if ((cmd == "check-npy") != !cl.caseDirs.empty() ||
      (!store.empty() && cmd != "append-check" && cmd != "check-npy"))
    usage();
  need(cl.reps >= 1, "--reps must be at least 1, got " + std::to_string(cl.reps));
  need(cl.splits >= 0,
       "--splits must be non-negative (0: the plan), got " + std::to_string(cl.splits));
  need(cl.warmup >= 0, "--warmup must be non-negative, got " + std::to_string(cl.warmup));
  need(cl.hkv >= 1, "--hkv must be at least 1, got " + std::to_string(cl.hkv));
  need(tol > 0, "--tol must be positive");
  for (int64_t b : cl.batches)
    need(b >= 1, "--batches needs positive batch sizes, got " + std::to_string(b));
  for (int64_t c : cl.contexts)
    need(c >= 1, "--contexts needs positive lengths, got " + std::to_string(c));
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (cmd == "info")
    return cmdInfo(cl.in);
  if (cmd == "check")
    return cmdCheck(cl.in, cl.seed, tol, cl.quick);
  if (cmd == "append-check")
    return cmdAppendCheck(cl.in, store, cl.seed, tol, cl.quick);
  if (cmd == "check-npy")
    return cmdCheckNpy(cl.in, cl.caseDirs, tol, cl.splits, store);
  return cmdDecode(cl.in, cl.json, cl.batches, cl.contexts, cl.warmup, cl.reps, cl.splits,
                   cl.hkv);
}
