"""Where the engine finds an op's cpu kernel: `OpDef.kernels["cpu"]`, registered with `defkernel`
(`ops/registry.py`) and asked by `ops/lowering.lower`."""

import numpy as np
import pytest

from opencann import dtypes, ops
from opencann.engine import bind_ops
from opencann.engine.infer import infer_graph
from opencann.ir import Graph, TensorType
from opencann.ops import infer, registry
from opencann.ops.lowering import Lowered, lower

CPU_OPS = ["MatMul", "Gemm", "Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "Softmax",
           "LogSoftmax", "LayerNormalization", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin",
           "ReduceLogSumExp", "ScatterND"]


@pytest.mark.parametrize("name", CPU_OPS)
def test_every_version_of_an_op_has_its_cpu_kernel(name):
    versions = [d for d in (ops.lookup(name, opset=k) for k in range(1, 25)) if d is not None]
    assert versions and all(callable(d.kernels.get("cpu")) for d in versions)
    assert len({d.kernels["cpu"] for d in versions}) == 1


def test_a_kernel_reaches_versions_defined_after_it(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_KERNELS", dict(registry._KERNELS))
    define = registry.defop("Twice", inputs=["X"], outputs=["Y"], infer=infer.same,
                            domain="test.lowering", since=1)
    define(lambda x: 2 * x)

    @registry.defkernel("cpu", "Twice", domain="test.lowering")
    def kernel(node, attrs):
        return "test kernel"

    registry.defop("Twice", inputs=["X"], outputs=["Y"], infer=infer.same,
                   domain="test.lowering", since=5)(lambda x: 2 * x)
    assert [registry.lookup("Twice", "test.lowering", k).kernels["cpu"] for k in (1, 5)] == \
        [kernel, kernel]


def _node(op, domain=""):
    g = Graph("m", {"": 21, "ai.onnx.ml": 5})
    x = g.add_input("x", TensorType(dtypes.float32, (2, 3)))
    (y,) = g.add_node(op, [x], ["y"], domain=domain)
    g.outputs = [y]
    bound = bind_ops(g, "m")
    infer_graph(g, bound, "m")
    return g.nodes[0], bound[id(g.nodes[0])]


def test_lower_asks_the_bound_definition():
    node, (d, attrs) = _node("Softmax")
    low = lower(node, d, attrs)
    assert isinstance(low, Lowered) and low.kernel == "softmax" and low.inputs == [node.inputs[0]]
    node, (d, attrs) = _node("Relu")
    assert lower(node, d, attrs) == "no cpu kernel for this op"


def test_lower_says_when_a_domain_has_no_cpu_kernels():
    node, (d, attrs) = _node("Binarizer", "ai.onnx.ml")
    assert lower(node, d, attrs) == "domain 'ai.onnx.ml' has no cpu kernels"


def test_a_kernel_result_matches_the_reference():
    node, (d, attrs) = _node("Softmax")
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    (y,) = lower(node, d, attrs).fn(x)
    np.testing.assert_allclose(y, d.reference(x, **attrs), rtol=1e-6, atol=1e-7)
