"""Architecture description shared by the numpy reference decoders.

A ``ModelConfig`` is filled by a loader (GGUF or Hugging Face directory) from the
file's metadata.  Every field records where its value came from in ``provenance``
("metadata:<key>", "default:<reason>" or "derived:<reason>"), so that a reader can
check that nothing was silently hard-coded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional


class UnsupportedModelError(ValueError):
    """Raised for model files whose architecture the reference decoder does not implement."""


@dataclass
class ModelConfig:
    arch: str                      # "gemma3", "llama", "qwen2"
    name: str
    n_layers: int
    hidden: int
    ffn: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    v_head_dim: int
    vocab_size: int
    norm_eps: float
    # Per layer: RoPE base, RoPE linear position scale (position * scale) and
    # sliding window (None = global attention).
    rope_theta: List[float]
    rope_pos_scale: List[float]
    sliding_window: List[Optional[int]]
    # "neox": rotate halves (x[:d/2], x[d/2:]) as Hugging Face does;
    # "interleaved": rotate adjacent pairs (GPT-J / llama.cpp "NORM" layout).
    rope_layout: str = "neox"
    # Optional explicit inverse frequencies [d/2] per layer (e.g. Llama 3 rope scaling);
    # None = theta ** (-2i/d).
    rope_inv_freq: Optional[list] = None
    attn_scale: float = 0.0        # multiplies q.k (Gemma 3: query_pre_attn_scalar**-0.5)
    qk_norm: bool = False          # RMSNorm over head_dim on q and k (Gemma 3)
    sandwich_norm: bool = False    # post-attention and post-FFN RMSNorms (Gemma 2/3)
    embed_scale: float = 1.0       # embeddings are multiplied by this (Gemma: sqrt(hidden))
    activation: str = "silu"       # "gelu_tanh" (GeGLU) or "silu" (SwiGLU)
    final_softcap: Optional[float] = None
    attn_softcap: Optional[float] = None
    tied_embeddings: bool = True
    qkv_bias: bool = False
    context_length: int = 0
    bos_id: Optional[int] = None
    eos_id: Optional[int] = None
    add_bos: bool = True
    provenance: Dict[str, str] = field(default_factory=dict)

    @property
    def group(self) -> int:
        return self.n_heads // self.n_kv_heads

    def is_local(self, layer: int) -> bool:
        return self.sliding_window[layer] is not None

    def summary(self) -> str:
        kinds = "".join("L" if w is not None else "G" for w in self.sliding_window)
        return (f"{self.name} ({self.arch}): {self.n_layers} layers [{kinds}], hidden {self.hidden}, "
                f"ffn {self.ffn}, heads {self.n_heads}/{self.n_kv_heads} kv, head_dim {self.head_dim}, "
                f"vocab {self.vocab_size}, rope bases {sorted(set(self.rope_theta))}, "
                f"window {sorted(set(w for w in self.sliding_window if w))}, attn_scale {self.attn_scale:.6g}, "
                f"final_softcap {self.final_softcap}")
