"""The `cpu` kernels of the tensor family's ScatterND and Concat: lowerings of one node to the
tile-language scatter and copy kernels, registered in the op's `OpDef.kernels["cpu"]` (see
`opencann.ops.lowering`).

The kernel module is imported where the lowering launches it, so `import opencann.ops` loads no
tile kernels.
"""

from __future__ import annotations

import numpy as np

from ...ir import Node, TensorType
from ..lowering import Lowered, const_of, is_f32
from ..registry import defkernel

__all__: list[str] = []


@defkernel("cpu", "ScatterND")
def _lower_scatter_nd(node: Node, attrs: dict):
    """ScatterND of float32 data (an embedding gradient: rows added into a table of zeros)."""
    from .kernels import scatter as scatter_k

    data, indices, updates = node.inputs[:3]
    bad = [v for v in (data, updates, node.outputs[0]) if not is_f32(v)]
    if bad:
        return f"needs float32 data and updates, has {', '.join(repr(v.type) for v in bad)}"
    reduction = attrs.get("reduction", "none")
    if reduction not in scatter_k.REDUCTIONS:
        return f"reduction={reduction!r}"
    ishape = indices.type.shape if isinstance(indices.type, TensorType) else None
    if ishape is None or not ishape or not isinstance(ishape[-1], int) or ishape[-1] < 1:
        return "the index tuples' length is unknown or 0"
    dc = const_of(data)
    zeros = dc is not None and not np.any(dc)  # scattering into zeros: no copy of data to make

    def fn(d, idx, upd):
        out = np.zeros(d.shape, np.float32) if zeros else None
        return (scatter_k.scatter_nd(d, idx, upd, reduction, out=out),)
    return Lowered(fn, [data, indices, updates], f"scatter_nd_{reduction}")


@defkernel("cpu", "Concat")
def _lower_concat(node: Node, attrs: dict):
    """Concat of 4-byte tensors (float32, int32) of at least 64 KiB: copied by every core."""
    from .kernels import copy as copy_k

    out = node.outputs[0]
    t = out.type if isinstance(out.type, TensorType) else None
    if t is None or t.dtype.np.itemsize != 4 or t.shape is None or not t.shape:
        return "not a ranked 4-byte tensor"
    axis = int(attrs["axis"])

    def fn(*xs):
        if sum(x.nbytes for x in xs) < 1 << 18 or len({x.dtype for x in xs}) > 1:
            done = copy_k.joined(xs, axis % xs[0].ndim)  # written side by side already
            if done is not None:
                return (done,)
            return (np.concatenate(xs, axis=axis),)  # small: NumPy's one call costs less
        return (copy_k.concat(xs, axis),)
    return Lowered(fn, list(node.inputs), "concat")


@defkernel("cpu", "ScatterElements")
def _lower_scatter_elements(node: Node, attrs: dict):
    """ScatterElements into a constant of zeros (a cross-entropy gradient's one-hot rows): the
    scatter writes into fresh zeros instead of a copy of the constant."""
    from .gather_scatter import _scatter_elements

    dc = const_of(node.inputs[0])
    if dc is None or np.any(dc):
        return "data is not a constant of zeros"
    axis, reduction = int(attrs.get("axis", 0)), attrs.get("reduction", "none")

    def fn(d, idx, upd):
        return (_scatter_elements(np.zeros(d.shape, d.dtype), idx, upd, axis, reduction,
                                  in_place=True),)
    return Lowered(fn, list(node.inputs[:3]), "scatter_elements")
