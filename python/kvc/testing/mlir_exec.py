"""Run MLIR functions on CPU through kvc-opt --kvc-cpu-pipeline and mlir-runner.

The test writes a `@main` that materialises inputs as dense constants, calls the function under
test, casts the results to f32 and prints them with printMemrefF32; this module parses the
printed data back into numpy arrays.
"""
import os
import re
import shutil
import subprocess

import numpy as np

def tool(name):
    """Path of a kvc or LLVM tool: $KVC_BUILD_DIR/bin (default <repo>/build/bin), then
    /usr/lib/llvm-22/bin, then PATH."""
    build = os.environ.get("KVC_BUILD_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "build")
    for d in [os.path.join(build, "bin"), "/usr/lib/llvm-22/bin"]:
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    p = shutil.which(name)
    if not p:
        raise FileNotFoundError(name)
    return p


def round_bf16(x):
    """Rounds float32 values to the nearest bfloat16 (ties to even); returns float32."""
    x = np.asarray(x, dtype=np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16
    return rounded.astype(np.uint32).view(np.float32)


def tensor_type(shape, elem):
    return "tensor<%s%s>" % ("".join("%dx" % s for s in shape), elem)


def _reshape_literal(array, elem):
    # dense<[...]> with a flat list is only valid for rank 1; emit nested brackets.
    a = np.asarray(array)

    infs = {"f32": ("0x7F800000", "0xFF800000"), "f16": ("0x7C00", "0xFC00"),
            "bf16": ("0x7F80", "0xFF80"), "f64": ("0x7FF0000000000000", "0xFFF0000000000000")}

    def scalar(x):
        if elem == "i1":
            return "true" if x else "false"
        f = float(x)
        if np.isinf(f):  # MLIR float literals have no inf spelling: use the bit pattern
            return infs[elem][f < 0]
        return repr(f)

    def rec(x):
        if x.ndim == 0:
            return scalar(x)
        return "[" + ", ".join(rec(y) for y in x) + "]"

    return "dense<%s> : %s" % (rec(a), tensor_type(a.shape, elem))


def build_main(func_text, func_name, inputs, input_elems, result_shapes, result_elem):
    """Returns a module: `func_text` plus @main calling @func_name on constant inputs and
    printing each result (cast to f32)."""
    lines = [func_text, "func.func private @printMemrefF32(tensor<*xf32>)", "func.func @main() {"]
    args = []
    for i, (x, elem) in enumerate(zip(inputs, input_elems)):
        lines.append("  %%in%d = arith.constant %s" % (i, _reshape_literal(x, elem)))
        args.append(("%%in%d" % i, tensor_type(np.asarray(x).shape, elem)))
    res_types = [tensor_type(s, result_elem) for s in result_shapes]
    names = ", ".join("%%r%d" % i for i in range(len(result_shapes)))
    lines.append("  %s = func.call @%s(%s) : (%s) -> (%s)" % (
        names, func_name, ", ".join(a for a, _ in args), ", ".join(t for _, t in args),
        ", ".join(res_types)))
    for i, shape in enumerate(result_shapes):
        src = "%%r%d" % i
        if result_elem != "f32":
            f32t = tensor_type(shape, "f32")
            lines.append("  %%e%d = tensor.empty() : %s" % (i, f32t))
            lines.append(
                "  %%c%d = linalg.generic {indexing_maps = [%s, %s], iterator_types = [%s]} "
                "ins(%s : %s) outs(%%e%d : %s) {\n  ^bb0(%%a: %s, %%b: f32):\n"
                "    %%x = arith.extf %%a : %s to f32\n    linalg.yield %%x : f32\n  } -> %s" % (
                    i, _id_map(len(shape)), _id_map(len(shape)),
                    ", ".join(['"parallel"'] * len(shape)), src, res_types[i], i, f32t,
                    result_elem, result_elem, f32t))
            src = "%%c%d" % i
        lines.append("  %%u%d = tensor.cast %s : %s to tensor<*xf32>" % (
            i, src, tensor_type(shape, "f32")))
        lines.append("  func.call @printMemrefF32(%%u%d) : (tensor<*xf32>) -> ()" % i)
    lines.append("  return")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _id_map(rank):
    dims = ", ".join("d%d" % i for i in range(rank))
    return "affine_map<(%s) -> (%s)>" % (dims, dims)


_DATA = re.compile(r"data =\s*(.*?)(?=Unranked Memref|\Z)", re.S)
_NUM = re.compile(r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf)", re.I)


def parse_printed(stdout, shapes):
    """Parses printMemrefF32 outputs (one per shape, in order)."""
    blocks = _DATA.findall(stdout)
    if len(blocks) != len(shapes):
        raise RuntimeError("expected %d printed memrefs, found %d:\n%s" % (
            len(shapes), len(blocks), stdout[:2000]))
    out = []
    for block, shape in zip(blocks, shapes):
        vals = np.array([float(t) for t in _NUM.findall(block)], dtype=np.float64)
        out.append(vals.reshape(shape))
    return out


def runtime_library():
    """Path of libkvc_runtime.so in the build directory."""
    build = os.environ.get("KVC_BUILD_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "build")
    return os.path.abspath(os.path.join(build, "lib", "libkvc_runtime.so"))


def run_module(module_text, extra_opt_args=(), pipeline="--kvc-cpu-pipeline", shared_libs=()):
    """kvc-opt [extra_opt_args] <pipeline> | mlir-runner; returns stdout. Raises with stderr on
    failure. `shared_libs` are loaded into the runner in addition to MLIR's runner utils."""
    opt = subprocess.run([tool("kvc-opt"), "-", *extra_opt_args, pipeline], input=module_text,
                         capture_output=True, text=True)
    if opt.returncode != 0:
        raise RuntimeError("kvc-opt failed:\n" + opt.stderr)
    libdir = "/usr/lib/llvm-22/lib"
    run = subprocess.run(
        [tool("mlir-runner"), "-e", "main", "-entry-point-result=void",
         "-shared-libs=" + ",".join(["%s/libmlir_c_runner_utils.so" % libdir,
                                     "%s/libmlir_runner_utils.so" % libdir, *shared_libs])],
        input=opt.stdout, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError("mlir-runner failed:\n" + run.stderr)
    return run.stdout


def rel_err(got, ref):
    ref = np.asarray(ref, dtype=np.float64)
    denom = max(np.linalg.norm(ref), 1e-30)
    return float(np.linalg.norm(np.asarray(got, dtype=np.float64) - ref) / denom)


def max_abs_err(got, ref):
    return float(np.max(np.abs(np.asarray(got, dtype=np.float64) - np.asarray(ref)))) \
        if np.asarray(ref).size else 0.0


def prefill_decode_case(func_text, seed, B, HQ, HKV, S, D):
    """Inputs and module of the CPU prefill+decode execution tests.

    Draws, from default_rng(seed) in this order, float32 standard-normal prefill q [B, HQ, S, D],
    k and v [B, HKV, S, D], then one decode token's q, k, v; wraps `func_text`'s
    @prefill_decode (those six inputs, result [B, HQ, 1, D] f32) into a runnable module; and
    computes the uncompressed decode attention over all S + 1 tokens.
    Returns ((qp, kp, vp, qd, kd, vd), module, full)."""
    from kvc.reference import attention
    rng = np.random.default_rng(seed)
    shapes = [(B, HQ, S, D), (B, HKV, S, D), (B, HKV, S, D),
              (B, HQ, 1, D), (B, HKV, 1, D), (B, HKV, 1, D)]
    arrays = tuple(rng.standard_normal(sh).astype(np.float32) for sh in shapes)
    qp, kp, vp, qd, kd, vd = arrays
    module = build_main(func_text, "prefill_decode", list(arrays), ["f32"] * 6,
                        [(B, HQ, 1, D)], "f32")
    full = attention(qd, np.concatenate([kp, kd], 2), np.concatenate([vp, vd], 2))
    return arrays, module, full

