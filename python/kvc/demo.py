"""kvc's main job on the bundled example, step by step (README quick start, command 1).

    python -m kvc.demo [--example examples/gqa_attention.mlir]

1. read decomposed Linalg attention (examples/gqa_attention.mlir);
2. raise it to kvc.attention (kvc-opt --kvc-raise-attention);
3. compile it for the CPU (kvc-opt --kvc-cpu-pipeline) and run it (mlir-runner) on random
   inputs with a padding mask;
4. check the result against the float64 numpy reference and against the unraised program.
"""
import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from kvc.reference import attention as ref_attention
from kvc.testing.mlir_exec import build_main, parse_printed, rel_err, run_module, tool

ROOT = Path(__file__).resolve().parents[2]


def step(n, text):
    print("\n[%d] %s" % (n, text), flush=True)


def shape_of(type_text):
    return tuple(int(d) for d in type_text[len("tensor<"):-1].split("x")[:-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--example", default=str(ROOT / "examples" / "gqa_attention.mlir"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    text = Path(args.example).read_text()
    m = re.search(r"func\.func @(\w+)\((.*?)\)\s*->\s*(tensor<[^>]*>)", text, re.S)
    if not m:
        print("error: %s has no func.func returning a tensor" % args.example, file=sys.stderr)
        return 1
    name, arg_text, result = m.group(1), m.group(2), m.group(3)
    arg_types = re.findall(r"tensor<[^>]*>", arg_text)
    shapes = [shape_of(t) for t in arg_types]

    step(1, "input: %s (@%s)" % (args.example, name))
    census = {}
    for op in re.findall(r"\b(linalg\.\w+|tensor\.\w+|math\.\w+)", text):
        census[op] = census.get(op, 0) + 1
    print("    ops: " + ", ".join("%d %s" % (v, k) for k, v in sorted(census.items())))

    step(2, "kvc-opt --kvc-raise-attention")
    raised = subprocess.run([tool("kvc-opt"), args.example, "--kvc-raise-attention"],
                            capture_output=True, text=True)
    if raised.returncode != 0:
        print(raised.stderr, file=sys.stderr)
        return 1
    attn = [l.strip() for l in raised.stdout.splitlines() if "kvc.attention" in l]
    left = len(re.findall(r"linalg\.", raised.stdout))
    print("    %d kvc.attention, %d linalg ops left" % (len(attn), left))
    for line in attn:
        print("    " + line)
    if len(attn) != 1:
        print("error: expected exactly one kvc.attention", file=sys.stderr)
        return 1

    step(3, "kvc-opt --kvc-cpu-pipeline=raise-attention=1 | mlir-runner (random inputs)")
    rng = np.random.default_rng(args.seed)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in shapes[:3])
    inputs = [q, k, v]
    mask = None
    if len(shapes) > 3:
        # Padding mask: the first 24 cached positions are padding for every query.
        mask = np.zeros(shapes[3], dtype=np.float32)
        mask[..., :24] = -1e9
        inputs.append(mask)
    out_shape = shape_of(result)
    module = build_main(text, name, inputs, ["f32"] * len(inputs), [out_shape], "f32")
    t0 = time.time()
    (got,) = parse_printed(run_module(module, pipeline="--kvc-cpu-pipeline=raise-attention=1"),
                           [out_shape])
    t1 = time.time()
    (unraised,) = parse_printed(run_module(module), [out_shape])
    t2 = time.time()
    print("    compiled and ran in %.2f s (raised), %.2f s (as written)" % (t1 - t0, t2 - t1))

    step(4, "check against the float64 numpy reference (tolerance: relative error 1e-5)")
    scale = float(re.search(r"scale\s*=\s*([-\d.e+]+)", attn[0]).group(1))
    ref = ref_attention(q, k, v, mask=mask, scale=scale)
    e_ref, e_unr = rel_err(got, ref), rel_err(got, unraised)
    ok = e_ref <= 1e-5 and e_unr <= 1e-5
    print("    relative error vs numpy: %.2e; vs the unraised program: %.2e -> %s" % (
        e_ref, e_unr, "OK" if ok else "MISMATCH"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
