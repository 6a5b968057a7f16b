"""Next-token KL protocol (methods.md §6.2 items 1 and 2).

For each context (T tokens of real text, starting with BOS):
  1. prefill the exact model; keep every layer's stored cache (K, V, Q, positions);
  2. reference: teacher-force the next N tokens of the same text against the uncompressed
     stored cache (``DecoderModel.continue_``) -> p_full at the N new positions;
  3. for each method and ratio r (fraction of stored pairs KEPT): compress every layer's
     stored cache, teacher-force the same N tokens against the compressed cache -> p_c;
  4. KL(p_full || p_c) at each of the N positions (the distributions predicted by the N
     continuation tokens for tokens T+1..T+N); mean over positions, then over contexts.
Per layer, also: held-out attention-output relative error of the reference continuation's
queries against the context cache (compressed vs uncompressed, new tokens excluded):
sum ||o_c - o||^2 / sum ||o||^2 over queries and query heads; compression seconds; kept
pairs; fp16 bytes of the kept pairs (K and V).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..models.decoder import log_softmax
from .methods import make_compressor, Compressor
from .queries import attention_output


def kl_rows(logp_ref: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """KL(p_ref || p) per row; logp_ref float64 log-probs, logits raw."""
    lp = log_softmax(logits)
    return np.sum(np.exp(logp_ref) * (logp_ref - lp), axis=-1)


def attn_rel_err(queries: np.ndarray, layer, heads) -> np.ndarray:
    """Per KV head: sum ||o_c - o||^2 / sum ||o||^2 for queries [Hq, N, d] of the layer."""
    hkv = layer.K.shape[0]
    g = queries.shape[0] // hkv
    out = np.zeros(hkv)
    for h in range(hkv):
        q = queries[h * g:(h + 1) * g].reshape(-1, queries.shape[-1])
        o = attention_output(q, layer.K[h], layer.V[h])
        ck, cv = heads[h][0], heads[h][1]
        oc = attention_output(q, ck, cv)
        out[h] = float(np.sum((oc - o) ** 2) / max(np.sum(o ** 2), 1e-30))
    return out


class _Progress:
    def __init__(self, total: int, desc: str, enabled: bool = True):
        self.bar = None
        self.enabled = enabled
        self.total, self.n, self.desc = total, 0, desc
        if not enabled:
            return
        try:
            from tqdm import tqdm
            self.bar = tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True)
        except ImportError:
            self.bar = None

    def update(self, note: str = ""):
        self.n += 1
        if not self.enabled:
            return
        if self.bar is not None:
            if note:
                self.bar.set_postfix_str(note, refresh=False)
            self.bar.update(1)
        else:
            sys.stderr.write(f"\r{self.desc}: {self.n}/{self.total} {note}   ")
            sys.stderr.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            sys.stderr.write("\n")


@dataclass
class RunConfig:
    methods: List[str]
    ratios: List[float]
    method_opts: Dict[str, dict] = field(default_factory=dict)
    local_rule_check: bool = False
    progress: bool = True
    # "common-window": local layers store (and compress) their last window-N context tokens;
    # "exact": local layers are not compressed and slide exactly (reference == plain model).
    local_layers: str = "common-window"


def _expand(cc, comp_ids, layers, full_heads):
    """Puts a compressed subset of layers back among the uncompressed (exact) ones."""
    if len(comp_ids) == len(layers):
        return cc
    from .methods import CompressedCache
    heads, kept, bud, secs = list(full_heads), [], [], []
    pos = {li: k for k, li in enumerate(comp_ids)}
    for li, L in enumerate(layers):
        if li in pos:
            k = pos[li]
            heads[li] = cc.heads[k]
            kept.append(cc.kept_idx[k])
            bud.append(cc.budgets[k])
            secs.append(cc.seconds[k])
        else:
            kept.append([np.arange(L.K.shape[1])] * L.K.shape[0])
            bud.append([L.K.shape[1]] * L.K.shape[0])
            secs.append(0.0)
    stats = dict(cc.stats)
    if "layer_train_rel_mse" in stats:
        v = [0.0] * len(layers)
        for k, li in enumerate(comp_ids):
            v[li] = stats["layer_train_rel_mse"][k]
        stats["layer_train_rel_mse"] = v
    return CompressedCache(heads=heads, kept_idx=kept, budgets=bud, seconds=secs, stats=stats)


def run_kl(model, contexts, cfg: RunConfig, log: Callable[[str], None] = None) -> dict:
    """Runs the protocol; returns {"records": [...], "contexts": [...], "reference": {...}}."""
    log = log or (lambda s: None)
    compressors: Dict[str, Compressor] = {m: make_compressor(m, **cfg.method_opts.get(m, {}))
                                          for m in cfg.methods}
    jobs = [(m, (1.0 if m == "full" else r)) for m in cfg.methods
            for r in ([1.0] if m == "full" else cfg.ratios)]
    acc: Dict[tuple, dict] = {}
    ctx_info = []
    n_layers = model.cfg.n_layers
    bar = _Progress(len(contexts) * (1 + len(jobs)), "kvc-eval kl", cfg.progress)
    for ci, ctx in enumerate(contexts):
        T, N = len(ctx.context), len(ctx.continuation)
        t0 = time.perf_counter()
        exact_local = cfg.local_layers == "exact"
        pre = model.prefill(ctx.context, logits="none", continuation=0 if exact_local else N)
        t_prefill = time.perf_counter() - t0
        full_heads = [L.as_heads(with_positions=exact_local and L.is_local) for L in pre.layers]
        comp_ids = [i for i, L in enumerate(pre.layers) if not (exact_local and L.is_local)]
        comp_layers = [pre.layers[i] for i in comp_ids]
        t0 = time.perf_counter()
        ref = model.continue_(full_heads, ctx.continuation, start_pos=T, return_qkv=True)
        t_cont = time.perf_counter() - t0
        logp_ref = log_softmax(ref.logits)
        targets = np.asarray(ctx.continuation[1:])
        nll_ref = -logp_ref[np.arange(N - 1), targets]
        top_ref = np.argmax(ref.logits, -1)
        info = {"name": ctx.name, "source": ctx.source, "offset": ctx.offset, "context_tokens": T,
                "continuation_tokens": N, "prefill_seconds": t_prefill,
                "continuation_seconds": t_cont, "ref_nll": float(nll_ref.mean()),
                "stored_pairs_per_layer": [int(L.K.shape[0] * L.K.shape[1]) for L in pre.layers]}
        if cfg.local_rule_check:
            # Plain Gemma 3 over context+continuation vs the reference's local-layer rule.
            full_seq = np.concatenate([ctx.context, ctx.continuation])
            exact = model.prefill(full_seq, logits=T, keep_cache=False).logits
            info["local_rule_kl"] = float(kl_rows(log_softmax(exact), ref.logits).mean())
            info["local_rule_top1_agree"] = float(np.mean(np.argmax(exact, -1) == top_ref))
        ctx_info.append(info)
        bar.update(f"{ctx.name} prefill {t_prefill:.1f}s")
        for (m, r) in jobs:
            comp = compressors[m]
            cc = _expand(comp.compress(comp_layers, r), comp_ids, pre.layers, full_heads)
            out = model.continue_(cc.heads, ctx.continuation, start_pos=T)
            kl = kl_rows(logp_ref, out.logits)
            lp = log_softmax(out.logits)
            nll = -lp[np.arange(N - 1), targets]
            errs = [attn_rel_err(ref.queries[li], pre.layers[li], cc.heads[li]) for li in range(n_layers)]
            rec = acc.setdefault((m, r), {"kl": [], "kl_pos": [], "top1": [], "dnll": [], "kept": [],
                                          "seconds": [], "layer_seconds": [], "layer_kept": [],
                                          "layer_bytes": [], "layer_err": [], "head_err": [],
                                          "budgets": [], "stored": [], "stats": []})
            rec["stats"].append(cc.stats)
            rec["kl"].append(float(kl.mean()))
            rec["kl_pos"].append(kl)
            rec["top1"].append(float(np.mean(np.argmax(out.logits, -1) == top_ref)))
            rec["dnll"].append(float(nll.mean() - nll_ref.mean()))
            rec["kept"].append(int(sum(cc.kept_pairs_per_layer())))
            rec["stored"].append(int(sum(info["stored_pairs_per_layer"])))
            rec["seconds"].append(float(sum(cc.seconds)))
            rec["layer_seconds"].append(cc.seconds)
            rec["layer_kept"].append(cc.kept_pairs_per_layer())
            rec["layer_bytes"].append(cc.bytes_fp16_per_layer())
            rec["layer_err"].append([float(e.mean()) for e in errs])
            rec["head_err"].append([e.tolist() for e in errs])
            rec["budgets"].append(cc.budgets)
            bar.update(f"{m} r={r:g} KL={kl.mean():.4f}")
    bar.close()

    records = []
    for (m, r), a in acc.items():
        allpos = np.concatenate(a["kl_pos"])
        records.append({
            "method": m,
            "ratio": r,
            "ratio_meaning": "fraction of stored KV pairs kept",
            "kl": float(np.mean(a["kl"])),
            "kl_per_context": a["kl"],
            "kl_median_positions": float(np.median(allpos)),
            "kl_p90_positions": float(np.percentile(allpos, 90)),
            "top1_agreement": float(np.mean(a["top1"])),
            "delta_nll": float(np.mean(a["dnll"])),
            "kept_pairs": float(np.mean(a["kept"])),
            "stored_pairs": float(np.mean(a["stored"])),
            "kept_fraction": float(np.mean(a["kept"]) / np.mean(a["stored"])),
            "cache_bytes_fp16": float(np.mean([sum(b) for b in a["layer_bytes"]])),
            "seconds": float(np.mean(a["seconds"])),
            "seconds_per_context": a["seconds"],
            "layer_seconds": np.mean(a["layer_seconds"], 0).tolist(),
            "layer_kept_pairs": np.mean(a["layer_kept"], 0).tolist(),
            "layer_cache_bytes_fp16": np.mean(a["layer_bytes"], 0).tolist(),
            "layer_attn_rel_err": np.mean(a["layer_err"], 0).tolist(),
            "layer_head_attn_rel_err": np.mean(np.array(a["head_err"], dtype=float), 0).tolist(),
            "layer_head_budgets": np.mean(np.array(a["budgets"], dtype=float), 0).tolist(),
        })
        st = a["stats"]
        if st and "layer_train_rel_mse" in st[0]:
            records[-1]["layer_train_rel_mse"] = np.mean([s["layer_train_rel_mse"] for s in st], 0).tolist()
            records[-1]["fell_back_heads"] = int(sum(s.get("fell_back_heads", 0) for s in st))
        if st and "pilot_difficulty" in st[0]:
            records[-1]["pilot_difficulty_per_context"] = [s["pilot_difficulty"] for s in st]
            records[-1]["pilot_spread"] = float(np.mean([s["pilot_spread"] for s in st]))
    c = model.cfg
    return {
        "model": {"name": c.name, "arch": c.arch, "source": getattr(model, "source", None),
                  "layers": c.n_layers, "kv_heads": c.n_kv_heads, "q_heads": c.n_heads,
                  "head_dim": c.head_dim, "layer_is_local": [w is not None for w in c.sliding_window],
                  "sliding_window": [w for w in c.sliding_window]},
        "protocol": {
            "ratio": "fraction of stored KV pairs kept per (layer, KV head); budget = round(r * Ts)",
            "kl": "KL(p_full || p_compressed) in nats, mean over the N continuation positions, "
                  "then over contexts",
            "local_layers": (
                "common-window: a sliding-window layer stores its last (window - N) context tokens "
                "(those every continuation token sees in the plain model); compression applies to "
                "them; all stored/compressed entries stay visible to the N new tokens, which slide "
                "among themselves; the reference uses the same rule"
                if cfg.local_layers != "exact" else
                "exact: sliding-window layers are not compressed and slide exactly; only global "
                "layers are compressed; the reference is the plain model"),
            "attn_rel_err": "continuation (reference) queries vs context cache only: "
                            "sum||o_c-o||^2/sum||o||^2",
            "cache_bytes_fp16": "2 bytes x (d_k + d_v) per kept pair, summed over layers and KV heads",
        },
        "contexts": ctx_info,
        "records": records,
    }


def format_table(result: dict) -> str:
    rows = [("method", "r(kept)", "KL mean", "KL p90", "top1", "dNLL", "kept pairs", "fp16 MB", "comp s")]
    for r in result["records"]:
        rows.append((r["method"], f"{r['ratio']:.2f}", f"{r['kl']:.5f}", f"{r['kl_p90_positions']:.5f}",
                     f"{r['top1_agreement']:.3f}", f"{r['delta_nll']:+.4f}", f"{r['kept_pairs']:.0f}",
                     f"{r['cache_bytes_fp16'] / 1e6:.2f}", f"{r['seconds']:.2f}"))
    w = [max(len(str(x[i])) for x in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(x[i]).rjust(w[i]) if i else str(x[i]).ljust(w[i]) for i in range(len(x)))
             for x in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
