"""kvc.bench result tools on small made-up kvc-bench JSON: merge_results keeps the first
header and every result in order (tagging the PTX with --ptx), variant_table picks the fastest
variant per shape and groups by a name tag."""
import json

import pytest

from kvc.bench import (fixed_width_table, floor_fit, ir_table, merge_results, probe_table,
                       variant_table)


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


def test_floor_fit_recovers_fixed_cost_and_rate(tmp_path, capsys):
    # Synthetic reads: 7 us fixed + bytes at 2.8 TB/s, copy 3.0 TB/s, plus an empty launch.
    t0, rate, copy = 7.0, 2.8, 3.0
    rows = []
    for mib in [0, 4, 16, 64, 256, 1024]:
        b = float(mib << 20)
        t = (t0 if mib else 3.0) + b / (rate * 1e6)
        rows.append({"variant": "streaming_read", "size_mib": mib, "bytes": b, "time_us": t,
                     "tbps": b / t / 1e6, "frac_copy": b / t / 1e6 / copy})
    got_t0, got_rate = floor_fit.fit(rows)
    assert abs(got_t0 - t0) < 1e-6 and abs(got_rate - rate) < 1e-9
    # 67.1 MB (batch 1 x 16k): 24.0 us of streaming + 7 us -> 2.16 TB/s = 72.2% of copy.
    frac = floor_fit.best_fraction(67108864, t0, rate, copy)
    assert abs(frac - 67108864 / (t0 + 67108864 / 2.8e6) / 1e6 / copy) < 1e-12
    assert 0.70 < frac < 0.74
    p = tmp_path / "sizes.json"
    p.write_text(json.dumps({"copy_tbps": copy, "flush": "dirty", "results": rows}))
    floor_fit.main([str(p)])
    out = capsys.readouterr().out
    assert "fit: time = 7.00 us + bytes / 2.800 TB/s" in out
    assert "empty launch 3.00 us" in out
    assert "b1 x 16k dense" in out


def test_floor_fit_refuses_shape_results(tmp_path):
    p = tmp_path / "shapes.json"
    p.write_text(json.dumps({"copy_tbps": 3.0, "results": [
        {"variant": "streaming_read", "batch": 1, "context": 16384, "bytes": 1.0,
         "time_us": 1.0}]}))
    import pytest
    with pytest.raises(SystemExit, match="no --sizes-mib results"):
        floor_fit.main([str(p)])


def test_ir_table_rounds_binaries_and_kernel(tmp_path, capsys):
    log = tmp_path / "ir.log"
    log.write_text(
        "== memcheck kvc-decode-ir-bench (B=1 and 8, S=4096, 3 calls)\n"
        "B=1 S=4096, flush none: median 383.4 us, min 364.7 (memcheck, not a timing row)\n"
        "round 1 kvc-decode-ir-bench: B=1 S=16384, flush dirty: median 99.3 us, min 85.4\n"
        "round 1 kvc-decode-ir-bench-before: B=1 S=16384, flush dirty: median 156.8 us\n"
        "round 2 kvc-decode-ir-bench: B=1 S=16384, flush dirty: median 112.7 us\n"
        "round 2 kvc-decode-ir-bench-before: B=1 S=16384, flush dirty: median 192.4 us\n")
    kern = tmp_path / "k.json"
    kern.write_text(json.dumps({"results": [{"batch": 1, "context": 16384, "time_us": 42.4}]}))
    ir_table.main([str(log), "--kernel", str(kern), "--order", "before,"])
    out = capsys.readouterr().out
    assert "| kvc-decode-ir-bench-before | kvc-decode-ir-bench | kernel alone (dirty) |" in out
    assert "| dirty | 1 | 16k | 156.8 / 192.4 | 99.3 / 112.7 | 42.4 |" in out
    assert "383.4" not in out


def test_ir_table_refuses_a_log_without_timings(tmp_path):
    log = tmp_path / "empty.log"
    log.write_text("== kvc-decode-ir-example\nPASS\n")
    with pytest.raises(SystemExit, match="no 'round R"):
        ir_table.main([str(log)])


def _encoded_bound_docs(tmp_path, flush="dirty", sdpa_flush="dirty"):
    # Floor: 5 us + bytes at 2 TB/s (2e6 bytes per us).
    sizes = {"flush": flush, "copy_tbps": 3.0, "results": [
        {"variant": "kvc_l2_read", "size_mib": m, "bytes": m * 2**20,
         "time_us": 5.0 + m * 2**20 / 2e6} for m in (1, 16, 256)]}
    enc = {"flush": flush, "results": [
        {"batch": 1, "hkv": 8, "d": 128, "context": 4096, "bytes": 4e6, "time_us": 50.0},
        {"batch": 1, "hkv": 8, "d": 128, "context": 16384, "bytes": 2e6, "time_us": 100.0},
        {"batch": 8, "hkv": 8, "d": 128, "context": 16384, "bytes": 100e6, "time_us": 400.0}]}
    sdpa = {"flush": sdpa_flush, "results": [
        {"backend": "cudnn", "batch": 1, "context": 16384, "time_us": 15.0},
        {"backend": "flash", "batch": 8, "context": 16384, "time_us": 1.0},
        {"backend": "cudnn", "batch": 8, "context": 16384, "time_us": 300.0}]}
    paths = []
    for name, d in (("s", sizes), ("e", enc), ("d", sdpa)):
        p = tmp_path / (name + ".json")
        p.write_text(json.dumps(d))
        paths.append(str(p))
    return paths


def test_encoded_bound_floor_and_rates(tmp_path, capsys):
    from kvc.bench import encoded_bound
    s, e, d = _encoded_bound_docs(tmp_path)
    encoded_bound.main(["--sizes", s, "--encoded", e, "--sdpa", d])
    out = capsys.readouterr().out
    assert "floor fit 5.00 us + bytes / 2.00 TB/s" in out
    assert "| 1 | 4k |" not in out  # below --min-context
    # b1 x 16k: need 5.0 us, floor 5 + 1 = 6.0 us: no kernel can.
    assert "| 1 | 16k | 2.0 | 15.0 | 5.0 | 6.0 | 100.0 | - | 336 | impossible (need < floor) |" in out
    # b8 x 16k: need 100 us, floor 55 us; 268.4 M elements in 95 us vs in 400 us.
    assert "| 8 | 16k | 100.0 | 300.0 | 100.0 | 55.0 | 400.0 | 2826 | 671 | 4.2x |" in out


def test_encoded_bound_refuses_mixed_flushes(tmp_path):
    from kvc.bench import encoded_bound
    s, e, d = _encoded_bound_docs(tmp_path, sdpa_flush="clean")
    with pytest.raises(SystemExit, match="flush"):
        encoded_bound.main(["--sizes", s, "--encoded", e, "--sdpa", d])


_SASS = """
        Function : other_merge
        /*0000*/                   BRA 0x0 ;
        Function : k_split
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/                   ISETP.GT.AND P2, PT, R3, 0x1f, PT ;
        /*0020*/              @!P2 LDG.E R4, desc[UR4][R6.64] ;
        /*0030*/                   LDS R5, [R7+UR8] ;
        /*0040*/                   ISETP.NE.AND P0, PT, R5, RZ, PT ;
        /*0050*/              @!P0 BRA 0x90 ;
        /*0060*/                   FFMA R8, R5, R9, R8 ;
        /*0070*/                   ISETP.GE.AND P1, PT, R10, 0x80, PT ;
        /*0080*/              @!P1 BRA 0x10 ;
        /*0090*/                   LDG.E R4, desc[UR4][R6.64] ;
        /*00a0*/                   LDG.E R5, desc[UR4][R6.64+0x4] ;
        /*00b0*/                   BRA 0x60 ;
        /*00c0*/                   EXIT ;
"""


def test_sass_fast_path_skips_slow_blocks(tmp_path, capsys):
    from kvc.bench import sass_fast_path
    funcs = sass_fast_path.parse(_SASS, "_split")
    assert list(funcs) == ["k_split"]
    loops = sass_fast_path.fast_paths(funcs["k_split"])
    # one loop 0x10..0x80; the path through the unpredicated loads at 0x90 is the slow one,
    # the predicated refill load counts (a warp issues it)
    assert [(h, b, n, len(p)) for h, b, n, p in loops] == [(0x10, 0x80, 8, 8)]
    p = tmp_path / "k.sass"
    p.write_text(_SASS)
    sass_fast_path.main([str(p), "--kernel", "_split"])
    assert "fast path 8" in capsys.readouterr().out


def _probe_docs(tmp_path, flush="dirty"):
    probe = {"flush": flush, "device": "H100", "results": [
        {"batch": 8, "context": 16384, "splits": 33, "time_us": 80.0, "bytes": 160e6,
         "dense_bytes": 537e6},
        {"batch": 1, "context": 4096, "splits": 32, "time_us": 20.0, "bytes": 5e6,
         "dense_bytes": 16e6}]}
    sweep = {"flush": flush, "results": [
        {"batch": 8, "context": 16384, "splits": 8, "time_us": 64.0, "bytes": 160e6,
         "dense_bytes": 537e6}]}
    sdpa = {"flush": "dirty", "device": "H100", "copy_tbps": 3.0, "results": [
        {"backend": "cudnn", "batch": 1, "context": 4096, "time_us": 18.0},
        {"backend": "cudnn", "batch": 8, "context": 16384, "time_us": 192.0},
        {"backend": "flash", "batch": 8, "context": 16384, "time_us": 200.0}]}
    paths = []
    for name, d in (("probe", probe), ("sweep", sweep), ("sdpa", sdpa)):
        (tmp_path / f"{name}.json").write_text(json.dumps(d))
        paths.append(str(tmp_path / f"{name}.json"))
    return paths


def test_probe_table_speedup_floor_and_sweep(tmp_path, capsys):
    probe, sweep, sdpa = _probe_docs(tmp_path)
    probe_table.main(["--probe", probe, "--sdpa", sdpa, "--sweep", sweep,
                      "--floor-fit", "10,3.2"])
    out = capsys.readouterr().out
    # 160 MB in 80 us = 2.00 TB/s = 67% of 3.0; 192 / 80 = 2.40x; best of sweep 64 us = 3.00x;
    # floor 10 + 160e6 / 3.2e6 = 60 us, 75% of 80; 3x needs 64 us.
    assert "| 8 | 16k | 200.0 | 192.0 | 80.0 (33) | 160.0 | 537.0 | 2.00 | 67% | 2.40x | " \
           "64.0 (8) | 3.00x | 60.0 | 75% | 64.0 |" in out
    # No flash time and no sweep entry print "-"; 5 MB in 20 us = 0.25 TB/s = 8%.
    assert "| 1 | 4k | - | 18.0 | 20.0 (32) | 5.0 | 16.0 | 0.25 | 8% | 0.90x | - | - |" in out
    # Without a floor fit the floor columns are absent.
    probe_table.main(["--probe", probe, "--sdpa", sdpa])
    out = capsys.readouterr().out
    assert "floor" not in out and "| 8 | 16k | 200.0 | 192.0 | 80.0 (33) |" in out


def test_probe_table_rejects_mixed_flush_and_bad_fit(tmp_path):
    probe, _, sdpa = _probe_docs(tmp_path, flush="clean")
    with pytest.raises(SystemExit, match="flush differs"):
        probe_table.main(["--probe", probe, "--sdpa", sdpa])
    probe, sweep, sdpa = _probe_docs(tmp_path)
    with pytest.raises(SystemExit, match="FIXED_US,TBPS"):
        probe_table.main(["--probe", probe, "--sdpa", sdpa, "--floor-fit", "10"])
    d = json.loads(open(sweep).read())
    d["flush"] = "clean"
    open(sweep, "w").write(json.dumps(d))
    with pytest.raises(SystemExit, match="flush differs"):
        probe_table.main(["--probe", probe, "--sdpa", sdpa, "--sweep", sweep])
    d = json.loads(open(probe).read())
    d["device"] = "H200"
    open(probe, "w").write(json.dumps(d))
    with pytest.raises(SystemExit, match="device differs"):
        probe_table.main(["--probe", probe, "--sdpa", sdpa])
    d = json.loads(open(sdpa).read())
    d["results"] = [r for r in d["results"] if r["batch"] != 1]
    d["device"] = "H200"
    open(sdpa, "w").write(json.dumps(d))
    with pytest.raises(SystemExit, match="no cuDNN time for batch 1 context 4096"):
        probe_table.main(["--probe", probe, "--sdpa", sdpa])


def test_probe_table_window_projection():
    # T = 16384 with the codec's defaults: keys 16256 encoded (128 recent), values 16128
    # (256 recent). Per row: 128*128*(2 - 5/8) + 256*(128*(2 - 4/8) - 8) = 22528 + 47104 bytes.
    assert probe_table.window_extra_bytes(1, 16384, 128, 256) == 8 * (22528 + 47104)
    # T = 16400: 16 more tokens stay in both windows (no block is full).
    assert probe_table.window_extra_bytes(1, 16400, 128, 256) == \
        8 * (144 * 128 * 1.375 + 272 * (128 * 1.5 - 8))
    # A context shorter than one block plus the window is all fp16.
    assert probe_table.window_extra_bytes(2, 128, 128, 256) == \
        16 * (128 * 128 * 1.375 + 128 * (128 * 1.5 - 8))


def test_probe_table_window_checks_and_projection_columns(tmp_path, capsys):
    probe, sweep, sdpa = _probe_docs(tmp_path)
    # --windows adds the projection: 8 x 16k gets 8 * 8 * (22528 + 47104) bytes more.
    probe_table.main(["--probe", probe, "--sdpa", sdpa, "--windows", "128,256"])
    out = capsys.readouterr().out
    extra = 64 * (22528 + 47104)
    proj = 80.0 * (160e6 + extra) / 160e6
    assert f"| {(160e6 + extra) / 1e6:.1f} | {proj:.1f} | {192.0 / proj:.2f}x |" in out
    with pytest.raises(SystemExit, match="KEY_RECENT,VALUE_RECENT"):
        probe_table.main(["--probe", probe, "--sdpa", sdpa, "--windows", "128"])
    # A sweep with another window than the probe run is refused, and --windows on a run
    # that already has a window too.
    d = json.loads(open(sweep).read())
    d["window"] = 256
    open(sweep, "w").write(json.dumps(d))
    with pytest.raises(SystemExit, match="window differs"):
        probe_table.main(["--probe", probe, "--sdpa", sdpa, "--sweep", sweep])
    d = json.loads(open(probe).read())
    d["window"] = 256
    open(probe, "w").write(json.dumps(d))
    with pytest.raises(SystemExit, match="already has a 256-token window"):
        probe_table.main(["--probe", probe, "--sdpa", sdpa, "--windows", "128,256"])


def _fw_docs(tmp_path, flush="dirty"):
    sdpa = {"device": "H", "copy_tbps": 3.0, "flush": "dirty", "results": [
        {"backend": "cudnn", "batch": 8, "context": 16384, "time_us": 300.0},
        {"backend": "flash", "batch": 8, "context": 16384, "time_us": 310.0},
        {"backend": "cudnn", "batch": 1, "context": 4096, "time_us": 20.0}]}
    fw = {"device": "H (sm_90)", "copy_tbps": 3.0, "flush": flush, "results": [
        {"variant": "a_fw", "batch": 8, "context": 16384, "time_us": 100.0, "bytes": 150e6},
        {"variant": "a_fw", "batch": 1, "context": 4096, "time_us": 18.0, "bytes": 6e6}]}
    fw_r0 = {"device": "H", "copy_tbps": 3.0, "flush": "dirty", "results": [
        {"variant": "a_fw_r0", "batch": 8, "context": 16384, "time_us": 90.0, "bytes": 150e6}]}
    enc = {"device": "H", "flush": "dirty", "results": [
        {"variant": "a_enc", "batch": 8, "context": 16384, "time_us": 450.0, "bytes": 110e6}]}
    paths = []
    for name, doc in (("sdpa", sdpa), ("fw", fw), ("fw_r0", fw_r0), ("enc", enc)):
        p = tmp_path / (name + ".json")
        p.write_text(json.dumps(doc))
        paths.append(str(p))
    return paths


def test_fixed_width_table_best_variant_and_target(tmp_path, capsys):
    sdpa, fw, fw_r0, enc = _fw_docs(tmp_path)
    fixed_width_table.main(["--sdpa", sdpa, "--fixed-width", fw, fw_r0, "--encoded", enc])
    out = capsys.readouterr().out
    # 8 x 16k: the default kernel (100 us): 150 MB in 100 us = 1.5 TB/s = 50% of 3.0, 300/100;
    # the faster variant (90 us) in a row of its own, named by its file.
    assert "| fixed-width (entropy = none) | 100.0 | 150.0 | 1.50 | 50% | 3.00× |" in out
    assert "| fixed-width, fastest file: fw_r0 | 90.0 | 150.0 | 1.67 | 56% | 3.33× |" in out
    assert "| Huffman (entropy = huffman) | 450.0 | 110.0 | 0.24 | 8% | 0.67× |" in out
    assert "| 8 | 16k | fixed-width >= 3x cuDNN | 3.00x | a_fw | yes |" in out
    # 4k shapes are reported but carry no target row.
    assert "| 1 | 4k | 20.0 | 20.0 |" not in out
    assert "| 1 | 4k |  | 20.0 | fixed-width (entropy = none) | 18.0 |" in out
    assert "| 1 | 4k | fixed-width" not in out


def test_fixed_width_table_refuses_mixed_flush(tmp_path):
    sdpa, fw, fw_r0, enc = _fw_docs(tmp_path, flush="clean")
    with pytest.raises(SystemExit, match="differ in flush"):
        fixed_width_table.main(["--sdpa", sdpa, "--fixed-width", fw, fw_r0])


def test_issue_table_fixed_width_rows_and_target(tmp_path, capsys):
    from kvc.bench import issue_table
    sdpa = {"copy_tbps": 3.0, "results": [
        {"backend": "cudnn", "batch": 8, "context": 16384, "time_us": 300.0},
        {"backend": "flash", "batch": 8, "context": 16384, "time_us": 310.0}]}
    dense = {"copy_tbps": 3.0, "results": [
        {"variant": "d", "batch": 8, "context": 16384, "time_us": 290.0, "bytes": 800e6}]}
    ragged = {"results": [{"variant": "r", "batch": 8, "context": 16384, "time_us": 100.0,
                           "bytes": 240e6, "ragged": True}]}
    enc = {"results": [{"variant": "e", "batch": 8, "context": 16384, "time_us": 450.0,
                        "bytes": 180e6}]}
    fw = {"results": [{"variant": "f", "batch": 8, "context": 16384, "time_us": 100.0,
                       "bytes": 250e6}]}
    paths = {}
    for name, doc in (("sdpa", sdpa), ("dense", dense), ("ragged", ragged), ("enc", enc),
                      ("fw", fw)):
        paths[name] = str(tmp_path / (name + ".json"))
        (tmp_path / (name + ".json")).write_text(json.dumps(doc))
    args = ["--sdpa", paths["sdpa"], "--dense", paths["dense"], "--ragged", paths["ragged"],
            "--encoded", paths["enc"]]
    issue_table.main(args)
    without = capsys.readouterr().out
    assert "fixed-width" not in without
    issue_table.main(args + ["--fixed-width", paths["fw"]])
    out = capsys.readouterr().out
    # 250 MB in 100 us = 2.5 TB/s = 83% of 3.0; 300 / 100 = 3.00x.
    assert "| encoded, fixed-width (entropy = none) | 100.0 | 250.0 | 2.50 | 83% | 3.00× |" in out
    assert "| 8 | 16k | encoded >= 3x cuDNN | 0.67x | e | **no** |" in out
    assert "| 8 | 16k | encoded, fixed-width >= 3x cuDNN | 3.00x | f | yes |" in out
