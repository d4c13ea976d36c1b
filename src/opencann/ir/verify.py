"""The IR verifier: structure (dangling values, cycles, duplicates) and, given an inference
function, types and shapes. Errors name the graph and node.

The IR knows no operators, so type checking takes `infer(node) -> list[Type]` from the caller (the
operator library provides one); this keeps the IR below the operator library.
"""

from __future__ import annotations

from typing import Callable

from .graph import Graph, Node, Value
from .types import OptionalType, SequenceType, TensorType


class VerifyError(ValueError):
    """The graph is malformed; the message names the graph, node and value."""


def compatible(declared, inferred) -> bool:
    """Whether an inferred type fits a declared one (unknown dims and symbols match anything)."""
    if declared is None or inferred is None:
        return True
    if type(declared) is not type(inferred):
        return False
    if isinstance(declared, (SequenceType, OptionalType)):
        return compatible(declared.elem, inferred.elem)
    if declared.dtype != inferred.dtype:
        return False
    if declared.shape is None or inferred.shape is None:
        return True
    if len(declared.shape) != len(inferred.shape):
        return False
    return all(not (isinstance(a, int) and isinstance(b, int)) or a == b
               for a, b in zip(declared.shape, inferred.shape))


def verify(graph: Graph, infer: Callable[[Node], list] | None = None) -> None:
    """Raise `VerifyError` if `graph` is malformed. With `infer`, also check every node's output
    types against what inference gives for its inputs."""
    _verify(graph, [], infer)


def _verify(g: Graph, outer: list[set[int]], infer) -> None:
    where = f"graph {g.name!r}"
    defined: set[int] = set()
    names: set[str] = set()
    scopes = outer + [defined]

    def define(v: Value, what: str):
        if v.name in names:
            raise VerifyError(f"{where}: value %{v.name} ({what}) is defined twice")
        names.add(v.name)
        defined.add(id(v))

    def visible(v: Value) -> bool:
        return any(id(v) in s for s in scopes)

    for v in g.inputs:
        define(v, "graph input")
    for c in g.constants:
        if c.const is None:
            raise VerifyError(f"{where}: constant %{c.name} has no data")
        define(c, "constant")
        t = c.type
        if isinstance(t, TensorType) and t.shape is not None and tuple(t.shape) != c.const.shape:
            raise VerifyError(f"{where}: constant %{c.name} is declared {t!r} but holds shape {c.const.shape}")
    for n in g.nodes:
        for i, v in enumerate(n.inputs):
            if v is None:
                continue
            if not visible(v):
                later = any(v is o for m in g.nodes for o in m.outputs)
                why = "is produced later (a cycle, or nodes out of order)" if later else "is never defined (dangling)"
                raise VerifyError(f"{where}: {n.describe()} input {i} %{v.name} {why}")
        for sg in n.subgraphs():
            _verify(sg, scopes, infer)
        for o in n.outputs:
            if o.producer is not n:
                raise VerifyError(f"{where}: {n.describe()} output %{o.name} does not name its producer")
            define(o, f"output of {n.describe()}")
        if infer is not None:
            try:
                inferred = infer(n)
            except Exception as e:  # noqa: BLE001 - re-raised with the node named
                raise VerifyError(f"{where}: {n.describe()}: type inference failed: {e}") from e
            for o, t in zip(n.outputs, inferred):
                if not compatible(o.type, t):
                    raise VerifyError(f"{where}: {n.describe()} output %{o.name} is typed {o.type!r} "
                                      f"but its inputs give {t!r}")
    for v in g.outputs:
        if not visible(v):
            raise VerifyError(f"{where}: graph output %{v.name} is never defined")
