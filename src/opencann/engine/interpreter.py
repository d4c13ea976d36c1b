"""Runs a graph node by node with each op's NumPy reference: the semantic definition of a model,
used by the `ref` backend and as the oracle for compiled execution.

Subgraphs (If/Loop/Scan bodies) run through the same interpreter, installed for the references via
`opencann.ops.context`.
"""

from __future__ import annotations

import time
from collections import ChainMap
from typing import Any

import numpy as np

from .. import profiler
from ..errors import ExecutionError, InvalidModelError, UnsupportedOpsError
from ..ir import Graph, Node, TensorType, Value
from ..ops import context, registry
from . import cost


def _opset_for(node: Node, opset: dict[str, int]) -> int | None:
    return opset.get(registry.normalize_domain(node.domain), opset.get(node.domain))


def bind_ops(graph: Graph, model_name: str, opset: dict[str, int] | None = None) -> dict[int, Any]:
    """Find the definition of every node's op (subgraphs included) and check its inputs and
    attributes. Raises `UnsupportedOpsError` listing every missing op at once, or
    `InvalidModelError` listing every malformed node."""
    opset = dict(graph.opset if opset is None else opset)
    bound: dict[int, tuple] = {}
    missing: dict[str, list[str]] = {}
    problems: list[str] = []

    def visit(g: Graph, ops_in_scope: dict[str, int]):
        scope_opset = {**ops_in_scope, **g.opset}
        for n in g.nodes:
            version = _opset_for(n, scope_opset)
            d = registry.lookup(n.op, n.domain, version)
            if d is None:
                key = f"{n.qualified_op} (opset {version})" if version is not None else n.qualified_op
                missing.setdefault(key, []).append(n.name or n.outputs[0].name)
            else:
                attrs, errs = d.resolve_attrs(n.attrs)
                n_in = len(n.inputs)
                while n_in and n.inputs[n_in - 1] is None:
                    n_in -= 1
                if n_in < d.min_inputs or n_in > d.max_inputs:
                    errs.append(f"takes {d.min_inputs}..{d.max_inputs} inputs, got {n_in}")
                if len(n.outputs) > d.max_outputs:
                    errs.append(f"has at most {d.max_outputs} outputs, got {len(n.outputs)}")
                problems.extend(f"{n.describe()}: {e}" for e in errs)
                bound[id(n)] = (d, attrs)
            for sg in n.subgraphs():
                visit(sg, scope_opset)

    visit(graph, opset)
    if missing:
        raise UnsupportedOpsError(model_name, missing)
    if problems:
        raise InvalidModelError(f"model {model_name!r} has {len(problems)} malformed node(s):\n  - "
                                + "\n  - ".join(problems))
    return bound


def last_reads(g: Graph) -> dict[int, list[int]]:
    """Node index -> ids of the node outputs of `g` whose last reader is that node (reads from
    nested bodies count as reads by the node holding them); graph outputs are never listed."""
    produced = {id(o) for n in g.nodes for o in n.outputs} - {id(v) for v in g.outputs}
    last: dict[int, int] = {}
    for i, n in enumerate(g.nodes):
        for v in n.inputs:
            if v is not None:
                last[id(v)] = i
        for sg in n.subgraphs():
            for m in sg.walk():
                for v in m.inputs:
                    if v is not None:
                        last[id(v)] = i
    out: dict[int, list[int]] = {}
    for vid, i in last.items():
        if vid in produced:
            out.setdefault(i, []).append(vid)
    return out


def _describe_inputs(args) -> str:
    parts = []
    for a in args:
        if a is None:
            parts.append("None")
        elif isinstance(a, np.ndarray):
            parts.append(f"{a.dtype}{list(a.shape)}")
        elif isinstance(a, list):
            parts.append(f"seq[{len(a)}]")
        else:
            parts.append(type(a).__name__)
    return ", ".join(parts)


class Interpreter:
    """Executes `graph` with op references. `run(feeds)` maps input names to arrays and returns a
    dict of output arrays."""

    def __init__(self, graph: Graph, model_name: str = "model", check_types: bool = True):
        self.graph = graph
        self.model_name = model_name
        self.check_types = check_types
        self.bound = bind_ops(graph, model_name)
        self._free_after: dict[int, dict[int, list[int]]] = {}

    def run(self, feeds: dict[str, Any]) -> dict[str, Any]:
        env: dict[int, Any] = {id(v): feeds[v.name] for v in self.graph.inputs}
        with context.graph_runner(self.subgraph_runner(env)):
            self._run_graph(self.graph, env)
        return {v.name: env[id(v)] for v in self.graph.outputs}

    def subgraph_runner(self, base_env):
        """The `run_graph` that op references (If/Loop/Scan bodies) call, over values `base_env`
        (id(value) -> data). One per run, so runs on several threads do not share state."""
        stack = [base_env]  # the envs of the graphs now running, innermost last

        def run_subgraph(graph: Graph, inputs: list) -> list:
            # a body reads values of its enclosing graphs by identity: chain onto the caller's env
            sub = ChainMap({}, stack[-1])
            for v, x in zip(graph.inputs, inputs):
                sub[id(v)] = x
            stack.append(sub)
            try:
                self._run_graph(graph, sub)
            finally:
                stack.pop()
            return [sub[id(v)] for v in graph.outputs]

        return run_subgraph

    def _run_graph(self, g: Graph, env) -> None:
        free = self._free_after.get(id(g))
        if free is None:
            free = self._free_after[id(g)] = last_reads(g)
        for c in g.constants:
            env[id(c)] = c.const
        for i, n in enumerate(g.nodes):
            self._run_node(n, env)
            for vid in free.get(i, ()):
                env.pop(vid, None)  # dead: let its memory go now, not at the end of the run

    def _run_node(self, n: Node, env) -> None:
        d, attrs = self.bound[id(n)]
        args = [None if v is None else env[id(v)] for v in n.inputs]
        while len(args) < len(d.inputs) and not d.inputs[-1].variadic:
            args.append(None)
        tok = context.set_node(n)
        prof = profiler.active()
        if prof is not None:
            t0 = time.perf_counter()
        try:
            result = d.reference(*args, **attrs)
        except Exception as e:  # noqa: BLE001 - re-raised with the node named
            raise ExecutionError(f"model {self.model_name!r}: {n.describe()} failed on inputs "
                                 f"({_describe_inputs(args)}): {type(e).__name__}: {e}") from e
        finally:
            context.reset_node(tok)
        outs = result if isinstance(result, tuple) else (result,)
        if prof is not None:
            dt = time.perf_counter() - t0
            arrays = [x for x in outs if isinstance(x, np.ndarray)]
            prof.add(profiler.Slice(n.name or n.outputs[0].name, n.op, f"ref:{n.op}", t0, dt,
                                    flops=cost.flops(n.op, attrs, args, arrays),
                                    bytes=cost.moved_bytes(n.op, args, arrays)))
        if len(outs) < len(n.outputs):
            raise ExecutionError(f"model {self.model_name!r}: {n.describe()} reference returned "
                                 f"{len(outs)} outputs, the node has {len(n.outputs)}")
        for v, x in zip(n.outputs, outs):
            if isinstance(v.type, TensorType):
                x = np.asarray(x)
                if self.check_types:
                    _check_output(self.model_name, n, v, x)
            env[id(v)] = x


def _check_output(model: str, n: Node, v: Value, x: np.ndarray) -> None:
    t = v.type
    if x.dtype != t.dtype.np and not (t.dtype.kind == "string" and x.dtype.kind in "OUS"):
        raise ExecutionError(f"model {model!r}: {n.describe()} output %{v.name} is {x.dtype} but its "
                             f"type is {t!r}: the op's reference and its type inference disagree")
    if t.shape is not None:
        if len(t.shape) != x.ndim or any(isinstance(d, int) and d != s for d, s in zip(t.shape, x.shape)):
            raise ExecutionError(f"model {model!r}: {n.describe()} output %{v.name} has shape "
                                 f"{list(x.shape)} but its type is {t!r}: the op's reference and "
                                 f"its shape inference disagree")
