"""Hugging Face (Llama / Qwen2 safetensors) loader on a tiny self-made checkpoint."""
import json

import numpy as np
import pytest

from kvc.models import load_model, UnsupportedModelError
from kvc.models.hf_loader import write_safetensors, read_safetensors


def _tiny(tmp_path, model_type="qwen2", tied=True):
    rng = np.random.default_rng(0)
    V, H, F, nh, nkv, L = 50, 32, 64, 4, 2, 2
    d = H // nh
    T = {"model.embed_tokens.weight": rng.normal(size=(V, H)), "model.norm.weight": 1 + 0.1 * rng.normal(size=H)}
    for i in range(L):
        p = f"model.layers.{i}."
        T[p + "self_attn.q_proj.weight"] = rng.normal(size=(nh * d, H)) / H ** 0.5
        T[p + "self_attn.k_proj.weight"] = rng.normal(size=(nkv * d, H)) / H ** 0.5
        T[p + "self_attn.v_proj.weight"] = rng.normal(size=(nkv * d, H)) / H ** 0.5
        T[p + "self_attn.o_proj.weight"] = rng.normal(size=(H, nh * d)) / H ** 0.5
        if model_type == "qwen2":
            T[p + "self_attn.q_proj.bias"] = rng.normal(size=nh * d) * 0.1
            T[p + "self_attn.k_proj.bias"] = rng.normal(size=nkv * d) * 0.1
            T[p + "self_attn.v_proj.bias"] = rng.normal(size=nkv * d) * 0.1
        T[p + "mlp.gate_proj.weight"] = rng.normal(size=(F, H)) / H ** 0.5
        T[p + "mlp.up_proj.weight"] = rng.normal(size=(F, H)) / H ** 0.5
        T[p + "mlp.down_proj.weight"] = rng.normal(size=(H, F)) / F ** 0.5
        T[p + "input_layernorm.weight"] = np.ones(H)
        T[p + "post_attention_layernorm.weight"] = np.ones(H)
    if not tied:
        T["lm_head.weight"] = rng.normal(size=(V, H))
    write_safetensors(tmp_path / "model.safetensors", T)
    cfg = {"model_type": model_type, "num_hidden_layers": L, "hidden_size": H, "intermediate_size": F,
           "num_attention_heads": nh, "num_key_value_heads": nkv, "vocab_size": V, "rms_norm_eps": 1e-6,
           "rope_theta": 10000.0, "tie_word_embeddings": tied, "hidden_act": "silu"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return tmp_path, T


@pytest.mark.parametrize("mt,tied", [("qwen2", True), ("llama", False)])
def test_tiny_hf_model_prefill_and_replacement(tmp_path, mt, tied):
    path, T = _tiny(tmp_path, mt, tied)
    back = read_safetensors(path / "model.safetensors")
    assert np.allclose(back["model.norm.weight"], T["model.norm.weight"], atol=1e-6)
    m = load_model(str(path), cache=False)
    assert m.cfg.arch == mt and m.cfg.n_kv_heads == 2 and m.cfg.qkv_bias == (mt == "qwen2")
    ids = np.random.default_rng(1).integers(0, 50, size=40)
    exact = m.forward_logits(ids)
    pre = m.prefill(ids[:30], logits="last")
    assert np.allclose(pre.logits[-1], exact[29], rtol=1e-5, atol=1e-5)
    got = m.continue_([L.as_heads() for L in pre.layers], ids[30:], start_pos=30).logits
    assert np.abs(got - exact[30:]).max() <= 1e-4 * np.abs(exact).max()


def test_unsupported_hf_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mamba"}))
    with pytest.raises(UnsupportedModelError, match="not supported yet"):
        load_model(str(tmp_path), cache=False)
