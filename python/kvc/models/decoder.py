"""Float32 numpy reference decoder (Gemma 3; Llama / Qwen2 from Hugging Face weights).

Forward pass (Gemma 3, as Hugging Face Gemma3ForCausalLM and llama.cpp's gemma3 graph):

  h = embed[x] * sqrt(hidden)
  per layer:  a = RMSNorm(h; attn_norm)
              q, k, v = a Wq, a Wk, a Wv ; q, k = RMSNorm_head(q; q_norm), RMSNorm_head(k; k_norm)
              q, k = RoPE(q, k; base = 10k (local) / 1M (global), NeoX half-split layout)
              o = softmax(attn_scale * q k^T + causal [+ sliding-window] mask) v     (GQA)
              h = h + RMSNorm(o Wo; post_attn_norm)
              h = h + RMSNorm(W_down(gelu_tanh(a' W_gate) * (a' W_up)); post_ffn_norm),
                  a' = RMSNorm(h; ffn_norm)
  logits = RMSNorm(h; final_norm) embed^T   [then softcap if configured]

KV-cache interface used by the evaluation harness
-------------------------------------------------
``prefill`` returns, per layer, a :class:`LayerKV` with the *stored* cache of that layer:
  K [Hkv, Ts, d]   post-QK-norm, post-RoPE keys (exactly what attention uses)
  V [Hkv, Ts, dv]
  Q [Hq,  Ts, d]   post-QK-norm, post-RoPE queries of the same positions, multiplied by
                   attn_scale * sqrt(d) so that attention is softmax(Q K^T / sqrt(d)) V
                   (for Gemma 3 270M the factor is exactly 1)
  positions [Ts]   absolute positions of the stored pairs
Global layers store all T context tokens.  Local (sliding-window) layers store the last
min(T, window - N) context tokens, N = ``prefill(..., continuation=N)`` (rule below).

``continue_`` teacher-forces N new tokens at absolute positions start_pos.. against a
*replacement cache*: per layer a list over KV heads of (K_c [t_h, d], V_c [t_h, dv]) with
ragged t_h and RoPE baked in.  New tokens are appended after the replacement entries and
attend to all of them (no positions are needed for the replacement entries).  Among the new
tokens attention is causal, and in local layers additionally limited to the window.

Local-layer rule (default, "common-window"): when N tokens will be teacher-forced, a local
layer stores the last (window - N) context tokens (``prefill(..., continuation=N)``): exactly
the context tokens that *every* continuation token sees in plain Gemma 3.  Compression
applies to that stored block; all of its (replacement) entries stay visible to all new
tokens, which slide among themselves.  The full-cache reference uses the same rule, so r = 1
reproduces it exactly.  The reference equals plain Gemma 3 whenever T + N <= window;
otherwise continuation token n sees N - 1 - n fewer of the oldest context tokens than plain
Gemma 3 (never more than the window: letting the stored block exceed the window, e.g.
storing the last ``window`` tokens and keeping them visible, takes the local layers out of
their trained range and was measured to drive KL(plain || reference) to ~2 nats by
n = 100).  Alternative ("exact"): entries given with positions slide exactly (see
``continue_``); the harness uses this to leave local layers uncompressed.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .config import ModelConfig

F32 = np.float32


@dataclass
class LayerKV:
    K: np.ndarray            # [Hkv, Ts, d]
    V: np.ndarray            # [Hkv, Ts, dv]
    Q: np.ndarray            # [Hq, Ts, d]  (scaled: softmax(Q K^T / sqrt(d)))
    positions: np.ndarray    # [Ts] int64
    window: Optional[int]    # sliding window of the layer, None for global layers
    rope_theta: float = 0.0
    rope_pos_scale: float = 1.0
    inv_freq: Optional[np.ndarray] = None   # [d/2] RoPE inverse frequencies of the layer
    rope_layout: str = "neox"

    def rotate(self, x: np.ndarray, positions: np.ndarray, inverse: bool = False) -> np.ndarray:
        """Applies (or undoes) this layer's RoPE to x [..., n, d] at absolute positions [n]."""
        return rope_rotate(x, positions, self.inv_freq, self.rope_pos_scale, self.rope_layout, inverse)

    @property
    def is_local(self) -> bool:
        return self.window is not None

    def as_heads(self, with_positions: bool = False) -> list:
        """The uncompressed cache in ``continue_``'s format: [(K_h, V_h)] or [(K_h, V_h, positions)]."""
        if with_positions:
            return [(self.K[h], self.V[h], self.positions) for h in range(self.K.shape[0])]
        return [(self.K[h], self.V[h]) for h in range(self.K.shape[0])]


@dataclass
class PrefillResult:
    tokens: np.ndarray
    layers: List[LayerKV]
    logits: Optional[np.ndarray]      # [n, vocab] for the requested positions
    logit_positions: Optional[np.ndarray]
    hidden: Optional[np.ndarray] = None


@dataclass
class ContinuationResult:
    logits: np.ndarray                # [N, vocab]
    queries: Optional[List[np.ndarray]] = None   # per layer [Hq, N, d] (scaled like LayerKV.Q)
    keys: Optional[List[np.ndarray]] = None      # per layer [Hkv, N, d]
    values: Optional[List[np.ndarray]] = None    # per layer [Hkv, N, dv]


def rope_rotate(x: np.ndarray, positions, inv_freq: np.ndarray, pos_scale: float = 1.0,
                layout: str = "neox", inverse: bool = False) -> np.ndarray:
    """RoPE rotation of x [..., n, d] at absolute positions [n]; inverse=True undoes it."""
    ang = (np.asarray(positions, dtype=np.float64) * pos_scale)[:, None] * np.asarray(inv_freq)[None, :]
    cos, sin = np.cos(ang).astype(F32), np.sin(ang).astype(F32)
    if inverse:
        sin = -sin
    h = x.shape[-1] // 2
    if layout == "neox":
        x1, x2 = x[..., :h], x[..., h:]
        return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(F32)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = np.empty(x.shape, dtype=F32)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x2 * cos + x1 * sin
    return out


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    x = x.astype(F32, copy=False)
    ms = np.mean(np.square(x), axis=-1, keepdims=True, dtype=F32)
    return (x * (1.0 / np.sqrt(ms + F32(eps)))).astype(F32) * w


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    c = F32(math.sqrt(2.0 / math.pi))
    return F32(0.5) * x * (F32(1.0) + np.tanh(c * (x + F32(0.044715) * x * x * x)))


def silu(x: np.ndarray) -> np.ndarray:
    return x / (F32(1.0) + np.exp(-x))


def softmax_lastdim(s: np.ndarray) -> np.ndarray:
    m = np.max(s, axis=-1, keepdims=True)
    e = np.exp(s - m)
    return e / np.sum(e, axis=-1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64 (rows are few; vocab is large)."""
    x = np.asarray(logits, dtype=np.float64)
    m = x.max(-1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))


def token_nll(logits: np.ndarray, targets: np.ndarray, chunk: int = 128) -> np.ndarray:
    """Negative log-likelihood (nats) of targets[i] under logits[i]."""
    out = np.empty(len(targets), dtype=np.float64)
    for s in range(0, len(targets), chunk):
        lp = log_softmax(logits[s:s + chunk])
        out[s:s + chunk] = -lp[np.arange(lp.shape[0]), np.asarray(targets[s:s + chunk])]
    return out


class DecoderModel:
    def __init__(self, cfg: ModelConfig, weights: dict, tokenizer=None):
        self.cfg = cfg
        self.W = weights
        self.tokenizer = tokenizer
        self._embT = None

    # ------------------------------------------------------------------ helpers
    def inv_freq(self, layer: int) -> np.ndarray:
        c = self.cfg
        if c.rope_inv_freq is not None and c.rope_inv_freq[layer] is not None:
            return np.asarray(c.rope_inv_freq[layer], dtype=np.float64)
        d = c.head_dim
        return 1.0 / (c.rope_theta[layer] ** (np.arange(0, d, 2, dtype=np.float64) / d))

    def rope_tables(self, layer: int, positions: np.ndarray):
        ang = (np.asarray(positions, dtype=np.float64) * self.cfg.rope_pos_scale[layer])[:, None] \
            * self.inv_freq(layer)[None, :]
        return np.cos(ang).astype(F32), np.sin(ang).astype(F32)

    def apply_rope(self, x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
        """x [..., T, d]; cos/sin [T, d/2]."""
        h = x.shape[-1] // 2
        if self.cfg.rope_layout == "neox":
            x1, x2 = x[..., :h], x[..., h:]
            return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(F32)
        x1, x2 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x1 * cos - x2 * sin
        out[..., 1::2] = x2 * cos + x1 * sin
        return out

    def _qkv(self, il: int, a: np.ndarray, positions: np.ndarray):
        """a [T, hidden] normed input -> q [Hq,T,d], k [Hkv,T,d], v [Hkv,T,dv] (q unscaled)."""
        c, L = self.cfg, self.W["layers"][il]
        T = a.shape[0]
        q = a @ L["wq"]
        k = a @ L["wk"]
        v = a @ L["wv"]
        if c.qkv_bias:
            q = q + L["bq"]
            k = k + L["bk"]
            v = v + L["bv"]
        q = q.reshape(T, c.n_heads, c.head_dim).transpose(1, 0, 2)
        k = k.reshape(T, c.n_kv_heads, c.head_dim).transpose(1, 0, 2)
        v = np.ascontiguousarray(v.reshape(T, c.n_kv_heads, c.v_head_dim).transpose(1, 0, 2))
        if c.qk_norm:
            q = rms_norm(q, L["q_norm"], c.norm_eps)
            k = rms_norm(k, L["k_norm"], c.norm_eps)
        cos, sin = self.rope_tables(il, positions)
        q = self.apply_rope(q, cos, sin)
        k = self.apply_rope(k, cos, sin)
        return q, k, v

    def _scores(self, q: np.ndarray, k: np.ndarray) -> np.ndarray:
        s = (q @ np.swapaxes(k, -1, -2)) * F32(self.cfg.attn_scale)
        if self.cfg.attn_softcap:
            cap = F32(self.cfg.attn_softcap)
            s = np.tanh(s / cap) * cap
        return s

    def _mlp_block(self, il: int, h: np.ndarray) -> np.ndarray:
        c, L = self.cfg, self.W["layers"][il]
        a = rms_norm(h, L["ffn_norm"], c.norm_eps)
        g = a @ L["w_gate"]
        u = a @ L["w_up"]
        act = gelu_tanh(g) if c.activation == "gelu_tanh" else silu(g)
        m = (act * u) @ L["w_down"]
        if c.sandwich_norm:
            m = rms_norm(m, L["post_ffn_norm"], c.norm_eps)
        return h + m

    def _attn_out(self, il: int, h: np.ndarray, o: np.ndarray) -> np.ndarray:
        """o [Hq, T, dv] -> residual update."""
        c, L = self.cfg, self.W["layers"][il]
        T = o.shape[1]
        y = o.transpose(1, 0, 2).reshape(T, c.n_heads * c.v_head_dim) @ L["wo"]
        if c.qkv_bias and "bo" in L:
            y = y + L["bo"]
        if c.sandwich_norm:
            y = rms_norm(y, L["post_attn_norm"], c.norm_eps)
        return h + y

    def embed(self, tokens: Sequence[int]) -> np.ndarray:
        h = self.W["embed"][np.asarray(tokens, dtype=np.int64)].astype(F32)
        if self.cfg.embed_scale != 1.0:
            h = h * F32(self.cfg.embed_scale)
        return h

    def logits_from_hidden(self, h: np.ndarray, chunk: int = 256) -> np.ndarray:
        """h [n, hidden] (pre final norm) -> logits [n, vocab] float32."""
        c = self.cfg
        x = rms_norm(h, self.W["final_norm"], c.norm_eps)
        head = self.W.get("lm_head", self.W["embed"])
        out = np.empty((x.shape[0], head.shape[0]), dtype=F32)
        for s in range(0, x.shape[0], chunk):
            out[s:s + chunk] = x[s:s + chunk] @ head.T
        if c.final_softcap:
            cap = F32(c.final_softcap)
            out = np.tanh(out / cap) * cap
        return out

    def query_export_factor(self) -> float:
        """Q is exported multiplied by this so that attention == softmax(Q K^T / sqrt(d))."""
        return self.cfg.attn_scale * math.sqrt(self.cfg.head_dim)

    # ------------------------------------------------------------------ prefill
    def prefill(self, tokens: Sequence[int], logits: str = "last", start_pos: int = 0,
                keep_cache: bool = True, keep_hidden: bool = False,
                continuation: int = 0) -> PrefillResult:
        """Exact Gemma 3 forward over ``tokens`` at positions start_pos...

        logits: "last" (only the last position), "all", "none", or an int i (positions i..T-1).
        continuation: the number N of tokens that will be teacher-forced after this prefill.
          A local layer stores the last (window - N) context tokens: exactly the context
          tokens that all N continuation tokens see in the plain model (see module doc).
          N = 0 stores the last ``window`` tokens (the plain model's sliding-window cache).
        """
        c = self.cfg
        tokens = np.asarray(tokens, dtype=np.int64)
        T = len(tokens)
        pos = np.arange(start_pos, start_pos + T, dtype=np.int64)
        h = self.embed(tokens)
        causal = np.tril(np.ones((T, T), dtype=bool))
        ii, jj = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
        layers: List[LayerKV] = []
        qf = F32(self.query_export_factor())
        for il in range(c.n_layers):
            L = self.W["layers"][il]
            a = rms_norm(h, L["attn_norm"], c.norm_eps)
            q, k, v = self._qkv(il, a, pos)
            win = c.sliding_window[il]
            mask = causal if win is None else (causal & ((ii - jj) < win))
            neg = np.where(mask, F32(0.0), F32(-np.inf)).astype(F32)
            o = np.empty((c.n_heads, T, c.v_head_dim), dtype=F32)
            g = c.group
            for hk in range(c.n_kv_heads):
                s = self._scores(q[hk * g:(hk + 1) * g], k[hk]) + neg
                o[hk * g:(hk + 1) * g] = softmax_lastdim(s) @ v[hk]
            h = self._attn_out(il, h, o)
            h = self._mlp_block(il, h)
            if keep_cache:
                if win is not None and continuation >= win:
                    raise ValueError(f"continuation {continuation} must be < sliding window {win}")
                ts = T if win is None else min(T, win - continuation)
                sl = slice(T - ts, T)
                layers.append(LayerKV(
                    K=np.ascontiguousarray(k[:, sl]), V=np.ascontiguousarray(v[:, sl]),
                    Q=np.ascontiguousarray(q[:, sl] * qf), positions=pos[sl].copy(), window=win,
                    rope_theta=c.rope_theta[il], rope_pos_scale=c.rope_pos_scale[il],
                    inv_freq=self.inv_freq(il), rope_layout=c.rope_layout))
        lg, lp = None, None
        if logits == "all":
            lg, lp = self.logits_from_hidden(h), pos.copy()
        elif logits == "last":
            lg, lp = self.logits_from_hidden(h[-1:]), pos[-1:].copy()
        elif isinstance(logits, (int, np.integer)):
            lg, lp = self.logits_from_hidden(h[int(logits):]), pos[int(logits):].copy()
        return PrefillResult(tokens=tokens, layers=layers, logits=lg, logit_positions=lp,
                             hidden=h if keep_hidden else None)

    # ------------------------------------------------------------------ continuation
    def continue_(self, cache: List[List[Tuple[np.ndarray, np.ndarray]]], tokens: Sequence[int],
                  start_pos: int, return_qkv: bool = False) -> ContinuationResult:
        """Teacher-forces ``tokens`` (absolute positions start_pos..) against a replacement cache.

        cache[layer][kv_head] = (K_c [t_h, d], V_c [t_h, dv]); entries have RoPE baked in.
        An entry may also be (K_c, V_c, positions [t_h]): in a local layer, new token at
        position p then sees only entries with p - position < window (plain sliding window).
        Returns logits [N, vocab] at every new position.
        """
        c = self.cfg
        tokens = np.asarray(tokens, dtype=np.int64)
        N = len(tokens)
        if len(cache) != c.n_layers:
            raise ValueError(f"cache has {len(cache)} layers, model has {c.n_layers}")
        pos = np.arange(start_pos, start_pos + N, dtype=np.int64)
        h = self.embed(tokens)
        ii, jj = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
        causal = ii >= jj
        qs, ks, vs = [], [], []
        qf = F32(self.query_export_factor())
        g = c.group
        warned = False
        for il in range(c.n_layers):
            L = self.W["layers"][il]
            a = rms_norm(h, L["attn_norm"], c.norm_eps)
            q, k, v = self._qkv(il, a, pos)
            win = c.sliding_window[il]
            new_mask = causal if win is None else (causal & ((ii - jj) < win))
            neg_new = np.where(new_mask, F32(0.0), F32(-np.inf)).astype(F32)
            heads = cache[il]
            if len(heads) != c.n_kv_heads:
                raise ValueError(f"layer {il}: cache has {len(heads)} KV heads, model has {c.n_kv_heads}")
            o = np.empty((c.n_heads, N, c.v_head_dim), dtype=F32)
            for hk in range(c.n_kv_heads):
                Kc, Vc = heads[hk][0], heads[hk][1]
                Kc = np.asarray(Kc, dtype=F32).reshape(-1, c.head_dim)
                Vc = np.asarray(Vc, dtype=F32).reshape(-1, c.v_head_dim)
                qh = q[hk * g:(hk + 1) * g]
                s_old = self._scores(qh, Kc)                       # [g, N, t]
                if win is not None and len(heads[hk]) > 2 and heads[hk][2] is not None:
                    old_pos = np.asarray(heads[hk][2])
                    s_old = np.where((pos[:, None] - old_pos[None, :]) < win, s_old, F32(-np.inf))
                elif win is not None and Kc.shape[0] + N > win and not warned:
                    warned = True
                    warnings.warn(
                        f"layer {il}: {Kc.shape[0]} position-less cache entries + {N} new tokens exceed "
                        f"the sliding window {win}: new tokens see more than {win} tokens, outside the "
                        f"model's trained range. Use prefill(..., continuation=N) (stores window-N "
                        f"tokens) or pass (K, V, positions) entries.", stacklevel=2)
                s_new = self._scores(qh, k[hk]) + neg_new           # [g, N, N]
                s = np.concatenate([s_old, s_new], axis=-1)
                p = softmax_lastdim(s)
                t = Kc.shape[0]
                o[hk * g:(hk + 1) * g] = p[..., :t] @ Vc + p[..., t:] @ v[hk]
            if return_qkv:
                qs.append(q * qf)
                ks.append(k)
                vs.append(v)
            h = self._attn_out(il, h, o)
            h = self._mlp_block(il, h)
        return ContinuationResult(logits=self.logits_from_hidden(h),
                                  queries=qs if return_qkv else None,
                                  keys=ks if return_qkv else None,
                                  values=vs if return_qkv else None)

    # ------------------------------------------------------------------ conveniences
    def forward_logits(self, tokens: Sequence[int]) -> np.ndarray:
        """Exact model logits [T, vocab] for every position of ``tokens``."""
        return self.prefill(tokens, logits="all", keep_cache=False).logits

    def perplexity(self, tokens: Sequence[int]) -> Tuple[float, float]:
        """(perplexity, mean NLL in nats) of tokens[1:] given their prefixes (exact model)."""
        tokens = np.asarray(tokens)
        nll = token_nll(self.forward_logits(tokens)[:-1], tokens[1:])
        return float(np.exp(nll.mean())), float(nll.mean())

    def generate(self, prompt: str, n_new: int = 20) -> str:
        """Greedy continuation (re-runs the prefix each step; for checks only)."""
        ids = list(self.tokenizer.encode(prompt))
        start = len(ids)
        for _ in range(n_new):
            nxt = int(np.argmax(self.prefill(ids, logits="last", keep_cache=False).logits[-1]))
            ids.append(nxt)
            if nxt == self.cfg.eos_id:
                break
        return self.tokenizer.decode(ids[start:])
