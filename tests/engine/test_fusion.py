"""Fusion for the cpu backend: fused schedules compute what the unfused ones and the references do."""

import math

import numpy as np
import pytest

import opencann
from opencann import dtypes
from opencann.engine import Interpreter, bind_ops
from opencann.engine.executor import CpuExecutor
from opencann.engine.fused_elementwise import ElementwiseProgram
from opencann.engine.fusion import find_groups
from opencann.engine.infer import infer_graph
from opencann.ir import Graph, TensorType

pytestmark = pytest.mark.skipif(not opencann.backends.get("cpu").is_available(),
                                reason="no C compiler")

F32 = dtypes.float32
rng = np.random.default_rng(0)


def _typed(g: Graph) -> Graph:
    infer_graph(g, bind_ops(g, g.name), g.name)
    return g


def _check_all(g: Graph, feeds: dict, rtol=1e-5, atol=1e-5):
    """Reference, unfused cpu and fused cpu agree; returns the fused executor."""
    ref = Interpreter(g, g.name).run(feeds)
    unfused = CpuExecutor(g, g.name, fuse=False).run(feeds)
    fused_ex = CpuExecutor(g, g.name)
    fused = fused_ex.run(feeds)
    for k in ref:
        np.testing.assert_allclose(unfused[k], ref[k], rtol=rtol, atol=atol)
        np.testing.assert_allclose(fused[k], ref[k], rtol=rtol, atol=atol)
        np.testing.assert_allclose(fused[k], unfused[k], rtol=rtol, atol=atol)
    return fused_ex


def _const(g, name, a):
    return g.add_constant(name, np.asarray(a, np.float32))


def _mlp_block(act: str, residual: bool):
    g = Graph("block", {"": 18})
    x = g.add_input("x", TensorType(F32, ("batch", 16, 32)))
    w = _const(g, "w", rng.standard_normal((32, 32)) * 0.2)
    b = _const(g, "b", rng.standard_normal(32))
    (y,) = g.add_node("MatMul", [x, w], ["mm"])
    (y,) = g.add_node("Add", [b, y], ["biased"])  # bias first, as exporters often write it
    if act == "gelu":
        (d,) = g.add_node("Div", [y, _const(g, "sqrt2", math.sqrt(2.0))], ["d"])
        (e,) = g.add_node("Erf", [d], ["e"])
        (a,) = g.add_node("Add", [e, _const(g, "one", 1.0)], ["a"])
        (m,) = g.add_node("Mul", [y, a], ["m"])
        (y,) = g.add_node("Mul", [m, _const(g, "half", 0.5)], ["act"])
    elif act == "gelu_half_first":
        (h,) = g.add_node("Mul", [y, _const(g, "half", 0.5)], ["h"])
        (d,) = g.add_node("Mul", [y, _const(g, "rsqrt2", 1 / math.sqrt(2.0))], ["d"])
        (e,) = g.add_node("Erf", [d], ["e"])
        (a,) = g.add_node("Add", [_const(g, "one", 1.0), e], ["a"])
        (y,) = g.add_node("Mul", [h, a], ["act"])
    elif act == "relu":
        (y,) = g.add_node("Relu", [y], ["act"])
    elif act == "silu":
        (s,) = g.add_node("Sigmoid", [y], ["s"])
        (y,) = g.add_node("Mul", [y, s], ["act"])
    if residual:
        (y,) = g.add_node("Add", [y, x], ["res"])
    g.outputs = [y]
    return _typed(g)


@pytest.mark.parametrize("act", [None, "relu", "gelu", "gelu_half_first", "silu"])
@pytest.mark.parametrize("residual", [False, True])
def test_gemm_epilogue(act, residual):
    g = _mlp_block(act, residual)
    groups, _ = find_groups(g, bind_ops(g, g.name))
    assert len(groups) == 1 and groups[0].kind == "gemm"
    assert len(groups[0].nodes) == len(g.nodes)  # everything fused into the one GEMM launch
    parts = groups[0].parts
    assert "bias" in parts
    if act:
        assert (act if not act.startswith("gelu") else "gelu") in parts
    assert ("residual" in parts) == residual
    _check_all(g, {"x": rng.standard_normal((3, 16, 32)).astype(np.float32)})


def test_epilogue_stops_at_shared_value():
    """A value read outside the chain is not absorbed: the GEMM stops before it."""
    g = Graph("shared", {"": 18})
    x = g.add_input("x", TensorType(F32, (8, 16)))
    w = _const(g, "w", rng.standard_normal((16, 16)))
    b = _const(g, "b", rng.standard_normal(16))
    (mm,) = g.add_node("MatMul", [x, w], ["mm"])
    (y,) = g.add_node("Add", [mm, b], ["y"])
    (r,) = g.add_node("Relu", [y], ["r"])
    g.outputs = [r, y]  # y is a graph output: the relu must not fold into the GEMM
    _typed(g)
    groups, _ = find_groups(g, bind_ops(g, g.name))
    kinds = sorted((gr.kind, len(gr.nodes)) for gr in groups)
    assert kinds == [("elementwise", 1), ("gemm", 2)]
    _check_all(g, {"x": rng.standard_normal((8, 16)).astype(np.float32)})


def test_elementwise_chain_with_broadcasting():
    g = Graph("chain", {"": 18})
    x = g.add_input("x", TensorType(F32, (4, 1, 6)))
    y = g.add_input("y", TensorType(F32, (5, 1)))
    z = g.add_input("z", TensorType(F32, (6,)))
    (a,) = g.add_node("Add", [x, y], ["a"])          # (4, 5, 6)
    (b,) = g.add_node("Mul", [a, z], ["b"])
    (c,) = g.add_node("Tanh", [b], ["c"])
    (d,) = g.add_node("Sub", [_const(g, "k", 2.0), c], ["d"])
    (e,) = g.add_node("Pow", [d, _const(g, "p", 3.0)], ["e"])
    (f,) = g.add_node("Sqrt", [e], ["f"])
    (h,) = g.add_node("Div", [f, x], ["h"])
    g.outputs = [h]
    _typed(g)
    groups, _ = find_groups(g, bind_ops(g, g.name))
    assert [(gr.kind, len(gr.nodes)) for gr in groups] == [("elementwise", 7)]
    feeds = {"x": rng.uniform(0.5, 2, (4, 1, 6)).astype(np.float32),
             "y": rng.standard_normal((5, 1)).astype(np.float32),
             "z": rng.standard_normal(6).astype(np.float32)}
    _check_all(g, feeds)


def test_scalar_constant_of_higher_rank_keeps_output_rank():
    g = Graph("rank", {"": 18})
    x = g.add_input("x", TensorType(F32, (3,)))
    (y,) = g.add_node("Mul", [x, _const(g, "c", [[2.0]])], ["y"])  # (3,) * (1, 1) -> (1, 3)
    (z,) = g.add_node("Relu", [y], ["z"])
    g.outputs = [z]
    _typed(g)
    ex = _check_all(g, {"x": np.array([-1, 0, 2], np.float32)})
    assert ex.run({"x": np.array([-1, 0, 2], np.float32)})["z"].shape == (1, 3)


def test_conv_relu_fused():
    g = Graph("conv", {"": 18})
    x = g.add_input("x", TensorType(F32, (2, 3, 9, 9)))
    w = _const(g, "w", rng.standard_normal((4, 3, 3, 3)))
    b = _const(g, "b", rng.standard_normal(4))
    (c,) = g.add_node("Conv", [x, w, b], ["c"], {"pads": [1, 1, 1, 1], "strides": [2, 2]})
    (r,) = g.add_node("Relu", [c], ["r"])
    (p,) = g.add_node("MaxPool", [r], ["p"], {"kernel_shape": [2, 2], "strides": [2, 2]})
    (q,) = g.add_node("GlobalAveragePool", [p], ["q"])
    g.outputs = [q]
    _typed(g)
    groups, _ = find_groups(g, bind_ops(g, g.name))
    assert [(gr.kind, gr.parts) for gr in groups] == [("conv", ["bias", "relu"])]
    _check_all(g, {"x": rng.standard_normal((2, 3, 9, 9)).astype(np.float32)})


@pytest.mark.parametrize("algo", ["im2col", "winograd4"])
def test_resnet_block_tail_fused_into_the_conv(algo, monkeypatch):
    """conv -> relu -> conv -> Add(shortcut) -> Relu: the second conv takes the residual and the
    ReLU after it in its epilogue (both algorithms)."""
    monkeypatch.setenv("OPENCANN_CONV_ALGO", algo)
    g = Graph("block", {"": 18})
    x = g.add_input("x", TensorType(F32, (1, 16, 12, 12)))
    w1 = _const(g, "w1", rng.standard_normal((16, 16, 3, 3)) * 0.2)
    w2 = _const(g, "w2", rng.standard_normal((16, 16, 3, 3)) * 0.2)
    b2 = _const(g, "b2", rng.standard_normal(16))
    (c1,) = g.add_node("Conv", [x, w1], ["c1"], {"pads": [1, 1, 1, 1]})
    (r1,) = g.add_node("Relu", [c1], ["r1"])
    (c2,) = g.add_node("Conv", [r1, w2, b2], ["c2"], {"pads": [1, 1, 1, 1]})
    (s,) = g.add_node("Add", [x, c2], ["s"])  # shortcut first, as exporters may write it
    (y,) = g.add_node("Relu", [s], ["y"])
    g.outputs = [y]
    _typed(g)
    groups, _ = find_groups(g, bind_ops(g, g.name))
    assert [(gr.kind, gr.parts) for gr in groups] == [
        ("conv", ["relu"]), ("conv", ["bias", "residual", "relu"])]
    feeds = {"x": rng.standard_normal((1, 16, 12, 12)).astype(np.float32)}
    ex = _check_all(g, feeds, rtol=1e-4, atol=1e-4)
    out = ex.run(feeds)["y"]
    assert (out == 0).any() and (out > 0).any()


def test_attention_block_matches_reference():
    g = Graph("attn", {"": 18})
    q = g.add_input("q", TensorType(F32, (1, 2, 8, 4)))
    k = g.add_input("k", TensorType(F32, (1, 2, 8, 4)))
    v = g.add_input("v", TensorType(F32, (1, 2, 8, 4)))
    mask = g.add_input("mask", TensorType(F32, (1, 1, 8, 8)))
    (kt,) = g.add_node("Transpose", [k], ["kt"], {"perm": [0, 1, 3, 2]})
    (s,) = g.add_node("MatMul", [q, kt], ["s"])
    (s2,) = g.add_node("Mul", [s, _const(g, "scale", 0.5)], ["s2"])
    (s3,) = g.add_node("Add", [s2, mask], ["s3"])
    (p,) = g.add_node("Softmax", [s3], ["p"], {"axis": -1})
    (o,) = g.add_node("MatMul", [p, v], ["o"])
    g.outputs = [o]
    _typed(g)
    feeds = {n: rng.standard_normal((1, 2, 8, 4)).astype(np.float32) for n in "qkv"}
    feeds["mask"] = np.where(rng.random((1, 1, 8, 8)) < 0.3, -1e9, 0.0).astype(np.float32)
    _check_all(g, feeds)


def test_elementwise_program_numerics():
    prog = (("in", 0), ("c", math.sqrt(2.0)), ("div", 0, 1), ("erf", 2), ("c", 1.0),
            ("add", 3, 4), ("mul", 0, 5), ("c", 0.5), ("mul", 6, 7))
    x = rng.standard_normal((7, 33)).astype(np.float32)
    want = x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    np.testing.assert_allclose(ElementwiseProgram(prog, 1)(x), want, rtol=1e-5, atol=1e-6)
    empty = ElementwiseProgram(prog, 1)(np.zeros((0, 3), np.float32))
    assert empty.shape == (0, 3)


def _attention_graph(mask_shape=(1, 1, 8, 8), scale_op="Mul"):
    g = Graph("attn", {"": 18})
    q = g.add_input("q", TensorType(F32, (2, 2, 8, 16)))
    k = g.add_input("k", TensorType(F32, (2, 2, 8, 16)))
    v = g.add_input("v", TensorType(F32, (2, 2, 8, 16)))
    mask = g.add_input("mask", TensorType(F32, mask_shape))
    (kt,) = g.add_node("Transpose", [k], ["kt"], {"perm": [0, 1, 3, 2]})
    (s,) = g.add_node("MatMul", [q, kt], ["s"])
    (s2,) = g.add_node(scale_op, [s, _const(g, "scale", 0.25 if scale_op == "Mul" else 4.0)], ["s2"])
    (s3,) = g.add_node("Add", [s2, mask], ["s3"])
    (p,) = g.add_node("Softmax", [s3], ["p"], {"axis": -1})
    (o,) = g.add_node("MatMul", [p, v], ["o"])
    g.outputs = [o]
    return _typed(g)


@pytest.mark.parametrize("scale_op", ["Mul", "Div"])
@pytest.mark.parametrize("mask_kind", ["padding", "holes", "general", "all_masked", "causal",
                                       "causal_padded"])
def test_attention_fusion(scale_op, mask_kind):
    g = _attention_graph((2, 1, 8, 8), scale_op)
    groups, _ = find_groups(g, bind_ops(g, g.name))
    att = [gr for gr in groups if gr.kind == "attention"]
    assert len(att) == 1 and len(att[0].nodes) == 5
    feeds = {n: rng.standard_normal((2, 2, 8, 16)).astype(np.float32) for n in "qkv"}
    mask = np.zeros((2, 1, 8, 8), np.float32)
    if mask_kind == "padding":
        mask[1, :, :, 5:] = np.finfo(np.float32).min
    elif mask_kind == "holes":  # a padding mask that is not a prefix
        mask[1, :, :, 2] = np.finfo(np.float32).min
    elif mask_kind == "general":  # differs per query: added inside the kernel
        mask = np.where(rng.random((2, 1, 8, 8)) < 0.3, -1e9, 0.0).astype(np.float32)
    elif mask_kind.startswith("causal"):  # the kernel's causal flag; with padding, added
        mask[:] = np.where(np.tri(8, 8, dtype=bool), 0.0, np.finfo(np.float32).min)
        if mask_kind == "causal_padded":
            mask[0, :, :, 6:] = np.finfo(np.float32).min
    else:  # a batch with no visible key: softmax averages, the kernel would give zeros
        mask[1] = -1e9
    feeds["mask"] = mask
    _check_all(g, feeds, rtol=1e-4, atol=1e-5)


def test_elementwise_tree_fuses_both_branches():
    """GELU in its tanh form: `0.5 * x` and the tanh branch meet in one Mul; one kernel."""
    g = Graph("gelu_tanh", {"": 18})
    x = g.add_input("x", TensorType(F32, ("n", 64)))
    (h,) = g.add_node("Mul", [x, _const(g, "half", 0.5)], ["h"])
    (p,) = g.add_node("Pow", [x, _const(g, "three", 3.0)], ["p"])
    (a,) = g.add_node("Mul", [p, _const(g, "k", 0.044715)], ["a"])
    (b,) = g.add_node("Add", [x, a], ["b"])
    (c,) = g.add_node("Mul", [b, _const(g, "s", math.sqrt(2 / math.pi))], ["c"])
    (t,) = g.add_node("Tanh", [c], ["t"])
    (o,) = g.add_node("Add", [t, _const(g, "one", 1.0)], ["o"])
    (y,) = g.add_node("Mul", [h, o], ["y"])
    g.outputs = [y]
    _typed(g)
    groups, _ = find_groups(g, bind_ops(g, g.name))
    assert [(gr.kind, len(gr.nodes)) for gr in groups] == [("elementwise", 8)]
    _check_all(g, {"x": rng.standard_normal((5, 64)).astype(np.float32) * 3})


def test_gemm_residual_through_reshape():
    """GPT-2's Conv1D: Gemm on (b*s, k), Reshape back to (b, s, n), then the residual Add."""
    g = Graph("conv1d", {"": 18})
    x = g.add_input("x", TensorType(F32, ("b", "s", 16)))
    flat = g.add_constant("flat", np.array([-1, 16], np.int64))
    (back,) = g.add_node("Shape", [x], ["shape"])
    (x2,) = g.add_node("Reshape", [x, flat], ["x2"])
    (y,) = g.add_node("Gemm", [x2, _const(g, "w", rng.standard_normal((16, 16))),
                               _const(g, "b", rng.standard_normal(16))], ["y"])
    (y3,) = g.add_node("Reshape", [y, back], ["y3"])
    (z,) = g.add_node("Add", [y3, x], ["z"])
    g.outputs = [z]
    _typed(g)
    groups, _ = find_groups(g, bind_ops(g, g.name))
    gemm = [gr for gr in groups if gr.kind == "gemm"]
    assert gemm and gemm[0].parts == ["bias", "reshape", "residual"]
    _check_all(g, {"x": rng.standard_normal((2, 3, 16)).astype(np.float32)})


def test_gemm_residual_through_reshape_with_runtime_weights():
    """A training graph's Conv1D: the weight and bias are graph inputs (a Gemm with a runtime B
    and C), and a batched MatMul of two runtime values; both take the residual through the
    Reshape."""
    g = Graph("conv1d_train", {"": 18})
    x = g.add_input("x", TensorType(F32, (2, 3, 16)))
    w = g.add_input("w", TensorType(F32, (16, 16)))
    bias = g.add_input("bias", TensorType(F32, (16,)))
    (x2,) = g.add_node("Reshape", [x, g.add_constant("flat", np.array([6, 16], np.int64))], ["x2"])
    (y,) = g.add_node("Gemm", [x2, w, bias], ["y"])
    (y3,) = g.add_node("Reshape", [y, g.add_constant("back", np.array([2, 3, 16], np.int64))],
                       ["y3"])
    (z,) = g.add_node("Add", [y3, x], ["z"])
    a = g.add_input("a", TensorType(F32, (2, 3, 4, 5)))
    bm = g.add_input("bm", TensorType(F32, (2, 3, 5, 4)))
    (p,) = g.add_node("MatMul", [a, bm], ["p"])
    (p2,) = g.add_node("Reshape", [p, g.add_constant("p2s", np.array([6, 16], np.int64))], ["p2"])
    (q,) = g.add_node("Add", [x2, p2], ["q"])
    g.outputs = [z, q]
    _typed(g)
    groups, _ = find_groups(g, bind_ops(g, g.name))
    assert [gr.parts for gr in groups if gr.kind == "gemm"] == [["reshape", "residual"]] * 2
    _check_all(g, {"x": rng.standard_normal((2, 3, 16)).astype(np.float32),
                   "w": rng.standard_normal((16, 16)).astype(np.float32),
                   "bias": rng.standard_normal(16).astype(np.float32),
                   "a": rng.standard_normal((2, 3, 4, 5)).astype(np.float32),
                   "bm": rng.standard_normal((2, 3, 5, 4)).astype(np.float32)})


def test_clamped_relu_is_not_taken_for_relu():
    """ReLU6 equals ReLU on small inputs; the epilogue must not fold it as ReLU."""
    g = Graph("relu6", {"": 18})
    x = g.add_input("x", TensorType(F32, (4, 8)))
    (m,) = g.add_node("MatMul", [x, _const(g, "w", rng.standard_normal((8, 8)) * 10)], ["m"])
    (r,) = g.add_node("Max", [m, _const(g, "zero", 0.0)], ["r"])
    (y,) = g.add_node("Min", [r, _const(g, "six", 6.0)], ["y"])
    g.outputs = [y]
    _typed(g)
    groups, _ = find_groups(g, bind_ops(g, g.name))
    assert [(gr.kind, gr.parts) for gr in groups] == [("gemm", []), ("elementwise", ["2 ops"])]
    _check_all(g, {"x": rng.standard_normal((4, 8)).astype(np.float32)})


def test_legacy_broadcast_attributes_are_not_fused_as_numpy_broadcasting():
    # opset 6 Add broadcasts B along `axis`, not by NumPy's trailing-dims rule
    from opencann.testing import run_op

    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    b = np.array([10, 20, 30], np.float32)
    got = run_op("Add", [a, b], {"broadcast": 1, "axis": 1}, opset=6, backend="cpu")
    np.testing.assert_array_equal(got, a + b[None, :, None])


def test_attention_mask_kinds():
    from opencann.engine.fusion import _mask_kind

    low = np.finfo(np.float32).min
    causal = np.where(np.tri(6, 6, dtype=bool), 0.0, low).astype(np.float32)[None, None]
    assert _mask_kind(causal, 2, 3, 6, 6)[0] == "causal"
    pad = np.zeros((2, 1, 1, 6), np.float32)
    pad[1, ..., 4:] = low
    kind, lens = _mask_kind(pad, 2, 3, 6, 6)
    assert kind == "lengths" and lens.tolist() == [6, 4]
    pad[0, ..., 1] = low  # a hole: not a length
    kind, kpm = _mask_kind(pad, 2, 3, 6, 6)
    assert kind == "padding" and kpm.tolist() == [[True, False] + [True] * 4,
                                                  [True] * 4 + [False] * 2]
    assert _mask_kind(np.minimum(causal, pad), 2, 3, 6, 6)[0] == "additive"
    assert _mask_kind(np.zeros((1, 1, 1, 6), np.float32), 2, 3, 6, 6)[0] == "lengths"
    assert _mask_kind(rng.standard_normal((3, 1, 6)).astype(np.float32), 2, 3, 6, 6)[0] == "additive"
    assert _mask_kind(np.zeros((4, 1, 1, 6), np.float32), 2, 3, 6, 6)[0] == "unfused"
    assert _mask_kind(np.maximum(causal, -1e4).astype(np.float16), 2, 3, 6, 6)[0] == "unfused"


def test_attention_writes_merged_heads_for_the_transpose_after():
    """Attention -> Transpose(0, 2, 1, 3) -> Reshape: the kernel writes (B, S, H, D) and the
    transpose and reshape after it are views; the result is the unfused graph's."""
    g = _attention_graph((2, 1, 8, 8))
    o = g.outputs[0]
    (t,) = g.add_node("Transpose", [o], ["t"], {"perm": [0, 2, 1, 3]})
    (r,) = g.add_node("Reshape", [t, g.add_constant("shp", np.array([2, 8, 32], np.int64))], ["r"])
    g.outputs = [r]
    _typed(g)
    feeds = {n: rng.standard_normal((2, 2, 8, 16)).astype(np.float32) for n in "qkv"}
    mask = np.zeros((2, 1, 8, 8), np.float32)
    mask[1, ..., 6:] = np.finfo(np.float32).min
    feeds["mask"] = mask
    _check_all(g, feeds, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("c_kind", [None, "bias", "matrix"])
def test_gemm_with_runtime_weights(ta, tb, c_kind):
    """Training graphs feed the weights: Gemm with a runtime B (and C) runs the GEMM kernel with
    its transposes as flags, followed by a fused residual Add."""
    m, k, n = 7, 5, 6
    g = Graph("gemm_rt", {"": 18})
    a = g.add_input("a", TensorType(F32, (k, m) if ta else (m, k)))
    b = g.add_input("b", TensorType(F32, (n, k) if tb else (k, n)))
    ins = [a, b]
    if c_kind:
        ins.append(g.add_input("c", TensorType(F32, (n,) if c_kind == "bias" else (m, n))))
    r = g.add_input("r", TensorType(F32, (m, n)))
    (y,) = g.add_node("Gemm", ins, ["y"], {"transA": ta, "transB": tb})
    (z,) = g.add_node("Add", [y, r], ["z"])
    g.outputs = [z]
    _typed(g)
    feeds = {v.name: rng.standard_normal(v.type.shape).astype(np.float32) for v in g.inputs}
    ex = _check_all(g, feeds)
    assert [s.kernel for s in ex.placement.steps] == ["batched_gemm"]


def test_training_layer_norm_and_reduce_sum_run_cpu_kernels():
    """LayerNormalization with runtime scale/bias and its Mean/InvStdDev outputs, and ReduceSum
    over leading axes (a bias gradient): cpu kernels, the reference's values."""
    g = Graph("train_ln", {"": 18})
    x = g.add_input("x", TensorType(F32, (3, 5, 24)))
    w = g.add_input("w", TensorType(F32, (24,)))
    b = g.add_input("b", TensorType(F32, (24,)))
    y, mean, rstd = g.add_node("LayerNormalization", [x, w, b], ["y", "mean", "rstd"],
                               {"axis": -1, "epsilon": 1e-5})
    (s,) = g.add_node("ReduceSum", [y, g.add_constant("ax", np.array([0, 1], np.int64))], ["s"],
                      {"keepdims": 0})
    g.outputs = [y, mean, rstd, s]
    _typed(g)
    feeds = {v.name: rng.standard_normal(v.type.shape).astype(np.float32) for v in g.inputs}
    ex = _check_all(g, feeds, rtol=1e-4, atol=1e-4)
    assert [st.kernel for st in ex.placement.steps] == ["layer_norm", "reduce_sum"]


def _where_graph(cshape, xshape, yshape, x_const=None, y_const=None, chain=True):
    g = Graph("where", {"": 18})
    c = g.add_input("c", TensorType(dtypes.bool_, cshape))
    x = _const(g, "xc", x_const) if x_const is not None else g.add_input("x", TensorType(F32, xshape))
    y = _const(g, "yc", y_const) if y_const is not None else g.add_input("y", TensorType(F32, yshape))
    if chain and x_const is None:
        (x,) = g.add_node("Mul", [x, _const(g, "k", 0.5)], ["xs"])
    (w,) = g.add_node("Where", [c, x, y], ["w"])
    out = w
    if chain:
        (e,) = g.add_node("Exp", [w], ["e"])
        (out,) = g.add_node("Sub", [e, _const(g, "one", 1.0)], ["out"])
    g.outputs = [out]
    return _typed(g)


@pytest.mark.parametrize("cshape,xshape,yshape,x_const,y_const", [
    ((4, 5), (2, 4, 5), None, None, -math.inf),        # the causal-mask form: Where(mask, s, -inf)
    ((2, 3, 1), (3, 6), (6,), None, None),             # all three broadcast, cond gives the rank
    ((2, 1, 4), (1,), (4,), None, None),               # a single-element X
    ((3, 4), None, None, 2.0, -1.0),                   # both branches constants: the cond's shape
    ((3, 4), None, (3, 4), [[2.0]], None),             # a (1, 1) constant branch keeps its rank
    ((0, 4), (4,), (1,), None, None),                  # empty
])
def test_where_runs_in_fused_elementwise_kernels(cshape, xshape, yshape, x_const, y_const):
    g = _where_graph(cshape, xshape, yshape, x_const, y_const)
    groups, _ = find_groups(g, bind_ops(g, g.name))
    assert [(gr.kind, len(gr.nodes)) for gr in groups] == [("elementwise", len(g.nodes))]
    feeds = {"c": rng.random(cshape) < 0.5}
    for v in g.inputs[1:]:
        a = rng.standard_normal(v.type.shape).astype(np.float32)
        if a.size:
            a.reshape(-1)[0] = np.nan  # NaN where selected, or dropped where not
        feeds[v.name] = a
    ex = _check_all(g, feeds)
    assert all(s.device == "cpu" for s in ex.placement.steps)
    want = Interpreter(g, g.name).run(feeds)["out"]
    got = ex.run(feeds)["out"]
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


def test_where_condition_computed_in_the_graph_and_alone():
    """A condition made by another node (Less, on ref) and a lone Where node: the same values."""
    g = Graph("where_less", {"": 18})
    a = g.add_input("a", TensorType(F32, (3, 7)))
    b = g.add_input("b", TensorType(F32, (7,)))
    (c,) = g.add_node("Less", [a, b], ["c"])
    (w,) = g.add_node("Where", [c, a, b], ["w"])  # min(a, b) spelled as a select
    g.outputs = [w]
    _typed(g)
    feeds = {"a": rng.standard_normal((3, 7)).astype(np.float32),
             "b": rng.standard_normal(7).astype(np.float32)}
    ex = _check_all(g, feeds)
    assert [s.kernel for s in ex.placement.steps] == ["ref:Less", "fused_where"]
    np.testing.assert_array_equal(ex.run(feeds)["w"], np.minimum(feeds["a"], feeds["b"]))


def test_where_of_other_dtypes_runs_its_reference():
    g = Graph("where_f64", {"": 18})
    c = g.add_input("c", TensorType(dtypes.bool_, (4,)))
    x = g.add_input("x", TensorType(dtypes.float64, (4,)))
    (w,) = g.add_node("Where", [c, x, g.add_constant("z", np.zeros(4))], ["w"])
    g.outputs = [w]
    _typed(g)
    ex = CpuExecutor(g, g.name)
    assert [s.device for s in ex.placement.steps] == ["ref"]
    feeds = {"c": np.array([1, 0, 1, 0], bool), "x": np.arange(4.0)}
    np.testing.assert_array_equal(ex.run(feeds)["w"], [0.0, 0.0, 2.0, 0.0])


def test_elementwise_program_where_with_a_float_condition():
    """A program's where tests a computed float condition against zero (NumPy's where); an input
    read only as a condition is loaded as bool."""
    prog = (("in", 0), ("c", 1.0), ("mul", 0, 1), ("in", 1), ("c", 3.0), ("where", 2, 3, 4))
    k = ElementwiseProgram(prog, 2)
    assert k.dtypes == (np.float32, np.float32)
    c = np.array([0.0, 1.0, -2.0, np.nan], np.float32)
    x = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    np.testing.assert_array_equal(k(c, x), np.where(c != 0, x, 3.0).astype(np.float32))
    kb = ElementwiseProgram((("in", 0), ("in", 1), ("c", 3.0), ("where", 0, 2, 1)), 2)
    assert kb.dtypes == (np.bool_, np.float32)
    cb = np.array([[True], [False]])
    np.testing.assert_array_equal(kb(cb, x), np.where(cb, 3.0, x).astype(np.float32))


def test_tree_group_stores_the_intermediates_others_read():
    """A training forward's tanh-GELU keeps 0.5x, tanh(.) and 1 + tanh(.) for the backward: one
    kernel computes them and the result, storing all four, and runs before the node that reads
    tanh(.) between them."""
    g = Graph("gelu_fwd", {"": 17})
    x = g.add_input("x", TensorType(F32, (4, 48)))
    c = {k: _const(g, k, np.array(v, np.float32)) for k, v in
         (("half", 0.5), ("k", 0.044715), ("s", math.sqrt(2 / math.pi)), ("one", 1.0))}
    (half,) = g.add_node("Mul", [x, c["half"]], ["half_x"])
    (sq,) = g.add_node("Mul", [x, x], ["sq"])
    (cube,) = g.add_node("Mul", [sq, x], ["cube"])
    (kc,) = g.add_node("Mul", [cube, c["k"]], ["kc"])
    (inner,) = g.add_node("Add", [x, kc], ["inner"])
    (scaled,) = g.add_node("Mul", [inner, c["s"]], ["scaled"])
    (t,) = g.add_node("Tanh", [scaled], ["t"])
    (kept,) = g.add_node("Identity", [t], ["kept_t"])  # read before the group's last node
    (onep,) = g.add_node("Add", [t, c["one"]], ["one_plus_t"])
    (y,) = g.add_node("Mul", [half, onep], ["y"])
    g.outputs = [y, half, kept, onep]
    _typed(g)
    groups, _ = find_groups(g, bind_ops(g, g.name))
    trees = [gr for gr in groups if gr.extra]
    assert len(trees) == 1 and trees[0].at_first and len(trees[0].nodes) == 9
    assert [v.name for v in trees[0].extra] == ["half_x", "t", "one_plus_t"]
    ex = _check_all(g, {"x": rng.standard_normal((4, 48)).astype(np.float32)})
    assert sum(1 for st in ex.placement.steps if st.group is not None) == 1


def test_closed_elementwise_graph_is_one_kernel():
    """The backward of a tanh-GELU, recomputing tanh: tanh(.) is read by three nodes and x * x by
    two, all inside; the graph closes at one value that a non-elementwise node reads. One kernel
    with two inputs and one output, not three passing intermediates through memory."""
    g = Graph("gelu_bwd", {"": 17})
    x = g.add_input("x", TensorType(F32, (4, 48)))
    dy = g.add_input("dy", TensorType(F32, (4, 48)))
    c = {k: _const(g, k, np.array(v, np.float32)) for k, v in
         (("half", 0.5), ("k", 0.044715), ("k3", 3 * 0.044715), ("s", math.sqrt(2 / math.pi)),
          ("one", 1.0))}
    (sq,) = g.add_node("Mul", [x, x], ["sq"])
    (cube,) = g.add_node("Mul", [sq, x], ["cube"])
    (inner,) = g.add_node("Add", [x, g.add_node("Mul", [cube, c["k"]], ["kc"])[0]], ["inner"])
    (t,) = g.add_node("Tanh", [g.add_node("Mul", [inner, c["s"]], ["scaled"])[0]], ["t"])
    (onep,) = g.add_node("Add", [t, c["one"]], ["onep"])
    (d1,) = g.add_node("Mul", [g.add_node("Mul", [dy, c["half"]], ["hdy"])[0], onep], ["d1"])
    (t2,) = g.add_node("Mul", [t, t], ["t2"])
    (sech2,) = g.add_node("Sub", [c["one"], t2], ["sech2"])
    (hx,) = g.add_node("Mul", [x, c["half"]], ["hx"])
    (dt,) = g.add_node("Mul", [g.add_node("Mul", [dy, hx], ["dyhx"])[0], sech2], ["dt"])
    (di,) = g.add_node("Mul", [dt, c["s"]], ["di"])
    (poly,) = g.add_node("Add", [c["one"], g.add_node("Mul", [sq, c["k3"]], ["k3sq"])[0]], ["poly"])
    (dx,) = g.add_node("Add", [d1, g.add_node("Mul", [di, poly], ["d2"])[0]], ["dx"])
    axes = g.add_constant("axes", np.array([0], np.int64))
    (out,) = g.add_node("ReduceSum", [dx, axes], ["colsum"], {"keepdims": 0})
    g.outputs = [out]
    _typed(g)
    groups, _ = find_groups(g, bind_ops(g, g.name))
    ew = [gr for gr in groups if gr.kind == "elementwise"]
    assert len(ew) == 1 and len(ew[0].nodes) == len(g.nodes) - 1 and not ew[0].extra
    assert [v.name for v in ew[0].lowered.inputs] == ["x", "dy"]
    xv = rng.standard_normal((4, 48)).astype(np.float32)
    _check_all(g, {"x": xv, "dy": rng.standard_normal((4, 48)).astype(np.float32)},
               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("later", [False, True])
def test_attention_backward_absorbs_the_cache_gradients(later):
    """FlashAttentionGrad whose dK and dV each meet one more gradient in an Add (a model that
    returns its key/value cache): one step, the kernel starts from those gradients. When one of
    them is computed after the FlashAttentionGrad, the Adds stay kernels of their own."""
    from opencann.ops.transformer.flash_attention import DOMAIN

    g = Graph("attn_bwd", {"": 18, DOMAIN: 1})
    shp = (2, 3, 12, 8)
    q, k, v, dy, tk, tv = (g.add_input(n, TensorType(F32, shp)) for n in ("q", "k", "v", "dy",
                                                                             "tk", "tv"))
    y, lse = g.add_node("FlashAttention", [q, k, v], ["y", "lse"], {"causal": 1}, domain=DOMAIN)
    dq, dk, dv = g.add_node("FlashAttentionGrad", [dy, q, k, v, y, lse], ["dq", "dk", "dv"],
                            {"causal": 1}, domain=DOMAIN)
    if later:  # tv computed after the gradient node: the group could not run where it is
        (tv,) = g.add_node("Mul", [dq, tv], ["tv2"])
    (gk,) = g.add_node("Add", [tk, dk], ["gk"])
    (gv,) = g.add_node("Add", [dv, tv], ["gv"])
    g.outputs = [dq, gk, gv]
    _typed(g)
    groups, _ = find_groups(g, bind_ops(g, g.name))
    kinds = [gr.kind for gr in groups]
    assert ("flash_attention_grad" in kinds) is not later
    feeds = {n: rng.standard_normal(shp).astype(np.float32) for n in ("q", "k", "v", "dy", "tk", "tv")}
    _check_all(g, feeds, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("scale", [True, False])
def test_layer_norm_backward_absorbs_the_skip_gradient(scale):
    """A residual block's backward: the gradient through the norm (LayerNormalizationGrad's dX)
    meets the skip path's in an Add; the kernel adds it as it writes dX (one step), with or
    without the scale input."""
    from opencann.ops.registry import OPENCANN_DOMAIN

    g = Graph("ln_bwd", {"": 18, OPENCANN_DOMAIN: 1})
    x, dy, skip = (g.add_input(n, TensorType(F32, (4, 6, 32))) for n in ("x", "dy", "skip"))
    w = g.add_input("w", TensorType(F32, (32,)))
    b = _const(g, "b", rng.standard_normal(32))
    _, mean, rstd = g.add_node("LayerNormalization", [x, w, b], ["y", "mean", "rstd"], {"axis": -1})
    dx, dw, db = g.add_node("LayerNormalizationGrad", [dy, x, mean, rstd] + ([w] if scale else []),
                            ["dx", "dw", "db"], {"axis": -1}, domain=OPENCANN_DOMAIN)
    (s,) = g.add_node("Add", [skip, dx], ["s"])
    g.outputs = [s, dw, db]
    _typed(g)
    groups, _ = find_groups(g, bind_ops(g, g.name))
    assert [gr.kind for gr in groups] == ["layer_norm_grad"]
    feeds = {n: rng.standard_normal((4, 6, 32)).astype(np.float32) for n in ("x", "dy", "skip")}
    feeds["w"] = rng.standard_normal(32).astype(np.float32)
    _check_all(g, feeds, rtol=1e-4, atol=1e-4)


def test_attention_backward_writes_the_concat_of_its_gradients():
    """A fused QKV projection's backward: dQ, dK, dV go through Transpose and Reshape (views) to
    one Concat; the kernel writes them side by side in the Concat's order (here dq, dv, dk), so
    the Concat's result is the kernel's buffer, and every value is the unfused graph's."""
    from opencann.ops.transformer.flash_attention import DOMAIN

    g = Graph("attn_bwd_cat", {"": 18, DOMAIN: 1})
    B, H, S, D = 2, 3, 12, 8
    q, k, v, dy = (g.add_input(n, TensorType(F32, (B, H, S, D))) for n in ("q", "k", "v", "dy"))
    y, lse = g.add_node("FlashAttention", [q, k, v], ["y", "lse"], {"causal": 1}, domain=DOMAIN)
    grads = g.add_node("FlashAttentionGrad", [dy, q, k, v, y, lse], ["dq", "dk", "dv"],
                       {"causal": 1}, domain=DOMAIN)
    shape = g.add_constant("bsd", np.array([B, S, H * D], np.int64))
    merged = []
    for x in grads:
        (t,) = g.add_node("Transpose", [x], [x.name + "_t"], {"perm": [0, 2, 1, 3]})
        (r,) = g.add_node("Reshape", [t, shape], [x.name + "_r"])
        merged.append(r)
    (cat,) = g.add_node("Concat", [merged[0], merged[2], merged[1]], ["cat"], {"axis": -1})
    g.outputs = [cat]
    _typed(g)
    groups, _ = find_groups(g, bind_ops(g, g.name))
    assert [gr.parts for gr in groups if gr.kind == "flash_attention_grad"] == [["side by side"]]
    feeds = {n: rng.standard_normal((B, H, S, D)).astype(np.float32) for n in ("q", "k", "v", "dy")}
    ex = _check_all(g, feeds, rtol=1e-4, atol=1e-4)
    assert not ex.run(feeds)["cat"].flags.owndata  # the kernel's buffer, not a copy
