"""The real-model GPU check cases (python -m kvc.bench.gemma_decode_cases): on a short Gemma 3
270M context, every case's expected output (kvc's CPU path through kvc-run) must equal numpy
attention on the same bf16-rounded inputs, and the ragged cases must carry per-row lengths."""
import os
from pathlib import Path

import numpy as np
import pytest

from kvc.models import gemma3_270m_available

ROOT = Path(__file__).resolve().parents[2]
KVC_RUN = Path(os.environ.get("KVC_BUILD_DIR", ROOT / "build")) / "bin" / "kvc-run"

pytestmark = [
    pytest.mark.skipif(not gemma3_270m_available(), reason="needs the Gemma 3 270M package"),
    pytest.mark.skipif(not KVC_RUN.exists(), reason=f"needs {KVC_RUN}"),
]


def numpy_attention(q, k, v, lengths=None):
    B, Hq, Sq, D = q.shape
    Hkv = k.shape[1]
    g = Hq // Hkv
    out = np.zeros((B, Hq, Sq, D))
    for b in range(B):
        for h in range(Hq):
            n = k.shape[2] if lengths is None else int(lengths[b, h // g])
            kk = k[b, h // g, :n].astype(np.float64)
            s = q[b, h].astype(np.float64) @ kk.T / np.sqrt(D)
            p = np.exp(s - s.max(-1, keepdims=True))
            out[b, h] = (p / p.sum(-1, keepdims=True)) @ v[b, h // g, :n]
    return out


def test_cases_match_numpy(tmp_path):
    from kvc.bench.gemma_decode_cases import main
    assert main(["--out", str(tmp_path), "--context", "256", "--layers", "0,5",
                 "--kvc-run", str(KVC_RUN)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["dense_l0", "dense_l5", "ragged_full", "ragged_sculpt"]
    for name in names:
        d = tmp_path / name
        q, k, v = (np.load(d / f"{x}.npy") for x in "qkv")
        lengths = np.load(d / "lengths.npy") if (d / "lengths.npy").exists() else None
        # inputs are bf16-exact float32
        for x in (q, k, v):
            assert np.array_equal(x.view(np.uint32) & 0xFFFF, np.zeros_like(x, np.uint32))
        exp = np.load(d / "expected.npy")
        ref = numpy_attention(q, k, v, lengths)
        err = np.linalg.norm(exp - ref) / np.linalg.norm(ref)
        assert err < 1e-5, (name, err)
        if name.startswith("ragged"):
            assert lengths.shape == (2, 1)
    sculpt = np.load(tmp_path / "ragged_sculpt" / "lengths.npy")
    full = np.load(tmp_path / "ragged_full" / "lengths.npy")
    assert (sculpt < full).all() and (sculpt > 0).all()
