"""Helpers for the tensor family's tests: run one node end to end, or call an op's inference."""

import numpy as np
import pytest

import opencann
from opencann import dtypes, ops
from opencann.ir import Graph, TensorType, Value


def _run(op, inputs, attrs=None, opset=23, outputs=1, consts=()):
    """Run one `op` node through `opencann.compile` (inference and the interpreter's dtype/shape
    check included). None in `inputs` omits an optional input; indices in `consts` become graph
    constants (so inference sees their data). Returns one array, or a tuple."""
    g = Graph(op, {"": opset})
    ins, feeds = [], {}
    for i, x in enumerate(inputs):
        if x is None:
            ins.append(None)
            continue
        x = np.asarray(x)
        if i in consts:
            ins.append(g.add_constant(f"c{i}", x))
            continue
        ins.append(g.add_input(f"x{i}", TensorType(dtypes.from_numpy(x.dtype), x.shape)))
        feeds[f"x{i}"] = x
    g.outputs.extend(g.add_node(op, ins, [f"y{i}" for i in range(outputs)], dict(attrs or {})))
    result = opencann.compile(g).run(feeds)
    ys = tuple(result[f"y{i}"] for i in range(outputs))
    return ys[0] if outputs == 1 else ys


def _infer(op, inputs, attrs=None, opset=23):
    """What `op` infers. `inputs` holds TensorTypes, NumPy arrays (constants: their type and data)
    or None (an omitted optional input)."""
    d = ops.lookup(op, "", opset)
    resolved, problems = d.resolve_attrs(dict(attrs or {}))
    assert not problems, problems
    vals = []
    for i, t in enumerate(inputs):
        if t is None:
            vals.append(None)
        elif isinstance(t, np.ndarray):
            vals.append(Value(f"c{i}", TensorType(dtypes.from_numpy(t.dtype), t.shape), const=t))
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
