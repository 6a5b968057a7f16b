"""ctypes bindings to libkvc_runtime.so, the C ABI shared by compiled code, tools and Python."""

from ._lib import load_library, RuntimeLibraryError  # noqa: F401
