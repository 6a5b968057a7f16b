"""Compression methods as seen by the evaluation harness.

The ``Compressor`` interface
----------------------------
``Compressor.compress(layers, ratio) -> CompressedCache``

* ``layers``: the prefill's stored cache, one :class:`kvc.models.LayerKV` per layer with
  K [Hkv, Ts, d] (post-RoPE), V [Hkv, Ts, dv], Q [Hq, Ts, d] (post-RoPE, scaled so that
  attention is softmax(Q K^T / sqrt(d)) V), positions [Ts], window (None = global layer),
  and the layer's RoPE (``LayerKV.rotate``).  Query head j belongs to KV head j // (Hq/Hkv).
* ``ratio`` r: the fraction of stored (key, value) pairs KEPT.  The default budget of KV
  head h of layer l is round(r * Ts_l), clamped to [1, Ts_l]; methods with an allocation
  step (sculpt-pilot) redistribute the same total over layers and heads.
* returns per layer, per KV head, (Ck [t_h, d], Cv [t_h, dv]) with ragged t_h and RoPE baked
  into Ck, plus the kept indices (None for methods whose entries are not tokens), the
  budgets, and the wall-clock seconds spent per layer.

Methods implemented here in numpy: ``full`` (identity), ``streaming`` (StreamingLLM:
n_sink first stored pairs + the most recent ones), and numpy references ``snapkv-np`` and
``select-fit-np`` (for cross-checking the library's versions).  ``snapkv``, ``select-fit``, ``sculpt``
and ``sculpt-pilot`` call the C++ library through ``kvc.runtime.compress``; if that module
or its shared library is missing they raise :class:`MethodUnavailableError` naming what to
build.  All method defaults live in ``METHOD_DEFAULTS`` below.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .queries import training_queries, attention_output

# ----------------------------------------------------------------------------------------
# Every method-specific default, in one place.
#   n_obs / n_synthetic: the training-query set given to the library per KV head (the last
#     n_obs real context queries of each query head + n_synthetic synthetic future queries,
#     kvc.eval.queries.training_queries), stacked as g blocks (n_query_heads = g).
#   lib_method: the method name of kvc.runtime.compress.
#   pilot_alpha / pilot_t_min: allocation exponent and floor of sculpt-pilot.
#   Every other key is a kvc_compress_options field passed to the library unchanged; fields
#   not listed keep the library's defaults (kvc.runtime.compress.default_options(), which the
#   JSON output records under "library_defaults").
# ----------------------------------------------------------------------------------------
METHOD_DEFAULTS: Dict[str, dict] = {
    "full": {},
    "streaming": {"n_sink": 4},
    # SnapKV: observation window = last 64 real queries, avg-pooled votes (kernel 5), the
    # window itself kept exact, no sinks.
    "snapkv": {"lib_method": "snapkv", "n_obs": 64, "n_synthetic": 0, "n_sink": 0, "n_recent": 64,
               "snapkv_window": 64, "snapkv_kernel": 5, "snapkv_pool": "avg"},
    # Select+Fit: top-t keys by RMS attention weight over the training queries + ridge LS values.
    "select-fit": {"lib_method": "select-fit", "n_obs": 64, "n_synthetic": 128, "n_sink": 4,
                   "n_recent": 64, "select_score": "rms", "ridge_lambda": 1e-3},
    # KVSculpt: Select+Fit start, L-BFGS on keys alternating with LS values (library defaults
    # for rounds / iterations / lse_weight).
    "sculpt": {"lib_method": "sculpt", "n_obs": 64, "n_synthetic": 128, "n_sink": 4, "n_recent": 64,
               "ridge_lambda": 1e-3},
    # KVSculpt + pilot allocation across all layers and KV heads at the same total budget
    # (kvc.runtime.compress.pilot: t_c ∝ T_c * e_c^alpha, e_c = pilot relative MSE).
    "sculpt-pilot": {"lib_method": "sculpt", "n_obs": 64, "n_synthetic": 128, "n_sink": 4,
                     "n_recent": 64, "ridge_lambda": 1e-3, "pilot_alpha": 0.5, "pilot_t_min": 0},
    # Pure-numpy references of two baselines (for cross-checking the C++ library).
    # causal: the window queries see only keys up to their own position (as in SnapKV).
    "snapkv-np": {"n_obs": 64, "n_recent": 64, "kernel": 5, "causal": True},
    # ridge is relative: lambda = ridge * trace(A^T A) / t (as the library's ridge_lambda).
    "select-fit-np": {"n_obs": 64, "n_synthetic": 128, "n_sink": 4, "n_recent": 64, "ridge": 1e-3},
}
QUERY_OPTS = ("n_obs", "n_synthetic")
HARNESS_OPTS = QUERY_OPTS + ("lib_method", "pilot_alpha", "pilot_t_min", "n_sink", "n_recent")


class MethodUnavailableError(RuntimeError):
    pass


@dataclass
class CompressedCache:
    heads: List[List[Tuple[np.ndarray, np.ndarray]]]     # [layer][kv_head] -> (Ck, Cv)
    kept_idx: List[List[Optional[np.ndarray]]]
    budgets: List[List[int]]
    seconds: List[float]                                  # per layer (plus shared work split evenly)
    stats: Dict[str, object] = field(default_factory=dict)

    def kept_pairs_per_layer(self) -> List[int]:
        return [int(sum(e[0].shape[0] for e in hs)) for hs in self.heads]

    def bytes_fp16_per_layer(self) -> List[int]:
        return [int(sum(2 * (e[0].shape[0] * e[0].shape[1] + e[1].shape[0] * e[1].shape[1]) for e in hs))
                for hs in self.heads]


def uniform_budgets(layers, ratio: float) -> List[List[int]]:
    out = []
    for L in layers:
        ts = L.K.shape[1]
        b = int(min(ts, max(1, round(ratio * ts))))
        out.append([b] * L.K.shape[0])
    return out


class Compressor:
    """Base class: subclasses implement ``compress_head`` (and optionally ``allocate``)."""
    name = "base"
    needs_runtime = False

    def __init__(self, **opts):
        self.opts = dict(METHOD_DEFAULTS.get(self.name, {}))
        unknown = set(opts) - set(self.opts) if self.opts else set()
        if unknown and not getattr(self, "accepts_any_opts", False):
            raise ValueError(f"method {self.name}: unknown options {sorted(unknown)}")
        self.opts.update(opts)

    def allocate(self, layers, ratio: float) -> List[List[int]]:
        return uniform_budgets(layers, ratio)

    def compress_head(self, layer, li: int, h: int, budget: int):
        raise NotImplementedError

    def compress(self, layers: Sequence, ratio: float) -> CompressedCache:
        t0 = time.perf_counter()
        budgets = self.allocate(layers, ratio)
        shared = (time.perf_counter() - t0) / max(1, len(layers))
        heads, kept, secs = [], [], []
        stats: Dict[str, object] = {}
        for li, L in enumerate(layers):
            t = time.perf_counter()
            hs, ks = [], []
            for h in range(L.K.shape[0]):
                ck, cv, idx = self.compress_head(L, li, h, budgets[li][h])
                hs.append((np.ascontiguousarray(ck, dtype=np.float32),
                           np.ascontiguousarray(cv, dtype=np.float32)))
                ks.append(None if idx is None else np.asarray(idx))
            heads.append(hs)
            kept.append(ks)
            secs.append(time.perf_counter() - t + shared)
        return CompressedCache(heads=heads, kept_idx=kept, budgets=budgets, seconds=secs, stats=stats)


class FullCache(Compressor):
    """Identity: the uncompressed stored cache (the reference; r is ignored, reported as 1)."""
    name = "full"

    def allocate(self, layers, ratio):
        return [[L.K.shape[1]] * L.K.shape[0] for L in layers]

    def compress_head(self, layer, li, h, budget):
        return layer.K[h], layer.V[h], np.arange(layer.K.shape[1])


class Streaming(Compressor):
    """StreamingLLM: keep the first n_sink stored pairs and the most recent budget-n_sink."""
    name = "streaming"

    def compress_head(self, layer, li, h, budget):
        ts = layer.K.shape[1]
        n_sink = min(self.opts["n_sink"], budget)
        idx = np.concatenate([np.arange(n_sink), np.arange(ts - (budget - n_sink), ts)])
        idx = np.unique(idx)
        return layer.K[h][idx], layer.V[h][idx], idx


def _softmax_rows(s: np.ndarray) -> np.ndarray:
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s)
    return p / p.sum(-1, keepdims=True)


class SnapKVNumpy(Compressor):
    """SnapKV in numpy: the last n_obs real queries (all query heads of the KV group) vote
    with their causal attention weights; votes are summed, average-pooled (kernel), and the
    top (budget - n_recent) keys outside the window are kept together with the window."""
    name = "snapkv-np"

    def compress_head(self, layer, li, h, budget):
        ts, d = layer.K.shape[1], layer.K.shape[2]
        g = layer.Q.shape[0] // layer.K.shape[0]
        w = min(self.opts["n_obs"], ts)
        n_rec = min(self.opts["n_recent"], budget, ts)
        q = layer.Q[h * g:(h + 1) * g, ts - w:].astype(np.float64)      # [g, w, d]
        s = q @ layer.K[h].T.astype(np.float64) / np.sqrt(d)             # [g, w, ts]
        if self.opts["causal"]:
            qi = np.arange(ts - w, ts)[:, None]
            s = np.where(np.arange(ts)[None, :] <= qi, s, -np.inf)
        votes = _softmax_rows(s).sum((0, 1))
        k = self.opts["kernel"]
        if k > 1:   # avg_pool1d(kernel, padding=k//2, count_include_pad=True)
            votes = np.convolve(np.pad(votes, (k // 2, k // 2)), np.ones(k) / k, mode="valid")
        votes = votes[: ts - n_rec]
        n_top = min(budget - n_rec, ts - n_rec)
        top = np.argsort(-votes, kind="stable")[:n_top] if n_top > 0 else np.zeros(0, int)
        idx = np.sort(np.concatenate([top, np.arange(ts - n_rec, ts)])).astype(int)
        return layer.K[h][idx], layer.V[h][idx], idx


class SelectFitNumpy(Compressor):
    """Select+Fit in numpy: keep n_sink + n_recent exact pairs, select the remaining budget
    by RMS attention weight over the training queries (last n_obs real + n_synthetic future
    queries, all seeing the whole stored cache), then refit the selected values by ridge
    least squares so the compressed attention output matches the full-cache output."""
    name = "select-fit-np"

    def compress_head(self, layer, li, h, budget):
        ts, d = layer.K.shape[1], layer.K.shape[2]
        g = layer.Q.shape[0] // layer.K.shape[0]
        Qt = training_queries(layer, self.opts["n_obs"], self.opts["n_synthetic"])
        Q = Qt[h * g:(h + 1) * g].reshape(-1, d).astype(np.float64)
        K, V = layer.K[h].astype(np.float64), layer.V[h].astype(np.float64)
        n_sink = min(self.opts["n_sink"], budget)
        n_rec = min(self.opts["n_recent"], budget - n_sink)
        keep = np.zeros(ts, bool)
        keep[:n_sink] = True
        if n_rec > 0:
            keep[ts - n_rec:] = True
        A = _softmax_rows(Q @ K.T / np.sqrt(d))                          # [m, ts]
        Y = A @ V
        score = np.sqrt(np.mean(A ** 2, axis=0))
        score[keep] = -np.inf
        n_sel = budget - int(keep.sum())
        sel = np.argsort(-score, kind="stable")[:max(0, n_sel)]
        idx = np.sort(np.concatenate([np.flatnonzero(keep), sel])).astype(int)
        if len(sel) == 0:
            return layer.K[h][idx], layer.V[h][idx], idx
        Ac = _softmax_rows(Q @ K[idx].T / np.sqrt(d))                     # [m, t]
        fit = ~keep[idx]                                                  # selected (refit) slots
        R = Y - Ac[:, ~fit] @ V[idx][~fit]
        Af = Ac[:, fit]
        lam = self.opts["ridge"] * np.trace(Af.T @ Af) / Af.shape[1]   # relative, as the library
        Cv = V[idx].copy()
        Cv[fit] = np.linalg.solve(Af.T @ Af + lam * np.eye(Af.shape[1]), Af.T @ R)
        return layer.K[h][idx], Cv.astype(np.float32), idx


def _runtime_compress(method: str):
    """Imports kvc.runtime.compress and loads libkvc_runtime.so, or raises MethodUnavailableError."""
    hint = ("build kvc (scripts/setup.sh) so that build/lib/libkvc_runtime.so exists, or set "
            "KVC_RUNTIME_LIB=/path/to/libkvc_runtime.so")
    try:
        from kvc.runtime import compress as rc  # noqa: WPS433
    except ImportError as e:
        raise MethodUnavailableError(
            f"method {method!r} needs the C++ compression library through kvc.runtime.compress "
            f"(python/kvc/runtime/compress.py is missing or broken: {e}); {hint}") from e
    for fn in ("compress_heads", "pilot", "default_options"):
        if not hasattr(rc, fn):
            raise MethodUnavailableError(f"method {method!r}: kvc.runtime.compress has no {fn}()")
    try:
        rc.default_options()            # loads libkvc_runtime.so
    except Exception as e:  # RuntimeLibraryError, OSError, missing symbols
        raise MethodUnavailableError(
            f"method {method!r} needs libkvc_runtime.so (the C++ compression library): {e}") from e
    return rc


class RuntimeMethod(Compressor):
    """Adapter to kvc.runtime.compress (the C++ library).

    Per KV head the library gets K [Ts, d], V [Ts, dv] and the training queries of the head's
    query group, Q [g * m, d] as g blocks (n_query_heads = g), in the convention
    softmax(Q K^T / sqrt(d)) (the library's default scale).  All heads of all layers are
    compressed in one ``compress_heads`` call (thread pool); the per-layer seconds are the
    library's own per-head timings summed over the layer's heads.  n_sink / n_recent are
    reduced for a head whose budget is smaller than n_sink + n_recent.
    """
    needs_runtime = True
    accepts_any_opts = True      # any kvc_compress_options field; the library rejects unknown ones

    def __init__(self, **opts):
        super().__init__(**opts)
        self.rc = _runtime_compress(self.name)

    def lib_opts(self) -> dict:
        return {k: v for k, v in self.opts.items() if k not in HARNESS_OPTS}

    def _head_inputs(self, layers):
        jobs = []
        for li, L in enumerate(layers):
            Qt = training_queries(L, self.opts.get("n_obs", 64), self.opts.get("n_synthetic", 0))
            g = Qt.shape[0] // L.K.shape[0]
            for h in range(L.K.shape[0]):
                Q = np.ascontiguousarray(Qt[h * g:(h + 1) * g].reshape(-1, Qt.shape[-1]))
                jobs.append((li, h, L.K[h], L.V[h], Q, g))
        return jobs

    def allocate_flat(self, layers, jobs, ratio):
        uni = uniform_budgets(layers, ratio)
        return [uni[li][h] for (li, h, *_r) in jobs]

    def compress(self, layers, ratio):
        t_all = time.perf_counter()
        jobs = self._head_inputs(layers)
        t_alloc = time.perf_counter()
        budgets = self.allocate_flat(layers, jobs, ratio)
        t_alloc = time.perf_counter() - t_alloc
        n_sink0, n_rec0 = int(self.opts.get("n_sink", 0)), int(self.opts.get("n_recent", 0))
        groups: Dict[tuple, list] = {}
        for j, (li, h, K, V, Q, g) in enumerate(jobs):
            b = int(budgets[j])
            ts = K.shape[0]
            ns = min(n_sink0, b, ts)
            nr = min(n_rec0, max(0, b - ns), ts)
            groups.setdefault((ns, nr, g), []).append(j)
        results = [None] * len(jobs)
        for (ns, nr, g), idxs in groups.items():
            heads = [(jobs[j][2], jobs[j][3], jobs[j][4], int(budgets[j])) for j in idxs]
            out = self.rc.compress_heads(heads, method=self.opts["lib_method"], n_sink=ns, n_recent=nr,
                                         n_query_heads=g, **self.lib_opts())
            for j, r in zip(idxs, out):
                results[j] = r
        wall = time.perf_counter() - t_all
        nl = len(layers)
        heads = [[None] * L.K.shape[0] for L in layers]
        kept = [[None] * L.K.shape[0] for L in layers]
        bud = [[0] * L.K.shape[0] for L in layers]
        secs = [t_alloc / nl] * nl
        train_mse = [[] for _ in layers]
        fell_back = 0
        for j, (li, h, *_r) in enumerate(jobs):
            ck, cv, idx, st = results[j]
            heads[li][h] = (ck, cv)
            kept[li][h] = np.asarray(idx)
            bud[li][h] = int(budgets[j])
            secs[li] += float(st.get("seconds", 0.0))
            train_mse[li].append(float(st.get("final_rel_mse", float("nan"))))
            fell_back += int(bool(st.get("fell_back", False)))
        stats = {"wall_seconds": wall, "fell_back_heads": fell_back,
                 "layer_train_rel_mse": [float(np.mean(x)) for x in train_mse]}
        stats.update(getattr(self, "_alloc_stats", {}))
        return CompressedCache(heads=heads, kept_idx=kept, budgets=bud, seconds=secs, stats=stats)


class SnapKV(RuntimeMethod):
    name = "snapkv"


class SelectFit(RuntimeMethod):
    name = "select-fit"


class Sculpt(RuntimeMethod):
    name = "sculpt"


class SculptPilot(RuntimeMethod):
    """KVSculpt with pilot budget allocation across layers and KV heads (same total budget
    as uniform round(r * Ts) per head), via kvc.runtime.compress.pilot."""
    name = "sculpt-pilot"

    def allocate_flat(self, layers, jobs, ratio):
        uni = uniform_budgets(layers, ratio)
        total = int(sum(sum(b) for b in uni))
        g = jobs[0][5]
        heads = [(K, V, Q) for (_li, _h, K, V, Q, _g) in jobs]
        diff, budgets, spread = self.rc.pilot(
            heads, total, t_min=int(self.opts["pilot_t_min"]), alpha=float(self.opts["pilot_alpha"]),
            n_sink=int(self.opts["n_sink"]), n_recent=int(self.opts["n_recent"]), n_query_heads=g,
            **self.lib_opts())
        self._alloc_stats = {"pilot_difficulty": [float(x) for x in diff], "pilot_spread": float(spread)}
        return [int(b) for b in budgets]


def allocate_by_difficulty(diff: np.ndarray, caps: np.ndarray, total: int, alpha: float,
                           t_min: int) -> np.ndarray:
    """Integer budgets t_i ∝ diff_i^alpha with sum(t) == total and t_min <= t_i <= caps_i.

    Water-filling: components hitting a bound are fixed and the rest re-normalized; the
    remainder of rounding goes to the largest fractional parts.
    """
    n = len(diff)
    lo = np.minimum(np.full(n, t_min), caps).astype(float)
    w = np.maximum(np.asarray(diff, float), 1e-30) ** alpha
    t = np.zeros(n)
    free = np.ones(n, bool)
    fixed = np.zeros(n)
    for _ in range(n + 1):
        rem = total - fixed[~free].sum()
        t[free] = w[free] / w[free].sum() * rem
        over = free & (t > caps)
        under = free & (t < lo)
        if not over.any() and not under.any():
            break
        fixed[over] = caps[over]
        fixed[under] = lo[under]
        t[over] = caps[over]
        t[under] = lo[under]
        free &= ~(over | under)
        if not free.any():
            break
    ti = np.floor(t).astype(int)
    short = int(total - ti.sum())
    order = np.argsort(-(t - ti))
    for i in order:
        if short <= 0:
            break
        if ti[i] < caps[i]:
            ti[i] += 1
            short -= 1
    return ti


METHODS = {c.name: c for c in (FullCache, Streaming, SnapKV, SelectFit, Sculpt, SculptPilot,
                                SnapKVNumpy, SelectFitNumpy)}


def make_compressor(name: str, **opts) -> Compressor:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name](**opts)
