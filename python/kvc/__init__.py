"""kvc: Python side of the kvc KV-cache compiler (runtime bindings, reference numerics, evaluation)."""

__version__ = "0.1.0"
