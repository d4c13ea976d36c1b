"""Structural equality of graphs, used by round-trip tests and by passes that must not change a graph."""

from __future__ import annotations

import numpy as np

from .graph import Graph


def _attr_equal(a, b) -> bool:
    if isinstance(a, Graph) or isinstance(b, Graph):
        return isinstance(a, Graph) and isinstance(b, Graph) and graphs_equal(a, b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and a.tobytes() == b.tobytes()) if a.dtype != object else \
            (a.shape == b.shape and a.tolist() == b.tolist())
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_attr_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return type(a) is type(b) and a == b


def graphs_equal(a: Graph, b: Graph) -> bool:
    """True when `a` and `b` have the same name, values (names, types, constants), nodes and outputs."""
    if a.name != b.name or a.opset != b.opset:
        return False
    if [(v.name, v.type) for v in a.inputs] != [(v.name, v.type) for v in b.inputs]:
        return False
    if [v.name for v in a.outputs] != [v.name for v in b.outputs]:
        return False
    if len(a.constants) != len(b.constants) or len(a.nodes) != len(b.nodes):
        return False
    for x, y in zip(a.constants, b.constants):
        if x.name != y.name or x.type != y.type or not _attr_equal(x.const, y.const):
            return False
    for m, n in zip(a.nodes, b.nodes):
        if (m.op, m.domain, m.name) != (n.op, n.domain, n.name):
            return False
        if [None if v is None else v.name for v in m.inputs] != [None if v is None else v.name for v in n.inputs]:
            return False
        if [(v.name, v.type) for v in m.outputs] != [(v.name, v.type) for v in n.outputs]:
            return False
        if m.attrs.keys() != n.attrs.keys() or not all(_attr_equal(m.attrs[k], n.attrs[k]) for k in m.attrs):
            return False
    return True
