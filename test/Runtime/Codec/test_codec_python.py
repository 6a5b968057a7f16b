# Tests of python/kvc/runtime/codec.py (the ctypes binding). Needs numpy and the built library:
#
#   KVC_RUNTIME_LIB=build-codec/lib/libkvc_runtime.so PYTHONPATH=python \
#       python3 test/Runtime/Codec/test_codec_python.py      (or: python3 -m pytest <this file>)
#
# REQUIRES: numpy
# RUN: %python %s
import math

import numpy as np

from kvc.runtime import codec


def _data(T, d, seed):
    rng = np.random.default_rng(seed)
    K = rng.standard_normal((T, d)).astype(np.float32)
    K[:, 3] += 30.0  # outlier channel
    V = rng.standard_t(3, size=(T, d)).astype(np.float32)
    return K, V


def test_encode_decode_bound_and_kernels():
    T, d = 1200, 64
    K, V = _data(T, d, 0)
    head = codec.encode_head(K, V, k_error=0.05, v_error=0.1)
    assert len(head) == T
    Kh, Vh = head.decode()
    st = head.stats()
    k16 = K.astype(np.float16).astype(np.float64)
    v16 = V.astype(np.float16).astype(np.float64)
    ne = st["key_encoded_tokens"]
    for b in range(ne // 64):
        blk = k16[b * 64:(b + 1) * 64]
        lo, hi = blk.min(), blk.max()
        bound = 0.5 * np.float32(0.05) * (hi - lo) * (1 + 2**-20) + 2**-22 * max(abs(lo), abs(hi))
        assert np.abs(blk - Kh[b * 64:(b + 1) * 64]).max() <= bound
    assert np.array_equal(Kh[ne:], K[ne:].astype(np.float16).astype(np.float32))
    nv = st["value_encoded_tokens"]
    lo, hi = v16[:nv].min(axis=1), v16[:nv].max(axis=1)
    bound = 0.5 * np.float32(0.1) * (hi - lo) * (1 + 2**-20) + 2**-22 * np.maximum(abs(lo), abs(hi))
    assert (np.abs(v16[:nv] - Vh[:nv]).max(axis=1) <= bound).all()

    q = np.random.default_rng(1).standard_normal((4, d)).astype(np.float32)
    s = head.scores(q)
    dense = q.astype(np.float64) @ Kh.T.astype(np.float64)
    mag = np.abs(q.astype(np.float64)) @ np.abs(Kh.T.astype(np.float64))
    assert s.shape == (4, T) and (np.abs(s - dense) <= 1e-5 * mag).all()
    assert head.scores(q[0]).shape == (T,)
    p = np.exp(s / 50.0)
    p /= p.sum(axis=1, keepdims=True)
    out = head.apply(p)
    dense = p.astype(np.float64) @ Vh.astype(np.float64)
    mag = np.abs(p.astype(np.float64)) @ np.abs(Vh.astype(np.float64))
    assert out.shape == (4, d) and (np.abs(out - dense) <= 1e-5 * mag).all()

    assert st["total_bytes"] == len(head.serialize())
    assert math.isclose(st["compression_ratio"], st["fp16_bytes"] / st["total_bytes"])


def test_append_serialize_roundtrip_and_errors():
    T, d = 500, 32
    K, V = _data(T, d, 2)
    head = codec.encode_head(K[:400], V[:400], key_grouping="channel")
    head.append(K[400], V[400])
    head.append(K[401:], V[401:])
    assert head.num_tokens == T
    blob = head.serialize()
    copy = codec.EncodedHead.deserialize(blob)
    a, b = head.decode(), copy.decode()
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert copy.symbols("keys").shape == (head.stats()["key_encoded_tokens"], d)

    bad = K[:2].copy()
    bad[1, 5] = np.nan
    try:
        head.append(bad, V[:2])
        raise AssertionError("NaN accepted")
    except codec.NonFiniteInputError as e:
        assert "non-finite" in str(e)
    assert head.num_tokens == T

    corrupt = bytearray(blob)
    corrupt[len(corrupt) // 2] ^= 0x10
    try:
        codec.EncodedHead.deserialize(bytes(corrupt))
        raise AssertionError("corrupt buffer accepted")
    except codec.CorruptDataError as e:
        assert "corrupt" in str(e)
    try:
        codec.EncodedHead.create(32, k_error=0.0)
        raise AssertionError("bad params accepted")
    except codec.CodecError as e:
        assert "key_error" in str(e)


def test_kivi():
    T, d = 600, 32
    K, V = _data(T, d, 3)
    for bits in (2, 4):
        kivi = codec.kivi_quantize(K, V, bits=bits)
        Kh, Vh = kivi.dequantize()
        k16 = K.astype(np.float16).astype(np.float64)
        nq = (T - 128) // 32 * 32
        g = k16[:nq].reshape(-1, 32, d)
        step = (g.max(axis=1) - g.min(axis=1)) / (2**bits - 1)
        err = np.abs(g - Kh[:nq].reshape(-1, 32, d)).max(axis=1)
        assert (err <= 0.5 * step * (1 + 2**-20) + 2**-22 * np.abs(g).max(axis=1)).all()
        st = kivi.stats()
        assert st["key_fixed_width_bits"] == bits and st["compression_ratio"] > 1


if __name__ == "__main__":
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            fn()
            print("ok", name)
