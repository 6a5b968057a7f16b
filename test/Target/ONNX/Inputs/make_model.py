"""Writes small ONNX models for the importer's lit tests.

usage: make_model.py CASE OUT.onnx
Models are built with the onnx helper API (make_node / make_graph / make_model).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh


def vi(name, dtype, shape):
    return h.make_tensor_value_info(name, dtype, shape)


def model(nodes, inputs, outputs, inits=(), opset=23, extra_opsets=()):
    g = h.make_graph(nodes, "g", inputs, outputs, list(inits))
    ops = [h.make_opsetid("", opset)] + [h.make_opsetid(d, v) for d, v in extra_opsets]
    return h.make_model(g, opset_imports=ops, producer_name="kvc-test")


def decomposed_attention(opset=17):
    """MatMul(Q, Transpose(K)) * c + mask -> Softmax -> MatMul V (what Optimum-style exports do)."""
    nodes = [
        h.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2], name="kt"),
        h.make_node("MatMul", ["q", "kt"], ["s"], name="qk"),
        h.make_node("Div", ["s", "c"], ["ss"], name="scale"),
        h.make_node("Add", ["ss", "mask"], ["sm"], name="mask_add"),
        h.make_node("Softmax", ["sm"], ["p"], axis=-1, name="softmax"),
        h.make_node("MatMul", ["p", "v"], ["attn_out"], name="pv"),
    ]
    return model(nodes,
                 [vi("q", T.FLOAT, [1, 2, 3, 8]), vi("k", T.FLOAT, [1, 2, 5, 8]),
                  vi("v", T.FLOAT, [1, 2, 5, 8]), vi("mask", T.FLOAT, [1, 1, 3, 5])],
                 [vi("attn_out", T.FLOAT, [1, 2, 3, 8])],
                 [nh.from_array(np.array(np.sqrt(8.0), dtype=np.float32), "c")], opset=opset)


def decomposed_gqa():
    """torch-style export: repeat_kv (Unsqueeze, Expand, Reshape), SDPA pre-scaling of Q and K^T
    by sqrt(scale) (Mul), additive mask, Softmax, MatMul."""
    B, Hq, Hkv, S, L, D = 1, 4, 2, 3, 5, 8
    g = Hq // Hkv
    c = np.array(1.0 / np.sqrt(np.sqrt(D)), dtype=np.float32)
    n = h.make_node
    nodes = [
        n("Unsqueeze", ["k", "ax2"], ["k5"]), n("Expand", ["k5", "shape5"], ["ke"]),
        n("Reshape", ["ke", "shape4"], ["kr"]),
        n("Unsqueeze", ["v", "ax2"], ["v5"]), n("Expand", ["v5", "shape5"], ["ve"]),
        n("Reshape", ["ve", "shape4"], ["vr"]),
        n("Mul", ["q", "c"], ["qs"]), n("Transpose", ["kr"], ["kt"], perm=[0, 1, 3, 2]),
        n("Mul", ["kt", "c"], ["kts"]), n("MatMul", ["qs", "kts"], ["s"]),
        n("Add", ["s", "mask"], ["sm"]), n("Softmax", ["sm"], ["p"], axis=-1),
        n("MatMul", ["p", "vr"], ["out"]),
    ]
    inits = [nh.from_array(c, "c"), nh.from_array(np.array([2], np.int64), "ax2"),
             nh.from_array(np.array([B, Hkv, g, L, D], np.int64), "shape5"),
             nh.from_array(np.array([B, Hq, L, D], np.int64), "shape4")]
    return model(nodes,
                 [vi("q", T.FLOAT, [B, Hq, S, D]), vi("k", T.FLOAT, [B, Hkv, L, D]),
                  vi("v", T.FLOAT, [B, Hkv, L, D]), vi("mask", T.FLOAT, [B, 1, S, L])],
                 [vi("out", T.FLOAT, [B, Hq, S, D])], inits, opset=18)


def to_f16(m):
    """The same model with every float input/output/initializer in float16."""
    for v in list(m.graph.input) + list(m.graph.output):
        if v.type.tensor_type.elem_type == T.FLOAT:
            v.type.tensor_type.elem_type = T.FLOAT16
    for i, t in enumerate(m.graph.initializer):
        a = nh.to_array(t)
        if a.dtype == np.float32:
            m.graph.initializer[i].CopyFrom(nh.from_array(a.astype(np.float16), t.name))
    return m


def torch_sdpa_legacy(guard_value=0.0):
    """What torch.onnx.export(dynamo=False) writes for F.scaled_dot_product_attention with a bool
    mask (Llama/Qwen2/Gemma3 through transformers): repeat_kv, Q and K^T each scaled by
    sqrt(scale), additive Where(mask, 0, -inf), Softmax, the NaN guard Where(IsNaN(p), 0, p) for
    fully-masked rows, MatMul V. `guard_value` != 0 is a near miss (not kvc's semantics)."""
    B, Hq, Hkv, S, L, D = 1, 4, 2, 3, 5, 8
    g = Hq // Hkv
    c = np.array(1.0 / np.sqrt(np.sqrt(D)), dtype=np.float32)
    n = h.make_node
    nodes = [
        n("Unsqueeze", ["k", "ax2"], ["k5"]), n("Expand", ["k5", "shape5"], ["ke"]),
        n("Reshape", ["ke", "shape4"], ["kr"]),
        n("Unsqueeze", ["v", "ax2"], ["v5"]), n("Expand", ["v5", "shape5"], ["ve"]),
        n("Reshape", ["ve", "shape4"], ["vr"]),
        n("Mul", ["q", "c"], ["qs"]), n("Transpose", ["kr"], ["kt"], perm=[0, 1, 3, 2]),
        n("Mul", ["kt", "c"], ["kts"]), n("MatMul", ["qs", "kts"], ["s"]),
        n("Where", ["mask", "zero", "ninf"], ["bias"]),
        n("Add", ["s", "bias"], ["sm"]), n("Softmax", ["sm"], ["p"], axis=-1),
        n("IsNaN", ["p"], ["isnan"]), n("Where", ["isnan", "guard", "p"], ["pg"]),
        n("MatMul", ["pg", "vr"], ["out"]),
    ]
    inits = [nh.from_array(c, "c"), nh.from_array(np.array([2], np.int64), "ax2"),
             nh.from_array(np.array([B, Hkv, g, L, D], np.int64), "shape5"),
             nh.from_array(np.array([B, Hq, L, D], np.int64), "shape4"),
             nh.from_array(np.array(0.0, np.float32), "zero"),
             nh.from_array(np.array(-np.inf, np.float32), "ninf"),
             nh.from_array(np.array(guard_value, np.float32), "guard")]
    return model(nodes,
                 [vi("q", T.FLOAT, [B, Hq, S, D]), vi("k", T.FLOAT, [B, Hkv, L, D]),
                  vi("v", T.FLOAT, [B, Hkv, L, D]), vi("mask", T.BOOL, [B, 1, S, L])],
                 [vi("out", T.FLOAT, [B, Hq, S, D])], inits, opset=17)


def where_mask_attention(fill=-1e9, masked_fill=False):
    """Scores masked by a select instead of an added bias: Where(mask, s/sqrt(d), fill), or the
    masked_fill form Where(Not(mask), fill, s/sqrt(d)); K transposed by the MatMul operand."""
    n = h.make_node
    nodes = [n("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]), n("MatMul", ["q", "kt"], ["s"]),
             n("Div", ["s", "c"], ["ss"])]
    if masked_fill:
        nodes += [n("Not", ["mask"], ["nm"]), n("Where", ["nm", "fill", "ss"], ["sm"])]
    else:
        nodes += [n("Where", ["mask", "ss", "fill"], ["sm"])]
    nodes += [n("Softmax", ["sm"], ["p"], axis=-1), n("MatMul", ["p", "v"], ["out"])]
    inits = [nh.from_array(np.array(np.sqrt(8.0), np.float32), "c"),
             nh.from_array(np.array(fill, np.float32), "fill")]
    return model(nodes,
                 [vi("q", T.FLOAT, [1, 2, 3, 8]), vi("k", T.FLOAT, [1, 2, 5, 8]),
                  vi("v", T.FLOAT, [1, 2, 5, 8]), vi("mask", T.BOOL, [1, 1, 3, 5])],
                 [vi("out", T.FLOAT, [1, 2, 3, 8])], inits, opset=17)


def mha(packed=False):
    """com.microsoft MultiHeadAttention with a past; `packed` (key/value absent) is rejected."""
    ins = ["query", "" if packed else "key", "" if packed else "value", "bias", "", "",
           "past_key", "past_value"]
    node = h.make_node("MultiHeadAttention", ins, ["output", "present_key", "present_value"],
                       domain="com.microsoft", num_heads=2, unidirectional=1, name="mha0")
    inputs = [vi("query", T.FLOAT, [1, 2, 16])]
    if not packed:
        inputs += [vi("key", T.FLOAT, [1, 2, 16]), vi("value", T.FLOAT, [1, 2, 16])]
    inputs += [vi("bias", T.FLOAT, [48]), vi("past_key", T.FLOAT, [1, 2, 3, 8]),
               vi("past_value", T.FLOAT, [1, 2, 3, 8])]
    return model([node], inputs, [vi("output", T.FLOAT, [1, 2, 16]), vi("present_key", T.FLOAT, [1, 2, 5, 8]),
                                  vi("present_value", T.FLOAT, [1, 2, 5, 8])], opset=21,
                 extra_opsets=[("com.microsoft", 1)])


def torch_sdpa_legacy_f16_upcast():
    """torch.onnx.export (TorchScript) of float16 SDPA: the f16 Q·Kᵀ (Q and Kᵀ scaled by sqrt(s)
    in f16) is Cast to f32, masked and soft-maxed in f32, NaN-guarded, and multiplied with
    Cast(V, f32); the f32 result is Cast back to f16."""
    B, Hq, Hkv, S, L, D = 1, 4, 2, 3, 5, 8
    g = Hq // Hkv
    c = np.array(1.0 / np.sqrt(np.sqrt(D)), dtype=np.float16)
    n = h.make_node
    nodes = [
        n("Unsqueeze", ["k", "ax2"], ["k5"]), n("Expand", ["k5", "shape5"], ["ke"]),
        n("Reshape", ["ke", "shape4"], ["kr"]),
        n("Unsqueeze", ["v", "ax2"], ["v5"]), n("Expand", ["v5", "shape5"], ["ve"]),
        n("Reshape", ["ve", "shape4"], ["vr"]),
        n("Mul", ["q", "c"], ["qs"]), n("Transpose", ["kr"], ["kt"], perm=[0, 1, 3, 2]),
        n("Mul", ["kt", "c"], ["kts"]), n("MatMul", ["qs", "kts"], ["s16"]),
        n("Cast", ["s16"], ["s"], to=T.FLOAT),
        n("Where", ["mask", "zero", "ninf"], ["bias"]),
        n("Add", ["s", "bias"], ["sm"]), n("Softmax", ["sm"], ["p"], axis=-1),
        n("IsNaN", ["p"], ["isnan"]), n("Where", ["isnan", "zero", "p"], ["pg"]),
        n("Cast", ["vr"], ["vr32"], to=T.FLOAT),
        n("MatMul", ["pg", "vr32"], ["o32"]), n("Cast", ["o32"], ["out"], to=T.FLOAT16),
    ]
    inits = [nh.from_array(c, "c"), nh.from_array(np.array([2], np.int64), "ax2"),
             nh.from_array(np.array([B, Hkv, g, L, D], np.int64), "shape5"),
             nh.from_array(np.array([B, Hq, L, D], np.int64), "shape4"),
             nh.from_array(np.array(0.0, np.float32), "zero"),
             nh.from_array(np.array(-np.inf, np.float32), "ninf")]
    return model(nodes,
                 [vi("q", T.FLOAT16, [B, Hq, S, D]), vi("k", T.FLOAT16, [B, Hkv, L, D]),
                  vi("v", T.FLOAT16, [B, Hkv, L, D]), vi("mask", T.BOOL, [B, 1, S, L])],
                 [vi("out", T.FLOAT16, [B, Hq, S, D])], inits, opset=17)


def kt_perm_0231():
    """GPT-2-style head split: Q/V Transpose(perm=[0,2,1,3]) of (B, S, H, D), Kᵀ written directly
    as Transpose(K, perm=[0,2,3,1]), Mul scale, Softmax, MatMul."""
    n = h.make_node
    nodes = [n("Transpose", ["q"], ["qt"], perm=[0, 2, 1, 3]),
             n("Transpose", ["k"], ["kt"], perm=[0, 2, 3, 1]),
             n("Transpose", ["v"], ["vt"], perm=[0, 2, 1, 3]),
             n("MatMul", ["qt", "kt"], ["s"]), n("Mul", ["s", "c"], ["ss"]),
             n("Softmax", ["ss"], ["p"], axis=-1), n("MatMul", ["p", "vt"], ["out"])]
    return model(nodes, [vi("q", T.FLOAT, [1, 3, 2, 8]), vi("k", T.FLOAT, [1, 5, 2, 8]),
                         vi("v", T.FLOAT, [1, 5, 2, 8])], [vi("out", T.FLOAT, [1, 2, 3, 8])],
                 [nh.from_array(np.array(0.35, np.float32), "c")], opset=17)


def hf_ops():
    """Ops the dynamo exporter (opset 23) writes for transformers decoders: RotaryEmbedding (4-D,
    cos/sin per token), GatherND on a runtime bool mask with constant indices, Gelu tanh."""
    n = h.make_node
    nodes = [
        n("RotaryEmbedding", ["x", "cos", "sin"], ["xr"], name="rope", num_heads=2),
        n("GatherND", ["mask", "idx"], ["m"], name="gnd"),
        n("Gelu", ["x"], ["gl"], name="gelu", approximate="tanh"),
    ]
    inits = [nh.from_array(np.array([[[0, 2], [1, 0]]], np.int64), "idx")]
    return model(nodes,
                 [vi("x", T.FLOAT, [1, 2, 3, 8]), vi("cos", T.FLOAT, [1, 3, 4]),
                  vi("sin", T.FLOAT, [1, 3, 4]), vi("mask", T.BOOL, [2, 3])],
                 [vi("xr", T.FLOAT, [1, 2, 3, 8]), vi("m", T.BOOL, [1, 2]),
                  vi("gl", T.FLOAT, [1, 2, 3, 8])], inits)


def rotary_bad_dim():
    nodes = [h.make_node("RotaryEmbedding", ["x", "cos", "sin"], ["y"], name="rope_bad",
                         rotary_embedding_dim=5)]
    return model(nodes, [vi("x", T.FLOAT, [1, 2, 3, 8]), vi("cos", T.FLOAT, [1, 3, 4]),
                         vi("sin", T.FLOAT, [1, 3, 4])], [vi("y", T.FLOAT, None)])


def gathernd_bad_index():
    nodes = [h.make_node("GatherND", ["x", "idx"], ["y"], name="gnd_bad")]
    return model(nodes, [vi("x", T.FLOAT, [2, 3])], [vi("y", T.FLOAT, None)],
                 [nh.from_array(np.array([[1, 3]], np.int64), "idx")])


def attention_past(opset=23):
    """ONNX Attention with a KV cache: past_key/past_value -> present_key/present_value, GQA."""
    node = h.make_node("Attention", ["Q", "K", "V", "", "past_key", "past_value"],
                       ["Y", "present_key", "present_value"], is_causal=1, name="attn0")
    return model([node],
                  [vi("Q", T.FLOAT, [1, 4, 2, 8]), vi("K", T.FLOAT, [1, 2, 2, 8]),
                   vi("V", T.FLOAT, [1, 2, 2, 8]), vi("past_key", T.FLOAT, [1, 2, 3, 8]),
                   vi("past_value", T.FLOAT, [1, 2, 3, 8])],
                  [vi("Y", T.FLOAT, [1, 4, 2, 8]), vi("present_key", T.FLOAT, [1, 2, 5, 8]),
                   vi("present_value", T.FLOAT, [1, 2, 5, 8])], opset=opset)


def attention_3d():
    node = h.make_node("Attention", ["Q", "K", "V", "mask"], ["Y"], q_num_heads=4, kv_num_heads=2,
                       scale=0.25, softcap=30.0, name="attn3d")
    return model([node],
                 [vi("Q", T.FLOAT, [2, 3, 32]), vi("K", T.FLOAT, [2, 5, 16]),
                  vi("V", T.FLOAT, [2, 5, 16]), vi("mask", T.BOOL, [3, 5])],
                 [vi("Y", T.FLOAT, [2, 3, 32])])


def attention_qk_mode(mode):
    node = h.make_node("Attention", ["Q", "K", "V"], ["Y", "", "", "qk"], qk_matmul_output_mode=mode,
                       name="attn_qk")
    return model([node],
                 [vi("Q", T.FLOAT, [1, 2, 3, 4]), vi("K", T.FLOAT, [1, 2, 3, 4]),
                  vi("V", T.FLOAT, [1, 2, 3, 4])],
                 [vi("Y", T.FLOAT, None), vi("qk", T.FLOAT, None)])


def shape_folding():
    """Shape -> Gather -> Concat -> Reshape (dynamic-looking, folded at import)."""
    nodes = [
        h.make_node("Shape", ["x"], ["shp"]),
        h.make_node("Gather", ["shp", "i0"], ["b"], axis=0),
        h.make_node("Unsqueeze", ["b", "ax0"], ["b1"]),
        h.make_node("Concat", ["b1", "minus1"], ["newshape"], axis=0),
        h.make_node("Reshape", ["x", "newshape"], ["y"]),
        h.make_node("Range", ["r0", "r1", "r2"], ["rng"]),
        h.make_node("Cast", ["rng"], ["rngf"], to=T.FLOAT),
        h.make_node("Expand", ["rngf", "shp"], ["z"]),
    ]
    inits = [nh.from_array(np.array(0, dtype=np.int64), "i0"),
             nh.from_array(np.array([0], dtype=np.int64), "ax0"),
             nh.from_array(np.array([-1], dtype=np.int64), "minus1"),
             nh.from_array(np.array(0, dtype=np.int64), "r0"),
             nh.from_array(np.array(4, dtype=np.int64), "r1"),
             nh.from_array(np.array(1, dtype=np.int64), "r2")]
    return model(nodes, [vi("x", T.FLOAT, [2, 3, 4])], [vi("y", T.FLOAT, None), vi("z", T.FLOAT, None)],
                 inits)


def typed_initializers():
    """Initializers in typed fields (float_data, int64_data), not raw_data."""
    w = h.make_tensor("w", T.FLOAT, [2, 2], [1.0, 2.0, 3.0, 4.0], raw=False)
    s = h.make_tensor("s", T.INT64, [2], [4, 1], raw=False)
    nodes = [h.make_node("MatMul", ["x", "w"], ["xw"]), h.make_node("Reshape", ["xw", "s"], ["y"])]
    return model(nodes, [vi("x", T.FLOAT, [2, 2])], [vi("y", T.FLOAT, [4, 1])], [w, s])


def stale_value_info():
    """A value_info whose shape disagrees with what the graph computes (a warning, not an error)."""
    m = model([h.make_node("Relu", ["x"], ["r"]), h.make_node("Neg", ["r"], ["y"])],
              [vi("x", T.FLOAT, [2, 3])], [vi("y", T.FLOAT, [2, 3])])
    m.graph.value_info.append(vi("r", T.FLOAT, [3, 2]))
    return m


def dynamic_input():
    nodes = [h.make_node("Relu", ["input_ids"], ["y"])]
    return model(nodes, [vi("input_ids", T.FLOAT, ["batch", 12])], [vi("y", T.FLOAT, ["batch", 12])])


def unsupported_op():
    nodes = [h.make_node("Relu", ["x"], ["r"], name="ok"),
             h.make_node("LpNormalization", ["r"], ["y"], name="norm7")]
    return model(nodes, [vi("x", T.FLOAT, [2])], [vi("y", T.FLOAT, [2])])


def unsupported_attr():
    nodes = [h.make_node("Attention", ["Q", "K", "V"], ["Y", "", "", "qk"], qk_matmul_output_mode=7,
                         name="attn_bad")]
    return model(nodes, [vi("Q", T.FLOAT, [1, 1, 2, 4]), vi("K", T.FLOAT, [1, 1, 2, 4]),
                         vi("V", T.FLOAT, [1, 1, 2, 4])], [vi("Y", T.FLOAT, None), vi("qk", T.FLOAT, None)])


def old_opset():
    # Attention exists from opset 23 on; opset 21 must be rejected with the since-version.
    nodes = [h.make_node("Attention", ["Q", "K", "V"], ["Y"], name="attn_old")]
    return model(nodes, [vi("Q", T.FLOAT, [1, 1, 2, 4]), vi("K", T.FLOAT, [1, 1, 2, 4]),
                         vi("V", T.FLOAT, [1, 1, 2, 4])], [vi("Y", T.FLOAT, None)], opset=21)


def future_opset():
    return model([h.make_node("Relu", ["x"], ["y"])], [vi("x", T.FLOAT, [2])], [vi("y", T.FLOAT, [2])],
                 opset=99)


def unknown_domain():
    n = h.make_node("FusedThing", ["x"], ["y"], domain="com.example", name="fused")
    return model([n], [vi("x", T.FLOAT, [2])], [vi("y", T.FLOAT, [2])])


def external_data(out_path, missing=False):
    """An initializer stored in weights.bin next to the model (or a missing file)."""
    d = os.path.dirname(os.path.abspath(out_path))
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = nh.from_array(w, "w")
    t.ClearField("raw_data")
    t.data_location = T.EXTERNAL
    fname = "missing_weights.bin" if missing else "weights.bin"
    for k, v in [("location", fname), ("offset", "0"), ("length", str(w.nbytes))]:
        e = t.external_data.add()
        e.key, e.value = k, v
    if not missing:
        with open(os.path.join(d, fname), "wb") as f:
            f.write(w.tobytes())
    nodes = [h.make_node("Add", ["x", "w"], ["y"], name="add_w")]
    return model(nodes, [vi("x", T.FLOAT, [2, 3])], [vi("y", T.FLOAT, [2, 3])], [t])


def decoder_block():
    """A tiny pre-norm decoder layer the way exports write it: RMSNorm (Pow/ReduceMean/Sqrt/Div),
    q/k/v projections, head split (Reshape/Transpose), decomposed causal attention with a Trilu
    mask and Where, output projection, residual, SiLU MLP, LayerNormalization."""
    B, S, E, H = 1, 4, 8, 2
    Dh = E // H
    rng = np.random.default_rng(0)
    w = {n: (rng.standard_normal((E, E)) / np.sqrt(E)).astype(np.float32) for n in ["wq", "wk", "wv", "wo", "w1"]}
    inits = [nh.from_array(v, k) for k, v in w.items()]
    inits += [nh.from_array(np.array(2.0, np.float32), "two"),
              nh.from_array(np.array(1e-6, np.float32), "eps"),
              nh.from_array(np.ones(E, np.float32), "gamma"),
              nh.from_array(np.zeros(E, np.float32), "beta"),
              nh.from_array(np.array([B, S, H, Dh], np.int64), "heads"),
              nh.from_array(np.array([B, S, E], np.int64), "merged"),
              nh.from_array(np.array(np.sqrt(Dh), np.float32), "sqrt_d"),
              nh.from_array(np.ones((S, S), np.float32), "ones"),
              nh.from_array(np.array(-1e9, np.float32), "neg"),
              nh.from_array(np.array(0.0, np.float32), "zero")]
    n = h.make_node
    nodes = [
        n("Pow", ["x", "two"], ["x2"]), n("ReduceMean", ["x2", "axm1"], ["ms"], keepdims=1),
        n("Add", ["ms", "eps"], ["mse"]), n("Sqrt", ["mse"], ["rms"]), n("Div", ["x", "rms"], ["xn"]),
        n("MatMul", ["xn", "wq"], ["q0"]), n("MatMul", ["xn", "wk"], ["k0"]), n("MatMul", ["xn", "wv"], ["v0"]),
        n("Reshape", ["q0", "heads"], ["q1"]), n("Transpose", ["q1"], ["q"], perm=[0, 2, 1, 3]),
        n("Reshape", ["k0", "heads"], ["k1"]), n("Transpose", ["k1"], ["kT"], perm=[0, 2, 3, 1]),
        n("Reshape", ["v0", "heads"], ["v1"]), n("Transpose", ["v1"], ["v"], perm=[0, 2, 1, 3]),
        n("MatMul", ["q", "kT"], ["s0"]), n("Div", ["s0", "sqrt_d"], ["s1"]),
        n("Trilu", ["ones"], ["tri"], upper=0), n("Cast", ["tri"], ["trib"], to=T.BOOL),
        n("Where", ["trib", "s1", "neg"], ["s2"]), n("Softmax", ["s2"], ["p"], axis=-1),
        n("MatMul", ["p", "v"], ["o0"]), n("Transpose", ["o0"], ["o1"], perm=[0, 2, 1, 3]),
        n("Reshape", ["o1", "merged"], ["o2"]), n("MatMul", ["o2", "wo"], ["o3"]),
        n("Add", ["x", "o3"], ["h0"]), n("MatMul", ["h0", "w1"], ["m0"]), n("Sigmoid", ["m0"], ["m1"]),
        n("Mul", ["m0", "m1"], ["m2"]), n("Add", ["h0", "m2"], ["h1"]),
        n("LayerNormalization", ["h1", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-5),
    ]
    inits.append(nh.from_array(np.array([-1], np.int64), "axm1"))
    return model(nodes, [vi("x", T.FLOAT, [B, S, E])], [vi("y", T.FLOAT, [B, S, E])], inits, opset=18)


def gqa(rotary=False):
    """com.microsoft GroupQueryAttention, decode step with a separate past."""
    ins = ["query", "key", "value", "past_key", "past_value", "seqlens_k", "total_sequence_length"]
    attrs = {"do_rotary": 1} if rotary else {}
    node = h.make_node("GroupQueryAttention", ins, ["output", "present_key", "present_value"],
                       domain="com.microsoft", num_heads=4, kv_num_heads=2, name="gqa0", **attrs)
    inputs = [vi("query", T.FLOAT, [1, 1, 32]), vi("key", T.FLOAT, [1, 1, 16]),
              vi("value", T.FLOAT, [1, 1, 16]), vi("past_key", T.FLOAT, [1, 2, 5, 8]),
              vi("past_value", T.FLOAT, [1, 2, 5, 8]), vi("seqlens_k", T.INT32, [1])]
    inits = [h.make_tensor("total_sequence_length", T.INT32, [], [6])]
    return model([node], inputs, [vi("output", T.FLOAT, None), vi("present_key", T.FLOAT, None),
                                  vi("present_value", T.FLOAT, None)], inits, opset=21,
                 extra_opsets=[("com.microsoft", 1)])


CASES = {
    "gqa": gqa,
    "gqa_rotary": lambda: gqa(rotary=True),
    "decomposed_attention": decomposed_attention,
    "decomposed_gqa": decomposed_gqa,
    "attention_past": attention_past,
    "attention_past_24": lambda: attention_past(24),
    "attention_3d": attention_3d,
    "attention_qk_mode3": lambda: attention_qk_mode(3),
    "shape_folding": shape_folding,
    "typed_initializers": typed_initializers,
    "dynamic_input": dynamic_input,
    "stale_value_info": stale_value_info,
    "unsupported_op": unsupported_op,
    "unsupported_attr": unsupported_attr,
    "old_opset": old_opset,
    "future_opset": future_opset,
    "unknown_domain": unknown_domain,
    "decoder_block": decoder_block,
    "torch_sdpa_legacy": torch_sdpa_legacy,
    "torch_sdpa_legacy_guard1": lambda: torch_sdpa_legacy(1.0),
    "hf_ops": hf_ops,
    "kt_perm_0231": kt_perm_0231,
    "decomposed_attention_f16": lambda: to_f16(decomposed_attention()),
    "torch_sdpa_legacy_f16": lambda: to_f16(torch_sdpa_legacy()),
    "torch_sdpa_legacy_f16_upcast": torch_sdpa_legacy_f16_upcast,
    "mha": mha,
    "mha_packed": lambda: mha(packed=True),
    "where_mask_attention": where_mask_attention,
    "where_mask_attention_masked_fill": lambda: where_mask_attention(-np.inf, masked_fill=True),
    "where_mask_attention_small_fill": lambda: where_mask_attention(-1.0),
    "rotary_bad_dim": rotary_bad_dim,
    "gathernd_bad_index": gathernd_bad_index,
}


def main():
    case, out = sys.argv[1], sys.argv[2]
    if case == "external_data":
        m = external_data(out)
    elif case == "external_data_missing":
        m = external_data(out, missing=True)
    else:
        m = CASES[case]()
    with open(out, "wb") as f:
        f.write(m.SerializeToString())


if __name__ == "__main__":
    main()
