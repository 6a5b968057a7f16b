"""Loads a Hugging Face model directory (config.json + *.safetensors) of a Llama or Qwen2 model.

Weights are read with a small built-in safetensors reader (F32/F16/BF16; no torch needed).
The tokenizer needs the ``tokenizers`` package (tokenizer.json); without it the model
loads but has no tokenizer and text-based commands fail with a clear message.

Status: the forward pass for these architectures shares the Gemma 3 code path (pre-norm
only, SwiGLU, optional q/k/v bias, NeoX RoPE as in HF's rotate_half, Llama 3 rope scaling);
it is checked on shapes and on a self-made tiny checkpoint only, not against a reference
implementation.  Sliding-window Qwen2 variants and other rope scalings are rejected.
"""
from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Dict

import numpy as np

from .config import ModelConfig, UnsupportedModelError

SUPPORTED_HF_TYPES = ("llama", "qwen2")


def read_safetensors(path) -> Dict[str, np.ndarray]:
    """Minimal safetensors reader returning float32 arrays (memory-mapped source)."""
    path = Path(path)
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    base = 8 + n
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = raw[base + a: base + b]
        dt, shape = info["dtype"], tuple(info["shape"])
        if dt == "F32":
            arr = buf.view(np.float32)
        elif dt == "F16":
            arr = buf.view(np.float16).astype(np.float32)
        elif dt == "BF16":
            arr = (buf.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            raise UnsupportedModelError(f"{path}: tensor {name} has unsupported dtype {dt}")
        out[name] = np.array(arr.reshape(shape), dtype=np.float32)
    return out


def write_safetensors(path, tensors: Dict[str, np.ndarray]):
    """Writes float32 tensors (used by tests to make tiny checkpoints)."""
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def _llama3_inv_freq(theta, d, rs):
    inv = 1.0 / (theta ** (np.arange(0, d, 2, dtype=np.float64) / d))
    factor = rs["factor"]
    lo, hi = rs.get("low_freq_factor", 1.0), rs.get("high_freq_factor", 4.0)
    old = rs.get("original_max_position_embeddings", 8192)
    lo_wl, hi_wl = old / lo, old / hi
    wl = 2 * math.pi / inv
    out = np.where(wl > lo_wl, inv / factor, inv)
    smooth = (old / wl - lo) / (hi - lo)
    mid = (wl <= lo_wl) & (wl >= hi_wl)
    return np.where(mid, (1 - smooth) * out / factor + smooth * out, out)


class HFTokenizer:
    def __init__(self, path: Path):
        try:
            from tokenizers import Tokenizer
        except ImportError as e:
            raise ImportError("Hugging Face tokenizers need the 'tokenizers' package: pip install tokenizers") from e
        self.tk = Tokenizer.from_file(str(path))
        with_sp = self.tk.encode("a", add_special_tokens=True).ids
        without = self.tk.encode("a", add_special_tokens=False).ids
        self.add_bos = len(with_sp) > len(without) and with_sp[1:] == without
        self.bos_id = with_sp[0] if self.add_bos else None

    def encode(self, text, add_bos=None):
        ids = self.tk.encode(text, add_special_tokens=False).ids
        if (self.add_bos if add_bos is None else add_bos) and self.bos_id is not None:
            ids = [self.bos_id] + ids
        return ids

    def decode(self, ids, skip_special=True):
        return self.tk.decode([int(i) for i in ids], skip_special_tokens=skip_special)


def load_hf_dir(path):
    path = Path(path)
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise UnsupportedModelError(f"{path}: no config.json (expected a Hugging Face model directory)")
    hc = json.loads(cfg_file.read_text())
    mt = hc.get("model_type")
    if mt not in SUPPORTED_HF_TYPES:
        raise UnsupportedModelError(
            f"{path}: model_type {mt!r} is not supported yet (supported: {', '.join(SUPPORTED_HF_TYPES)}; "
            f"Gemma 3 is supported from GGUF)")
    if hc.get("use_sliding_window"):
        raise UnsupportedModelError(f"{path}: Qwen2 sliding-window attention is not supported yet")
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise UnsupportedModelError(f"{path}: no *.safetensors files (other weight formats are not supported yet)")
    T: Dict[str, np.ndarray] = {}
    for f in files:
        T.update(read_safetensors(f))
    n_layers = int(hc["num_hidden_layers"])
    hidden = int(hc["hidden_size"])
    n_heads = int(hc["num_attention_heads"])
    n_kv = int(hc.get("num_key_value_heads", n_heads))
    head_dim = int(hc.get("head_dim") or hidden // n_heads)
    theta = float(hc.get("rope_theta", 10000.0))
    rs = hc.get("rope_scaling") or None
    inv = None
    pos_scale = 1.0
    if rs:
        kind = rs.get("rope_type", rs.get("type"))
        if kind == "llama3":
            inv = [_llama3_inv_freq(theta, head_dim, rs)] * n_layers
        elif kind == "linear":
            pos_scale = 1.0 / float(rs["factor"])
        elif kind not in (None, "default"):
            raise UnsupportedModelError(f"{path}: rope scaling {kind!r} is not supported yet")
    tied = bool(hc.get("tie_word_embeddings", False)) or "lm_head.weight" not in T
    act = hc.get("hidden_act", "silu")
    if act != "silu":
        raise UnsupportedModelError(f"{path}: activation {act!r} not supported yet")
    cfg = ModelConfig(
        arch=mt, name=hc.get("_name_or_path") or path.name, n_layers=n_layers, hidden=hidden,
        ffn=int(hc["intermediate_size"]), n_heads=n_heads, n_kv_heads=n_kv, head_dim=head_dim,
        v_head_dim=head_dim, vocab_size=int(hc["vocab_size"]), norm_eps=float(hc.get("rms_norm_eps", 1e-6)),
        rope_theta=[theta] * n_layers, rope_pos_scale=[pos_scale] * n_layers,
        sliding_window=[None] * n_layers, rope_layout="neox", rope_inv_freq=inv,
        attn_scale=1.0 / math.sqrt(head_dim), qk_norm=False, sandwich_norm=False, embed_scale=1.0,
        activation="silu", tied_embeddings=tied, qkv_bias=("model.layers.0.self_attn.q_proj.bias" in T),
        context_length=int(hc.get("max_position_embeddings", 0)),
        bos_id=hc.get("bos_token_id"), eos_id=hc.get("eos_token_id"),
        provenance={"all": f"config.json ({mt})"})
    W = {"embed": T["model.embed_tokens.weight"], "final_norm": T["model.norm.weight"], "layers": []}
    if not tied:
        W["lm_head"] = T["lm_head.weight"]
    for i in range(n_layers):
        p = f"model.layers.{i}."
        L = {
            "wq": T[p + "self_attn.q_proj.weight"].T.copy(), "wk": T[p + "self_attn.k_proj.weight"].T.copy(),
            "wv": T[p + "self_attn.v_proj.weight"].T.copy(), "wo": T[p + "self_attn.o_proj.weight"].T.copy(),
            "w_gate": T[p + "mlp.gate_proj.weight"].T.copy(), "w_up": T[p + "mlp.up_proj.weight"].T.copy(),
            "w_down": T[p + "mlp.down_proj.weight"].T.copy(),
            "attn_norm": T[p + "input_layernorm.weight"], "ffn_norm": T[p + "post_attention_layernorm.weight"],
        }
        if cfg.qkv_bias:
            L["bq"], L["bk"], L["bv"] = (T[p + "self_attn.q_proj.bias"], T[p + "self_attn.k_proj.bias"],
                                         T[p + "self_attn.v_proj.bias"])
        W["layers"].append(L)
    tok = None
    if (path / "tokenizer.json").is_file():
        try:
            tok = HFTokenizer(path / "tokenizer.json")
        except ImportError:
            tok = None
    if tok is not None:
        cfg.add_bos = tok.add_bos
        if tok.bos_id is not None:
            cfg.bos_id = tok.bos_id
    return cfg, W, tok
