# Execution tests of kvc.attention on CPU: kvc-opt --kvc-cpu-pipeline | mlir-runner, compared
# with the float64 numpy reference (python/kvc/reference.py).
#
# Tolerances (relative Frobenius error of the whole output vs the float64 reference, computed on
# the same rounded inputs): f32 1e-5; f16 1e-3 and bf16 8e-3 (dominated by rounding the output
# to the 11- and 8-bit significands; scores and softmax are accumulated in f32).
#
# REQUIRES: numpy
# RUN: %python %s | FileCheck %s
import sys

import numpy as np

from kvc.reference import attention as ref_attention
from kvc.testing.mlir_exec import (build_main, parse_printed, rel_err, round_bf16, run_module,
                                   tensor_type)

TOL = {"f32": 1e-5, "f16": 1e-3, "bf16": 8e-3}


def make(shape, elem, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    if elem == "f16":
        return x.astype(np.float16).astype(np.float32)
    if elem == "bf16":
        return round_bf16(x)
    return x


def run_case(name, b, hq, hkv, sq, skv, d, dv, elem="f32", mask=None, attrs=None, seed=0,
             masked_row=None):
    rng = np.random.default_rng(seed)
    q = make((b, hq, sq, d), elem, rng)
    k = make((b, hkv, skv, d), elem, rng)
    v = make((b, hkv, skv, dv), elem, rng)
    attrs = dict(attrs or {})
    inputs, elems = [q, k, v], [elem] * 3
    mask_arr = None
    if mask is not None:
        kind, mshape = mask
        if kind == "bool":
            mask_arr = rng.random(mshape) > 0.3
            melem = "i1"
        else:
            mask_arr = np.where(rng.random(mshape) > 0.3, 0.0,
                                -1e4 * rng.random(mshape)).astype(np.float32)
            melem = "f32" if elem == "f32" else elem
            if melem == "f16":
                mask_arr = mask_arr.astype(np.float16).astype(np.float32)
            elif melem == "bf16":
                mask_arr = round_bf16(mask_arr)
        if masked_row is not None:
            mask_arr[..., masked_row, :] = False if kind == "bool" else -np.inf
        inputs.append(mask_arr)
        elems.append(melem)

    attr_text = []
    if "scale" in attrs:
        attr_text.append("scale = %r : f32" % float(np.float32(attrs["scale"])))
    if attrs.get("causal"):
        attr_text.append("causal")
    if "softcap" in attrs:
        attr_text.append("softcap = %r : f32" % float(attrs["softcap"]))
    if "window" in attrs:
        attr_text.append("window = %d" % attrs["window"])
    arg_types = [tensor_type(x.shape, e) for x, e in zip(inputs, elems)]
    out_shape = (b, hq, sq, dv)
    out_t = tensor_type(out_shape, elem)
    mask_part = " mask(%arg3)" if mask is not None else ""
    func = (
        "func.func @attn(%s) -> %s {\n"
        "  %%o = kvc.attention %%arg0, %%arg1, %%arg2%s {%s} : (%s) -> %s\n"
        "  return %%o : %s\n}\n" % (
            ", ".join("%%arg%d: %s" % (i, t) for i, t in enumerate(arg_types)), out_t,
            mask_part, ", ".join(attr_text), ", ".join(arg_types), out_t, out_t))
    module = build_main(func, "attn", inputs, elems, [out_shape], elem)
    (got,) = parse_printed(run_module(module), [out_shape])
    ref = ref_attention(q, k, v, mask=mask_arr, scale=attrs.get("scale"),
                        causal=attrs.get("causal", False), softcap=attrs.get("softcap"),
                        window=attrs.get("window"))
    err = rel_err(got, ref)
    ok = err <= TOL[elem] and np.all(np.isfinite(got))
    print("%s %s rel_err=%.2e tol=%.0e" % ("PASS" if ok else "FAIL", name, err, TOL[elem]))
    return ok


CASES = [
    # name, b, hq, hkv, sq, skv, d, dv, kwargs
    ("mha", 2, 4, 4, 5, 9, 16, 16, {}),
    ("gqa_8_2", 1, 8, 2, 3, 11, 16, 8, {}),
    ("mqa", 1, 6, 1, 4, 10, 16, 16, {}),
    ("causal_past_sq4_skv37", 1, 4, 2, 4, 37, 16, 16, {"attrs": {"causal": True}}),
    ("causal_prefill", 1, 2, 2, 7, 7, 8, 8, {"attrs": {"causal": True}}),
    ("bool_mask_4d", 1, 4, 2, 3, 12, 16, 16, {"mask": ("bool", (1, 4, 3, 12))}),
    ("bool_mask_bcast", 2, 4, 2, 3, 12, 16, 16, {"mask": ("bool", (2, 1, 1, 12))}),
    ("float_mask_2d", 1, 4, 4, 6, 6, 16, 16, {"mask": ("float", (6, 6))}),
    ("float_mask_3d", 2, 2, 1, 4, 9, 8, 8, {"mask": ("float", (1, 4, 9))}),
    ("scale_attr", 1, 2, 2, 3, 5, 16, 16, {"attrs": {"scale": 0.3}}),
    ("softcap", 1, 4, 2, 4, 13, 16, 16, {"attrs": {"softcap": 2.5, "scale": 1.0}}),
    ("sliding_window", 1, 4, 2, 6, 20, 16, 16, {"attrs": {"causal": True, "window": 5}}),
    ("window_no_causal", 1, 2, 2, 4, 8, 8, 8, {"attrs": {"window": 3}}),
    ("f16_gqa", 1, 8, 2, 3, 17, 32, 32, {"elem": "f16"}),
    ("f16_causal_mask", 1, 4, 2, 4, 12, 16, 16,
     {"elem": "f16", "mask": ("float", (1, 1, 4, 12)), "attrs": {"causal": True}}),
    ("bf16_gqa", 1, 8, 2, 3, 17, 32, 32, {"elem": "bf16"}),
    ("bf16_softcap_window", 1, 4, 1, 5, 15, 16, 16,
     {"elem": "bf16", "attrs": {"softcap": 20.0, "causal": True, "window": 4}}),
    ("odd_d80", 1, 3, 1, 2, 7, 80, 80, {}),
    ("skv1", 1, 4, 2, 1, 1, 16, 16, {}),
    ("skv1_causal_decode", 2, 4, 4, 1, 1, 8, 24, {"attrs": {"causal": True}}),
    # Rows whose every key is masked give zeros (not NaN), as the op and ONNX define.
    ("fully_masked_row_bool", 1, 2, 2, 2, 5, 8, 8, {"mask": ("bool", (1, 1, 2, 5)), "masked_row": 1}),
    ("fully_masked_row_float", 1, 2, 2, 3, 5, 8, 8,
     {"mask": ("float", (1, 2, 3, 5)), "masked_row": 0}),
]

if __name__ == "__main__":
    failures = 0
    for name, b, hq, hkv, sq, skv, d, dv, kw in CASES:
        if not run_case(name, b, hq, hkv, sq, skv, d, dv, **kw):
            failures += 1
    print("%d cases, %d failed" % (len(CASES), failures))
    sys.exit(1 if failures else 0)

# CHECK-COUNT-22: PASS
# CHECK: 22 cases, 0 failed
