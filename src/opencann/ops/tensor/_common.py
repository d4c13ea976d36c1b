"""Helpers shared by the tensor family: reading shape-like constant inputs, symbolic dim arithmetic,
and `defop`, the registry's decorator with inference that tolerates untyped inputs."""

from __future__ import annotations

import functools

import numpy as np

from .. import infer, registry
from ..infer import InferError, known_int


def const_ints(v) -> list[int] | None:
    """The data of a shape-like input as a list of ints, when it is known at compile time."""
    c = infer.const(v)
    if c is None:
        return None
    return [int(x) for x in np.asarray(c).reshape(-1)]


def ints_of(x) -> list[int] | None:
    """A runtime shape-like input (array or None) as a list of ints."""
    if x is None:
        return None
    return [int(v) for v in np.asarray(x).reshape(-1)]


def length_of(v) -> int | None:
    """The number of elements of a 1-D shape-like input, when its type says so."""
    c = infer.const(v)
    if c is not None:
        return int(np.asarray(c).size)
    s = v.shape if v is not None else None
    if s is None or len(s) != 1 or not known_int(s[0]):
        return None
    return int(s[0])


def dim_add(a, b):
    if known_int(a) and known_int(b):
        return int(a) + int(b)
    if known_int(b) and b == 0:
        return a
    if known_int(a) and a == 0:
        return b
    return None


def dim_times(d, k: int):
    """`d * k` for a (possibly symbolic) dim and an int."""
    if k == 1:
        return d
    if known_int(d):
        return int(d) * k
    if k == 0:
        return 0
    return None


def dim_div(d, k: int, what: str = "dim"):
    """`d / k` for a dim that must divide evenly."""
    if k == 1:
        return d
    if known_int(d):
        if int(d) % k:
            raise InferError(f"{what} {d} is not divisible by {k}")
        return int(d) // k
    return None


def normalize_axes(axes, rank: int, what: str = "axis") -> list[int]:
    """Axes made non-negative (InferError when out of range or repeated)."""
    out = []
    for a in axes:
        a = int(a)
        if not -rank <= a < max(rank, 1) and not (rank == 0 and a in (0, -1)):
            raise InferError(f"{what} {a} is out of range for rank {rank}")
        out.append(a % rank if rank else 0)
    if len(set(out)) != len(out):
        raise InferError(f"{what}s {list(axes)} repeat an axis")
    return out


def check_axes(axes, rank: int, what: str = "axis") -> list[int]:
    """`normalize_axes` for references: raises ValueError."""
    try:
        return normalize_axes(axes, rank, what)
    except InferError as e:
        raise ValueError(str(e)) from None


def same_symbolic_product(num: list, den: list):
    """`prod(num) / prod(den)` over dims that may be symbols: symbols present on both sides cancel.
    Returns an int, a single symbol, or None when unknown."""
    num = list(num)
    den = list(den)
    for d in list(den):
        if not known_int(d) and d is not None and d in num:
            num.remove(d)
            den.remove(d)
    if any(d is None for d in num) or any(not known_int(d) for d in den):
        return None
    p_den = 1
    for d in den:
        p_den *= int(d)
    syms = [d for d in num if not known_int(d)]
    p_num = 1
    for d in num:
        if known_int(d):
            p_num *= int(d)
    if not syms:
        if p_den == 0:
            return None
        if p_num % p_den:
            raise InferError(f"cannot split {p_num} elements into parts of {p_den}")
        return p_num // p_den
    if len(syms) == 1 and p_den != 0 and p_num == p_den:
        return syms[0]
    return None


# --- untyped inputs --------------------------------------------------------------------------------
class _Untyped(Exception):
    """Raised when an infer function needs the type of an input that has none yet."""


class _UntypedValue:
    """Stands in for an input without a type (inside a loop body, before the loop's inference has
    typed it): its shape is unknown and asking for its dtype gives up on the whole inference."""

    const = None
    shape = None

    def __init__(self, v):
        self.name = getattr(v, "name", "?")

    @property
    def dtype(self):
        raise _Untyped(self.name)

    @property
    def type(self):
        raise _Untyped(self.name)


def dtype_or_none(v):
    """The dtype of input `v`, None when it is absent or untyped."""
    if v is None:
        return None
    try:
        return v.dtype
    except _Untyped:
        return None


def tolerant(infer_fn):
    """Wrap `infer_fn` so that inputs without a type make it return what it can without them, or
    None (unknown) when it needs their dtype."""

    @functools.wraps(infer_fn)
    def wrapped(*inputs, **attrs):
        if not any(v is not None and getattr(v, "type", None) is None for v in inputs):
            return infer_fn(*inputs, **attrs)
        proxies = [v if v is None or v.type is not None else _UntypedValue(v) for v in inputs]
        try:
            return infer_fn(*proxies, **attrs)
        except _Untyped:
            return None

    return wrapped


def defop(name, *, infer, **kwargs):
    """`registry.defop` whose infer function tolerates untyped inputs (see `tolerant`)."""
    return registry.defop(name, infer=tolerant(infer), **kwargs)
