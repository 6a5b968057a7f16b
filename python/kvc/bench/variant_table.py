"""Every kernel variant x shape from kvc-bench decode JSON, as a markdown table of µs.

Rows are variants (dense first, then ragged), columns the (batch, context) shapes; the fastest
variant of each kind and shape is in bold. Rows that carry "ptx" (the file they were timed
from) are told apart by it. For sweeps such as bench/gpu/sweep-l2-prefetch.sh and
`bench/gpu/run-encoded.sh ms`.

usage: python3 -m kvc.bench.variant_table kvc.json [kvc2.json ...]
"""
import json
import sys


def main(argv):
    if not argv:
        sys.exit(__doc__)
    rs = [r for p in argv for r in json.load(open(p))["results"]]
    shapes = sorted({(r["batch"], r["context"]) for r in rs})
    t = {}
    for r in rs:
        v = "d" + r["variant"].split("_d", 1)[1]
        if "ptx" in r:  # the same kernel built with other options (e.g. register caps)
            v += " (%s)" % r["ptx"]
        t[(r.get("ragged", False), v, r["batch"], r["context"])] = r["time_us"]
    print("| variant | " + " | ".join("b%d × %dk" % (B, S // 1024) for B, S in shapes) + " |")
    print("|---" * (len(shapes) + 1) + "|")
    for kind in (False, True):
        names = sorted({v for (k, v, _, _) in t if k == kind})
        best = {s: min((t[(kind, v) + s] for v in names if (kind, v) + s in t), default=None)
                for s in shapes}
        for v in names:
            cells = []
            for s in shapes:
                x = t.get((kind, v) + s)
                cells.append("-" if x is None else
                             ("**%.1f**" if x == best[s] else "%.1f") % x)
            print("| %s | %s |" % (v, " | ".join(cells)))


if __name__ == "__main__":
    main(sys.argv[1:])
