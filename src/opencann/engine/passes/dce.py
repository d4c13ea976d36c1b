"""Dead-code elimination: drop nodes none of whose outputs is read, and unused constants."""

from __future__ import annotations

from ...ir import Graph
from ..rewrite import output_ids


def dce(graph: Graph) -> int:
    """Remove nodes whose outputs nobody reads (graph outputs count as read), then constants no
    one reads. Subgraphs are cleaned too. Returns the number of nodes and constants removed."""
    removed = 0
    for n in graph.nodes:
        for sg in n.subgraphs():
            removed += dce(sg)
    live_outputs = output_ids(graph)
    alive = []
    read: set[int] = set(live_outputs)
    # walk backwards so a chain of dead nodes goes in one sweep
    for n in reversed(graph.nodes):
        if any(id(o) in read for o in n.outputs):
            alive.append(n)
            read.update(id(v) for v in n.inputs if v is not None)
            for sg in n.subgraphs():  # values a body reads from this scope
                read.update(id(v) for m in sg.walk() for v in m.inputs if v is not None)
        else:
            removed += 1
    graph.nodes = alive[::-1]
    consts = [c for c in graph.constants if id(c) in read]
    removed += len(graph.constants) - len(consts)
    graph.constants = consts
    return removed
