"""Merge kvc-bench JSON result files into one document (written to stdout).

The first file's header (device, copy bandwidth, timing, flush, ...) is kept and "results"
holds every file's results in order. With --ptx each result also gets "ptx": the file's name
with .json replaced by .ptx, which tells apart one kernel built with different options (one
PTX per JSON, as the bench/gpu scripts name them; kvc.bench.variant_table reads it).

usage: python3 -m kvc.bench.merge_results [--ptx] a.json [b.json ...] > merged.json
"""
import argparse
import json
import os


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", nargs="+")
    ap.add_argument("--ptx", action="store_true")
    a = ap.parse_args(argv)
    docs = [(p, json.load(open(p))) for p in a.json]
    rows = []
    for p, d in docs:
        for r in d["results"]:
            if a.ptx:
                r["ptx"] = os.path.basename(p)[:-5] + ".ptx"
            rows.append(r)
    merged = docs[0][1]
    merged["results"] = rows
    print(json.dumps(merged, indent=1))


if __name__ == "__main__":
    main()
