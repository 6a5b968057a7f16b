//===- AppendEmu.cpp - kvc-append-emu: the append driver without a GPU ------===//
//
//   kvc-append-emu [--quick] [--corrupt none|word|window]
//   kvc-append-emu --fixed-width
//
// Runs `kvc-bench encoded append-check` (Append.cpp) against an emulated device: the kvc_cuda_*
// driver API of include/kvc/Runtime/CUDA.h on host memory, and the store kernels
// (StoreKernelGen.h's ABI: jobs, encode tables, atomic `top`, statuses 0/1/2) emulated on the
// CPU with the codec's own quantizer. What it tests is the host driver of
// lib/Runtime/CUDA/CUDAEncoded.cpp: the reserved layout, the precomputed row tables and store
// jobs, the window copies, the status handling and the growth of the word buffers, compared
// bit for bit with kvc_encoded_pack of CPU codec heads after the same appends. It does not
// test the store kernels' code (the GPU check does) and runs no decode kernel.
//
// --fixed-width does the same for the fixed-width form's GPU appends (kvc_cuda_fw_gpu_append,
// lib/Runtime/CUDA/CUDAFixedWidth.cpp): its store kernels (StoreKernelGen.h's fixed-width ABI:
// 8-int jobs, in-place window rewrite, fragment-order words) are emulated here, and after the
// same tokens the device form must equal the host appender's (kvc_fw_appender_append, checked
// against the codec by `kvc-bench fixed-width selftest`) in every part the decode kernels read
// (FixedWidthAppend.h). Also: a non-finite token is reported when its block is cut, and
// unsupported value blocks are refused.
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/CUDA.h"
#include "kvc/Runtime/CUDAFixedWidth.h"
#include "FixedWidthAppend.h"
#include "SyntheticHeads.h"

#include "../../lib/Runtime/Codec/Half.h"
#include "../../lib/Runtime/Codec/Quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

int kvcBenchAppend(int argc, char **argv);

namespace {
std::string lastErr = "no error";

// A store kernel "function": its specialisation, parsed from the name.
struct EmuKernel {
  int values;
  int64_t D, KB, VB;
  bool fixedWidth = false;
};
std::vector<EmuKernel *> kernels;

struct M {
  uint8_t *p;
  int64_t size;
};
M memref(void **params, int i) {
  return {reinterpret_cast<uint8_t *>(*static_cast<uint64_t *>(params[5 * i + 1])),
          *static_cast<int64_t *>(params[5 * i + 3])};
}

void emuStore(const EmuKernel &k, unsigned njobs, void **params) {
  const M src = memref(params, 0), jobs = memref(params, 1), enc = memref(params, 2),
          words = memref(params, 3), top = memref(params, 4), bo = memref(params, 5),
          vo = memref(params, 6), mins = memref(params, 7), steps = memref(params, 8),
          res = memref(params, 9);
  const float eps = *static_cast<float *>(params[50]);
  const uint32_t maxsym = uint32_t(*static_cast<int32_t *>(params[51]));
  const int64_t cap = *static_cast<int32_t *>(params[52]);
  const int64_t D = k.D, BT = k.values ? k.VB : k.KB, n = BT * D;
  const int64_t P = k.values ? BT : 1, vecs = k.values ? D : BT, per = k.values ? BT : D;
  auto I32 = [](const M &m) { return reinterpret_cast<int32_t *>(m.p); };
  auto F32 = [](const M &m) { return reinterpret_cast<float *>(m.p); };
  for (unsigned j = 0; j < njobs; ++j) {
    const int32_t *job = I32(jobs) + 4 * j;
    int32_t *r = I32(res) + 4 * j;
    const int64_t off = job[0], gb = job[1], tab = job[2];
    if (off < 0 || off + n > src.size || tab < 0 || gb < 0 || (gb + 1) * vecs > vo.size ||
        (gb + 1) * P > mins.size || gb >= bo.size)
      lastErr = "emulated store kernel: out-of-bounds job", exit(3);
    const uint16_t *x16 = reinterpret_cast<const uint16_t *>(src.p) + off;
    std::vector<float> x(static_cast<size_t>(n));
    bool finite = true;
    for (int64_t i = 0; i < n; ++i) {
      finite &= kvc::codec::halfIsFinite(x16[i]);
      x[size_t(i)] = kvc::codec::halfToFloat(x16[i]);
    }
    if (!finite) {
      r[0] = -1, r[1] = 0, r[2] = 0, r[3] = 1;
      continue;
    }
    std::vector<kvc::codec::GroupParams> g(static_cast<size_t>(P));
    for (int64_t q = 0; q < P; ++q) {
      float lo = std::numeric_limits<float>::infinity(), hi = -lo;
      const int64_t b = k.values ? q * D : 0, e = k.values ? (q + 1) * D : n;
      for (int64_t i = b; i < e; ++i) {
        lo = std::min(lo, x[size_t(i)]);
        hi = std::max(hi, x[size_t(i)]);
      }
      g[size_t(q)] = kvc::codec::groupParams(lo, hi, eps);
    }
    // Bits of every vector (keys: token rows; values: channel columns).
    std::vector<uint32_t> codes, lens;
    std::vector<uint32_t> vbits(static_cast<size_t>(vecs));
    uint64_t bits = 0;
    for (int64_t v = 0; v < vecs; ++v) {
      vbits[size_t(v)] = uint32_t(bits);
      for (int64_t s = 0; s < per; ++s) {
        const int64_t t = k.values ? s : v, c = k.values ? v : s;
        const uint32_t sym = kvc::codec::quantize(x[size_t(t * D + c)], g[size_t(k.values ? t : 0)], maxsym);
        const int32_t *e = reinterpret_cast<const int32_t *>(enc.p) + tab + 2 * int64_t(sym);
        codes.push_back(uint32_t(e[0]));
        lens.push_back(uint32_t(e[1]));
        bits += uint32_t(e[1]);
      }
    }
    const int64_t nw = int64_t((bits + 31) / 32);
    int32_t &t0 = *I32(top);
    if (t0 + nw + 4 > cap) {
      t0 += int32_t(nw);
      r[0] = -1, r[1] = int32_t(nw), r[2] = int32_t(bits), r[3] = 2;
      continue;
    }
    const int64_t w0 = t0;
    t0 += int32_t(nw);
    uint32_t *w = reinterpret_cast<uint32_t *>(words.p) + w0;
    std::fill(w, w + nw, 0u);
    uint64_t pos = 0;
    for (size_t i = 0; i < codes.size(); ++i)
      for (int b = int(lens[i]) - 1; b >= 0; --b, ++pos)
        w[pos >> 5] |= ((codes[i] >> b) & 1u) << (31 - (pos & 31));
    I32(bo)[gb] = int32_t(w0);
    for (int64_t v = 0; v < vecs; ++v)
      I32(vo)[gb * vecs + v] = int32_t(vbits[size_t(v)]);
    for (int64_t q = 0; q < P; ++q) {
      F32(mins)[gb * P + q] = g[size_t(q)].min;
      F32(steps)[gb * P + q] = g[size_t(q)].step;
    }
    r[0] = int32_t(w0), r[1] = int32_t(nw), r[2] = int32_t(bits), r[3] = 0;
  }
}

// The fixed-width store kernels (StoreKernelGen.h): one job = a key block or 16 value tokens.
void emuFwStore(const EmuKernel &k, unsigned njobs, void **params) {
  const M rec = memref(params, 0), jobs = memref(params, 1), words = memref(params, 2),
          mins = memref(params, 3), steps = memref(params, 4), res = memref(params, 5);
  const int64_t D = k.D, NT = k.values ? 16 : k.KB, n = NT * D, groups = k.values ? NT : 1;
  const int64_t U = k.values ? D / 32 : (D / 8 + D / 32 + 3) / 4;
  auto oob = [] {
    lastErr = "emulated fixed-width store kernel: out-of-bounds job";
    fprintf(stderr, "%s\n", lastErr.c_str());
    exit(3);
  };
  uint16_t *x16all = reinterpret_cast<uint16_t *>(rec.p);
  uint32_t *w32 = reinterpret_cast<uint32_t *>(words.p);
  for (unsigned j = 0; j < njobs; ++j) {
    const int32_t *f = reinterpret_cast<const int32_t *>(jobs.p) + 8 * j;
    const int64_t off = int64_t(f[0]) * D, wofs = f[1] < 0 ? -1 : int64_t(f[1]) * U * 128,
                  pidx = f[2], kk = f[5];
    float eps;
    std::memcpy(&eps, &f[3], 4);
    const uint32_t maxsym = uint32_t(f[4]);
    if (off < 0 || off + n > rec.size || (pidx >= 0 && pidx + groups > mins.size))
      oob();
    uint16_t *x16 = x16all + off;
    bool finite = true;
    for (int64_t i = 0; i < n; ++i)
      finite &= kvc::codec::halfIsFinite(x16[i]);
    reinterpret_cast<int32_t *>(res.p)[j] = finite ? 0 : 1;
    if (!finite)
      continue;
    std::vector<uint32_t> sym(static_cast<size_t>(n));
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t b = k.values ? g * D : 0, e = k.values ? (g + 1) * D : n;
      float lo = std::numeric_limits<float>::infinity(), hi = -lo;
      for (int64_t i = b; i < e; ++i) {
        lo = std::min(lo, kvc::codec::halfToFloat(x16[i]));
        hi = std::max(hi, kvc::codec::halfToFloat(x16[i]));
      }
      const kvc::codec::GroupParams gp = kvc::codec::groupParams(lo, hi, eps);
      for (int64_t i = b; i < e; ++i) {
        sym[size_t(i)] = kvc::codec::quantize(kvc::codec::halfToFloat(x16[i]), gp, maxsym);
        x16[i] = kvc::codec::floatToHalf(kvc::codec::dequantize(sym[size_t(i)], gp.min, gp.step));
      }
      if (pidx >= 0) {
        reinterpret_cast<float *>(mins.p)[pidx + g] = gp.min;
        reinterpret_cast<float *>(steps.p)[pidx + g] = gp.step;
      }
    }
    if (wofs < 0)
      continue;
    auto put = [&](int64_t at, uint32_t w) {
      if (at < 0 || at >= words.size)
        oob();
      w32[at] = w;
    };
    // Element (i, h) of lane l's fragment register i: row gid + 8(i%2), column
    // 2tg + h + 8(i/2) (gid = l/4, tg = l%4); nibble at 4i + 16h.
    for (int64_t l = 0; l < 32; ++l) {
      const int64_t gid = l / 4, tg = l % 4;
      if (k.values) {
        for (int64_t mt = 0; mt < D / 16; ++mt) {
          uint32_t w = 0;
          for (int i = 0; i < 4; ++i)
            for (int h = 0; h < 2; ++h) {
              const int64_t ch = 16 * mt + gid + 8 * (i % 2), tok = 2 * tg + h + 8 * (i / 2);
              w |= (sym[size_t(tok * D + ch)] & 15u) << (4 * i + 16 * h);
            }
          const int64_t jj = kk * (D / 16) + mt;
          put(wofs + jj / 4 * 128 + 4 * l + jj % 4, w);
        }
        continue;
      }
      for (int64_t wu = 0; wu < k.KB / 32; ++wu)
        for (int64_t jj = 0; jj < 4 * U; ++jj) {
          auto elem = [&](int64_t frag, int i, int h) {
            const int64_t kq = frag / 2, mt = frag % 2;
            const int64_t tok = wu * 32 + 16 * mt + gid + 8 * (i % 2),
                          ch = 16 * kq + 2 * tg + h + 8 * (i / 2);
            return sym[size_t(tok * D + ch)];
          };
          uint32_t w = 0;
          if (jj < D / 8) {
            for (int i = 0; i < 4; ++i)
              for (int h = 0; h < 2; ++h)
                w |= (elem(jj, i, h) & 15u) << (4 * i + 16 * h);
          } else if (jj < D / 8 + D / 32) {
            const int64_t pl = jj - D / 8;
            for (int fr = 0; fr < 4; ++fr)
              for (int i = 0; i < 4; ++i)
                for (int h = 0; h < 2; ++h)
                  w |= ((elem(4 * pl + fr, i, h) >> 4) & 1u) << (4 * fr + i + 16 * h);
          }
          put(wofs + wu * U * 128 + jj / 4 * 128 + 4 * l + jj % 4, w);
        }
    }
  }
}

// The fixed-width tokens kernel: grid (n, rows); both streams' new tokens into the windows,
// the row table when asked.
void emuFwTokens(const EmuKernel &k, unsigned blocks, void **params) {
  const M kn = memref(params, 0), vn = memref(params, 1), krec = memref(params, 2),
          vrec = memref(params, 3), rowsBuf = memref(params, 4), table = memref(params, 5);
  const int64_t nn = *static_cast<int64_t *>(params[30]), off = *static_cast<int64_t *>(params[31]),
                stride = *static_cast<int64_t *>(params[32]),
                copyRows = *static_cast<int64_t *>(params[33]), D = k.D;
  if (nn < 1 || blocks % uint64_t(nn)) {
    fprintf(stderr, "emulated fixed-width tokens kernel: grid %u is not rows * n (n = %lld)\n",
            blocks, (long long)nn);
    exit(3);
  }
  const unsigned n = unsigned(nn), rows = blocks / n;
  if (int64_t(rows) * n * D > kn.size ||
      off + (int64_t(rows) - 1) * stride + int64_t(n) * D > krec.size ||
      (copyRows && (int64_t(rows) * 4 > table.size || int64_t(rows) * 4 > rowsBuf.size))) {
    fprintf(stderr, "emulated fixed-width tokens kernel: out-of-bounds launch\n");
    exit(3);
  }
  for (int64_t r = 0; r < int64_t(rows); ++r)
    for (int64_t i = 0; i < int64_t(n) * D; ++i) {
      reinterpret_cast<uint16_t *>(krec.p)[off + r * stride + i] =
          reinterpret_cast<const uint16_t *>(kn.p)[r * n * D + i];
      reinterpret_cast<uint16_t *>(vrec.p)[off + r * stride + i] =
          reinterpret_cast<const uint16_t *>(vn.p)[r * n * D + i];
    }
  if (copyRows)
    std::memcpy(rowsBuf.p, table.p, size_t(rows) * 16);
}
} // namespace

// ---- the driver API on host memory (CUDA.h) ----
extern "C" {
const char *kvc_cuda_last_error(void) { return lastErr.c_str(); }
void kvc_cuda_set_last_error(const char *m) { lastErr = m ? m : ""; }
int kvc_cuda_init(int) { return 0; }
int kvc_cuda_device_info(char *name, size_t len, int *sms, int *l2, int *ccM, int *ccm) {
  if (name && len)
    snprintf(name, len, "emulated device (host memory, CPU store kernels)");
  if (sms)
    *sms = 1;
  if (l2)
    *l2 = 1 << 20;
  if (ccM)
    *ccM = 0;
  if (ccm)
    *ccm = 0;
  return 0;
}
int kvc_cuda_module_load(const void *, kvc_cuda_module *out) {
  *out = reinterpret_cast<kvc_cuda_module>(&kernels);
  return 0;
}
int kvc_cuda_module_unload(kvc_cuda_module) { return 0; }
int kvc_cuda_module_get_function(kvc_cuda_module, const char *name, kvc_cuda_function *out) {
  std::string s(name);
  size_t p = s.rfind("_d");
  int D, KB, VB;
  char et[8], gr[8], kind[8];
  if (p != std::string::npos &&
      sscanf(s.c_str() + p, "_d%d_kb%d_fw_%7[a-z]", &D, &KB, kind) == 3) {
    const std::string k(kind);
    kernels.push_back(new EmuKernel{k == "vstore" ? 1 : k == "tokens" ? 2 : 0, D, KB, 0, true});
    *out = reinterpret_cast<kvc_cuda_function>(kernels.back());
    return 0;
  }
  if (p == std::string::npos ||
      sscanf(s.c_str() + p, "_d%d_kb%d_vb%d_%7[a-z0-9]_%7[a-z]_%7[a-z]", &D, &KB, &VB, et, gr,
             kind) != 6 ||
      std::string(et) != "f16" || std::string(gr) != "kblk") {
    lastErr = "emulated module has no function " + s;
    return 500;
  }
  kernels.push_back(new EmuKernel{std::string(kind) == "vstore", D, KB, VB});
  *out = reinterpret_cast<kvc_cuda_function>(kernels.back());
  return 0;
}
int kvc_cuda_function_info(kvc_cuda_function, int *regs, int *smem) {
  *regs = 0, *smem = 0;
  return 0;
}
int kvc_cuda_function_max_threads(kvc_cuda_function, int *threads) {
  *threads = 1024;
  return 0;
}
int kvc_cuda_occupancy(kvc_cuda_function, int, size_t, int *ctas) {
  *ctas = 1;
  return 0;
}
int kvc_cuda_malloc(kvc_cuda_ptr *out, size_t bytes) {
  void *p = std::calloc(1, std::max<size_t>(bytes, 1));
  if (!p) {
    lastErr = "out of memory";
    return 2;
  }
  std::memset(p, 0xCD, bytes); // like uninitialised device memory
  *out = reinterpret_cast<kvc_cuda_ptr>(p);
  return 0;
}
int kvc_cuda_free(kvc_cuda_ptr p) {
  std::free(reinterpret_cast<void *>(p));
  return 0;
}
int kvc_cuda_memcpy_htod(kvc_cuda_ptr dst, const void *src, size_t bytes) {
  std::memcpy(reinterpret_cast<void *>(dst), src, bytes);
  return 0;
}
int kvc_cuda_memcpy_dtoh(void *dst, kvc_cuda_ptr src, size_t bytes) {
  std::memcpy(dst, reinterpret_cast<void *>(src), bytes);
  return 0;
}
int kvc_cuda_memcpy_dtod_async(kvc_cuda_ptr dst, kvc_cuda_ptr src, size_t bytes, kvc_cuda_stream) {
  std::memmove(reinterpret_cast<void *>(dst), reinterpret_cast<void *>(src), bytes);
  return 0;
}
int kvc_cuda_memcpy2d_dtod_async(kvc_cuda_ptr dst, size_t dpitch, kvc_cuda_ptr src, size_t spitch,
                                 size_t width, size_t height, kvc_cuda_stream) {
  for (size_t r = 0; r < height; ++r)
    std::memmove(reinterpret_cast<char *>(dst) + r * dpitch,
                 reinterpret_cast<const char *>(src) + r * spitch, width);
  return 0;
}
int kvc_cuda_memset_d8_async(kvc_cuda_ptr dst, unsigned char v, size_t bytes, kvc_cuda_stream) {
  std::memset(reinterpret_cast<void *>(dst), v, bytes);
  return 0;
}
int kvc_cuda_memset_d32_async(kvc_cuda_ptr dst, unsigned v, size_t count, kvc_cuda_stream) {
  std::fill_n(reinterpret_cast<uint32_t *>(dst), count, uint32_t(v));
  return 0;
}
int kvc_cuda_launch(kvc_cuda_function f, unsigned gx, unsigned, unsigned, unsigned, unsigned,
                    unsigned, unsigned, kvc_cuda_stream, void **params) {
  for (EmuKernel *k : kernels)
    if (reinterpret_cast<kvc_cuda_function>(k) == f) {
      if (k->fixedWidth && k->values == 2)
        emuFwTokens(*k, gx, params);
      else if (k->fixedWidth)
        emuFwStore(*k, gx, params);
      else
        emuStore(*k, gx, params);
      return 0;
    }
  lastErr = "emulated launch of an unknown kernel";
  return 98;
}
int kvc_cuda_stream_create(kvc_cuda_stream *out) {
  *out = nullptr;
  return 0;
}
int kvc_cuda_stream_destroy(kvc_cuda_stream) { return 0; }
int kvc_cuda_stream_synchronize(kvc_cuda_stream) { return 0; }
int kvc_cuda_synchronize(void) { return 0; }
int kvc_cuda_event_create(kvc_cuda_event *out) {
  *out = nullptr;
  return 0;
}
int kvc_cuda_event_destroy(kvc_cuda_event) { return 0; }
int kvc_cuda_event_record(kvc_cuda_event, kvc_cuda_stream) { return 0; }
int kvc_cuda_event_elapsed_ms(float *ms, kvc_cuda_event, kvc_cuda_event) {
  *ms = 0;
  return 0;
}
}

namespace {
// kvc-append-emu --fixed-width: GPU appends (emulated) against the host appender.
int fixedWidthEmu() {
  using namespace kvcbench;
  struct Case {
    const char *what;
    int64_t D, KB, B, Hkv;
    std::vector<int64_t> lens;
    int valueBlock, keyRecent, valueRecent;
    std::vector<std::pair<float, float>> eps; // per row, or empty: the defaults
    int steps, chunk;
    int64_t badRow = -1; // a row that gets an infinite key at step 10
  };
  const std::vector<Case> cases = {
      {"D=64 KB=32, rows of 0, 5, 300, 1000 tokens", 64, 32, 2, 2, {0, 5, 300, 1000}, -1, -1, -1,
       {}, 420, 100},
      {"D=128 KB=64, 6 rows of 700, value block 64, no key window, mixed error bounds", 128, 64,
       2, 3, std::vector<int64_t>(6, 700), 64, 0, 32,
       {{0.04f, 0.07f}, {0.05f, 0.1f}, {0.1f, 0.1f}, {0.0318f, 0.0646f}, {0.05f, 0.1f},
        {0.2f, 0.3f}}, 300, 77},
      {"D=256 KB=128, rows of 129, 2000 tokens, value block 16", 256, 128, 1, 2, {129, 2000}, 16,
       -1, -1, {}, 300, 129},
      {"D=32 KB=64, an infinite key in row 1", 32, 64, 1, 2, {200, 300}, -1, 0, -1, {}, 200, 0,
       1}};
  int failures = 0, checks = 0;
  uint64_t bytes = 0;
  kvc_cuda_module m = nullptr;
  kvc_cuda_module_load("", &m);
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const Case &C = cases[ci];
    const int64_t R = C.B * C.Hkv, D = C.D, maxNew = C.steps + C.chunk;
    std::vector<std::unique_ptr<Head>> heads;
    std::vector<const kvc_codec_head *> hp;
    for (int64_t r = 0; r < R; ++r) {
      kvc_codec_params p;
      kvc_codec_default_params(&p, uint32_t(D));
      p.key_block_tokens = uint32_t(C.KB);
      if (C.valueBlock >= 0)
        p.value_block_tokens = uint32_t(C.valueBlock);
      if (C.keyRecent >= 0)
        p.key_recent_tokens = uint32_t(C.keyRecent);
      if (C.valueRecent >= 0)
        p.value_recent_tokens = uint32_t(C.valueRecent);
      if (!C.eps.empty()) {
        p.key_error = C.eps[size_t(r)].first;
        p.value_error = C.eps[size_t(r)].second;
      }
      heads.push_back(makeHead(C.lens[size_t(r)], D, 977 + 13 * ci + r, 0, &p));
      hp.push_back(heads.back()->h);
    }
    const char *err = nullptr;
    kvc_fw_appender *ref = nullptr;
    FwGpuCache gc;
    kvc_fw_store_kernels sk{};
    std::string ptx;
    for (const char *kind : {"kstore", "vstore", "tokens"})
      ptx += ".entry kvc_store_d" + std::to_string(D) + "_kb" + std::to_string(C.KB) + "_fw_" +
             kind + "(\n";
    std::string why = gc.init(hp.data(), C.B, C.Hkv, maxNew);
    if (why.empty() && (kvc_fw_appender_create(hp.data(), C.B, C.Hkv, maxNew, &ref, &err) ||
                        kvc_cuda_fw_store_kernels_find(m, ptx.c_str(), D, C.KB, &sk, &err)))
      why = err ? err : "?";
    if (!why.empty()) {
      printf("FAIL %s: %s\n", C.what, why.c_str());
      ++failures;
      if (ref)
        kvc_fw_appender_free(ref);
      continue;
    }
    kvc_cuda_fw_cache &cache = gc.cache;
    kvc_fw_gpu_appender *G = gc.gpu;
    std::mt19937 rng(uint32_t(31 + ci));
    std::normal_distribution<float> N(0.f, 1.f);
    kvc_cuda_ptr dk = 0, dv = 0;
    kvc_cuda_malloc(&dk, size_t(R * std::max(C.chunk, 1) * D) * 2);
    kvc_cuda_malloc(&dv, size_t(R * std::max(C.chunk, 1) * D) * 2);
    std::string bad;
    int caseChecks = 0;
    for (int step = 1; step <= C.steps + (C.chunk > 0); ++step) {
      const int64_t n = step <= C.steps ? 1 : C.chunk;
      std::vector<uint16_t> k(size_t(R * n * D)), v(k.size());
      for (size_t i = 0; i < k.size(); ++i) {
        k[i] = toHalfBits(0.3f + 1.5f * N(rng), false);
        v[i] = toHalfBits(0.7f * N(rng), false);
      }
      if (C.badRow >= 0 && step == 10)
        k[size_t(C.badRow * n * D + 3)] = 0x7C00; // +inf
      kvc_cuda_memcpy_htod(dk, k.data(), k.size() * 2);
      kvc_cuda_memcpy_htod(dv, v.data(), v.size() * 2);
      // Checked and unchecked appends alternate (the row table goes with the tokens kernel in
      // unchecked ones, after the statuses in checked ones).
      if (kvc_cuda_fw_gpu_append(G, &cache, &sk, dk, dv, n, nullptr,
                                 step % 2 || C.badRow >= 0 ? KVC_FW_APPEND_CHECK : 0, &err)) {
        bad = err ? err : "?";
        break;
      }
      if (C.badRow >= 0)
        continue; // the host codec refuses the token; only the GPU side runs
      if (kvc_fw_appender_append(ref, k.data(), v.data(), n, &err)) {
        bad = std::string("reference: ") + (err ? err : "?");
        break;
      }
      if (step % 25 && step < C.steps)
        continue;
      ++caseChecks;
      bad = fwLiveDiff(*kvc_fw_appender_form(ref), cache, &bytes);
      if (!bad.empty()) {
        bad = "after " + std::to_string(step) + " appends: " + bad;
        break;
      }
    }
    bool ok;
    if (C.badRow >= 0) {
      ok = bad.find("row " + std::to_string(C.badRow) + ": key tokens") != std::string::npos &&
           bad.find("non-finite") != std::string::npos;
      printf("%s %s: %s\n", ok ? "PASS" : "FAIL", C.what,
             bad.empty() ? "no error reported" : bad.c_str());
    } else {
      ok = bad.empty();
      printf("%s %s: %d checkpoints, code tokens %llu of %llu%s%s\n", ok ? "PASS" : "FAIL",
             C.what, caseChecks, (unsigned long long)cache.code_tokens,
             (unsigned long long)cache.tokens, ok ? "" : ": ", bad.c_str());
    }
    failures += !ok;
    checks += caseChecks;
    kvc_fw_appender_free(ref);
    kvc_cuda_free(dk);
    kvc_cuda_free(dv);
  }
  // Refused: a value block that is not a multiple of 16 tokens.
  {
    kvc_codec_params p;
    kvc_codec_default_params(&p, 64);
    p.key_block_tokens = 64;
    p.value_block_tokens = 24;
    auto h = makeHead(500, 64, 5, 0, &p);
    const kvc_codec_head *hp = h->h;
    kvc_fw_appender *a = nullptr;
    kvc_cuda_fw_cache cache;
    kvc_fw_gpu_appender *G = nullptr;
    const char *err = nullptr;
    const bool made = !kvc_fw_appender_create(&hp, 1, 1, 100, &a, &err) &&
                      !kvc_cuda_fw_upload_appendable(a, &cache, &err);
    const int rc = made ? kvc_cuda_fw_gpu_appender_create(a, &cache, &G, &err) : -1;
    const bool ok = made && rc && err && std::string(err).find("multiple of 16") !=
                                              std::string::npos;
    printf("%s refused, value block of 24 tokens: %s\n", ok ? "PASS" : "FAIL",
           err ? err : "created");
    failures += !ok;
    if (G)
      kvc_fw_gpu_appender_free(G);
    if (made)
      kvc_cuda_fw_free(&cache);
    if (a)
      kvc_fw_appender_free(a);
  }
  printf("kvc-append-emu --fixed-width: %d failed (%d checkpoints, %llu bytes compared with the "
         "host appender)\n",
         failures, checks, (unsigned long long)bytes);
  return failures ? 1 : 0;
}
} // namespace

int main(int argc, char **argv) {
  if (argc == 2 && std::string(argv[1]) == "--fixed-width")
    return fixedWidthEmu();
  std::vector<char *> a = {argv[0], const_cast<char *>("encoded"),
                           const_cast<char *>("append-check"), const_cast<char *>("-emu"),
                           const_cast<char *>("-emu")};
  for (int i = 1; i < argc; ++i)
    a.push_back(argv[i]);
  return kvcBenchAppend(int(a.size()), a.data());
}
