"""Cross-check of the numpy Gemma 3 against llama.cpp on the same GGUF file (optional).

Needs the ``llama_cpp`` module (llama-cpp-python; built from source, not a kvc dependency):

    python -m kvc.eval.llamacpp_check [--tokens 1024] [--model gemma3-270m] [TEXT ...]

For each text (default: examples/texts/*.txt): compares token ids of our tokenizer with
llama.cpp's, then the logits of the first --tokens tokens: perplexity of both, mean/max
KL(llama.cpp || ours), top-1 agreement.  See docs/evaluation.md §2.4 for measured numbers.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("texts", nargs="*")
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    try:
        from llama_cpp import Llama
    except ImportError:
        sys.stderr.write("llamacpp_check needs llama-cpp-python (pip install llama-cpp-python; builds llama.cpp)\n")
        return 2
    from ..models import load_model
    from ..models.decoder import log_softmax
    from ..text import bundled_texts, read_text
    model = load_model(args.model)
    llm = Llama(model_path=str(model.source), n_ctx=max(2048, args.tokens), n_batch=512, n_ubatch=512,
                logits_all=True, verbose=False, n_threads=args.threads, type_k=0, type_v=0)
    for path in (args.texts or [str(p) for p in bundled_texts()]):
        text = read_text(path)
        ours = model.tokenizer.encode(text)
        theirs = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        same = list(ours) == list(theirs)
        ids = np.asarray(theirs[:args.tokens])
        llm.reset()
        llm.eval(list(ids))
        b = np.array(llm.scores[:len(ids)], dtype=np.float32)
        a = model.forward_logits(ids)
        la, lb = log_softmax(a), log_softmax(b)
        kl = np.sum(np.exp(lb) * (lb - la), -1)
        r = np.arange(len(ids) - 1)
        ppl_a = float(np.exp(-la[r, ids[1:]].mean()))
        ppl_b = float(np.exp(-lb[r, ids[1:]].mean()))
        print(f"{path}: tokens ours {len(ours)} llama.cpp {len(theirs)} identical={same}; first {len(ids)}: "
              f"ppl ours {ppl_a:.4f} llama.cpp {ppl_b:.4f}; KL(llama.cpp||ours) mean {kl.mean():.2e} "
              f"max {kl.max():.2e}; top-1 agreement {np.mean(a.argmax(-1) == b.argmax(-1)):.4f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
