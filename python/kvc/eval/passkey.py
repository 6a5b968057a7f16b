"""Synthetic passkey (needle) retrieval after KV-cache compression (methods.md §6.2 item 4).

  kvc-eval budget --passkey [--lengths 512,1024,2048] [--depths 0.1,0.5,0.9] [--json out/pk.json]

Prompt = BOS + haystack with the needle "\\nThe pass key is NNNNN. Remember it.\\n" inserted at
a relative depth of the haystack.  Two kinds of haystack:
  * easy: the classic repetitive filler ("The grass is green. The sky is blue. ...");
  * hard: real, varied text of the bundled files (examples/texts), the needle snapped to a
    line / sentence boundary.
Question-agnostic protocol (kvpress style): the CONTEXT cache (haystack + needle) is compressed;
then the question "\\nWhat is the pass key? The pass key is" is fed exactly (its K/V are
exact and appended after the compressed entries) and the answer is greedy-decoded (each new
token's K/V appended as well).  Exact match: the first run of digits in the decoded answer
equals NNNNN.

Methods: ``full`` (uncompressed), ``gvote`` (budget chosen per prompt), ``snapkv-matched`` and
``expected-attention-matched`` (the same per-(layer, head) budgets as GVote on that prompt, with
SnapKV observation-window / Expected Attention scores; sinks 4 and recent 64 kept as GVote),
and fixed-ratio ``snapkv`` (the library SnapKV as in ``kvc-eval kl``) / ``expected-attention``
at ``--ratios``.  Sliding-window layers follow the common-window rule of ``kvc-eval kl``.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from .budget_eval import (DEFAULTS, baseline_kept, cache_from_kept, kept_fractions, prefill_with_stats,
                          run_gvote, snapkv_scores)

EASY_FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
NEEDLE = "\nThe pass key is {key}. Remember it.\n"
QUESTION = "\nWhat is the pass key? The pass key is"
METHODS = ("full", "gvote", "snapkv-matched", "expected-attention-matched", "snapkv", "expected-attention")


def _err(msg):
    sys.stderr.write(f"kvc-eval passkey: {msg}\n")
    sys.stderr.flush()


def build_prompt(tok, length: int, depth: float, key: int, kind: str, text_ids=None, offset: int = 0):
    """Token ids [length] (BOS first) with the needle at the given relative depth, and the
    needle's token position."""
    needle = tok.encode(NEEDLE.format(key=key), add_bos=False)
    n_hay = length - 1 - len(needle)
    if kind == "easy":
        base = tok.encode(EASY_FILLER * 4, add_bos=False)
        hay = (base * (n_hay // len(base) + 2))[:n_hay]
    else:
        src = list(text_ids)
        off = offset % max(1, len(src) - n_hay)
        hay = src[off:off + n_hay]
        if len(hay) < n_hay:
            raise ValueError("text too short for the haystack")
    pos = int(round(depth * n_hay))
    if kind != "easy":     # snap back to just after a newline / sentence end (max 64 tokens)
        for j in range(pos, max(0, pos - 64), -1):
            piece = tok.decode([hay[j - 1]]) if j > 0 else "\n"
            if piece.endswith("\n") or piece.rstrip().endswith("."):
                pos = j
                break
    bos = [tok.bos_id] if tok.bos_id is not None else []
    ids = bos + hay[:pos] + needle + hay[pos:]
    return np.asarray(ids, np.int64), len(bos) + pos


def _answer_done(text: str, n_digits: int) -> bool:
    """Early stop: the answer cannot start with the number any more, or its first digit run
    is complete (ended by a non-digit, or longer than the key)."""
    s = text.lstrip()
    if not s:
        return False
    if not s[0].isdigit():
        return True
    run = re.match(r"\d+", s).group(0)
    return len(run) < len(s) or len(run) > n_digits


def greedy_after(model, cache, question, start_pos: int, n_new: int, stop=None):
    """Feeds the question exactly, then greedy-decodes up to n_new tokens (``stop(ids)`` may end
    it early); every new token's K/V is appended to the (replacement) cache.  Returns the ids."""
    cache = [[(k, v) for (k, v, *_r) in hs] for hs in cache]
    res = model.continue_(cache, question, start_pos=start_pos, return_qkv=True)
    pos = start_pos + len(question)
    out = []
    for step in range(n_new):
        nxt = int(np.argmax(res.logits[-1]))
        out.append(nxt)
        if step == n_new - 1 or nxt == model.cfg.eos_id or (stop is not None and stop(out)):
            break
        cache = [[(np.concatenate([hs[h][0], res.keys[il][h]]), np.concatenate([hs[h][1], res.values[il][h]]))
                  for h in range(len(hs))] for il, hs in enumerate(cache)]
        res = model.continue_(cache, [nxt], start_pos=pos, return_qkv=True)
        pos += 1
    return out


def first_digits(text: str) -> str:
    m = re.search(r"\d+", text)
    return m.group(0) if m else ""


def run_passkey(model, lengths, depths, kinds, methods, p_list=(0.95,), n_samples=8, ratios=(0.2,),
                files=None, seed=1234, opts=None, progress=True, needles=1, partial_json=None) -> dict:
    from ..text import bundled_texts, read_text
    opts = {**DEFAULTS, **(opts or {})}
    tok = model.tokenizer
    files = list(files or bundled_texts())
    texts = [tok.encode(read_text(f), add_bos=False) for f in files]
    question = tok.encode(QUESTION, add_bos=False)
    n_new = len(tok.encode(" 12345.", add_bos=False)) + 1
    snap = None
    if "snapkv" in methods:
        from .methods import make_compressor
        snap = make_compressor("snapkv")
    rng = np.random.default_rng(seed)
    prompts = []
    i = 0
    for kind in kinds:
        for L in lengths:
            for d in depths:
                for rep_ in range(needles):   # needles > 1: more keys / haystack offsets per cell
                    key = int(rng.integers(10000, 100000))
                    fi = i % len(texts)
                    ids, npos = build_prompt(tok, L, d, key, kind, texts[fi], offset=97 * i)
                    prompts.append({"kind": kind, "length": L, "depth": d, "key": key, "ids": ids,
                                    "needle_token": npos, "needle": rep_,
                                    "file": None if kind == "easy" else Path(files[fi]).name})
                    i += 1
    rows = []
    t_all = time.perf_counter()
    for pi, pr in enumerate(prompts):
        ids = pr["ids"]
        T = len(ids)
        t0 = time.perf_counter()
        pre, st = prefill_with_stats(model, ids, len(question) + n_new, opts["n_sink"],
                                     query_stats=any(m.startswith("expected-attention") for m in methods))
        t_pre = time.perf_counter() - t0
        layers = pre.layers
        row = {k: v for k, v in pr.items() if k != "ids"}
        row.update({"tokens": T, "prefill_seconds": t_pre, "answers": {}, "correct": {}, "memory_fraction": {}})
        if "full" in methods:
            kept = [[np.arange(L.K.shape[1]) for _ in range(L.K.shape[0])] for L in layers]
            _ans(model, tok, row, "full", layers, kept, question, T, n_new, pr["key"])
        sscores = None
        row["gvote_layer_budgets"], row["gvote_vote_seconds"] = {}, {}
        for pv in p_list:
            if not any(m == "gvote" or m.endswith("-matched") for m in methods):
                break
            sfx = f"@p{pv:g}"
            kept, gv_bud, info = run_gvote(model, layers, st, pv, n_samples, opts)
            row["gvote_layer_budgets"][sfx] = [int(sum(b)) for b in gv_bud]
            row["gvote_vote_seconds"][sfx] = float(sum(info["vote_seconds"]))
            if "gvote" in methods:
                _ans(model, tok, row, "gvote" + sfx, layers, kept, question, T, n_new, pr["key"])
            if "snapkv-matched" in methods:
                sscores = sscores or [snapkv_scores(L, opts["n_obs"], opts["kernel"]) for L in layers]
                kept, _s = baseline_kept(model, "snapkv-matched", layers, None, st, opts, sscores, gv_bud)
                _ans(model, tok, row, "snapkv-matched" + sfx, layers, kept, question, T, n_new, pr["key"])
            if "expected-attention-matched" in methods:
                kept = _ea_matched(model, layers, st, opts, gv_bud)
                _ans(model, tok, row, "expected-attention-matched" + sfx, layers, kept, question, T, n_new,
                     pr["key"])
        for m in methods:
            if m not in ("snapkv", "expected-attention"):
                continue
            for r in ratios:
                if m == "snapkv":
                    kept = snap.compress(layers, r).kept_idx
                else:
                    kept, _s = baseline_kept(model, m, layers, r, st, opts)
                _ans(model, tok, row, f"{m}@{r:g}", layers, kept, question, T, n_new, pr["key"])
        rows.append(row)
        if partial_json:   # what has run so far, rewritten after every prompt
            Path(partial_json).write_text(json.dumps({"partial": True, "prompts": rows}, indent=1))
        if progress:
            ok = " ".join(f"{m}={'Y' if c else 'n'}" for m, c in row["correct"].items())
            gv = [round(v, 3) for k, v in row["memory_fraction"].items() if k.startswith("gvote")]
            _err(f"[{pi + 1}/{len(prompts)}] {pr['kind']} L={pr['length']} depth={pr['depth']} key={pr['key']} "
                 f"gvote kept {gv}: {ok} ({time.perf_counter() - t_all:.0f}s)")
    names = list(rows[0]["correct"]) if rows else []
    summary = {}
    for m in names:
        s = {"accuracy": float(np.mean([r["correct"][m] for r in rows])),
             "memory_fraction": float(np.mean([r["memory_fraction"][m] for r in rows]))}
        for kind in kinds:
            rr = [r for r in rows if r["kind"] == kind]
            s[f"accuracy_{kind}"] = float(np.mean([r["correct"][m] for r in rr])) if rr else None
        for L in lengths:
            rr = [r for r in rows if r["length"] == L]
            s[f"accuracy_L{L}"] = float(np.mean([r["correct"][m] for r in rr])) if rr else None
        for d in depths:
            rr = [r for r in rows if r["depth"] == d]
            s[f"accuracy_d{d:g}"] = float(np.mean([r["correct"][m] for r in rr])) if rr else None
        for kind in kinds:
            rr = [r for r in rows if r["kind"] == kind]
            s[f"memory_fraction_{kind}"] = float(np.mean([r["memory_fraction"][m] for r in rr])) if rr else None
        s["n_prompts"] = len(rows)
        summary[m] = s
    return {"protocol": __doc__, "question": QUESTION, "needle": NEEDLE, "easy_filler": EASY_FILLER,
            "n_new_tokens": n_new, "gvote": {"p": list(p_list), "n_samples": n_samples}, "options": opts,
            "prompts": rows, "summary": summary}


def _ea_matched(model, layers, st, opts, budgets):
    from kvc.runtime import vote as V
    from .budget_eval import _topk, _rope_opts
    c = model.cfg
    g = c.n_heads // c.n_kv_heads
    kept = []
    for il, L in enumerate(layers):
        ks = []
        for h in range(L.K.shape[0]):
            s = V.expected_attention_scores(
                L.K[h], st.q_mean[il][h * g:(h + 1) * g], st.q_cov[il][h * g:(h + 1) * g], V=L.V[h],
                position=int(L.positions[-1]), epsilon=0.0, scale=c.attn_scale, n_sink=opts["n_sink"],
                n_future=opts["n_future"], **_rope_opts(model, L))
            ks.append(np.asarray(_topk(s, budgets[il][h], opts["n_sink"], opts["n_recent"]), np.int64))
        kept.append(ks)
    return kept


def _ans(model, tok, row, name, layers, kept, question, T, n_new, key):
    nd = len(str(key))
    gen = greedy_after(model, cache_from_kept(layers, kept), question, T, n_new,
                       stop=lambda ids: _answer_done(tok.decode(ids), nd))
    text = tok.decode(gen)
    row["answers"][name] = text
    row["correct"][name] = first_digits(text) == str(key)
    row["memory_fraction"][name] = kept_fractions(layers, kept)[1]


def format_table(res) -> str:
    s = res["summary"]
    keys = [k for k in next(iter(s.values())).keys() if k.startswith("accuracy_")] if s else []
    hdr = ("method", "mem frac", "acc") + tuple(k.replace("accuracy_", "") for k in keys)
    rows = [hdr] + [(m, f"{v['memory_fraction']:.3f}", f"{v['accuracy']:.2f}")
                    + tuple("-" if v[k] is None else f"{v[k]:.2f}" for k in keys) for m, v in s.items()]
    w = [max(len(r[i]) for r in rows) for i in range(len(hdr))]
    lines = ["  ".join(r[i].rjust(w[i]) if i else r[i].ljust(w[i]) for i in range(len(r))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append("")
    lines.append("per prompt (kind, length, depth: GVote memory fraction; answers)")
    for r in res["prompts"]:
        gv = ",".join(f"{v:.3f}" for k, v in r["memory_fraction"].items() if k.startswith("gvote"))
        ans = "; ".join(f"{m}:{'Y' if r['correct'][m] else 'n'} {r['answers'][m].strip()!r}" for m in r["answers"])
        lines.append(f"  {r['kind']:4s} L={r['length']:5d} d={r['depth']:.1f} key={r['key']} "
                     f"gvote kept={gv or '-'}  {ans}")
    return "\n".join(lines)


def format_markdown(res) -> str:
    """The passkey tables of docs/budget-results.md, from a result JSON."""
    s, rows = res["summary"], res["prompts"]
    kinds = sorted({r["kind"] for r in rows}, key=lambda k: (k != "easy", k))
    lengths = sorted({r["length"] for r in rows})
    depths = sorted({r["depth"] for r in rows})
    counts = ", ".join("%d %s" % (sum(r["kind"] == k for r in rows), k) for k in kinds)
    out = [f"{len(rows)} prompts ({counts}); exact-match accuracy, memory fraction = kept / stored "
           "pairs of the context cache.", ""]
    hdr = (["method", "mem (mean)"] + [f"mem {k}" for k in kinds] + ["all"] + kinds
           + [f"L={L}" for L in lengths] + [f"depth {d:g}" for d in depths])
    out.append("| " + " | ".join(hdr) + " |")
    out.append("|" + "---|" * len(hdr))
    for m, v in s.items():
        cells = ([m, f"{v['memory_fraction']:.3f}"] + [f"{v.get(f'memory_fraction_{k}', float('nan')):.3f}" for k in kinds]
                 + [f"{v['accuracy']:.2f}"] + [f"{v[f'accuracy_{k}']:.2f}" for k in kinds]
                 + [f"{v[f'accuracy_L{L}']:.2f}" for L in lengths] + [f"{v[f'accuracy_d{d:g}']:.2f}" for d in depths])
        out.append("| " + " | ".join(cells) + " |")
    gv = [m for m in s if m.startswith("gvote")]
    for m in gv:
        out += ["", f"{m}: memory fraction chosen per prompt (Y = retrieved, n = missed; full's result in brackets)", ""]
        out.append("| kind | L | " + " | ".join(f"depth {d:g}" for d in depths) + " |")
        out.append("|---|---|" + "---|" * len(depths))
        for k in kinds:
            for L in lengths:
                cells = []
                for d in depths:
                    rr = [r for r in rows if r["kind"] == k and r["length"] == L and r["depth"] == d]
                    cells.append(" ".join(f"{r['memory_fraction'][m]:.3f} {'Y' if r['correct'][m] else 'n'}"
                                          + (f" [{'Y' if r['correct']['full'] else 'n'}]" if "full" in r["correct"] else "")
                                          for r in rr))
                out.append(f"| {k} | {L} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def build_parser():
    ap = argparse.ArgumentParser(prog="kvc-eval budget --passkey", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--text-file", action="append")
    ap.add_argument("--lengths", default="512,1024,2048")
    ap.add_argument("--depths", default="0.1,0.5,0.9")
    ap.add_argument("--kinds", default="easy,hard")
    ap.add_argument("--methods", default="full,gvote,snapkv-matched,expected-attention-matched,snapkv")
    ap.add_argument("--p", default="0.95", help="GVote nucleus mass(es), comma list")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--ratios", default="0.2", help="for fixed-ratio snapkv / expected-attention")
    ap.add_argument("--seed", type=int, default=1234, help="pass keys")
    ap.add_argument("--needles", type=int, default=1, help="prompts (keys, haystack offsets) per cell")
    ap.add_argument("--json")
    ap.add_argument("--markdown", help="write the docs tables here")
    ap.add_argument("--no-progress", action="store_true")
    return ap


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        _err(f"unknown method(s) {bad}; known: {', '.join(METHODS)}")
        return 2
    from ..models import load_model, ModelNotAvailableError, UnsupportedModelError
    try:
        model = load_model(args.model)
    except (ModelNotAvailableError, UnsupportedModelError, FileNotFoundError, ImportError) as e:
        _err(str(e))
        return 2
    t = time.perf_counter()
    res = run_passkey(model, [int(x) for x in args.lengths.split(",")], [float(x) for x in args.depths.split(",")],
                      [k for k in args.kinds.split(",") if k], methods, p_list=[float(x) for x in args.p.split(",") if x], n_samples=args.samples,
                      ratios=[float(x) for x in args.ratios.split(",") if x], files=args.text_file,
                      seed=args.seed, progress=not args.no_progress, needles=args.needles,
                      partial_json=(args.json + ".partial") if args.json else None)
    res["wall_seconds"] = time.perf_counter() - t
    res["command"] = " ".join(["kvc-eval budget --passkey"] + argv)
    print(format_table(res))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
        _err(f"wrote {args.json}")
    if args.markdown:
        Path(args.markdown).write_text(format_markdown(res) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
