//===- FixedWidthAppend.h - checking GPU appends to fixed-width caches ------*- C++ -*-===//
//
// kvc_cuda_fw_gpu_append (store kernels) against the host appender (kvc_fw_appender_append,
// which the selftest checks against the codec) after the same tokens. Used by
// `kvc-bench fixed-width append-check --store` on the GPU (with the decode kernels on top) and
// by kvc-append-emu --fixed-width (an emulated device, in CI). Header-only.
//
// The two forms must agree, bit for bit, in every part the decode kernels read: the row
// table, each row's code tiles, key and value parameters below Tf, and its window tokens
// [Tf, T). Elsewhere they may differ (the store kernels write a tile's words as its blocks are
// encoded, the host when it completes; window slots below Tf are dead).
//
//===----------------------------------------------------------------------===//
#ifndef KVC_TOOLS_KVC_BENCH_FIXEDWIDTHAPPEND_H
#define KVC_TOOLS_KVC_BENCH_FIXEDWIDTHAPPEND_H

#include "kvc/Runtime/CUDA.h"
#include "kvc/Runtime/CUDAFixedWidth.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace kvcbench {

/// "" if the device cache equals the host form in every live part, else where it differs.
/// `compared` counts the bytes compared.
inline std::string fwLiveDiff(const kvc_fw_host_form &h, const kvc_cuda_fw_cache &c,
                              uint64_t *compared = nullptr) {
  std::vector<std::vector<uint8_t>> dev(KVC_FW_NUM_BUFFERS);
  for (int i = 0; i < KVC_FW_NUM_BUFFERS; ++i) {
    if (c.len[i] != h.len[i] || c.elem_bytes[i] != h.elem_bytes[i])
      return "buffer " + std::to_string(i) + " has another size";
    dev[size_t(i)].resize(size_t(h.len[i] * h.elem_bytes[i]));
    if (kvc_cuda_memcpy_dtoh(dev[size_t(i)].data(), c.buf[i], dev[size_t(i)].size()))
      return std::string("reading the device cache: ") + kvc_cuda_last_error();
  }
  auto same = [&](int buf, int64_t lo, int64_t hi) {
    const size_t eb = size_t(h.elem_bytes[buf]);
    if (hi <= lo)
      return true;
    if (compared)
      *compared += uint64_t(hi - lo) * eb;
    return !std::memcmp(dev[size_t(buf)].data() + size_t(lo) * eb,
                        static_cast<const uint8_t *>(h.data[buf]) + size_t(lo) * eb,
                        size_t(hi - lo) * eb);
  };
  const int64_t R = h.batch * h.hkv, D = h.head_dim, KB = h.key_block;
  if (!same(KVC_FW_ROWS, 0, R * 4))
    return "the row tables differ";
  const int32_t *rows = static_cast<const int32_t *>(h.data[KVC_FW_ROWS]);
  const int64_t kwTile = KVC_FW_WARPS * kvc_fw_key_u4(int(D)) * 128,
                vwTile = KVC_FW_WARPS * kvc_fw_value_u4(int(D)) * 128;
  static const char *names[KVC_FW_NUM_BUFFERS] = {"rows", "kw", "vw", "kmin", "kstep",
                                                  "vmin", "vstep", "krec", "vrec"};
  for (int64_t r = 0; r < R; ++r) {
    const int64_t T = rows[4 * r], Tf = rows[4 * r + 1], tb = rows[4 * r + 2],
                  wb = rows[4 * r + 3], F = Tf / KVC_FW_TILE;
    const struct {
      int buf;
      int64_t lo, hi;
    } parts[] = {{KVC_FW_KW, tb * kwTile, (tb + F) * kwTile},
                 {KVC_FW_VW, tb * vwTile, (tb + F) * vwTile},
                 {KVC_FW_KMIN, tb * KVC_FW_TILE / KB, (tb * KVC_FW_TILE + Tf) / KB},
                 {KVC_FW_KSTEP, tb * KVC_FW_TILE / KB, (tb * KVC_FW_TILE + Tf) / KB},
                 {KVC_FW_VMIN, tb * KVC_FW_TILE, tb * KVC_FW_TILE + Tf},
                 {KVC_FW_VSTEP, tb * KVC_FW_TILE, tb * KVC_FW_TILE + Tf},
                 {KVC_FW_KREC, wb * D, (wb + T - Tf) * D},
                 {KVC_FW_VREC, wb * D, (wb + T - Tf) * D}};
    for (const auto &p : parts)
      if (!same(p.buf, p.lo, p.hi))
        return std::string(names[p.buf]) + " of row " + std::to_string(r) + " (T " +
               std::to_string(T) + ", Tf " + std::to_string(Tf) + ") differs";
  }
  return "";
}

/// A device cache of `heads` that appends on the GPU, made from a fresh host appender (freed
/// once the GPU appender is built); owns the cache and the GPU appender. init returns "" or
/// why it could not be made.
struct FwGpuCache {
  kvc_cuda_fw_cache cache{};
  kvc_fw_gpu_appender *gpu = nullptr;
  bool uploaded = false;
  FwGpuCache() = default;
  FwGpuCache(const FwGpuCache &) = delete;
  FwGpuCache &operator=(const FwGpuCache &) = delete;
  std::string init(const kvc_codec_head *const *heads, int64_t B, int64_t Hkv, int64_t maxNew) {
    const char *err = nullptr;
    kvc_fw_appender *fresh = nullptr;
    std::string why;
    if (kvc_fw_appender_create(heads, B, Hkv, maxNew, &fresh, &err))
      why = err ? err : "kvc_fw_appender_create failed";
    else if (kvc_cuda_fw_upload_appendable(fresh, &cache, &err))
      why = err ? err : kvc_cuda_last_error();
    else if ((uploaded = true, kvc_cuda_fw_gpu_appender_create(fresh, &cache, &gpu, &err)))
      why = err ? err : "kvc_cuda_fw_gpu_appender_create failed";
    if (fresh)
      kvc_fw_appender_free(fresh);
    return why;
  }
  ~FwGpuCache() {
    if (gpu)
      kvc_fw_gpu_appender_free(gpu);
    if (uploaded)
      kvc_cuda_fw_free(&cache);
  }
};

} // namespace kvcbench

#endif
