"""Torch SDPA decode baselines (flash and cuDNN backends) for the kvc-bench decode shapes.

Sq = 1, Hq = 32, Hkv = 8 (GQA through enable_gqa), D = 128, bf16, batch x context grid.
Times with CUDA events around one SDPA call, median of --reps after --warmup, with the L2
flushed before every rep, exactly like kvc-bench decode: --flush dirty (default) is a 4x-L2
memset, which leaves L2 full of dirty lines that the timed call writes back; --flush clean
reads the same buffer instead (a sum), so the timed call starts from a cold, clean L2. Bytes =
K and V read once (2 * B * Hkv * S * D * 2). The call is replayed from a CUDA graph captured
per shape and backend, so the timed region holds the GPU work only: eager Python dispatch
(backend selection, GQA checks) can take longer than the flush that runs ahead of it, and then
the events time the host (run 7 of docs/gpu.md: 140 µs for a batch-1 4k decode that takes 18
µs); --eager times the plain call instead. Also checks each backend against a float64
reference on a small shape. Writes JSON (--json) and prints a table.

usage: python3 -m kvc.bench.sdpa_decode --json sdpa.json [--batches 1,8,32]
       [--contexts 4096,16384,65536] [--reps 30] [--warmup 5] [--flush dirty|clean] [--eager]
"""
import argparse
import json
import math
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}


FLUSH = "dirty"


def flush_l2(flush, i):
    if FLUSH == "dirty":
        flush.fill_(i & 0xFF)
    else:
        flush.view(torch.int32).sum()  # read-only: evicts and writes back during the flush


def median_ms(fn, warmup, reps, flush):
    for _ in range(warmup):
        fn()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for i in range(reps):
        flush_l2(flush, i)
        starts[i].record()
        fn()
        ends[i].record()
    torch.cuda.synchronize()
    t = sorted(s.elapsed_time(e) for s, e in zip(starts, ends))
    return t[reps // 2]


def graphed(fn):
    """fn captured into a CUDA graph (after a warm-up on a side stream); returns its replay."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return g.replay


def sdpa(q, k, v, backend):
    with sdpa_kernel([BACKENDS[backend]]):
        return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)


def check(backend):
    g = torch.Generator(device="cuda").manual_seed(0)
    q = (torch.rand(2, 32, 1, 128, generator=g, device="cuda") * 6 - 3).bfloat16()
    k = (torch.rand(2, 8, 1000, 128, generator=g, device="cuda") * 6 - 3).bfloat16()
    v = (torch.rand(2, 8, 1000, 128, generator=g, device="cuda") * 2 - 1).bfloat16()
    out = sdpa(q, k, v, backend).double()
    ref = F.scaled_dot_product_attention(q.double(), k.double().repeat_interleave(4, 1),
                                         v.double().repeat_interleave(4, 1))
    return ((out - ref).norm() / ref.norm()).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--contexts", default="4096,16384,65536")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--flush", choices=["dirty", "clean"], default="dirty",
                    help="L2 flush before each rep: dirty = memset (default), clean = read")
    ap.add_argument("--eager", action="store_true",
                    help="time the eager SDPA call instead of a CUDA graph replay of it")
    a = ap.parse_args()
    global FLUSH
    FLUSH = a.flush
    dev = torch.cuda.get_device_properties(0)
    flush = torch.zeros(max(4 * dev.L2_cache_size, 256 << 20), dtype=torch.uint8, device="cuda")
    # device copy bandwidth (read + write), same method as kvc-bench copy
    src = torch.ones(2048 << 20, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), 3, 20, flush)
    copy_tbps = 2 * src.numel() / (ms * 1e-3) / 1e12
    del src, dst
    res = {"device": dev.name, "torch": torch.__version__, "copy_tbps": copy_tbps,
           "timing": "CUDA events around one SDPA call (%s), median, L2 flushed before each rep"
                     % ("eager" if a.eager else "CUDA graph replay"),
           "flush": a.flush,
           "checks": {}, "results": []}
    for b in BACKENDS:
        try:
            res["checks"][b] = check(b)
        except Exception as e:  # backend unavailable for this shape/dtype
            res["checks"][b] = "error: %s" % str(e).splitlines()[0]
    print("device %s, torch %s, copy %.3f TB/s, checks %s" % (dev.name, torch.__version__,
                                                              copy_tbps, res["checks"]))
    print("%-6s %5s %7s %10s %8s %7s" % ("backend", "batch", "context", "time_us", "TB/s", "%copy"))
    for B in [int(x) for x in a.batches.split(",")]:
        for S in [int(x) for x in a.contexts.split(",")]:
            q = torch.randn(B, 32, 1, 128, dtype=torch.bfloat16, device="cuda")
            k = torch.randn(B, 8, S, 128, dtype=torch.bfloat16, device="cuda")
            v = torch.randn(B, 8, S, 128, dtype=torch.bfloat16, device="cuda")
            nbytes = 2 * B * 8 * S * 128 * 2
            for b in BACKENDS:
                try:
                    fn = lambda: sdpa(q, k, v, b)  # noqa: E731
                    mode = "eager"
                    if not a.eager:
                        try:
                            fn, mode = graphed(fn), "graph"
                        except Exception as e:  # capture unsupported: say so, time eagerly
                            print("%-6s %5d %7d  graph capture failed (%s), timing eagerly"
                                  % (b, B, S, str(e).splitlines()[0]))
                    ms = median_ms(fn, a.warmup, a.reps, flush)
                except Exception as e:
                    print("%-6s %5d %7d  unavailable: %s" % (b, B, S, str(e).splitlines()[0]))
                    res["results"].append({"backend": b, "batch": B, "context": S,
                                           "error": str(e).splitlines()[0]})
                    continue
                tbps = nbytes / (ms * 1e-3) / 1e12
                print("%-6s %5d %7d %10.1f %8.3f %6.1f%%" % (b, B, S, ms * 1e3, tbps,
                                                           100 * tbps / copy_tbps))
                res["results"].append({"backend": b, "batch": B, "hq": 32, "hkv": 8, "d": 128,
                                       "context": S, "time_us": ms * 1e3, "bytes": nbytes,
                                       "timing_mode": mode,
                                       "tbps": tbps, "frac_copy": tbps / copy_tbps})
            del q, k, v
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
