"""Helpers for the transformer op tests: run one node through `opencann.compile` (type inference
and the interpreter's dtype/shape checks included), or call an op's inference directly."""

import numpy as np
import pytest

import opencann
from opencann import dtypes, ops
from opencann.ir import Graph, TensorType, Value


def run_node(op, inputs, attrs=None, opset=25, outputs=1, domain=""):
    """Run `op` on `inputs` (arrays, or None for an omitted optional); returns one array or a tuple."""
    g = Graph(op, {"": opset} if not domain else {"": opset, domain: 1})
    ins, feeds = [], {}
    for i, x in enumerate(inputs):
        if x is None:
            ins.append(None)
            continue
        x = np.asarray(x)
        ins.append(g.add_input(f"x{i}", TensorType(dtypes.from_numpy(x.dtype), x.shape)))
        feeds[f"x{i}"] = x
    outs = g.add_node(op, ins, [f"y{i}" for i in range(outputs)], dict(attrs or {}), domain=domain)
    g.outputs.extend(outs)
    result = opencann.compile(g).run(feeds)
    ys = tuple(result[f"y{i}"] for i in range(outputs))
    return ys[0] if outputs == 1 else ys


def infer_node(op, types, attrs=None, opset=25, domain=""):
    """The output type(s) `op` infers for input `types` (None for an omitted optional)."""
    d = ops.lookup(op, domain, opset)
    resolved, problems = d.resolve_attrs(dict(attrs or {}))
    assert not problems, problems
    vals = [None if t is None else Value(f"x{i}", t) for i, t in enumerate(types)]
    while len(vals) < len(d.inputs) and not d.inputs[-1].variadic:
        vals.append(None)
    return d.infer(*vals, **resolved)


@pytest.fixture(name="run_node")
def run_node_fixture():
    return run_node


@pytest.fixture(name="infer_node")
def infer_node_fixture():
    return infer_node


@pytest.fixture
def rng():
    return np.random.default_rng(0)
