"""Helpers for the math op tests: run one node through `opencann.compile` (inference and the
interpreter's dtype/shape check included), or call an op's inference directly."""

import numpy as np
import pytest

import opencann
from opencann import dtypes, ops
from opencann.ir import Graph, TensorType, Value


def _run(op, inputs, attrs=None, opset=21, outputs=1, consts=()):
    """Run `op` on `inputs` (arrays, or None for an omitted optional); indices in `consts` are
    initializers (known at compile time). Returns one array or a tuple."""
    g = Graph(op, {"": opset})
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
    outs = g.add_node(op, ins, [f"y{i}" for i in range(outputs)], dict(attrs or {}))
    g.outputs.extend(outs)
    result = opencann.compile(g).run(feeds)
    ys = tuple(result[f"y{i}"] for i in range(outputs))
    return ys[0] if outputs == 1 else ys


def _infer(op, inputs, attrs=None, opset=21):
    """The output type(s) `op` infers for `inputs`: TensorTypes, (TensorType, const) pairs, None
    for an omitted optional input, or "untyped" for a value whose type is not known yet."""
    d = ops.lookup(op, "", opset)
    resolved, problems = d.resolve_attrs(dict(attrs or {}))
    assert not problems, problems
    vals = []
    for i, t in enumerate(inputs):
        if t is None:
            vals.append(None)
        elif t == "untyped":
            vals.append(Value(f"x{i}", None))
        elif isinstance(t, tuple):
            vals.append(Value(f"x{i}", t[0], const=np.asarray(t[1])))
        else:
            vals.append(Value(f"x{i}", t))
    while len(vals) < len(d.inputs) and not d.inputs[-1].variadic:
        vals.append(None)
    return d.infer(*vals, **resolved)


@pytest.fixture
def run_op():
    return _run


@pytest.fixture
def infer_op():
    return _infer


def t(dtype, *shape):
    """TensorType shorthand: t("float32", "n", 4)."""
    return TensorType(dtypes.by_name(dtype), shape)


@pytest.fixture
def tt():
    return t
