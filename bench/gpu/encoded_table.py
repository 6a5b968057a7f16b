#!/usr/bin/env python3
"""Table of the encoded-cache (KVComp) decode benchmark against kvc's dense bf16 kernels and
torch SDPA (cuDNN, flash), from the JSON files of `kvc-bench encoded decode`, `kvc-bench decode`
and python/kvc/bench/sdpa_decode.py.

usage: bench/gpu/encoded_table.py --encoded E.json [E2.json ...] --dense D.json [...] --sdpa S.json
The encoded and dense columns take the fastest variant per shape (the variant is named)."""
import argparse, json

ap = argparse.ArgumentParser()
ap.add_argument("--encoded", nargs="+", required=True)
ap.add_argument("--dense", nargs="+", required=True)
ap.add_argument("--sdpa", required=True)
a = ap.parse_args()

def best(files, tag):
    out = {}
    for f in files:
        d = json.load(open(f))
        for r in d["results"]:
            k = (r["batch"], r["context"])
            r = dict(r, file=f.split("/")[-1])
            if k not in out or r["time_us"] < out[k]["time_us"]:
                out[k] = r
    return out

enc = best(a.encoded, "enc")
den = best(a.dense, "dense")
sd = {}
for r in json.load(open(a.sdpa))["results"]:
    sd[(r["backend"], r["batch"], r["context"])] = r["time_us"]

def short(f):
    return f.replace("h100-encoded-", "").replace(".json", "")

print("| batch | context | bf16 MB | encoded MB | bits/elem | encoded µs (file, splits) | "
      "encoded TB/s | dense kvc µs (file) | cuDNN µs | encoded / dense | encoded / cuDNN | "
      "≥ 3× cuDNN? |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for (b, s) in sorted(enc):
    e = enc[(b, s)]
    d = den.get((b, s))
    c = sd.get(("cudnn", b, s))
    sp_d = d["time_us"] / e["time_us"] if d else float("nan")
    sp_c = c / e["time_us"] if c else float("nan")
    met = "n/a (< 16k)" if s < 16384 else ("yes" if sp_c >= 3 else "no")
    print(f"| {b} | {s // 1024}k | {e['bf16_bytes'] / 1e6:.0f} | {e['bytes'] / 1e6:.1f} | "
          f"{e['bits_per_element']:.2f} | {e['time_us']:.1f} ({short(e['file'])}, {e['splits']}) | "
          f"{e['tbps']:.3f} | {d['time_us']:.1f} ({short(d['file'])}) | {c:.1f} | {sp_d:.2f}× | "
          f"{sp_c:.2f}× | {met} |")
