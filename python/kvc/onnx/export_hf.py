"""Export tiny random-init transformers decoders (Llama, Qwen2, Gemma3) to ONNX.

    /work/venv-export/bin/python -m kvc.onnx.export_hf --out test/Integration/ONNX/hf

(run from `python/` or with PYTHONPATH=python). Needs torch, transformers and onnxscript (not in
python/requirements.txt: CI uses the committed exports, see test/Integration/ONNX/hf.py).

For every architecture and both exporters -- the dynamo exporter at opset 23 (`dynamo`) and the
legacy TorchScript exporter at opset 17 (`legacy`) -- two graphs are written:

* `<arch>_<exporter>_prefill.onnx`: input_ids, attention_mask, position_ids -> logits,
  present.<i>.key, present.<i>.value;
* `<arch>_<exporter>_decode.onnx`: the same plus past_key_values.<i>.key/value
  (B, Hkv, P, D) per layer, for one (or more) new tokens.

The HF model is wrapped in a module that takes the past tensors explicitly and builds the
`DynamicCache` inside (as optimum does). Batch, sequence and past length are dynamic axes. The
manifest `manifest.json` records the versions, the configs and this command.
"""

import argparse
import json
import os
import sys
import warnings

import torch
import transformers
from torch import nn

SEED = 0

# Tiny configs (each export ~0.1 MB): hidden 32, 2 layers, 4 heads, 2 KV heads, head_dim 16,
# vocab 128, mlp 64.
COMMON = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, head_dim=16,
              max_position_embeddings=256, tie_word_embeddings=True)


def make_model(arch, dtype=torch.float32):
    torch.manual_seed(SEED)
    if arch == "llama":
        cfg = transformers.LlamaConfig(**COMMON, rms_norm_eps=1e-5)
        model = transformers.LlamaForCausalLM(cfg)
    elif arch == "qwen2":
        cfg = transformers.Qwen2Config(**COMMON, rms_norm_eps=1e-6, use_sliding_window=False)
        model = transformers.Qwen2ForCausalLM(cfg)
    elif arch == "gemma3":
        # Layer 0 is a sliding-window layer (window larger than the test lengths, so the cache
        # is not cropped; the mask still goes through the sliding-window path), layer 1 global.
        cfg = transformers.Gemma3TextConfig(
            **COMMON, rms_norm_eps=1e-6, sliding_window=64,
            layer_types=["sliding_attention", "full_attention"], query_pre_attn_scalar=16,
            final_logit_softcapping=None, attn_logit_softcapping=None)
        model = transformers.Gemma3ForCausalLM(cfg)
    else:
        raise ValueError(arch)
    model.eval()
    return model.to(dtype)


class WithPast(nn.Module):
    """input_ids, attention_mask, position_ids[, past k/v per layer] -> logits, present k/v."""

    def __init__(self, model, with_past):
        super().__init__()
        self.model = model
        self.with_past = with_past
        self.n_layers = model.config.num_hidden_layers

    def forward(self, input_ids, attention_mask, position_ids, *past):
        from transformers.cache_utils import DynamicCache
        cache = DynamicCache(config=self.model.config)
        if self.with_past:
            for i in range(self.n_layers):
                cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                         position_ids=position_ids, past_key_values=cache, use_cache=True)
        res = [out.logits]
        for i in range(self.n_layers):
            layer = out.past_key_values.layers[i]
            res += [layer.keys, layer.values]
        return tuple(res)


def example_inputs(model, with_past, batch=2, seq=5, past=4, dtype=torch.float32):
    cfg = model.config
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, cfg.vocab_size, (batch, seq), generator=g)
    p = past if with_past else 0
    mask = torch.ones(batch, p + seq, dtype=torch.int64)
    pos = torch.arange(p, p + seq, dtype=torch.int64).unsqueeze(0).expand(batch, seq).contiguous()
    pasts = []
    if with_past:
        for _ in range(cfg.num_hidden_layers):
            for _ in range(2):
                pasts.append(torch.randn(batch, cfg.num_key_value_heads, p, cfg.head_dim,
                                         generator=g).to(dtype))
    return (ids, mask, pos, *pasts)


def names(n_layers, with_past):
    ins = ["input_ids", "attention_mask", "position_ids"]
    if with_past:
        for i in range(n_layers):
            ins += ["past_key_values.%d.key" % i, "past_key_values.%d.value" % i]
    outs = ["logits"]
    for i in range(n_layers):
        outs += ["present.%d.key" % i, "present.%d.value" % i]
    return ins, outs


def export(arch, exporter, kind, out_dir, dtype="float32"):
    with_past = kind == "decode"
    # sdpa: the dynamo exporter turns F.scaled_dot_product_attention into ONNX Attention
    # (opset 23); the legacy exporter decomposes it into MatMul/Softmax.
    tdt = getattr(torch, dtype)
    model = make_model(arch, tdt)
    wrapper = WithPast(model, with_past)
    args = example_inputs(model, with_past, dtype=tdt)
    ins, outs = names(model.config.num_hidden_layers, with_past)
    suffix = "" if dtype == "float32" else "_" + {"float16": "f16", "bfloat16": "bf16"}[dtype]
    path = os.path.join(out_dir, "%s_%s_%s%s.onnx" % (arch, exporter, kind, suffix))
    if exporter == "legacy":
        dyn = {"input_ids": {0: "batch", 1: "sequence"},
               "attention_mask": {0: "batch", 1: "total_sequence"},
               "position_ids": {0: "batch", 1: "sequence"},
               "logits": {0: "batch", 1: "sequence"}}
        for n in ins[3:]:
            dyn[n] = {0: "batch", 2: "past_sequence"}
        for n in outs[1:]:
            dyn[n] = {0: "batch", 2: "total_sequence"}
        torch.onnx.export(wrapper, args, path, input_names=ins, output_names=outs,
                          dynamic_axes=dyn, opset_version=17, dynamo=False,
                          do_constant_folding=True)
    else:
        B = torch.export.Dim("batch", min=1, max=64)
        S = torch.export.Dim("sequence", min=1, max=128)
        if with_past:
            P = torch.export.Dim("past_sequence", min=1, max=128)
            T = torch.export.Dim("total_sequence", min=2, max=256)
            dyn = [{0: B, 1: S}, {0: B, 1: T}, {0: B, 1: S}, tuple({0: B, 2: P} for _ in ins[3:])]
        else:
            dyn = [{0: B, 1: S}, {0: B, 1: S}, {0: B, 1: S}]
        prog = torch.onnx.export(wrapper, args, input_names=ins, output_names=outs,
                                 dynamic_shapes=tuple(dyn), opset_version=23, dynamo=True,
                                 optimize=True)
        prog.save(path)
    import onnx
    m = onnx.load(path)
    # Drop per-node/value metadata (source locations, fx nodes: ~60% of a dynamo file) and doc
    # strings; the graph itself is untouched.
    for node in m.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        del vi.metadata_props[:]
    for t in m.graph.initializer:
        del t.metadata_props[:]
    onnx.save(m, path)
    ops = {}
    for node in m.graph.node:
        key = (node.domain + "." if node.domain else "") + node.op_type
        ops[key] = ops.get(key, 0) + 1
    return path, ops


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", action="append", choices=["llama", "qwen2", "gemma3"])
    ap.add_argument("--exporter", action="append", choices=["dynamo", "legacy"])
    ap.add_argument("--kind", action="append", choices=["prefill", "decode"])
    ap.add_argument("--dtype", action="append", choices=["float32", "float16"],
                    help="default: float32 for every arch, float16 for llama")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    warnings.filterwarnings("ignore")
    import onnx
    import onnxscript
    manifest = {
        "command": "python -m kvc.onnx.export_hf " + " ".join(argv if argv is not None else sys.argv[1:]),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "onnx": onnx.__version__, "onnxscript": onnxscript.__version__},
        "seed": SEED, "config": COMMON, "models": {}}
    for arch in a.arch or ["llama", "qwen2", "gemma3"]:
        for dtype in a.dtype or (["float32", "float16"] if arch == "llama" else ["float32"]):
            for exporter in a.exporter or ["dynamo", "legacy"]:
                for kind in a.kind or ["prefill", "decode"]:
                    path, ops = export(arch, exporter, kind, a.out, dtype)
                    print("%s: %d bytes, ops %s" % (path, os.path.getsize(path), " ".join(
                        "%s=%d" % kv for kv in sorted(ops.items()))))
                    manifest["models"][os.path.basename(path)] = {
                        "arch": arch, "exporter": exporter, "kind": kind, "dtype": dtype,
                        "opset": 23 if exporter == "dynamo" else 17, "ops": ops}
    mpath = os.path.join(a.out, "manifest.json")
    if os.path.exists(mpath) and (a.arch or a.exporter or a.kind):
        old = json.load(open(mpath))
        old["models"].update(manifest["models"])
        manifest["models"] = old["models"]
    with open(mpath, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
