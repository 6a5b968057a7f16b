"""numpy wrappers over the KV-cache compression C ABI (include/kvc/Runtime/Compress.h).

All arrays are converted to C-contiguous float32. Errors raise CompressError carrying the
library's status code and message. See docs/compression-library.md for the methods.

    from kvc.runtime.compress import compress_head
    Ck, Cv, idx, stats = compress_head(K, V, Q, budget=600, method="sculpt", n_query_heads=4)
"""
import ctypes

import numpy as np

from ._lib import F32P as _f32p, F64P as _f64p, I64P as _i64p
from ._lib import configure, f32_array as _f32, load_library, pointer as _ptr

METHODS = {"streaming": 0, "snapkv": 1, "h2o": 2, "select-fit": 3, "select_fit": 3, "sculpt": 4}
POOLS = {"max": 0, "avg": 1}
SCORES = {"rms": 0, "sum": 1}

# Alternative option names (as in methods.md's third-party KVSculpt settings) -> library names.
ALIASES = {"kernel": "snapkv_kernel", "window": "snapkv_window", "pool": "snapkv_pool",
           "ridge": "ridge_lambda", "score": "select_score"}
# Accepted for compatibility and ignored: L-BFGS++ chooses its step by line search.
IGNORED = ("lr",)



class CompressError(RuntimeError):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class _Options(ctypes.Structure):
    _fields_ = [
        ("method", ctypes.c_int32),
        ("scale", ctypes.c_float),
        ("n_sink", ctypes.c_int64),
        ("n_recent", ctypes.c_int64),
        ("n_query_heads", ctypes.c_int64),
        ("snapkv_window", ctypes.c_int64),
        ("snapkv_kernel", ctypes.c_int64),
        ("snapkv_pool", ctypes.c_int32),
        ("select_score", ctypes.c_int32),
        ("ridge_lambda", ctypes.c_double),
        ("lse_weight", ctypes.c_double),
        ("sculpt_rounds", ctypes.c_int32),
        ("sculpt_key_iters", ctypes.c_int32),
        ("lbfgs_memory", ctypes.c_int32),
        ("pilot_rounds", ctypes.c_int32),
        ("pilot_key_iters", ctypes.c_int32),
        ("debug_nan_after_evals", ctypes.c_int32),
    ]


class _Stats(ctypes.Structure):
    _fields_ = [
        ("n_out", ctypes.c_int64),
        ("exact_copy", ctypes.c_int32),
        ("fell_back", ctypes.c_int32),
        ("initial_loss", ctypes.c_double),
        ("final_loss", ctypes.c_double),
        ("initial_rel_mse", ctypes.c_double),
        ("final_rel_mse", ctypes.c_double),
        ("rounds", ctypes.c_int32),
        ("iterations", ctypes.c_int32),
        ("evaluations", ctypes.c_int32),
        ("value_solves", ctypes.c_int32),
        ("seconds", ctypes.c_double),
    ]

    def as_dict(self):
        out = {name: getattr(self, name) for name, _ in self._fields_}
        out["exact_copy"] = bool(out["exact_copy"])
        out["fell_back"] = bool(out["fell_back"])
        return out


class _Job(ctypes.Structure):
    _fields_ = [
        ("keys", _f32p),
        ("values", _f32p),
        ("queries", _f32p),
        ("seq_len", ctypes.c_int64),
        ("head_dim", ctypes.c_int64),
        ("value_dim", ctypes.c_int64),
        ("n_queries", ctypes.c_int64),
        ("budget", ctypes.c_int64),
        ("out_keys", _f32p),
        ("out_values", _f32p),
        ("out_indices", _i64p),
        ("stats", _Stats),
        ("status", ctypes.c_int32),
    ]


_CONFIGURED = None


def _lib():
    global _CONFIGURED
    if _CONFIGURED is not None:
        return _CONFIGURED
    lib = load_library()
    i64, f32, f64, i32 = ctypes.c_int64, ctypes.c_float, ctypes.c_double, ctypes.c_int32
    sigs = {
        "kvc_compress_last_error": (ctypes.c_char_p, []),
        "kvc_compress_backend": (ctypes.c_char_p, []),
        "kvc_compress_default_options": (None, [ctypes.POINTER(_Options)]),
        "kvc_compress_head": (ctypes.c_int, [_f32p, _f32p, i64, i64, i64, _f32p, i64, i64,
                                             ctypes.POINTER(_Options), _f32p, _f32p, _i64p,
                                             ctypes.POINTER(_Stats)]),
        "kvc_compress_heads": (ctypes.c_int, [ctypes.POINTER(_Job), i64,
                                              ctypes.POINTER(_Options), i32]),
        "kvc_compress_attention": (ctypes.c_int, [_f32p, i64, _f32p, _f32p, i64, _f32p, _f32p,
                                                  i64, i64, i64, f32, _f32p, _f32p]),
        "kvc_compress_fit_values": (ctypes.c_int, [_f32p, i64, _f32p, i64, _f32p, _f32p, i64,
                                                   _f32p, i64, i64, f32, f64, _f32p]),
        "kvc_compress_sculpt_loss": (ctypes.c_int, [_f32p, i64, _f32p, _f32p, i64, _f32p,
                                                    _f32p, i64, _f32p, _f32p, i64, i64, f32,
                                                    f64, _f64p, _f32p]),
        "kvc_compress_synthetic_queries": (ctypes.c_int, [_f32p, _i64p, i64, i64, i64, i64,
                                                          f64, f64, i64, i64, _f32p, _i64p]),
        "kvc_compress_allocate_budgets": (ctypes.c_int, [_f64p, _i64p, i64, i64, i64, f64,
                                                         _i64p, _f64p]),
        "kvc_compress_pilot": (ctypes.c_int, [ctypes.POINTER(_Job), i64, i64, i64, f64,
                                              ctypes.POINTER(_Options), i32, _f64p, _i64p,
                                              _f64p]),
    }
    configure(lib, sigs)
    _CONFIGURED = lib
    return lib


def _check(status):
    if status != 0:
        message = _lib().kvc_compress_last_error().decode("utf-8", "replace")
        raise CompressError(status, message)






def backend():
    """The GEMM backend, e.g. 'openblas Haswell' or 'eigen' (with a hint if misdetected)."""
    return _lib().kvc_compress_backend().decode()


def default_options():
    """The library's default options as a dict (field name -> value)."""
    opts = _Options()
    _lib().kvc_compress_default_options(ctypes.byref(opts))
    return {name: getattr(opts, name) for name, _ in _Options._fields_}


def _make_options(method="sculpt", scale=None, n_sink=4, n_recent=64, **opts):
    o = _Options()
    _lib().kvc_compress_default_options(ctypes.byref(o))
    o.method = METHODS[method] if isinstance(method, str) else int(method)
    o.scale = 0.0 if scale is None else float(scale)
    o.n_sink = int(n_sink)
    o.n_recent = int(n_recent)
    opts = {ALIASES.get(k, k): v for k, v in opts.items() if k not in IGNORED}
    # Third-party schedule (outer_steps x lbfgs_iters L-BFGS iterations, a value solve every
    # value_every outer steps) -> rounds of (lbfgs_iters * value_every) iterations.
    schedule = [opts.pop(k, None) for k in ("outer_steps", "lbfgs_iters", "value_every")]
    if any(v is not None for v in schedule):
        outer, inner, every = schedule
        inner = 10 if inner is None else int(inner)
        every = 1 if every is None else max(int(every), 1)
        if outer is not None:
            opts.setdefault("sculpt_rounds", -(-int(outer) // every))
        opts.setdefault("sculpt_key_iters", inner * every)
    for key, value in opts.items():
        if key == "snapkv_pool" and isinstance(value, str):
            value = POOLS[value]
        if key == "select_score" and isinstance(value, str):
            value = SCORES[value]
        if key not in dict(_Options._fields_):
            raise TypeError("unknown compression option %r" % key)
        setattr(o, key, value)
    return o


def _queries(Q, d, opts):
    """Accepts Q as (m, d) or (g, m/g, d) (GQA group); returns (2-D array or None, opts)."""
    if Q is None:
        return None, opts
    Q = np.asarray(Q)
    if Q.ndim == 3:
        opts = dict(opts)
        opts.setdefault("n_query_heads", Q.shape[0])
        Q = Q.reshape(-1, Q.shape[-1])
    Q = _f32(Q, 2, "Q")
    if Q.shape[1] != d:
        raise ValueError("Q has head_dim %d, K has %d" % (Q.shape[1], d))
    return Q, opts


def compress_head(K, V, Q, budget, method="sculpt", scale=None, n_sink=4, n_recent=64, **opts):
    """Compresses one KV head to `budget` pairs (sinks and recent tokens included).

    K: (T, d) post-RoPE keys; V: (T, dv); Q: (m, d) or (g, m/g, d) training queries (None for
    'streaming'). Returns (Ck, Cv, indices, stats): Ck (n, d), Cv (n, dv) with
    n = min(budget, T); indices (n,) int64 source positions, -1 for KVSculpt's synthesized
    rows; stats a dict (losses, timings, exact_copy, fell_back, ...).
    indices is None for 'sculpt' (its middle rows are not tokens); stats["indices"] always
    holds the library's index array (sources of the retained rows, -1 for synthesized ones).
    Options: any kvc_compress_options field by name, plus ALIASES and the third-party
    schedule outer_steps / lbfgs_iters / value_every (see docs/compression-library.md).
    """
    K = _f32(K, 2, "K")
    V = _f32(V, 2, "V")
    T, d = K.shape
    if V.shape[0] != T:
        raise ValueError("K and V differ in length")
    Q, opts = _queries(Q, d, opts)
    o = _make_options(method, scale, n_sink, n_recent, **opts)
    rows = max(min(int(budget), T), 0)
    Ck = np.empty((max(rows, 1), d), np.float32)
    Cv = np.empty((max(rows, 1), V.shape[1]), np.float32)
    idx = np.empty(max(rows, 1), np.int64)
    stats = _Stats()
    m = 0 if Q is None else Q.shape[0]
    _check(_lib().kvc_compress_head(_ptr(K), _ptr(V), T, d, V.shape[1], _ptr(Q), m, int(budget),
                                    ctypes.byref(o), _ptr(Ck), _ptr(Cv), _ptr(idx, _i64p),
                                    ctypes.byref(stats)))
    n = stats.n_out
    info = stats.as_dict()
    info["indices"] = idx[:n]
    return Ck[:n], Cv[:n], (None if o.method == METHODS["sculpt"] else idx[:n]), info


def _jobs(heads, budgets=None):
    """heads: list of (K, V, Q) or dicts with K, V, Q[, budget]. Keeps arrays alive in refs."""
    jobs = (_Job * len(heads))()
    refs, outs, groups = [], [], set()
    for i, head in enumerate(heads):
        if isinstance(head, dict):
            K, V, Q = head["K"], head["V"], head.get("Q")
            budget = head.get("budget")
        else:
            K, V, Q = head[:3]
            budget = head[3] if len(head) > 3 else None
        if budgets is not None:
            budget = budgets[i]
        K, V = _f32(K, 2, "K"), _f32(V, 2, "V")
        Q, qopts = _queries(Q, K.shape[1], {})
        groups.add(qopts.get("n_query_heads", 1))
        T, d, dv = K.shape[0], K.shape[1], V.shape[1]
        budget = 0 if budget is None else int(budget)
        rows = max(min(budget, T), 1)
        Ck = np.empty((rows, d), np.float32)
        Cv = np.empty((rows, dv), np.float32)
        idx = np.empty(rows, np.int64)
        refs += [K, V, Q]
        outs.append((Ck, Cv, idx))
        j = jobs[i]
        j.keys, j.values, j.queries = _ptr(K), _ptr(V), _ptr(Q)
        j.seq_len, j.head_dim, j.value_dim = T, d, dv
        j.n_queries = 0 if Q is None else Q.shape[0]
        j.budget = budget
        j.out_keys, j.out_values, j.out_indices = _ptr(Ck), _ptr(Cv), _ptr(idx, _i64p)
    return jobs, refs, outs, groups


def _with_group(opts, groups):
    """3-D queries (g, m/g, d) set n_query_heads unless it was given."""
    if len(groups) == 1 and "n_query_heads" not in opts:
        opts = dict(opts, n_query_heads=groups.pop())
    return opts


def compress_heads(heads, budgets=None, method="sculpt", scale=None, n_sink=4, n_recent=64,
                   num_threads=0, **opts):
    """Compresses many heads on a thread pool (num_threads <= 0: $KVC_NUM_THREADS or all
    cores). heads: list of (K, V, Q[, budget]) or dicts; budgets overrides per-head budgets.
    Q is (m, d) or (g, m/g, d) as in compress_head. Returns a list of (Ck, Cv, indices, stats)
    like compress_head."""
    jobs, refs, outs, groups = _jobs(heads, budgets)
    o = _make_options(method, scale, n_sink, n_recent, **_with_group(opts, groups))
    _check(_lib().kvc_compress_heads(jobs, len(heads), ctypes.byref(o), int(num_threads)))
    results = []
    for job, (Ck, Cv, idx) in zip(jobs, outs):
        n = job.stats.n_out
        info = job.stats.as_dict()
        info["indices"] = idx[:n]
        results.append((Ck[:n], Cv[:n], None if o.method == METHODS["sculpt"] else idx[:n], info))
    del refs
    return results


def pilot(heads, total, t_min=0, alpha=0.5, scale=None, n_sink=4, n_recent=64, num_threads=0,
          **opts):
    """Pilot run (short KVSculpt at the uniform budget) + allocation of `total` over heads.
    Returns (difficulty, budgets, spread): relative pilot MSE per head, int64 budgets summing
    to total, and max/min difficulty."""
    jobs, refs, _, groups = _jobs(heads, [0] * len(heads))
    o = _make_options("sculpt", scale, n_sink, n_recent, **_with_group(opts, groups))
    difficulty = np.empty(len(heads), np.float64)
    budgets = np.empty(len(heads), np.int64)
    spread = ctypes.c_double()
    _check(_lib().kvc_compress_pilot(jobs, len(heads), int(total), int(t_min), float(alpha),
                                     ctypes.byref(o), int(num_threads), _ptr(difficulty, _f64p),
                                     _ptr(budgets, _i64p), ctypes.byref(spread)))
    del refs
    return difficulty, budgets, spread.value


def allocate_budgets(difficulty, sizes, total, t_min=0, alpha=0.5):
    """Integer budgets t_c ~ T_c * e_c**alpha summing to total, min(t_min, T_c) <= t_c <= T_c.
    Returns (budgets, spread)."""
    e = np.ascontiguousarray(difficulty, dtype=np.float64)
    T = np.ascontiguousarray(sizes, dtype=np.int64)
    if e.shape != T.shape or e.ndim != 1:
        raise ValueError("difficulty and sizes must be 1-D of the same length")
    out = np.empty(len(T), np.int64)
    spread = ctypes.c_double()
    _check(_lib().kvc_compress_allocate_budgets(_ptr(e, _f64p), _ptr(T, _i64p), len(T),
                                                int(total), int(t_min), float(alpha),
                                                _ptr(out, _i64p), ctypes.byref(spread)))
    return out, spread.value


def synthetic_queries(Q, positions, n_out, theta, ref_position=None, rotary_dim=None,
                      position_scale=1.0):
    """RoPE-aware synthetic future queries. Q: (n, d) or (g, n, d) post-RoPE queries at
    `positions` (n,). Each is de-rotated, n_out are subsampled evenly and re-rotated at
    ref_position+1 .. ref_position+n_out (ref_position defaults to max(positions)).
    Returns (queries of shape (n_out, d) or (g, n_out, d), their positions)."""
    Q = np.asarray(Q)
    squeeze = Q.ndim == 2
    Q3 = _f32(Q[None] if squeeze else Q, 3, "Q")
    g, n, d = Q3.shape
    pos = np.ascontiguousarray(positions, dtype=np.int64)
    if pos.shape != (n,):
        raise ValueError("positions must have shape (%d,)" % n)
    ref = int(pos.max()) if ref_position is None else int(ref_position)
    out = np.empty((g, int(n_out), d), np.float32)
    out_pos = np.empty(int(n_out), np.int64)
    _check(_lib().kvc_compress_synthetic_queries(
        _ptr(Q3), _ptr(pos, _i64p), n, g, d, 0 if rotary_dim is None else int(rotary_dim),
        float(theta), float(position_scale), ref, int(n_out), _ptr(out), _ptr(out_pos, _i64p)))
    return (out[0] if squeeze else out), out_pos


def attention(Q, K, V, scale=None, K_extra=None, V_extra=None):
    """softmax(scale Q [K; K_extra]^T) [V; V_extra] and the log-sum-exp of each query.
    Returns (out (m, dv), lse (m,))."""
    Q, K, V = _f32(Q, 2, "Q"), _f32(K, 2, "K"), _f32(V, 2, "V")
    if K_extra is not None:
        K_extra, V_extra = _f32(K_extra, 2, "K_extra"), _f32(V_extra, 2, "V_extra")
    n_extra = 0 if K_extra is None else K_extra.shape[0]
    out = np.empty((Q.shape[0], V.shape[1]), np.float32)
    lse = np.empty(Q.shape[0], np.float32)
    _check(_lib().kvc_compress_attention(_ptr(Q), Q.shape[0], _ptr(K), _ptr(V), K.shape[0],
                                         _ptr(K_extra), _ptr(V_extra), n_extra, Q.shape[1],
                                         V.shape[1], 0.0 if scale is None else float(scale),
                                         _ptr(out), _ptr(lse)))
    return out, lse


def fit_values(Q, comp_keys, targets, ret_keys=None, ret_values=None, scale=None,
               ridge_lambda=1e-3):
    """Ridge least-squares values for fixed compressed keys (see kvc_compress_fit_values)."""
    Q, Ck, Y = _f32(Q, 2, "Q"), _f32(comp_keys, 2, "comp_keys"), _f32(targets, 2, "targets")
    d, dv = Q.shape[1], Y.shape[1]
    Kr = _f32(np.zeros((0, d)) if ret_keys is None else ret_keys, 2, "ret_keys")
    Vr = _f32(np.zeros((0, dv)) if ret_values is None else ret_values, 2, "ret_values")
    out = np.empty((max(Ck.shape[0], 1), dv), np.float32)
    _check(_lib().kvc_compress_fit_values(_ptr(Q), Q.shape[0], _ptr(Ck), Ck.shape[0], _ptr(Kr),
                                          _ptr(Vr), Kr.shape[0], _ptr(Y), d, dv,
                                          0.0 if scale is None else float(scale),
                                          float(ridge_lambda), _ptr(out)))
    return out[:Ck.shape[0]]


def compress_head_from_kept(K, V, Q, kept, method="sculpt", scale=None, n_sink=4, n_recent=64,
                            anchor_values=False, **opts):
    """Select+Fit ('select-fit') or KVSculpt ('sculpt') started from a GIVEN kept set, e.g. the
    set GVote chose (kvc.runtime.vote.gvote_head): kvc_compress_head_from_kept.

    kept: ascending distinct token indices. Kept rows < n_sink or >= T - n_recent stay exact;
    the others start from their own keys, get ridge values and (sculpt) the KVSculpt rounds.
    Returns (Ck, Cv, indices, stats) with len(kept) rows in the order of kept; indices[i] =
    kept[i], or -1 for a sculpted slot. anchor_values: the ridge penalty pulls toward the kept
    rows' own values (lambda ||Cv - V[kept]||^2) instead of zero. Options as compress_head."""
    lib = _lib()
    fn = getattr(lib, "kvc_compress_head_from_kept", None)
    if fn is None:
        raise CompressError(1, "libkvc_runtime.so has no kvc_compress_head_from_kept (rebuild)")
    if fn.argtypes is None:
        i64 = ctypes.c_int64
        configure(lib, {"kvc_compress_head_from_kept": (
            ctypes.c_int, [_f32p, _f32p, i64, i64, i64, _f32p, i64, _i64p, i64, ctypes.c_int32,
                           ctypes.POINTER(_Options), _f32p, _f32p, _i64p, ctypes.POINTER(_Stats)])})
    K = _f32(K, 2, "K")
    V = _f32(V, 2, "V")
    T, d = K.shape
    if V.shape[0] != T:
        raise ValueError("K and V differ in length")
    Q, opts = _queries(Q, d, opts)
    o = _make_options(method, scale, n_sink, n_recent, **opts)
    idx_in = np.ascontiguousarray(kept, dtype=np.int64).reshape(-1)
    n = idx_in.shape[0]
    Ck = np.empty((max(n, 1), d), np.float32)
    Cv = np.empty((max(n, 1), V.shape[1]), np.float32)
    idx = np.empty(max(n, 1), np.int64)
    stats = _Stats()
    m = 0 if Q is None else Q.shape[0]
    _check(lib.kvc_compress_head_from_kept(_ptr(K), _ptr(V), T, d, V.shape[1], _ptr(Q), m,
                                           _ptr(idx_in, _i64p), n, int(bool(anchor_values)),
                                           ctypes.byref(o), _ptr(Ck),
                                           _ptr(Cv), _ptr(idx, _i64p), ctypes.byref(stats)))
    return Ck[:n], Cv[:n], idx[:n], stats.as_dict()
