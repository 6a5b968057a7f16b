# com.microsoft GroupQueryAttention through kvc-run, compared with onnxruntime: prompt with an
# empty past, decode with a past (separate and shared-buffer KV caches), right-padded batches
# (seqlens_k), packed QKV, local window, softcap.
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

WORK = sys.argv[1] if len(sys.argv) > 1 else "/tmp/kvc-gqa"
os.makedirs(WORK, exist_ok=True)
rng = np.random.default_rng(0)
failures = 0


def gqa_model(B, S, P, Hq, Hkv, D, total, packed=False, rotary_dim=0, position_ids=False, **attrs):
    ins = ["query", "" if packed else "key", "" if packed else "value", "past_key", "past_value",
           "seqlens_k", "total_sequence_length"]
    if rotary_dim:
        ins += ["cos_cache", "sin_cache"] + (["position_ids"] if position_ids else [])
        attrs["do_rotary"] = 1
    node = h.make_node("GroupQueryAttention", ins, ["output", "present_key", "present_value"],
                       domain="com.microsoft", num_heads=Hq, kv_num_heads=Hkv, **attrs)
    qdim = (Hq + 2 * Hkv) * D if packed else Hq * D
    inputs = [h.make_tensor_value_info("query", T.FLOAT, [B, S, qdim])]
    if not packed:
        inputs += [h.make_tensor_value_info("key", T.FLOAT, [B, S, Hkv * D]),
                   h.make_tensor_value_info("value", T.FLOAT, [B, S, Hkv * D])]
    inputs += [h.make_tensor_value_info("past_key", T.FLOAT, [B, Hkv, P, D]),
               h.make_tensor_value_info("past_value", T.FLOAT, [B, Hkv, P, D]),
               h.make_tensor_value_info("seqlens_k", T.INT32, [B])]
    inits = [h.make_tensor("total_sequence_length", T.INT32, [], [total])]
    if rotary_dim:
        # cos/sin tables as a rotary embedding builds them (max_pos 16, base 10000).
        inv = 1.0 / (10000.0 ** (np.arange(0, rotary_dim, 2) / rotary_dim))
        ang = np.arange(16)[:, None] * inv[None, :]
        inits += [h.make_tensor("cos_cache", T.FLOAT, ang.shape, np.cos(ang).astype(np.float32).ravel()),
                  h.make_tensor("sin_cache", T.FLOAT, ang.shape, np.sin(ang).astype(np.float32).ravel())]
        if position_ids:
            inputs.append(h.make_tensor_value_info("position_ids", T.INT64, [B, S]))
    g = h.make_graph([node], "gqa", inputs,
                     [h.make_tensor_value_info(n, T.FLOAT, None) for n in ["output", "present_key", "present_value"]],
                     inits)
    return h.make_model(g, opset_imports=[h.make_opsetid("", 21), h.make_opsetid("com.microsoft", 1)],
                        ir_version=10)


def check(name, B, S, P, Hq, Hkv, D, total, seqlens, packed=False, positions=None, **attrs):
    global failures
    m = gqa_model(B, S, P, Hq, Hkv, D, total, packed, position_ids=positions is not None, **attrs)
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    onnx.save(m, path)
    feeds = {"query": rng.standard_normal((B, S, (Hq + 2 * Hkv) * D if packed else Hq * D)).astype(np.float32)}
    if not packed:
        feeds["key"] = rng.standard_normal((B, S, Hkv * D)).astype(np.float32)
        feeds["value"] = rng.standard_normal((B, S, Hkv * D)).astype(np.float32)
    feeds["past_key"] = rng.standard_normal((B, Hkv, P, D)).astype(np.float32)
    feeds["past_value"] = rng.standard_normal((B, Hkv, P, D)).astype(np.float32)
    feeds["seqlens_k"] = np.array(seqlens, np.int32)
    if positions is not None:
        feeds["position_ids"] = np.array(positions, np.int64)
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
    for i, o in enumerate(["output", "present_key", "present_value"]):
        got = np.load(os.path.join(d, "out", o + ".npy"))
        w = want[i]
        if o != "output":
            # Positions past each row's length are unspecified in onnxruntime's shared buffer.
            for b in range(B):
                got[b, :, seqlens[b] + 1:] = 0
                w[b, :, seqlens[b] + 1:] = 0
        if got.shape != w.shape or not np.allclose(got, w, rtol=1e-4, atol=1e-5):
            err = np.abs(got - w).max() if got.shape == w.shape else "shape %s vs %s" % (got.shape, w.shape)
            print("FAIL %s: %s differs (%s)" % (name, o, err))
            failures += 1
            return
    print("ok %s" % name)


# prompt: empty past, total = S
check("prompt", 1, 4, 0, 4, 2, 8, 4, [3])
check("prompt_padded_batch", 2, 4, 0, 4, 2, 8, 4, [3, 1])
# decode with a separate past (present = past + new)
check("decode", 2, 1, 5, 4, 2, 8, 6, [5, 5])
check("decode_mqa", 1, 1, 5, 4, 1, 8, 6, [5])
# shared buffer: past is max_seq long, rows hold different lengths
check("decode_shared_buffer", 2, 1, 8, 4, 2, 8, 8, [5, 2])
check("packed_qkv", 1, 3, 2, 4, 2, 8, 5, [4], packed=True)
check("local_window", 1, 5, 0, 2, 1, 8, 5, [4], local_window_size=2)
check("softcap_scale", 1, 3, 2, 4, 2, 8, 5, [4], softcap=2.0, scale=0.3)
# do_rotary: cos/sin tables, default positions (first prompt: s; decode: seqlens_k + 1 - S + s),
# interleaved, partial rotary dim, packed QKV, explicit position_ids.
# (onnxruntime's rotary needs head_size % 16 == 0.)
check("rotary_prompt", 1, 4, 0, 4, 2, 16, 4, [3], rotary_dim=16)
check("rotary_decode", 2, 1, 5, 4, 2, 16, 6, [5, 3], rotary_dim=16)
check("rotary_decode_interleaved", 2, 1, 5, 4, 2, 16, 6, [5, 4], rotary_dim=16, rotary_interleaved=1)
check("rotary_partial_packed", 1, 3, 2, 4, 2, 32, 5, [4], packed=True, rotary_dim=16)
check("rotary_position_ids", 1, 2, 3, 4, 2, 16, 5, [4], rotary_dim=16, positions=[[9, 10]])
print("ALL PASSED" if failures == 0 else "%d FAILURES" % failures)
