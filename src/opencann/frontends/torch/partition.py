"""Which nodes of an ATen FX graph opencann runs, and the split of a graph into opencann regions
and eager PyTorch nodes.

A node is supported when the lowering table has its ATen overload, the entry accepts its
arguments, and every tensor it reads or writes has a dtype opencann computes in. Supported nodes
are grouped (without creating cycles) by torch's CapabilityBasedPartitioner; each group becomes one
`CompiledRegion`, everything else runs in eager PyTorch between them.
"""

from __future__ import annotations

import operator
from collections import Counter

import torch
import torch.fx
from torch.fx.passes.infra.partitioner import CapabilityBasedPartitioner
from torch.fx.passes.operator_support import OperatorSupportBase
from torch.fx.passes.utils.fuser_utils import fuse_by_partitions

from .lower import LOWERINGS, dtype_supported, meta_of

REGION_PREFIX = "opencann_region_"


def op_name(node: torch.fx.Node) -> str:
    """A readable name of a node's target: `aten.erfinv.default`, `operator.mul`."""
    t = node.target
    if isinstance(t, torch._ops.OpOverload):
        return str(t)
    return f"{getattr(t, '__module__', '') or ''}.{getattr(t, '__name__', str(t))}".lstrip(".").replace("_operator", "operator")


def why_unsupported(node: torch.fx.Node, rejected: set[str] = frozenset()) -> str | None:
    """None when opencann lowers `node`, else the reason it runs in eager PyTorch."""
    if node.target is operator.getitem:
        return why_unsupported(node.args[0], rejected) if isinstance(node.args[0], torch.fx.Node) else None
    if node.name in rejected:
        return "its lowering failed"
    entry = LOWERINGS.get(node.target)
    if entry is None:
        return "no lowering"
    vals = [meta_of(a) for a in node.all_input_nodes] + [node.meta.get("val")]
    if any(v is None for v in vals[-1:]):
        return "no shape information"
    for v in vals:
        if not dtype_supported(v):
            bad = v.dtype if isinstance(v, torch.Tensor) else next(
                x.dtype for x in v if isinstance(x, torch.Tensor) and not dtype_supported(x))
            return f"dtype {str(bad).replace('torch.', '')}"
    if entry.when is not None and not entry.when(node):
        return "arguments not supported"
    return None


class _Support(OperatorSupportBase):
    def __init__(self, rejected: set[str]):
        self.rejected = rejected

    def is_node_supported(self, submodules, node: torch.fx.Node) -> bool:
        return node.op == "call_function" and why_unsupported(node, self.rejected) is None


def fallbacks(gm: torch.fx.GraphModule, rejected: set[str] = frozenset()) -> dict[str, list[tuple[str, str]]]:
    """Every node of `gm` that runs eagerly: op name -> [(node name, reason)]."""
    out: dict[str, list[tuple[str, str]]] = {}
    for n in gm.graph.nodes:
        if n.op != "call_function" or n.target is operator.getitem:
            continue
        reason = why_unsupported(n, rejected)
        if reason is not None:
            out.setdefault(op_name(n), []).append((n.name, reason))
    return out


def split(gm: torch.fx.GraphModule, rejected: set[str] = frozenset()) -> tuple[torch.fx.GraphModule, list[str]]:
    """`gm` with each group of supported nodes fused into a submodule `opencann_region_<k>`;
    returns it and the names of those submodules (each takes and returns a tuple)."""
    partitioner = CapabilityBasedPartitioner(gm, _Support(set(rejected)), allows_single_node_partition=True)
    partitions = partitioner.propose_partitions()
    # a region of symbolic-size arithmetic alone is not worth a round trip through the engine
    partitions = [p for p in partitions if any(isinstance(meta_of(n), torch.Tensor) for n in p.nodes)]
    fused = fuse_by_partitions(gm, [p.nodes for p in partitions], prefix=REGION_PREFIX, always_return_tuple=True)
    names = [n.target for n in fused.graph.nodes if n.op == "call_module" and n.target.startswith(REGION_PREFIX)]
    return fused, names


def count(fb: dict[str, list]) -> Counter:
    return Counter({op: len(nodes) for op, nodes in fb.items()})
