"""ONNX prefill graph -> kvc-compress-present -> compressed cache -> the unmodified decode graph.

For tiny transformers exports (test/Integration/ONNX/hf, made by python -m kvc.onnx.export_hf):
kvc imports the prefill graph, `kvc-compress-present` compresses its present K/V outputs (8 of 16
pairs per head), kvc-run executes it. Checks:
  * logits are unchanged and every kept pair is an exact pair of the uncompressed cache, in
    order, with the sink and recent pairs kept (SnapKV and StreamingLLM);
  * onnxruntime's decode graph on the compressed past (length 8, all-ones mask) equals the same
    decode graph on the FULL past with the dropped positions masked out (tolerance 1e-4): the
    compressed cache means exactly "attend to the kept pairs". This needs one kept set for all
    layers and heads (one mask), so it uses StreamingLLM;
  * kvc-run on the decode graph with the compressed past reproduces onnxruntime (1e-4).
"""
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("KVC_BUILD_DIR", ROOT / "build"))
BIN = BUILD / "bin"
HF = ROOT / "test" / "Integration" / "ONNX" / "hf"
T, BUDGET, SINKS, RECENT = 16, 8, 1, 2

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.skipif(not (BIN / "kvc-translate").exists() or not (BIN / "kvc-run").exists(),
                                reason=f"needs kvc-translate and kvc-run in {BIN}")


def run(cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout}\n{r.stderr}"


def kvc_run(model, inputs, out, shapes=()):
    cmd = [BIN / "kvc-run", model, "--output-dir", out]
    for name, path in inputs.items():
        cmd += ["--input", f"{name}={path}"]
    for s in shapes:
        cmd += ["--shape", s]
    run(cmd)
    return {p.stem: np.load(p) for p in Path(out).glob("*.npy")}


def save(d, name, a):
    p = Path(d) / f"{name}.npy"
    np.save(p, a)
    return p


@pytest.mark.parametrize("model", ["llama_dynamo", "qwen2_legacy", "gemma3_dynamo"])
def test_compressed_prefill_feeds_decode(model, tmp_path):
    pre, dec = HF / f"{model}_prefill.onnx", HF / f"{model}_decode.onnx"
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 120, size=(1, T + 1), dtype=np.int64)
    inp = {"input_ids": save(tmp_path, "ids", ids[:, :T]),
           "attention_mask": save(tmp_path, "mask", np.ones((1, T), np.int64)),
           "position_ids": save(tmp_path, "pos", np.arange(T, dtype=np.int64)[None])}
    mlir = tmp_path / "prefill.mlir"
    run([BIN / "kvc-translate", "--import-onnx", pre, "-o", mlir]
        + [f"--shape={n}=1x{T}" for n in inp])
    if "legacy" in model:  # decomposed attention: raise it to kvc.attention first
        raised = tmp_path / "prefill_raised.mlir"
        run([BIN / "kvc-opt", mlir, "--kvc-raise-attention", "-o", raised])
        mlir = raised
    full = kvc_run(mlir, inp, tmp_path / "full")
    sess = ort.InferenceSession(str(dec), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    step = {"input_ids": ids[:, T:], "position_ids": np.array([[T]], np.int64)}
    ones = np.ones((1, BUDGET + 1), np.int64)
    for method in ("streaming", "snapkv"):
        comp = tmp_path / f"prefill_{method}.mlir"
        run([BIN / "kvc-opt", mlir, "--kvc-compress-present="
             f"method={method} budget={BUDGET} sinks={SINKS} recent={RECENT}", "-o", comp])
        small = kvc_run(comp, inp, tmp_path / method)
        np.testing.assert_array_equal(full["logits"], small["logits"])
        kept_sets = set()
        for l in sorted({k.split(".")[1] for k in full if k.startswith("present.")}):
            K, V = full[f"present.{l}.key"], full[f"present.{l}.value"]
            Kc, Vc = small[f"present.{l}.key"], small[f"present.{l}.value"]
            assert Kc.shape == (1, K.shape[1], BUDGET, K.shape[3])
            for h in range(K.shape[1]):
                idx = [int(np.flatnonzero((K[0, h] == Kc[0, h, j]).all(-1))[0])
                       for j in range(BUDGET)]
                assert idx == sorted(set(idx)), idx
                assert idx[:SINKS] == list(range(SINKS))
                assert idx[-RECENT:] == list(range(T - RECENT, T))
                np.testing.assert_array_equal(Vc[0, h], V[0, h, idx])
                kept_sets.add(tuple(idx))
        past_c = {n: small["present." + n.split(".", 1)[1]] for n in names if n.startswith("past")}
        out_c = sess.run(None, {**step, "attention_mask": ones, **past_c})[0]
        assert np.isfinite(out_c).all()
        if method == "streaming":
            assert kept_sets == {tuple(range(SINKS)) + tuple(range(T - BUDGET + SINKS, T))}
            keep = np.zeros((1, T + 1), np.int64)
            keep[0, list(next(iter(kept_sets)))] = 1
            keep[0, T] = 1
            past_f = {n: full["present." + n.split(".", 1)[1]] for n in names if n.startswith("past")}
            out_f = sess.run(None, {**step, "attention_mask": keep, **past_f})[0]
            np.testing.assert_allclose(out_c, out_f, atol=1e-4, rtol=1e-4)
    # kvc on the decode graph with the compressed past.
    dinp = {"input_ids": save(tmp_path, "d_ids", step["input_ids"]),
            "position_ids": save(tmp_path, "d_pos", step["position_ids"]),
            "attention_mask": save(tmp_path, "d_mask", ones)}
    for n, a in past_c.items():
        dinp[n] = save(tmp_path, n, a)
    shapes = [f"input_ids=1x1", "position_ids=1x1", f"attention_mask=1x{BUDGET + 1}"] + [
        f"{n}=" + "x".join(map(str, a.shape)) for n, a in past_c.items()]
    kd = kvc_run(dec, dinp, tmp_path / "dec", shapes)
    np.testing.assert_allclose(kd["logits"], out_c, atol=1e-4, rtol=1e-4)
