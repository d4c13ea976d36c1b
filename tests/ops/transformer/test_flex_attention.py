import numpy as np

import opencann
from opencann import dtypes
from opencann.ir import Graph, TensorType

DOMAIN = "ai.onnx.preview"


def softmax_attention(q, k, v, bias=0.0):
    s = q.astype(np.float64) @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]) + bias
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def test_plain_and_gqa(run_op, rng):
    q = rng.standard_normal((1, 4, 3, 8)).astype(np.float32)
    k = rng.standard_normal((1, 2, 5, 8)).astype(np.float32)
    v = rng.standard_normal((1, 2, 5, 6)).astype(np.float32)
    y = run_op("FlexAttention", [q, k, v], domain=DOMAIN)
    expected = softmax_attention(q, np.repeat(k, 2, axis=1), np.repeat(v, 2, axis=1))
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_score_mod_subgraph_adds_a_bias(rng):
    q, k, v = (rng.standard_normal((1, 1, 3, 4)).astype(np.float32) for _ in range(3))
    bias = np.triu(np.full((3, 3), -np.inf, np.float32), 1)  # a causal mask written as a score_mod
    body = Graph("score_mod")
    s = body.add_input("s", TensorType(dtypes.float32, (1, 1, 3, 3)))
    c = body.add_constant("bias", bias)
    body.outputs.extend(body.add_node("Add", [s, c], ["s_out"]))
    g = Graph("flex", {"": 26, DOMAIN: 1})
    ins = [g.add_input(n, TensorType(dtypes.float32, (1, 1, 3, 4))) for n in "qkv"]
    g.outputs.extend(g.add_node("FlexAttention", ins, ["y"], {"score_mod": body}, domain=DOMAIN))
    y = opencann.compile(g).run({"q": q, "k": k, "v": v})["y"]
    np.testing.assert_allclose(y, softmax_attention(q, k, v, bias), rtol=1e-5, atol=1e-6)


def test_float16_output(run_op, rng):
    q = rng.random((1, 1, 2, 4)).astype(np.float16)
    y = run_op("FlexAttention", [q, q, q], domain=DOMAIN)
    assert y.dtype == np.float16 and y.shape == (1, 1, 2, 4)
