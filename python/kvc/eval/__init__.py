"""Offline evaluation of KV-cache compression (``kvc-eval`` / ``python -m kvc.eval``)."""
from .methods import (Compressor, CompressedCache, METHOD_DEFAULTS, METHODS,  # noqa: F401
                      MethodUnavailableError, make_compressor)
