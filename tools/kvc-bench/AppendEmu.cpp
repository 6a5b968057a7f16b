//===- AppendEmu.cpp - kvc-append-emu: the append driver without a GPU ------===//
//
//   kvc-append-emu [--quick] [--corrupt none|word|window]
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
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/CUDA.h"

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

int main(int argc, char **argv) {
  std::vector<char *> a = {argv[0], const_cast<char *>("encoded"),
                           const_cast<char *>("append-check"), const_cast<char *>("-emu"),
                           const_cast<char *>("-emu")};
  for (int i = 1; i < argc; ++i)
    a.push_back(argv[i]);
  return kvcBenchAppend(int(a.size()), a.data());
}
