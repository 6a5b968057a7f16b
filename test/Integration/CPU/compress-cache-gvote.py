# kvc-compress-cache budget-mode=gvote end to end: the pass inserts kvc.vote (current query =
# the prefill's last query row, query model from the arguments marked kvc.gvote.*) and
# kvc.cache.select; decode appends exactly and attends over the ragged cache. The compiled
# output must equal numpy attention over the rows the GVote library keeps (same seed), with
# relative error 1e-5.
#
# REQUIRES: numpy
# RUN: %python %s | FileCheck %s
# CHECK: gvote via kvc-compress-cache: kept [[N0:[0-9]+]]/64 and [[N1:[0-9]+]]/64, rel_err {{.*}}: OK
import sys

import numpy as np

from kvc.reference import attention as ref_attention
from kvc.runtime import vote
from kvc.testing.mlir_exec import build_main, parse_printed, rel_err, run_module, runtime_library

B, HQ, HKV, S, D, DM = 1, 4, 2, 64, 16, 32

FUNC = """
func.func @prefill_decode(%qp: tensor<1x4x64x16xf32>, %kp: tensor<1x2x64x16xf32>, %vp: tensor<1x2x64x16xf32>,
                          %mean: tensor<32xf32> {kvc.gvote.hidden_mean = 0 : i64},
                          %var: tensor<32xf32> {kvc.gvote.hidden_var = 0 : i64},
                          %wq: tensor<4x16x32xf32> {kvc.gvote.w_q = 0 : i64},
                          %qd: tensor<1x4x1x16xf32>, %kd: tensor<1x2x1x16xf32>, %vd: tensor<1x2x1x16xf32>)
    -> tensor<1x4x1x16xf32> {
  %op = kvc.attention %qp, %kp, %vp {causal} : (tensor<1x4x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>) -> tensor<1x4x64x16xf32>
  %c = kvc.cache.from_tensors %kp, %vp : tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32> -> !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>
  %c2 = kvc.cache.append %c, %kd, %vd : !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>, tensor<1x2x1x16xf32>, tensor<1x2x1x16xf32> -> !kvc.cache<tensor<1x2x65x16xf32>, tensor<1x2x65x16xf32>>
  %k, %v = kvc.cache.view %c2 : !kvc.cache<tensor<1x2x65x16xf32>, tensor<1x2x65x16xf32>> -> tensor<1x2x65x16xf32>, tensor<1x2x65x16xf32>
  %od = kvc.attention %qd, %k, %v {causal} : (tensor<1x4x1x16xf32>, tensor<1x2x65x16xf32>, tensor<1x2x65x16xf32>) -> tensor<1x4x1x16xf32>
  return %od : tensor<1x4x1x16xf32>
}
"""


def main():
    rng = np.random.default_rng(9)
    qp = rng.standard_normal((B, HQ, S, D)).astype(np.float32)
    kp = rng.standard_normal((B, HKV, S, D)).astype(np.float32)
    kp[0, 0] *= 3.0
    kp[0, 1] *= 8.0
    vp = rng.standard_normal((B, HKV, S, D)).astype(np.float32)
    mean = (rng.standard_normal(DM) * 0.1).astype(np.float32)
    var = (0.5 + rng.random(DM)).astype(np.float32)
    wq = (rng.standard_normal((HQ, D, DM)) / np.sqrt(DM)).astype(np.float32)
    qd = rng.standard_normal((B, HQ, 1, D)).astype(np.float32)
    kd = rng.standard_normal((B, HKV, 1, D)).astype(np.float32)
    vd = rng.standard_normal((B, HKV, 1, D)).astype(np.float32)
    inputs = [qp, kp, vp, mean, var, wq, qd, kd, vd]
    module = build_main(FUNC, "prefill_decode", inputs, ["f32"] * len(inputs),
                        [(B, HQ, 1, D)], "f32")
    opt = ("--kvc-compress-cache=budget-mode=gvote p=0.9 samples=8 seed=2 sinks=2 recent=4 "
           "n-future=16")
    (got,) = parse_printed(run_module(module, extra_opt_args=[opt],
                                      shared_libs=[runtime_library()]), [(B, HQ, 1, D)])
    g = HQ // HKV
    want, kept_counts = np.zeros((B, HQ, 1, D)), []
    for h in range(HKV):
        kept, _ = vote.gvote_head(kp[0, h], qp[0, h * g:(h + 1) * g, S - 1:S], mean, var,
                                  wq[h * g:(h + 1) * g], p=0.9, n_samples=8, seed=2, n_sink=2,
                                  n_recent=4, n_future=16, rope_theta=10000.0)
        kept_counts.append(len(kept))
        K = np.concatenate([kp[0, h, kept], kd[0, h]])[None, None]
        V = np.concatenate([vp[0, h, kept], vd[0, h]])[None, None]
        want[0, h * g:(h + 1) * g] = ref_attention(qd[:, h * g:(h + 1) * g], K, V)[0]
    err = rel_err(got, want)
    ok = err <= 1e-5 and min(kept_counts) < S
    print("gvote via kvc-compress-cache: kept %d/%d and %d/%d, rel_err %.2e: %s" % (
        kept_counts[0], S, kept_counts[1], S, err, "OK" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
