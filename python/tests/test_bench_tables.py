"""kvc.bench result tools on small made-up kvc-bench JSON: merge_results keeps the first
header and every result in order (tagging the PTX with --ptx), variant_table picks the fastest
variant per shape and groups by a name tag."""
import json

from kvc.bench import merge_results, variant_table


def _doc(path, variants):
    rows = [{"variant": "kvc_attn0_d128_g4_q1_bf16_b128_u4_pf" + v, "batch": 1, "context": 16384,
             "ragged": False, "time_us": t} for v, t in variants]
    path.write_text(json.dumps({"device": "H100", "copy_tbps": 3.0, "results": rows}))
    return str(path)


def test_merge_results_keeps_header_and_order(tmp_path, capsys):
    a = _doc(tmp_path / "a.json", [("", 40.0)])
    b = _doc(tmp_path / "b.json", [("_l2p2", 41.0), ("_l2p4", 50.0)])
    merge_results.main([a, b])
    d = json.loads(capsys.readouterr().out)
    assert d["device"] == "H100" and d["copy_tbps"] == 3.0
    assert [r["time_us"] for r in d["results"]] == [40.0, 41.0, 50.0]
    assert all("ptx" not in r for r in d["results"])
    merge_results.main(["--ptx", a, b])
    d = json.loads(capsys.readouterr().out)
    assert [r["ptx"] for r in d["results"]] == ["a.ptx", "b.ptx", "b.ptx"]


def test_variant_table_by_tag(tmp_path, capsys):
    a = _doc(tmp_path / "a.json", [("", 40.0), ("_l2p2", 39.0), ("_l2p4", 50.0)])
    variant_table.main(["--by", "l2p", a])
    out = capsys.readouterr().out
    assert "| dense l2p=0 | 40.0 |" in out
    assert "| dense l2p=2 | **39.0** |" in out
    assert "| dense l2p=4 | 50.0 |" in out
