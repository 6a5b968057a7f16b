"""Fixed-width (entropy = none) decode next to torch SDPA and kvc's Huffman-coded kernel.

Inputs are the JSON files one `bench/gpu/run-fixed-width.sh bench` run writes: sdpa_decode.py,
`kvc-bench fixed-width decode` (the default kernel first, then any variants: where a variant is
faster than the default, an extra row names its file) and `kvc-bench encoded decode`. For each (batch, context): flash and
cuDNN times; for the Huffman-coded and the fixed-width cache the time, the bytes read, the
achieved TB/s and its fraction of the copy bandwidth the kvc-bench run measured, and the speedup
over cuDNN (cuDNN time / kvc time). Then issue 6's encoded target (>= 3x cuDNN at context >=
16k) for the fixed-width form's default kernel. Every input must come from one device and one L2 flush mode.

usage: python3 -m kvc.bench.fixed_width_table --sdpa sdpa.json \\
           --fixed-width kvc-fixed-width.json [variant.json ...] [--encoded kvc-encoded.json]
"""
import argparse
import json
import os
import re
import sys

from kvc.bench.issue_table import best


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("fixed_width_table: %s: %s" % (path, e))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sdpa", required=True, help="sdpa_decode.py --json output")
    ap.add_argument("--fixed-width", nargs="+", required=True,
                    help="kvc-bench fixed-width decode --json outputs (default kernel first)")
    ap.add_argument("--encoded", help="kvc-bench encoded decode --json output (Huffman-coded)")
    a = ap.parse_args(argv)
    sd = load(a.sdpa)
    fw_docs = [load(p) for p in a.fixed_width]
    enc_doc = load(a.encoded) if a.encoded else None
    docs = [("sdpa", sd)] + [(p, d) for p, d in zip(a.fixed_width, fw_docs)]
    if enc_doc:
        docs.append((a.encoded, enc_doc))
    for key in ("flush", "device"):
        # kvc-bench names the device with its architecture ("... (sm_90)"), torch without.
        seen = {re.sub(r" \(sm_\d+a?\)$", "", d[key]) for _, d in docs
                if d.get(key) is not None}
        if len(seen) > 1:
            sys.exit("fixed_width_table: inputs differ in %s: %s" % (key, sorted(seen)))
    # Rows of the default kernel (the first file) and of every file, tagged with the file:
    # variants built with other options share the kernel's name.
    fw_default = fw_docs[0]["results"]
    fw = []
    for p, d in zip(a.fixed_width, fw_docs):
        stem = os.path.basename(p).rsplit(".json", 1)[0]
        fw += [dict(r, source=stem) for r in d["results"]]
    enc = enc_doc["results"] if enc_doc else []
    copy = fw_docs[0].get("copy_tbps")
    print("copy bandwidth (read + write): %s TB/s (kvc-bench), %.2f TB/s (torch); L2 flush: %s"
          % ("%.2f" % copy if copy else "?", sd["copy_tbps"], sd.get("flush", "dirty")))
    print()
    print("| batch | context | flash µs | cuDNN µs | form | kvc µs | MB read | TB/s | % copy "
          "| vs cuDNN |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    shapes = sorted({(r["batch"], r["context"]) for r in fw})
    for B, S in shapes:
        t = {r["backend"]: r["time_us"] for r in sd["results"]
             if r["batch"] == B and r["context"] == S and "time_us" in r}
        cu = t.get("cudnn")
        first = True
        fastest = best(fw, B, S)
        default = best(fw_default, B, S)
        rows = [("Huffman (entropy = huffman)", best(enc, B, S)),
                ("fixed-width (entropy = none)", default)]
        if fastest and default and fastest["time_us"] < default["time_us"]:
            rows.append(("fixed-width, fastest file: %s" % fastest["source"], fastest))
        for form, r in rows:
            if r is None:
                continue
            tbps = r["bytes"] / (r["time_us"] * 1e-6) / 1e12
            print("| %s | %s | %s | %s | %s | %.1f | %.1f | %.2f | %s | %s |" % (
                B if first else "", "%dk" % (S // 1024) if first else "",
                ("%.1f" % t["flash"]) if first and "flash" in t else "",
                ("%.1f" % cu) if first and cu else "", form, r["time_us"], r["bytes"] / 1e6,
                tbps, ("%.0f%%" % (100 * tbps / copy)) if copy else "-",
                ("%.2f×" % (cu / r["time_us"])) if cu else "-"))
            first = False
    print()
    print("| batch | context | target | measured | kernel | met |")
    print("|---|---|---|---|---|---|")
    for B, S in shapes:
        cu = next((r["time_us"] for r in sd["results"] if r["batch"] == B
                   and r["context"] == S and r.get("backend") == "cudnn" and "time_us" in r),
                  None)
        r = best(fw_default, B, S)
        if S >= 16384 and r and cu:
            sp = cu / r["time_us"]
            print("| %d | %dk | fixed-width >= 3x cuDNN | %.2fx | %s | %s |"
                  % (B, S // 1024, sp, r.get("variant", "?"), "yes" if sp >= 3 else "**no**"))


if __name__ == "__main__":
    main()
