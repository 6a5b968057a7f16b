"""ONNX backend node-test conformance for the kvc ONNX frontend (kvc-run).

Runs every ``test_attention_*`` case (including ``_expanded``) of the pinned onnx package
(python/kvc/onnx/requirements.txt): import -> kvc CPU pipeline -> JIT -> compare every output with
the expected one at the case's tolerance (the backend default rtol=1e-3, atol=1e-7 unless the case
sets its own).

The onnx wheel from PyPI does not ship ``onnx/backend/test/data/node``; when it is absent the data
is generated from the wheel's own case definitions (``onnx.backend.test.case.node``, the same
``expect()`` calls and reference implementation that produce the shipped files) into a cache
directory, once per onnx version.

Usage:
  python -m kvc.onnx.conformance [--kvc-run PATH] [--cache-dir DIR] [--filter SUBSTR]
      [--expected test/Integration/ONNX/attention_expected.txt] [--update-expected]
      [--markdown docs/onnx-conformance.md]

Exit status: 1 if a case listed as ``pass`` in the expected-results file does not pass now
(a regression), else 0. Cases that newly pass are reported (update with --update-expected).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-7
OP_TYPES = ["Attention"]
PREFIX = "test_attention"

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DEFAULT_EXPECTED = os.path.join(REPO_ROOT, "test", "Integration", "ONNX", "attention_expected.txt")


def _node_data_dir_in_wheel():
    import onnx

    d = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
    return d if os.path.isdir(d) else None


def generate_cases(cache_dir: str) -> str:
    """Writes model.onnx + test_data_set_0/{input,output}_N.pb + kvc_tolerance.json per case."""
    import warnings

    import onnx
    from onnx import numpy_helper

    out_root = os.path.join(cache_dir, "onnx-%s" % onnx.__version__, "node")
    stamp = os.path.join(out_root, ".complete")
    if os.path.exists(stamp):
        return out_root
    if os.path.isdir(out_root):
        shutil.rmtree(out_root)
    os.makedirs(out_root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import onnx.backend.test.case.node as node_cases

        cases = []
        for op in OP_TYPES:
            cases += node_cases.collect_testcases(op)
    for case in cases:
        if not case.name.startswith(PREFIX):
            continue
        d = os.path.join(out_root, case.name)
        os.makedirs(d)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        with open(os.path.join(d, "kvc_tolerance.json"), "w") as f:
            json.dump({"rtol": case.rtol, "atol": case.atol}, f)
        for i, (inputs, outputs) in enumerate(case.data_sets):
            ds = os.path.join(d, "test_data_set_%d" % i)
            os.makedirs(ds)
            for j, x in enumerate(inputs):
                name = case.model.graph.input[j].name
                t = x if isinstance(x, onnx.TensorProto) else numpy_helper.from_array(x, name)
                with open(os.path.join(ds, "input_%d.pb" % j), "wb") as f:
                    f.write(t.SerializeToString())
            for j, x in enumerate(outputs):
                name = case.model.graph.output[j].name
                t = x if isinstance(x, onnx.TensorProto) else numpy_helper.from_array(x, name)
                with open(os.path.join(ds, "output_%d.pb" % j), "wb") as f:
                    f.write(t.SerializeToString())
    open(stamp, "w").close()
    return out_root


def _load_pb(path):
    import onnx
    from onnx import numpy_helper

    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    arr = numpy_helper.to_array(t)
    if t.data_type == onnx.TensorProto.BFLOAT16:
        arr = arr.astype(np.float32)
    return t.name, arr


def _short(text: str, limit: int = 160) -> str:
    lines = [l for l in text.strip().splitlines() if "error" in l] or text.strip().splitlines()
    msg = lines[0] if lines else ""
    # Drop the "path:0:0: error: " prefix.
    if "error: " in msg:
        msg = msg.split("error: ", 1)[1]
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def run_case(kvc_run: str, case_dir: str, timeout: int = 120):
    """Returns (status, reason) with status in pass/fail/unsupported."""
    import onnx

    model = onnx.load(os.path.join(case_dir, "model.onnx"), load_external_data=False)
    tol = {"rtol": DEFAULT_RTOL, "atol": DEFAULT_ATOL}
    tol_path = os.path.join(case_dir, "kvc_tolerance.json")
    if os.path.exists(tol_path):
        with open(tol_path) as f:
            tol.update(json.load(f))
    data_sets = sorted(d for d in os.listdir(case_dir) if d.startswith("test_data_set_"))
    for ds in data_sets:
        ds_dir = os.path.join(case_dir, ds)
        inputs = sorted(f for f in os.listdir(ds_dir) if f.startswith("input_"))
        outdir = tempfile.mkdtemp(prefix="kvc-conf-")
        try:
            cmd = [kvc_run, os.path.join(case_dir, "model.onnx"), "--output-dir", outdir]
            for i, f in enumerate(sorted(inputs, key=lambda s: int(s[6:-3]))):
                cmd += ["--input", "%s=%s" % (model.graph.input[i].name, os.path.join(ds_dir, f))]
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                return "fail", "timeout after %ds" % timeout
            if p.returncode != 0:
                msg = _short(p.stderr + p.stdout)
                if p.returncode < 0:
                    return "fail", "crash (signal %d): %s" % (-p.returncode, msg)
                if "unsupported" in (p.stderr + p.stdout):
                    return "unsupported", msg
                return "fail", msg
            n_out = len([f for f in os.listdir(ds_dir) if f.startswith("output_")])
            for j in range(n_out):
                name, want = _load_pb(os.path.join(ds_dir, "output_%d.pb" % j))
                name = model.graph.output[j].name
                fname = name.replace("/", "_").replace("\\", "_").replace(":", "_")
                got_path = os.path.join(outdir, fname + ".npy")
                if not os.path.exists(got_path):
                    return "fail", "output '%s' not written" % name
                got = np.load(got_path)
                if got.shape != want.shape:
                    return "fail", "output '%s': shape %s, expected %s" % (name, got.shape, want.shape)
                g = got.astype(np.float64) if got.dtype != np.bool_ else got
                w = want.astype(np.float64) if want.dtype != np.bool_ else want
                if not np.allclose(g, w, rtol=tol["rtol"], atol=tol["atol"], equal_nan=True):
                    with np.errstate(invalid="ignore"):
                        err = np.nanmax(np.abs(g - w)) if g.size else 0.0
                    return "fail", "output '%s' mismatch: max abs err %.3g (rtol=%g, atol=%g)" % (
                        name, err, tol["rtol"], tol["atol"])
        finally:
            shutil.rmtree(outdir, ignore_errors=True)
    return "pass", ""


def read_expected(path):
    exp = {}
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    name, status = line.split()[:2]
                    exp[name] = status
    return exp


def write_expected(path, results):
    with open(path, "w") as f:
        f.write("# Expected results of python -m kvc.onnx.conformance (one case per line).\n")
        f.write("# A case listed as 'pass' that stops passing fails the conformance lit test.\n")
        f.write("# Regenerate: python -m kvc.onnx.conformance --update-expected\n")
        for name in sorted(results):
            f.write("%s %s\n" % (name, results[name][0]))


def write_markdown(path, results, onnx_version, elapsed):
    counts = {}
    for s, _ in results.values():
        counts[s] = counts.get(s, 0) + 1
    with open(path, "w") as f:
        f.write("<!-- Generated by: PYTHONPATH=python KVC_BUILD_DIR=build "
                ".venv/bin/python -m kvc.onnx.conformance --markdown docs/onnx-conformance.md "
                "-- do not edit by hand. -->\n\n")
        f.write("# ONNX `Attention` backend node-test conformance\n\n")
        f.write("onnx %s (`test_attention_*`, incl. `_expanded`), kvc-run on CPU; tolerance "
                "rtol=%g, atol=%g unless the case sets its own. %d cases: %s. (%.0f s)\n\n" % (
                    onnx_version, DEFAULT_RTOL, DEFAULT_ATOL, len(results),
                    ", ".join("%d %s" % (counts[k], k) for k in sorted(counts)), elapsed))
        f.write("| case | result | reason |\n|---|---|---|\n")
        for name in sorted(results):
            s, why = results[name]
            f.write("| `%s` | %s | %s |\n" % (name, s, why.replace("|", "\\|")))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    build = os.environ.get("KVC_BUILD_DIR", os.path.join(REPO_ROOT, "build"))
    ap.add_argument("--kvc-run", default=shutil.which("kvc-run") or os.path.join(build, "bin", "kvc-run"))
    ap.add_argument("--cache-dir", default=os.path.join(build, "onnx-node-data"))
    ap.add_argument("--data-dir", help="use this node-test directory instead of the wheel's/generated one")
    ap.add_argument("--filter", default="", help="only cases whose name contains this")
    ap.add_argument("--expected", default=DEFAULT_EXPECTED)
    ap.add_argument("--update-expected", action="store_true")
    ap.add_argument("--markdown", help="write a markdown table here")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)

    import onnx

    if not os.path.exists(args.kvc_run):
        print("kvc-run not found at %s" % args.kvc_run, file=sys.stderr)
        return 2
    data_dir = args.data_dir or _node_data_dir_in_wheel() or generate_cases(args.cache_dir)
    names = sorted(d for d in os.listdir(data_dir) if d.startswith(PREFIX) and args.filter in d)
    t0 = time.time()
    results = {}
    for name in names:
        status, why = run_case(args.kvc_run, os.path.join(data_dir, name))
        results[name] = (status, why)
        if not args.quiet:
            print("%-70s %-11s %s" % (name, status.upper(), why), flush=True)
    elapsed = time.time() - t0

    expected = read_expected(args.expected)
    regressions = [n for n in names if expected.get(n) == "pass" and results[n][0] != "pass"]
    improvements = [n for n in names if results[n][0] == "pass" and expected.get(n) != "pass"]
    counts = {}
    for s, _ in results.values():
        counts[s] = counts.get(s, 0) + 1
    print("SUMMARY: %d cases: %s (onnx %s, %.0f s)" % (
        len(results), ", ".join("%d %s" % (counts[k], k) for k in sorted(counts)),
        onnx.__version__, elapsed))
    for n in improvements:
        print("NEW PASS: %s (run with --update-expected)" % n)
    for n in regressions:
        print("REGRESSION: %s: %s %s" % (n, results[n][0], results[n][1]))
    if args.update_expected:
        merged = {n: (s, "") for n, s in expected.items()}
        merged.update(results)
        write_expected(args.expected, merged)
    if args.markdown:
        write_markdown(args.markdown, results, onnx.__version__, elapsed)
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
