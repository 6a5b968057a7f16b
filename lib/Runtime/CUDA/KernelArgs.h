//===- KernelArgs.h - kernel parameters of kvc's generated GPU kernels ------*- C++ -*-===//
//
// The kernels convert-kvc-to-gpu emits take every buffer as MLIR's default descriptor of a 1-D
// memref<?xT>: five parameters (allocated ptr, aligned ptr, offset, size, stride). The launchers
// (CUDADecode.cpp, CUDAEncoded.cpp, CUDAFixedWidth.cpp) build them with this, and launch the
// shared merge kernel with launchMerge; the cache forms' split + merge pair with
// launchCacheDecode.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_LIB_RUNTIME_CUDA_KERNELARGS_H
#define KVC_LIB_RUNTIME_CUDA_KERNELARGS_H

#include "kvc/Runtime/CUDA.h"
#include "kvc/Runtime/CUDADecode.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvc::cuda {

struct Memref1D {
  uint64_t alloc, aligned;
  int64_t offset, size, stride;
  /// Appends the five parameter pointers (this object must outlive the launch call).
  void push(void **params, int &n) {
    params[n++] = &alloc;
    params[n++] = &aligned;
    params[n++] = &offset;
    params[n++] = &size;
    params[n++] = &stride;
  }
};

/// The descriptor of `n` contiguous elements at device address `p`.
inline Memref1D desc(kvc_cuda_ptr p, int64_t n) { return {p, p, 0, n, 1}; }

/// Launches a merge kernel (grid: nq query rows) with its CTA size, the PTX .maxntid: D * slices
/// since the parallel merge, D before. Anything else (e.g. a merge without .maxntid, which
/// reports 1024) is not a kvc merge for this head dim.
inline int launchMerge(kvc_cuda_function merge, int64_t nq, int64_t D, kvc_cuda_stream stream,
                       void **params) {
  int threads = 0;
  if (int rc = kvc_cuda_function_max_threads(merge, &threads))
    return rc;
  if (threads != D && threads != kvc_decode_merge_threads(D)) {
    kvc_cuda_set_last_error("merge kernel: its .maxntid is neither D nor "
                            "kvc_decode_merge_threads(D) (not a kvc merge for this head dim)");
    return -1;
  }
  return kvc_cuda_launch(merge, unsigned(nq), 1, 1, unsigned(threads), 1, 1, 0, stream, params);
}

/// A new device buffer of `bytes` holding `src` (the cache forms' uploads); 0 or the runtime's
/// error code (the buffer, if allocated, is left in *dst for the caller's free).
inline int uploadBuffer(kvc_cuda_ptr *dst, const void *src, size_t bytes) {
  if (int rc = kvc_cuda_malloc(dst, bytes))
    return rc;
  return kvc_cuda_memcpy_htod(*dst, src, bytes);
}

/// Frees the `n` device buffers of a cache form and clears them.
inline void freeBuffers(kvc_cuda_ptr *buf, int n) {
  for (int i = 0; i < n; ++i)
    if (buf[i]) {
      kvc_cuda_free(buf[i]);
      buf[i] = 0;
    }
}

/// The workspace of a split plan for `nq` query rows and `splits` splits of D channels: the
/// unnormalised outputs, then the (max, sum) pairs (kvc_encoded_plan, kvc_fw_plan).
template <class Plan> void setPlanWorkspace(Plan *p, int64_t nq, int splits, int64_t D) {
  p->num_splits = splits;
  p->o_part_offset = 0;
  p->ml_part_offset = size_t(nq * splits * D) * 4;
  p->workspace_bytes = p->ml_part_offset + size_t(nq * splits * 2) * 4;
}

/// Zeroes a fused merge's arrival counters (the workspace from plan->counters_offset on) once
/// per workspace; nothing for split + merge kernels (the dense and fixed-width plans).
template <class Cfg, class Plan>
int zeroMergeCounters(const Cfg *cfg, const Plan *plan, kvc_cuda_ptr ws, kvc_cuda_stream stream) {
  if (!cfg->fused_merge)
    return 0;
  return kvc_cuda_memset_d8_async(ws + plan->counters_offset, 0,
                                  plan->workspace_bytes - plan->counters_offset, stream);
}

/// The split + merge launches of a cache-form decode (encoded, fixed-width): the split kernel
/// takes the query, the form's `nbuf` device buffers and the plan's partials, grid (splits,
/// hkv, batch) with `threads` per CTA; then the merge over the partials into `out`. With
/// `counters` (a fused-merge split kernel: one i32 per row), the split also takes them and
/// `out`, and there is no merge launch.
template <class Plan>
int launchCacheDecode(kvc_cuda_function split, kvc_cuda_function merge, const kvc_cuda_ptr *buf,
                      const int64_t *len, int nbuf, int64_t batch, int64_t hkv, int64_t nq,
                      int64_t D, unsigned threads, const Plan *plan, kvc_cuda_ptr q,
                      kvc_cuda_ptr ws, kvc_cuda_ptr out, kvc_cuda_stream stream,
                      kvc_cuda_ptr counters = 0) {
  std::vector<Memref1D> m;
  m.push_back(desc(q, nq * D));
  for (int i = 0; i < nbuf; ++i)
    m.push_back(desc(buf[i], len[i]));
  m.push_back(desc(ws + plan->o_part_offset, nq * plan->num_splits * D));
  m.push_back(desc(ws + plan->ml_part_offset, nq * plan->num_splits * 2));
  const size_t partials = m.size();
  if (counters) {
    m.push_back(desc(counters, batch * hkv));
    m.push_back(desc(out, nq * D));
  }
  std::vector<void *> params(5 * m.size() + 4);
  int n = 0;
  for (Memref1D &d : m)
    d.push(params.data(), n);
  if (int rc = kvc_cuda_launch(split, unsigned(plan->num_splits), unsigned(hkv), unsigned(batch),
                               threads, 1, 1, 0, stream, params.data()))
    return rc;
  if (counters)
    return 0;
  Memref1D mo = m[partials - 2], mm = m[partials - 1], mout = desc(out, nq * D);
  int64_t ns = plan->num_splits;
  n = 0;
  mo.push(params.data(), n);
  mm.push(params.data(), n);
  mout.push(params.data(), n);
  params[size_t(n++)] = &ns;
  return launchMerge(merge, nq, D, stream, params.data());
}

} // namespace kvc::cuda

#endif
