"""Merge kvc-bench decode JSON(s) with sdpa_decode.py JSON into the docs/gpu.md table.

usage: python3 -m kvc.bench.compare sdpa.json kvc1.json [kvc2.json ...]
"""
import json
import sys


def main(argv):
    sd = json.load(open(argv[0]))
    kv = [r for p in argv[1:] for r in json.load(open(p))["results"]]
    copy = json.load(open(argv[1]))["copy_tbps"] if len(argv) > 1 else sd["copy_tbps"]
    shapes = sorted({(r["batch"], r["context"]) for r in kv})
    print("copy bandwidth (kvc-bench, read+write): %.3f TB/s; torch copy: %.3f TB/s" %
          (copy, sd["copy_tbps"]))
    print("| batch | context | MB read | flash µs | cuDNN µs | kvc µs (variant) | kvc TB/s | "
          "kvc % copy | kvc vs best torch | kvc vs cuDNN |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for B, S in shapes:
        t = {r["backend"]: r for r in sd["results"]
             if r["batch"] == B and r["context"] == S and "time_us" in r}
        ks = [r for r in kv if r["batch"] == B and r["context"] == S]
        best = min(ks, key=lambda r: r["time_us"])
        fl = t.get("flash", {}).get("time_us")
        cu = t.get("cudnn", {}).get("time_us")
        torch_best = min(x for x in (fl, cu) if x) if (fl or cu) else None
        var = best["variant"].split("_d", 1)[1]
        print("| %d | %dk | %.0f | %s | %s | %.1f (%s, %d splits) | %.2f | %.0f%% | %s | %s |" % (
            B, S // 1024, best["bytes"] / 1e6, "%.1f" % fl if fl else "-",
            "%.1f" % cu if cu else "-", best["time_us"], var, best["splits"], best["tbps"],
            100 * best["frac_copy"],
            "%.2f×" % (torch_best / best["time_us"]) if torch_best else "-",
            "%.2f×" % (cu / best["time_us"]) if cu else "-"))


if __name__ == "__main__":
    main(sys.argv[1:])
