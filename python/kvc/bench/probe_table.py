"""Table of the fixed-width design probe (bench/gpu/probe) against torch's SDPA from one run.

For every shape of probe.json: the probe's time (its split plan, and the best over any
--sweep files of fixed split counts), bytes read, TB/s and % of the copy bandwidth that
sdpa.json measured, cuDNN's and flash's time, the speedup over cuDNN, and, given a read-floor
fit (time = fixed + bytes / rate, from kvc.bench.floor_fit on the same machine and flush), the
floor for the probe's bytes and the time the issue's 3x-cuDNN target allows.

A probe run without --window encodes every token; the codec keeps its newest tokens in fp16
recent windows (keys: key_recent plus what does not fill a key block; values likewise).
--windows KEY_RECENT,VALUE_RECENT (the codec's defaults: 128,256) adds a projection to such a
run: its bytes with those tokens in fp16 instead of fixed-width codes, read at its measured
rate. (A run with --window measures that instead.)

usage: python3 -m kvc.bench.probe_table --probe probe.json --sdpa sdpa.json
       [--sweep probe-splits-16.json ...] [--floor-fit FIXED_US,TBPS] [--target 3]
       [--windows 128,256]
"""


def window_extra_bytes(batch, context, key_recent, value_recent):
    """Bytes the codec's fp16 windows add over the probe's all-fixed-width form."""
    def recent(block, keep):
        encoded = (context - keep) // block * block if context >= block + keep else 0
        return context - encoded
    rk, rv = recent(KEY_BLOCK, key_recent), recent(VALUE_BLOCK, value_recent)
    # fp16 rows replace fixed-width codes (the value (min, step) pairs of window tokens go too).
    per_row = rk * D * (2 - KEY_BITS / 8) + rv * (D * (2 - VALUE_BITS / 8) - 8)
    return batch * HKV * per_row
import argparse
import json
import sys

KEY_BLOCK, VALUE_BLOCK, D, HKV = 64, 128, 128, 8
KEY_BITS, VALUE_BITS = 5, 4


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
    ap.add_argument("--windows", default="",
                    help="KEY_RECENT,VALUE_RECENT: project the codec's fp16 windows")
    a = ap.parse_args(argv)
    probe, sdpa = load(a.probe), load(a.sdpa)
    windows = None
    if a.windows and probe.get("window", 0):
        sys.exit(f"probe_table: --windows projects windows onto an all-codes run, but {a.probe} "
                 f"already has a {probe['window']}-token window")
    if a.windows:
        try:
            windows = tuple(int(x) for x in a.windows.split(","))
            if len(windows) != 2 or min(windows) < 0:
                raise ValueError
        except ValueError:
            sys.exit(f"probe_table: --windows wants KEY_RECENT,VALUE_RECENT, got '{a.windows}'")

    sweeps = [(path, load(path)) for path in a.sweep]
    for path, d in [(a.probe, probe)] + sweeps:
        if d.get("window", 0) != probe.get("window", 0):
            sys.exit(f"probe_table: window differs: {path} {d.get('window', 0)}, "
                     f"{a.probe} {probe.get('window', 0)}")
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
    if windows:
        head += ["with fp16 windows: MB", "projected us", "vs cuDNN"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in probe["results"]:
        b, t = r["batch"], r["context"]
        cud, fl = torch.get(("cudnn", b, t)), torch.get(("flash", b, t))
        if cud is None:
            sys.exit(f"probe_table: no cuDNN time for batch {b} context {t} in {a.sdpa}")
        us, mb = r["time_us"], r["bytes"] / 1e6
        tbps = r["bytes"] / us / 1e6
        row = [str(b), f"{t // 1024}k" if t % 1024 == 0 else str(t), f"{fl:.1f}" if fl is not None else "-", f"{cud:.1f}",
               f"{us:.1f} ({r['splits']})", f"{mb:.1f}", f"{r['dense_bytes'] / 1e6:.1f}",
               f"{tbps:.2f}", f"{100 * tbps / copy:.0f}%", f"{cud / us:.2f}x"]
        if best:
            s = best.get((b, t))
            row += [f"{s['time_us']:.1f} ({s['splits']})", f"{cud / s['time_us']:.2f}x"] if s else ["-", "-"]
        if fixed is not None:
            floor = fixed + r["bytes"] / (rate * 1e6)
            row += [f"{floor:.1f}", f"{100 * floor / us:.0f}%", f"{cud / a.target:.1f}"]
        if windows:
            extra = window_extra_bytes(b, t, *windows)
            proj = us * (r["bytes"] + extra) / r["bytes"]
            row += [f"{(r['bytes'] + extra) / 1e6:.1f}", f"{proj:.1f}", f"{cud / proj:.2f}x"]
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
