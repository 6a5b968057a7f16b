"""Text helpers for evaluation: bundled texts and cutting token contexts out of files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def bundled_texts() -> List[Path]:
    """The natural-language texts shipped in examples/texts/ (see its README)."""
    d = repo_root() / "examples" / "texts"
    return sorted(p for p in d.glob("*.txt")) if d.is_dir() else []


def read_text(path) -> str:
    return Path(path).read_text(encoding="utf-8", errors="replace")


@dataclass
class Context:
    source: str          # file name
    offset: int          # token offset of the context in the file's token stream (excl. BOS)
    context: np.ndarray  # [T] token ids (starting with BOS when the tokenizer adds one)
    continuation: np.ndarray  # [N] the next N tokens of the same text

    @property
    def name(self) -> str:
        return f"{Path(self.source).name}@{self.offset}"


def cut_contexts(ids_no_bos: Sequence[int], source: str, context: int, continuation: int,
                 per_file: int = 1, bos_id: Optional[int] = None) -> List[Context]:
    """Cuts up to ``per_file`` non-overlapping (context, continuation) pairs from a token stream.

    Each context has exactly ``context`` tokens; when ``bos_id`` is given it is the first of
    them, followed by context-1 text tokens.  The continuation is the next ``continuation``
    tokens of the same text.  Returns [] when the text is too short for one pair.
    """
    ids = np.asarray(ids_no_bos, dtype=np.int64)
    n_text = context - (1 if bos_id is not None else 0)
    span = n_text + continuation
    out: List[Context] = []
    off = 0
    while len(out) < per_file and off + span <= len(ids):
        body = ids[off:off + n_text]
        ctx = np.concatenate([[bos_id], body]).astype(np.int64) if bos_id is not None else body.copy()
        out.append(Context(source=str(source), offset=off, context=ctx,
                           continuation=ids[off + n_text:off + span].copy()))
        off += span
    return out


def contexts_from_files(tokenizer, files: Sequence, context: int, continuation: int,
                        per_file: int = 1, warn=None) -> List[Context]:
    """Tokenizes each file and cuts contexts; files too short are skipped (``warn`` is told)."""
    out: List[Context] = []
    bos = tokenizer.bos_id if getattr(tokenizer, "add_bos", True) else None
    for f in files:
        ids = tokenizer.encode(read_text(f), add_bos=False)
        got = cut_contexts(ids, str(f), context, continuation, per_file, bos)
        if not got and warn is not None:
            warn(f"skipping {f}: {len(ids)} tokens < context {context} + continuation {continuation}")
        out.extend(got)
    return out
