"""Real-model decode cases for the GPU kernels: Gemma 3 270M caches and queries, with the
expected outputs from kvc's CPU path.

For a bundled text it prefills `--context` tokens, takes the next token's real queries and the
stored K/V of a few layers, rounds them to bf16 (the GPU kernels' element type), and writes one
folder per case under --out:

  q.npy [B, Hq, 1, D], k.npy / v.npy [B, Hkv, S, D]   float32 holding bf16-exact values
  lengths.npy [B, Hkv] int64                         ragged cases only
  expected.npy [B, Hq, 1, D]                         kvc's CPU path (kvc-run on case.mlir, f32)
  case.mlir                                          the kvc.attention that produced it

Cases: `dense_l<i>` for each of --layers (local layers hold the sliding window, global layers
the whole context); `ragged_sculpt` stacks the same layers as batch rows of one ragged cache,
each row a KVSculpt-compressed cache at --ratio (synthesized keys, rows of different lengths,
padded to the longest); `ragged_full` is the uncompressed caches as rows of different lengths.
`kvc-bench check-npy KERNELS.ptx --case DIR ...` runs them on the GPU (docs/gpu.md).

usage: python -m kvc.bench.gemma_decode_cases --out build/gpu-tests/gemma [--context 1024]
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def bf16_round(x: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even to bfloat16, returned as float32 (exactly representable)."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16 << 16
    return b.astype(np.uint32).view(np.float32)


def case_mlir(B, Hq, Hkv, S, D, ragged):
    q = f"tensor<{B}x{Hq}x1x{D}xf32>"
    kv = f"tensor<{B}x{Hkv}x{S}x{D}xf32>"
    if ragged:
        ln = f"tensor<{B}x{Hkv}xi64>"
        return (f"func.func @main(%q: {q}, %k: {kv}, %v: {kv}, %len: {ln}) -> {q} {{\n"
                f"  %o = kvc.attention %q, %k, %v lengths(%len) : ({q}, {kv}, {kv}, {ln}) -> {q}\n"
                f"  return %o : {q}\n}}\n")
    return (f"func.func @main(%q: {q}, %k: {kv}, %v: {kv}) -> {q} {{\n"
            f"  %o = kvc.attention %q, %k, %v : ({q}, {kv}, {kv}) -> {q}\n"
            f"  return %o : {q}\n}}\n")


def write_case(out: Path, name: str, q, k, v, lengths, kvc_run: str):
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    q, k, v = bf16_round(q), bf16_round(k), bf16_round(v)
    np.save(d / "q.npy", q)
    np.save(d / "k.npy", k)
    np.save(d / "v.npy", v)
    B, Hq, _, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    (d / "case.mlir").write_text(case_mlir(B, Hq, Hkv, S, D, lengths is not None))
    cmd = [kvc_run, str(d / "case.mlir"), "--input", f"arg0={d / 'q.npy'}",
           "--input", f"arg1={d / 'k.npy'}", "--input", f"arg2={d / 'v.npy'}",
           "--output-dir", str(d / "cpu")]
    if lengths is not None:
        np.save(d / "lengths.npy", np.ascontiguousarray(lengths, dtype=np.int64))
        cmd += ["--input", f"arg3={d / 'lengths.npy'}"]
    subprocess.run(cmd, check=True)
    outs = sorted((d / "cpu").glob("*.npy"))
    if len(outs) != 1:
        raise RuntimeError(f"{d}: expected one kvc-run output, got {outs}")
    os.replace(outs[0], d / "expected.npy")
    (d / "cpu").rmdir()
    exp = np.load(d / "expected.npy")
    print(f"  {name}: B={B} Hq={Hq} Hkv={Hkv} S={S} D={D}"
          + (f" lengths={lengths.ravel().tolist()}" if lengths is not None else "")
          + f" |expected|={np.linalg.norm(exp):.3g}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (one sub-folder per case)")
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--text-file", default=None, help="default: examples/texts/gpl-3.txt")
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--layers", default="0,5,17", help="layer indices (Gemma 3: 5, 11, 17 global)")
    ap.add_argument("--ratio", type=float, default=0.3, help="KVSculpt kept fraction (ragged case)")
    ap.add_argument("--kvc-run", default=None, help="kvc-run binary (default: build/bin/kvc-run)")
    a = ap.parse_args(argv)
    from ..models import load_model
    from ..text import contexts_from_files, repo_root
    from ..runtime.compress import compress_head
    root = repo_root()
    kvc_run = a.kvc_run or str(root / "build" / "bin" / "kvc-run")
    if not Path(kvc_run).exists():
        sys.exit(f"gemma_decode_cases: {kvc_run} not found (build kvc first, or pass --kvc-run)")
    text = a.text_file or str(root / "examples" / "texts" / "gpl-3.txt")
    model = load_model(a.model)
    ctx = contexts_from_files(model.tokenizer, [text], a.context, 1)
    if not ctx:
        sys.exit(f"gemma_decode_cases: {text} is shorter than {a.context} + 1 tokens")
    c = ctx[0]
    print(f"prefill {len(c.context)} tokens of {Path(text).name} ...", flush=True)
    pre = model.prefill(c.context, logits="none", continuation=1)
    cont = model.continue_([L.as_heads(with_positions=True) for L in pre.layers], c.continuation,
                           start_pos=len(c.context), return_qkv=True)
    layers = [int(x) for x in a.layers.split(",")]
    out = Path(a.out)
    qs, ks, vs = [], [], []
    for il in layers:
        L = pre.layers[il]
        q = cont.queries[il][:, :1, :][None]          # [1, Hq, 1, D], softmax(q k^T / sqrt(D))
        k, v = L.K[None], L.V[None]                   # [1, Hkv, Ts, D]
        write_case(out, f"dense_l{il}", q, k, v, None, kvc_run)
        qs.append(q[0]); ks.append(L.K); vs.append(L.V)
    Hkv, D = ks[0].shape[0], ks[0].shape[2]
    S = max(k.shape[1] for k in ks)
    q = np.stack(qs)

    def stack(rows):
        kk = np.zeros((len(rows), Hkv, S, D), np.float32)
        vv = np.zeros_like(kk)
        lens = np.zeros((len(rows), Hkv), np.int64)
        for b, (k, v) in enumerate(rows):
            kk[b, :, :k.shape[1]] = k
            vv[b, :, :v.shape[1]] = v
            lens[b, :] = k.shape[1]
        return kk, vv, lens

    kk, vv, lens = stack(list(zip(ks, vs)))
    write_case(out, "ragged_full", q, kk, vv, lens, kvc_run)
    rows = []
    for il, k, v in zip(layers, ks, vs):
        L = pre.layers[il]
        heads_k, heads_v = [], []
        for h in range(Hkv):
            g = L.Q.shape[0] // Hkv
            budget = max(1, int(round(a.ratio * k.shape[1])))
            ck, cv, _, _ = compress_head(k[h], v[h], L.Q[h * g:(h + 1) * g], budget, method="sculpt")
            heads_k.append(ck); heads_v.append(cv)
        n = min(x.shape[0] for x in heads_k)
        rows.append((np.stack([x[:n] for x in heads_k]), np.stack([x[:n] for x in heads_v])))
        print(f"  layer {il}: KVSculpt {k.shape[1]} -> {n} pairs", flush=True)
    kk, vv, lens = stack(rows)
    write_case(out, "ragged_sculpt", q, kk, vv, lens, kvc_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
