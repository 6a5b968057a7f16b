# kvc.vote + kvc.cache.select end to end: GVote picks each (batch, KV head) row's kept set and
# budget from the data (hidden-state Gaussian, W_q, RoPE'd future queries), the selected pairs
# form a ragged cache, a decode token is appended and attention runs over it. The compiled
# program's budgets must equal the library's (kvc.runtime.vote.gvote_head, same seed) and its
# decode output the numpy attention over the same kept rows plus the new token (relative error
# 1e-5). Also: the budgets differ between heads (the point of GVote), so the test can fail.
#
# REQUIRES: numpy
# RUN: %python %s | FileCheck %s
# CHECK: budgets compiled {{\[}}[[B:.*]]{{\]}} library {{\[}}[[B]]{{\]}}
# CHECK: decode rel_err {{.*}} OK
import sys

import numpy as np

from kvc.reference import attention as ref_attention
from kvc.runtime import vote
from kvc.testing.mlir_exec import build_main, parse_printed, rel_err, run_module, runtime_library

B, HQ, HKV, S, D, DM = 1, 4, 2, 64, 16, 32
P, SAMPLES, SEED, SINKS, RECENT, NFUT, THETA = 0.9, 8, 3, 2, 4, 16, 10000.0

FUNC = """
func.func @vote_decode(%kp: tensor<1x2x64x16xf32>, %vp: tensor<1x2x64x16xf32>, %qc: tensor<1x4x1x16xf32>,
                       %mean: tensor<32xf32>, %var: tensor<32xf32>, %wq: tensor<4x16x32xf32>,
                       %qd: tensor<1x4x1x16xf32>, %kd: tensor<1x2x1x16xf32>, %vd: tensor<1x2x1x16xf32>)
    -> (tensor<1x4x1x16xf32>, tensor<1x2xf32>) {
  %c = kvc.cache.from_tensors %kp, %vp : tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32> -> !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>
  %kept, %counts = kvc.vote %c, %qc, %mean, %var, %wq {p = 0.9 : f64, samples = 8 : i64, seed = 3 : i64, sinks = 2 : i64, recent = 4 : i64, n_future = 16 : i64}
      : !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>, tensor<1x4x1x16xf32>, tensor<32xf32>, tensor<32xf32>, tensor<4x16x32xf32> -> tensor<1x2x64xi64>, tensor<1x2xi64>
  %r = kvc.cache.select %c, %kept, %counts : !kvc.cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>>, tensor<1x2x64xi64>, tensor<1x2xi64> -> !kvc.ragged_cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, sinks = 2, recent = 4>
  %a = kvc.cache.append %r, %kd, %vd : !kvc.ragged_cache<tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, sinks = 2, recent = 4>, tensor<1x2x1x16xf32>, tensor<1x2x1x16xf32> -> !kvc.ragged_cache<tensor<1x2x65x16xf32>, tensor<1x2x65x16xf32>, sinks = 2, recent = 4>
  %k, %v = kvc.cache.view %a : !kvc.ragged_cache<tensor<1x2x65x16xf32>, tensor<1x2x65x16xf32>, sinks = 2, recent = 4> -> tensor<1x2x65x16xf32>, tensor<1x2x65x16xf32>
  %l = kvc.cache.lengths %a : !kvc.ragged_cache<tensor<1x2x65x16xf32>, tensor<1x2x65x16xf32>, sinks = 2, recent = 4> -> tensor<1x2xi64>
  %o = kvc.attention %qd, %k, %v lengths(%l) {causal} : (tensor<1x4x1x16xf32>, tensor<1x2x65x16xf32>, tensor<1x2x65x16xf32>, tensor<1x2xi64>) -> tensor<1x4x1x16xf32>
  %e = tensor.empty() : tensor<1x2xf32>
  %cf = linalg.generic {indexing_maps = [affine_map<(a, b) -> (a, b)>, affine_map<(a, b) -> (a, b)>], iterator_types = ["parallel", "parallel"]}
      ins(%counts : tensor<1x2xi64>) outs(%e : tensor<1x2xf32>) {
  ^bb0(%x: i64, %y: f32):
    %f = arith.sitofp %x : i64 to f32
    linalg.yield %f : f32
  } -> tensor<1x2xf32>
  return %o, %cf : tensor<1x4x1x16xf32>, tensor<1x2xf32>
}
"""


def main():
    rng = np.random.default_rng(5)
    kp = rng.standard_normal((B, HKV, S, D)).astype(np.float32)
    vp = rng.standard_normal((B, HKV, S, D)).astype(np.float32)
    # Sharper attention (larger key norms) needs fewer keys; head 1 is sharper than head 0.
    kp[0, 0] *= 3.0
    kp[0, 1] *= 8.0
    qc = rng.standard_normal((B, HQ, 1, D)).astype(np.float32)
    mean = rng.standard_normal(DM).astype(np.float32) * 0.1
    var = (0.5 + rng.random(DM)).astype(np.float32)
    wq = (rng.standard_normal((HQ, D, DM)) / np.sqrt(DM)).astype(np.float32)
    qd = rng.standard_normal((B, HQ, 1, D)).astype(np.float32)
    kd = rng.standard_normal((B, HKV, 1, D)).astype(np.float32)
    vd = rng.standard_normal((B, HKV, 1, D)).astype(np.float32)
    inputs = [kp, vp, qc, mean, var, wq, qd, kd, vd]
    module = build_main(FUNC, "vote_decode", inputs, ["f32"] * len(inputs),
                        [(B, HQ, 1, D), (B, HKV)], "f32")
    got, counts = parse_printed(run_module(module, shared_libs=[runtime_library()]),
                                [(B, HQ, 1, D), (B, HKV)])
    g = HQ // HKV
    lib_budgets, want = [], np.zeros((B, HQ, 1, D))
    for h in range(HKV):
        kept, _ = vote.gvote_head(kp[0, h], qc[0, h * g:(h + 1) * g], mean, var,
                                  wq[h * g:(h + 1) * g], p=P, n_samples=SAMPLES, seed=SEED,
                                  n_sink=SINKS, n_recent=RECENT, n_future=NFUT, rope_theta=THETA)
        lib_budgets.append(len(kept))
        K = np.concatenate([kp[0, h, kept], kd[0, h]])[None, None]
        V = np.concatenate([vp[0, h, kept], vd[0, h]])[None, None]
        want[0, h * g:(h + 1) * g] = ref_attention(qd[:, h * g:(h + 1) * g], K, V)[0]
    compiled = [int(c) for c in counts.reshape(-1)]
    print("budgets compiled [%s] library [%s]" % (", ".join(map(str, compiled)),
                                                  ", ".join(map(str, lib_budgets))))
    err = rel_err(got, want)
    ok = err <= 1e-5 and compiled == lib_budgets and len(set(compiled)) > 1 and min(compiled) < S
    print("decode rel_err %.2e: %s" % (err, "OK" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
