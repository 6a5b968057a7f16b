# kvc-compress-cache end to end: a prefill + decode program is rewritten to compress the prefill
# cache (kvc.compress -> libkvc_runtime), append the decode token exactly and run decode
# attention over the ragged cache. The compiled decode output must equal the library/Python
# path: kvc.runtime.compress on each KV head, then numpy attention over [compressed; new token].
# Tolerance: relative error 1e-4 (both sides run the same f32 library; attention differs in
# summation order). Also checks that compression changed the output (the test can fail).
#
# REQUIRES: numpy
# RUN: %python %s | FileCheck %s
# CHECK: streaming ratio=0.5 uniform: {{.*}}: OK
# CHECK: snapkv ratio=0.5 uniform: {{.*}}: OK
# CHECK: select_fit ratio=0.5 uniform: {{.*}}: OK
# CHECK: sculpt ratio=0.5 uniform: {{.*}}: OK
# CHECK: sculpt budget=8 pilot: {{.*}}: OK
# CHECK: 5 configurations, 0 failed
import sys

import numpy as np

from kvc.reference import attention as ref_attention
from kvc.runtime import compress as rt
from kvc.testing.mlir_exec import (parse_printed, prefill_decode_case, rel_err, run_module,
                                   runtime_library)

B, HQ, HKV, S, D = 1, 4, 2, 24, 8
SINKS, RECENT = 2, 4

FUNC = """
func.func @prefill_decode(%qp: tensor<1x4x24x8xf32>, %kp: tensor<1x2x24x8xf32>, %vp: tensor<1x2x24x8xf32>,
                          %qd: tensor<1x4x1x8xf32>, %kd: tensor<1x2x1x8xf32>, %vd: tensor<1x2x1x8xf32>)
    -> tensor<1x4x1x8xf32> {
  %op = kvc.attention %qp, %kp, %vp {causal} : (tensor<1x4x24x8xf32>, tensor<1x2x24x8xf32>, tensor<1x2x24x8xf32>) -> tensor<1x4x24x8xf32>
  %c = kvc.cache.from_tensors %kp, %vp : tensor<1x2x24x8xf32>, tensor<1x2x24x8xf32> -> !kvc.cache<tensor<1x2x24x8xf32>, tensor<1x2x24x8xf32>>
  %c2 = kvc.cache.append %c, %kd, %vd : !kvc.cache<tensor<1x2x24x8xf32>, tensor<1x2x24x8xf32>>, tensor<1x2x1x8xf32>, tensor<1x2x1x8xf32> -> !kvc.cache<tensor<1x2x25x8xf32>, tensor<1x2x25x8xf32>>
  %k, %v = kvc.cache.view %c2 : !kvc.cache<tensor<1x2x25x8xf32>, tensor<1x2x25x8xf32>> -> tensor<1x2x25x8xf32>, tensor<1x2x25x8xf32>
  %od = kvc.attention %qd, %k, %v {causal} : (tensor<1x4x1x8xf32>, tensor<1x2x25x8xf32>, tensor<1x2x25x8xf32>) -> tensor<1x4x1x8xf32>
  return %od : tensor<1x4x1x8xf32>
}
"""


def python_path(qp, kp, vp, qd, kd, vd, method, budgets):
    g = HQ // HKV
    out = np.zeros((B, HQ, 1, D))
    for h in range(HKV):
        Q = qp[0, h * g:(h + 1) * g] if method != "streaming" else None
        Ck, Cv, _, _ = rt.compress_head(kp[0, h], vp[0, h], Q, budgets[h], method=method,
                                        n_sink=SINKS, n_recent=RECENT)
        K = np.concatenate([Ck, kd[0, h]])[None, None]
        V = np.concatenate([Cv, vd[0, h]])[None, None]
        out[0, h * g:(h + 1) * g] = ref_attention(qd[:, h * g:(h + 1) * g], K, V)[0]
    return out


def main():
    (qp, kp, vp, qd, kd, vd), module, full = prefill_decode_case(FUNC, 7, B, HQ, HKV, S, D)
    configs = [("streaming", "ratio=0.5", "uniform"), ("snapkv", "ratio=0.5", "uniform"),
               ("select_fit", "ratio=0.5", "uniform"), ("sculpt", "ratio=0.5", "uniform"),
               ("sculpt", "budget=8", "pilot")]
    failures = 0
    for method, amount, mode in configs:
        opt = "--kvc-compress-cache=method=%s %s budget-mode=%s sinks=%d recent=%d" % (
            method, amount, mode, SINKS, RECENT)
        (got,) = parse_printed(run_module(module, extra_opt_args=[opt],
                                          shared_libs=[runtime_library()]), [(B, HQ, 1, D)])
        if mode == "uniform":
            budgets = [12, 12]
        else:
            heads = [(kp[0, h], vp[0, h], qp[0, h * 2:(h + 1) * 2]) for h in range(HKV)]
            _, pilot_budgets, _ = rt.pilot(heads, total=16, t_min=SINKS + RECENT, n_sink=SINKS,
                                           n_recent=RECENT)
            budgets = [int(b) for b in pilot_budgets]
        py_method = {"select_fit": "select-fit"}.get(method, method)
        want = python_path(qp, kp, vp, qd, kd, vd, py_method, budgets)
        err, changed = rel_err(got, want), rel_err(got, full)
        ok = err <= 1e-4 and changed > 1e-3
        failures += not ok
        print("%s %s %s: rel_err(compiled vs library path)=%.2e, vs uncompressed=%.2e: %s" % (
            method, amount, mode, err, changed, "OK" if ok else "FAIL"))
    print("%d configurations, %d failed" % (len(configs), failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
