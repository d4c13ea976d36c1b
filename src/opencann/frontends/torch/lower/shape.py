"""Views and shapes, concatenation and splitting, indexing, gathers and scatters."""

from __future__ import annotations

import numpy as np
import torch

from .core import (
    INT64_MAX,
    LoweringError,
    _all_static,
    _out_dtype,
    aten,
    ir_dim,
    lowers,
    meta_of,
)


# -- shapes and views ----------------------------------------------------------------------------
@lowers(aten.view.default, aten._unsafe_view.default, aten.reshape.default)
def _view(L, n, a, size):
    return L.emit("Reshape", [L.tensor(a), L.ints(size)], {"allowzero": 1}, hint="view")


@lowers(aten.permute.default)
def _permute(L, n, a, dims):
    r = L.rank(a)
    return L.emit("Transpose", [L.tensor(a)], {"perm": [d % r for d in dims]}, hint="permute")


@lowers(aten.t.default)
def _t(L, n, a):
    if L.rank(a) < 2:
        return L.emit("Identity", [L.tensor(a)])
    return L.emit("Transpose", [L.tensor(a)], {"perm": [1, 0]})


@lowers(aten.transpose.int)
def _transpose(L, n, a, d0, d1):
    r = L.rank(a)
    perm = list(range(r))
    perm[d0 % r], perm[d1 % r] = perm[d1 % r], perm[d0 % r]
    return L.emit("Transpose", [L.tensor(a)], {"perm": perm})


@lowers(aten.expand.default)
def _expand(L, n, a, size, implicit=False):
    size = [1 if (isinstance(s, int) and s == -1) else s for s in size]
    return L.emit("Expand", [L.tensor(a), L.ints(size)])


@lowers(aten.unsqueeze.default)
def _unsqueeze(L, n, a, dim):
    r = L.rank(a) + 1
    return L.emit("Unsqueeze", [L.tensor(a), L.const(np.array([dim % r], np.int64), "ax")])


@lowers(aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default)
def _squeeze(L, n, a, dims=None):
    shape = L.shape(a)
    r = len(shape)
    if r == 0:
        return L.emit("Identity", [L.tensor(a)])
    dims = range(r) if dims is None else ([dims] if isinstance(dims, int) else dims)
    # torch squeezes only dims of size 1 and silently keeps the others
    keep = [d % r for d in dims if ir_dim(shape[d % r]) == 1]
    if not keep:
        return L.emit("Identity", [L.tensor(a)])
    return L.emit("Squeeze", [L.tensor(a), L.const(np.array(sorted(keep), np.int64), "ax")])


@lowers(aten.cat.default)
def _cat(L, n, tensors, dim=0):
    dt = _out_dtype(n)
    r = meta_of(n).dim()
    # torch accepts (and skips) 1-D empty tensors next to tensors of any rank
    parts = [t for t in tensors if not (meta_of(t).dim() == 1 and meta_of(t).shape[0] == 0 and r != 1)]
    vals = [L.tensor(t, dt) for t in parts]
    if len(vals) == 1:
        return L.emit("Identity", vals)
    return L.emit("Concat", vals, {"axis": dim % r}, hint="cat")


@lowers(aten.split_with_sizes.default)
def _split_with_sizes(L, n, a, sizes, dim=0):
    r = L.rank(a)
    if len(sizes) == 1:
        return [L.emit("Identity", [L.tensor(a)])]
    return L.emit("Split", [L.tensor(a), L.ints(sizes)], {"axis": dim % r}, n_out=len(sizes), hint="split")


@lowers(aten.split.Tensor, when=lambda n: all(isinstance(ir_dim(t.shape[0 if len(n.args) < 3 else n.args[2]]), int)
                                            for t in n.meta["val"]))
def _split(L, n, a, split_size, dim=0):
    r = L.rank(a)
    sizes = [int(t.shape[dim]) for t in n.meta["val"]]
    if len(sizes) == 1:
        return [L.emit("Identity", [L.tensor(a)])]
    return L.emit("Split", [L.tensor(a), L.ints(sizes)], {"axis": dim % r}, n_out=len(sizes), hint="split")


@lowers(aten.unbind.int)
def _unbind(L, n, a, dim=0):
    r = L.rank(a)
    k = len(n.meta["val"])
    ax = L.const(np.array([dim % r], np.int64), "ax")
    parts = [L.tensor(a)] if k == 1 else L.emit("Split", [L.tensor(a), L.ints([1] * k)], {"axis": dim % r}, n_out=k)
    return [L.emit("Squeeze", [p, ax]) for p in parts]


@lowers(aten.slice.Tensor)
def _slice(L, n, a, dim=0, start=None, end=None, step=1):
    r = L.rank(a)
    start = 0 if start is None else start
    end = INT64_MAX if end is None else end
    if isinstance(end, int):
        end = min(end, INT64_MAX)
    return L.emit("Slice", [L.tensor(a), L.ints([start]), L.ints([end]),
                            L.const(np.array([dim % r], np.int64), "ax"), L.ints([step])], hint="slice")


@lowers(aten.select.int)
def _select(L, n, a, dim, index):
    r = L.rank(a)
    return L.emit("Gather", [L.tensor(a), L.sym(index)], {"axis": dim % r}, hint="select")


@lowers(aten.narrow.default)
def _narrow(L, n, a, dim, start, length):
    r = L.rank(a)
    s = L.sym(start)
    e = L.emit("Add", [s, L.sym(length)])
    ax = L.const(np.array([0], np.int64), "ax")
    return L.emit("Slice", [L.tensor(a), L.emit("Unsqueeze", [s, ax]), L.emit("Unsqueeze", [e, ax]),
                            L.const(np.array([dim % r], np.int64), "ax")])


def _int_indices(n):
    real = [i for i in n.args[1] if i is not None]
    return bool(real) and all(meta_of(i).dtype in (torch.int64, torch.int32) for i in real)


def _stacked_indices(L, a, indices, dims):
    """The index tensors of `dims`, broadcast together, negatives wrapped, stacked on a last axis
    (GatherND / ScatterND indices)."""
    idx = [L.tensor(indices[d], torch.int64) for d in dims]
    zero = L.const(np.array(0, np.int64))
    total = idx[0]
    for v in idx[1:]:
        total = L.emit("Add", [total, L.emit("Mul", [v, zero])])
    total = L.emit("Mul", [total, zero])  # zeros of the broadcast shape
    ax = L.const(np.array([-1], np.int64))
    parts = []
    for d, v in zip(dims, idx):
        size = L.emit("Shape", [L.tensor(a)], {"start": d, "end": d + 1})
        v = L.emit("Where", [L.emit("Less", [v, zero]), L.emit("Add", [v, size]), v])  # negatives from the end
        parts.append(L.emit("Unsqueeze", [L.emit("Add", [v, total]), ax]))
    return L.emit("Concat", parts, {"axis": -1})


@lowers(aten.index.Tensor, when=_int_indices)
def _index(L, n, a, indices):
    """Advanced indexing with integer tensors (boolean masks have data-dependent shapes: eager)."""
    r = L.rank(a)
    indices = list(indices) + [None] * (r - len(indices))
    dims = [d for d, i in enumerate(indices) if i is not None]
    x = L.tensor(a)
    if len(dims) == 1:
        return L.emit("Gather", [x, L.tensor(indices[dims[0]])], {"axis": dims[0]}, hint="index")
    others = [d for d in range(r) if d not in dims]
    if dims != list(range(len(dims))):
        x = L.emit("Transpose", [x], {"perm": dims + others})
    out = L.emit("GatherND", [x, _stacked_indices(L, a, indices, dims)], {"batch_dims": 0}, hint="index")
    adjacent = dims == list(range(dims[0], dims[0] + len(dims)))
    if adjacent and dims[0] > 0:  # torch keeps the indexed block in place when it is contiguous
        nb = meta_of(n).dim() - len(others)
        k = dims[0]
        perm = list(range(nb, nb + k)) + list(range(nb)) + list(range(nb + k, nb + len(others)))
        out = L.emit("Transpose", [out], {"perm": perm})
    return out


@lowers(aten.index_select.default)
def _index_select(L, n, a, dim, index):
    return L.emit("Gather", [L.tensor(a), L.tensor(index)], {"axis": dim % max(L.rank(a), 1)})


@lowers(aten.embedding.default)
def _embedding(L, n, weight, indices, padding_idx=-1, scale_grad=False, sparse=False):
    return L.emit("Gather", [L.tensor(weight), L.tensor(indices)], {"axis": 0}, hint="embedding")


@lowers(aten.gather.default)
def _gather(L, n, a, dim, index, sparse_grad=False):
    return L.emit("GatherElements", [L.tensor(a), L.tensor(index)], {"axis": dim % max(L.rank(a), 1)})


def _same_shape_index(n):
    # ONNX ScatterElements needs indices and updates of one shape (torch allows a bigger src)
    idx, src = meta_of(n.args[2]), meta_of(n.args[3])
    return not isinstance(src, torch.Tensor) or list(idx.shape) == list(src.shape)


@lowers(aten.scatter_add.default, when=_same_shape_index)
def _scatter_add(L, n, a, dim, index, src):
    return L.emit("ScatterElements", [L.tensor(a), L.tensor(index), L.tensor(src, L.dtype(a))],
                  {"axis": dim % L.rank(a), "reduction": "add"})


@lowers(aten.scatter.src, aten.scatter.value, when=_same_shape_index)
def _scatter(L, n, a, dim, index, src):
    if not isinstance(src, torch.fx.Node):
        src_v = L.emit("Expand", [L.tensor(src, L.dtype(a)), L.shape_of(index)])
    else:
        src_v = L.tensor(src, L.dtype(a))
    return L.emit("ScatterElements", [L.tensor(a), L.tensor(index), src_v], {"axis": dim % L.rank(a)})


@lowers(aten.index_put.default, when=_int_indices)
def _index_put(L, n, a, indices, values, accumulate=False):
    r = L.rank(a)
    indices = list(indices) + [None] * (r - len(indices))
    dims = [d for d, i in enumerate(indices) if i is not None]
    others = [d for d in range(r) if d not in dims]
    m, k = len(dims), dims[0]
    x = L.tensor(a)
    perm = dims + others
    if perm != list(range(r)):
        x = L.emit("Transpose", [x], {"perm": perm})
    stacked = _stacked_indices(L, a, indices, dims)
    batch = L.emit("Shape", [stacked], {"end": -1})
    nb = max(L.rank(indices[d]) for d in dims)  # the rank of the broadcast index block
    vals = L.tensor(values, L.dtype(a))
    adjacent = dims == list(range(k, k + m))
    if adjacent and k > 0:
        # torch's values broadcast to x[indices], whose index block sits at dim k: move it first
        full = L.emit("Concat", [L.emit("Shape", [L.tensor(a)], {"end": k}), batch,
                                 L.emit("Shape", [L.tensor(a)], {"start": k + m})], {"axis": 0})
        vals = L.emit("Expand", [vals, full])
        vperm = list(range(k, k + nb)) + list(range(k)) + list(range(k + nb, k + nb + r - k - m))
        vals = L.emit("Transpose", [vals], {"perm": vperm})
    else:
        upd = L.emit("Concat", [batch, L.emit("Shape", [x], {"start": m})], {"axis": 0})
        vals = L.emit("Expand", [vals, upd])
    out = L.emit("ScatterND", [x, stacked, vals], {"reduction": "add" if accumulate else "none"}, hint="index_put")
    if perm != list(range(r)):
        out = L.emit("Transpose", [out], {"perm": [perm.index(d) for d in range(r)]})
    return out


@lowers(aten.constant_pad_nd.default)
def _constant_pad(L, n, a, pad, value=0):
    r = L.rank(a)
    k = len(pad) // 2
    begins, ends = [0] * r, [0] * r
    for i in range(k):  # torch lists (begin, end) pairs from the last dim backwards
        begins[r - 1 - i], ends[r - 1 - i] = pad[2 * i], pad[2 * i + 1]
    if not _all_static(begins + ends):
        raise LoweringError("symbolic padding")
    x = L.tensor(a)
    if any(p > 0 for p in begins + ends):
        grow = [max(p, 0) for p in begins + ends]
        x = L.emit("Pad", [x, L.ints(grow), L.tensor(value, L.dtype(a))], {"mode": "constant"})
    cut = [d for d in range(r) if begins[d] < 0 or ends[d] < 0]
    if cut:  # negative padding crops (the gradient of padding)
        starts = [-min(begins[d], 0) for d in cut]
        stops = [ends[d] if ends[d] < 0 else INT64_MAX for d in cut]
        x = L.emit("Slice", [x, L.ints(starts), L.ints(stops), L.const(np.array(cut, np.int64), "ax")])
    return x if x is not L.env.get(a) else L.emit("Identity", [x])


@lowers(aten.flip.default)
def _flip(L, n, a, dims):
    r = L.rank(a)
    axes = [d % r for d in dims]
    k = len(axes)
    return L.emit("Slice", [L.tensor(a), L.ints([-1] * k), L.ints([-INT64_MAX] * k),
                            L.const(np.array(axes, np.int64), "ax"), L.ints([-1] * k)])


@lowers(aten.triu.default, aten.tril.default)
def _triu(L, n, a, diagonal=0):
    return L.emit("Trilu", [L.tensor(a), L.sym(diagonal)], {"upper": int(n.target is aten.triu.default)})


@lowers(aten.cumsum.default)
def _cumsum(L, n, a, dim, dtype=None):
    dt = _out_dtype(n)
    return L.emit("CumSum", [L.tensor(a, dt), L.const(np.array(dim % max(L.rank(a), 1), np.int64), "ax")])


@lowers(aten.repeat.default)
def _repeat(L, n, a, repeats):
    r = L.rank(a)
    x = L.tensor(a)
    if len(repeats) > r:
        x = L.emit("Reshape", [x, L.ints([1] * (len(repeats) - r) + L.shape(a))], {"allowzero": 1})
    return L.emit("Tile", [x, L.ints(repeats)])


# -- scatters of views (the gradients of slicing and selecting) -------------------------------------
def _start_of(L, a, dim, start):
    """A non-negative start index along `dim` as an int64 scalar value."""
    if isinstance(start, int) and start >= 0:
        return L.const(np.array(start, np.int64))
    size = L.emit("Squeeze", [L.emit("Shape", [L.tensor(a)], {"start": dim, "end": dim + 1}),
                              L.const(np.array([0], np.int64))])
    s = L.sym(start)
    if isinstance(start, int):  # negative: counts from the end
        return L.emit("Add", [size, s])
    return L.emit("Where", [L.emit("Less", [s, L.const(np.array(0, np.int64))]), L.emit("Add", [size, s]), s])


def _positions(L, src_val, dim: int, rank: int, first, step):
    """int64 indices of src's elements along `dim` (first, first+step, ...), broadcast to src's shape."""
    n = L.emit("Squeeze", [L.emit("Shape", [src_val], {"start": dim, "end": dim + 1}),
                           L.const(np.array([0], np.int64))])
    steps = L.emit("Range", [L.const(np.array(0, np.int64)), n, L.const(np.array(1, np.int64))])
    idx = L.emit("Add", [L.emit("Mul", [steps, L.sym(step)]), first])
    shape = [1] * rank
    shape[dim] = -1
    idx = L.emit("Reshape", [idx, L.const(np.array(shape, np.int64))])
    return L.emit("Expand", [idx, L.emit("Shape", [src_val])])


@lowers(aten.slice_scatter.default,
        when=lambda n: all(isinstance(a, int) or a is None for a in n.args[3:6]))
def _slice_scatter(L, n, a, src, dim=0, start=None, end=None, step=1):
    r = L.rank(a)
    dim = dim % r
    first = _start_of(L, a, dim, 0 if start is None else start)
    srcv = L.tensor(src, L.dtype(a))
    idx = _positions(L, srcv, dim, r, first, step)
    return L.emit("ScatterElements", [L.tensor(a), idx, srcv], {"axis": dim}, hint="slice_scatter")


@lowers(aten.select_scatter.default)
def _select_scatter(L, n, a, src, dim, index):
    r = L.rank(a)
    dim = dim % r
    srcv = L.emit("Unsqueeze", [L.tensor(src, L.dtype(a)), L.const(np.array([dim], np.int64))])
    first = _start_of(L, a, dim, index)
    idx = L.emit("Expand", [first, L.emit("Shape", [srcv])])
    return L.emit("ScatterElements", [L.tensor(a), idx, srcv], {"axis": dim}, hint="select_scatter")
