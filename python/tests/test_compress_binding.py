"""ctypes bindings of the compression library (kvc.runtime.compress); skipped without the .so."""
import numpy as np
import pytest

from kvc.runtime import RuntimeLibraryError

try:
    from kvc.runtime import compress as C
    C._lib()
except (RuntimeLibraryError, OSError, AttributeError) as e:  # library not built (or too old)
    pytest.skip("libkvc_runtime.so with the compression library not available: %s" % e,
                allow_module_level=True)


def _head(T=200, d=16, dv=12, m=48, seed=0):
    rng = np.random.default_rng(seed)
    K = rng.normal(size=(T, d)).astype(np.float32) * rng.uniform(0.5, 2.5, size=(T, 1)).astype(np.float32)
    V = rng.normal(size=(T, dv)).astype(np.float32)
    Q = (rng.normal(size=(m, d)) + 0.3).astype(np.float32)
    return K, V, Q


def _ref_attention(Q, K, V, scale):
    s = (Q.astype(np.float64) @ K.T.astype(np.float64)) * scale
    mx = s.max(axis=1, keepdims=True)
    p = np.exp(s - mx)
    z = p.sum(axis=1, keepdims=True)
    return (p / z) @ V, (mx + np.log(z))[:, 0]


def test_attention_matches_numpy_with_extra_pairs():
    K, V, Q = _head()
    out, lse = C.attention(Q, K[:150], V[:150], K_extra=K[150:], V_extra=V[150:])
    ref_out, ref_lse = _ref_attention(Q, K, V, 1 / np.sqrt(K.shape[1]))
    np.testing.assert_allclose(out, ref_out, atol=1e-5)
    np.testing.assert_allclose(lse, ref_lse, atol=1e-4)


def test_sculpt_improves_on_select_fit_and_reports_losses():
    K, V, Q = _head()
    _, _, idx_sf, st_sf = C.compress_head(K, V, Q, 60, method="select-fit", n_recent=16)
    Ck, Cv, none, st = C.compress_head(K, V, Q, 60, method="sculpt", n_recent=16)
    assert none is None
    idx = st["indices"]
    assert Ck.shape == (60, 16) and Cv.shape == (60, 12)
    assert list(idx[:4]) == [0, 1, 2, 3] and (idx[4:44] == -1).all() and idx[-1] == 199
    assert (np.diff(idx_sf) > 0).all()
    assert st["initial_loss"] == pytest.approx(st_sf["final_loss"], rel=1e-9)
    assert st["final_loss"] < 0.8 * st["initial_loss"]
    # The compressed cache reproduces the training outputs better than Select+Fit.
    Y, _ = C.attention(Q, K, V)
    O, _ = C.attention(Q, Ck, Cv)
    assert np.sum((O - Y) ** 2) / np.sum(Y ** 2) == pytest.approx(
        st["final_rel_mse"], rel=1e-3)


def test_gqa_queries_as_3d_and_snapkv():
    K, V, Q = _head(m=48)
    Ck, Cv, idx, _ = C.compress_head(K, V, Q.reshape(4, 12, 16), 40, method="snapkv",
                                     n_recent=16, snapkv_window=8, snapkv_pool="max")
    assert len(idx) == 40 and (idx >= 0).all() and (np.diff(idx) > 0).all()
    np.testing.assert_array_equal(Ck, K[idx])
    with pytest.raises(C.CompressError) as err:
        C.compress_head(K, V, Q, 40, method="snapkv", n_recent=16, n_query_heads=5)
    assert err.value.code == 1 and "n_query_heads" in str(err.value)


def test_errors_carry_library_messages():
    K, V, Q = _head()
    with pytest.raises(C.CompressError, match="n_sink \\+ n_recent"):
        C.compress_head(K, V, Q, 10, method="h2o")
    bad = K.copy()
    bad[3, 3] = np.nan
    with pytest.raises(C.CompressError, match="keys contain NaN"):
        C.compress_head(bad, V, Q, 100)
    with pytest.raises(C.CompressError, match="needs queries"):
        C.compress_head(K, V, None, 100, method="sculpt")
    with pytest.raises(TypeError):
        C.compress_head(K, V, Q, 100, not_an_option=1)


def test_exact_copy_fallback_and_streaming_without_queries():
    K, V, Q = _head(T=50)
    Ck, Cv, idx, st = C.compress_head(K, V, Q, 80)
    assert st["exact_copy"] and Ck.shape[0] == 50
    np.testing.assert_array_equal(Ck, K)
    _, _, idx, _ = C.compress_head(K, V, None, 30, method="streaming", n_recent=8)
    assert list(idx) == [0, 1, 2, 3] + list(range(24, 50))


def test_batch_and_pilot_budgets():
    heads = [_head(T=T, seed=i) for i, T in enumerate([200, 120, 300])]
    budgets = [80, 120, 100]
    results = C.compress_heads([h + (b,) for h, b in zip(heads, budgets)], method="sculpt",
                               num_threads=2, sculpt_rounds=2, n_recent=16)
    assert [r[0].shape[0] for r in results] == budgets
    diff, alloc, spread = C.pilot(heads, 300, n_recent=16, num_threads=2)
    assert alloc.sum() == 300 and (alloc >= 20).all() and (alloc <= [200, 120, 300]).all()
    assert spread == pytest.approx(diff.max() / diff.min())
    b, s = C.allocate_budgets([1.0, 4.0, 1.0], [1000, 1000, 2000], 1000, alpha=0.5)
    assert list(b) == [200, 400, 400] and s == 4.0


def test_synthetic_queries_match_numpy_rope():
    rng = np.random.default_rng(3)
    d, n, theta = 16, 8, 10000.0
    inv = theta ** (-np.arange(0, d, 2) / d)

    def rope(x, p):
        a = p * inv
        x1, x2 = x[: d // 2], x[d // 2:]
        return np.concatenate([x1 * np.cos(a) - x2 * np.sin(a), x2 * np.cos(a) + x1 * np.sin(a)])

    raw = rng.normal(size=(n, d))
    pos = np.arange(100, 100 + n)
    Q = np.stack([rope(raw[i], pos[i]) for i in range(n)]).astype(np.float32)
    out, out_pos = C.synthetic_queries(Q, pos, 4, theta)
    assert list(out_pos) == [108, 109, 110, 111]
    expected = np.stack([rope(raw[2 * k], 108 + k) for k in range(4)])
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_fit_values_recovers_planted_values():
    rng = np.random.default_rng(5)
    Q = rng.normal(size=(200, 8)).astype(np.float32)
    Ck = (1.5 * rng.normal(size=(10, 8))).astype(np.float32)
    Cv = rng.normal(size=(10, 4)).astype(np.float32)
    Y, _ = C.attention(Q, Ck, Cv)
    np.testing.assert_allclose(C.fit_values(Q, Ck, Y, ridge_lambda=1e-12), Cv, atol=1e-4)


def test_option_aliases_and_third_party_schedule():
    o = C._make_options("sculpt", kernel=7, ridge=1e-2, outer_steps=10, lbfgs_iters=4,
                        value_every=5, lr=0.5, snapkv_pool="max")
    assert (o.snapkv_kernel, o.ridge_lambda, o.sculpt_rounds, o.sculpt_key_iters) == (7, 1e-2, 2, 20)
    assert o.snapkv_pool == 0 and o.method == 4
    assert C.backend().startswith(("openblas ", "eigen"))
    d = C.default_options()
    assert d["n_sink"] == 4 and d["n_recent"] == 64 and d["lse_weight"] == 1.0


def _out_err(Q, K, V, Kc, Vc):
    s = 1 / np.sqrt(K.shape[1])

    def att(Kx, Vx):
        z = (Q.astype(np.float64) @ Kx.T.astype(np.float64)) * s
        p = np.exp(z - z.max(1, keepdims=True))
        return (p / p.sum(1, keepdims=True)) @ Vx
    return float(np.sum((att(Kc, Vc) - att(K, V)) ** 2))


def test_from_kept_on_own_selection_equals_compress_head():
    K, V, Q = _head(T=220, seed=5)
    _, _, own, _ = C.compress_head(K, V, Q, 60, method="select-fit", n_sink=4, n_recent=16)
    ref_k, ref_v, _, ref_st = C.compress_head(K, V, Q, 60, method="sculpt", n_sink=4, n_recent=16,
                                              sculpt_rounds=2)
    k, v, idx, st = C.compress_head_from_kept(K, V, Q, own, method="sculpt", n_sink=4, n_recent=16,
                                              sculpt_rounds=2)
    assert np.array_equal(k, ref_k) and np.array_equal(v, ref_v)
    assert np.array_equal(idx, ref_st["indices"]) and st["final_loss"] == ref_st["final_loss"]


def test_from_kept_distils_a_scattered_set():
    pytest.importorskip("kvc.runtime.vote")
    from kvc.runtime import vote as Vt
    K, V, Q = _head(T=200, seed=6)
    kept = np.concatenate([np.arange(4), np.arange(9, 184, 4), np.arange(184, 200)])
    fk, fv, fidx, fst = C.compress_head_from_kept(K, V, Q, kept, method="select-fit", n_sink=4,
                                                  n_recent=16)
    # Same ridge solve as the vote library's Select+Fit into a kept set.
    vk, vv = Vt.fit_kept(K, V, Q, kept, n_sink=4, n_recent=16)
    assert np.array_equal(fk, vk) and np.array_equal(fidx, kept)
    np.testing.assert_allclose(fv, vv, rtol=1e-5, atol=1e-6)
    sk, sv, sidx, sst = C.compress_head_from_kept(K, V, Q, kept, method="sculpt", n_sink=4,
                                                  n_recent=16, sculpt_rounds=3)
    retained = (kept < 4) | (kept >= 184)
    assert np.array_equal(sidx[retained], kept[retained]) and np.all(sidx[~retained] == -1)
    assert np.array_equal(sv[retained], V[kept[retained]])
    e_evict = _out_err(Q, K, V, K[kept], V[kept])
    e_fit, e_sculpt = _out_err(Q, K, V, fk, fv), _out_err(Q, K, V, sk, sv)
    assert e_fit < 0.8 * e_evict and e_sculpt < 0.9 * e_fit
    assert sst["final_loss"] <= sst["initial_loss"] and sst["initial_loss"] == pytest.approx(fst["final_loss"])
    with pytest.raises(C.CompressError, match="ascending"):
        C.compress_head_from_kept(K, V, Q, kept[::-1], method="sculpt")
    with pytest.raises(C.CompressError, match="SELECT_FIT or SCULPT"):
        C.compress_head_from_kept(K, V, Q, kept, method="snapkv")
