"""What the encoded-cache target (>= 3x faster than cuDNN) asks of one decode launch.

For every encoded shape with context >= --min-context, from one run's JSON:
  * need: cuDNN's time / --target, the time the encoded decode must reach;
  * floor: what a launch that only reads the encoded bytes takes, by the fit of the floor's
    size sweep (time = t0 + bytes / rate, kvc.bench.floor_fit) with the same flush;
  * the decode rate the target implies: elements (2*B*Hkv*S*D symbols, keys and values) per
    microsecond left after the fixed cost, need - t0, against the rate measured (elements /
    the encoded kernel's time).
So: need < floor means no kernel can meet the target at that shape; otherwise the ratio of
the two rates is how much faster the decode itself must get.

usage: python3 -m kvc.bench.encoded_bound --sizes sizes-x1-dirty.json --encoded kvc-encoded.json
       --sdpa sdpa.json [--target 3] [--min-context 16384]
"""
import argparse
import json

from kvc.bench.floor_fit import fit


def rows(doc, **want):
    return [r for r in doc["results"] if all(r.get(k) == v for k, v in want.items())]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", required=True)
    ap.add_argument("--encoded", required=True)
    ap.add_argument("--sdpa", required=True)
    ap.add_argument("--target", type=float, default=3.0)
    ap.add_argument("--min-context", type=int, default=16384)
    a = ap.parse_args(argv)
    sizes, enc, sdpa = (json.load(open(p)) for p in (a.sizes, a.encoded, a.sdpa))
    t0, rate = fit([r for r in sizes["results"] if "size_mib" in r])
    for name, doc in (("sizes", sizes), ("encoded", enc), ("sdpa", sdpa)):
        if doc.get("flush", "dirty") != sizes.get("flush", "dirty"):
            raise SystemExit("encoded_bound: %s was timed with flush %s, the sweep with %s"
                             % (name, doc.get("flush"), sizes.get("flush")))
    print("flush %s: floor fit %.2f us + bytes / %.2f TB/s; target %.1fx cuDNN"
          % (sizes.get("flush", "dirty"), t0, rate, a.target))
    print("| batch | context | encoded MB | cuDNN us | need us | floor us | encoded us "
          "| decode rate needed (G elem/s) | measured | factor |")
    print("|---" * 10 + "|")
    for r in sorted(enc["results"], key=lambda r: (r["batch"], r["context"])):
        if r["context"] < a.min_context:
            continue
        cud = rows(sdpa, backend="cudnn", batch=r["batch"], context=r["context"])
        if not cud:
            continue
        need = cud[0]["time_us"] / a.target
        floor = t0 + r["bytes"] / (rate * 1e6)
        elems = 2 * r["batch"] * r["hkv"] * r["context"] * r["d"]
        measured = elems / r["time_us"] / 1e3
        if need > t0:
            needed = elems / (need - t0) / 1e3
            nd, fac = "%.0f" % needed, "%.1fx" % (needed / measured)
        else:
            nd, fac = "-", "-"
        if need < floor:
            fac = "impossible (need < floor)"
        print("| %d | %dk | %.1f | %.1f | %.1f | %.1f | %.1f | %s | %.0f | %s |"
              % (r["batch"], r["context"] // 1024, r["bytes"] / 1e6, cud[0]["time_us"], need,
                 floor, r["time_us"], nd, measured, fac))


if __name__ == "__main__":
    main()
