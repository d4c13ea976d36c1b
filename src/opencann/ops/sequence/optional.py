"""Optional ops: an ONNX optional is `None` (empty) or its value at run time, `OptionalType` in the IR."""

from __future__ import annotations

import numpy as np

from ... import dtypes
from ...ir.types import OptionalType
from ..infer import InferError, tensor
from ..registry import defop


def _infer_optional(x, *, type):
    if x is not None:
        return OptionalType(x.type)
    if type is None:
        raise InferError("an empty Optional needs its element type in attribute 'type'")
    return OptionalType(type)


@defop("Optional", inputs=["input?"], outputs=["output"], attrs={"type": None}, infer=_infer_optional,
       since=15)
def optional(x, *, type):
    """An optional holding `input`, or an empty one (of element type `type`) without it."""
    return x


def _infer_get15(x):
    if x.type is not None and not isinstance(x.type, OptionalType):
        raise InferError(f"input must be an optional, got {x.type!r}")
    return None if x.type is None else x.type.elem


def _get(x):
    if x is None:
        raise ValueError("the optional is empty: it has no element to get")
    return x


@defop("OptionalGetElement", inputs=["input"], outputs=["output"], infer=_infer_get15, since=15)
def optional_get_element15(x):
    """The element of a non-empty optional."""
    return _get(x)


def _infer_get18(x):
    return x.type.elem if isinstance(x.type, OptionalType) else x.type


@defop("OptionalGetElement", inputs=["input"], outputs=["output"], infer=_infer_get18, since=18)
def optional_get_element(x):
    """The element of a non-empty optional; a tensor or sequence passes through unchanged."""
    return _get(x)


def _infer_has15(x):
    if x.type is not None and not isinstance(x.type, OptionalType):
        raise InferError(f"input must be an optional, got {x.type!r}")
    return tensor(dtypes.bool_, ())


def _has(x):
    return np.array(x is not None)


@defop("OptionalHasElement", inputs=["input"], outputs=["output"], infer=_infer_has15, since=15)
def optional_has_element15(x):
    """True when the optional holds a value."""
    return _has(x)


@defop("OptionalHasElement", inputs=["input?"], outputs=["output"],
       infer=lambda x: tensor(dtypes.bool_, ()), since=18)
def optional_has_element(x):
    """True when the input is given and, if an optional, holds a value."""
    return _has(x)
