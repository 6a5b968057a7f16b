"""One table for one GPU run: dense, ragged (r = 0.3) and encoded decode next to torch SDPA.

Inputs are the JSON files one `bench/gpu/run-all.sh` run writes: kvc-bench decode (dense and
ragged variants), kvc-bench encoded decode, and sdpa_decode.py. For each (batch, context):
the copy bandwidth of that run, flash and cuDNN times, and for each kvc cache form the fastest
variant's time, the bytes it reads, the achieved TB/s, its fraction of the copy bandwidth and
the speedup over cuDNN (cuDNN time / kvc time; > 1 means kvc is faster). Then issue 6's
targets, shape by shape: dense >= 0.9x the faster torch backend and >= 85% of the copy
bandwidth (context >= 16k); ragged r = 0.3 >= 80% of the ideal speedup (best dense time / best
ragged time against dense bytes / ragged bytes); encoded >= 3x cuDNN (context >= 16k).
With --floor (kvc-bench floor JSON, dense and/or ragged), each shape also gets the time of a
plain streaming read of the same bytes after the same flush: what launch, ramp-up and tail
leave of the copy bandwidth at that size. With --fixed-width (kvc-bench fixed-width decode JSON:
the same quantization stored without entropy coding), each shape also gets that form, and the
encoded target is reported for it too.

usage: python3 -m kvc.bench.issue_table --sdpa sdpa.json --dense kvc-dense.json \
           --ragged kvc-ragged.json --encoded kvc-encoded.json [--floor floor.json ...] \
           [--fixed-width kvc-fixed-width.json]
"""
import argparse
import json


def best(rows, B, S, pred=lambda r: True):
    c = [r for r in rows if r["batch"] == B and r["context"] == S and pred(r)]
    return min(c, key=lambda r: r["time_us"]) if c else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sdpa", required=True)
    ap.add_argument("--dense", required=True)
    ap.add_argument("--ragged", required=True)
    ap.add_argument("--encoded", required=True)
    ap.add_argument("--floor", nargs="*", default=[])
    ap.add_argument("--fixed-width", default=None)
    a = ap.parse_args(argv)
    floor = [r for p in a.floor for r in json.load(open(p))["results"]]
    sd = json.load(open(a.sdpa))
    dense_doc = json.load(open(a.dense))
    copy = dense_doc["copy_tbps"]
    dense = [r for r in dense_doc["results"] if not r.get("ragged")]
    ragged = [r for r in json.load(open(a.ragged))["results"] if r.get("ragged")]
    enc = json.load(open(a.encoded))["results"]
    fw = json.load(open(a.fixed_width))["results"] if a.fixed_width else []
    print("copy bandwidth (read + write): %.2f TB/s (kvc-bench), %.2f TB/s (torch)"
          % (copy, sd["copy_tbps"]))
    print()
    print("| batch | context | flash µs | cuDNN µs | form | kvc µs | MB read | TB/s | % copy "
          "| vs cuDNN |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    shapes = sorted({(r["batch"], r["context"]) for r in dense})
    for B, S in shapes:
        t = {r["backend"]: r["time_us"] for r in sd["results"]
             if r["batch"] == B and r["context"] == S and "time_us" in r}
        cu = t.get("cudnn")
        first = True
        forms = (("dense", best(dense, B, S)),
                 ("read floor (dense bytes)", best(floor, B, S, lambda r: not r["ragged"])),
                 ("ragged r=0.3", best(ragged, B, S)),
                 ("read floor (ragged bytes)", best(floor, B, S, lambda r: r["ragged"])),
                 ("encoded", best(enc, B, S)),
                 ("encoded, fixed-width (entropy = none)", best(fw, B, S)))
        for form, r in forms:
            if r is None:
                continue
            tbps = r["bytes"] / (r["time_us"] * 1e-6) / 1e12
            print("| %s | %s | %s | %s | %s | %.1f | %.1f | %.2f | %.0f%% | %s |" % (
                B if first else "", "%dk" % (S // 1024) if first else "",
                ("%.1f" % t["flash"]) if first and "flash" in t else "",
                ("%.1f" % cu) if first and cu else "", form, r["time_us"], r["bytes"] / 1e6,
                tbps, 100 * tbps / copy,
                ("%.2f×" % (cu / r["time_us"])) if cu and "floor" not in form else "-"))
            first = False
    print()
    print("| batch | context | target | measured | variant | met |")
    print("|---|---|---|---|---|---|")
    for B, S in shapes:
        t = {r["backend"]: r["time_us"] for r in sd["results"]
             if r["batch"] == B and r["context"] == S and "time_us" in r}
        d, g, e = best(dense, B, S), best(ragged, B, S), best(enc, B, S)
        ctx = "%dk" % (S // 1024)
        if S >= 16384 and d and t:
            fastest = min(t.values())
            ratio = fastest / d["time_us"]
            pc = 100 * d["bytes"] / (d["time_us"] * 1e-6) / 1e12 / copy
            print("| %d | %s | dense >= 0.9x faster torch, >= 85%% copy | %.2fx, %.0f%% | %s | %s |"
                  % (B, ctx, ratio, pc, d["variant"],
                     "yes" if ratio >= 0.9 and pc >= 85 else "**no**"))
        if d and g:
            speed = d["time_us"] / g["time_us"]
            ideal = d["bytes"] / g["bytes"]
            print("| %d | %s | ragged r=0.3 >= 80%% of ideal %.2fx | %.2fx = %.0f%% | %s | %s |"
                  % (B, ctx, ideal, speed, 100 * speed / ideal, g["variant"],
                     "yes" if speed >= 0.8 * ideal else "**no**"))
        for name, r in (("encoded", e), ("encoded, fixed-width", best(fw, B, S))):
            if S >= 16384 and r and t.get("cudnn"):
                sp = t["cudnn"] / r["time_us"]
                print("| %d | %s | %s >= 3x cuDNN | %.2fx | %s | %s |"
                      % (B, ctx, name, sp, r["variant"], "yes" if sp >= 3 else "**no**"))


if __name__ == "__main__":
    main()
