//===- GPUEncodedABI.cpp - encoded KV caches for code compiled to the GPU ---------===//
//
// What convert-kvc-to-gpu's host code calls for !kvc.encoded_cache values (CompilerABI.h,
// "Encoded caches on the GPU"): a handle owns an appendable device form (CUDAEncoded.h) and
// its appender, or, for a codec without entropy coding (entropy = none), the fixed-width device
// form (CUDAFixedWidth.h) and its GPU appender (store kernels; value blocks a multiple of 16
// tokens) or else its host-assisted appender (the CPU codec encodes, the changed parts are
// copied). The decode and store kernels are the compiled module's own; this file only hands
// out their buffers and does the appenders' host bookkeeping around the launches.
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/CUDA.h"
#include "kvc/Runtime/CUDAEncoded.h"
#include "kvc/Runtime/CUDAFixedWidth.h"
#include "kvc/Runtime/Codec.h"
#include "kvc/Runtime/CompilerABI.h"

#include "../Codec/Half.h"
#include "../CompilerABI/CodecParams.h"
#include "../CompilerABI/EncodeRows.h"
#include "HostCodeSupport.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct GPUEncodedCache {
  bool fixedWidth = false;  // the fixed-width form `fw`, else the Huffman-coded `cache`
  kvc_cuda_fw_cache fw{};
  kvc_fw_appender *fwApp = nullptr; // the fixed-width form's host-assisted appender, when
                                    // the GPU one does not apply
  kvc_fw_gpu_appender *fwGpu = nullptr; // its GPU appender (store kernels)
  std::string fwGpuWhyNot;              // why there is none
  kvc_fw_gpu_append_plan fwPending{};   // of the fixed-width append begun last
  kvc_cuda_encoded_cache cache{};
  kvc_cuda_encoded_appender *app = nullptr;
  kvc_encoded_append_stream pending[2]{}; // of the append begun last
  int64_t pendingTokens = -1;             // n of that append, -1 if none is open
  ~GPUEncodedCache() {
    if (app)
      kvc_cuda_encoded_appender_free(app);
    if (fwApp)
      kvc_fw_appender_free(fwApp);
    if (fwGpu)
      kvc_fw_gpu_appender_free(fwGpu);
    if (fixedWidth)
      kvc_cuda_fw_free(&fw);
    else
      kvc_cuda_encoded_free(&cache);
  }
  int64_t batch() const { return fixedWidth ? fw.batch : cache.batch; }
  int64_t hkv() const { return fixedWidth ? fw.hkv : cache.hkv; }
};

std::mutex registryMutex;
std::vector<std::unique_ptr<GPUEncodedCache>> &registry() {
  static std::vector<std::unique_ptr<GPUEncodedCache>> r;
  return r;
}

// Status 1 for a bad request; 2 (fail) for a kernel that is not there or a CUDA failure. Both
// exit through _Exit (HostCodeSupport.h): the handle registry's destructors must not run.
[[noreturn]] void die(const std::string &msg) {
  kvc::hostcode::fatal("GPU encoded cache", msg, 1);
}
[[noreturn]] void fail(const std::string &msg) {
  kvc::hostcode::fatal("GPU encoded cache", msg, 2);
}

GPUEncodedCache *get(int64_t handle) {
  if (!handle)
    die("null handle");
  return reinterpret_cast<GPUEncodedCache *>(handle);
}

int create(const kvc_codec_head *const *heads, int64_t batch, int64_t hkv, int64_t maxNew,
           bool fixedWidth, int64_t *handle, const char **err) {
  *handle = 0;
  static thread_local std::string msg;
  if (int rc = kvc_cuda_init(0)) {
    msg = std::string("CUDA initialisation failed: ") + kvc_cuda_last_error();
    *err = msg.c_str();
    return rc;
  }
  auto c = std::make_unique<GPUEncodedCache>();
  c->fixedWidth = fixedWidth;
  if (fixedWidth) {
    if (kvc_fw_appender_create(heads, batch, hkv, maxNew, &c->fwApp, err))
      return -1;
    if (int rc = kvc_cuda_fw_upload_appendable(c->fwApp, &c->fw, err))
      return rc;
    // Appends run on the GPU where the store kernels apply; the host appender (a host mirror
    // of the whole reserved cache) is then not needed.
    const char *why = nullptr;
    if (kvc_cuda_fw_gpu_appender_create(c->fwApp, &c->fw, &c->fwGpu, &why) == 0) {
      kvc_fw_appender_free(c->fwApp);
      c->fwApp = nullptr;
    } else {
      c->fwGpuWhyNot = why ? why : "?";
    }
  } else if (int rc = kvc_cuda_encoded_upload_appendable(heads, batch, hkv, maxNew, nullptr,
                                                         &c->cache, &c->app, err)) {
    return rc;
  }
  std::lock_guard<std::mutex> lock(registryMutex);
  registry().push_back(std::move(c));
  *handle = reinterpret_cast<int64_t>(registry().back().get());
  return 0;
}

/// The memref's elements from its first to its last (strided) element, copied to the host
/// (device or managed memory).
std::vector<uint8_t> toHost(const kvc_memref_4d *m, size_t elemBytes) {
  int64_t last = 0;
  for (int i = 0; i < 4; ++i) {
    if (m->sizes[i] == 0)
      return {};
    last += (m->sizes[i] - 1) * m->strides[i];
  }
  std::vector<uint8_t> host(size_t(last + 1) * elemBytes);
  const kvc_cuda_ptr src = reinterpret_cast<kvc_cuda_ptr>(m->aligned) + uint64_t(m->offset) * elemBytes;
  if (kvc_cuda_memcpy_dtoh(host.data(), src, host.size()))
    die(std::string("reading keys/values for kvc.encode or kvc.cache.append (they must be in "
                    "device or managed memory): ") +
        kvc_cuda_last_error());
  return host;
}

/// kvc.encode: the CPU codec builds each row (and its codebooks), then the upload.
int64_t encode(int elemKind, int64_t bits, int64_t keyGroup, int64_t keyBlock, double keyError,
               int64_t valueBlock, double valueError, int64_t entropy, int64_t recentKeys,
               int64_t recentValues, int64_t maxNew, kvc_memref_4d *keys, kvc_memref_4d *values,
               kvc_memref_i64_2d *lengths) {
  if (bits != 0 || (entropy != 0 && entropy != 1) || keyGroup != 0)
    die("the GPU kernels need the error-bounded codec (bits = 0) with block key groups, "
        "Huffman-coded (entropy = huffman) or fixed-width (entropy = none)");
  if (kvc_cuda_init(0))
    die(std::string("CUDA initialisation failed: ") + kvc_cuda_last_error());
  const int64_t B = keys->sizes[0], H = keys->sizes[1], D = keys->sizes[3];
  if (values->sizes[3] != D)
    die("keys and values must have the same head dim");
  const size_t eb = elemKind == 2 ? 4 : 2;
  std::vector<uint8_t> kh = toHost(keys, eb), vh = toHost(values, eb);
  auto loader = [&](const std::vector<uint8_t> &bytes) {
    return [&bytes, elemKind](int64_t i) -> float {
      if (elemKind == 2) {
        float f;
        std::memcpy(&f, &bytes[size_t(i) * 4], 4);
        return f;
      }
      uint16_t u;
      std::memcpy(&u, &bytes[size_t(i) * 2], 2);
      return elemKind == 0 ? kvc::codec::halfToFloat(u) : kvc::codec::bitsToFloat(uint32_t(u) << 16);
    };
  };
  std::vector<kvc_codec_head *> heads;
  struct Free {
    std::vector<kvc_codec_head *> &h;
    ~Free() {
      for (auto *x : h)
        kvc_codec_head_free(x);
    }
  } freeHeads{heads};
  const kvc_codec_params p = kvc::rt::codecParams(D, keyGroup, keyBlock, keyError, valueBlock,
                                                  valueError, recentKeys, recentValues);
  std::string failed = kvc::rt::encodeRows(p, keys->sizes, keys->strides, values->strides,
                                           lengths, loader(kh), loader(vh), heads);
  if (!failed.empty())
    die(failed);
  int64_t handle = 0;
  const char *err = nullptr;
  if (create(heads.data(), B, H, maxNew, /*fixedWidth=*/entropy == 0, &handle, &err))
    die(err ? err : "upload failed");
  return handle;
}

void bufferDescriptor(kvc_memref_1d *out, int64_t handle, int64_t index, int64_t elemBytes) {
  GPUEncodedCache *c = get(handle);
  kvc_cuda_ptr p = 0;
  int64_t len = 0, eb = 4;
  if (c->fixedWidth && index >= KVC_FW_NUM_BUFFERS && index < KVC_FW_NUM_BUFFERS + 4) {
    // The store jobs and statuses of the append begun last: keys' jobs, res, values' jobs, res.
    if (c->pendingTokens < 0)
      die("store buffers requested outside an append");
    const int st = (index - KVC_FW_NUM_BUFFERS) / 2;
    const bool res = (index - KVC_FW_NUM_BUFFERS) % 2;
    p = res ? c->fwPending.res[st] : c->fwPending.jobs[st];
    len = c->fwPending.num_jobs[st] * (res ? 1 : 8);
  } else if (c->fixedWidth) {
    if (index < 0 || index >= KVC_FW_NUM_BUFFERS)
      die("buffer index " + std::to_string(index) + " out of range (fixed-width cache)");
    p = c->fw.buf[index];
    len = c->fw.len[index];
    eb = c->fw.elem_bytes[index];
  } else if (index >= 0 && index < KVC_ENC_NUM_BUFFERS) {
    p = c->cache.buf[index];
    len = c->cache.len[index];
    eb = c->cache.elem_bytes[index];
  } else if (index >= KVC_ENC_NUM_BUFFERS && index < KVC_ENC_NUM_BUFFERS + 8) {
    if (c->pendingTokens < 0)
      die("store buffers requested outside an append");
    const kvc_encoded_append_stream &s = c->pending[(index - KVC_ENC_NUM_BUFFERS) / 4];
    switch ((index - KVC_ENC_NUM_BUFFERS) % 4) {
    case 0: p = s.jobs, len = 4 * s.num_jobs; break;
    case 1: p = s.res, len = 4 * s.num_jobs; break;
    case 2: p = s.enc, len = s.enc_len; break;
    default: p = s.top, len = 1; break;
    }
  } else {
    die("buffer index " + std::to_string(index) + " out of range");
  }
  if (eb != elemBytes)
    die("buffer " + std::to_string(index) + " has " + std::to_string(eb) +
        "-byte elements, the compiled code expects " + std::to_string(elemBytes));
  out->allocated = out->aligned = reinterpret_cast<void *>(p);
  out->offset = 0;
  out->sizes[0] = len;
  out->strides[0] = 1;
}

} // namespace

extern "C" {

int kvc_rt_gpu_encoded_create(const kvc_codec_head *const *heads, int64_t batch, int64_t hkv,
                              int64_t maxNew, int64_t *handle, const char **err) {
  return create(heads, batch, hkv, maxNew, /*fixedWidth=*/false, handle, err);
}

int kvc_rt_gpu_fixed_width_create(const kvc_codec_head *const *heads, int64_t batch,
                                  int64_t hkv, int64_t maxNew, int64_t *handle,
                                  const char **err) {
  return create(heads, batch, hkv, maxNew, /*fixedWidth=*/true, handle, err);
}

void kvc_rt_gpu_encoded_destroy(int64_t handle) {
  std::lock_guard<std::mutex> lock(registryMutex);
  auto &r = registry();
  for (auto it = r.begin(); it != r.end(); ++it)
    if (reinterpret_cast<int64_t>(it->get()) == handle) {
      r.erase(it);
      return;
    }
}

void kvc_rt_gpu_encoded_tokens(int64_t handle, int64_t *tokens) {
  GPUEncodedCache *c = get(handle);
  const int64_t R = c->batch() * c->hkv(), stride = c->fixedWidth ? 4 : 8;
  std::vector<int32_t> rows(size_t(R * stride));
  if (kvc_cuda_memcpy_dtoh(rows.data(),
                           c->fixedWidth ? c->fw.buf[KVC_FW_ROWS] : c->cache.buf[KVC_ENC_ROWS],
                           rows.size() * 4))
    die(std::string("reading the row table: ") + kvc_cuda_last_error());
  for (int64_t r = 0; r < R; ++r)
    tokens[r] = rows[size_t(r * stride)];
}

uint64_t kvc_rt_gpu_encoded_device_bytes(int64_t handle) {
  GPUEncodedCache *c = get(handle);
  return c->fixedWidth ? c->fw.device_bytes : c->cache.device_bytes;
}

#define KVC_GPU_ENCODE(NAME, KIND)                                                              \
  int64_t NAME(int64_t bits, int64_t keyGroup, int64_t keyBlock, double keyError,              \
               int64_t valueBlock, double valueError, int64_t entropy, int64_t recentKeys,     \
               int64_t recentValues, int64_t maxNew, kvc_memref_4d *keys,                      \
               kvc_memref_4d *values, kvc_memref_i64_2d *lengths) {                            \
    return encode(KIND, bits, keyGroup, keyBlock, keyError, valueBlock, valueError, entropy,   \
                  recentKeys, recentValues, maxNew, keys, values, lengths);                    \
  }
KVC_GPU_ENCODE(_mlir_ciface_kvc_rt_gpu_encode_f16, 0)
KVC_GPU_ENCODE(_mlir_ciface_kvc_rt_gpu_encode_bf16, 1)
KVC_GPU_ENCODE(_mlir_ciface_kvc_rt_gpu_encode_f32, 2)
#undef KVC_GPU_ENCODE

void _mlir_ciface_kvc_rt_gpu_encoded_buffer_i32(kvc_memref_1d *result, int64_t handle,
                                                int64_t index) {
  bufferDescriptor(result, handle, index, 4);
}
void _mlir_ciface_kvc_rt_gpu_encoded_buffer_f32(kvc_memref_1d *result, int64_t handle,
                                                int64_t index) {
  bufferDescriptor(result, handle, index, 4);
}
void _mlir_ciface_kvc_rt_gpu_encoded_buffer_f16(kvc_memref_1d *result, int64_t handle,
                                                int64_t index) {
  bufferDescriptor(result, handle, index, 2);
}

int64_t _mlir_ciface_kvc_rt_gpu_encoded_splits(kvc_memref_1d *name, int64_t handle) {
  // The split kernel's specialisation and resident CTAs, found once per name in the program's
  // GPU modules (HostCodeSupport.h); the plan is the runtime driver's (kvc_cuda_encoded_make_plan),
  // sized by the cache's current longest row.
  struct Kernel {
    bool fixedWidth;
    kvc_encoded_kernel_config cfg;
    kvc_fw_kernel_config fwCfg;
    int residentCtas;
  };
  static std::mutex mutex;
  static auto &kernels = *new std::map<std::string, Kernel>; // never destroyed (exit paths)
  GPUEncodedCache *c = get(handle);
  const std::string n = kvc::hostcode::kernelName(*name);
  Kernel k{};
  bool known;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = kernels.find(n);
    known = it != kernels.end();
    if (known)
      k = it->second;
  }
  if (!known) {
    const std::string split = n + "_split";
    k.fixedWidth = kvc_cuda_fw_parse_name(split.c_str(), &k.fwCfg) == 0;
    if (!k.fixedWidth && kvc_cuda_encoded_parse_name(split.c_str(), &k.cfg))
      die("'" + split + "' is not an encoded decode kernel name"); // status 1: a bad request
    kvc_cuda_module m = nullptr;
    kvc_cuda_function f = nullptr;
    if (!kvc::hostcode::findKernel(split, &m, &f))
      fail(kvc::hostcode::missingKernelMessage(split));
    int sms = 0, perSM = 0;
    if (kvc_cuda_device_info(nullptr, 0, &sms, nullptr, nullptr, nullptr) ||
        kvc_cuda_occupancy(f, k.fixedWidth ? KVC_FW_THREADS : k.cfg.head_dim, 0, &perSM))
      fail(std::string("occupancy of '") + split + "': " + kvc_cuda_last_error());
    k.residentCtas = sms * perSM;
    std::lock_guard<std::mutex> lock(mutex);
    kernels.emplace(n, k);
  }
  // Per call: one kernel name may meet handles of either form.
  if (k.fixedWidth != c->fixedWidth)
    die("'" + n + "_split' is " + (k.fixedWidth ? "a fixed-width" : "a Huffman-coded") +
        " kernel, the cache is " + (c->fixedWidth ? "fixed-width" : "Huffman-coded"));
  if (k.fixedWidth) {
    kvc_fw_plan plan{};
    if (kvc_cuda_fw_make_plan(&k.fwCfg, &c->fw, 0, k.residentCtas, &plan))
      fail("planning '" + n + "': " + kvc_cuda_last_error());
    return plan.num_splits;
  }
  kvc_encoded_plan plan{};
  if (kvc_cuda_encoded_make_plan(&k.cfg, &c->cache, 0, k.residentCtas, &plan))
    fail("planning '" + n + "': " + kvc_cuda_last_error());
  return plan.num_splits;
}

void _mlir_ciface_kvc_rt_gpu_encoded_append_begin(int64_t handle, int64_t n,
                                                  kvc_memref_1d *state) {
  GPUEncodedCache *c = get(handle);
  if (c->fixedWidth)
    die("appending to a fixed-width (entropy = none) cache is not supported on the GPU");
  if (state->sizes[0] < 12)
    die("append state buffer too small");
  const char *err = nullptr;
  if (kvc_cuda_encoded_append_prepare(c->app, &c->cache, n, c->pending, &err))
    die(err ? err : "append failed");
  c->pendingTokens = n;
  auto *s = static_cast<int64_t *>(state->aligned) + state->offset;
  auto put = [&](int i, int64_t v) { s[i * state->strides[0]] = v; };
  for (int st = 0; st < 2; ++st) {
    const kvc_encoded_append_stream &p = c->pending[st];
    uint32_t epsBits;
    std::memcpy(&epsBits, &p.eps, 4);
    put(0 + st, p.window_offset);
    put(2 + st, p.window_stride);
    put(4 + st, p.num_jobs);
    put(6 + st, p.word_capacity);
    put(8 + st, p.max_symbol);
    put(10 + st, int64_t(epsBits));
  }
}

void _mlir_ciface_kvc_rt_gpu_encoded_append_end(int64_t handle, int64_t n) {
  GPUEncodedCache *c = get(handle);
  if (c->pendingTokens != n)
    die("append end without a matching begin");
  const char *err = nullptr;
  if (kvc_cuda_encoded_append_commit(c->app, &c->cache, n, nullptr, &err))
    die(err ? err : "append failed");
  if (kvc_cuda_synchronize())
    die(std::string("append: ") + kvc_cuda_last_error());
  c->pendingTokens = -1;
}

void _mlir_ciface_kvc_rt_gpu_fixed_width_append_begin(int64_t handle, int64_t n, int64_t D,
                                                      int64_t KB, kvc_memref_1d *state) {
  GPUEncodedCache *c = get(handle);
  if (!c->fixedWidth)
    die("fixed-width append on a Huffman-coded cache");
  if (!c->fwGpu)
    die("this fixed-width cache cannot append on the GPU (" + c->fwGpuWhyNot +
        "); the compiled code was built for another codec");
  if (D != c->fw.head_dim || KB != c->fw.key_block)
    die("the compiled store kernels are for D " + std::to_string(D) + ", key block " +
        std::to_string(KB) + "; the cache has D " + std::to_string(c->fw.head_dim) +
        ", key block " + std::to_string(c->fw.key_block));
  if (state->sizes[0] < 4)
    die("append state buffer too small");
  const char *err = nullptr;
  if (kvc_cuda_fw_gpu_append_prepare(c->fwGpu, &c->fw, n, &c->fwPending, &err))
    die(err ? err : "append failed");
  c->pendingTokens = n;
  auto *s = static_cast<int64_t *>(state->aligned) + state->offset;
  const int64_t v[4] = {c->fwPending.window_offset, c->fwPending.window_stride,
                        c->fwPending.num_jobs[0], c->fwPending.num_jobs[1]};
  for (int i = 0; i < 4; ++i)
    s[i * state->strides[0]] = v[i];
}

void _mlir_ciface_kvc_rt_gpu_fixed_width_append_end(int64_t handle, int64_t n) {
  GPUEncodedCache *c = get(handle);
  if (!c->fixedWidth || !c->fwGpu || c->pendingTokens != n)
    die("append end without a matching begin");
  const char *err = nullptr;
  if (kvc_cuda_fw_gpu_append_commit(c->fwGpu, &c->fw, n, nullptr, KVC_FW_APPEND_CHECK, &err))
    die(err ? err : "append failed");
  if (kvc_cuda_synchronize())
    die(std::string("append: ") + kvc_cuda_last_error());
  c->pendingTokens = -1;
}

/// kvc.cache.append on a fixed-width cache whose value blocks the store kernels cannot split:
/// the new tokens (device or managed memory, [B, Hkv, n, D] of element kind `elemKind`: 0 f16,
/// 1 bf16, 2 f32) to the host as fp16 bits, then the host-assisted appender (CPU codec +
/// copies of what changed to the device).
static void fixedWidthAppend(int elemKind, int64_t handle, kvc_memref_4d *keys,
                             kvc_memref_4d *values) {
  GPUEncodedCache *c = get(handle);
  if (!c->fixedWidth)
    die("fixed-width append on a handle that is not a fixed-width cache");
  if (!c->fwApp)
    die("this fixed-width cache appends on the GPU (store kernels); the compiled code was "
        "built for another codec");
  const int64_t B = keys->sizes[0], H = keys->sizes[1], n = keys->sizes[2], D = keys->sizes[3];
  if (B != c->fw.batch || H != c->fw.hkv || D != c->fw.head_dim ||
      values->sizes[0] != B || values->sizes[1] != H || values->sizes[2] != n ||
      values->sizes[3] != D)
    die("append: new tokens are [" + std::to_string(B) + ", " + std::to_string(H) + ", " +
        std::to_string(n) + ", " + std::to_string(D) + "], the cache has " +
        std::to_string(c->fw.batch) + " x " + std::to_string(c->fw.hkv) + " rows of D " +
        std::to_string(c->fw.head_dim));
  if (n == 0)
    return;
  const size_t eb = elemKind == 2 ? 4 : 2;
  std::vector<uint16_t> bits[2];
  kvc_memref_4d *src[2] = {keys, values};
  for (int s = 0; s < 2; ++s) {
    const std::vector<uint8_t> host = toHost(src[s], eb);
    bits[s].resize(size_t(B * H * n * D));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t t = 0; t < n; ++t)
          for (int64_t d = 0; d < D; ++d) {
            const int64_t at = b * src[s]->strides[0] + h * src[s]->strides[1] +
                               t * src[s]->strides[2] + d * src[s]->strides[3];
            float x;
            if (elemKind == 2) {
              std::memcpy(&x, &host[size_t(at) * 4], 4);
            } else {
              uint16_t u;
              std::memcpy(&u, &host[size_t(at) * 2], 2);
              if (elemKind == 0) {
                bits[s][size_t(((b * H + h) * n + t) * D + d)] = u;
                continue;
              }
              x = kvc::codec::bitsToFloat(uint32_t(u) << 16);
            }
            bits[s][size_t(((b * H + h) * n + t) * D + d)] = kvc::codec::floatToHalf(x);
          }
  }
  const char *err = nullptr;
  if (kvc_cuda_fw_append(c->fwApp, &c->fw, bits[0].data(), bits[1].data(), n, &err))
    die(std::string("append: ") + (err ? err : "failed"));
}

void _mlir_ciface_kvc_rt_gpu_fixed_width_append_f16(int64_t handle, kvc_memref_4d *keys,
                                                   kvc_memref_4d *values) {
  fixedWidthAppend(0, handle, keys, values);
}
void _mlir_ciface_kvc_rt_gpu_fixed_width_append_bf16(int64_t handle, kvc_memref_4d *keys,
                                                    kvc_memref_4d *values) {
  fixedWidthAppend(1, handle, keys, values);
}
void _mlir_ciface_kvc_rt_gpu_fixed_width_append_f32(int64_t handle, kvc_memref_4d *keys,
                                                   kvc_memref_4d *values) {
  fixedWidthAppend(2, handle, keys, values);
}

void _mlir_ciface_kvc_rt_gpu_encoded_check_rows(int64_t handle, int64_t batch, int64_t hkv,
                                                int64_t fixedWidth) {
  GPUEncodedCache *c = get(handle);
  if ((fixedWidth != 0) != c->fixedWidth)
    die(std::string("the op reads a ") + (fixedWidth ? "fixed-width (entropy = none)" : "Huffman-coded") +
        " encoded cache, the handle holds a " + (c->fixedWidth ? "fixed-width" : "Huffman-coded") +
        " one (kvc_rt_gpu_" + (fixedWidth ? "fixed_width" : "encoded") + "_create builds that)");
  if (batch != c->batch() || hkv != c->hkv())
    die("the op has batch " + std::to_string(batch) + " x " + std::to_string(hkv) +
        " KV heads, the encoded cache " + std::to_string(c->batch()) + " x " +
        std::to_string(c->hkv()));
}

void _mlir_ciface_kvc_rt_gpu_encoded_release(int64_t handle) { kvc_rt_gpu_encoded_destroy(handle); }

void _mlir_ciface_kvc_rt_gpu_encoded_lengths(int64_t handle, kvc_memref_i64_2d *lengths) {
  GPUEncodedCache *c = get(handle);
  const int64_t B = c->batch(), H = c->hkv();
  if (lengths->sizes[0] != B || lengths->sizes[1] != H)
    die("lengths buffer is " + std::to_string(lengths->sizes[0]) + " x " +
        std::to_string(lengths->sizes[1]) + ", the encoded cache " + std::to_string(B) + " x " +
        std::to_string(H));
  std::vector<int64_t> t(size_t(B * H));
  kvc_rt_gpu_encoded_tokens(handle, t.data());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      lengths->aligned[lengths->offset + b * lengths->strides[0] + h * lengths->strides[1]] =
          t[size_t(b * H + h)];
}

} // extern "C"
