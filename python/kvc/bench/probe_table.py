"""Table of the fixed-width design probe (bench/gpu/probe) against torch's SDPA from one run.

For every shape of probe.json: the probe's time (its split plan, and the best over any
--sweep files of fixed split counts), bytes read, TB/s and % of the copy bandwidth that
sdpa.json measured, cuDNN's and flash's time, the speedup over cuDNN, and, given a read-floor
fit (time = fixed + bytes / rate, from kvc.bench.floor_fit on the same machine and flush), the
floor for the probe's bytes and the time the issue's 3x-cuDNN target allows.

usage: python3 -m kvc.bench.probe_table --probe probe.json --sdpa sdpa.json
       [--sweep probe-splits-16.json ...] [--floor-fit FIXED_US,TBPS] [--target 3]
"""
import argparse
import json
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--probe", required=True, help="fixed_width_mma bench --json output")
    ap.add_argument("--sdpa", required=True, help="kvc.bench.sdpa_decode --json output")
    ap.add_argument("--sweep", nargs="*", default=[],
                    help="more probe JSONs (e.g. fixed split counts): best time per shape")
    ap.add_argument("--floor-fit", default="",
                    help="FIXED_US,TBPS of the read floor's fit (kvc.bench.floor_fit)")
    ap.add_argument("--target", type=float, default=3.0, help="speedup over cuDNN to check")
    a = ap.parse_args(argv)

    probe, sdpa = load(a.probe), load(a.sdpa)
    sweeps = [(path, load(path)) for path in a.sweep]
    for path, d in [(a.probe, probe)] + sweeps:
        if d.get("flush") != sdpa.get("flush"):
            sys.exit(f"probe_table: flush differs: {path} {d.get('flush')}, "
                     f"sdpa {sdpa.get('flush')}")
        if "device" in d and "device" in sdpa and d["device"] != sdpa["device"]:
            sys.exit(f"probe_table: device differs: {path} {d['device']}, sdpa {sdpa['device']}")
    copy = sdpa["copy_tbps"]
    torch = {(r["backend"], r["batch"], r["context"]): r["time_us"] for r in sdpa["results"]}
    best = {}
    for _, d in sweeps:
        for r in d["results"]:
            k = (r["batch"], r["context"])
            if k not in best or r["time_us"] < best[k]["time_us"]:
                best[k] = r
    fixed = rate = None
    if a.floor_fit:
        try:
            fixed, rate = (float(x) for x in a.floor_fit.split(","))
        except ValueError:
            sys.exit(f"probe_table: --floor-fit wants FIXED_US,TBPS, got '{a.floor_fit}'")

    print(f"fixed-width probe vs torch SDPA, flush {probe['flush']}, copy {copy:.2f} TB/s"
          + (f"; read floor = {fixed:.2f} us + bytes / {rate:.2f} TB/s" if fixed is not None else ""))
    head = ["batch", "context", "flash us", "cuDNN us", "probe us (splits)", "MB read",
            "dense MB", "TB/s", "% copy", "vs cuDNN"]
    if best:
        head += ["best of sweep us (splits)", "vs cuDNN"]
    if fixed is not None:
        head += ["floor us", "% of floor", f"{a.target:g}x needs us"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in probe["results"]:
        b, t = r["batch"], r["context"]
        cud, fl = torch.get(("cudnn", b, t)), torch.get(("flash", b, t))
        if cud is None:
            sys.exit(f"probe_table: no cuDNN time for batch {b} context {t} in {a.sdpa}")
        us, mb = r["time_us"], r["bytes"] / 1e6
        tbps = r["bytes"] / us / 1e6
        row = [str(b), f"{t // 1024}k", f"{fl:.1f}" if fl is not None else "-", f"{cud:.1f}",
               f"{us:.1f} ({r['splits']})", f"{mb:.1f}", f"{r['dense_bytes'] / 1e6:.1f}",
               f"{tbps:.2f}", f"{100 * tbps / copy:.0f}%", f"{cud / us:.2f}x"]
        if best:
            s = best.get((b, t))
            row += [f"{s['time_us']:.1f} ({s['splits']})", f"{cud / s['time_us']:.2f}x"] if s else ["-", "-"]
        if fixed is not None:
            floor = fixed + r["bytes"] / (rate * 1e6)
            row += [f"{floor:.1f}", f"{100 * floor / us:.0f}%", f"{cud / a.target:.1f}"]
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
