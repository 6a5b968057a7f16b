"""Locates and loads libkvc_runtime.so.

Search order: $KVC_RUNTIME_LIB (a file), $KVC_BUILD_DIR/lib, then <repo>/build/lib.
"""
import ctypes
import os
from pathlib import Path

import numpy as np


class RuntimeLibraryError(RuntimeError):
    pass


_LIB = None


def _candidates():
    env = os.environ.get("KVC_RUNTIME_LIB")
    if env:
        yield Path(env)
    build = os.environ.get("KVC_BUILD_DIR")
    if build:
        yield Path(build) / "lib" / "libkvc_runtime.so"
    repo = Path(__file__).resolve().parents[3]
    yield repo / "build" / "lib" / "libkvc_runtime.so"


def load_library():
    """Returns the loaded ctypes.CDLL, loading it on first use."""
    global _LIB
    if _LIB is not None:
        return _LIB
    tried = []
    for path in _candidates():
        tried.append(str(path))
        if path.is_file():
            _LIB = ctypes.CDLL(str(path))
            return _LIB
    raise RuntimeLibraryError(
        "libkvc_runtime.so not found (tried: %s). Build kvc first (scripts/setup.sh) or set "
        "KVC_RUNTIME_LIB / KVC_BUILD_DIR." % ", ".join(tried))


# Shared ctypes plumbing of the bindings (compress.py, vote.py, codec.py).
F32P = ctypes.POINTER(ctypes.c_float)
I64P = ctypes.POINTER(ctypes.c_int64)
F64P = ctypes.POINTER(ctypes.c_double)


def configure(lib, signatures):
    """Sets restype/argtypes of each `name: (restype, [argtypes])` on `lib`."""
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


def f32_array(array, ndim, name):
    """A C-contiguous float32 copy/view of `array` with `ndim` dimensions (None stays None)."""
    if array is None:
        return None
    a = np.ascontiguousarray(array, dtype=np.float32)
    if a.ndim != ndim:
        raise ValueError("%s must be %d-D, got shape %s" % (name, ndim, a.shape))
    return a


def pointer(a, kind=F32P):
    """ctypes pointer to a numpy array's data (None for None)."""
    return None if a is None else a.ctypes.data_as(kind)
