# Real transformers exports (tiny random-init Llama, Qwen2, Gemma3, and Llama in float16; dynamo
# exporter at opset 23 and the legacy TorchScript exporter at opset 17; prefill and decode graphs,
# committed in hf/ (KVC_HF_MODELS=dir overrides) and
# produced by `python -m kvc.onnx.export_hf`, see hf/manifest.json) imported by kvc-translate and
# run by kvc-run, compared output by output (logits, every present K/V) with onnxruntime.
# Also counts the kvc.attention ops: imported (dynamo: ONNX Attention) or raised by
# kvc-raise-attention (legacy: MatMul/Softmax chains); every layer's attention must be found, and
# after kvc-raise-attention read the unrepeated Hkv-head K/V (GQA).
#
# REQUIRES: onnx-python, numpy, onnxruntime
# RUN: %python %s %t | FileCheck %s
# CHECK-NOT: FAIL
# CHECK: ALL PASSED
import json
import os
import re
import subprocess
import sys

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.environ.get("KVC_HF_MODELS", os.path.join(HERE, "hf"))
WORK = sys.argv[1] if len(sys.argv) > 1 else "/tmp/kvc-hf"
ONLY = sys.argv[2] if len(sys.argv) > 2 else ""
os.makedirs(WORK, exist_ok=True)

# |kvc - ort| <= ATOL + RTOL * |ort| elementwise, for every output, by the export's dtype.
TOL = {"float32": (1e-5, 1e-4), "float16": (1e-3, 1e-2)}
B = 2
# (case, new tokens, past length, left padding of batch row 1) per graph kind.
CASES = {"prefill": [("prefill", 5, 0, 0), ("prefill_padded", 5, 0, 2)],
         "decode": [("decode", 1, 6, 0), ("decode_chunk", 3, 4, 0)]}

failures = 0


def feeds_for(sess, s, p, pad, seed):
    rng = np.random.default_rng(seed)
    vocab = sess.get_outputs()[0].shape[-1]
    mask = np.ones((B, p + s), np.int64)
    mask[1, :pad] = 0
    f = {"input_ids": rng.integers(0, vocab, (B, s)).astype(np.int64),
         "attention_mask": mask,
         "position_ids": np.tile(np.arange(p, p + s, dtype=np.int64), (B, 1))}
    for i in sess.get_inputs():
        if i.name.startswith("past_key_values."):
            hkv, d = i.shape[1], i.shape[3]
            dt = np.float16 if i.type == "tensor(float16)" else np.float32
            f[i.name] = rng.standard_normal((B, hkv, p, d)).astype(dt)
    return f


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def count_attention(path, info, pins, hkv):
    """kvc.attention ops imported (dynamo: ONNX Attention) or raised (legacy), and how many of
    them read K/V with the model's Hkv heads after kvc-raise-attention (GQA form, repeat_kv
    folded); (count, gqa count, error)."""
    imp = run(["kvc-translate", "--import-onnx", path] + pins)
    if imp.returncode != 0:
        return None, None, "import: " + imp.stderr.strip()[-2000:]
    r = run(["kvc-opt", "--kvc-raise-attention"], input=imp.stdout)
    if r.returncode != 0:
        return None, None, "raise: " + r.stderr.strip()[-2000:]
    ir = imp.stdout if info["exporter"] == "dynamo" else r.stdout
    n = len(re.findall(r"\bkvc\.attention\b", ir))
    gqa = 0
    for m in re.finditer(r"kvc\.attention .*: \(tensor<([0-9x]+)x\w+>, tensor<([0-9x]+)x\w+>", r.stdout):
        if int(m.group(2).split("x")[1]) == hkv:
            gqa += 1
    return n, gqa, ""


def check(name, info, case, s, p, pad):
    global failures
    path = os.path.join(MODELS, name)
    label = "%s/%s" % (name[:-5], case)
    d = os.path.join(WORK, name[:-5], case)
    os.makedirs(d, exist_ok=True)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    n_layers = sum(1 for o in sess.get_outputs() if o.name.endswith(".key"))
    feeds = feeds_for(sess, s, p, pad, seed=len(case) + s + p)
    want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    pins = []
    for k, v in feeds.items():
        pins += ["--shape", "%s=%s" % (k, "x".join(map(str, v.shape)))]
    hkv = next(i.shape[1] for i in sess.get_outputs() if i.name.endswith(".key"))
    n_att, n_gqa, err = count_attention(path, info, pins, hkv)
    if n_att is None:
        print("FAIL %s: %s" % (label, err))
        failures += 1
        return
    cmd = ["kvc-run", path, "--output-dir", os.path.join(d, "out")] + pins
    for k, v in feeds.items():
        np.save(os.path.join(d, k + ".npy"), v)
        cmd += ["--input", "%s=%s" % (k, os.path.join(d, k + ".npy"))]
    r = run(cmd)
    if r.returncode != 0:
        print("FAIL %s: kvc-run: %s" % (label, r.stderr.strip()[-2000:]))
        failures += 1
        return
    ATOL, RTOL = TOL[info.get("dtype", "float32")]
    worst_abs, worst_rel, bad, got_all = 0.0, 0.0, [], {}
    for o, w in want.items():
        got = np.load(os.path.join(d, "out", o.replace("/", "_").replace(":", "_") + ".npy"))
        got_all[o] = got
        if got.shape != w.shape:
            bad.append("%s shape %s vs %s" % (o, got.shape, w.shape))
            continue
        err = np.abs(got.astype(np.float64) - w.astype(np.float64))
        if not np.all(np.isfinite(got)):
            bad.append("%s has non-finite values" % o)
        worst_abs = max(worst_abs, float(err.max()))
        worst_rel = max(worst_rel, float((err / np.maximum(np.abs(w), 1e-3)).max()))
        if not np.all(err <= ATOL + RTOL * np.abs(w.astype(np.float64))):
            bad.append("%s max abs err %.3g" % (o, err.max()))
    # Negative control: onnxruntime on other tokens must not pass the same comparison, i.e. the
    # tolerance is tight enough to see a different input.
    other = dict(feeds)
    other["input_ids"] = (feeds["input_ids"] + 1) % sess.get_outputs()[0].shape[-1]
    w2 = sess.run(["logits"], other)[0]
    g2, w2 = got_all["logits"].astype(np.float64), w2.astype(np.float64)
    if np.all(np.abs(g2 - w2) <= ATOL + RTOL * np.abs(w2)):
        bad.append("negative control: logits also match onnxruntime on other tokens")
    status = "ok" if not bad and n_att == n_layers and n_gqa == n_layers else "FAIL"
    print("%s %-34s kvc.attention %d/%d (GQA %d)  max abs err %.2e  max rel err %.2e%s" % (
        status, label, n_att, n_layers, n_gqa, worst_abs, worst_rel,
        ("  " + "; ".join(bad)) if bad else ""))
    if status != "ok":
        failures += 1


manifest = json.load(open(os.path.join(MODELS, "manifest.json")))
for name in sorted(manifest["models"]):
    info = manifest["models"][name]
    for case, s, p, pad in CASES[info["kind"]]:
        if ONLY in name + "/" + case:
            check(name, info, case, s, p, pad)
print("ALL PASSED" if failures == 0 else "%d FAILURES" % failures)
