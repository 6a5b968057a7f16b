"""Locates and loads libkvc_runtime.so.

Search order: $KVC_RUNTIME_LIB (a file), $KVC_BUILD_DIR/lib, then <repo>/build/lib.
"""
import ctypes
import os
from pathlib import Path


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
