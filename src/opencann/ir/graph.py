"""The graph IR: a `Graph` of `Node`s over `Value`s.

A `Value` is produced by exactly one node, or is a graph input, or is a constant (initializer). A
`Node` applies an operator (`op`, in `domain`) to input values, with attributes. Graphs nest: a node
attribute may hold a subgraph (the bodies of If/Loop/Scan), whose nodes may read values of the
enclosing graphs.

    >>> from opencann import dtypes
    >>> g = Graph("double")
    >>> x = g.add_input("x", TensorType(dtypes.float32, ("n",)))
    >>> y, = g.add_node("Add", [x, x], ["y"])
    >>> g.outputs.append(y)
    >>> print(g.to_text())
    graph double(%x: float32[n]) -> (%y) {
      %y: ? = Add(%x, %x)
    }
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ..dtypes import from_numpy
from .types import TensorType, Type


class Value:
    """An SSA value: a name, a type, and where it comes from (a node, a graph input or a constant).
    `const` holds the data of a constant; `sym` is derived knowledge filled in by inference."""

    __slots__ = ("name", "type", "producer", "const", "sym")

    def __init__(self, name: str, type: Type | None = None, producer: "Node | None" = None,
                 const: np.ndarray | None = None):
        self.name = name
        self.type = type
        self.producer = producer
        self.const = const
        # what inference knows of a small integer tensor's contents element by element (ints,
        # symbols, None), e.g. Shape(x) of x: float32[batch,seq] is ["batch", "seq"]
        self.sym: list | None = None

    @property
    def dtype(self):
        return self.type.dtype if isinstance(self.type, TensorType) else None

    @property
    def shape(self):
        return self.type.shape if isinstance(self.type, TensorType) else None

    def __repr__(self) -> str:
        return f"%{self.name}: {self.type!r}"


class Node:
    """One operator application. `inputs` may hold `None` for an omitted optional input."""

    __slots__ = ("op", "domain", "inputs", "outputs", "attrs", "name")

    def __init__(self, op: str, inputs: list[Value | None], outputs: list[Value],
                 attrs: dict[str, Any] | None = None, name: str = "", domain: str = ""):
        self.op = op
        self.domain = domain
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.attrs = dict(attrs or {})
        self.name = name

    @property
    def qualified_op(self) -> str:
        return f"{self.domain}::{self.op}" if self.domain else self.op

    def describe(self) -> str:
        """A short human label: `node 'name' (Op)`."""
        label = self.name or (self.outputs[0].name if self.outputs else "?")
        return f"node {label!r} ({self.qualified_op})"

    def subgraphs(self) -> list["Graph"]:
        out = []
        for v in self.attrs.values():
            if isinstance(v, Graph):
                out.append(v)
            elif isinstance(v, list) and v and isinstance(v[0], Graph):
                out.extend(v)
        return out

    def __repr__(self) -> str:
        ins = ", ".join("_" if v is None else "%" + v.name for v in self.inputs)
        outs = ", ".join("%" + v.name for v in self.outputs)
        return f"{outs} = {self.qualified_op}({ins})"


class Graph:
    """A computation: inputs, constants, nodes in topological order, outputs, and opset versions."""

    def __init__(self, name: str = "main", opset: dict[str, int] | None = None):
        self.name = name
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.constants: list[Value] = []
        self.nodes: list[Node] = []
        self.opset: dict[str, int] = dict(opset or {})
        self._names: set[str] = set()

    # -- building --------------------------------------------------------------------------------
    def fresh_name(self, hint: str = "v") -> str:
        """A value name not yet used in this graph, derived from `hint`."""
        name, i = hint, 0
        while name in self._names:
            i += 1
            name = f"{hint}_{i}"
        return name

    def _claim(self, name: str) -> str:
        if name in self._names:
            raise ValueError(f"graph {self.name!r}: value name {name!r} is defined twice")
        self._names.add(name)
        return name

    def add_input(self, name: str, type: Type) -> Value:
        v = Value(self._claim(name), type)
        self.inputs.append(v)
        return v

    def add_constant(self, name: str, array, type: Type | None = None) -> Value:
        array = np.asarray(array)
        if type is None:
            type = TensorType(from_numpy(array.dtype), array.shape)
        v = Value(self._claim(name), type, const=array)
        self.constants.append(v)
        return v

    def add_node(self, op: str, inputs: Iterable[Value | None], outputs: Iterable[str | Value],
                 attrs: dict[str, Any] | None = None, name: str = "", domain: str = "",
                 types: list[Type | None] | None = None) -> list[Value]:
        """Append a node; `outputs` are names (new values) or untyped values. Returns the outputs."""
        outs = []
        for i, o in enumerate(outputs):
            v = o if isinstance(o, Value) else Value(o)
            self._claim(v.name)
            if types is not None and types[i] is not None:
                v.type = types[i]
            outs.append(v)
        node = Node(op, list(inputs), outs, attrs, name, domain)
        for v in outs:
            v.producer = node
        self.nodes.append(node)
        return outs

    # -- reading ---------------------------------------------------------------------------------
    def values(self) -> list[Value]:
        """Every value defined in this graph (not in subgraphs): inputs, constants, node outputs."""
        vals = list(self.inputs) + list(self.constants)
        for n in self.nodes:
            vals.extend(n.outputs)
        return vals

    def walk(self) -> Iterable[Node]:
        """Every node, including those in subgraphs, outermost first."""
        for n in self.nodes:
            yield n
            for sg in n.subgraphs():
                yield from sg.walk()

    def to_text(self, elide_above: int | None = None) -> str:
        """The text form; parse it back with `opencann.ir.parse`. `elide_above` shortens big
        constants for reading (such text does not parse back)."""
        from .text import print_graph

        return print_graph(self, elide_above=elide_above)

    def __str__(self) -> str:
        return self.to_text(elide_above=16)

    def __repr__(self) -> str:
        return f"<Graph {self.name!r}: {len(self.inputs)} inputs, {len(self.nodes)} nodes, {len(self.outputs)} outputs>"
