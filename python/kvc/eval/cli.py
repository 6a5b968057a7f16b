"""kvc-eval: offline evaluation of KV-cache compression on a reference model.

  kvc-eval kl   --model gemma3-270m --text-file a.txt --methods streaming,full --ratios 0.3,0.5 ...
  kvc-eval ppl  --model gemma3-270m --text-file a.txt [--tokens 2048]
  kvc-eval info --model gemma3-270m
  kvc-eval codec  --model gemma3-270m --text-file a.txt --json out.json   (KVComp vs KIVI)
  kvc-eval budget --model gemma3-270m --text-file a.txt --json out.json   (GVote vs baselines)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .methods import METHODS, METHOD_DEFAULTS, MethodUnavailableError


def _err(msg: str):
    sys.stderr.write(f"kvc-eval: {msg}\n")


def _floats(s: str):
    return [float(x) for x in s.split(",") if x.strip()]


def _load(spec):
    from ..models import load_model, ModelNotAvailableError, UnsupportedModelError
    t = time.perf_counter()
    try:
        m = load_model(spec)
    except (ModelNotAvailableError, UnsupportedModelError, FileNotFoundError, ImportError) as e:
        _err(str(e))
        raise SystemExit(2)
    _err(f"loaded {m.cfg.name} in {time.perf_counter() - t:.1f}s: {m.cfg.summary()}")
    return m


def _need_tokenizer(m):
    if m.tokenizer is None:
        _err(f"{m.source}: no tokenizer available (Hugging Face directories need tokenizer.json and "
             f"the 'tokenizers' package: pip install tokenizers)")
        raise SystemExit(2)


def _text_files(args):
    from ..text import bundled_texts
    files = list(args.text_file or [])
    if not files:
        files = bundled_texts()
        if not files:
            _err("no --text-file given and no bundled texts found in examples/texts/")
            raise SystemExit(2)
    for f in files:
        if not Path(f).is_file():
            _err(f"no such text file: {f}")
            raise SystemExit(2)
    return files


def load_model_and_contexts(args):
    """The model of --model and the contexts cut from --text-file (--context tokens each, with
    --continuation tokens after them; at most --max-contexts). Exits with status 2 and a
    message when the model is unavailable or no text is long enough."""
    from ..text import contexts_from_files
    model = _load(args.model)
    _need_tokenizer(model)
    ctxs = contexts_from_files(model.tokenizer, _text_files(args), args.context, args.continuation,
                               args.contexts_per_file, warn=_err)
    if args.max_contexts:
        ctxs = ctxs[:args.max_contexts]
    if not ctxs:
        _err(f"no text file is long enough for {args.context}+{args.continuation} tokens")
        raise SystemExit(2)
    return model, ctxs


def cmd_kl(args) -> int:
    from .protocol import RunConfig, run_kl, format_table
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            _err(f"unknown method {m!r}; known: {', '.join(METHODS)}")
            return 2
    ratios = _floats(args.ratios)
    if any(not (0.0 < r <= 1.0) for r in ratios):
        _err("--ratios are fractions of the cache KEPT, in (0, 1]")
        return 2
    opts = {}
    for item in args.opt or []:
        try:
            key, val = item.split("=", 1)
            meth, name = key.split(".", 1)
            opts.setdefault(meth, {})[name] = json.loads(val)
        except ValueError:
            _err(f"--opt expects METHOD.NAME=JSON_VALUE, got {item!r}")
            return 2
    # Fail early (before loading the model) if a library-backed method is unavailable.
    from .methods import make_compressor
    usable = []
    for m in methods:
        try:
            make_compressor(m, **opts.get(m, {}))
            usable.append(m)
        except MethodUnavailableError as e:
            _err(str(e))
            if not args.skip_unavailable:
                _err("(pass --skip-unavailable to run the other methods anyway)")
                return 3
    methods = usable
    if not methods:
        _err("no method left to run")
        return 3
    model, ctxs = load_model_and_contexts(args)
    _err(f"{len(ctxs)} context(s) of {args.context} tokens, continuation {args.continuation}; "
         f"methods {methods}; ratios (fraction KEPT) {ratios}")
    res = run_kl(model, ctxs, RunConfig(methods=methods, ratios=ratios, method_opts=opts,
                                        local_rule_check=args.local_rule_check,
                                        local_layers=args.local_layers,
                                        progress=not args.no_progress))
    res["command"] = " ".join(["kvc-eval"] + sys.argv[1:])
    res["method_defaults"] = {m: {**METHOD_DEFAULTS.get(m, {}), **opts.get(m, {})} for m in methods}
    if any(METHODS[m].needs_runtime for m in methods):
        from kvc.runtime import compress as rc
        res["library_defaults"] = rc.default_options()
    print(f"model: {model.cfg.name}  contexts: {len(ctxs)}  T={args.context}  N={args.continuation}  "
          f"(r = fraction of stored KV pairs kept; KL(full||compressed) in nats)")
    print(format_table(res))
    if args.local_rule_check:
        v = [c["local_rule_kl"] for c in res["contexts"]]
        print(f"local-layer rule vs plain model: KL(plain||reference) mean {sum(v) / len(v):.6f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
        _err(f"wrote {args.json}")
    if args.plot:
        _plot(res, args.plot)
        _err(f"wrote {args.plot}")
    return 0


def _plot(res, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _err("--plot needs matplotlib (pip install matplotlib)")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    by = {}
    for r in res["records"]:
        by.setdefault(r["method"], []).append((r["ratio"], r["kl"]))
    for m, pts in by.items():
        pts.sort()
        if m == "full":
            continue
        ax.plot([p[0] for p in pts], [max(p[1], 1e-8) for p in pts], marker="o", label=m)
    ax.set_yscale("log")
    ax.set_xlabel("r (fraction of KV pairs kept)")
    ax.set_ylabel("mean KL(full || compressed) [nats]")
    ax.set_title(f"{res['model']['name']}: {len(res['contexts'])} context(s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def cmd_ppl(args) -> int:
    from ..text import read_text
    model = _load(args.model)
    _need_tokenizer(model)
    for f in _text_files(args):
        ids = model.tokenizer.encode(read_text(f))[:args.tokens]
        t = time.perf_counter()
        ppl, nll = model.perplexity(ids)
        print(f"{f}: {len(ids)} tokens  ppl {ppl:.3f}  nll {nll:.4f}  ({time.perf_counter() - t:.1f}s)")
    return 0


def cmd_info(args) -> int:
    model = _load(args.model)
    c = model.cfg
    print(c.summary())
    for k, v in sorted(c.provenance.items()):
        print(f"  {k:40s} {v}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kvc-eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def model_arg(sp):
        sp.add_argument("--model", default="gemma3-270m",
                        help="gemma3-270m (PyPI package), a .gguf path (gemma3), or a Hugging Face "
                             "directory (llama/qwen2, config.json + safetensors)")

    k = sub.add_parser("kl", help="next-token KL over teacher-forced continuations")
    model_arg(k)
    k.add_argument("--text-file", action="append", help="natural-language text (repeatable); "
                   "default: examples/texts/*.txt")
    k.add_argument("--methods", default="streaming,full",
                   help=f"comma list from: {', '.join(METHODS)}")
    k.add_argument("--ratios", default="0.3,0.5,0.7", help="fractions of the stored cache KEPT")
    k.add_argument("--context", type=int, default=2048, help="context tokens (incl. BOS)")
    k.add_argument("--continuation", type=int, default=128, help="teacher-forced tokens")
    k.add_argument("--contexts-per-file", type=int, default=1)
    k.add_argument("--max-contexts", type=int, default=0)
    k.add_argument("--opt", action="append", metavar="METHOD.NAME=JSON",
                   help="override a method default, e.g. sculpt.outer_steps=50")
    k.add_argument("--skip-unavailable", action="store_true",
                   help="skip methods whose library is missing instead of failing")
    k.add_argument("--local-layers", choices=["common-window", "exact"], default="common-window",
                   help="sliding-window layers: common-window (default) = store and compress the "
                        "last window-N context tokens, visible to all N new tokens; exact = do not "
                        "compress them (they slide exactly; only global layers are compressed)")
    k.add_argument("--local-rule-check", action="store_true",
                   help="also run the plain model over context+continuation and report "
                        "KL(plain || reference) caused by the local-layer cache rule")
    k.add_argument("--json")
    k.add_argument("--plot")
    k.add_argument("--no-progress", action="store_true")
    k.set_defaults(fn=cmd_kl)

    q = sub.add_parser("ppl", help="perplexity of text files under the exact model")
    model_arg(q)
    q.add_argument("--text-file", action="append")
    q.add_argument("--tokens", type=int, default=2048)
    q.set_defaults(fn=cmd_ppl)

    i = sub.add_parser("info", help="print the model configuration and where each value came from")
    model_arg(i)
    i.set_defaults(fn=cmd_info)
    return p


# Subcommands with their own argument parsers (kvc-eval codec --help, kvc-eval budget --help).
_DELEGATED = {
    "codec": ("kvc.eval.codec_eval", "KVComp codec vs KIVI: bits/element, compression ratio, KL"),
    "budget": ("kvc.eval.budget_eval", "GVote vs fixed-budget baselines: KL vs kept fraction, passkey"),
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATED:
        import importlib
        module = importlib.import_module(_DELEGATED[argv[0]][0])
        return int(module.main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    return int(args.fn(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
