"""Fixed cost and streaming rate of one-launch reads, from `kvc-bench floor --sizes-mib`.

Fits time = t0 + bytes / rate (least squares over the non-empty sizes) for each JSON file
(one read kernel and one flush each) and prints the table, the fit, the empty launch and what
the fit allows at the issue's batch-1 shapes: the best fraction of the copy bandwidth any
kernel with that fixed cost could reach on that many bytes, (bytes / copy) / (t0 + bytes /
rate), never above rate / copy.

usage: python3 -m kvc.bench.floor_fit sizes-x1-dirty.json [sizes-x4-clean.json ...]
       [--markdown]
"""
import argparse
import json

import numpy as np

# K + V bytes of the decode shapes at batch 1 (Hkv 8, D 128, bf16), dense and at r = 0.3.
BATCH1_SHAPES = [
    ("b1 x 4k dense", 2 * 8 * 4096 * 128 * 2),
    ("b1 x 16k dense", 2 * 8 * 16384 * 128 * 2),
    ("b1 x 64k dense", 2 * 8 * 65536 * 128 * 2),
    ("b1 x 16k ragged 0.3", 2 * 8 * round(0.3 * 16384) * 128 * 2),
    ("b1 x 64k ragged 0.3", 2 * 8 * round(0.3 * 65536) * 128 * 2),
]


def fit(rows):
    """(t0 in us, rate in TB/s) of time_us = t0 + bytes / rate over rows with bytes > 0."""
    pts = [(r["bytes"], r["time_us"]) for r in rows if r["bytes"] > 0]
    if len(pts) < 2:
        raise ValueError("need at least two non-empty sizes to fit")
    x = np.array([p[0] for p in pts], dtype=np.float64)
    y = np.array([p[1] for p in pts], dtype=np.float64)
    A = np.stack([np.ones_like(x), x], axis=1)
    (t0, slope), *_ = np.linalg.lstsq(A, y, rcond=None)
    if slope <= 0:
        raise ValueError("time does not grow with size: no streaming rate to fit")
    return float(t0), float(1e-6 / slope)  # bytes per us -> TB/s


def best_fraction(nbytes, t0, rate, copy):
    """Fraction of `copy` (TB/s) a kernel with fixed cost t0 (us) and rate (TB/s) reaches."""
    t = t0 + nbytes / (rate * 1e6)
    return nbytes / (t * 1e6) / copy


def report(path, doc, md):
    rows = [r for r in doc["results"] if "size_mib" in r]
    if not rows:
        raise SystemExit(f"{path}: no --sizes-mib results")
    copy = doc["copy_tbps"]
    variant = rows[0]["variant"]
    t0, rate = fit(rows)
    empty = [r["time_us"] for r in rows if r["bytes"] == 0]
    sep = "|" if md else " "
    print(f"\n{path}: {variant}, flush {doc.get('flush', '?')}, copy {copy:.3f} TB/s")
    hdr = ["MiB", "time_us", "TB/s", "%copy", "fit_us"]
    print((sep + sep.join(hdr) + sep) if md else "  ".join(f"{h:>9}" for h in hdr))
    if md:
        print("|" + "---|" * len(hdr))
    for r in sorted(rows, key=lambda r: r["bytes"]):
        f = t0 + r["bytes"] / (rate * 1e6)
        vals = [f"{r['size_mib']}", f"{r['time_us']:.2f}", f"{r['tbps']:.3f}",
                f"{100 * r['frac_copy']:.1f}%", f"{f:.2f}"]
        print((sep + sep.join(vals) + sep) if md else "  ".join(f"{v:>9}" for v in vals))
    print(f"fit: time = {t0:.2f} us + bytes / {rate:.3f} TB/s "
          f"(rate = {100 * rate / copy:.1f}% of copy)"
          + (f"; empty launch {empty[0]:.2f} us" if empty else ""))
    for name, nb in BATCH1_SHAPES:
        print(f"  {name:>20}: {nb / 1e6:7.1f} MB -> at most "
              f"{100 * best_fraction(nb, t0, rate, copy):.1f}% of copy")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", nargs="+")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args(argv)
    for p in a.json:
        report(p, json.load(open(p)), a.markdown)


if __name__ == "__main__":
    main()
