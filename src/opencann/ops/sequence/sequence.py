"""Sequence ops: ONNX sequences are Python lists of arrays at run time, `SequenceType` in the IR."""

from __future__ import annotations

import numpy as np

from ... import dtypes
from ...ir.types import SequenceType
from ..context import run_graph
from ..infer import InferError, const, normalize_axis, tensor
from ..registry import REQUIRED, defop
from ..control._types import body_inputs, join, join_all


def _elem(v, what: str = "input_sequence"):
    t = v.type
    if t is None:
        return None
    if not isinstance(t, SequenceType):
        raise InferError(f"{what} must be a sequence, got {t!r}")
    return t.elem


def _position(seq: list, position, *, insert: bool = False) -> int:
    """A position in `seq` (negative counts from the back); insertion may also take len(seq)."""
    p = int(np.asarray(position).reshape(-1)[0])
    n = len(seq)
    hi = n if insert else n - 1
    if not -n <= p <= hi:
        raise ValueError(f"position {p} is out of range for a sequence of length {n}")
    return p + n if p < 0 else p


def _check_position_type(position):
    if position is not None and position.dtype is not None and position.dtype not in (dtypes.int32, dtypes.int64):
        raise InferError(f"position must be int32 or int64, got {position.dtype}")


@defop("SequenceEmpty", inputs=[], outputs=["output"], attrs={"dtype": 1},
       infer=lambda *, dtype: SequenceType(tensor(dtypes.from_onnx(dtype))), since=11)
def sequence_empty(*, dtype):
    """An empty sequence of tensors of element type `dtype` (float32 by default)."""
    return []


def _infer_construct(*inputs):
    if not inputs:
        raise InferError("SequenceConstruct needs at least one input")
    return SequenceType(join_all(v.type for v in inputs))


@defop("SequenceConstruct", inputs=["inputs*"], outputs=["output_sequence"], infer=_infer_construct, since=11)
def sequence_construct(*inputs):
    """A sequence holding the inputs, in order."""
    return list(inputs)


def _infer_at(seq, position):
    _check_position_type(position)
    return _elem(seq)


@defop("SequenceAt", inputs=["input_sequence", "position"], outputs=["tensor"], infer=_infer_at, since=11)
def sequence_at(seq, position):
    """The element at `position` (negative counts from the back)."""
    return seq[_position(seq, position)]


def _infer_insert(seq, t, position):
    _check_position_type(position)
    elem = _elem(seq)
    if elem is not None and t.type is not None and elem.dtype != t.dtype:
        raise InferError(f"cannot insert a {t.dtype} tensor into a sequence of {elem.dtype}")
    return SequenceType(join(elem, t.type))


@defop("SequenceInsert", inputs=["input_sequence", "tensor", "position?"], outputs=["output_sequence"],
       infer=_infer_insert, since=11)
def sequence_insert(seq, t, position):
    """A copy of the sequence with `tensor` inserted before `position` (appended by default)."""
    out = list(seq)
    if position is None:
        out.append(t)
    else:
        out.insert(_position(seq, position, insert=True), t)
    return out


def _infer_erase(seq, position):
    _check_position_type(position)
    _elem(seq)
    return seq.type


@defop("SequenceErase", inputs=["input_sequence", "position?"], outputs=["output_sequence"],
       infer=_infer_erase, since=11)
def sequence_erase(seq, position):
    """A copy of the sequence without the element at `position` (the last one by default)."""
    out = list(seq)
    if not out:
        raise ValueError("cannot erase from an empty sequence")
    del out[-1 if position is None else _position(seq, position)]
    return out


def _infer_length(seq):
    _elem(seq)
    return tensor(dtypes.int64, ())


@defop("SequenceLength", inputs=["input_sequence"], outputs=["length"], infer=_infer_length, since=11)
def sequence_length(seq):
    """The number of elements, as an int64 scalar."""
    return np.array(len(seq), dtype=np.int64)


# --- SplitToSequence / ConcatFromSequence ---------------------------------------------------------
def _split_sizes(n: int, split) -> list[int]:
    s = np.asarray(split).astype(np.int64)
    if s.ndim == 0:
        k = int(s)
        if k <= 0:
            raise ValueError(f"split must be positive, got {k}")
        return [k] * (n // k) + ([n % k] if n % k else [])
    sizes = [int(x) for x in s.reshape(-1)]
    if sum(sizes) != n or any(x <= 0 for x in sizes):
        raise ValueError(f"split sizes {sizes} do not add up to the axis length {n}")
    return sizes


def _infer_split(x, split, *, axis, keepdims):
    shape = x.shape
    if shape is None:
        return SequenceType(tensor(x.dtype, None))
    ax = normalize_axis(axis, len(shape))
    if split is None:
        d = 1 if keepdims else None
    else:
        s = const(split)
        d = None
        if s is not None and isinstance(shape[ax], int):
            sizes = _split_sizes(shape[ax], s)
            d = sizes[0] if len(set(sizes)) == 1 else None
    if d is None and split is None:
        return SequenceType(tensor(x.dtype, shape[:ax] + shape[ax + 1:]))
    return SequenceType(tensor(x.dtype, shape[:ax] + (d,) + shape[ax + 1:]))


@defop("SplitToSequence", inputs=["input", "split?"], outputs=["output_sequence"],
       attrs={"axis": 0, "keepdims": 1}, infer=_infer_split, since=11)
def split_to_sequence(x, split, *, axis, keepdims):
    """Splits `input` along `axis` into a sequence: into pieces of the sizes in `split` (a 1-D
    tensor), of `split` each (a scalar; the last may be smaller), or into single slices (no `split`;
    the axis is dropped unless `keepdims`)."""
    ax = normalize_axis(axis, x.ndim)
    if split is None:
        parts = np.split(x, x.shape[ax], axis=ax) if x.shape[ax] else []
        return [p.squeeze(ax) if not keepdims else p for p in parts]
    sizes = _split_sizes(x.shape[ax], split)
    return list(np.split(x, np.cumsum(sizes)[:-1], axis=ax))


def _infer_concat(seq, *, axis, new_axis):
    elem = _elem(seq)
    if elem is None:
        return None
    if elem.shape is None:
        return tensor(elem.dtype, None)
    rank = len(elem.shape)
    if new_axis:
        ax = normalize_axis(axis, rank + 1)
        return tensor(elem.dtype, elem.shape[:ax] + (None,) + elem.shape[ax:])
    ax = normalize_axis(axis, rank)
    return tensor(elem.dtype, elem.shape[:ax] + (None,) + elem.shape[ax + 1:])


@defop("ConcatFromSequence", inputs=["input_sequence"], outputs=["concat_result"],
       attrs={"axis": REQUIRED, "new_axis": 0}, infer=_infer_concat, since=11)
def concat_from_sequence(seq, *, axis, new_axis):
    """Concatenates the elements along `axis` (stacks them along a new `axis` if `new_axis`)."""
    if not seq:
        raise ValueError("cannot concatenate an empty sequence")
    if new_axis:
        return np.stack(seq, axis=normalize_axis(axis, seq[0].ndim + 1))
    return np.concatenate(seq, axis=normalize_axis(axis, seq[0].ndim))


# --- SequenceMap ----------------------------------------------------------------------------------
def _infer_map(seq, *extra, body):
    _elem(seq)
    if len(body.inputs) != 1 + len(extra):
        raise InferError(f"the body takes {len(body.inputs)} inputs; the node passes {1 + len(extra)}")
    outs = []
    for v in body.outputs:
        t = v.type
        outs.append(SequenceType(t if t is not None else None))
    return tuple(outs)


@defop("SequenceMap", inputs=["input_sequence", "additional_inputs*"], outputs=["out_sequence*"],
       attrs={"body": REQUIRED}, infer=_infer_map, since=17)
def sequence_map(seq, *extra, body):
    """Runs `body` once per element of `input_sequence`; each additional input passes its element
    at the same position when it is a sequence, or the whole tensor otherwise. Returns one sequence
    per body output."""
    n = len(seq)
    for e in extra:
        if isinstance(e, list) and len(e) != n:
            raise ValueError(f"the input sequences have different lengths ({n} and {len(e)})")
    results: list[list] = [[] for _ in body.outputs]
    for i in range(n):
        args = [seq[i]] + [e[i] if isinstance(e, list) else e for e in extra]
        for acc, y in zip(results, run_graph(body, args)):
            acc.append(np.asarray(y))
    return tuple(results)


@body_inputs("SequenceMap", since=17)
def _map_body_inputs(seq, *extra, body):
    def elem(v):
        return v.type.elem if isinstance(v.type, SequenceType) else v.type
    return {"body": [elem(seq)] + [elem(v) for v in extra]}
