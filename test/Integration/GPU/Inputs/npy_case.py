"""npy_case.py DIR NAME=SPEC ...: writes DIR/NAME.npy for each NAME=SPEC (no numpy needed).

SPEC is SHAPE[:DTYPE[:VALUE]]: SHAPE like 1x4x1x256 ("" for a scalar), DTYPE f4 (float32,
the default), i8 (int64) or f8 (float64); the elements are VALUE if given, else a fixed
pseudo-random sequence in [-1, 1). SPEC `garbage` writes a file that is not a .npy. For the
kvc-bench check-npy command-line tests (real-model case folders: q, k, v, expected, lengths).
"""
import os
import struct
import sys


def write(path, shape, dtype, value):
    n = 1
    for d in shape:
        n *= d
    fmt = {"f4": "f", "f8": "d", "i8": "q"}[dtype]
    if value is not None:
        vals = [int(value) if dtype == "i8" else float(value)] * n
    else:
        x, vals = 12345, []
        for _ in range(n):
            x = (1103515245 * x + 12345) % (1 << 31)
            v = x / float(1 << 30) - 1.0
            vals.append(int(v * 100) if dtype == "i8" else v)
    shp = "(" + "".join(f"{d}, " for d in shape)[:-2] + ("," if len(shape) == 1 else "") + ")"
    header = f"{{'descr': '<{dtype}', 'fortran_order': False, 'shape': {shp}, }}"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack(f"<{n}{fmt}", *vals))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for arg in sys.argv[2:]:
        name, spec = arg.split("=", 1)
        path = os.path.join(out, name + ".npy")
        if spec == "garbage":
            with open(path, "wb") as f:
                f.write(b"not a numpy file\n")
            continue
        parts = spec.split(":")
        shape = [int(d) for d in parts[0].split("x")] if parts[0] else []
        dtype = parts[1] if len(parts) > 1 and parts[1] else "f4"
        value = parts[2] if len(parts) > 2 else None
        write(path, shape, dtype, value)


if __name__ == "__main__":
    main()
