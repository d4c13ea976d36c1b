"""Helpers for the ml op tests: run one node through `opencann.compile` (inference and the
interpreter's dtype/shape checks included), or call an op's inference directly."""

import numpy as np
import pytest

import opencann
from opencann import dtypes, ops
from opencann.ir import Graph, TensorType, Value


def run_node(op, inputs, attrs=None, opset=22, outputs=1, consts=(), domain="", domain_opset=1):
    """Run `op` on `inputs` (arrays, or None for an omitted optional); indices in `consts` become
    initializers (known at compile time). Returns one array or a tuple."""
    opsets = {"": opset} if not domain else {"": opset, domain: domain_opset}
    g = Graph(op, opsets)
    ins, feeds = [], {}
    for i, x in enumerate(inputs):
        if x is None:
            ins.append(None)
            continue
        x = np.asarray(x)
        if i in consts:
            ins.append(g.add_constant(f"c{i}", x))
        else:
            ins.append(g.add_input(f"x{i}", TensorType(dtypes.from_numpy(x.dtype), x.shape)))
            feeds[f"x{i}"] = x
    outs = g.add_node(op, ins, [f"y{i}" for i in range(outputs)], dict(attrs or {}), domain=domain)
    g.outputs.extend(outs)
    result = opencann.compile(g).run(feeds)
    ys = tuple(result[f"y{i}"] for i in range(outputs))
    return ys[0] if outputs == 1 else ys


def infer_node(op, inputs, attrs=None, opset=22, domain=""):
    """The output type(s) `op` infers; an input is a TensorType, or (TensorType, const data)."""
    d = ops.lookup(op, domain, opset)
    resolved, problems = d.resolve_attrs(dict(attrs or {}))
    assert not problems, problems
    vals = []
    for i, t in enumerate(inputs):
        if t is None:
            vals.append(None)
        elif isinstance(t, tuple):
            vals.append(Value(f"x{i}", t[0], const=np.asarray(t[1])))
        else:
            vals.append(Value(f"x{i}", t))
    while len(vals) < len(d.inputs) and not d.inputs[-1].variadic:
        vals.append(None)
    return d.infer(*vals, **resolved)


def tensor_type(dtype, *shape):
    """TensorType shorthand: tensor_type("float32", "n", 4)."""
    return TensorType(dtypes.by_name(dtype), shape)


@pytest.fixture
def run():
    return run_node


@pytest.fixture
def infer_types():
    return infer_node


@pytest.fixture
def tt():
    return tensor_type
