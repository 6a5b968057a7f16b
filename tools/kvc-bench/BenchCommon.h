//===- BenchCommon.h - what kvc-bench's subcommands share -------------*- C++ -*-===//
//
// kvc-bench (kvc-bench.cpp, Encoded.cpp, FixedWidth.cpp, Store.cpp, Append.cpp) and
// kvc-append-emu: error exits naming the subcommand, CUDA/codec call checks, reading PTX (a
// .ptx file or the gpu.binary of a kvc-gpu-pipeline .mlir), fp16/bf16 bit conversions, list
// options, CUDA-event timing with an L2 flush and the timing commands' JSON heads.
// Header-only, so kvc-append-emu (no CUDA) links only what it uses.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_TOOLS_KVC_BENCH_BENCHCOMMON_H
#define KVC_TOOLS_KVC_BENCH_BENCHCOMMON_H

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
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace kvcbench {

/// The subcommand named in error messages ("kvc-bench", "kvc-bench encoded", ...).
inline std::string &benchCommand() {
  static std::string name = "kvc-bench";
  return name;
}

[[noreturn]] inline void die(const std::string &msg) {
  fprintf(stderr, "%s: %s\n", benchCommand().c_str(), msg.c_str());
  exit(1);
}

} // namespace kvcbench

#define CK(call)                                                                                \
  do {                                                                                          \
    if (int rc_ = (call))                                                                       \
      ::kvcbench::die(std::string(#call) + " failed (" + std::to_string(rc_) +                  \
                      "): " + kvc_cuda_last_error());                                           \
  } while (0)
#define CC(call)                                                                                \
  do {                                                                                          \
    if (int rc_ = (call))                                                                       \
      ::kvcbench::die(std::string(#call) + " failed (" + std::to_string(rc_) +                  \
                      "): " + kvc_codec_last_error());                                          \
  } while (0)

namespace kvcbench {

inline std::string readFile(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    die("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::string extractPTX(const std::string &text) {
  if (text.find(".entry") != std::string::npos && text.find("gpu.binary") == std::string::npos)
    return text; // already PTX
  size_t p = text.find("assembly = \"");
  if (p == std::string::npos)
    die("no gpu.binary with `assembly = \"...\"` (run kvc-gpu-pipeline with format=isa)");
  p += 12;
  std::string out;
  for (; p < text.size() && text[p] != '"'; ++p) {
    if (text[p] == '\\' && p + 1 < text.size()) {
      char c = text[p + 1];
      if (c == '\\' || c == '"') {
        out += c;
        ++p;
      } else if (c == 'n') {
        out += '\n';
        ++p;
      } else if (c == 't') {
        out += '\t';
        ++p;
      } else {
        out += char(std::stoi(text.substr(p + 1, 2), nullptr, 16));
        p += 2;
      }
    } else {
      out += text[p];
    }
  }
  return out;
}

inline std::vector<std::string> kernelNames(const std::string &ptx) {
  std::vector<std::string> names;
  size_t p = 0;
  while ((p = ptx.find(".entry ", p)) != std::string::npos) {
    p += 7;
    size_t e = ptx.find_first_of("( \n", p);
    names.push_back(ptx.substr(p, e - p));
  }
  return names;
}

inline uint16_t toHalfBits(float f, bool bf16) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if (bf16) {
    uint32_t r = x + 0x7FFF + ((x >> 16) & 1);
    return uint16_t(r >> 16);
  }
  // f16, round to nearest even (inputs are in the normal range here)
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = int32_t((x >> 23) & 0xFF) - 127 + 15;
  uint32_t mant = x & 0x7FFFFF;
  if (exp <= 0)
    return uint16_t(sign);
  if (exp >= 31)
    return uint16_t(sign | 0x7C00);
  uint32_t h = sign | (uint32_t(exp) << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1FFF;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
    ++h;
  return uint16_t(h);
}

inline float fromHalfBits(uint16_t h, bool bf16) {
  if (bf16) {
    uint32_t x = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &x, 4);
    return f;
  }
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  uint32_t x;
  if (exp == 0) {
    float f = std::ldexp(float(mant), -24);
    return sign ? -f : f;
  }
  if (exp == 31)
    x = sign | 0x7F800000 | (mant << 13);
  else
    x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

inline std::vector<int64_t> parseList(const std::string &s) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ','))
    v.push_back(std::stoll(x));
  return v;
}

// ----------------------------------------------------------------------------- .npy
// A minimal .npy reader: little-endian float32 ('<f4') or int64 ('<i8'), C order.
struct Npy {
  std::vector<int64_t> shape;
  std::vector<float> f32;
  std::vector<int64_t> i64;
};
inline Npy readNpy(const std::string &path) {
  std::string raw = readFile(path);
  auto bad = [&](const std::string &why) -> Npy { die(path + ": " + why); };
  if (raw.size() < 10 || raw.compare(0, 6, "\x93NUMPY") != 0)
    return bad("not a .npy file");
  const int major = uint8_t(raw[6]);
  size_t hlen, off;
  if (major == 1) {
    hlen = uint8_t(raw[8]) | (size_t(uint8_t(raw[9])) << 8);
    off = 10;
  } else {
    if (raw.size() < 12)
      return bad("truncated header");
    hlen = uint8_t(raw[8]) | (size_t(uint8_t(raw[9])) << 8) | (size_t(uint8_t(raw[10])) << 16) |
           (size_t(uint8_t(raw[11])) << 24);
    off = 12;
  }
  if (raw.size() < off + hlen)
    return bad("truncated header");
  std::string h = raw.substr(off, hlen);
  Npy n;
  const bool isF32 = h.find("'<f4'") != std::string::npos;
  const bool isI64 = h.find("'<i8'") != std::string::npos;
  if (!isF32 && !isI64)
    return bad("dtype must be float32 ('<f4') or int64 ('<i8'): " + h);
  if (h.find("'fortran_order': False") == std::string::npos)
    return bad("Fortran-ordered arrays are not supported");
  size_t sp = h.find("'shape': (");
  if (sp == std::string::npos)
    return bad("no shape in header");
  size_t se = h.find(')', sp);
  std::stringstream ss(h.substr(sp + 10, se - sp - 10));
  std::string tok;
  int64_t count = 1;
  while (std::getline(ss, tok, ','))
    if (tok.find_first_not_of(' ') != std::string::npos) {
      n.shape.push_back(std::stoll(tok));
      count *= n.shape.back();
    }
  const size_t bytes = size_t(count) * (isF32 ? 4 : 8);
  if (raw.size() < off + hlen + bytes)
    return bad("truncated data");
  if (isF32) {
    n.f32.resize(count);
    std::memcpy(n.f32.data(), raw.data() + off + hlen, bytes);
  } else {
    n.i64.resize(count);
    std::memcpy(n.i64.data(), raw.data() + off + hlen, bytes);
  }
  return n;
}

// ----------------------------------------------------------------------------- device
/// The GPU the subcommands run on (kvc_cuda_init(0) first): "<name> (sm_<cc>)", SMs, L2 bytes.
struct DeviceInfo {
  std::string name;
  int sms = 0, l2 = 0;
};
inline DeviceInfo initDevice() {
  CK(kvc_cuda_init(0));
  DeviceInfo d;
  char name[256];
  int ccM = 0, ccm = 0;
  CK(kvc_cuda_device_info(name, sizeof name, &d.sms, &d.l2, &ccM, &ccm));
  d.name = std::string(name) + " (sm_" + std::to_string(ccM) + std::to_string(ccm) + ")";
  return d;
}

/// Whether `s` ends with `suffix`.
inline bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// The encoded-cache decode kernels (<tag>..._enc[_mma|_ov|_ms..]_split/_merge) of a loaded
/// module.
struct EncodedVariant {
  std::string name; // without _split/_merge
  kvc_encoded_kernel_config cfg;
  kvc_cuda_function split = nullptr, merge = nullptr;
  int regs = 0, smem = 0, ctasPerSM = 0;
};
inline std::vector<EncodedVariant> encodedVariants(kvc_cuda_module mod, const std::string &ptx) {
  std::vector<EncodedVariant> out;
  for (const std::string &k : kernelNames(ptx)) {
    // Every split kernel whose name the runtime parses as an encoded one
    // (..._u<U>[_r<G>]_enc[_mma|_ov|_l1|_ms..]_split: the variants share the ABI).
    EncodedVariant v;
    if (!endsWith(k, "_split") || kvc_cuda_encoded_parse_name(k.c_str(), &v.cfg))
      continue;
    v.name = k.substr(0, k.size() - 6);
    CK(kvc_cuda_module_get_function(mod, k.c_str(), &v.split));
    CK(kvc_cuda_module_get_function(mod, (v.name + "_merge").c_str(), &v.merge));
    CK(kvc_cuda_function_info(v.split, &v.regs, &v.smem));
    CK(kvc_cuda_occupancy(v.split, v.cfg.head_dim, 0, &v.ctasPerSM));
    out.push_back(v);
  }
  return out;
}

/// The fixed-width cache decode kernels (<tag>_d<D>_g<g>_q<Sq>_<bf16|f16>_kb<KB>_fw_split/_merge,
/// or _fw_fm_split alone with the fused merge) of a loaded module.
struct FwVariant {
  std::string name; // without _split/_merge
  kvc_fw_kernel_config cfg;
  kvc_cuda_function split = nullptr, merge = nullptr;
  int regs = 0, smem = 0, ctasPerSM = 0;
};
inline std::vector<FwVariant> fwVariants(kvc_cuda_module mod, const std::string &ptx) {
  std::vector<FwVariant> out;
  for (const std::string &k : kernelNames(ptx)) {
    FwVariant v;
    if (!endsWith(k, "_split") || kvc_cuda_fw_parse_name(k.c_str(), &v.cfg))
      continue;
    v.name = k.substr(0, k.size() - 6);
    CK(kvc_cuda_module_get_function(mod, k.c_str(), &v.split));
    if (!v.cfg.fused_merge) // a fused-merge split kernel has no merge kernel
      CK(kvc_cuda_module_get_function(mod, (v.name + "_merge").c_str(), &v.merge));
    CK(kvc_cuda_function_info(v.split, &v.regs, &v.smem));
    CK(kvc_cuda_occupancy(v.split, KVC_FW_THREADS, 0, &v.ctasPerSM));
    out.push_back(v);
  }
  return out;
}

// ----------------------------------------------------------------------------- reference
/// float64 decode-attention reference. q: [B, Hkv*g, Sq, D] (already rounded to the kernel's
/// input type); query row (b, kh*g + j, i) attends to KV row r = b*Hkv + kh, whose keys and
/// values `rowKV(r, K, V)` writes as T_r x D floats (resizing K and V) before returning T_r.
/// Returns out [B, Hq, Sq, D]: softmax(q K^T / sqrt(D)) V, and 0 for rows with no keys.
template <class RowKV>
std::vector<double> referenceAttention(const std::vector<float> &q, int64_t B, int64_t Hkv,
                                       int64_t g, int64_t Sq, int64_t D, RowKV rowKV) {
  const int64_t Hq = Hkv * g;
  const double scale = 1.0 / std::sqrt(double(D));
  std::vector<double> ref(size_t(B * Hq * Sq * D), 0.0);
  std::vector<float> K, V;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t kh = 0; kh < Hkv; ++kh) {
      const int64_t T = rowKV(b * Hkv + kh, K, V);
      std::vector<double> sc(static_cast<size_t>(T));
      for (int64_t j = 0; j < g; ++j)
        for (int64_t i = 0; i < Sq; ++i) {
          const int64_t qrow = (b * Hq + kh * g + j) * Sq + i;
          const float *qr = &q[size_t(qrow * D)];
          double mx = -INFINITY, den = 0;
          for (int64_t t = 0; t < T; ++t) {
            double s = 0;
            for (int64_t d = 0; d < D; ++d)
              s += double(qr[d]) * K[size_t(t * D + d)];
            sc[size_t(t)] = s * scale;
            mx = std::max(mx, sc[size_t(t)]);
          }
          for (int64_t t = 0; t < T; ++t)
            den += (sc[size_t(t)] = std::exp(sc[size_t(t)] - mx));
          double *o = &ref[size_t(qrow * D)];
          for (int64_t t = 0; t < T; ++t)
            for (int64_t d = 0; d < D; ++d)
              o[d] += sc[size_t(t)] / den * V[size_t(t * D + d)];
        }
    }
  return ref;
}

/// The decoded rows of codec heads, for referenceAttention.
inline auto codecRows(const kvc_codec_head *const *heads) {
  return [heads](int64_t r, std::vector<float> &K, std::vector<float> &V) -> int64_t {
    const kvc_codec_head *h = heads[r];
    const int64_t T = int64_t(kvc_codec_head_num_tokens(h));
    kvc_codec_params p;
    CC(kvc_codec_head_params(h, &p));
    K.resize(size_t(T) * p.head_dim);
    V.resize(size_t(T) * p.head_dim);
    if (T)
      CC(kvc_codec_head_decode(h, K.data(), V.data()));
    return T;
  };
}

/// Half-precision arrays as floats (`n` elements).
inline std::vector<float> halfToFloat(const uint16_t *x, size_t n, bool bf16) {
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i)
    out[i] = fromHalfBits(x[i], bf16);
  return out;
}

/// The rows of a half-precision [rows, S, D] K/V buffer pair, `lens[r]` valid tokens each
/// (clamped to [0, S]), for referenceAttention.
inline auto halfRows(const uint16_t *k, const uint16_t *v, const std::vector<int64_t> &lens,
                     int64_t S, int64_t D, bool bf16) {
  return [=, &lens](int64_t r, std::vector<float> &K, std::vector<float> &V) -> int64_t {
    const int64_t T = std::clamp<int64_t>(lens[size_t(r)], 0, S);
    K = halfToFloat(k + size_t(r * S * D), size_t(T * D), bf16);
    V = halfToFloat(v + size_t(r * S * D), size_t(T * D), bf16);
    return T;
  };
}

/// Kernel outputs as doubles: `raw` holds elements of query type qt (0 bf16, 1 f16, 2 f32).
inline std::vector<double> outputValues(const std::vector<uint8_t> &raw, int qt) {
  const size_t bytes = qt == 2 ? 4 : 2, n = raw.size() / bytes;
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (qt == 2) {
      float f;
      std::memcpy(&f, &raw[i * 4], 4);
      out[i] = f;
    } else {
      uint16_t h;
      std::memcpy(&h, &raw[i * 2], 2);
      out[i] = fromHalfBits(h, qt == 0);
    }
  }
  return out;
}

/// ||got - ref|| / ||ref|| (the absolute norm when ref is 0), or inf if any output is not
/// finite (unwritten NaN poison included); the largest |got - ref| goes to *maxAbs.
inline double relativeL2(const std::vector<double> &got, const std::vector<double> &ref,
                         double *maxAbs = nullptr) {
  double num = 0, den = 0, mx = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i]))
      return INFINITY;
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
    mx = std::max(mx, std::fabs(got[i] - ref[i]));
  }
  if (maxAbs)
    *maxAbs = mx;
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// ----------------------------------------------------------------------------- timing
// How the L2 is flushed before each timed rep (`--flush`):
//  - dirty: a memset of >= 4x L2 (Triton's do_bench; torch's numbers in kvc.bench.sdpa_decode
//    use the same). L2 is left full of dirty lines, and the timed kernel's first misses pay for
//    writing them back (~14 us on H100, the size of a whole batch-1 decode's DRAM time).
//  - clean: a read-only kernel streams the same >= 4x L2 bytes, so everything the previous rep
//    left (dirty or not) is written back or evicted during the flush, and the timed kernel
//    starts from a cold L2 holding only clean lines (what ncu's cache control gives).
enum class FlushMode { Dirty, Clean };
inline FlushMode gFlushMode = FlushMode::Dirty;
inline const char *flushName() { return gFlushMode == FlushMode::Clean ? "clean" : "dirty"; }
inline bool parseFlush(const std::string &v) {
  if (v == "dirty")
    gFlushMode = FlushMode::Dirty;
  else if (v == "clean")
    gFlushMode = FlushMode::Clean;
  else
    return false;
  return true;
}

/// Closes the "results" array of a kvc-bench JSON document and writes it to `path` (nothing for
/// an empty path), saying so on stdout.
inline void finishJson(std::ostringstream &js, const std::string &path) {
  js << "\n  ]\n}\n";
  if (path.empty())
    return;
  std::ofstream f(path);
  f << js.str();
  printf("wrote %s\n", path.c_str());
}

// Freeing device memory starts driver work that takes HBM bandwidth for milliseconds after
// cuMemFree returns. On the H100 a 64 MiB read right after the copy test freed its 4 GiB took
// 30.0 us instead of 25.9 us, and so did the next one, ~10 ms in all; a decode at batch 1 x 16k
// 37.2 us instead of 33.4 (docs/gpu.md §5.0, "Settling after frees"). torch's caching
// allocator does not free, so its timings never saw this. Timed code frees through benchFree(),
// and the next Timer::medianMs first synchronises and waits gSettleMs (`--settle-ms`, default
// 100; 0 = no wait, what runs 1-8 did).
inline int gSettleMs = 100;
inline bool gFreedSinceSettle = false;
inline void benchFree(kvc_cuda_ptr p) {
  CK(kvc_cuda_free(p));
  gFreedSinceSettle = true;
}

/// --help or -h anywhere on the command line: the subcommand's usage goes to stdout and the
/// exit status is 0 (a usage error: stderr, 2). main() notes it first; each usage() prints to
/// usageOut() and ends with usageExit().
inline bool &helpRequested() {
  static bool help = false;
  return help;
}
inline void noteHelp(int argc, char **argv) {
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h"))
      helpRequested() = true;
}
inline FILE *usageOut() { return helpRequested() ? stdout : stderr; }
[[noreturn]] inline void usageExit() { exit(helpRequested() ? 0 : 2); }

// ----------------------------------------------------------------------------- options
/// The command line of one kvc-bench subcommand: options bound to variables, then parse().
/// One table for all subcommands, so every option is parsed and checked the same way: a
/// malformed value ("--reps x") says which option and value and exits 2, an unknown option or
/// a missing value prints the subcommand's usage. Positional arguments are returned in order.
class Options {
public:
  explicit Options(void (*usage)()) : usage_(usage) {}
  Options &flag(const char *name, bool &x) { return on(name, false, [&x](const std::string &) { x = true; }); }
  Options &str(const char *name, std::string &x) { return on(name, true, [&x](const std::string &v) { x = v; }); }
  Options &strs(const char *name, std::vector<std::string> &x) {
    return on(name, true, [&x](const std::string &v) { x.push_back(v); });
  }
  Options &i32(const char *name, int &x) { return on(name, true, [&x](const std::string &v) { x = std::stoi(v); }); }
  Options &i64(const char *name, int64_t &x) { return on(name, true, [&x](const std::string &v) { x = std::stoll(v); }); }
  Options &u32(const char *name, unsigned &x) {
    return on(name, true, [&x](const std::string &v) { x = unsigned(std::stoul(v)); });
  }
  Options &f64(const char *name, double &x) { return on(name, true, [&x](const std::string &v) { x = std::stod(v); }); }
  Options &list(const char *name, std::vector<int64_t> &x) {
    return on(name, true, [&x](const std::string &v) { x = parseList(v); });
  }
  /// --flush dirty|clean (the timing commands).
  Options &flush() {
    return on("--flush", true, [this](const std::string &v) {
      if (!parseFlush(v))
        usage_();
    });
  }
  /// --settle-ms N (the timing commands): the wait after frees, see gSettleMs.
  Options &settle() {
    return on("--settle-ms", true, [](const std::string &v) {
      gSettleMs = std::stoi(v);
      if (gSettleMs < 0)
        throw std::invalid_argument("negative");
    });
  }
  /// Any other handler; `takesValue` says whether the option is followed by a value.
  Options &on(const char *name, bool takesValue, std::function<void(const std::string &)> f) {
    opts_[name] = {takesValue, std::move(f)};
    return *this;
  }
  std::vector<std::string> parse(int argc, char **argv, int first) {
    std::vector<std::string> positional;
    for (int i = first; i < argc; ++i) {
      const std::string a = argv[i];
      auto it = opts_.find(a);
      if (it == opts_.end()) {
        if (a.empty() || a[0] == '-')
          usage_();
        positional.push_back(a);
        continue;
      }
      std::string v;
      if (it->second.takesValue) {
        if (i + 1 >= argc)
          usage_();
        v = argv[++i];
      }
      try {
        it->second.set(v);
      } catch (const std::exception &) { // std::stoi/stod/parseList on a malformed value
        fprintf(stderr, "%s: bad value for %s: '%s'\n", benchCommand().c_str(), a.c_str(),
                v.c_str());
        exit(2);
      }
    }
    return positional;
  }

private:
  struct Opt {
    bool takesValue;
    std::function<void(const std::string &)> set;
  };
  void (*usage_)();
  std::map<std::string, Opt> opts_;
};

// The clean flush's kernel: grid-stride 128-bit loads of n16 16-byte vectors, xor-reduced (the
// store under an impossible condition keeps the loads alive). Written as PTX so kvc-bench needs
// no compiler for it.
inline const char *kL2ReadPtx = R"(.version 8.0
.target sm_90
.address_size 64
.visible .entry kvc_l2_read(.param .u64 p, .param .u64 n16) {
  .reg .pred %p<3>;
  .reg .b32 %r<12>;
  .reg .b64 %rd<10>;
  ld.param.u64 %rd1, [p];
  ld.param.u64 %rd2, [n16];
  mov.u32 %r1, %ctaid.x;
  mov.u32 %r2, %ntid.x;
  mov.u32 %r3, %tid.x;
  mad.lo.s32 %r4, %r1, %r2, %r3;
  cvt.u64.u32 %rd3, %r4;
  mov.u32 %r5, %nctaid.x;
  mul.lo.s32 %r6, %r5, %r2;
  cvt.u64.u32 %rd4, %r6;
  mov.u32 %r11, 0;
LOOP:
  setp.ge.u64 %p1, %rd3, %rd2;
  @%p1 bra DONE;
  shl.b64 %rd5, %rd3, 4;
  add.s64 %rd6, %rd1, %rd5;
  ld.global.v4.u32 {%r7, %r8, %r9, %r10}, [%rd6];
  xor.b32 %r11, %r11, %r7;
  xor.b32 %r11, %r11, %r8;
  xor.b32 %r11, %r11, %r9;
  xor.b32 %r11, %r11, %r10;
  add.s64 %rd3, %rd3, %rd4;
  bra LOOP;
DONE:
  setp.eq.u32 %p2, %r11, 0x6B766321;
  @%p2 st.global.u32 [%rd1], %r11;
  ret;
}
// Four independent 128-bit loads per thread per step (i, i + stride, i + 2 stride, i + 3 stride,
// each warp-coalesced) before any use, then a one-load tail: 4x the bytes in flight of
// kvc_l2_read, to tell whether that read is limited by outstanding loads.
.visible .entry kvc_l2_read_x4(.param .u64 p, .param .u64 n16) {
  .reg .pred %p<4>;
  .reg .b32 %r<24>;
  .reg .b64 %rd<12>;
  ld.param.u64 %rd1, [p];
  ld.param.u64 %rd2, [n16];
  mov.u32 %r1, %ctaid.x;
  mov.u32 %r2, %ntid.x;
  mov.u32 %r3, %tid.x;
  mad.lo.s32 %r4, %r1, %r2, %r3;
  cvt.u64.u32 %rd3, %r4;
  mov.u32 %r5, %nctaid.x;
  mul.lo.s32 %r6, %r5, %r2;
  cvt.u64.u32 %rd4, %r6;
  shl.b64 %rd5, %rd4, 4;
  mov.u32 %r11, 0;
LOOP4:
  mad.lo.u64 %rd6, %rd4, 3, %rd3;
  setp.ge.u64 %p1, %rd6, %rd2;
  @%p1 bra TAIL;
  shl.b64 %rd7, %rd3, 4;
  add.s64 %rd8, %rd1, %rd7;
  add.s64 %rd9, %rd8, %rd5;
  add.s64 %rd10, %rd9, %rd5;
  add.s64 %rd11, %rd10, %rd5;
  ld.global.v4.u32 {%r7, %r8, %r9, %r10}, [%rd8];
  ld.global.v4.u32 {%r12, %r13, %r14, %r15}, [%rd9];
  ld.global.v4.u32 {%r16, %r17, %r18, %r19}, [%rd10];
  ld.global.v4.u32 {%r20, %r21, %r22, %r23}, [%rd11];
  xor.b32 %r7, %r7, %r8;
  xor.b32 %r9, %r9, %r10;
  xor.b32 %r12, %r12, %r13;
  xor.b32 %r14, %r14, %r15;
  xor.b32 %r16, %r16, %r17;
  xor.b32 %r18, %r18, %r19;
  xor.b32 %r20, %r20, %r21;
  xor.b32 %r22, %r22, %r23;
  xor.b32 %r7, %r7, %r9;
  xor.b32 %r12, %r12, %r14;
  xor.b32 %r16, %r16, %r18;
  xor.b32 %r20, %r20, %r22;
  xor.b32 %r7, %r7, %r12;
  xor.b32 %r16, %r16, %r20;
  xor.b32 %r11, %r11, %r7;
  xor.b32 %r11, %r11, %r16;
  mad.lo.u64 %rd3, %rd4, 4, %rd3;
  bra LOOP4;
TAIL:
  setp.ge.u64 %p2, %rd3, %rd2;
  @%p2 bra DONE4;
  shl.b64 %rd7, %rd3, 4;
  add.s64 %rd8, %rd1, %rd7;
  ld.global.v4.u32 {%r7, %r8, %r9, %r10}, [%rd8];
  xor.b32 %r11, %r11, %r7;
  xor.b32 %r11, %r11, %r8;
  xor.b32 %r11, %r11, %r9;
  xor.b32 %r11, %r11, %r10;
  add.s64 %rd3, %rd3, %rd4;
  bra TAIL;
DONE4:
  setp.eq.u32 %p3, %r11, 0x6B766321;
  @%p3 st.global.u32 [%rd1], %r11;
  ret;
}
)";

struct Timer {
  kvc_cuda_ptr flush = 0;
  size_t flushBytes = 0;
  kvc_cuda_module readModule = nullptr;
  kvc_cuda_function readFn = nullptr, readFnX4 = nullptr;
  int sms = 132;
  explicit Timer(int l2) {
    flushBytes = std::max<size_t>(size_t(l2) * 4, 256u << 20);
    CK(kvc_cuda_malloc(&flush, flushBytes));
    CK(kvc_cuda_memset_d8_async(flush, 0, flushBytes, nullptr));
    if (gFlushMode == FlushMode::Clean)
      loadRead();
  }
  ~Timer() {
    kvc_cuda_free(flush);
    if (readModule)
      kvc_cuda_module_unload(readModule);
  }
  void flushL2(int i) {
    if (gFlushMode == FlushMode::Dirty) {
      CK(kvc_cuda_memset_d8_async(flush, uint8_t(i), flushBytes, nullptr));
      return;
    }
    readPass(flush, flushBytes);
  }
  // kvc_l2_read, for readPass (outside any timed region: module load).
  void loadRead() {
    if (readFn)
      return;
    CK(kvc_cuda_module_load(kL2ReadPtx, &readModule));
    CK(kvc_cuda_module_get_function(readModule, "kvc_l2_read", &readFn));
    CK(kvc_cuda_module_get_function(readModule, "kvc_l2_read_x4", &readFnX4));
    CK(kvc_cuda_device_info(nullptr, 0, &sms, nullptr, nullptr, nullptr));
  }
  // One launch of kvc_l2_read (x4: kvc_l2_read_x4) over `bytes` (a multiple of 16) at `p`, 4
  // CTAs of 512 threads per SM: the clean flush, and kvc-bench floor's reference read.
  // loadRead() first.
  void readPass(kvc_cuda_ptr p, uint64_t bytes, bool x4 = false) {
    uint64_t ptr = p, n16 = bytes / 16;
    void *params[] = {&ptr, &n16};
    CK(kvc_cuda_launch(x4 ? readFnX4 : readFn, unsigned(4 * sms), 1, 1, 512, 1, 1, 0, nullptr,
                       params));
  }
  // Median of `reps` timed runs of fn (after `warmup`), L2 flushed before each.
  template <class F> double medianMs(int warmup, int reps, F fn) {
    if (gFreedSinceSettle && gSettleMs > 0) {
      CK(kvc_cuda_synchronize());
      std::this_thread::sleep_for(std::chrono::milliseconds(gSettleMs));
    }
    gFreedSinceSettle = false;
    for (int i = 0; i < warmup; ++i)
      fn();
    std::vector<kvc_cuda_event> ev(2 * reps);
    for (auto &e : ev)
      CK(kvc_cuda_event_create(&e));
    for (int i = 0; i < reps; ++i) {
      flushL2(i);
      CK(kvc_cuda_event_record(ev[2 * i], nullptr));
      fn();
      CK(kvc_cuda_event_record(ev[2 * i + 1], nullptr));
    }
    CK(kvc_cuda_synchronize());
    std::vector<double> t(reps);
    for (int i = 0; i < reps; ++i) {
      float ms;
      CK(kvc_cuda_event_elapsed_ms(&ms, ev[2 * i], ev[2 * i + 1]));
      t[i] = ms;
    }
    for (auto &e : ev)
      kvc_cuda_event_destroy(e);
    std::sort(t.begin(), t.end());
    return t[reps / 2];
  }
};

inline double copyBandwidth(Timer &T, size_t mib) {
  size_t bytes = mib << 20;
  kvc_cuda_ptr a, b;
  CK(kvc_cuda_malloc(&a, bytes));
  CK(kvc_cuda_malloc(&b, bytes));
  CK(kvc_cuda_memset_d8_async(a, 1, bytes, nullptr));
  double ms = T.medianMs(3, 20, [&] { CK(kvc_cuda_memcpy_dtod_async(b, a, bytes, nullptr)); });
  benchFree(a);
  benchFree(b);
  return 2.0 * bytes / (ms * 1e-3) / 1e12; // TB/s, read + write
}

/// The opening of a timing command's JSON document: the device, the copy bandwidth (TB/s,
/// read + write), warm-up and reps. The command adds its own fields, then jsonOpenResults.
inline void jsonOpen(std::ostringstream &js, const std::string &device, double copyTBs,
                     int warmup, int reps) {
  js << "{\n  \"device\": \"" << device << "\",\n  \"copy_tbps\": " << copyTBs
     << ",\n  \"warmup\": " << warmup << ", \"reps\": " << reps;
}
/// The last fields of the document's head (what the CUDA events time, `timed`; the L2 flush;
/// the settle wait after frees), then the "results" array opens (finishJson closes it).
inline void jsonOpenResults(std::ostringstream &js, const std::string &timed) {
  js << ",\n  \"timing\": \"CUDA events around " << timed
     << ", median, L2 flushed before each rep\", \"flush\": \"" << flushName() << "\","
     << " \"settle_ms\": " << gSettleMs << ","
     << "\n  \"results\": [\n";
}
/// The start of a decode timing command (kvc-bench, encoded and fixed-width decode) on L's
/// device (L.device, L.sms, L.l2): the copy bandwidth (2 GiB copies), the device line, and
/// jsonOpen. Returns the copy bandwidth.
template <class Loaded>
double startDecodeTiming(const Loaded &L, Timer &T, int warmup, int reps,
                         std::ostringstream &js) {
  const double copyTBs = copyBandwidth(T, 2048);
  printf("device: %s, %d SMs, L2 %d MiB; copy bandwidth %.3f TB/s (read+write)\n",
         L.device.c_str(), L.sms, L.l2 >> 20, copyTBs);
  jsonOpen(js, L.device, copyTBs, warmup, reps);
  return copyTBs;
}

} // namespace kvcbench

#endif
