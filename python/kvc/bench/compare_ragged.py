"""Ragged (compressed, ratio r) vs dense decode from kvc-bench JSON: the docs/gpu.md table.

For each (batch, context): the fastest dense variant on the full context, the fastest ragged
variant on round(r * context) pairs per row, the speedup, the ideal speedup implied by the
bytes read (dense bytes / ragged bytes) and the fraction of it reached (issue 6 target: 80%).

usage: python3 -m kvc.bench.compare_ragged dense.json ragged.json
"""
import json
import sys


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    dense = json.load(open(argv[0]))["results"]
    ragged = json.load(open(argv[1]))["results"]
    shapes = sorted({(r["batch"], r["context"]) for r in ragged})
    print("| batch | context | kept pairs/row | dense µs (variant) | ragged µs (variant) | "
          "speedup | ideal | % of ideal |")
    print("|---|---|---|---|---|---|---|---|")
    for B, S in shapes:
        ds = [r for r in dense if r["batch"] == B and r["context"] == S and not r["ragged"]]
        rs = [r for r in ragged if r["batch"] == B and r["context"] == S and r["ragged"]]
        if not ds or not rs:
            continue
        d = min(ds, key=lambda r: r["time_us"])
        g = min(rs, key=lambda r: r["time_us"])
        speed = d["time_us"] / g["time_us"]
        ideal = d["bytes"] / g["bytes"]
        name = lambda r: r["variant"].split("_bf16_", 1)[1].replace("_ragged", "")
        print("| %d | %dk | %d | %.1f (%s) | %.1f (%s) | %.2f× | %.2f× | %.0f%% |" % (
            B, S // 1024, g["kept_pairs_per_row"], d["time_us"], name(d), g["time_us"],
            name(g), speed, ideal, 100 * speed / ideal))


if __name__ == "__main__":
    main(sys.argv[1:])
