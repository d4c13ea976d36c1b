"""Small graph-editing operations that passes share: who uses a value, replacing uses, turning a
node's outputs into constants. Graph outputs keep their `Value` objects (and so their names)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..ir import Graph, Node, Value


def users(graph: Graph) -> dict[int, list[Node]]:
    """id(value) -> the nodes (in this graph or its subgraphs) that read it."""
    out: dict[int, list[Node]] = defaultdict(list)
    for n in graph.walk():
        for v in n.inputs:
            if v is not None:
                out[id(v)].append(n)
    return out


def replace_uses(graph: Graph, mapping: dict[int, Value]) -> int:
    """Make every reader of value `old` (keyed by id) read `mapping[id(old)]` instead, subgraphs
    included. Graph outputs are left alone (a pass must keep their names). Returns uses rewritten."""
    if not mapping:
        return 0

    def resolve(v: Value) -> Value:
        seen = 0
        while id(v) in mapping and seen < 64:  # chains a -> b -> c
            v = mapping[id(v)]
            seen += 1
        return v

    count = 0
    for n in graph.walk():
        for i, v in enumerate(n.inputs):
            if v is not None and id(v) in mapping:
                n.inputs[i] = resolve(v)
                count += 1
    return count


def output_ids(graph: Graph) -> set[int]:
    return {id(v) for v in graph.outputs}


def make_constant(graph: Graph, value: Value, array: np.ndarray) -> None:
    """Turn `value` (a node output of `graph`) into a constant holding `array`, in place."""
    value.const = array
    value.producer = None
    graph.constants.append(value)


def remove_nodes(graph: Graph, dead: set[int]) -> None:
    graph.nodes = [n for n in graph.nodes if id(n) not in dead]
