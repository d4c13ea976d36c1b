"""Constant folding: a node whose inputs are all constants is run once, at compile time, with its
op's reference, and its outputs become constants. Weight preprocessing (a Transpose or Cast of a
weight, say) disappears from the run-time graph this way."""

from __future__ import annotations

import numpy as np

from ...ir import Graph, TensorType
from ...ops import registry
from ..rewrite import make_constant

_NOT_FOLDED = {"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Bernoulli",
               "Multinomial"}
MAX_FOLDED_BYTES = 256 << 20  # do not materialise huge tensors (e.g. a ConstantOfShape of a big shape)


def _opset(graph: Graph, domain: str) -> int | None:
    return graph.opset.get(registry.normalize_domain(domain))


def fold_constants(graph: Graph) -> int:
    """Fold every node whose inputs are constants; returns the number of nodes folded."""
    folded = 0
    keep = []
    for n in graph.nodes:
        if (n.op in _NOT_FOLDED or n.subgraphs() or not n.outputs
                or any(v is not None and v.const is None for v in n.inputs)
                or not all(isinstance(o.type, TensorType) for o in n.outputs)):
            keep.append(n)
            continue
        d = registry.lookup(n.op, n.domain, _opset(graph, n.domain))
        if d is None:
            keep.append(n)
            continue
        attrs, problems = d.resolve_attrs(n.attrs)
        args = [None if v is None else v.const for v in n.inputs]
        while len(args) < len(d.inputs) and not d.inputs[-1].variadic:
            args.append(None)
        try:
            result = d.reference(*args, **attrs)
        except Exception:  # noqa: BLE001 - leave it to run time, where the error names the node
            keep.append(n)
            continue
        outs = result if isinstance(result, tuple) else (result,)
        arrays = [np.asarray(x) for x in outs[:len(n.outputs)]]
        if problems or len(arrays) < len(n.outputs) or sum(a.nbytes for a in arrays) > MAX_FOLDED_BYTES:
            keep.append(n)
            continue
        for o, a in zip(n.outputs, arrays):
            make_constant(graph, o, a)
        folded += 1
    graph.nodes = keep
    return folded
