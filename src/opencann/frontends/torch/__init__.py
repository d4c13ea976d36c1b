"""The PyTorch adapter: `torch.compile(model, backend="opencann")`.

Dynamo captures FX graphs; AOTAutograd lowers them (forward and, when training, backward) to ATen
through the core ATen decompositions; `lower.py` translates each ATen op to opencann IR; the engine
checks and optimizes the IR and runs it. Ops opencann cannot lower run in eager PyTorch between
opencann regions, and `report()` lists them.

    >>> import torch
    >>> compiled = torch.compile(model, backend="opencann")                 # doctest: +SKIP
    >>> compiled = torch.compile(model, backend="opencann",
    ...                          options={"debug": True, "fallback": False})  # doctest: +SKIP
    >>> print(opencann.frontends.torch.report())                            # doctest: +SKIP

Options (`torch.compile(..., options={...})`):
  - `debug` (False): print each compiled graph's IR to stderr.
  - `engine` ("ref"): the executor: `ref`, the reference interpreter, or `cpu`, the engine's
    compiled CPU executor (generated C kernels, compiled on first use and cached on disk).
  - `fallback` (True): run what cannot be lowered in eager PyTorch; False raises instead.
  - `passes` (True): run the engine's graph passes (folding, CSE, DCE) before execution.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx

from ...backends import default_backend
from ...errors import OpenCannError, UnsupportedOpsError
from . import partition
from .lower import DECOMPOSITION_EXCLUDES, LoweringError
from .runner import ENGINES, CompiledRegion

__all__ = ["OPTIONS", "CompileRecord", "Report", "opencann_backend", "report", "reset_report"]

log = logging.getLogger("opencann.frontends.torch")

# engine None: the best this machine runs (`backends.default_backend()`: OPENCANN_BACKEND, else
# the compiled cpu engine where a C compiler exists, else the reference interpreter)
OPTIONS = {"debug": False, "engine": None, "fallback": True, "passes": True}


@dataclass
class CompileRecord:
    """What happened when one ATen graph (a forward, backward or inference graph) was compiled."""

    graph: str
    nodes: int  # ATen call nodes in the graph
    regions: int  # opencann regions the graph was split into
    fallbacks: Counter  # op -> nodes run in eager PyTorch
    reasons: dict[str, str]  # op -> why (the first node's reason)
    seconds: float
    symbolic: bool  # whether the graph has symbolic sizes

    def line(self) -> str:
        head = (f"opencann compiled {self.graph}: {self.nodes} ATen nodes, {self.regions} region(s)"
                f"{', symbolic shapes' if self.symbolic else ''}, {self.seconds:.2f}s")
        if not self.fallbacks:
            return head + ", nothing falls back"
        ops = ", ".join(f"{op} x{k} ({self.reasons[op]})" for op, k in sorted(self.fallbacks.items()))
        return f"{head}; runs in eager PyTorch: {ops}"


@dataclass
class Report:
    """Everything compiled since the last `reset_report()`: one record per ATen graph, and the
    ops that fell back to eager PyTorch, with counts (nodes, summed over graphs)."""

    backend_calls: int = 0  # dynamo graphs handed to the backend (each compile or recompile)
    records: list[CompileRecord] = field(default_factory=list)

    @property
    def graphs(self) -> int:
        return len(self.records)

    @property
    def fallbacks(self) -> Counter:
        total: Counter = Counter()
        for r in self.records:
            total.update(r.fallbacks)
        return total

    def __str__(self) -> str:
        lines = [f"opencann torch backend: {self.backend_calls} dynamo graph(s), {self.graphs} ATen graph(s) compiled"]
        lines += ["  " + r.line() for r in self.records]
        fb = self.fallbacks
        if fb:
            lines.append("ops run in eager PyTorch (nodes):")
            reasons = {}
            for r in self.records:
                for op, why in r.reasons.items():
                    reasons.setdefault(op, why)
            lines += [f"  {op}: {k} ({reasons[op]})" for op, k in fb.most_common()]
        else:
            lines.append("no op fell back to eager PyTorch")
        return "\n".join(lines)


_lock = threading.Lock()
_report = Report()
_graph_ids = itertools.count()


def report() -> Report:
    """A snapshot of what the backend compiled and what fell back to eager PyTorch."""
    with _lock:
        return Report(_report.backend_calls, list(_report.records))


def reset_report() -> None:
    """Forget what was compiled so far (the next `report()` starts empty)."""
    global _report
    with _lock:
        _report = Report()


def _options(options: dict | None) -> dict:
    opts = dict(OPTIONS)
    unknown = set(options or {}) - set(OPTIONS)
    if unknown:
        raise OpenCannError(f"torch.compile(backend='opencann'): unknown option(s) {sorted(unknown)}; "
                            f"known: {sorted(OPTIONS)}")
    opts.update(options or {})
    if opts["engine"] is None:
        opts["engine"] = default_backend()
    if opts["engine"] not in ENGINES:
        raise OpenCannError(f"torch.compile(backend='opencann'): engine {opts['engine']!r} is not "
                            f"available; choose one of {', '.join(ENGINES)}")
    return opts


def _has_symbols(gm: torch.fx.GraphModule) -> bool:
    for n in gm.graph.nodes:
        if n.op == "placeholder":
            v = n.meta.get("val")
            if isinstance(v, torch.SymInt) or (isinstance(v, torch.Tensor) and any(
                    not isinstance(d, int) for d in v.shape)):
                return True
    return False


def compile_aten_graph(gm: torch.fx.GraphModule, example_inputs, name: str, opts: dict):
    """Compile one ATen-level FX graph: the whole of it on opencann when every node lowers,
    otherwise opencann regions with eager PyTorch between them. Returns a boxed callable."""
    t0 = time.perf_counter()
    rejected: set[str] = set()
    nodes = sum(1 for n in gm.graph.nodes if n.op == "call_function")
    attrs = {n.target: _attr(gm, n.target) for n in gm.graph.nodes if n.op == "get_attr"}
    while True:  # each failed lowering sends one more node to eager PyTorch, then retries (so it ends)
        fb = partition.fallbacks(gm, rejected)
        if fb and not opts["fallback"]:
            raise UnsupportedOpsError(name, {f"{op} ({nodes_[0][1]})": [n for n, _ in nodes_]
                                             for op, nodes_ in fb.items()})
        try:
            if not fb and _inputs_supported(gm):
                compiled = CompiledRegion(gm.graph, name, attrs=attrs, engine=opts["engine"],
                                          run_passes=opts["passes"], debug=opts["debug"])
                regions = 1
            else:
                compiled, regions = _compile_split(gm, name, rejected, opts)
            break
        except LoweringError as e:
            bad = getattr(e, "fx_node", None) or _node_named_in(str(e), gm)
            if bad is None or bad in rejected or not opts["fallback"]:
                raise
            log.debug("opencann: %s goes to eager PyTorch: %s", bad, e)
            rejected.add(bad)
    record = CompileRecord(name, nodes, regions, partition.count(fb),
                           {op: nodes_[0][1] for op, nodes_ in fb.items()},
                           time.perf_counter() - t0, _has_symbols(gm))
    with _lock:
        _report.records.append(record)
    (log.warning if fb else log.info)(record.line())
    if opts["debug"]:
        print("[opencann] " + record.line(), file=sys.stderr)
    return compiled


def _inputs_supported(gm: torch.fx.GraphModule) -> bool:
    """Whether every graph input has a dtype opencann runs (else the graph is split, even with no
    unsupported op, so such inputs stay outside opencann's regions)."""
    return all(partition.dtype_supported(n.meta.get("val")) for n in gm.graph.nodes if n.op == "placeholder")


def _node_named_in(message: str, gm: torch.fx.GraphModule) -> str | None:
    if message.startswith("node "):
        name = message[5:].split(" ", 1)[0]
        if any(n.name == name for n in gm.graph.nodes):
            return name
    return None


def _attr(gm, target: str):
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


class _Region(torch.nn.Module):
    """An opencann region inside a split graph, called by the eager parts around it."""

    def __init__(self, compiled: CompiledRegion):
        super().__init__()
        self.compiled = compiled

    def forward(self, *args):
        return tuple(self.compiled(list(args)))


def _compile_split(gm: torch.fx.GraphModule, name: str, rejected: set[str], opts: dict):
    import copy

    from torch._functorch.aot_autograd import make_boxed_func
    from torch._subclasses.fake_tensor import unset_fake_temporarily

    with unset_fake_temporarily():  # the graph's constants are real tensors
        gm = copy.deepcopy(gm)  # splitting rewrites the graph; keep the original for a retry
    fused, regions = partition.split(gm, rejected)
    calls = {n.target: n for n in fused.graph.nodes if n.op == "call_module"}
    for k, region in enumerate(regions):
        sub = getattr(fused, region)
        node = calls[region]
        in_vals = [partition.meta_of(a) for a in node.args]
        attrs = {n.target: _attr(sub, n.target) for n in sub.graph.nodes if n.op == "get_attr"}
        try:
            compiled = CompiledRegion(sub.graph, f"{name}_r{k}", in_vals, attrs, engine=opts["engine"],
                                      run_passes=opts["passes"], debug=opts["debug"])
        except LoweringError as e:
            # a region's node names are those of the original graph
            if getattr(e, "fx_node", None) is None:
                e.fx_node = _node_named_in(str(e), sub)
            raise
        setattr(fused, region, _Region(compiled))
    fused.recompile()
    return make_boxed_func(fused.forward), len(regions)


def opencann_backend(gm: torch.fx.GraphModule, example_inputs, options: dict | None = None, **kwargs: Any):
    """The torch.compile backend: `torch.compile(model, backend="opencann", options={...})`.

    Forward and backward graphs go through AOTAutograd with the core ATen decompositions and are
    compiled by opencann; see the module docstring for the options."""
    from torch._decomp import core_aten_decompositions
    from torch._dynamo.backends.common import aot_autograd

    opts = _options(options)
    gid = next(_graph_ids)
    with _lock:
        _report.backend_calls += 1
    counter = itertools.count()

    def compiler(kind: str):
        def compile_graph(aten_gm: torch.fx.GraphModule, inputs):
            return compile_aten_graph(aten_gm, inputs, f"graph{gid}_{kind}{next(counter) or ''}", opts)

        return compile_graph

    decompositions = core_aten_decompositions()
    for op in DECOMPOSITION_EXCLUDES:
        decompositions.pop(op, None)
    # the partitioner Inductor uses: it chooses what the forward keeps for the backward by a
    # min cut, and cheap elementwise values are recomputed inside the backward's fused kernels
    # (GPT-style training step: 1.15x -> 1.12x eager over four alternating pairs of runs)
    from torch._functorch.partitioners import min_cut_rematerialization_partition

    backend = aot_autograd(fw_compiler=compiler("forward"), bw_compiler=compiler("backward"),
                           inference_compiler=compiler("inference"), decompositions=decompositions,
                           partition_fn=min_cut_rematerialization_partition)
    return backend(gm, example_inputs)
