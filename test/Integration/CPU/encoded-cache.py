# kvc-quantize-cache / kvc-entropy-encode end to end, alone and after kvc-compress-cache: the
# compiled decode step (cache encoded through libkvc_runtime, new token appended to the encoded
# cache, attention over the decoded cache) must equal the Python path built from the same
# libraries: kvc.runtime.codec per row (+ kvc.runtime.compress first when distilling), decode,
# numpy attention. Tolerance: relative error 1e-4. It must also differ from the uncompressed
# output (the codec is lossy), so the test can fail.
#
# REQUIRES: numpy
# RUN: %python %s | FileCheck %s
# CHECK: quantize k-error=0.05 v-error=0.1: {{.*}}: OK
# CHECK: quantize+entropy k-error=0.02 v-error=0.05 key-group=channel: {{.*}}: OK
# CHECK: compress(sculpt r=0.5)+quantize+entropy: {{.*}}: OK
# CHECK: 3 configurations, 0 failed
import sys

import numpy as np

from kvc.reference import attention as ref_attention
from kvc.runtime import codec, compress as rt
from kvc.testing.mlir_exec import (parse_printed, prefill_decode_case, rel_err, run_module,
                                   runtime_library)

B, HQ, HKV, S, D = 1, 4, 2, 96, 16
RECENT_K, RECENT_V, KBLOCK, VBLOCK = 16, 32, 16, 32

FUNC = open(__file__.replace("encoded-cache.py", "Inputs/prefill_decode_96.mlir")).read()


def python_path(qp, kp, vp, qd, kd, vd, k_error, v_error, key_grouping, distil):
    g = HQ // HKV
    out = np.zeros((B, HQ, 1, D))
    for h in range(HKV):
        K, V = kp[0, h], vp[0, h]
        if distil:
            K, V, _, _ = rt.compress_head(K, V, qp[0, h * g:(h + 1) * g], S // 2,
                                          method="sculpt", n_sink=2, n_recent=8)
        head = codec.encode_head(K, V, k_error=k_error, v_error=v_error, key_block=KBLOCK,
                                 value_block=VBLOCK, key_recent=RECENT_K, value_recent=RECENT_V,
                                 key_grouping=key_grouping)
        head.append(kd[0, h], vd[0, h])
        Kd, Vd = head.decode()
        out[0, h * g:(h + 1) * g] = ref_attention(qd[:, h * g:(h + 1) * g], Kd[None, None],
                                                  Vd[None, None])[0]
    return out


def main():
    (qp, kp, vp, qd, kd, vd), module, full = prefill_decode_case(FUNC, 11, B, HQ, HKV, S, D)
    common = "key-block=%d value-block=%d recent-keys=%d recent-values=%d" % (
        KBLOCK, VBLOCK, RECENT_K, RECENT_V)
    configs = [
        ("quantize k-error=0.05 v-error=0.1",
         ["--kvc-quantize-cache=k-error=0.05 v-error=0.1 " + common], 0.05, 0.1, "block", False),
        ("quantize+entropy k-error=0.02 v-error=0.05 key-group=channel",
         ["--kvc-quantize-cache=k-error=0.02 v-error=0.05 key-group=channel " + common,
          "--kvc-entropy-encode"], 0.02, 0.05, "channel", False),
        ("compress(sculpt r=0.5)+quantize+entropy",
         ["--kvc-compress-cache=method=sculpt ratio=0.5 sinks=2 recent=8",
          "--kvc-quantize-cache=k-error=0.05 v-error=0.1 " + common, "--kvc-entropy-encode"],
         0.05, 0.1, "block", True),
    ]
    failures = 0
    for name, passes, ke, ve, grouping, distil in configs:
        (got,) = parse_printed(run_module(module, extra_opt_args=passes,
                                          shared_libs=[runtime_library()]), [(B, HQ, 1, D)])
        want = python_path(qp, kp, vp, qd, kd, vd, ke, ve, grouping, distil)
        err, changed = rel_err(got, want), rel_err(got, full)
        ok = err <= 1e-4 and changed > 1e-4
        failures += not ok
        print("%s: rel_err(compiled vs library path)=%.2e, vs uncompressed=%.2e: %s" % (
            name, err, changed, "OK" if ok else "FAIL"))
    print("%d configurations, %d failed" % (len(configs), failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
