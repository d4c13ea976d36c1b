"""Helpers for testing operators (in the manner of `numpy.testing`): run one op node end to end, or
ask an op what its type inference makes of given inputs.

    >>> import numpy as np
    >>> from opencann.testing import infer_op, run_op, tensor_type
    >>> run_op("Add", [np.ones(2, np.float32), np.ones(2, np.float32)])
    array([2., 2.], dtype=float32)
    >>> infer_op("Relu", [tensor_type("float32", "batch", 8)])
    float32[batch,8]

Opsets: `opset=None` means the newest: for the default ONNX domain the newest opset the installed
onnx knows (`opencann.frontends.onnx.MAX_OPSET`), for another domain the newest version of the op
that opencann defines. An int is the version of the op's own `domain`; a dict maps domains to
versions (a domain it leaves out gets the newest).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from . import dtypes, ops
from .frontends.onnx import MAX_OPSET
from .ir import Graph, TensorType, Value
from .model import compile
from .ops.registry import normalize_domain

__all__ = ["infer_op", "opset_map", "run_op", "tensor_type"]

Opset = int | Mapping[str, int] | None


def tensor_type(dtype: str | dtypes.DType, *dims: int | str) -> TensorType:
    """A TensorType of `dtype` (a name such as "float32", or a DType) and `dims` (ints, or strings
    for symbolic dims): `tensor_type("float32", "n", 4)`."""
    return TensorType(dtypes.by_name(dtype) if isinstance(dtype, str) else dtype, dims)


def opset_map(op: str, domain: str = "", opset: Opset = None) -> dict[str, int]:
    """The opset versions of a graph that holds one `op` node of `domain`: "" and `domain` always
    have a version (see the module docstring for what `opset` means)."""
    domain = normalize_domain(domain)
    if isinstance(opset, Mapping):
        versions = {normalize_domain(d): int(v) for d, v in opset.items()}
    else:
        versions = {} if opset is None else {domain: int(opset)}
    versions.setdefault("", MAX_OPSET)
    if domain not in versions:
        newest = ops.lookup(op, domain)
        versions[domain] = newest.since if newest is not None else 1
    return versions


def run_op(op: str, inputs: Sequence[Any], attrs: Mapping[str, Any] | None = None, *,
           opset: Opset = None, domain: str = "", outputs: int = 1,
           consts: Sequence[int] = (), backend: str = "ref") -> np.ndarray | tuple[np.ndarray, ...]:
    """Run one `op` node on `inputs` through `opencann.compile` (type inference and the backend's
    dtype/shape checks included) and return its output, or a tuple when `outputs` > 1. The
    default `backend` is `ref`: the op's reference, the meaning every other backend is held to.

    `inputs` are arrays (anything `np.asarray` takes), fed as graph inputs typed from the arrays;
    the indices in `consts` become graph constants instead (so inference sees their data); None
    omits an optional input. `attrs` are the node's attributes; `opset` and `domain` choose the
    op's version (module docstring); `outputs` is how many outputs the node has.
    """
    g = Graph(op, opset_map(op, domain, opset))
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
    g.outputs.extend(g.add_node(op, ins, [f"y{i}" for i in range(outputs)], dict(attrs or {}),
                                domain=domain))
    result = compile(g, backend=backend).run(feeds)
    ys = tuple(result[f"y{i}"] for i in range(outputs))
    return ys[0] if outputs == 1 else ys


def _input_value(i: int, t: Any) -> Value | None:
    if t is None:
        return None
    if isinstance(t, str):
        if t != "untyped":
            raise ValueError(f"input {i}: a string input must be 'untyped', not {t!r}")
        return Value(f"x{i}", None)
    if isinstance(t, np.ndarray):
        return Value(f"c{i}", TensorType(dtypes.from_numpy(t.dtype), t.shape), const=t)
    if isinstance(t, tuple):
        type_, data = t
        return Value(f"x{i}", type_, const=np.asarray(data))
    return Value(f"x{i}", t)


def infer_op(op: str, types: Sequence[Any], attrs: Mapping[str, Any] | None = None, *,
             opset: Opset = None, domain: str = ""):
    """What the type inference of `op` returns for inputs described by `types`: one output type,
    or a tuple/list for several (whatever the op's infer function gives; it raises
    `opencann.ops.infer.InferError` for inputs it rejects).

    Each entry of `types` is a type (a TensorType, SequenceType, ...); a (type, data) pair, for an
    input whose constant data inference may read; a NumPy array, a constant with the array's own
    type; "untyped", a value whose type is not known yet; or None, an omitted optional input.
    Optional inputs past the end of `types` count as omitted. `attrs` are the node's attributes
    (resolved with their defaults, as a graph's node would be); `opset` and `domain` choose the
    op's version (module docstring).
    """
    version = opset_map(op, domain, opset)[normalize_domain(domain)]
    d = ops.lookup(op, domain, version)
    if d is None:
        raise KeyError(f"no definition of op {op!r} (domain {domain!r}) at opset {version}")
    resolved, problems = d.resolve_attrs(dict(attrs or {}))
    if problems:
        raise ValueError(f"{op}: bad attributes: {problems}")
    vals = [_input_value(i, t) for i, t in enumerate(types)]
    while len(vals) < len(d.inputs) and not d.inputs[-1].variadic:
        vals.append(None)
    return d.infer(*vals, **resolved)
