"""Budget-free KV selection (GVote) vs fixed-budget baselines on the reference model.

  kvc-eval budget --context 1024 --continuation 64 --p 0.9,0.95 --samples 8 \
                  --ratios 0.1,0.2,0.3 --json out/budget.json
  kvc-eval budget --passkey ...            (synthetic passkey retrieval, see kvc.eval.passkey)

Per context (methods.md §2, §6.2 items 1 and 4; docs/voting-budgets.md):

1. prefill once (``DecoderModel.prefill``, common-window rule for sliding-window layers, as
   ``kvc-eval kl``); during the prefill, the normalized hidden states that feed W_q
   (``RMSNorm(h; attn_norm)``) are captured per layer (hook on the model's ``_qkv``, restored
   afterwards; the model code is not modified) and reduced to the diagonal Gaussian
   N(mu, diag var) over the context positions, the first ``n_sink`` positions excluded;
2. GVote per (layer, KV head): keys = the stored post-RoPE keys, current queries = the real
   queries of the last context position (the g query heads of the group), W_q / q_norm of the
   layer, RoPE base and the absolute position of the last context token.  The library
   returns the kept set; its size is the budget (an output);
3. fixed-budget baselines at ratios r (fraction of stored pairs kept):
   * ``snapkv``: the library SnapKV (kvc.eval.methods, budget round(r Ts) per head);
   * ``adakv``: layer budget round(r Ts) x Hkv shared by the KV heads via ``vote.adakv`` on
     SnapKV observation-window scores (alpha_safeguard 0.2);
   * ``pyramidkv``: ``vote.pyramid_budgets`` over layers (total = that of the uniform budget,
     layer budgets capped at Ts with the excess re-spread over the other layers), per-head
     top-k by SnapKV scores;
   * ``expected-attention``: ``vote.expected_attention_scores`` (mean + full covariance of
     the layer's pre-RoPE, post-q_norm queries over the context, sinks excluded; value-norm
     rescale) and top-k;
   * ``snapkv-matched`` (optional): SnapKV scores, top-k with GVote's own per-head budgets
     (same memory as each GVote point, selection differs).
   * compositions on GVote's kept set (same p, S, seed, so the same set and budget):
     ``gvote+fit``: the kept keys stay, the values of the kept rows that are not sinks/recent
     are refit by ridge least squares (``compress.compress_head_from_kept``, select-fit) on the
     training queries of ``kvc-eval kl``'s select-fit (last 64 real + 128 synthetic queries
     per query head); ``gvote+sculpt``: the same start, then the KVSculpt rounds (library
     defaults) - KVSculpt at GVote's per-head budget started from GVote's set;
     ``gvote+kvcomp``: the kept rows encoded by the KVComp codec at the codec's default bounds
     (eps_K 0.05, eps_V 0.1, blocks 64/128, fp16 recent windows 128/256 of the kept
     sequence); the DECODED rows are the cache, and ``memory_fraction`` is the codec's total
     bytes / the fp16 bytes of the full stored cache (for selection methods memory_fraction
     is kept/stored pairs, i.e. the same fp16-bytes fraction); ``gvote+kvcomp-channel``: the
     same with per-channel key groups (``key_grouping='channel'``) at eps_K = eps_V = 0.05,
     the codec's best KL-per-byte point on this model (docs/codec-results.md);
     ``gvote+fit-anchored`` / ``gvote+sculpt-anchored``: as gvote+fit / gvote+sculpt with the
     anchored ridge (penalty lambda ||Cv - V_kept||^2 instead of lambda ||Cv||^2, so rows the
     training queries hardly attend keep their values);
   * ``snapkv+kvcomp`` / ``snapkv+kvcomp-channel`` (fixed ratios): the library SnapKV's kept
     rows through the same codec settings: the codec compositions are compared with these
     (selection + the same codec), the selection-only GVote rows with the selection-only
     baselines;
4. every layer's cache is replaced by the kept rows (exact K/V: selection only), the
   continuation is teacher-forced, and KL(p_full || p_compressed) is taken as in
   ``kvc.eval.protocol``.

The comparison: for every GVote point, each baseline's KL-vs-memory curve is interpolated
(linear in log KL between measured ratios; between the largest ratio and the full cache,
(1, 0), linear in KL) at GVote's KL; the memory GVote saves is f_baseline / f_gvote.
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

from ..models.decoder import log_softmax, rms_norm

CODEC_BASELINES = ("snapkv+kvcomp", "snapkv+kvcomp-channel")   # fixed ratio, then the codec
BASELINES = ("snapkv", "adakv", "pyramidkv", "expected-attention", "snapkv-matched") + CODEC_BASELINES
# GVote chooses the kept set and budget; these then distil into it or encode it.
COMPOSITIONS = ("gvote+fit", "gvote+fit-anchored", "gvote+sculpt", "gvote+sculpt-anchored",
                "gvote+kvcomp", "gvote+kvcomp-channel")
ALL_METHODS = ("gvote",) + BASELINES + COMPOSITIONS
DEFAULTS = {"n_sink": 4, "n_recent": 64, "n_obs": 64, "kernel": 5, "n_future": 512, "seed": 0,
            "adakv_alpha": 0.2, "pyramid_beta": 20.0, "step_reduce": "max",
            # compositions (gvote+fit, gvote+sculpt, gvote+kvcomp)
            "fit_n_obs": 64, "fit_n_synthetic": 128, "fit_ridge": 1e-3,
            "codec_k_error": 0.05, "codec_v_error": 0.1,
            "codec_channel_k_error": 0.05, "codec_channel_v_error": 0.05}


def _err(msg: str):
    sys.stderr.write(f"kvc-eval budget: {msg}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------
# Prefill with the per-layer statistics of the normalized hidden states feeding W_q
# ---------------------------------------------------------------------------------------
class LayerStats:
    """Per layer: mean/var (float64, [D]) of a = RMSNorm(h; attn_norm) over the context
    positions >= n_sink; optionally mean/cov of the pre-RoPE post-q_norm queries [Hq, d(, d)]."""

    def __init__(self):
        self.mean: Dict[int, np.ndarray] = {}
        self.var: Dict[int, np.ndarray] = {}
        self.q_mean: Dict[int, np.ndarray] = {}
        self.q_cov: Dict[int, np.ndarray] = {}
        self.seconds: Dict[int, float] = {}      # mean/var of the hidden states (GVote's input)
        self.q_seconds: Dict[int, float] = {}    # query mean/covariance (Expected Attention's input)


def pre_rope_queries(model, il: int, a: np.ndarray) -> np.ndarray:
    """[Hq, T, d] queries of normalized hidden states a [T, D] before RoPE (after bias and
    q_norm), unscaled (the model's attention multiplies by cfg.attn_scale)."""
    c, L = model.cfg, model.W["layers"][il]
    q = a @ L["wq"]
    if c.qkv_bias:
        q = q + L["bq"]
    q = q.reshape(a.shape[0], c.n_heads, c.head_dim).transpose(1, 0, 2)
    if c.qk_norm:
        q = rms_norm(q, L["q_norm"], c.norm_eps)
    return q


def prefill_with_stats(model, tokens, continuation: int, n_sink: int = 4,
                       query_stats: bool = False):
    """``model.prefill(tokens, logits="none", continuation=...)`` plus LayerStats.

    The statistics come from the very arrays the model feeds to W_q: the model's ``_qkv``
    is wrapped on the instance for the duration of the call (and restored)."""
    st = LayerStats()
    had = "_qkv" in model.__dict__
    prev = model.__dict__.get("_qkv")
    orig = model._qkv

    def hook(il, a, positions):
        t = time.perf_counter()
        x = a[n_sink:] if a.shape[0] > n_sink else a
        x64 = x.astype(np.float64)
        st.mean[il] = x64.mean(0)
        st.var[il] = x64.var(0)
        st.seconds[il] = time.perf_counter() - t
        t = time.perf_counter()
        if query_stats:
            q = pre_rope_queries(model, il, np.asarray(x, np.float32)).astype(np.float64)
            mu = q.mean(1)
            qc = q - mu[:, None]
            st.q_mean[il] = mu
            st.q_cov[il] = (np.swapaxes(qc, 1, 2) @ qc) / max(1, q.shape[1])
        st.q_seconds[il] = time.perf_counter() - t
        return orig(il, a, positions)

    model._qkv = hook
    try:
        pre = model.prefill(tokens, logits="none", continuation=continuation)
    finally:
        if had:
            model._qkv = prev
        else:
            del model._qkv
    return pre, st


# ---------------------------------------------------------------------------------------
# Per-layer inputs of the voting library
# ---------------------------------------------------------------------------------------
def layer_query_params(model, il: int):
    """(Wq [Hq, d, D], bq [Hq, d] or None, q_norm weight [d] or None, q_norm convention).

    The GGUF loader stores Gemma's norm weights as 1 + w (docs/evaluation.md §2.2) and the
    model multiplies by the stored value; the library's 'qwen' convention multiplies by the
    weight as given, so the stored weight is passed with q_norm='qwen' (equivalent to
    'gemma' with stored - 1, without the float round trip)."""
    c, L = model.cfg, model.W["layers"][il]
    D = L["wq"].shape[0]
    Wq = np.ascontiguousarray(L["wq"].T.reshape(c.n_heads, c.head_dim, D))
    bq = L["bq"].reshape(c.n_heads, c.head_dim) if c.qkv_bias else None
    if c.qk_norm:
        return Wq, bq, np.asarray(L["q_norm"], np.float32), "qwen"
    return Wq, bq, None, None


def _rope_opts(model, layer):
    c = model.cfg
    if getattr(c, "rope_layout", "neox") != "neox":
        raise ValueError("the voting library implements NeoX (half-split) RoPE only")
    return {"rope_theta": float(layer.rope_theta), "position_scale": float(layer.rope_pos_scale)}


def check_query_model(model, il: int, a: np.ndarray, position: int) -> float:
    """Max relative error between the library's synthetic query for the hidden state a [D]
    (var = 0, n_future = 1, so the sample is exactly a at position+1) and the model's own q."""
    from kvc.runtime import vote as V
    c = model.cfg
    Wq, bq, qw, qn = layer_query_params(model, il)
    pre = type("L", (), {})()
    pre.rope_theta, pre.rope_pos_scale = c.rope_theta[il], c.rope_pos_scale[il]
    lib_q, pos = V.sample_queries(a, np.zeros_like(a), Wq, bq=bq, q_norm_weight=qw, position=position,
                                  n_samples=1, n_future=1, q_norm=qn, **_rope_opts(model, pre))
    q, _, _ = model._qkv(il, np.asarray(a, np.float32)[None], np.array([position + 1]))
    ref = q[:, 0]
    return float(np.max(np.abs(lib_q[:, 0] - ref)) / max(np.max(np.abs(ref)), 1e-30))


def _qf(model) -> float:
    return float(model.query_export_factor())


def run_gvote(model, layers, st: LayerStats, p: float, n_samples: int, opts: dict):
    """GVote on every (layer, KV head). Returns (kept[l][h], budgets[l][h], info)."""
    from kvc.runtime import vote as V
    c = model.cfg
    g = c.n_heads // c.n_kv_heads
    qf = _qf(model)
    kept, budgets, secs, wall, steps, nuc, mass = [], [], [], [], [], [], []
    for il, L in enumerate(layers):
        Wq, bq, qw, qn = layer_query_params(model, il)
        t = time.perf_counter()
        ks, bs, ls, ln, lm, s_lib = [], [], [], [], [], 0.0
        for h in range(L.K.shape[0]):
            Q0 = L.Q[h * g:(h + 1) * g, -1:] / np.float32(qf)
            idx, s = V.gvote_head(
                L.K[h], Q0, st.mean[il], st.var[il], Wq[h * g:(h + 1) * g],
                bq=None if bq is None else bq[h * g:(h + 1) * g], q_norm_weight=qw,
                position=int(L.positions[-1]), p=p, n_samples=n_samples, seed=opts["seed"],
                scale=c.attn_scale, n_sink=opts["n_sink"], n_recent=opts["n_recent"],
                n_future=opts["n_future"], q_norm=qn, step_reduce=opts["step_reduce"],
                **_rope_opts(model, L))
            ks.append(idx)
            bs.append(int(len(idx)))
            ls.append(int(s["step_budget"]))
            ln.append(int(s["nucleus_size"]))
            lm.append(float(s["current_mass"]))
            s_lib += float(s["seconds"])
        wall.append(time.perf_counter() - t)
        secs.append(s_lib)
        kept.append(ks)
        budgets.append(bs)
        steps.append(ls)
        nuc.append(ln)
        mass.append(lm)
    return kept, budgets, {"vote_seconds": secs, "vote_wall_seconds": wall, "step_budget": steps,
                           "nucleus_size": nuc, "current_mass": mass}


def snapkv_scores(layer, n_obs: int = 64, kernel: int = 5) -> np.ndarray:
    """[Hkv, Ts] SnapKV observation-window scores: mean over the last n_obs real queries of
    the group (causal inside the window) of their attention weights, avg-pooled (kernel).
    Each head's scores sum to ~1, so they are comparable across heads (AdaKV)."""
    hkv, ts, d = layer.K.shape
    g = layer.Q.shape[0] // hkv
    w = min(n_obs, ts)
    out = np.empty((hkv, ts), np.float32)
    qi = np.arange(ts - w, ts)[:, None]
    causal = np.arange(ts)[None, :] <= qi
    for h in range(hkv):
        q = layer.Q[h * g:(h + 1) * g, ts - w:].astype(np.float64)
        s = q @ layer.K[h].T.astype(np.float64) / np.sqrt(d)
        s = np.where(causal, s, -np.inf)
        s -= s.max(-1, keepdims=True)
        pr = np.exp(s)
        pr /= pr.sum(-1, keepdims=True)
        v = pr.mean((0, 1))
        if kernel > 1:
            v = np.convolve(np.pad(v, (kernel // 2, kernel // 2)), np.ones(kernel) / kernel, mode="valid")
        out[h] = v
    return out


def _topk(scores, budget, n_sink, n_recent):
    from kvc.runtime import vote as V
    ts = scores.shape[0]
    b = int(min(max(budget, 1), ts))
    ns = min(n_sink, b)
    nr = min(n_recent, b - ns)
    return V.select_topk(scores, b, n_sink=ns, n_recent=nr)


def pyramid_layer_budgets(total: int, caps: List[int], window: int, beta: float) -> List[int]:
    """vote.pyramid_budgets with layer budgets capped at caps (the stored size); the excess of
    capped layers is re-spread with the pyramid rule over the remaining layers (in order)."""
    from kvc.runtime import vote as V
    n = len(caps)
    fixed: Dict[int, int] = {}
    for _ in range(n):
        free = [i for i in range(n) if i not in fixed]
        rem = total - sum(fixed.values())
        if not free:
            break
        w = min(window, max(0, rem // len(free)))
        b = V.pyramid_budgets(len(free), max(rem, 0), window=w, beta=beta)
        over = [i for i, bi in zip(free, b) if bi >= caps[i]]
        if not over:
            out = dict(fixed)
            out.update({i: int(bi) for i, bi in zip(free, b)})
            return [max(1, out[i]) for i in range(n)]
        for i in over:
            fixed[i] = caps[i]
    return [max(1, min(caps[i], fixed.get(i, caps[i]))) for i in range(n)]


def baseline_kept(model, method: str, layers, ratio: Optional[float], st: LayerStats, opts: dict,
                  snap_scores=None, budgets_override=None):
    """kept[l][h] index arrays and per-layer seconds for a vote-library baseline."""
    from kvc.runtime import vote as V
    c = model.cfg
    g = c.n_heads // c.n_kv_heads
    ns, nr = opts["n_sink"], opts["n_recent"]
    kept, secs = [], []
    if method == "pyramidkv":
        caps = [L.K.shape[0] * L.K.shape[1] for L in layers]
        total = sum(L.K.shape[0] * int(min(L.K.shape[1], max(1, round(ratio * L.K.shape[1]))))
                    for L in layers)
        lb = pyramid_layer_budgets(total, caps, opts["n_obs"] * c.n_kv_heads, opts["pyramid_beta"])
    for il, L in enumerate(layers):
        t = time.perf_counter()
        hkv, ts = L.K.shape[0], L.K.shape[1]
        uni = int(min(ts, max(1, round(ratio * ts)))) if ratio is not None else None
        if method in ("adakv", "pyramidkv", "snapkv-matched"):
            sc = snap_scores[il] if snap_scores is not None else snapkv_scores(L, opts["n_obs"], opts["kernel"])
        if method == "adakv":
            ns_h = min(ns, uni)
            nr_h = min(nr, uni - ns_h)
            _b, ks = V.adakv(sc, uni * hkv, n_sink=ns_h, n_recent=nr_h, alpha_safeguard=opts["adakv_alpha"])
            ks = list(ks)
        elif method == "pyramidkv":
            per = [lb[il] // hkv + (1 if h < lb[il] % hkv else 0) for h in range(hkv)]
            ks = [_topk(sc[h], per[h], ns, nr) for h in range(hkv)]
        elif method == "snapkv-matched":
            ks = [_topk(sc[h], budgets_override[il][h], ns, nr) for h in range(hkv)]
        elif method == "expected-attention":
            ks = []
            for h in range(hkv):
                s = V.expected_attention_scores(
                    L.K[h], st.q_mean[il][h * g:(h + 1) * g], st.q_cov[il][h * g:(h + 1) * g],
                    V=L.V[h], position=int(L.positions[-1]), epsilon=0.0, scale=c.attn_scale,
                    n_sink=ns, n_future=opts["n_future"], **_rope_opts(model, L))
                ks.append(_topk(s, uni, ns, nr))
        else:
            raise ValueError(method)
        kept.append([np.asarray(k, np.int64) for k in ks])
        secs.append(time.perf_counter() - t)
    return kept, secs


def compose(model, method: str, layers, kept, opts: dict, train_q=None):
    """Cache ([layer][head] -> (K, V)), per-layer seconds, extra info and the memory fraction
    (None = kept pairs) of a composition on GVote's kept sets ``kept[l][h]``."""
    c = model.cfg
    g = c.n_heads // c.n_kv_heads
    cache, secs, extra = [], [], {}
    if method.startswith(("gvote+fit", "gvote+sculpt")):
        from kvc.runtime import compress as RC
        lib_method = "select-fit" if method.startswith("gvote+fit") else "sculpt"
        anchored = method.endswith("-anchored")
        rel0, rel1, fell = [], [], 0
        for il, L in enumerate(layers):
            t = time.perf_counter()
            row = []
            for h in range(L.K.shape[0]):
                Q = train_q[il][h * g:(h + 1) * g]
                ck, cv, _idx, st = RC.compress_head_from_kept(
                    L.K[h], L.V[h], Q, kept[il][h], method=lib_method, n_sink=opts["n_sink"],
                    n_recent=opts["n_recent"], ridge_lambda=opts["fit_ridge"], anchor_values=anchored)
                row.append((ck, cv))
                rel0.append(float(st["initial_rel_mse"]))
                rel1.append(float(st["final_rel_mse"]))
                fell += int(st["fell_back"])
            cache.append(row)
            secs.append(time.perf_counter() - t)
        extra = {"train_rel_mse_start": rel0, "train_rel_mse_final": rel1, "fell_back_heads": fell}
        return cache, secs, extra, None
    if method.endswith(("+kvcomp", "+kvcomp-channel")):
        from kvc.runtime import codec as CD
        chan = method.endswith("-channel")
        ke = opts["codec_channel_k_error"] if chan else opts["codec_k_error"]
        ve = opts["codec_channel_v_error"] if chan else opts["codec_v_error"]
        tot, fp16_full, enc_s, dec_s = 0, 0, 0.0, 0.0
        for il, L in enumerate(layers):
            t = time.perf_counter()
            row = []
            for h in range(L.K.shape[0]):
                idx = kept[il][h]
                fp16_full += 2 * L.K.shape[1] * (L.K.shape[2] + L.V.shape[2])
                t0 = time.perf_counter()
                e = CD.encode_head(L.K[h][idx], L.V[h][idx], k_error=ke, v_error=ve,
                                   key_grouping="channel" if chan else "block")
                t1 = time.perf_counter()
                row.append(e.decode())
                dec_s += time.perf_counter() - t1
                enc_s += t1 - t0
                tot += int(e.stats()["total_bytes"])
            cache.append(row)
            secs.append(time.perf_counter() - t)
        extra = {"codec_total_bytes": tot, "fp16_bytes_full_cache": fp16_full, "k_error": ke,
                 "v_error": ve, "key_grouping": "channel" if chan else "block",
                 "encode_seconds": enc_s, "decode_seconds": dec_s}
        return cache, secs, extra, tot / fp16_full
    raise ValueError(method)


def cache_from_kept(layers, kept):
    return [[(np.ascontiguousarray(L.K[h][kept[il][h]]), np.ascontiguousarray(L.V[h][kept[il][h]]))
             for h in range(L.K.shape[0])] for il, L in enumerate(layers)]


def kept_fractions(layers, kept):
    """(mean over (layer, head) of kept/Ts, total kept pairs / total stored pairs)."""
    per = [len(kept[il][h]) / L.K.shape[1] for il, L in enumerate(layers) for h in range(L.K.shape[0])]
    tot_k = sum(len(kept[il][h]) for il, L in enumerate(layers) for h in range(L.K.shape[0]))
    tot_s = sum(L.K.shape[0] * L.K.shape[1] for L in layers)
    return float(np.mean(per)), float(tot_k / tot_s)


def _kl_rows(logp_ref, logits):
    lp = log_softmax(logits)
    return np.sum(np.exp(logp_ref) * (logp_ref - lp), axis=-1)


# ---------------------------------------------------------------------------------------
# The KL run
# ---------------------------------------------------------------------------------------
def run_budget(model, contexts, p_list, s_list, ratios, methods, opts=None, progress=True) -> dict:
    opts = {**DEFAULTS, **(opts or {})}
    need_q = "expected-attention" in methods
    gv_cfgs = ([(p, s) for p in p_list for s in s_list]
               if any(m in methods for m in ("gvote", "snapkv-matched") + COMPOSITIONS) else [])
    acc: Dict[tuple, dict] = {}
    ctx_info = []
    snap = None
    if any(m.startswith("snapkv") and m != "snapkv-matched" for m in methods):
        from .methods import make_compressor
        snap = make_compressor("snapkv")
    fixed = [m for m in methods if m in ("snapkv", "adakv", "pyramidkv", "expected-attention") + CODEC_BASELINES]
    n_jobs = len(gv_cfgs) * (("gvote" in methods) + ("snapkv-matched" in methods)
                             + sum(m in methods for m in COMPOSITIONS)) + len(fixed) * len(ratios)
    done = 0
    t_all = time.perf_counter()
    for ci, ctx in enumerate(contexts):
        T, N = len(ctx.context), len(ctx.continuation)
        t0 = time.perf_counter()
        pre, st = prefill_with_stats(model, ctx.context, N, opts["n_sink"], query_stats=need_q)
        t_pre = time.perf_counter() - t0
        layers = pre.layers
        t0 = time.perf_counter()
        ref = model.continue_([L.as_heads() for L in layers], ctx.continuation, start_pos=T)
        t_ref = time.perf_counter() - t0
        logp_ref = log_softmax(ref.logits)
        top_ref = np.argmax(ref.logits, -1)
        qcheck = max(check_query_model(model, il, st.mean[il].astype(np.float32), T - 1)
                     for il in (0, model.cfg.n_layers - 1))
        ctx_info.append({"name": ctx.name, "context_tokens": T, "continuation_tokens": N,
                         "prefill_seconds": t_pre, "reference_seconds": t_ref,
                         "stats_seconds_per_layer": [st.seconds[i] for i in range(len(layers))],
                         "query_stats_seconds_per_layer": [st.q_seconds[i] for i in range(len(layers))],
                         "stored_pairs_per_layer": [int(L.K.shape[0] * L.K.shape[1]) for L in layers],
                         "library_vs_model_query_max_rel_err": qcheck})
        _err(f"context {ci + 1}/{len(contexts)} {ctx.name}: prefill {t_pre:.1f}s, reference "
             f"{t_ref:.1f}s, library-vs-model query check {qcheck:.1e}")
        train_q = None
        if any(m in methods for m in ("gvote+fit", "gvote+sculpt")):
            from .queries import training_queries
            train_q = [training_queries(L, opts["fit_n_obs"], opts["fit_n_synthetic"]) for L in layers]
        sscores = None
        if any(m in methods for m in ("adakv", "pyramidkv", "snapkv-matched")):
            sscores = [snapkv_scores(L, opts["n_obs"], opts["kernel"]) for L in layers]

        def evaluate(key, params, kept, layer_secs, extra=None, cache=None, mem=None):
            nonlocal done
            out = model.continue_(cache if cache is not None else cache_from_kept(layers, kept),
                                  ctx.continuation, start_pos=T)
            kl = _kl_rows(logp_ref, out.logits)
            kf, mf = kept_fractions(layers, kept)
            if mem is not None:
                mf = mem
            a = acc.setdefault(key, {"params": params, "kl": [], "kl_pos": [], "top1": [], "kf": [],
                                     "mf": [], "secs": [], "budgets": [], "extra": []})
            a["kl"].append(float(kl.mean()))
            a["kl_pos"].append(kl)
            a["top1"].append(float(np.mean(np.argmax(out.logits, -1) == top_ref)))
            a["kf"].append(kf)
            a["mf"].append(mf)
            a["secs"].append(layer_secs)
            a["budgets"].append([[int(len(k)) for k in ks] for ks in kept])
            a["extra"].append(extra or {})
            done += 1
            if progress:
                _err(f"  [{done}/{n_jobs * len(contexts)}] {key[0]} {params}: kept {mf:.3f} "
                     f"KL {kl.mean():.5f} ({time.perf_counter() - t_all:.0f}s)")

        for (p, s) in gv_cfgs:
            kept, bud, info = run_gvote(model, layers, st, p, s, opts)
            if "gvote" in methods:
                evaluate(("gvote", p, s), {"p": p, "n_samples": s}, kept, info["vote_seconds"], info)
            if "snapkv-matched" in methods:
                km, sec = baseline_kept(model, "snapkv-matched", layers, None, st, opts, sscores, bud)
                evaluate(("snapkv-matched", p, s), {"p": p, "n_samples": s}, km, sec)
            for cm in COMPOSITIONS:
                if cm in methods:
                    cache, sec, ex, mem = compose(model, cm, layers, kept, opts, train_q)
                    ex["vote_seconds"] = info["vote_seconds"]
                    evaluate((cm, p, s), {"p": p, "n_samples": s}, kept,
                             [a + b for a, b in zip(sec, info["vote_seconds"])], ex, cache, mem)
        for m in fixed:
            for r in ratios:
                if m.startswith("snapkv"):
                    cc = snap.compress(layers, r)
                    kept, sec = cc.kept_idx, cc.seconds
                else:
                    kept, sec = baseline_kept(model, m, layers, r, st, opts, sscores)
                if m in CODEC_BASELINES:
                    cache, sec2, ex, mem = compose(model, m, layers, kept, opts)
                    evaluate((m, r), {"ratio": r}, kept, [a + b for a, b in zip(sec, sec2)], ex, cache, mem)
                else:
                    evaluate((m, r), {"ratio": r}, kept, sec)
    records = []
    for key, a in acc.items():
        allpos = np.concatenate(a["kl_pos"])
        rec = {"method": key[0], **a["params"],
               "kept_fraction": float(np.mean(a["kf"])),
               "kept_fraction_meaning": "kept/stored per (layer, KV head), mean over layers, heads, contexts",
               "memory_fraction": float(np.mean(a["mf"])),
               "memory_fraction_meaning": "total kept pairs / total stored pairs, mean over contexts",
               "kept_fraction_per_context": a["kf"], "memory_fraction_per_context": a["mf"],
               "kl": float(np.mean(a["kl"])), "kl_per_context": a["kl"],
               "kl_p90_positions": float(np.percentile(allpos, 90)),
               "top1_agreement": float(np.mean(a["top1"])),
               "layer_seconds": np.mean(a["secs"], 0).tolist(),
               "layer_head_budgets_per_context": a["budgets"],
               "layer_head_budgets": np.mean(np.array(a["budgets"], float), 0).tolist()}
        if key[0] == "gvote":
            ex = a["extra"]
            rec["layer_budgets"] = np.mean([[sum(b) for b in bb] for bb in a["budgets"]], 0).tolist()
            rec["vote_seconds_per_layer"] = np.mean([e["vote_seconds"] for e in ex], 0).tolist()
            rec["vote_wall_seconds_per_layer"] = np.mean([e["vote_wall_seconds"] for e in ex], 0).tolist()
            rec["step_budget"] = [e["step_budget"] for e in ex]
            rec["nucleus_size"] = [e["nucleus_size"] for e in ex]
            rec["current_mass"] = [e["current_mass"] for e in ex]
        if key[0] in COMPOSITIONS or key[0] in CODEC_BASELINES:
            ex = a["extra"]
            if key[0] in COMPOSITIONS:
                rec["vote_seconds_per_layer"] = np.mean([e["vote_seconds"] for e in ex], 0).tolist()
            if "+kvcomp" in key[0]:
                rec["codec"] = {"k_error": ex[0]["k_error"], "v_error": ex[0]["v_error"],
                                "key_grouping": ex[0]["key_grouping"],
                                "blocks_and_recent": "library defaults (K block 64, V block 128, "
                                                     "fp16 recent 128 K / 256 V)"}
                rec["codec_total_bytes_per_context"] = [e["codec_total_bytes"] for e in ex]
                rec["fp16_bytes_full_cache_per_context"] = [e["fp16_bytes_full_cache"] for e in ex]
                rec["memory_fraction_meaning"] = ("codec total bytes of the kept rows / fp16 bytes of "
                                                  "the full stored cache, mean over contexts")
            else:
                rec["train_rel_mse_start"] = float(np.mean([np.mean(e["train_rel_mse_start"]) for e in ex]))
                rec["train_rel_mse_final"] = float(np.mean([np.mean(e["train_rel_mse_final"]) for e in ex]))
                rec["fell_back_heads"] = int(sum(e["fell_back_heads"] for e in ex))
        records.append(rec)
    res = {"model": {"name": model.cfg.name, "layers": model.cfg.n_layers, "kv_heads": model.cfg.n_kv_heads,
                     "q_heads": model.cfg.n_heads, "head_dim": model.cfg.head_dim,
                     "sliding_window": list(model.cfg.sliding_window)},
           "options": opts, "contexts": ctx_info, "records": records,
           "protocol": "KL(p_full || p_compressed) nats, mean over continuation positions then contexts; "
                       "common-window rule for sliding-window layers (as kvc-eval kl); selection only "
                       "(kept rows are exact K/V)"}
    res["comparison"] = compare(records)
    return res


# ---------------------------------------------------------------------------------------
# Equal-KL comparison
# ---------------------------------------------------------------------------------------
def interp_fraction(points, kl_target):
    """Memory fraction at which a baseline's KL equals kl_target.

    points: [(fraction, kl)] of the baseline.  The full cache (1.0, 0.0) is appended.  Returns
    (fraction, kind): kind 'interpolated' (between measured points, linear in log KL),
    'toward-full' (between the largest measured ratio and the full cache, linear in KL: an
    estimate), 'upper-bound' (the baseline's smallest measured point already has KL <= target:
    the true fraction is <= the returned one)."""
    pts = sorted(points)
    if not pts:
        return None, "none"
    if pts[0][1] <= kl_target:
        return pts[0][0], "upper-bound"
    for (f0, k0), (f1, k1) in zip(pts, pts[1:]):
        if k0 >= kl_target >= k1:
            if k1 <= 0 or k0 <= 0:
                w = (k0 - kl_target) / max(k0 - k1, 1e-300)
            else:
                w = (math.log(k0) - math.log(kl_target)) / max(math.log(k0) - math.log(k1), 1e-300)
            return f0 + w * (f1 - f0), "interpolated"
    f0, k0 = pts[-1]
    if f0 >= 1.0:
        return 1.0, "toward-full"
    w = (k0 - kl_target) / k0
    return f0 + w * (1.0 - f0), "toward-full"


def compare(records, target=2.0, key="memory_fraction"):
    base = {}
    for r in records:
        if "ratio" in r:
            base.setdefault(r["method"], []).append((r[key], r["kl"]))
    out = []
    for r in records:
        if r["method"] != "gvote" and r["method"] not in COMPOSITIONS:
            continue
        row = {"method": r["method"], "p": r["p"], "n_samples": r["n_samples"],
               "gvote_fraction": r[key], "gvote_kl": r["kl"], "baselines": {}}
        best = None
        codec = r["method"].split("+", 1)[1] if "+kvcomp" in r["method"] else None
        for m, pts in base.items():
            # selection-only rows vs selection-only baselines; codec rows vs the same codec
            # on a fixed-ratio selection
            if (m.split("+", 1)[1] if "+" in m else None) != codec:
                continue
            f, kind = interp_fraction(pts, r["kl"])
            if f is None:
                continue
            ratio = f / r[key]
            row["baselines"][m] = {"fraction_at_equal_kl": f, "kind": kind, "memory_ratio": ratio}
            if best is None or f < best[1]:
                best = (m, f, kind, ratio)
        if best:
            row.update({"best_baseline": best[0], "best_fraction": best[1], "best_kind": best[2],
                        "memory_ratio": best[3], "target": target,
                        "target_met": bool(best[3] >= target and best[2] != "upper-bound")})
        out.append(row)
    return {"fraction": key, "target_memory_ratio": target, "rows": out}


def format_table(res) -> str:
    rows = [("method", "params", "kept frac", "mem frac", "KL mean", "KL p90", "top1", "sel ms/layer")]
    for r in res["records"]:
        params = (f"p={r['p']:g} S={r['n_samples']}" if "p" in r else f"r={r['ratio']:g}")
        rows.append((r["method"], params, f"{r['kept_fraction']:.3f}", f"{r['memory_fraction']:.3f}",
                     f"{r['kl']:.5f}", f"{r['kl_p90_positions']:.5f}", f"{r['top1_agreement']:.3f}",
                     f"{1e3 * np.mean(r['layer_seconds']):.2f}"))
    w = [max(len(str(x[i])) for x in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(x[i]).rjust(w[i]) if i > 1 else str(x[i]).ljust(w[i]) for i in range(len(x)))
             for x in rows]
    lines.insert(1, "-" * len(lines[0]))
    cmp_ = res.get("comparison", {})
    if cmp_.get("rows"):
        lines.append("")
        lines.append(f"equal-KL comparison on {cmp_['fraction']} (target: baseline needs >= "
                     f"{cmp_['target_memory_ratio']:g}x GVote's memory)")
        for row in cmp_["rows"]:
            bl = ", ".join(f"{m} {b['fraction_at_equal_kl']:.3f} ({b['kind']}, {b['memory_ratio']:.2f}x)"
                           for m, b in row["baselines"].items())
            lines.append(f"  {row.get('method', 'gvote')} p={row['p']:g} S={row['n_samples']}: frac {row['gvote_fraction']:.3f} "
                         f"KL {row['gvote_kl']:.5f} -> best {row.get('best_baseline')} "
                         f"{row.get('memory_ratio', float('nan')):.2f}x "
                         f"[{'met' if row.get('target_met') else 'missed'}]; {bl}")
    return "\n".join(lines)


def _params(r) -> str:
    return f"p={r['p']:g} S={r['n_samples']}" if "p" in r else f"r={r['ratio']:g}"


def _kl(x) -> str:
    """KL for tables: 5 decimals, or 3 significant digits below 1e-3."""
    return f"{x:.5f}" if x >= 1e-3 or x == 0 else f"{x:.2e}"


def _global_layers(res) -> List[bool]:
    sw = res["model"].get("sliding_window") or []
    return [not w for w in sw]


def format_markdown(res) -> str:
    """The tables of docs/budget-results.md, from a (merged) result JSON."""
    out = []
    ctx = res["contexts"]
    out.append(f"Contexts ({len(ctx)}): " + ", ".join(f"`{c['name']}`" for c in ctx)
               + f"; T = {ctx[0]['context_tokens']}, N = {ctx[0]['continuation_tokens']}.")
    out.append("")
    out.append("| method | params | kept | mem | KL mean | KL p90 | top1 | KL per context | sel ms/layer |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    order = {m: i for i, m in enumerate(ALL_METHODS)}
    recs = sorted(res["records"], key=lambda r: (order.get(r["method"], 99), r.get("n_samples", 0),
                                                 r.get("p", 0), r.get("ratio", 0)))
    for r in recs:
        kpc = ", ".join(f"{x:.3g}" for x in r["kl_per_context"])
        out.append(f"| {r['method']} | {_params(r)} | {r['kept_fraction']:.3f} | {r['memory_fraction']:.3f} | "
                   f"{_kl(r['kl'])} | {_kl(r['kl_p90_positions'])} | {r['top1_agreement']:.3f} | {kpc} | "
                   f"{1e3 * np.mean(r['layer_seconds']):.1f} |")
    cmp_ = res.get("comparison", {})
    bases = sorted({m for row in cmp_.get("rows", []) for m in row["baselines"]},
                   key=lambda m: order.get(m, 99))
    if cmp_.get("rows") and bases:
        out.append("")
        out.append(f"Equal-KL comparison on `{cmp_['fraction']}` (target: the best baseline needs "
                   f">= {cmp_['target_memory_ratio']:g}x the memory). Entries: baseline fraction at "
                   "equal KL (ratio to the GVote row); * = toward-full estimate, <= = upper bound.")
        out.append("")
        out.append("| method | params | mem | KL | " + " | ".join(bases) + " | best ratio | target |")
        out.append("|---|---|---|---|" + "---|" * len(bases) + "---|---|")
        rows = sorted(cmp_["rows"], key=lambda x: (order.get(x.get("method", "gvote"), 99),
                                                   x["n_samples"], x["p"]))
        for row in rows:
            cells = []
            for m in bases:
                b = row["baselines"].get(m)
                if not b:
                    cells.append("")
                    continue
                mark = {"toward-full": "*", "upper-bound": "<="}.get(b["kind"], "")
                cells.append(f"{mark}{b['fraction_at_equal_kl']:.3f} ({b['memory_ratio']:.2f}x)")
            met = "met" if row.get("target_met") else "missed"
            out.append(f"| {row.get('method', 'gvote')} | p={row['p']:g} S={row['n_samples']} | "
                       f"{row['gvote_fraction']:.3f} | {_kl(row['gvote_kl'])} | " + " | ".join(cells)
                       + f" | {row.get('memory_ratio', float('nan')):.2f}x ({row.get('best_baseline')}) | {met} |")
    glob = _global_layers(res)
    gv = [r for r in recs if r["method"] == "gvote"]
    if gv:
        out.append("")
        out.append("Voting overhead per layer (library time of kvc_vote_gvote_head, ms, mean over "
                   "contexts; 1 KV head per layer) and GVote's memory fraction per context:")
        out.append("")
        out.append("| params | median ms/layer | local layers (median) | global layers (median) | "
                   "sum over layers, ms | mem per context |")
        out.append("|---|---|---|---|---|---|")
        for r in gv:
            v = 1e3 * np.asarray(r["vote_seconds_per_layer"])
            loc = [x for x, gl in zip(v, glob) if not gl]
            gl_ = [x for x, gl in zip(v, glob) if gl]
            mpc = ", ".join(f"{x:.3f}" for x in r["memory_fraction_per_context"])
            out.append(f"| {_params(r)} | {np.median(v):.1f} | {np.median(loc) if loc else float('nan'):.1f} | "
                       f"{np.median(gl_) if gl_ else float('nan'):.1f} | {v.sum():.0f} | {mpc} |")
        st = [x for c in ctx for x in c.get("stats_seconds_per_layer", [])]
        if st:
            out.append("")
            out.append(f"Hidden-state statistics (mu, var per layer): median {1e3 * np.median(st):.1f} ms "
                       f"per layer over {len(ctx)} contexts; prefill {min(c['prefill_seconds'] for c in ctx):.0f}-"
                       f"{max(c['prefill_seconds'] for c in ctx):.0f} s per context.")
    s8 = [r for r in gv if r["n_samples"] == 8] or gv
    if s8:
        stored = ctx[0].get("stored_pairs_per_layer", [])
        out.append("")
        out.append(f"GVote kept pairs per layer (mean over contexts; G = global layer), with the "
                   f"current query's step budget B_step (max over contexts) at S = {s8[0]['n_samples']}:")
        out.append("")
        out.append("| layer | stored | " + " | ".join(f"p={r['p']:g} kept (B_step)" for r in s8) + " |")
        out.append("|---|---|" + "---|" * len(s8))
        for il in range(len(s8[0]["layer_budgets"])):
            cells = [f"{r['layer_budgets'][il]:.0f} ({max(max(sb[il]) for sb in r['step_budget'])})" for r in s8]
            gl = "G" if il < len(glob) and glob[il] else ""
            out.append(f"| {il}{gl} | {stored[il] if il < len(stored) else ''} | " + " | ".join(cells) + " |")
    comp = [r for r in recs if r["method"] in COMPOSITIONS]
    if comp:
        out.append("")
        out.append("Compositions: training-query relative MSE (start = after the value refit) and codec bytes:")
        out.append("")
        out.append("| method | params | rel MSE start | rel MSE final | fell back | codec bytes / fp16 of the kept rows |")
        out.append("|---|---|---|---|---|---|")
        for r in comp:
            kv = ""
            if "codec_total_bytes_per_context" in r:
                kv = f"{r['memory_fraction'] / max(r['kept_fraction'], 1e-12):.3f} (approx.)"
                kept_mem = [x for x in res['records'] if x['method'] == 'gvote' and x.get('p') == r['p']
                            and x.get('n_samples') == r['n_samples']]
                if kept_mem:
                    kv = f"{r['memory_fraction'] / kept_mem[0]['memory_fraction']:.3f}"
            ms = [f"{r[k]:.4g}" if k in r else "–" for k in ("train_rel_mse_start", "train_rel_mse_final")]
            out.append(f"| {r['method']} | {_params(r)} | {ms[0]} | {ms[1]} | {r.get('fell_back_heads', '–')} | "
                       f"{kv or '–'} |")
    return "\n".join(out)


def _plot(res, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _err("--plot needs matplotlib (pip install matplotlib)")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    by = {}
    for r in res["records"]:
        if "ratio" in r:
            by.setdefault(r["method"], []).append((r["memory_fraction"], r["kl"]))
    for m, pts in by.items():
        pts.sort()
        ax.plot([p[0] for p in pts], [max(p[1], 1e-8) for p in pts], marker="o", label=m)
    for name, mk, col in (("gvote", "*", "black"), ("snapkv-matched", "x", "tab:gray"),
                          ("gvote+fit", "P", "tab:olive"), ("gvote+fit-anchored", "X", "tab:purple"),
                          ("gvote+sculpt", "D", "tab:cyan"), ("gvote+sculpt-anchored", "d", "tab:blue"),
                          ("gvote+kvcomp", "v", "tab:brown"), ("gvote+kvcomp-channel", "^", "tab:pink")):
        g = [r for r in res["records"] if r["method"] == name]
        if g:
            ax.scatter([r["memory_fraction"] for r in g], [max(r["kl"], 1e-8) for r in g], marker=mk,
                       s=120 if mk == "*" else 60, zorder=5, color=col,
                       label="snapkv @ GVote budgets" if name == "snapkv-matched" else name)
    ax.set_yscale("log")
    ax.set_xlabel("memory: fraction of the full cache's fp16 bytes")
    ax.set_ylabel("mean KL(full || compressed) [nats]")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# ---------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------
def _floats(s):
    return [float(x) for x in str(s).split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="kvc-eval budget", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--text-file", action="append", help="repeatable; default: examples/texts/*.txt")
    ap.add_argument("--context", type=int, default=2048)
    ap.add_argument("--continuation", type=int, default=128)
    ap.add_argument("--max-contexts", type=int, default=0, help="0 = one context per text file")
    ap.add_argument("--p", default="0.8,0.9,0.95,0.99", help="GVote nucleus masses")
    ap.add_argument("--samples", default="4,8,16", help="GVote sample counts S")
    ap.add_argument("--ratios", default="0.1,0.2,0.3,0.5", help="fixed-budget baselines: fraction KEPT")
    ap.add_argument("--methods", default="gvote,snapkv,adakv,pyramidkv,expected-attention",
                    help=f"comma list from {', '.join(ALL_METHODS)}")
    for k, v in DEFAULTS.items():
        ap.add_argument("--" + k.replace("_", "-"), type=type(v), default=v)
    ap.add_argument("--json")
    ap.add_argument("--plot")
    ap.add_argument("--markdown", help="write the docs/budget-results.md tables of the result here")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="no run: merge the records of earlier --json outputs (same contexts), redo the "
                         "equal-KL comparison, print the table (and --json/--plot the merge)")
    ap.add_argument("--passkey", action="store_true", help="run the passkey retrieval test instead "
                    "(options: python -m kvc.eval.passkey --help)")
    return ap


def merge_results(paths) -> dict:
    """Concatenates the records of several result files made on the same contexts."""
    res = None
    seen = set()
    for pth in paths:
        r = json.loads(Path(pth).read_text())
        if res is None:
            res = r
            res["merged_from"] = [str(pth)]
            res["command"] = [r.get("command")]
            seen = {(x["method"], x.get("p"), x.get("n_samples"), x.get("ratio")) for x in r["records"]}
            continue
        names = [c["name"] for c in r["contexts"]]
        if names != [c["name"] for c in res["contexts"]]:
            raise ValueError(f"{pth}: contexts {names} differ from {[c['name'] for c in res['contexts']]}")
        # Options both files have must agree; an option only one has (added later for a
        # method the other file did not run) is allowed and kept from the first file.
        common = set(r["options"]) & set(res["options"])
        diff = sorted(k for k in common if r["options"][k] != res["options"][k])
        if diff:
            raise ValueError(f"{pth}: options differ: {diff}")
        for k in set(r["options"]) - set(res["options"]):
            res["options"][k] = r["options"][k]
        for x in r["records"]:
            k = (x["method"], x.get("p"), x.get("n_samples"), x.get("ratio"))
            if k not in seen:
                seen.add(k)
                res["records"].append(x)
        res["merged_from"].append(str(pth))
        res["command"].append(r.get("command"))
    res["comparison"] = compare(res["records"])
    return res


def _merge_main(args, argv) -> int:
    try:
        res = merge_results(args.merge)
    except (OSError, ValueError, KeyError) as e:
        _err(str(e))
        return 2
    print(f"merged {len(args.merge)} result file(s); contexts: {[c['name'] for c in res['contexts']]}")
    print(format_table(res))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1))
    if args.plot:
        _plot(res, args.plot)
    if args.markdown:
        Path(args.markdown).write_text(format_markdown(res) + "\n")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--passkey" in argv:
        from .passkey import main as pk_main
        return pk_main([a for a in argv if a != "--passkey"])
    args = build_parser().parse_args(argv)
    if args.merge:
        return _merge_main(args, argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in ALL_METHODS]
    if bad:
        _err(f"unknown method(s) {bad}; known: {', '.join(ALL_METHODS)}")
        return 2
    ratios, p_list = _floats(args.ratios), _floats(args.p)
    s_list = [int(x) for x in _floats(args.samples)]
    if any(not (0 < r <= 1) for r in ratios) or any(not (0 < p <= 1) for p in p_list):
        _err("--ratios and --p must be in (0, 1]")
        return 2
    try:
        from kvc.runtime import vote as V
        V.default_options()
    except Exception as e:  # missing libkvc_runtime.so
        _err(f"needs libkvc_runtime.so (build kvc or set KVC_RUNTIME_LIB): {e}")
        return 3
    from ..models import load_model, ModelNotAvailableError, UnsupportedModelError
    from ..text import bundled_texts, contexts_from_files
    t = time.perf_counter()
    try:
        model = load_model(args.model)
    except (ModelNotAvailableError, UnsupportedModelError, FileNotFoundError, ImportError) as e:
        _err(str(e))
        return 2
    _err(f"loaded {model.cfg.name} in {time.perf_counter() - t:.1f}s")
    files = args.text_file or bundled_texts()
    ctxs = contexts_from_files(model.tokenizer, files, args.context, args.continuation, 1, warn=_err)
    if args.max_contexts:
        ctxs = ctxs[:args.max_contexts]
    if not ctxs:
        _err("no text long enough")
        return 2
    opts = {k: getattr(args, k) for k in DEFAULTS}
    t = time.perf_counter()
    res = run_budget(model, ctxs, p_list, s_list, ratios, methods, opts, progress=not args.no_progress)
    res["wall_seconds"] = time.perf_counter() - t
    res["command"] = " ".join(["kvc-eval budget"] + argv)
    print(f"model: {model.cfg.name}  contexts: {len(ctxs)}  T={args.context}  N={args.continuation}  "
          f"(fractions = stored KV pairs kept; KL(full||compressed) in nats)")
    print(format_table(res))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
        _err(f"wrote {args.json}")
    if args.plot:
        _plot(res, args.plot)
    if args.markdown:
        Path(args.markdown).write_text(format_markdown(res) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
