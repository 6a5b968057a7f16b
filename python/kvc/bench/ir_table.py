"""Time per compiled decode call (bench/gpu/run-ir-bench.sh) as a markdown table.

Reads the log of run-ir-bench.sh: lines "round R <binary>: B=.. S=.., flush F: median X us ...".
One row per (flush, batch, context), one column per binary, each cell the medians of the rounds
("r1 / r2", µs); with --kernel, a last column with the kernel alone (kvc-bench decode JSON of
the same run, CUDA events, dirty flush). Binaries are ordered as --order gives them (default:
as they first appear).

usage: python3 -m kvc.bench.ir_table run-ir-bench.log [--kernel ir-bench-kernel.json]
       [--order before,ws,,devout]   ('' is the binary without a suffix)
"""
import argparse
import json
import re

LINE = re.compile(r"round (\d+) kvc-decode-ir-bench(-[\w-]+)?: .*?B=(\d+) .*?S=(\d+)"
                  r".*?flush (\w+): median ([\d.]+) us")


def parse(lines):
    """{(flush, B, S): {suffix: [median per round]}} and the suffixes in order of appearance."""
    t, order = {}, []
    for ln in lines:
        m = LINE.search(ln)
        if not m:
            continue
        rnd, suf, b, s, fl, med = m.groups()
        suf = (suf or "")[1:]
        if suf not in order:
            order.append(suf)
        t.setdefault((fl, int(b), int(s)), {}).setdefault(suf, []).append(float(med))
    return t, order


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("log")
    ap.add_argument("--kernel", default="")
    ap.add_argument("--order", default=None)
    a = ap.parse_args(argv)
    t, order = parse(open(a.log))
    if not t:
        raise SystemExit("ir_table: no 'round R kvc-decode-ir-bench...: median' lines in " + a.log)
    if a.order is not None:
        order = a.order.split(",")
    kern = {}
    if a.kernel:
        for r in json.load(open(a.kernel))["results"]:
            kern[(r["batch"], r["context"])] = r["time_us"]
    cols = ["kvc-decode-ir-bench" + ("-" + s if s else "") for s in order]
    head = ["flush", "batch", "context"] + cols + (["kernel alone (dirty)"] if kern else [])
    print("| " + " | ".join(head) + " |")
    print("|---" * len(head) + "|")
    for fl in sorted({k[0] for k in t}):
        for (f, b, s) in sorted(k for k in t if k[0] == fl):
            cells = [" / ".join("%.1f" % x for x in t[(f, b, s)].get(suf, [])) or "-"
                     for suf in order]
            row = [f, str(b), "%dk" % (s // 1024)] + cells
            if kern:
                row.append("%.1f" % kern[(b, s)] if (b, s) in kern else "-")
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
