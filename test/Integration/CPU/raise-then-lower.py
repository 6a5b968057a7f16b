# Raised-then-lowered equals unraised: every @raise_* function of
# test/Dialect/KVC/Transforms/raise-attention.mlir is compiled twice with kvc-cpu-pipeline,
# once as written (decomposed Linalg) and once with raise-attention=1 (through kvc.attention),
# run on the same random inputs, and the two results compared.
# Tolerance: relative Frobenius error 1e-5 (f32 throughout).
#
# REQUIRES: numpy
# RUN: %python %s %kvc_src_root/test/Dialect/KVC/Transforms/raise-attention.mlir | FileCheck %s
# CHECK: raise_sdpa_4d_softmax: raised=1 {{.*}} OK
# CHECK: raise_bmm_decomposed_softmax: raised=1 {{.*}} OK
# CHECK: raise_gqa_repeat_kv: raised=1 {{.*}} OK
# CHECK: raise_matmul_transpose_b: raised=1 {{.*}} OK
# CHECK: 4 functions, 0 failed
import re
import subprocess
import sys

import numpy as np

from kvc.testing.mlir_exec import build_main, parse_printed, rel_err, run_module, tool

TOL = 1e-5


def shape_of(type_text):
    dims = type_text[len("tensor<"):-1].split("x")[:-1]
    return tuple(int(d) for d in dims)


def main(path):
    chunks = open(path).read().split("// -----")
    failures = count = 0
    for chunk in chunks:
        m = re.search(r"func\.func @(raise_\w+)\(([^)]*)\)\s*->\s*(tensor<[^>]*>)", chunk)
        if not m:
            continue
        count += 1
        name, args, result = m.group(1), m.group(2), m.group(3)
        arg_types = re.findall(r"tensor<[^>]*>", args)
        rng = np.random.default_rng(count)
        inputs = [rng.standard_normal(shape_of(t)).astype(np.float32) for t in arg_types]
        out_shape = shape_of(result)
        module = build_main(chunk, name, inputs, ["f32"] * len(inputs), [out_shape], "f32")
        raised_ir = subprocess.run([tool("kvc-opt"), "-", "--kvc-raise-attention"], input=module,
                                   capture_output=True, text=True, check=True).stdout
        n_raised = raised_ir.count("kvc.attention")
        (plain,) = parse_printed(run_module(module), [out_shape])
        (raised,) = parse_printed(
            run_module(module, pipeline="--kvc-cpu-pipeline=raise-attention=1"), [out_shape])
        err = rel_err(raised, plain)
        ok = n_raised == 1 and err <= TOL and np.all(np.isfinite(raised))
        failures += not ok
        print("%s: raised=%d rel_err(raised vs unraised)=%.2e %s" % (
            name, n_raised, err, "OK" if ok else "FAIL"))
    print("%d functions, %d failed" % (count, failures))
    return 1 if failures or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
