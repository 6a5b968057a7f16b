"""numpy wrappers of the KVComp-style KV-cache codec (include/kvc/Runtime/Codec.h).

One EncodedHead holds one (layer, KV head): keys and values in error-bounded, Huffman-coded
blocks plus fp16 recent windows. Example::

    from kvc.runtime import codec
    head = codec.encode_head(K, V, k_error=0.05, v_error=0.1)   # K, V: [T, d]
    K_hat, V_hat = head.decode()
    scores = head.scores(q)          # q: [g, d] (GQA group) or [d] -> [g, T] / [T]
    out = head.apply(p)              # p: [g, T] or [T]        -> [g, d] / [d]
    head.append(k_new, v_new)        # [n, d]
    print(head.stats()["compression_ratio"])
    blob = head.serialize(); same = codec.EncodedHead.deserialize(blob)

Errors raised by the library become CodecError (or its subclasses) with the library's text.
"""
import ctypes
from ctypes import POINTER, c_char_p, c_double, c_float, c_int, c_size_t, c_uint8, c_uint16
from ctypes import c_uint32, c_uint64, c_void_p

import numpy as np

from ._lib import configure, load_library

KEY_BLOCK = 0
KEY_CHANNEL = 1
KEYS = 0
VALUES = 1

OK = 0
ERR_INVALID_ARGUMENT = 1
ERR_NONFINITE_INPUT = 2
ERR_OUT_OF_RANGE = 3
ERR_CORRUPT = 4
ERR_OUT_OF_MEMORY = 5
ERR_BUFFER_TOO_SMALL = 6


class CodecError(RuntimeError):
    """A codec call failed; .status is the kvc_codec_status code."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class NonFiniteInputError(CodecError, ValueError):
    pass


class CorruptDataError(CodecError, ValueError):
    pass


class _Params(ctypes.Structure):
    _fields_ = [
        ("head_dim", c_uint32),
        ("key_error", c_float),
        ("value_error", c_float),
        ("key_block_tokens", c_uint32),
        ("value_block_tokens", c_uint32),
        ("key_recent_tokens", c_uint32),
        ("value_recent_tokens", c_uint32),
        ("key_grouping", c_uint32),
    ]


class _Stats(ctypes.Structure):
    _fields_ = [(name, c_uint64) for name in (
        "num_tokens", "head_dim", "key_encoded_tokens", "value_encoded_tokens",
        "key_recent_tokens", "value_recent_tokens", "bitstream_bytes", "offset_bytes",
        "quant_param_bytes", "codebook_bytes", "recent_bytes", "header_bytes", "total_bytes",
        "fp16_bytes")] + [
        ("bits_per_element", c_double),
        ("compression_ratio", c_double),
    ] + [(name, c_uint64) for name in (
        "key_fixed_width_bits", "value_fixed_width_bits", "key_huffman_payload_bits",
        "value_huffman_payload_bits", "key_escape_count", "value_escape_count",
        "quant_only_total_bytes")] + [
        ("quant_only_compression_ratio", c_double),
        ("key_encoded_bits_per_element", c_double),
        ("value_encoded_bits_per_element", c_double),
    ]


class _KiviParams(ctypes.Structure):
    _fields_ = [(name, c_uint32) for name in (
        "head_dim", "key_bits", "value_bits", "group_tokens", "recent_tokens")]


_F32P = POINTER(c_float)
_configured = None


def _lib():
    global _configured
    if _configured is not None:
        return _configured
    lib = load_library()
    sigs = {
        "kvc_codec_last_error": (c_char_p, []),
        "kvc_codec_default_params": (None, [POINTER(_Params), c_uint32]),
        "kvc_codec_head_create": (c_int, [POINTER(_Params), POINTER(c_void_p)]),
        "kvc_codec_head_free": (None, [c_void_p]),
        "kvc_codec_head_append": (c_int, [c_void_p, _F32P, _F32P, c_uint64]),
        "kvc_codec_head_params": (c_int, [c_void_p, POINTER(_Params)]),
        "kvc_codec_head_num_tokens": (c_uint64, [c_void_p]),
        "kvc_codec_head_decode": (c_int, [c_void_p, _F32P, _F32P]),
        "kvc_codec_head_decode_symbols": (c_int, [c_void_p, c_int, POINTER(c_uint16), c_uint64]),
        "kvc_codec_head_scores": (c_int, [c_void_p, _F32P, c_uint32, _F32P]),
        "kvc_codec_head_apply": (c_int, [c_void_p, _F32P, c_uint32, _F32P]),
        "kvc_codec_head_stats": (c_int, [c_void_p, POINTER(_Stats)]),
        "kvc_codec_head_serialize": (c_int, [c_void_p, POINTER(c_uint8), c_size_t,
                                             POINTER(c_size_t)]),
        "kvc_codec_head_deserialize": (c_int, [POINTER(c_uint8), c_size_t, POINTER(c_void_p)]),
        "kvc_kivi_default_params": (None, [POINTER(_KiviParams), c_uint32, c_uint32]),
        "kvc_kivi_quantize": (c_int, [POINTER(_KiviParams), _F32P, _F32P, c_uint64,
                                      POINTER(c_void_p)]),
        "kvc_kivi_dequantize": (c_int, [c_void_p, _F32P, _F32P]),
        "kvc_kivi_stats": (c_int, [c_void_p, POINTER(_Stats)]),
        "kvc_kivi_num_tokens": (c_uint64, [c_void_p]),
        "kvc_kivi_free": (None, [c_void_p]),
    }
    configure(lib, sigs)
    _configured = lib
    return lib


def _check(status):
    if status == OK:
        return
    message = _lib().kvc_codec_last_error().decode("utf-8", "replace")
    if status == ERR_NONFINITE_INPUT:
        raise NonFiniteInputError(status, message)
    if status == ERR_CORRUPT:
        raise CorruptDataError(status, message)
    if status == ERR_OUT_OF_MEMORY:
        raise MemoryError(message)
    raise CodecError(status, message)


def _f32(array, shape_name, ndim_options):
    a = np.ascontiguousarray(array, dtype=np.float32)
    if a.ndim not in ndim_options:
        raise ValueError("%s must have %s dimensions, got shape %s"
                         % (shape_name, " or ".join(map(str, ndim_options)), a.shape))
    return a


def _ptr(a):
    return a.ctypes.data_as(_F32P)


def _stats_dict(stats):
    return {name: getattr(stats, name) for name, _ in stats._fields_}


class EncodedHead:
    """The codec state of one (layer, KV head); see encode_head()."""

    def __init__(self, handle):
        self._handle = c_void_p(handle)

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value and _configured is not None:
            _configured.kvc_codec_head_free(handle)
            self._handle = None

    @classmethod
    def create(cls, head_dim, k_error=0.05, v_error=0.1, key_block=64, value_block=128,
               key_recent=128, value_recent=256, key_grouping="block"):
        lib = _lib()
        params = _Params()
        lib.kvc_codec_default_params(ctypes.byref(params), int(head_dim))
        params.key_error = k_error
        params.value_error = v_error
        params.key_block_tokens = key_block
        params.value_block_tokens = value_block
        params.key_recent_tokens = key_recent
        params.value_recent_tokens = value_recent
        if key_grouping not in ("block", "channel"):
            raise ValueError("key_grouping must be 'block' or 'channel'")
        params.key_grouping = KEY_BLOCK if key_grouping == "block" else KEY_CHANNEL
        handle = c_void_p()
        _check(lib.kvc_codec_head_create(ctypes.byref(params), ctypes.byref(handle)))
        return cls(handle.value)

    @property
    def head_dim(self):
        return self.params()["head_dim"]

    @property
    def num_tokens(self):
        return int(_lib().kvc_codec_head_num_tokens(self._handle))

    def __len__(self):
        return self.num_tokens

    def params(self):
        p = _Params()
        _check(_lib().kvc_codec_head_params(self._handle, ctypes.byref(p)))
        return {name: getattr(p, name) for name, _ in p._fields_}

    def append(self, k, v):
        """Appends tokens k, v: [n, d] (or [d] for one token)."""
        d = self.head_dim
        k = _f32(k, "k", (1, 2)).reshape(-1, d)
        v = _f32(v, "v", (1, 2)).reshape(-1, d)
        if k.shape != v.shape:
            raise ValueError("k and v shapes differ: %s vs %s" % (k.shape, v.shape))
        _check(_lib().kvc_codec_head_append(self._handle, _ptr(k), _ptr(v), k.shape[0]))
        return self

    def decode(self):
        """Returns (K_hat, V_hat), float32 [T, d]."""
        T, d = self.num_tokens, self.head_dim
        K = np.empty((T, d), np.float32)
        V = np.empty((T, d), np.float32)
        _check(_lib().kvc_codec_head_decode(self._handle, _ptr(K), _ptr(V)))
        return K, V

    def symbols(self, stream="keys"):
        """Quantization symbols of the encoded tokens, uint16 [encoded_tokens, d]."""
        kind = KEYS if stream == "keys" else VALUES
        st = self.stats()
        n = st["key_encoded_tokens"] if kind == KEYS else st["value_encoded_tokens"]
        out = np.empty((n, self.head_dim), np.uint16)
        _check(_lib().kvc_codec_head_decode_symbols(
            self._handle, kind, out.ctypes.data_as(POINTER(c_uint16)), out.size))
        return out

    def scores(self, q):
        """Fused q.K^T from the encoded form: q [g, d] -> [g, T]; q [d] -> [T]."""
        q = _f32(q, "q", (1, 2))
        squeeze = q.ndim == 1
        q = q.reshape(-1, self.head_dim)
        out = np.empty((q.shape[0], self.num_tokens), np.float32)
        _check(_lib().kvc_codec_head_scores(self._handle, _ptr(q), q.shape[0], _ptr(out)))
        return out[0] if squeeze else out

    def apply(self, p):
        """Fused p.V from the encoded form: p [g, T] -> [g, d]; p [T] -> [d]."""
        p = _f32(p, "p", (1, 2))
        squeeze = p.ndim == 1
        p = p.reshape(-1, self.num_tokens)
        out = np.empty((p.shape[0], self.head_dim), np.float32)
        _check(_lib().kvc_codec_head_apply(self._handle, _ptr(p), p.shape[0], _ptr(out)))
        return out[0] if squeeze else out

    def stats(self):
        """Byte accounting (dict); see kvc_codec_stats in Codec.h."""
        st = _Stats()
        _check(_lib().kvc_codec_head_stats(self._handle, ctypes.byref(st)))
        return _stats_dict(st)

    def serialize(self):
        lib = _lib()
        size = c_size_t()
        _check(lib.kvc_codec_head_serialize(self._handle, None, 0, ctypes.byref(size)))
        buf = (c_uint8 * size.value)()
        _check(lib.kvc_codec_head_serialize(self._handle, buf, size.value, ctypes.byref(size)))
        return bytes(buf)

    @classmethod
    def deserialize(cls, data):
        lib = _lib()
        data = bytes(data)
        buf = (c_uint8 * len(data)).from_buffer_copy(data)
        handle = c_void_p()
        _check(lib.kvc_codec_head_deserialize(buf, len(data), ctypes.byref(handle)))
        return cls(handle.value)


def encode_head(K, V, k_error=0.05, v_error=0.1, **options):
    """Encodes a prefill K, V ([T, d]) into a new EncodedHead.

    options: key_block, value_block, key_recent, value_recent, key_grouping ('block'|'channel').
    """
    K = _f32(K, "K", (2,))
    V = _f32(V, "V", (2,))
    if K.shape != V.shape:
        raise ValueError("K and V shapes differ: %s vs %s" % (K.shape, V.shape))
    head = EncodedHead.create(K.shape[1], k_error=k_error, v_error=v_error, **options)
    head.append(K, V)
    return head


class KiviHead:
    """KIVI-style b-bit baseline of one head (per-channel K, per-token V, fp16 recent)."""

    def __init__(self, handle, head_dim):
        self._handle = c_void_p(handle)
        self.head_dim = head_dim

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value and _configured is not None:
            _configured.kvc_kivi_free(handle)
            self._handle = None

    @property
    def num_tokens(self):
        return int(_lib().kvc_kivi_num_tokens(self._handle))

    def dequantize(self):
        T, d = self.num_tokens, self.head_dim
        K = np.empty((T, d), np.float32)
        V = np.empty((T, d), np.float32)
        _check(_lib().kvc_kivi_dequantize(self._handle, _ptr(K), _ptr(V)))
        return K, V

    decode = dequantize

    def stats(self):
        st = _Stats()
        _check(_lib().kvc_kivi_stats(self._handle, ctypes.byref(st)))
        return _stats_dict(st)


def kivi_quantize(K, V, bits=2, value_bits=None, group_size=32, recent=128):
    """KIVI baseline: K, V [T, d] -> KiviHead (bits in {2, 3, 4, 8})."""
    K = _f32(K, "K", (2,))
    V = _f32(V, "V", (2,))
    if K.shape != V.shape:
        raise ValueError("K and V shapes differ: %s vs %s" % (K.shape, V.shape))
    lib = _lib()
    params = _KiviParams()
    lib.kvc_kivi_default_params(ctypes.byref(params), K.shape[1], bits)
    params.value_bits = bits if value_bits is None else value_bits
    params.group_tokens = group_size
    params.recent_tokens = recent
    handle = c_void_p()
    _check(lib.kvc_kivi_quantize(ctypes.byref(params), _ptr(K), _ptr(V), K.shape[0],
                                 ctypes.byref(handle)))
    return KiviHead(handle.value, K.shape[1])


__all__ = ["EncodedHead", "KiviHead", "encode_head", "kivi_quantize", "CodecError",
           "NonFiniteInputError", "CorruptDataError", "KEY_BLOCK", "KEY_CHANNEL"]
