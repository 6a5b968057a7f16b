"""numpy reference for kvc.attention, written from the op's definition (docs/dialect.md).

Independent of the compiler: plain float64 numpy, explicit loops over the GQA groups. Used by the
execution tests to check what kvc-cpu-pipeline computes.
"""
import numpy as np


def attention(q, k, v, mask=None, scale=None, causal=False, softcap=None, window=None):
    """softmax(q·kᵀ·scale [softcap] [mask] [causal/window]) · v in float64.

    q: [B, Hq, Sq, D]; k: [B, Hkv, Skv, D]; v: [B, Hkv, Skv, Dv]; mask broadcastable to
    [B, Hq, Sq, Skv], bool (True = attend) or float (additive). Rows with every score -inf give 0.
    """
    q = np.asarray(q, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    b, hq, sq, d = q.shape
    _, hkv, skv, _ = k.shape
    assert hq % hkv == 0
    group = hq // hkv
    if scale is None:
        scale = 1.0 / np.sqrt(d)
    k_rep = np.repeat(k, group, axis=1)
    v_rep = np.repeat(v, group, axis=1)
    s = np.einsum("bhid,bhjd->bhij", q, k_rep) * scale
    if softcap is not None:
        s = softcap * np.tanh(s / softcap)
    if mask is not None:
        m = np.broadcast_to(np.asarray(mask), (b, hq, sq, skv))
        if m.dtype == np.bool_:
            s = np.where(m, s, -np.inf)
        else:
            s = s + m.astype(np.float64)
    if causal or window is not None:
        pos = np.arange(sq)[:, None] + (skv - sq)
        dist = pos - np.arange(skv)[None, :]
        keep = np.ones((sq, skv), dtype=bool)
        if causal:
            keep &= dist >= 0
        if window is not None:
            keep &= dist < window
        s = np.where(keep[None, None], s, -np.inf)
    row_max = s.max(axis=-1, keepdims=True)
    finite = np.isfinite(row_max)
    e = np.where(finite, np.exp(s - np.where(finite, row_max, 0.0)), 0.0)
    denom = e.sum(axis=-1, keepdims=True)
    p = np.divide(e, denom, out=np.zeros_like(e), where=denom > 0)
    return np.einsum("bhij,bhjd->bhid", p, v_rep)
