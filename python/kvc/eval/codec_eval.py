"""kvc-eval codec: next-token KL of the KVComp-style codec vs the KIVI baseline (methods.md §6.2 item 7e).

Protocol (the KL protocol of kvc.eval.protocol, with "compression" = lossy encoding):
  1. per context (T tokens of real text): prefill the exact model ONCE; keep every layer's
     stored cache (post-RoPE K, V; local layers store their last window - N context tokens,
     the KL protocol's default "common-window" rule, ``prefill(..., continuation=N)``);
  2. reference: teacher-force the next N tokens against the uncompressed stored cache -> p_full;
  3. per configuration, for every layer and KV head: encode the stored (K, V) [Ts, d] with the
     codec (``kvc.runtime.codec.encode_head``, or ``kivi_quantize`` for KIVI), decode it, and use
     the DECODED arrays as the replacement cache (the codec's recent windows decode to the fp16
     values, as the codec defines); teacher-force the same N tokens -> p_c;
  4. KL(p_full || p_c) in nats, mean over the N positions, then over contexts.
The N appended (continuation) tokens are EXACT (float32, not passed through the codec), as in the
KL protocol; with the default recent windows (128 K / 256 V) and N <= 128 the codec would keep
them in its fp16 recent window anyway, apart from the <= 64-token key block it cuts once 192
keys are pending (not simulated).

Configurations (one JSON record each):
  fp16            the stored cache rounded to fp16 (ratio 1 by definition)
  kvcomp          ε_K/ε_V points: PAIRED by default (k_errors[i] with v_errors[i]); --grid = all pairs
  kvcomp-channel  the same codec with per-channel key groups (--key-grouping block,channel;
                  its own ε lists via --channel-k-errors / --channel-v-errors)
  kivi-B          KIVI B-bit (per-channel K groups of --kivi-group tokens, per-token V, fp16 recent)
  sculpt          KVSculpt at --sculpt-ratio r (fraction of stored pairs kept), fp16 (context only)
  sculpt+kvcomp   KVSculpt at r, then the codec at (--sculpt-k-error, --sculpt-v-error,
                  --sculpt-key-grouping)
Equal-KL comparison: per KIVI point, the kvcomp (and kvcomp-channel) compression ratio at the
KIVI point's KL, interpolated in (log ratio, log KL) on the Pareto-optimal sweep points.
Example (one context, a few minutes):  python -m kvc.eval.codec_eval --max-contexts 1 --json out.json
Byte accounting: compression_ratio = fp16 bytes of the ORIGINAL stored cache (2 bytes x (d_k+d_v)
per stored pair, all layers and heads) / ALL stored bytes (bitstreams, offsets, (min, step)
params, codebooks, fp16 recent windows, header+CRC) summed over layers and heads.
bound_violations counts encoded (non-recent) elements with |fp16(x) - x_hat| above the
documented bound (docs/codec.md §2), recomputed here from the decoded data and group min/max;
recent-window elements must decode to fp16(x) exactly (recent_mismatches).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

PROG = "kvc-eval codec"


def _err(msg: str):
    sys.stderr.write(f"{PROG}: {msg}\n")
    sys.stderr.flush()


def _floats(s: str):
    return [float(x) for x in str(s).split(",") if x.strip()]


def _ints(s: str):
    return [int(x) for x in str(s).split(",") if x.strip()]


# ------------------------------------------------------------------------------------------
# Independent error-bound checks (docs/codec.md §2)
# ------------------------------------------------------------------------------------------
_REL_SLACK = 1.0 + 2.0 ** -20
_ABS_SLACK = 2.0 ** -22


def _bound(m, M, half_step):
    return half_step * _REL_SLACK + _ABS_SLACK * np.maximum(np.abs(m), np.abs(M))


def codec_encoded_tokens(T: int, block: int, recent: int) -> int:
    """Encoded tokens of one codec stream after T tokens (docs/codec.md §1)."""
    if T < block + recent:
        return 0
    return (T - recent) // block * block


def check_codec_stream(X, Xhat, n_enc: int, block: int, eps: float, kind: str,
                       grouping: str = "block") -> dict:
    """Counts bound violations of one stream ('keys' or 'values') of one head.

    Groups: keys/'block' = one group per block (block tokens x all channels); keys/'channel' =
    one group per channel within the block; values = one group per token.
    """
    x16 = np.asarray(X, np.float32).astype(np.float16).astype(np.float64)
    xh = np.asarray(Xhat, np.float32).astype(np.float64)
    T, d = x16.shape
    eps64 = float(np.float32(eps))
    viol, worst = 0, 0.0
    if n_enc > 0:
        xe, he = x16[:n_enc], xh[:n_enc]
        if kind == "keys":
            g = xe.reshape(n_enc // block, block, d)
            axes = (1, 2) if grouping == "block" else (1,)
            m = g.min(axis=axes, keepdims=True)
            M = g.max(axis=axes, keepdims=True)
            err = np.abs(g - he.reshape(g.shape))
        else:
            m = xe.min(axis=1, keepdims=True)
            M = xe.max(axis=1, keepdims=True)
            err = np.abs(xe - he)
        half = 0.5 * eps64 * (M - m)
        viol = int(np.count_nonzero(err > _bound(m, M, half)))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(half > 0, err / np.where(half > 0, half, 1.0), np.where(err > 0, np.inf, 0.0))
        worst = float(r.max()) if r.size else 0.0
    recent_mismatch = int(np.count_nonzero(xh[n_enc:] != x16[n_enc:]))
    return {"violations": viol, "recent_mismatches": recent_mismatch, "elements": int(n_enc * d),
            "worst_err_over_half_step": worst}


def check_kivi_head(K, V, Kh, Vh, bits: int, group: int, recent: int) -> dict:
    """KIVI bound: |fp16(x) - x_hat| <= scale/2 (1+2^-20) + 2^-22 max(|m|,|M|), scale=(M-m)/(2^b-1)."""
    T, d = K.shape
    old = max(T - recent, 0)
    nk, nv = old // group * group, old
    out = {"violations": 0, "recent_mismatches": 0, "elements": int((nk + nv) * d),
           "worst_err_over_half_step": 0.0}
    levels = float(2 ** bits - 1)
    for X, Xh, n, kind in ((K, Kh, nk, "keys"), (V, Vh, nv, "values")):
        x16 = np.asarray(X, np.float32).astype(np.float16).astype(np.float64)
        xh = np.asarray(Xh, np.float32).astype(np.float64)
        if n > 0:
            if kind == "keys":
                g = x16[:n].reshape(n // group, group, d)
                m, M = g.min(1, keepdims=True), g.max(1, keepdims=True)
                err = np.abs(g - xh[:n].reshape(g.shape))
            else:
                m, M = x16[:n].min(1, keepdims=True), x16[:n].max(1, keepdims=True)
                err = np.abs(x16[:n] - xh[:n])
            half = 0.5 * (M - m) / levels
            out["violations"] += int(np.count_nonzero(err > _bound(m, M, half)))
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(half > 0, err / np.where(half > 0, half, 1.0), np.where(err > 0, np.inf, 0.0))
            out["worst_err_over_half_step"] = max(out["worst_err_over_half_step"], float(r.max()))
        out["recent_mismatches"] += int(np.count_nonzero(xh[n:] != x16[n:]))
    return out


# ------------------------------------------------------------------------------------------
# Configurations
# ------------------------------------------------------------------------------------------
def _pairs(ke, ve, grid: bool):
    if grid:
        return [(k, v) for k in ke for v in ve]
    if len(ke) != len(ve):
        raise ValueError("the key and value error lists must have the same length (paired points); "
                         "pass --grid for all combinations")
    return list(zip(ke, ve))


def build_configs(args) -> List[dict]:
    pairs = _pairs(_floats(args.k_errors), _floats(args.v_errors), args.grid)
    cfgs = [{"method": "fp16"}]
    for grouping in _groupings(args):
        name = "kvcomp" if grouping == "block" else "kvcomp-channel"
        gp = pairs
        if grouping == "channel" and (args.channel_k_errors or args.channel_v_errors):
            gp = _pairs(_floats(args.channel_k_errors or args.k_errors),
                        _floats(args.channel_v_errors or args.v_errors), args.grid)
        cfgs += [{"method": name, "k_error": k, "v_error": v, "key_grouping": grouping} for k, v in gp]
    cfgs += [{"method": f"kivi-{b}", "bits": b} for b in _ints(args.kivi_bits)]
    if args.sculpt_ratio and args.sculpt_ratio > 0:
        cfgs.append({"method": "sculpt", "sculpt_ratio": args.sculpt_ratio})
        cfgs.append({"method": "sculpt+kvcomp", "sculpt_ratio": args.sculpt_ratio,
                     "k_error": args.sculpt_k_error, "v_error": args.sculpt_v_error,
                     "key_grouping": args.sculpt_key_grouping})
    return cfgs


def _groupings(args) -> List[str]:
    gs = [g.strip() for g in str(args.key_grouping).split(",") if g.strip()]
    bad = [g for g in gs if g not in ("block", "channel")]
    if bad or not gs:
        raise ValueError(f"--key-grouping: expected block and/or channel, got {args.key_grouping!r}")
    return gs


def _codec_opts(args, grouping: str = "block") -> dict:
    return {"key_block": args.key_block, "value_block": args.value_block,
            "key_recent": args.key_recent, "value_recent": args.value_recent,
            "key_grouping": grouping}


_SUM_FIELDS = ("total_bytes", "quant_only_total_bytes", "bitstream_bytes", "offset_bytes",
               "quant_param_bytes", "codebook_bytes", "recent_bytes", "header_bytes",
               "key_escape_count", "value_escape_count")


def encode_cache(layers_kv, cfg: dict, args, codec) -> dict:
    """Encodes+decodes every (layer, KV head) of layers_kv ([layer][head] -> (K, V)).

    Returns decoded heads, summed byte stats, bound checks and encode/decode seconds."""
    grouping = cfg.get("key_grouping", "block")
    opts = _codec_opts(args, grouping)
    heads_out, sums = [], {f: 0 for f in _SUM_FIELDS}
    chk = {"violations": 0, "recent_mismatches": 0, "elements": 0, "worst_err_over_half_step": 0.0,
           "encoded_token_mismatches": 0}
    t_enc = t_dec = 0.0
    in_bytes = 0
    enc_bits = {"keys": [0.0, 0], "values": [0.0, 0]}
    for hs in layers_kv:
        row = []
        for K, V in hs:
            K = np.ascontiguousarray(K, np.float32)
            V = np.ascontiguousarray(V, np.float32)
            T, d = K.shape
            in_bytes += 2 * (K.size + V.size)
            if cfg["method"].startswith("kivi"):
                t0 = time.perf_counter()
                e = codec.kivi_quantize(K, V, bits=cfg["bits"], group_size=args.kivi_group,
                                        recent=args.kivi_recent)
                t1 = time.perf_counter()
                Kh, Vh = e.dequantize()
                t2 = time.perf_counter()
                c = check_kivi_head(K, V, Kh, Vh, cfg["bits"], args.kivi_group, args.kivi_recent)
            else:
                t0 = time.perf_counter()
                e = codec.encode_head(K, V, k_error=cfg["k_error"], v_error=cfg["v_error"], **opts)
                t1 = time.perf_counter()
                Kh, Vh = e.decode()
                t2 = time.perf_counter()
                nk = codec_encoded_tokens(T, args.key_block, args.key_recent)
                nv = codec_encoded_tokens(T, args.value_block, args.value_recent)
                ck = check_codec_stream(K, Kh, nk, args.key_block, cfg["k_error"], "keys", grouping)
                cv = check_codec_stream(V, Vh, nv, args.value_block, cfg["v_error"], "values")
                c = {k: ck[k] + cv[k] for k in ("violations", "recent_mismatches", "elements")}
                c["worst_err_over_half_step"] = max(ck["worst_err_over_half_step"], cv["worst_err_over_half_step"])
                st0 = e.stats()
                c["encoded_token_mismatches"] = int(st0["key_encoded_tokens"] != nk) + int(st0["value_encoded_tokens"] != nv)
            t_enc += t1 - t0
            t_dec += t2 - t1
            st = e.stats()
            for f in _SUM_FIELDS:
                sums[f] += int(st.get(f, 0))
            if not cfg["method"].startswith("kivi"):
                for s, n in (("keys", st["key_encoded_tokens"]), ("values", st["value_encoded_tokens"])):
                    enc_bits[s][0] += st[f"{s[:-1]}_encoded_bits_per_element"] * n * d
                    enc_bits[s][1] += n * d
            for k in ("violations", "recent_mismatches", "elements", "encoded_token_mismatches"):
                chk[k] += int(c.get(k, 0))
            chk["worst_err_over_half_step"] = max(chk["worst_err_over_half_step"], c["worst_err_over_half_step"])
            row.append((Kh, Vh))
        heads_out.append(row)
    res = {"heads": heads_out, "bytes": sums, "check": chk, "encode_s": t_enc, "decode_s": t_dec,
           "input_fp16_bytes": in_bytes}
    if cfg["method"].startswith("kivi"):
        sums["quant_only_total_bytes"] = sums["total_bytes"]
    else:
        res.update({
            "key_encoded_bits_per_element": enc_bits["keys"][0] / max(enc_bits["keys"][1], 1),
            "value_encoded_bits_per_element": enc_bits["values"][0] / max(enc_bits["values"][1], 1),
            "encoded_fraction": (enc_bits["keys"][1] + enc_bits["values"][1]) / max(in_bytes / 2, 1)})
    return res


# ------------------------------------------------------------------------------------------
# Equal-KL comparison
# ------------------------------------------------------------------------------------------
def ratio_at_kl(points, kl_target) -> Optional[float]:
    """Compression ratio of a (ratio, kl) curve at kl_target: linear in (log ratio, log KL)
    between the first bracketing pair of points sorted by ratio; None outside the range.
    Only Pareto-optimal points are used (none with both a higher ratio and a lower KL), so a
    --grid sweep is compared through its lower envelope."""
    pts = sorted((r, max(k, 1e-12)) for r, k in points)
    pts = [p for p in pts if not any(q[0] >= p[0] and q[1] < p[1] for q in pts if q is not p)]
    lt = math.log(max(kl_target, 1e-12))
    for (r0, k0), (r1, k1) in zip(pts, pts[1:]):
        a, b = math.log(k0), math.log(k1)
        if min(a, b) <= lt <= max(a, b):
            if b == a:
                return max(r0, r1)
            f = (lt - a) / (b - a)
            return math.exp(math.log(r0) + f * (math.log(r1) - math.log(r0)))
    return None


def compare_vs_kivi(records) -> List[dict]:
    out = []
    for method in ("kvcomp", "kvcomp-channel"):
        kv = [(r["compression_ratio"], r["kl"]) for r in records if r["method"] == method]
        if not kv:
            continue
        for r in records:
            if not r["method"].startswith("kivi"):
                continue
            cr = ratio_at_kl(kv, r["kl"])
            row = {"method": method, "baseline": r["method"], "baseline_kl": r["kl"],
                   "baseline_ratio": r["compression_ratio"], "kvcomp_ratio_at_equal_kl": cr}
            if cr is None:
                kls = [k for _, k in kv]
                row["note"] = ("baseline KL outside the %s sweep's KL range [%.3g, %.3g]; "
                               "widen --k-errors/--v-errors" % (method, min(kls), max(kls)))
            else:
                row["ratio_gain"] = cr / r["compression_ratio"]
                row["memory_reduction_rate_gain"] = (1 - 1 / cr) / (1 - 1 / r["compression_ratio"])
            out.append(row)
    return out


# ------------------------------------------------------------------------------------------
# Main loop
# ------------------------------------------------------------------------------------------
def _prefill(model, tokens, n_continuation: int):
    """Prefill under the KL protocol's default local-layer rule ("common-window"): a local layer
    stores its last (window - N) context tokens, the ones every continuation token sees."""
    import inspect
    if "continuation" in inspect.signature(model.prefill).parameters:
        return model.prefill(tokens, logits="none", continuation=n_continuation)
    return model.prefill(tokens, logits="none")      # older decoder: last `window` tokens


def run(model, contexts, cfgs, args, codec, log=_err, partial_json=None) -> dict:
    from ..models.decoder import log_softmax
    from .protocol import kl_rows
    acc: Dict[int, dict] = {i: {"kl": [], "kl_pos": [], "top1": [], "dnll": [], "bytes": [], "fp16": [],
                                "check": [], "enc_s": 0.0, "dec_s": 0.0, "in_bytes": 0, "cont_s": [],
                                "comp_s": [], "kbits": [], "vbits": [], "encfrac": [], "error": None}
                            for i in range(len(cfgs))}
    ctx_info = []
    sculpt = None
    if any(c["method"].startswith("sculpt") for c in cfgs):
        from .methods import make_compressor
        sculpt = make_compressor("sculpt")
    for ci, ctx in enumerate(contexts):
        T, N = len(ctx.context), len(ctx.continuation)
        t0 = time.perf_counter()
        pre = _prefill(model, ctx.context, N)
        t_pre = time.perf_counter() - t0
        full = [L.as_heads() for L in pre.layers]
        fp16_bytes = int(sum(2 * (K.size + V.size) for hs in full for K, V in hs))
        t0 = time.perf_counter()
        ref = model.continue_(full, ctx.continuation, start_pos=T)
        t_ref = time.perf_counter() - t0
        logp_ref = log_softmax(ref.logits)
        targets = np.asarray(ctx.continuation[1:])
        nll_ref = -logp_ref[np.arange(N - 1), targets]
        top_ref = np.argmax(ref.logits, -1)
        info = {"name": ctx.name, "source": ctx.source, "offset": ctx.offset, "context_tokens": T,
                "continuation_tokens": N, "prefill_seconds": t_pre, "reference_continuation_seconds": t_ref,
                "stored_tokens_per_layer": [int(L.K.shape[1]) for L in pre.layers],
                "fp16_bytes": fp16_bytes, "ref_nll": float(nll_ref.mean())}
        log(f"[{ci + 1}/{len(contexts)}] {ctx.name}: prefill {t_pre:.1f}s, reference continuation "
            f"{t_ref:.1f}s, stored cache {fp16_bytes / 1e6:.2f} MB fp16")
        sculpted = None
        t_ctx = time.perf_counter()
        for i, cfg in enumerate(cfgs):
            a = acc[i]
            m = cfg["method"]
            t_c = time.perf_counter()
            try:
                if m == "fp16":
                    heads = [[(K.astype(np.float16).astype(np.float32), V.astype(np.float16).astype(np.float32))
                              for K, V in hs] for hs in full]
                    res = {"bytes": {"total_bytes": fp16_bytes, "quant_only_total_bytes": fp16_bytes},
                           "check": {"violations": 0, "recent_mismatches": 0, "elements": 0,
                                     "worst_err_over_half_step": 0.0}, "encode_s": 0.0, "decode_s": 0.0,
                           "input_fp16_bytes": 0}
                elif m.startswith("sculpt"):
                    if sculpted is None:
                        ts = time.perf_counter()
                        cc = sculpt.compress(pre.layers, cfg["sculpt_ratio"])
                        sculpted = (cc.heads, time.perf_counter() - ts)
                        log(f"    sculpt r={cfg['sculpt_ratio']:g}: {sculpted[1]:.1f}s")
                    a["comp_s"].append(sculpted[1])
                    if m == "sculpt":
                        heads = sculpted[0]
                        b = int(sum(2 * (K.size + V.size) for hs in heads for K, V in hs))
                        res = {"bytes": {"total_bytes": b, "quant_only_total_bytes": b},
                               "check": {"violations": 0, "recent_mismatches": 0, "elements": 0,
                                         "worst_err_over_half_step": 0.0}, "encode_s": 0.0, "decode_s": 0.0,
                               "input_fp16_bytes": 0}
                    else:
                        res = encode_cache(sculpted[0], cfg, args, codec)
                        heads = res["heads"]
                else:
                    res = encode_cache(full, cfg, args, codec)
                    heads = res["heads"]
            except Exception as e:  # codec errors are reported per configuration
                a["error"] = f"{type(e).__name__}: {e}"
                log(f"    {m}: FAILED: {a['error']}")
                continue
            t_enc = time.perf_counter() - t_c
            t0 = time.perf_counter()
            out = model.continue_(heads, ctx.continuation, start_pos=T)
            t_cont = time.perf_counter() - t0
            kl = kl_rows(logp_ref, out.logits)
            lp = log_softmax(out.logits)
            nll = -lp[np.arange(N - 1), targets]
            a["kl"].append(float(kl.mean()))
            a["kl_pos"].append(kl)
            a["top1"].append(float(np.mean(np.argmax(out.logits, -1) == top_ref)))
            a["dnll"].append(float(nll.mean() - nll_ref.mean()))
            a["bytes"].append(res["bytes"])
            a["fp16"].append(fp16_bytes)
            a["check"].append(res["check"])
            a["enc_s"] += res["encode_s"]
            a["dec_s"] += res["decode_s"]
            a["in_bytes"] += res["input_fp16_bytes"]
            a["cont_s"].append(t_cont)
            if "key_encoded_bits_per_element" in res:
                a["kbits"].append(res["key_encoded_bits_per_element"])
                a["vbits"].append(res["value_encoded_bits_per_element"])
                a["encfrac"].append(res["encoded_fraction"])
            ratio = fp16_bytes / res["bytes"]["total_bytes"]
            log(f"    {_label(cfg):28s} ratio {ratio:5.2f}  KL {kl.mean():.5f}  viol "
                f"{res['check']['violations']}  encode+decode+check {t_enc:5.1f}s  continuation {t_cont:5.1f}s")
        info["configs_seconds"] = time.perf_counter() - t_ctx
        ctx_info.append(info)
        if partial_json and ci + 1 < len(contexts):
            _write_json(aggregate(model, cfgs, acc, ctx_info, args), partial_json)
            log(f"    partial results ({ci + 1} context(s)) in {partial_json}")
    return aggregate(model, cfgs, acc, ctx_info, args)


def _write_json(res, path):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f, indent=1)
    Path(tmp).replace(path)


def aggregate(model, cfgs, acc, ctx_info, args) -> dict:
    records = []
    for i, cfg in enumerate(cfgs):
        a = acc[i]
        rec = {"method": cfg["method"], "k_error": cfg.get("k_error"), "v_error": cfg.get("v_error")}
        if "key_grouping" in cfg:
            rec["key_grouping"] = cfg["key_grouping"]
        if "bits" in cfg:
            rec["bits"] = cfg["bits"]
        if "sculpt_ratio" in cfg:
            rec["sculpt_ratio"] = cfg["sculpt_ratio"]
        if not a["kl"]:
            rec["error"] = a["error"] or "not run"
            records.append(rec)
            continue
        total = float(np.sum([b["total_bytes"] for b in a["bytes"]]))
        fp16 = float(np.sum(a["fp16"]))
        qo = float(np.sum([b["quant_only_total_bytes"] for b in a["bytes"]]))
        allpos = np.concatenate(a["kl_pos"])
        chk = a["check"]
        rec.update({
            "bits_per_element": 16.0 * total / fp16,
            "compression_ratio": fp16 / total,
            "quant_only_ratio": fp16 / qo,
            "kl": float(np.mean(a["kl"])),
            "kl_per_context": a["kl"],
            "kl_median_positions": float(np.median(allpos)),
            "kl_p90_positions": float(np.percentile(allpos, 90)),
            "top1_agreement": float(np.mean(a["top1"])),
            "delta_nll": float(np.mean(a["dnll"])),
            "bound_violations": int(sum(c["violations"] for c in chk)),
            "recent_mismatches": int(sum(c["recent_mismatches"] for c in chk)),
            "checked_elements": int(sum(c["elements"] for c in chk)),
            "encoded_token_mismatches": int(sum(c.get("encoded_token_mismatches", 0) for c in chk)),
            "worst_err_over_half_step": float(max(c["worst_err_over_half_step"] for c in chk)),
            "stored_bytes_per_context": [b["total_bytes"] for b in a["bytes"]],
            "fp16_bytes_per_context": a["fp16"],
            "bytes_breakdown": {f: float(np.mean([b.get(f, 0) for b in a["bytes"]])) for f in _SUM_FIELDS},
            "continuation_seconds": float(np.mean(a["cont_s"])),
        })
        if a["in_bytes"] and a["enc_s"] > 0:
            rec["encode_gbps"] = a["in_bytes"] / a["enc_s"] / 1e9
            rec["decode_gbps"] = a["in_bytes"] / a["dec_s"] / 1e9
            rec["encode_seconds_per_context"] = a["enc_s"] / len(a["kl"])
            rec["decode_seconds_per_context"] = a["dec_s"] / len(a["kl"])
            rec["codec_input_fp16_bytes_per_context"] = a["in_bytes"] / len(a["kl"])
        if a["kbits"]:
            rec["key_encoded_bits_per_element"] = float(np.mean(a["kbits"]))
            rec["value_encoded_bits_per_element"] = float(np.mean(a["vbits"]))
            rec["encoded_fraction_of_elements"] = float(np.mean(a["encfrac"]))
        if a["comp_s"]:
            rec["sculpt_seconds_per_context"] = float(np.mean(a["comp_s"]))
        records.append(rec)
    c = model.cfg
    return {
        "model": {"name": c.name, "arch": c.arch, "source": getattr(model, "source", None),
                  "layers": c.n_layers, "kv_heads": c.n_kv_heads, "q_heads": c.n_heads,
                  "head_dim": c.head_dim, "sliding_window": list(c.sliding_window)},
        "protocol": {
            "kl": "KL(p_full || p_config) in nats, mean over the N continuation positions, then contexts",
            "cache": "every (layer, KV head) of the prefill's stored cache encoded and decoded; the "
                     "decoded arrays replace the cache; continuation tokens appended exact (float32)",
            "local_layers": "common-window rule: a local layer stores its last (window - N) context "
                            "tokens (prefill(..., continuation=N)), all visible to every new token",
            "compression_ratio": "fp16 bytes of the original stored cache / all stored bytes "
                                 "(bitstreams, offsets, min/step, codebooks, fp16 recent windows, header)",
            "quant_only_ratio": "as compression_ratio with fixed-width symbols instead of Huffman "
                                "(bitstream, offsets, codebook replaced); KIVI: = compression_ratio",
            "bound_violations": "encoded elements with |fp16(x)-x_hat| > documented bound, recomputed "
                                "from group min/max of fp16(x) (docs/codec.md §2)",
            "throughput": "fp16-equivalent bytes of the codec input (K+V) / seconds, one thread, real caches",
            "pairing": "grid" if args.grid else "paired",
        },
        "codec_options": {**_codec_opts(args), "key_grouping": _groupings(args)},
        "kivi_options": {"group_tokens": args.kivi_group, "recent_tokens": args.kivi_recent},
        "contexts": ctx_info,
        "records": records,
        "comparison_vs_kivi": compare_vs_kivi([r for r in records if "kl" in r]),
    }


def _label(cfg) -> str:
    m = cfg["method"]
    if m in ("kvcomp", "kvcomp-channel", "sculpt+kvcomp"):
        s = f"{m} eK={cfg['k_error']:g} eV={cfg['v_error']:g}"
        if "sculpt_ratio" in cfg:
            s += f" r={cfg['sculpt_ratio']:g} {cfg.get('key_grouping', 'block')}"
        return s
    if m == "sculpt":
        return f"sculpt r={cfg['sculpt_ratio']:g}"
    return m


def _fmt(x, f):
    return "-" if x is None else format(x, f)


def format_table(result: dict) -> str:
    rows = [("method", "eK", "eV", "bits/el", "ratio", "q-only", "K enc b/el", "V enc b/el", "KL mean",
             "KL p90", "top1", "viol", "enc GB/s", "dec GB/s")]
    for r in result["records"]:
        if "kl" not in r:
            rows.append((r["method"], _fmt(r.get("k_error"), "g"), _fmt(r.get("v_error"), "g"),
                         "ERROR: " + r.get("error", "?"), "", "", "", "", "", "", "", "", "", ""))
            continue
        name = r["method"] + (f" r={r['sculpt_ratio']:g}" if "sculpt_ratio" in r else "")
        if r["method"] == "sculpt+kvcomp":
            name += f" ({r.get('key_grouping', 'block')})"
        rows.append((name,
                     _fmt(r.get("k_error"), "g"), _fmt(r.get("v_error"), "g"),
                     f"{r['bits_per_element']:.3f}", f"{r['compression_ratio']:.2f}",
                     f"{r['quant_only_ratio']:.2f}", _fmt(r.get("key_encoded_bits_per_element"), ".3f"),
                     _fmt(r.get("value_encoded_bits_per_element"), ".3f"), f"{r['kl']:.5f}",
                     f"{r['kl_p90_positions']:.5f}", f"{r['top1_agreement']:.3f}", str(r["bound_violations"]),
                     _fmt(r.get("encode_gbps"), ".3f"), _fmt(r.get("decode_gbps"), ".3f")))
    w = [max(len(str(x[i])) for x in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(x[i]).rjust(w[i]) if i else str(x[i]).ljust(w[i]) for i in range(len(x)))
             for x in rows]
    lines.insert(1, "-" * len(lines[0]))
    comp = result.get("comparison_vs_kivi") or []
    if comp:
        lines.append("")
        lines.append("KVComp vs KIVI at equal KL (KVComp ratio interpolated in log-log on the KL-vs-ratio curve):")
        for c in comp:
            if c.get("kvcomp_ratio_at_equal_kl") is None:
                lines.append(f"  {c['method']} vs {c['baseline']}: KL {c['baseline_kl']:.5f}, ratio {c['baseline_ratio']:.2f}; "
                             f"{c.get('note', '')}")
            else:
                lines.append(f"  {c['method']} vs {c['baseline']}: KL {c['baseline_kl']:.5f}, ratio "
                             f"{c['baseline_ratio']:.2f} -> {c['method']} ratio {c['kvcomp_ratio_at_equal_kl']:.2f} = {c['ratio_gain']:.2f}x "
                             f"(memory-reduction rate {c['memory_reduction_rate_gain']:.2f}x)")
    return "\n".join(lines)


def _plot(res, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _err("--plot needs matplotlib (pip install matplotlib); skipped")
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    by = {}
    for r in res["records"]:
        if "kl" in r and r["method"] != "fp16":
            key = "kivi" if r["method"].startswith("kivi") else r["method"]
            if key == "sculpt":
                continue
            by.setdefault(key, []).append((r["compression_ratio"], r["kl"], r["method"]))
    for m, pts in by.items():
        pts.sort()
        ax.plot([p[0] for p in pts], [max(p[1], 1e-8) for p in pts], marker="o", label=m)
        if m == "kivi":
            for p in pts:
                ax.annotate(p[2], (p[0], max(p[1], 1e-8)))
    ax.set_yscale("log")
    ax.set_xlabel("compression ratio (fp16 bytes / all stored bytes)")
    ax.set_ylabel("mean KL(full || compressed) [nats]")
    ax.set_title(f"{res['model']['name']}: {len(res['contexts'])} context(s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="gemma3-270m")
    p.add_argument("--text-file", action="append", help="repeatable; default examples/texts/*.txt")
    p.add_argument("--context", type=int, default=2048, help="context tokens (incl. BOS)")
    p.add_argument("--continuation", type=int, default=128, help="teacher-forced tokens")
    p.add_argument("--contexts-per-file", type=int, default=1)
    p.add_argument("--max-contexts", type=int, default=0, help="0 = all")
    p.add_argument("--k-errors", default="0.005,0.01,0.02,0.05,0.1", help="key ε (range-relative)")
    p.add_argument("--v-errors", default="0.01,0.02,0.05,0.1,0.2", help="value ε (range-relative)")
    p.add_argument("--grid", action="store_true",
                   help="sweep every (ε_K, ε_V) combination instead of the paired points")
    p.add_argument("--channel-k-errors", default="",
                   help="key ε of the kvcomp-channel points (default: --k-errors)")
    p.add_argument("--channel-v-errors", default="",
                   help="value ε of the kvcomp-channel points (default: --v-errors)")
    p.add_argument("--key-block", type=int, default=64)
    p.add_argument("--value-block", type=int, default=128)
    p.add_argument("--key-recent", type=int, default=128)
    p.add_argument("--value-recent", type=int, default=256)
    p.add_argument("--key-grouping", default="block",
                   help="comma list: block (KVComp BlockQuant, method 'kvcomp') and/or channel "
                        "(per-channel key groups within a block, method 'kvcomp-channel')")
    p.add_argument("--kivi-bits", default="2,4", help="comma list from 2,3,4,8; empty = none")
    p.add_argument("--kivi-group", type=int, default=32, help="KIVI key group (tokens)")
    p.add_argument("--kivi-recent", type=int, default=128, help="KIVI fp16 recent window (tokens)")
    p.add_argument("--sculpt-ratio", type=float, default=0.3,
                   help="KVSculpt fraction kept for the sculpt / sculpt+kvcomp points; 0 = skip")
    p.add_argument("--sculpt-k-error", type=float, default=0.05)
    p.add_argument("--sculpt-v-error", type=float, default=0.1)
    p.add_argument("--sculpt-key-grouping", choices=("block", "channel"), default="block",
                   help="key grouping of the codec in the sculpt+kvcomp point")
    p.add_argument("--json")
    p.add_argument("--plot")
    return p


def main(argv=None) -> int:
    t_all = time.perf_counter()
    args = build_parser().parse_args(argv)
    try:
        cfgs = build_configs(args)
    except ValueError as e:
        _err(str(e))
        return 2
    try:
        from kvc.runtime import codec
        codec._lib()
    except Exception as e:
        _err(f"the codec needs libkvc_runtime.so (build kvc or set KVC_RUNTIME_LIB): {e}")
        return 3
    if any(c["method"].startswith("sculpt") for c in cfgs):
        from .methods import make_compressor, MethodUnavailableError
        try:
            make_compressor("sculpt")
        except MethodUnavailableError as e:
            _err(f"{e}; skipping the sculpt points")
            cfgs = [c for c in cfgs if not c["method"].startswith("sculpt")]
    from .cli import load_model_and_contexts
    try:
        model, ctxs = load_model_and_contexts(args)
    except SystemExit as e:
        return int(e.code or 2)
    _err(f"{len(ctxs)} context(s) of {args.context} tokens, continuation {args.continuation}; "
         f"{len(cfgs)} configurations: {', '.join(_label(c) for c in cfgs)}")
    res = run(model, ctxs, cfgs, args, codec, partial_json=args.json)
    res["command"] = " ".join([PROG] + (list(argv) if argv is not None else sys.argv[1:]))
    res["wall_seconds"] = time.perf_counter() - t_all
    print(f"model: {model.cfg.name}  contexts: {len(ctxs)}  T={args.context}  N={args.continuation}  "
          f"({'grid' if args.grid else 'paired'} ε points; ratio = fp16 bytes / all stored bytes; "
          f"KL(full||config) in nats)")
    print(format_table(res))
    viol = sum(r.get("bound_violations", 0) + r.get("recent_mismatches", 0) for r in res["records"])
    per_ctx = [c["prefill_seconds"] + c["reference_continuation_seconds"] + c["configs_seconds"]
               for c in res["contexts"]]
    print(f"timings: wall {res['wall_seconds']:.0f}s; per context {', '.join(f'{s:.0f}s' for s in per_ctx)} "
          f"(prefill {np.mean([c['prefill_seconds'] for c in res['contexts']]):.0f}s, continuation "
          f"{np.mean([c['reference_continuation_seconds'] for c in res['contexts']]):.0f}s each)")
    if args.json:
        _write_json(res, args.json)
        _err(f"wrote {args.json}")
    if args.plot and _plot(res, args.plot):
        _err(f"wrote {args.plot}")
    if viol:
        _err(f"ERROR: {viol} elements outside the documented bound / recent-window mismatches")
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
