"""Folding of shape-only subgraphs, symbolic dims included.

Exporters compute reshape targets at run time: `Shape(x) -> Gather -> Unsqueeze -> Concat ->
Reshape`. This pass tracks the value of such small integer tensors element by element, where an
element is an int, a symbol (`"seq"`) or unknown. A value whose elements are all ints becomes a
constant. A Reshape or Expand whose target is known only symbolically gets a constant target
instead, using Reshape's `0` (copy this dim) and `-1` (infer one dim) and Expand's `1` (keep this
dim), so the shape arithmetic leaves the run-time graph and DCE removes it.
"""

from __future__ import annotations

import numpy as np

from ...ir import Graph
from ..rewrite import make_constant

_INT = ("int64", "int32")


def _reshape_target(in_shape, target: list) -> list[int] | None:
    """A constant Reshape target (with 0 and -1) equal to symbolic `target`, or None."""
    out, unknown = [], 0
    for i, e in enumerate(target):
        if isinstance(e, int):
            if e == 0:
                return None  # a literal 0 in a tracked target would change meaning
            out.append(e)
            unknown += e == -1
        elif in_shape is not None and i < len(in_shape) and in_shape[i] == e and e is not None:
            out.append(0)
        else:
            out.append(-1)
            unknown += 1
    return out if unknown <= 1 else None


def _expand_target(in_shape, target: list) -> list[int] | None:
    if in_shape is None:
        return None
    out = []
    offset = len(target) - len(in_shape)
    for i, e in enumerate(target):
        j = i - offset
        if isinstance(e, int):
            out.append(e)
        elif j >= 0 and in_shape[j] == e and e is not None:
            out.append(1)
        else:
            return None
    return out


def fold_shapes(graph: Graph) -> int:
    """Fold shape arithmetic (see the module doc); returns the number of rewrites. Reads the
    contents that inference tracked in `Value.sym`."""
    changes = 0
    keep = []
    for n in graph.nodes:
        out = n.outputs[0] if n.outputs else None
        elems = out.sym if out is not None and out.const is None else None
        if elems is not None and all(isinstance(e, int) for e in elems) and out.dtype is not None \
                and out.dtype.name in _INT + ("bool",) and None not in elems and n.op not in ("Reshape", "Expand", "ConstantOfShape", "Range"):
            arr = np.array(elems, dtype=out.dtype.np)
            if out.shape is not None and len(out.shape) == 0:
                arr = arr.reshape(())
            if out.shape is None or len(out.shape) == arr.ndim:
                make_constant(graph, out, arr)
                changes += 1
                continue
        if n.op in ("Reshape", "Expand") and len(n.inputs) > 1 and n.inputs[1] is not None \
                and n.inputs[1].const is None and n.inputs[1].sym is not None:
            target = n.inputs[1].sym
            in_shape = n.inputs[0].shape
            if n.op == "Reshape" and not n.attrs.get("allowzero", 0):
                new = _reshape_target(in_shape, target)
            elif n.op == "Expand":
                new = _expand_target(in_shape, target)
            else:
                new = None
            if new is not None:
                c = graph.add_constant(graph.fresh_name(n.inputs[1].name + "_folded"), np.array(new, np.int64))
                n.inputs[1] = c
                changes += 1
        keep.append(n)
    graph.nodes = keep
    return changes
