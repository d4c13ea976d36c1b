"""A lowered FX graph, compiled and ready to call with torch tensors.

`CompiledRegion` lowers an ATen-level FX graph to opencann IR, checks and optimizes it (bind_ops,
type inference, the engine's pass pipeline) and runs it with the engine chosen by `make_executor`,
the one place that picks an executor. Tensors cross the boundary without copies where torch and
NumPy can share memory (contiguous CPU tensors).
"""

from __future__ import annotations

import bisect
import re
import sys
import time
from typing import Any

import numpy as np
import torch

from ...engine import Interpreter, bind_ops
from ...engine.infer import infer_graph
from ...engine.passes import DEFAULT_PASSES, Pipeline
from ...errors import OpenCannError
from ...ir import Graph
from .lower import GraphLowering, LoweringError

ENGINES = ("ref", "cpu")


def make_executor(graph: Graph, name: str, engine: str = "ref"):
    """The executor of a compiled graph: an object with `run(feeds) -> outputs` (dicts by value
    name): `ref`, the reference interpreter, or `cpu`, the engine's compiled CPU executor (its
    kernels where placed, op references elsewhere)."""
    if engine not in ENGINES:
        raise OpenCannError(f"torch.compile(backend='opencann'): engine {engine!r} is not available; "
                            f"choose one of {', '.join(ENGINES)} with options={{'engine': ...}}")
    if engine == "cpu":
        from ...engine.executor import CpuExecutor

        return CpuExecutor(graph, name)
    return _Interpreter(graph, name, check_types=False)


def batched_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """numpy.matmul of two stacks of float matrices as one BLAS call per matrix, or None where the
    reference should run. NumPy's own stacked matmul leaves BLAS on this build (30x slower for
    attention-sized stacks); until the MatMul reference loops like this, the executor does."""
    if a.ndim < 3 or b.ndim < 2 or a.dtype != b.dtype or a.dtype not in (np.float32, np.float64):
        return None
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    if b.shape[-2] != k:
        return None
    a3 = np.broadcast_to(a, batch + (m, k)).reshape(-1, m, k)
    b3 = np.broadcast_to(b, batch + (k, n)).reshape(-1, k, n)
    out = np.empty((a3.shape[0], m, n), dtype=a.dtype)
    for i in range(a3.shape[0]):
        np.matmul(a3[i], b3[i], out=out[i])
    return out.reshape(batch + (m, n))


class _Interpreter(Interpreter):
    """The reference interpreter with `batched_matmul` for stacked MatMuls (same values), dropping
    each value after its last reader (a training graph's activations would otherwise all live to
    the end of the backward pass)."""

    def __init__(self, graph: Graph, model_name: str, check_types: bool = True):
        super().__init__(graph, model_name, check_types)
        self._flat = not any(n.subgraphs() for n in graph.nodes)
        keep = {id(v) for v in graph.outputs}
        last: dict[int, int] = {}
        for i, n in enumerate(graph.nodes):
            for v in n.inputs:
                if v is not None:
                    last[id(v)] = i
        drops: list[list[int]] = [[] for _ in graph.nodes]
        for vid, i in last.items():
            if vid not in keep:
                drops[i].append(vid)
        self._drops = drops

    def run(self, feeds: dict[str, Any]) -> dict[str, Any]:
        if not self._flat:  # bodies read outer values: keep everything, as the base class does
            return super().run(feeds)
        g = self.graph
        env: dict[int, Any] = {id(v): feeds[v.name] for v in g.inputs}
        for c in g.constants:
            env[id(c)] = c.const
        for n, drop in zip(g.nodes, self._drops):
            self._run_node(n, env)
            for vid in drop:
                env.pop(vid, None)
        return {v.name: env[id(v)] for v in g.outputs}

    def _run_node(self, n, env) -> None:
        if n.op == "MatMul" and not n.domain:
            a, b = env[id(n.inputs[0])], env[id(n.inputs[1])]
            if b.ndim > 2:
                out = batched_matmul(a, b)
                if out is not None:
                    env[id(n.outputs[0])] = out
                    return
        super()._run_node(n, env)


def optimize(graph: Graph, name: str, run_passes: bool = True) -> Graph:
    """Bind, infer and simplify `graph` in place (the engine's default pipeline)."""
    bound = bind_ops(graph, name)
    infer_graph(graph, bound, name)
    if run_passes:
        def reinfer(g: Graph) -> None:
            infer_graph(g, bind_ops(g, name), name)

        Pipeline(DEFAULT_PASSES, reinfer=reinfer).run(graph)
    return graph


class IRCompileError(LoweringError):
    """The lowered IR failed checks or inference at the FX node `fx_node`."""

    def __init__(self, message: str, fx_node: str | None):
        super().__init__(message)
        self.fx_node = fx_node


def _hint(s) -> int:
    if isinstance(s, int):
        return s
    h = getattr(getattr(s, "node", None), "hint", None)
    return int(h) if h is not None else 1


def _layout(val) -> list[int] | None:
    """The dim order (outermost first) of a non-contiguous dense meta tensor, else None."""
    if not isinstance(val, torch.Tensor) or val.dim() < 2:
        return None
    sizes = [_hint(s) for s in val.shape]
    strides = [_hint(s) for s in val.stride()]
    if any(st == 0 and sz > 1 for st, sz in zip(strides, sizes)):
        return None  # broadcast views come back dense, which is just as valid
    expect, contiguous = 1, True
    for sz, st in zip(reversed(sizes), reversed(strides)):
        if sz > 1 and st != expect:
            contiguous = False
        expect *= sz
    if contiguous:
        return None
    return sorted(range(len(sizes)), key=lambda i: (-strides[i], i))


class CompiledRegion:
    """One FX graph compiled by opencann. Call with a list of the graph's inputs (tensors and ints);
    returns the list of its outputs (a boxed call: the list is emptied, as AOTAutograd expects)."""

    def __init__(self, fx_graph: torch.fx.Graph, name: str, in_vals: list | None = None,
                 attrs: dict | None = None, engine: str = "ref", run_passes: bool = True,
                 debug: bool = False):
        t0 = time.perf_counter()
        self.name = name
        self._boxed_call = True  # an instance attribute: wrappers copy __dict__, not class attributes
        lowering = GraphLowering(fx_graph, name, in_vals, attrs)
        graph = lowering.run()
        self.ir_nodes_lowered = len(graph.nodes)
        try:
            optimize(graph, name, run_passes)
        except OpenCannError as e:
            m = re.search(r"node '([^']+)'", str(e))
            raise IRCompileError(str(e), m.group(1) if m else None) from e
        self.graph = graph
        self.input_kinds = lowering.input_kinds
        self.input_names = [v.name for v in graph.inputs]
        self.output_spec = lowering.output_spec
        self.layouts = [(_layout(s[2]) if s[0] == "tensor" else None) for s in self.output_spec]
        self.strides = [(_strides(s[2]) if s[0] == "tensor" else None) for s in self.output_spec]
        self.out_dtypes = [(s[2].dtype if s[0] == "tensor" else None) for s in self.output_spec]
        self.executor = make_executor(graph, name, engine)
        # constants must never reach the caller without a copy: they live on in the graph
        self._const_ranges = [_span(v.const) for v in graph.constants
                              if isinstance(v.const, np.ndarray) and v.const.size]
        self.compile_seconds = time.perf_counter() - t0
        if debug:
            print(f"[opencann] {name}: {len(graph.nodes)} IR nodes after passes "
                  f"({self.ir_nodes_lowered} lowered)", file=sys.stderr)
            print(graph.to_text(elide_above=8), file=sys.stderr)

    def __call__(self, args: list) -> list:
        feeds: dict[str, Any] = {}
        ranges = list(self._const_ranges)
        names = iter(self.input_names)
        for kind, a in zip(self.input_kinds, args):
            if kind == "none":
                continue
            name = next(names)
            if kind == "tensor":
                t = a.detach()
                # a strided view (a head split off a projection, saved for the backward) is
                # passed as it lies: the engine's kernels read views or copy them themselves
                if not t.is_contiguous() and (t.dim() == 0 or min(t.stride()) <= 0):
                    t = t.contiguous()
                arr = t.numpy()
                feeds[name] = arr
                if arr.size:
                    ranges.append(_span(arr))
            else:
                feeds[name] = np.asarray(int(a), dtype=np.int64)
        results = self.executor.run(feeds)
        protected = _Spans(ranges)
        outs = []
        made: dict[str, torch.Tensor] = {}  # FX node -> its tensor: a node returned twice is one tensor
        for spec, layout, dt, st in zip(self.output_spec, self.layouts, self.out_dtypes, self.strides):
            kind = spec[0]
            if kind == "none":
                outs.append(None)
            elif kind == "const":
                outs.append(spec[1])
            elif kind == "input":
                outs.append(args[spec[1]])
            elif kind == "sym":
                outs.append(int(results[spec[1]]))
            elif spec[3] in made:  # (a saved activation that is also a user output)
                outs.append(made[spec[3]])
            else:
                made[spec[3]] = t = _to_torch(results[spec[1]], protected, layout, dt, st)
                outs.append(t)
        args.clear()
        return outs


def _span(arr: np.ndarray) -> tuple[int, int]:
    lo, hi = np.byte_bounds(arr) if hasattr(np, "byte_bounds") else np.lib.array_utils.byte_bounds(arr)
    return lo, hi


class _Spans:
    """Byte ranges of arrays the caller must not receive as its own (inputs, constants)."""

    def __init__(self, spans: list[tuple[int, int]]):
        spans.sort()
        self.los = [lo for lo, _ in spans]
        self.max_hi = []  # the largest end among the first i ranges
        top = 0
        for _, hi in spans:
            top = max(top, hi)
            self.max_hi.append(top)

    def overlaps(self, span: tuple[int, int]) -> bool:
        i = bisect.bisect_left(self.los, span[1])
        return i > 0 and self.max_hi[i - 1] > span[0]


def _strides(val) -> tuple | None:
    """The strides (in elements) of a meta tensor, None where a dim of size 1 makes any do."""
    try:
        return tuple(None if _hint(n) == 1 else _hint(s) for n, s in zip(val.shape, val.stride()))
    except (RuntimeError, TypeError):
        return None


def _to_torch(arr, protected: _Spans, layout, dtype, strides=None) -> torch.Tensor:
    """`arr` as a tensor the caller owns, laid out as eager lays it out (`layout`: the dim order,
    outermost first, of a non-contiguous eager output; None for C order; `strides`: eager's, in
    elements). At most one copy: none when `arr` is ours and already in that order (e.g. the
    transpose of a product) or has eager's very strides (a head split off a projection, which
    eager also returns as a view), one when it is a view of an input or a constant, or in another
    order."""
    arr = np.asarray(arr)
    own = arr.flags.writeable and not (arr.size and protected.overlaps(_span(arr)))
    if own and strides is not None and layout is not None and arr.ndim == len(strides) and all(
            w is None or s == w * arr.itemsize for s, w in zip(arr.strides, strides)):
        t = torch.from_numpy(arr)
        return t if t.dtype == dtype else t.to(dtype)
    if layout is None:
        if not own or not arr.flags.c_contiguous:
            arr = np.array(arr, order="C", copy=True)
    else:
        p = arr.transpose(layout)  # C order in this view is eager's memory order
        if not own or not p.flags.c_contiguous:
            p = np.array(p, order="C", copy=True)
        arr = p.transpose(np.argsort(layout))
    t = torch.from_numpy(arr)  # takes the array's strides as they are
    if t.dtype != dtype:
        t = t.to(dtype)  # keeps the strides of a dense tensor
    return t
