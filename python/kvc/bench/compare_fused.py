"""Fused-merge vs split+merge kernels from kvc-bench JSON (the docs/gpu.md table).

For each (batch, context) and kernel kind (dense or ragged): the fastest split+merge variant,
the fastest fused-merge variant (`_fm` in the name, kvc-gpu-pipeline fuse-merge=true) and the speedup.

usage: python3 -m kvc.bench.compare_fused kvc.json [kvc2.json ...]
"""
import json
import sys


def fused(r):
    """Kernel names carry `_fm` (fuse-merge=true) among their option tags."""
    return "fm" in r["variant"].split("_")


def main(argv):
    if not argv:
        sys.exit(__doc__)
    rs = [r for p in argv for r in json.load(open(p))["results"]]
    print("| kind | batch | context | split+merge µs | fused µs | fused speedup |")
    print("|---|---|---|---|---|---|")
    for kind in (False, True):
        for B, S in sorted({(r["batch"], r["context"]) for r in rs if r["ragged"] == kind}):
            sel = [r for r in rs if r["ragged"] == kind and r["batch"] == B and r["context"] == S]
            a = [r for r in sel if not fused(r)]
            b = [r for r in sel if fused(r)]
            if not a or not b:
                continue
            ta, tb = min(r["time_us"] for r in a), min(r["time_us"] for r in b)
            print("| %s | %d | %dk | %.1f | %.1f | %.2f× |" % (
                "ragged" if kind else "dense", B, S // 1024, ta, tb, ta / tb))


if __name__ == "__main__":
    main(sys.argv[1:])
