"""numpy wrappers over the voting-budget C ABI (include/kvc/Runtime/Vote.h).

GVote (budget-free per-head selection by Gaussian query voting), nucleus sets, AdaKV and
PyramidKV budgets, top-k selection, the Expected Attention scorer and Select+Fit into a kept
set. Arrays are converted to C-contiguous float32; errors raise VoteError carrying the
library's status code and message. See docs/voting-budgets.md.

    from kvc.runtime.vote import gvote_head
    kept, stats = gvote_head(K, Q0, mu, var, Wq, p=0.95, n_samples=8, rope_theta=1e6)
"""
import ctypes

import numpy as np

from ._lib import F32P as _f32p, I64P as _i64p
from ._lib import configure, f32_array as _f32, load_library, pointer as _ptr

STEP_REDUCE = {"max": 0, "mean": 1}
Q_NORMS = {None: 0, "none": 0, "qwen": 1, "gemma": 2}



class VoteError(RuntimeError):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class _Options(ctypes.Structure):
    _fields_ = [
        ("p", ctypes.c_double),
        ("n_samples", ctypes.c_int32),
        ("step_reduce", ctypes.c_int32),
        ("seed", ctypes.c_uint64),
        ("scale", ctypes.c_float),
        ("n_sink", ctypes.c_int64),
        ("n_recent", ctypes.c_int64),
        ("n_future", ctypes.c_int64),
        ("q_norm", ctypes.c_int32),
        ("q_norm_eps", ctypes.c_double),
        ("apply_rope", ctypes.c_int32),
        ("rotary_dim", ctypes.c_int64),
        ("rope_theta", ctypes.c_double),
        ("position_scale", ctypes.c_double),
    ]


class _Head(ctypes.Structure):
    _fields_ = [
        ("keys", _f32p),
        ("seq_len", ctypes.c_int64),
        ("head_dim", ctypes.c_int64),
        ("current_queries", _f32p),
        ("n_current", ctypes.c_int64),
        ("n_query_heads", ctypes.c_int64),
        ("hidden_mean", _f32p),
        ("hidden_var", _f32p),
        ("d_model", ctypes.c_int64),
        ("w_q", _f32p),
        ("b_q", _f32p),
        ("q_norm_weight", _f32p),
        ("position", ctypes.c_int64),
    ]


class _Stats(ctypes.Structure):
    _fields_ = [
        ("n_kept", ctypes.c_int64),
        ("step_budget", ctypes.c_int64),
        ("nucleus_size", ctypes.c_int64),
        ("vote_size", ctypes.c_int64),
        ("n_synthetic", ctypes.c_int64),
        ("keep_all", ctypes.c_int32),
        ("current_mass", ctypes.c_double),
        ("seconds", ctypes.c_double),
    ]

    def as_dict(self):
        out = {name: getattr(self, name) for name, _ in self._fields_}
        out["keep_all"] = bool(out["keep_all"])
        return out


class _Job(ctypes.Structure):
    _fields_ = [
        ("head", _Head),
        ("kept_out", _i64p),
        ("n_kept", ctypes.c_int64),
        ("stats", _Stats),
        ("status", ctypes.c_int32),
    ]


_CONFIGURED = None


def _lib():
    global _CONFIGURED
    if _CONFIGURED is not None:
        return _CONFIGURED
    lib = load_library()
    i64, f32, f64 = ctypes.c_int64, ctypes.c_float, ctypes.c_double
    opts, head = ctypes.POINTER(_Options), ctypes.POINTER(_Head)
    sigs = {
        "kvc_vote_last_error": (ctypes.c_char_p, []),
        "kvc_vote_default_options": (None, [opts]),
        "kvc_vote_gvote_head": (ctypes.c_int, [head, opts, _i64p, _i64p, ctypes.POINTER(_Stats)]),
        "kvc_vote_gvote_heads": (ctypes.c_int, [ctypes.POINTER(_Job), i64, opts, ctypes.c_int32]),
        "kvc_vote_sample_queries": (ctypes.c_int, [head, opts, _f32p, _i64p]),
        "kvc_vote_nucleus": (ctypes.c_int, [_f32p, i64, _f32p, i64, i64, f32, f64, _i64p, _i64p,
                                            _i64p]),
        "kvc_vote_select_topk": (ctypes.c_int, [_f32p, i64, i64, i64, i64, _i64p]),
        "kvc_vote_adakv": (ctypes.c_int, [_f32p, i64, i64, i64, i64, i64, i64, _i64p, _i64p]),
        "kvc_vote_pyramid_budgets": (ctypes.c_int, [i64, i64, i64, f64, _i64p]),
        "kvc_vote_expected_attention": (ctypes.c_int, [_f32p, _f32p, i64, i64, i64, _f32p, _f32p,
                                                       i64, i64, f64, opts, _f32p]),
        "kvc_vote_fit_kept": (ctypes.c_int, [_f32p, _f32p, i64, i64, i64, _f32p, i64, _i64p, i64,
                                             f32, f64, i64, i64, _f32p, _f32p]),
    }
    configure(lib, sigs)
    _CONFIGURED = lib
    return lib


def _check(status):
    if status != 0:
        message = _lib().kvc_vote_last_error().decode("utf-8", "replace")
        raise VoteError(status, message)






def default_options():
    """The library's default options as a dict (field name -> value)."""
    o = _Options()
    _lib().kvc_vote_default_options(ctypes.byref(o))
    return {name: getattr(o, name) for name, _ in _Options._fields_}


def _make_options(**kw):
    o = _Options()
    _lib().kvc_vote_default_options(ctypes.byref(o))
    fields = dict(_Options._fields_)
    for key, value in kw.items():
        if value is None and key != "q_norm":
            continue
        if key == "step_reduce" and isinstance(value, str):
            value = STEP_REDUCE[value]
        if key == "q_norm" and (value is None or isinstance(value, str)):
            value = Q_NORMS[value]
        if key == "scale":
            value = 0.0 if value is None else float(value)
        if key == "apply_rope":
            value = int(bool(value))
        if key not in fields:
            raise TypeError("unknown vote option %r" % key)
        setattr(o, key, value)
    return o


def _group_queries(Q, d, name):
    """(d,), (g, d) with one query per head, or (g, m, d) -> (g, m, d) float32."""
    Q = np.asarray(Q, dtype=np.float32)
    if Q.ndim == 1:
        Q = Q[None, None]
    elif Q.ndim == 2:
        Q = Q[:, None]
    Q = _f32(Q, 3, name)
    if Q.shape[2] != d:
        raise ValueError("%s has head_dim %d, K has %d" % (name, Q.shape[2], d))
    return Q


def _head(K, Q0, mean, var, Wq, bq, q_norm_weight, position):
    K = _f32(K, 2, "K")
    T, d = K.shape
    Q0 = _group_queries(Q0, d, "Q0")
    g, m0, _ = Q0.shape
    refs = [K, Q0]
    h = _Head()
    h.keys, h.seq_len, h.head_dim = _ptr(K), T, d
    h.current_queries, h.n_current, h.n_query_heads = _ptr(Q0), m0, g
    h.position = -1 if position is None else int(position)
    if mean is not None:
        mean = _f32(mean, 1, "mean")
        var = _f32(var, 1, "var")
        Wq = np.asarray(Wq, dtype=np.float32)
        D = mean.shape[0]
        if var.shape != (D,):
            raise ValueError("var must have shape (%d,)" % D)
        Wq = _f32(Wq.reshape(g, d, D) if Wq.ndim == 2 else Wq, 3, "Wq")
        if Wq.shape != (g, d, D):
            raise ValueError("Wq must have shape (g, head_dim, d_model) = %s" % ((g, d, D),))
        bq = None if bq is None else _f32(np.reshape(bq, (g, d)), 2, "bq")
        qw = None if q_norm_weight is None else _f32(q_norm_weight, 1, "q_norm_weight")
        if qw is not None and qw.shape != (d,):
            raise ValueError("q_norm_weight must have shape (%d,)" % d)
        h.hidden_mean, h.hidden_var, h.d_model = _ptr(mean), _ptr(var), D
        h.w_q, h.b_q, h.q_norm_weight = _ptr(Wq), _ptr(bq), _ptr(qw)
        refs += [mean, var, Wq, bq, qw]
    return h, refs


def gvote_head(K, Q0, mean=None, var=None, Wq=None, bq=None, q_norm_weight=None, position=None,
               p=0.95, n_samples=8, seed=0, scale=None, n_sink=4, n_recent=64, **opts):
    """GVote on one KV head: returns (kept indices (int64, ascending), stats dict).

    K: (T, d) post-RoPE keys. Q0: the current (last real) post-RoPE queries, (g, m0, d),
    (g, d) or (d,). mean, var: (d_model,) diagonal Gaussian of the normalized hidden states
    feeding W_q (None only with n_samples=0). Wq: (g, d, d_model) or (g*d, d_model), the
    group's rows of the query projection; bq: (g, d) or None; q_norm_weight: (d,) or None.
    position: absolute position of the last cached token (default T-1).
    Other options (kvc_vote_options fields): step_reduce ('max'|'mean'), n_future,
    q_norm (None|'qwen'|'gemma'), q_norm_eps, apply_rope, rotary_dim, rope_theta,
    position_scale.
    """
    h, refs = _head(K, Q0, mean, var, Wq, bq, q_norm_weight, position)
    o = _make_options(p=float(p), n_samples=int(n_samples), seed=int(seed), scale=scale,
                      n_sink=int(n_sink), n_recent=int(n_recent), **opts)
    kept = np.empty(max(h.seq_len, 1), np.int64)
    n = ctypes.c_int64()
    stats = _Stats()
    _check(_lib().kvc_vote_gvote_head(ctypes.byref(h), ctypes.byref(o), _ptr(kept, _i64p),
                                      ctypes.byref(n), ctypes.byref(stats)))
    del refs
    return kept[:n.value].copy(), stats.as_dict()


def gvote_heads(heads, num_threads=0, p=0.95, n_samples=8, seed=0, scale=None, n_sink=4,
                n_recent=64, **opts):
    """GVote on many heads on a thread pool (num_threads <= 0: $KVC_NUM_THREADS or all cores).
    heads: list of dicts with keys K, Q0 and optionally mean, var, Wq, bq, q_norm_weight,
    position (as gvote_head). All heads share the options and the seed (one future token's
    hidden state feeds every head of a layer). Returns a list of (kept, stats)."""
    jobs = (_Job * len(heads))()
    refs, outs = [], []
    for i, hd in enumerate(heads):
        h, r = _head(hd["K"], hd["Q0"], hd.get("mean"), hd.get("var"), hd.get("Wq"),
                     hd.get("bq"), hd.get("q_norm_weight"), hd.get("position"))
        kept = np.empty(max(h.seq_len, 1), np.int64)
        refs += r
        outs.append(kept)
        jobs[i].head = h
        jobs[i].kept_out = _ptr(kept, _i64p)
    o = _make_options(p=float(p), n_samples=int(n_samples), seed=int(seed), scale=scale,
                      n_sink=int(n_sink), n_recent=int(n_recent), **opts)
    _check(_lib().kvc_vote_gvote_heads(jobs, len(heads), ctypes.byref(o), int(num_threads)))
    del refs
    return [(kept[:job.n_kept].copy(), job.stats.as_dict()) for job, kept in zip(jobs, outs)]


def sample_queries(mean, var, Wq, bq=None, q_norm_weight=None, position=0, n_samples=8, seed=0,
                   **opts):
    """The synthetic queries GVote votes with: (queries (g, S, d), positions (S,))."""
    Wq = np.asarray(Wq, dtype=np.float32)
    if Wq.ndim != 3:
        raise ValueError("Wq must be (g, head_dim, d_model)")
    g, d, _ = Wq.shape
    K = np.zeros((1, d), np.float32)
    h, refs = _head(K, np.zeros((g, 1, d), np.float32), mean, var, Wq, bq, q_norm_weight,
                    position)
    o = _make_options(n_samples=int(n_samples), seed=int(seed), **opts)
    out = np.empty((g, max(int(n_samples), 1), d), np.float32)
    pos = np.empty(max(int(n_samples), 1), np.int64)
    _check(_lib().kvc_vote_sample_queries(ctypes.byref(h), ctypes.byref(o), _ptr(out),
                                          _ptr(pos, _i64p)))
    del refs
    return out[:, :int(n_samples)], pos[:int(n_samples)]


def nucleus(Q, K, p=0.95, scale=None):
    """Nucleus (top-p) sets of the queries Q (m, d) or (d,) over K (T, d).
    Returns (union of the sets as ascending int64 indices, per-query set sizes (m,))."""
    K = _f32(K, 2, "K")
    Q = np.asarray(Q, dtype=np.float32)
    Q = _f32(Q[None] if Q.ndim == 1 else Q.reshape(-1, Q.shape[-1]), 2, "Q")
    T, d = K.shape
    if Q.shape[1] != d:
        raise ValueError("Q has head_dim %d, K has %d" % (Q.shape[1], d))
    kept = np.empty(max(T, 1), np.int64)
    sizes = np.empty(max(Q.shape[0], 1), np.int64)
    n = ctypes.c_int64()
    _check(_lib().kvc_vote_nucleus(_ptr(Q), Q.shape[0], _ptr(K), T, d,
                                   0.0 if scale is None else float(scale), float(p),
                                   _ptr(kept, _i64p), ctypes.byref(n), _ptr(sizes, _i64p)))
    return kept[:n.value].copy(), sizes[:Q.shape[0]].copy()


def select_topk(scores, budget, n_sink=4, n_recent=64):
    """min(budget, T) indices (ascending): sinks, recent, then the best scores."""
    s = _f32(scores, 1, "scores")
    T = s.shape[0]
    kept = np.empty(max(min(int(budget), T), 1), np.int64)
    _check(_lib().kvc_vote_select_topk(_ptr(s), T, int(budget), int(n_sink), int(n_recent),
                                       _ptr(kept, _i64p)))
    return kept[:min(int(budget), T)].copy()


def adakv(scores, layer_budget, min_per_head=0, n_sink=4, n_recent=64, alpha_safeguard=None):
    """AdaKV allocation of a layer budget over heads from scores (H, T).
    Returns (budgets (H,), list of H ascending index arrays). alpha_safeguard (kvpress style)
    sets min_per_head = floor(alpha * layer_budget / H) when given."""
    s = _f32(scores, 2, "scores")
    H, T = s.shape
    if alpha_safeguard is not None:
        min_per_head = int(np.floor(float(alpha_safeguard) * int(layer_budget) / H))
    budgets = np.empty(H, np.int64)
    kept = np.empty(max(int(layer_budget), 1), np.int64)
    _check(_lib().kvc_vote_adakv(_ptr(s), H, T, int(layer_budget), int(min_per_head),
                                 int(n_sink), int(n_recent), _ptr(budgets, _i64p),
                                 _ptr(kept, _i64p)))
    offsets = np.concatenate([[0], np.cumsum(budgets)])
    return budgets, [kept[offsets[h]:offsets[h + 1]].copy() for h in range(H)]


def pyramid_budgets(n_layers, total, window=0, beta=20.0):
    """PyramidKV layer budgets (n_layers,), summing to total, non-increasing over layers."""
    out = np.empty(int(n_layers) if int(n_layers) > 0 else 1, np.int64)
    _check(_lib().kvc_vote_pyramid_budgets(int(n_layers), int(total), int(window), float(beta),
                                           _ptr(out, _i64p)))
    return out[:int(n_layers)]


def expected_attention_scores(K, mean_q, cov_q=None, V=None, position=None, epsilon=0.0,
                              scale=None, n_sink=4, n_future=512, **opts):
    """Expected Attention (kvpress) scores (T,) of one KV head.

    mean_q: (g, d) or (d,) mean of the group's pre-RoPE queries; cov_q: (g, d, d) or (d, d)
    covariance (None: mean only); V: (T, dv) for the value-norm rescale (None: no rescale).
    RoPE options: apply_rope, rotary_dim, rope_theta, position_scale."""
    K = _f32(K, 2, "K")
    T, d = K.shape
    mu = np.asarray(mean_q, dtype=np.float32)
    mu = _f32(mu[None] if mu.ndim == 1 else mu, 2, "mean_q")
    g = mu.shape[0]
    cov = None
    if cov_q is not None:
        cov = np.asarray(cov_q, dtype=np.float32)
        cov = _f32(cov[None] if cov.ndim == 2 else cov, 3, "cov_q")
        if cov.shape != (g, d, d):
            raise ValueError("cov_q must have shape %s" % ((g, d, d),))
    V = _f32(V, 2, "V")
    dv = d if V is None else V.shape[1]
    o = _make_options(scale=scale, n_sink=int(n_sink), n_future=int(n_future), **opts)
    out = np.empty(max(T, 1), np.float32)
    _check(_lib().kvc_vote_expected_attention(
        _ptr(K), _ptr(V), T, d, dv, _ptr(mu), _ptr(cov), g,
        -1 if position is None else int(position), float(epsilon), ctypes.byref(o), _ptr(out)))
    return out[:T]


def fit_kept(K, V, Q, kept, scale=None, ridge_lambda=1e-3, n_sink=4, n_recent=64):
    """Select+Fit into a kept set: (keys (n, d), values (n, dv)) with the non-sink, non-recent
    kept values refit by ridge least squares against full attention of Q (m, d)."""
    K, V = _f32(K, 2, "K"), _f32(V, 2, "V")
    T, d = K.shape
    Q = None if Q is None else _f32(np.asarray(Q).reshape(-1, d), 2, "Q")
    idx = np.ascontiguousarray(kept, dtype=np.int64)
    n = idx.shape[0]
    ok = np.empty((max(n, 1), d), np.float32)
    ov = np.empty((max(n, 1), V.shape[1]), np.float32)
    _check(_lib().kvc_vote_fit_kept(_ptr(K), _ptr(V), T, d, V.shape[1], _ptr(Q),
                                    0 if Q is None else Q.shape[0], _ptr(idx, _i64p), n,
                                    0.0 if scale is None else float(scale), float(ridge_lambda),
                                    int(n_sink), int(n_recent), _ptr(ok), _ptr(ov)))
    return ok[:n], ov[:n]
