"""Common-subexpression elimination: nodes with the same op, attributes and inputs compute the same
values once; equal small constants are shared."""

from __future__ import annotations

import numpy as np

from ...ir import Graph
from ..rewrite import output_ids, replace_uses

# ops whose outputs are not a function of their inputs alone: CSE never merges them, the cpu
# executor never memoizes them
NONDETERMINISTIC = {"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike",
                    "Bernoulli", "Multinomial", "Dropout"}
_SMALL = 4096  # constants up to this many elements are compared by value


def _attr_key(v):
    if isinstance(v, np.ndarray):
        return ("tensor", v.dtype.str, v.shape, v.tobytes() if v.dtype != object else tuple(v.ravel().tolist()))
    if isinstance(v, list):
        return tuple(_attr_key(x) for x in v)
    if isinstance(v, float) and v != v:
        return ("nan",)
    return v


def cse(graph: Graph) -> int:
    """Merge duplicate nodes and equal small constants; returns the number of values merged."""
    outs = output_ids(graph)
    mapping = {}
    seen_consts: dict = {}
    for c in graph.constants:
        if c.const.size > _SMALL or id(c) in outs:
            continue
        a = c.const
        key = (a.dtype.str, a.shape, a.tobytes() if a.dtype != object else tuple(a.ravel().tolist()))
        if key in seen_consts:
            mapping[id(c)] = seen_consts[key]
        else:
            seen_consts[key] = c
    replace_uses(graph, mapping)
    merged = len(mapping)
    seen: dict = {}
    for n in graph.nodes:
        if n.op in NONDETERMINISTIC or n.subgraphs():
            continue
        key = (n.domain, n.op, tuple(id(v) if v is not None else None for v in n.inputs),
               tuple(sorted((k, _attr_key(v)) for k, v in n.attrs.items())), len(n.outputs))
        first = seen.get(key)
        if first is None:
            seen[key] = n
            continue
        node_map = {id(o): f for o, f in zip(n.outputs, first.outputs) if id(o) not in outs}
        if len(node_map) == len(n.outputs):
            # later duplicates read inputs that now resolve to the first node's outputs
            replace_uses(graph, node_map)
            merged += len(node_map)
    return merged
