//===- CUDADecode.cpp - launch kvc's decode-attention kernels -------------===//
#include "kvc/Runtime/CUDADecode.h"
#include "KernelArgs.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

namespace {
using kvc::cuda::desc;
using kvc::cuda::Memref1D;
using kvc::cuda::launchMerge;
} // namespace

extern "C" {

int kvc_cuda_decode_parse_name(const char *name, kvc_decode_kernel_config *out) {
  std::string s(name);
  size_t pos = s.find("_d");
  while (pos != std::string::npos) {
    kvc_decode_kernel_config c{};
    char dt[8] = {0};
    int consumed = 0;
    if (sscanf(s.c_str() + pos, "_d%d_g%d_q%d_%4[bf16]_b%d_u%d%n", &c.head_dim, &c.group,
               &c.query_seq, dt, &c.block_size, &c.unroll, &consumed) == 6) {
      c.is_bf16 = std::strcmp(dt, "bf16") == 0;
      if (!c.is_bf16 && std::strcmp(dt, "f16") != 0)
        return -1;
      c.elem_bytes = 2;
      c.ragged = s.compare(pos + consumed, 7, "_ragged") == 0;
      c.fused_merge = s.compare(pos + consumed + (c.ragged ? 7 : 0), 3, "_fm") == 0;
      *out = c;
      return 0;
    }
    pos = s.find("_d", pos + 1);
  }
  return -1;
}

int kvc_cuda_decode_kernel_get(kvc_cuda_module m, const char *name, kvc_decode_kernel *out) {
  kvc_decode_kernel k{};
  const std::string base(name);
  if (kvc_cuda_decode_parse_name((base + "_split").c_str(), &k.cfg))
    return -1; // not a decode kernel name (the runtime's error string is not set by parsing)
  if (int rc = kvc_cuda_module_get_function(m, (base + "_split").c_str(), &k.split))
    return rc;
  if (!k.cfg.fused_merge)
    if (int rc = kvc_cuda_module_get_function(m, (base + "_merge").c_str(), &k.merge))
      return rc;
  int sms = 0, perSM = 0;
  if (int rc = kvc_cuda_device_info(nullptr, 0, &sms, nullptr, nullptr, nullptr))
    return rc;
  if (int rc = kvc_cuda_occupancy(k.split, k.cfg.block_size, 0, &perSM))
    return rc;
  k.resident_ctas = sms * perSM;
  *out = k;
  return 0;
}

int kvc_cuda_decode_make_plan(const kvc_decode_kernel_config *cfg, const kvc_decode_shape *sh,
                              int residentCtas, kvc_decode_plan *out) {
  const int64_t kpi = int64_t(cfg->block_size / 32) * (32 / (cfg->head_dim / 8)) * cfg->unroll;
  const int64_t rows = sh->batch * sh->hkv;
  int splits = sh->num_splits;
  if (splits <= 0) {
    const int64_t slots = residentCtas > 0 ? residentCtas : 4 * 132;
    // A ragged row is split by its own length, so size the split count by the longest row.
    const int64_t keys = cfg->ragged && sh->max_len > 0 ? std::min(sh->max_len, sh->skv) : sh->skv;
    // Keys per split: at least 256, or, where that leaves part of one wave idle (short rows
    // at batch 1), down to 4 main-loop tiles as long as the splits still fit in one wave.
    // Fewer than 4 tiles starve a CTA (2-3 tiles of the block-256 unroll-4 kernel were 14-24%
    // slower than 4-5 at batch 1); 4 tiles is 128 keys for the default and small-rows kernels,
    // 3-13% faster at batch 1 on 4k dense and 16k ragged r = 0.3 rows than 256 keys
    // (bench/gpu/results/h100-min-keys-per-split.log). Longer rows keep the 256-key rule.
    const int64_t oneWave = std::max<int64_t>(1, slots / rows);
    const int64_t maxBySize =
        std::max<int64_t>({1, keys / 256, std::min<int64_t>(keys / (4 * kpi), oneWave)});
    const int64_t maxS = std::min<int64_t>(maxBySize, std::max<int64_t>(1, 4 * slots / rows));
    // time ~ waves(s) / s (each split's work shrinks as 1/s); integer compare of w/s ratios.
    int64_t bestS = 1, bestW = (rows + slots - 1) / slots;
    for (int64_t s = 2; s <= maxS; ++s) {
      int64_t w = (rows * s + slots - 1) / slots;
      if (w * bestS < bestW * s) { // w/s < bestW/bestS
        bestS = s;
        bestW = w;
      }
    }
    splits = int(bestS);
  }
  int64_t chunk = (sh->skv + splits - 1) / splits;
  chunk = std::max<int64_t>(kpi, (chunk + kpi - 1) / kpi * kpi);
  const int64_t nq = rows * cfg->group * cfg->query_seq;
  out->num_splits = splits;
  out->chunk = chunk;
  out->o_part_offset = 0;
  out->ml_part_offset = size_t(nq * splits * cfg->head_dim) * 4;
  out->counters_offset = out->ml_part_offset + size_t(nq * splits * 2) * 4;
  out->workspace_bytes = out->counters_offset + (cfg->fused_merge ? size_t(rows) * 4 : 0);
  return 0;
}

int kvc_cuda_decode_init_workspace(const kvc_decode_kernel_config *cfg, const kvc_decode_plan *plan,
                                   kvc_cuda_ptr ws, kvc_cuda_stream stream) {
  return kvc::cuda::zeroMergeCounters(cfg, plan, ws, stream);
}

int kvc_cuda_decode_launch(kvc_cuda_function split, kvc_cuda_function merge,
                           const kvc_decode_kernel_config *cfg, const kvc_decode_shape *sh,
                           const kvc_decode_plan *plan, kvc_cuda_ptr q, kvc_cuda_ptr k,
                           kvc_cuda_ptr v, kvc_cuda_ptr lengths, kvc_cuda_ptr ws,
                           kvc_cuda_ptr out, kvc_cuda_stream stream) {
  const int64_t D = cfg->head_dim;
  const int64_t nq = sh->batch * sh->hkv * cfg->group * cfg->query_seq;
  const int64_t nkv = sh->batch * sh->hkv * sh->skv * D;
  Memref1D mq = desc(q, nq * D), mk = desc(k, nkv), mv = desc(v, nkv),
           ml = desc(lengths, sh->batch * sh->hkv),
           mo = desc(ws + plan->o_part_offset, nq * plan->num_splits * D),
           mm = desc(ws + plan->ml_part_offset, nq * plan->num_splits * 2),
           mout = desc(out, nq * D);
  int64_t skv = sh->skv, chunk = plan->chunk, ns = plan->num_splits;
  void *params[48];
  int n = 0;
  mq.push(params, n);
  mk.push(params, n);
  mv.push(params, n);
  if (cfg->ragged)
    ml.push(params, n);
  mo.push(params, n);
  mm.push(params, n);
  Memref1D mc = desc(ws + plan->counters_offset, sh->batch * sh->hkv), mout2 = mout;
  if (cfg->fused_merge) {
    mc.push(params, n);
    mout2.push(params, n);
  }
  params[n++] = &skv;
  params[n++] = &chunk;
  int rc = kvc_cuda_launch(split, unsigned(plan->num_splits), unsigned(sh->hkv),
                           unsigned(sh->batch), unsigned(cfg->block_size), 1, 1, 0, stream,
                           params);
  if (rc || !merge || cfg->fused_merge) // merge == null: split only (--split-only diagnostics)
    return rc;
  n = 0;
  Memref1D mo2 = mo, mm2 = mm;
  mo2.push(params, n);
  mm2.push(params, n);
  mout.push(params, n);
  params[n++] = &ns;
  return launchMerge(merge, nq, D, stream, params);
}

} // extern "C"
