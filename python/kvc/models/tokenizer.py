"""SentencePiece-style BPE tokenizer built from a GGUF vocabulary (tokenizer.ggml.model == "llama").

Algorithm (the one SentencePiece's BPE model and llama.cpp's SPM tokenizer use):
  1. user-defined pieces (GGUF token_type 4, e.g. "\\n", runs of spaces, HTML tags) are split
     off the *raw* text first, longest match first (they are never merged with neighbours);
  2. in the remaining fragments spaces become U+2581 ("▁"); a leading "▁" is added only if
     tokenizer.ggml.add_space_prefix is true (false for Gemma 3);
  3. start from single characters and repeatedly merge the adjacent pair whose concatenation is
     a normal vocabulary piece with the highest score (leftmost on ties);
  4. symbols that are not pieces fall back to byte tokens <0xXX> of their UTF-8 bytes.
A BOS token is prepended when tokenizer.ggml.add_bos_token is true.
"""
from __future__ import annotations

import heapq
import re
from typing import List, Optional, Sequence

SPACE = "\u2581"

# GGUF / llama.cpp token types
TT_NORMAL, TT_UNKNOWN, TT_CONTROL, TT_USER_DEFINED, TT_UNUSED, TT_BYTE = 1, 2, 3, 4, 5, 6


class SPMTokenizer:
    def __init__(self, tokens: Sequence[str], scores: Sequence[float], types: Sequence[int],
                 bos_id: Optional[int], eos_id: Optional[int], unk_id: Optional[int],
                 add_bos: bool = True, add_space_prefix: bool = False):
        self.tokens = list(tokens)
        self.scores = [float(s) for s in scores]
        self.types = [int(t) for t in types]
        self.bos_id, self.eos_id, self.unk_id = bos_id, eos_id, unk_id
        self.add_bos, self.add_space_prefix = add_bos, add_space_prefix
        self.piece_to_id = {}
        self.byte_to_id = {}
        user = []
        for i, (t, ty) in enumerate(zip(self.tokens, self.types)):
            if ty == TT_NORMAL:
                self.piece_to_id.setdefault(t, i)
            elif ty == TT_BYTE and len(t) == 6 and t.startswith("<0x"):
                self.byte_to_id[int(t[3:5], 16)] = i
            elif ty == TT_USER_DEFINED:
                user.append(t)
        self.user_to_id = {t: i for i, t in enumerate(self.tokens) if self.types[i] == TT_USER_DEFINED}
        user.sort(key=len, reverse=True)
        self._user_re = re.compile("|".join(re.escape(u) for u in user)) if user else None

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    # ------------------------------------------------------------------ encode
    def encode(self, text: str, add_bos: Optional[bool] = None) -> List[int]:
        ids: List[int] = []
        if (self.add_bos if add_bos is None else add_bos) and self.bos_id is not None:
            ids.append(self.bos_id)
        first = True
        pos = 0
        matches = self._user_re.finditer(text) if self._user_re is not None else ()
        for m in matches:
            if m.start() > pos:
                ids.extend(self._encode_fragment(text[pos:m.start()], first))
            ids.append(self.user_to_id[m.group(0)])
            first = False
            pos = m.end()
        if pos < len(text):
            ids.extend(self._encode_fragment(text[pos:], first))
        return ids

    def _encode_fragment(self, frag: str, first: bool) -> List[int]:
        frag = frag.replace(" ", SPACE)
        if self.add_space_prefix and first:
            frag = SPACE + frag
        syms = list(frag)
        n = len(syms)
        if n == 0:
            return []
        prev = list(range(-1, n - 1))
        nxt = list(range(1, n + 1))
        nxt[-1] = -1
        alive = [True] * n
        heap = []
        p2i, sc = self.piece_to_id, self.scores

        def push(i):
            j = nxt[i]
            if j < 0:
                return
            s = syms[i] + syms[j]
            tid = p2i.get(s)
            if tid is not None:
                heapq.heappush(heap, (-sc[tid], i, s))

        for i in range(n - 1):
            push(i)
        while heap:
            _, i, s = heapq.heappop(heap)
            j = nxt[i] if alive[i] else -1
            if j < 0 or syms[i] + syms[j] != s:
                continue  # stale entry
            syms[i] = s
            alive[j] = False
            nxt[i] = nxt[j]
            if nxt[j] >= 0:
                prev[nxt[j]] = i
            if prev[i] >= 0:
                push(prev[i])
            push(i)
        out: List[int] = []
        i = 0
        while i >= 0:
            s = syms[i]
            tid = p2i.get(s)
            if tid is not None:
                out.append(tid)
            else:
                for b in s.encode("utf-8"):
                    bid = self.byte_to_id.get(b, self.unk_id)
                    if bid is not None:
                        out.append(bid)
            i = nxt[i]
        return out

    # ------------------------------------------------------------------ decode
    def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
        out = bytearray()
        for i in ids:
            i = int(i)
            ty = self.types[i]
            if ty == TT_BYTE:
                out.append(int(self.tokens[i][3:5], 16))
            elif ty in (TT_CONTROL, TT_UNKNOWN, TT_UNUSED) and skip_special:
                continue
            else:
                out.extend(self.tokens[i].replace(SPACE, " ").encode("utf-8"))
        return out.decode("utf-8", errors="replace")
