"""ctypes bindings of the voting-budget library (kvc.runtime.vote); skipped without the .so."""
import numpy as np
import pytest

from kvc.runtime import RuntimeLibraryError

try:
    from kvc.runtime import vote as V
    V._lib()
except (RuntimeLibraryError, OSError, AttributeError) as e:  # library not built (or too old)
    pytest.skip("libkvc_runtime.so with the vote library not available: %s" % e,
                allow_module_level=True)


def _problem(T=300, d=16, D=24, g=2, seed=0):
    rng = np.random.default_rng(seed)
    K = (rng.normal(size=(T, d)) * 2.5 * rng.uniform(0.3, 1.5, size=(T, 1))).astype(np.float32)
    Q0 = rng.normal(size=(g, 1, d)).astype(np.float32)
    mu = (0.5 * rng.normal(size=D)).astype(np.float32)
    var = rng.uniform(0.3, 1.5, size=D).astype(np.float32)
    Wq = (rng.normal(size=(g, d, D)) / np.sqrt(D)).astype(np.float32)
    return K, Q0, mu, var, Wq


def _softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def test_nucleus_matches_numpy():
    K, Q0, *_ = _problem()
    q = Q0[0, 0]
    for p in (0.5, 0.9, 0.99):
        kept, sizes = V.nucleus(q, K, p=p)
        w = _softmax((K.astype(np.float64) @ q) / 4.0)
        order = np.argsort(-w, kind="stable")
        k = int(np.searchsorted(np.cumsum(w[order]), p - 1e-7) + 1)
        assert sizes[0] == len(kept) == k
        assert np.array_equal(kept, np.sort(order[:k]))


def test_gvote_union_determinism_and_stats():
    K, Q0, mu, var, Wq = _problem()
    kept, st = V.gvote_head(K, Q0, mu, var, Wq, p=0.9, n_samples=8, seed=3, n_sink=2,
                            n_recent=4)
    again, _ = V.gvote_head(K, Q0, mu, var, Wq, p=0.9, n_samples=8, seed=3, n_sink=2,
                            n_recent=4)
    assert np.array_equal(kept, again)
    assert st["n_kept"] == len(kept) < K.shape[0]
    assert np.all(np.diff(kept) > 0)
    c0, sizes = V.nucleus(Q0.reshape(-1, 16), K, p=0.9)
    assert st["step_budget"] == sizes.max()
    must = set(c0) | {0, 1} | set(range(K.shape[0] - 4, K.shape[0]))
    assert must <= set(kept)
    # The votes, recomputed from the binding's synthetic queries.
    Qs, pos = V.sample_queries(mu, var, Wq, position=K.shape[0] - 1, n_samples=8, seed=3)
    assert Qs.shape == (2, 8, 16) and pos.min() >= K.shape[0]
    logits = Qs.reshape(-1, 16).astype(np.float64) @ K.T.astype(np.float64)
    votes = set()
    for row in logits:
        votes |= set(np.argsort(-row, kind="stable")[:st["step_budget"]])
    assert set(kept) == must | votes
    # More samples (same seed) keep a superset; S = 0 keeps the nucleus, sinks, recent.
    more, _ = V.gvote_head(K, Q0, mu, var, Wq, p=0.9, n_samples=16, seed=3, n_sink=2,
                           n_recent=4)
    assert set(kept) <= set(more)
    only, st0 = V.gvote_head(K, Q0, p=0.9, n_samples=0, n_sink=2, n_recent=4)
    assert set(only) == must and st0["vote_size"] == 0


def test_gvote_errors_carry_the_library_message():
    K, Q0, mu, var, Wq = _problem()
    with pytest.raises(V.VoteError, match="p must be in"):
        V.gvote_head(K, Q0, mu, var, Wq, p=1.5)
    K[3, 2] = np.nan
    with pytest.raises(V.VoteError, match="NaN or Inf") as err:
        V.gvote_head(K, Q0, mu, var, Wq)
    assert err.value.code == 2
    empty, st = V.gvote_head(np.zeros((0, 16)), Q0, mu, var, Wq)
    assert len(empty) == 0 and st["n_kept"] == 0


def test_adakv_pyramid_topk():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(4, 50)).astype(np.float32)
    scores[2] += 5
    budgets, kept = V.adakv(scores, 80, min_per_head=10, n_sink=1, n_recent=2)
    assert budgets.sum() == 80 and budgets.min() >= 10 and budgets[2] == budgets.max()
    assert all(len(k) == b and np.all(np.diff(k) > 0) for k, b in zip(kept, budgets))
    b = V.pyramid_budgets(18, 18 * 100, window=8, beta=20)
    assert b.sum() == 1800 and np.all(np.diff(b) <= 0) and b[0] > b[-1]
    top = V.select_topk(np.arange(20, dtype=np.float32)[::-1], 6, n_sink=1, n_recent=1)
    assert list(top) == [0, 1, 2, 3, 4, 19]
    with pytest.raises(V.VoteError, match="smaller than n_sink"):
        V.select_topk(np.zeros(20), 1, n_sink=1, n_recent=1)


def test_expected_attention_closed_form_without_rope():
    rng = np.random.default_rng(2)
    T, d = 40, 8
    K = rng.normal(size=(T, d)).astype(np.float32)
    Vv = rng.normal(size=(T, 3)).astype(np.float32)
    mu = rng.normal(size=(2, d)).astype(np.float32)
    A = rng.normal(size=(2, d, d)) * 0.3
    cov = (A @ A.transpose(0, 2, 1)).astype(np.float32)
    s = V.expected_attention_scores(K, mu, cov, V=Vv, apply_rope=False, n_sink=4)
    Kd = K[4:].astype(np.float64)
    logits = (Kd @ mu.T.astype(np.float64)).T / np.sqrt(d) + \
        np.einsum("ti,hij,tj->ht", Kd, cov.astype(np.float64), Kd) / (2 * d)
    ref = _softmax(logits).mean(axis=0) * np.linalg.norm(Vv[4:], axis=1)
    np.testing.assert_allclose(s[4:], ref, rtol=1e-4)
    assert np.all(s[:4] == s[4:].max())


def test_fit_kept_reduces_the_error_over_eviction():
    rng = np.random.default_rng(3)
    T, d, dv, m = 200, 16, 8, 64
    K = (rng.normal(size=(T, d)) * 1.5).astype(np.float32)
    Vv = rng.normal(size=(T, dv)).astype(np.float32)
    Q = (rng.normal(size=(m, d)) + 0.2).astype(np.float32)
    kept = np.sort(rng.choice(np.arange(4, T - 8), 40, replace=False))
    kept = np.concatenate([np.arange(4), kept, np.arange(T - 8, T)])
    k1, v1 = V.fit_kept(K, Vv, Q, kept, n_sink=4, n_recent=8)
    k0, v0 = V.fit_kept(K, Vv, None, kept, n_sink=4, n_recent=8)
    assert np.array_equal(k1, K[kept]) and np.array_equal(v0, Vv[kept])
    assert np.array_equal(v1[:4], Vv[:4]) and np.array_equal(v1[-8:], Vv[-8:])

    def err(Kc, Vc):
        y = _softmax(Q @ K.T / 4.0) @ Vv
        o = _softmax(Q @ Kc.T / 4.0) @ Vc
        return np.sum((o - y) ** 2)

    assert err(k1, v1) < 0.8 * err(k0, v0)


def test_gvote_heads_batch_equals_single_calls():
    heads = []
    for seed in range(3):
        K, Q0, mu, var, Wq = _problem(T=200 + 50 * seed, seed=seed)
        heads.append(dict(K=K, Q0=Q0, mean=mu, var=var, Wq=Wq))
    results = V.gvote_heads(heads, num_threads=2, p=0.9, seed=4, n_sink=2, n_recent=4)
    for hd, (kept, st) in zip(heads, results):
        single, _ = V.gvote_head(hd["K"], hd["Q0"], hd["mean"], hd["var"], hd["Wq"], p=0.9,
                                 seed=4, n_sink=2, n_recent=4)
        assert np.array_equal(kept, single) and st["n_kept"] == len(kept)
    heads[2]["K"] = heads[2]["K"].copy()
    heads[2]["K"][0, 0] = np.inf
    with pytest.raises(V.VoteError, match="^job 2: "):
        V.gvote_heads(heads, num_threads=2)
