"""Training queries for distillation-style methods and small attention helpers.

Convention: Q, K as exported by kvc.models (post-RoPE, Q scaled so that attention is
softmax(Q K^T / sqrt(d)) V).
"""
from __future__ import annotations

import numpy as np


def attention_output(Q: np.ndarray, K: np.ndarray, V: np.ndarray) -> np.ndarray:
    """softmax(Q K^T / sqrt(d)) V for Q [..., m, d], K [t, d], V [t, dv] (float64 accumulation)."""
    s = (np.asarray(Q, np.float64) @ np.asarray(K, np.float64).T) / np.sqrt(K.shape[-1])
    s -= s.max(-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(-1, keepdims=True)
    return p @ np.asarray(V, np.float64)


def attention_lse(Q: np.ndarray, K: np.ndarray) -> np.ndarray:
    s = (np.asarray(Q, np.float64) @ np.asarray(K, np.float64).T) / np.sqrt(K.shape[-1])
    m = s.max(-1, keepdims=True)
    return (m + np.log(np.exp(s - m).sum(-1, keepdims=True)))[..., 0]


def synthetic_queries(layer, n: int) -> np.ndarray:
    """Synthetic future queries [Hq, n, d] (methods.md §1.2, third-party KVSculpt recipe).

    The layer's stored queries are de-rotated (inverse RoPE at their own positions), n of
    them are picked uniformly over the stored range, and they are re-rotated at the future
    positions p+1, ..., p+n, where p is the last stored position.
    """
    if n <= 0:
        return np.zeros((layer.Q.shape[0], 0, layer.Q.shape[2]), np.float32)
    ts = layer.Q.shape[1]
    pick = np.unique(np.linspace(0, ts - 1, num=min(n, ts)).round().astype(int))
    raw = layer.rotate(layer.Q[:, pick], layer.positions[pick], inverse=True)
    fut = layer.positions[-1] + 1 + np.arange(len(pick))
    return layer.rotate(raw, fut)


def training_queries(layer, n_obs: int = 64, n_synthetic: int = 128) -> np.ndarray:
    """[Hq, m, d]: the last n_obs real queries (observation window) + n_synthetic synthetic."""
    obs = layer.Q[:, -n_obs:] if n_obs > 0 else layer.Q[:, :0]
    syn = synthetic_queries(layer, n_synthetic)
    return np.ascontiguousarray(np.concatenate([obs, syn], axis=1), dtype=np.float32)
