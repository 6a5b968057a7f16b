# com.microsoft MultiHeadAttention through kvc-run, compared with onnxruntime (CPU): self- and
# cross-attention, bias, key_padding_mask, attention_bias, past/present, unidirectional, scale,
# 4-D (BNSH) key/value.
#
# REQUIRES: onnx-python, numpy, onnxruntime
# RUN: %python %s %t | FileCheck %s
# CHECK-NOT: FAIL
# CHECK: ALL PASSED
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h

WORK = sys.argv[1] if len(sys.argv) > 1 else "/tmp/kvc-mha"
os.makedirs(WORK, exist_ok=True)
rng = np.random.default_rng(0)
failures = 0


def check(name, B, S, L, N, H, P=0, bias=False, kpm=None, ab_shape=None, bnsh=False, **attrs):
    global failures
    feeds = {"query": rng.standard_normal((B, S, N * H)).astype(np.float32)}
    kshape = (B, N, L, H) if bnsh else (B, L, N * H)
    feeds["key"] = rng.standard_normal(kshape).astype(np.float32)
    feeds["value"] = rng.standard_normal(kshape).astype(np.float32)
    ins = ["query", "key", "value"]
    if bias:
        feeds["bias"] = rng.standard_normal((3 * N * H,)).astype(np.float32)
    ins.append("bias" if bias else "")
    if kpm is not None:
        feeds["key_padding_mask"] = np.array(kpm, np.int32)
    ins.append("key_padding_mask" if kpm is not None else "")
    if ab_shape is not None:
        feeds["attention_bias"] = rng.standard_normal(ab_shape).astype(np.float32)
    ins.append("attention_bias" if ab_shape is not None else "")
    outs = ["output"]
    if P:
        feeds["past_key"] = rng.standard_normal((B, N, P, H)).astype(np.float32)
        feeds["past_value"] = rng.standard_normal((B, N, P, H)).astype(np.float32)
        ins += ["past_key", "past_value"]
        outs += ["present_key", "present_value"]
    while ins[-1] == "":
        ins.pop()
    node = h.make_node("MultiHeadAttention", ins, outs, domain="com.microsoft", num_heads=N, **attrs)
    g = h.make_graph([node], "mha",
                     [h.make_tensor_value_info(k, {np.float32: T.FLOAT, np.int32: T.INT32}[v.dtype.type],
                                               v.shape) for k, v in feeds.items()],
                     [h.make_tensor_value_info(o, T.FLOAT, None) for o in outs])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 21), h.make_opsetid("com.microsoft", 1)],
                     ir_version=10)
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    onnx.save(m, path)
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
    cmd = ["kvc-run", path, "--output-dir", os.path.join(d, "out")]
    for k, v in feeds.items():
        np.save(os.path.join(d, k + ".npy"), v)
        cmd += ["--input", "%s=%s" % (k, os.path.join(d, k + ".npy"))]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL %s: %s" % (name, r.stderr.strip()))
        failures += 1
        return
    for o, w in zip(outs, want):
        got = np.load(os.path.join(d, "out", o + ".npy"))
        if got.shape != w.shape or not np.allclose(got, w, rtol=1e-4, atol=1e-5):
            err = np.abs(got - w).max() if got.shape == w.shape else "shape %s vs %s" % (got.shape, w.shape)
            print("FAIL %s: %s differs (%s)" % (name, o, err))
            failures += 1
            return
    print("ok %s" % name)


check("self", 2, 4, 4, 2, 8)
check("self_bias_scale", 2, 4, 4, 2, 8, bias=True, scale=0.3)
check("key_padding_mask", 2, 4, 4, 2, 8, kpm=[[1, 1, 1, 1], [0, 0, 1, 1]])
check("attention_bias_1n", 2, 4, 4, 2, 8, ab_shape=(1, 2, 4, 4))
check("attention_bias_b1", 2, 4, 4, 2, 8, ab_shape=(2, 1, 4, 4))
check("past_unidirectional", 2, 3, 3, 2, 8, P=5, unidirectional=1)
check("past_kpm_bias", 1, 1, 1, 4, 16, P=6, bias=True, kpm=[[0, 1, 1, 1, 1, 1, 1]])
check("cross", 2, 3, 6, 2, 8, bias=True)
check("cross_bnsh", 2, 3, 6, 2, 8, bnsh=True)
print("ALL PASSED" if failures == 0 else "%d FAILURES" % failures)
