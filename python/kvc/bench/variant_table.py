"""Every kernel variant x shape from kvc-bench decode JSON, as a markdown table of µs.

Rows are variants (dense first, then ragged), columns the (batch, context) shapes; the fastest
variant of each kind and shape is in bold. Rows that carry "ptx" (the file they were timed
from) are told apart by it. With --by TAG the rows are instead the values N of a `_<TAG><N>`
name tag (absent: 0), each cell the fastest variant with that value: e.g. --by l2p for
bench/gpu/sweep-l2-prefetch.sh. Also for `bench/gpu/run-encoded.sh ms`.

usage: python3 -m kvc.bench.variant_table [--by TAG] kvc.json [kvc2.json ...]
"""
import argparse
import json
import re


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", nargs="+")
    ap.add_argument("--by", default="")
    a = ap.parse_args(argv)
    rs = [r for p in a.json for r in json.load(open(p))["results"]]
    shapes = sorted({(r["batch"], r["context"]) for r in rs})
    t = {}
    for r in rs:
        if a.by:
            m = re.search(r"_%s(\d+)(?:_|$)" % re.escape(a.by), r["variant"])
            v = "%s=%d" % (a.by, int(m.group(1)) if m else 0)
        else:
            v = "d" + r["variant"].split("_d", 1)[1]
            if "ptx" in r:  # the same kernel built with other options (e.g. register caps)
                v += " (%s)" % r["ptx"]
        key = (r.get("ragged", False), v, r["batch"], r["context"])
        t[key] = min(t.get(key, float("inf")), r["time_us"])
    print("| %s | " % ("kind, " + a.by if a.by else "variant") +
          " | ".join("b%d × %dk" % (B, S // 1024) for B, S in shapes) + " |")
    print("|---" * (len(shapes) + 1) + "|")
    for kind in (False, True):
        names = sorted({v for (k, v, _, _) in t if k == kind},
                       key=lambda v: (len(v), v))
        best = {s: min((t[(kind, v) + s] for v in names if (kind, v) + s in t), default=None)
                for s in shapes}
        for v in names:
            cells = []
            for s in shapes:
                x = t.get((kind, v) + s)
                cells.append("-" if x is None else
                             ("**%.1f**" if x == best[s] else "%.1f") % x)
            label = ("ragged " if kind else "dense ") + v if a.by else v
            print("| %s | %s |" % (label, " | ".join(cells)))


if __name__ == "__main__":
    main()
