"""Placement: which step runs each node of a graph compiled for the `cpu` backend.

Every top-level node ends up in exactly one `Step`: a fusion group or a single lowered node on
`cpu` (a tile-kernel launch, by its op's `OpDef.kernels["cpu"]`, see `opencann.ops.lowering`), or
its NumPy reference on `ref` when no cpu lowering fits (the op, its dtypes, attributes or shapes),
with the reason recorded. `Placement.report()` lists the
fallbacks and the fusion groups.

    >>> p = place(graph, bind_ops(graph, "m"), "m")          # doctest: +SKIP
    >>> print(p.report())                                    # doctest: +SKIP
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..ir import Graph, Node, Value
from ..ops.lowering import Lowered, lower
from .fusion import EW_OPS, FusionGroup, find_groups

__all__ = ["Placement", "Step", "place"]


@dataclass
class Step:
    """One unit of the schedule: `fn(*inputs) -> tuple of outputs` on `device` ("cpu" or "ref").
    `fn` is None for ref steps (the executor runs the node's reference)."""

    device: str
    kernel: str
    nodes: list[Node]
    inputs: list[Value | None]
    outputs: list[Value]
    fn: Callable | None = None
    group: FusionGroup | None = None
    reason: str = ""

    @property
    def name(self) -> str:
        n = self.nodes[-1] if self.group else self.nodes[0]
        return n.name or n.outputs[0].name

    @property
    def op(self) -> str:
        return "+".join(dict.fromkeys(n.op for n in self.nodes)) if self.group else self.nodes[0].op


def _shape_text(v: Value | None) -> str:
    if v is None:
        return "_"
    return repr(v.type) if v.type is not None else "?"


@dataclass
class Placement:
    """The steps of a graph in execution order, and why nodes fell back to `ref`."""

    model: str
    steps: list[Step]
    n_nodes: int
    groups: list[FusionGroup] = field(default_factory=list)

    @property
    def fallbacks(self) -> list[Step]:
        return [s for s in self.steps if s.device == "ref"]

    def report(self) -> str:
        cpu = [s for s in self.steps if s.device == "cpu"]
        ref = self.fallbacks
        fused_nodes = sum(len(g.nodes) for g in self.groups if len(g.nodes) > 1)
        lines = [(f"placement of model {self.model!r} on cpu: {self.n_nodes} nodes -> "
                 f"{len(self.steps)} steps ({len(cpu)} cpu kernel launches, {len(ref)} nodes on ref); "
                 f"{sum(len(s.nodes) for s in cpu)} nodes on cpu, {fused_nodes} of them in "
                 f"{sum(1 for g in self.groups if len(g.nodes) > 1)} fusion groups")]
        kinds = Counter(s.kernel for s in cpu)
        lines.append("cpu kernels: " + ", ".join(f"{k} x{c}" for k, c in kinds.most_common()))
        multi = [g for g in self.groups if len(g.nodes) > 1]
        if multi:
            lines.append(f"fusion groups ({len(multi)}):")
            lines += [f"  {g.describe()}" for g in multi]
        if ref:
            lines.append(f"ref fallbacks ({len(ref)}): " + ", ".join(
                f"{op} x{c}" for op, c in Counter(s.nodes[0].op for s in ref).most_common()))
            for s in ref:
                n = s.nodes[0]
                ins = ", ".join(_shape_text(v) for v in n.inputs)
                lines.append(f"  {n.op} {s.name!r} ({ins}) -> "
                             f"{', '.join(_shape_text(v) for v in n.outputs)}: {s.reason}")
        else:
            lines.append("ref fallbacks: none")
        return "\n".join(lines)


def place(graph: Graph, bound: dict, model: str = "model", fuse: bool = True) -> Placement:
    """Place `graph`'s top-level nodes: fusion groups (when `fuse`), single-node cpu lowerings,
    and ref fallbacks, in an order that respects every data dependence."""
    groups, reasons = find_groups(graph, bound, fuse)
    index = {id(n): i for i, n in enumerate(graph.nodes)}
    at: dict[int, FusionGroup] = {}  # a group runs where its last node is (or its first)
    member: set[int] = set()
    for g in groups:
        pick = min if g.at_first else max
        at[id(pick(g.nodes, key=lambda n: index[id(n)]))] = g
        member.update(id(n) for n in g.nodes)
    steps: list[Step] = []
    for n in graph.nodes:
        g = at.get(id(n))
        if g is not None:
            steps.append(Step("cpu", g.lowered.kernel, g.nodes, g.lowered.inputs,
                              [g.output, *g.extra], g.lowered.fn, g))
            continue
        if id(n) in member:
            continue
        reason = reasons.get(id(n))
        if reason is None and n.op not in ("MatMul", "Gemm", "Conv") and not n.subgraphs():
            low = lower(n, *bound[id(n)])
            if isinstance(low, Lowered):
                outs = [n.outputs[0]] if low.outputs == 1 else list(n.outputs[:low.outputs])
                steps.append(Step("cpu", low.kernel, [n], low.inputs, outs, low.fn))
                continue
            reason = low
        if reason is None:
            reason = "has subgraphs" if n.subgraphs() else "no cpu kernel for this op"
        if reason == "no cpu kernel for this op" and n.op in EW_OPS:
            reason = ("fused elementwise kernels take a bool condition and float32 values only"
                      if n.op == "Where" else "fused elementwise kernels take float32 only")
        steps.append(Step("ref", f"ref:{n.op}", [n], list(n.inputs), list(n.outputs), None,
                          None, reason))
    return Placement(model, steps, len(graph.nodes), groups)

