"""Types of IR values: tensors with (possibly symbolic) shapes, sequences and optionals.

A dim is an `int`, a symbol name (`"batch"`), or `None` when nothing is known about it. A shape of
`None` means even the rank is unknown.

    >>> TensorType(float32, ("batch", 128))
    float32[batch,128]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ..dtypes import DType

Dim = Union[int, str, None]
Shape = tuple  # tuple[Dim, ...]


def format_dim(d: Dim) -> str:
    return "?" if d is None else str(d)


@dataclass(frozen=True)
class TensorType:
    """A tensor of `dtype` with `shape` (tuple of dims, or None for unknown rank)."""

    dtype: DType
    shape: tuple | None = None

    def __post_init__(self):
        if self.shape is not None:
            object.__setattr__(self, "shape", tuple(self.shape))

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def is_static(self) -> bool:
        """True when every dim is a known integer."""
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)

    def __repr__(self) -> str:
        if self.shape is None:
            return f"{self.dtype.name}[*]"
        return f"{self.dtype.name}[{','.join(format_dim(d) for d in self.shape)}]"


@dataclass(frozen=True)
class SequenceType:
    """An ONNX sequence whose elements have type `elem`."""

    elem: "Type"

    def __repr__(self) -> str:
        return f"seq<{self.elem!r}>"


@dataclass(frozen=True)
class OptionalType:
    """An ONNX optional: either empty or one value of type `elem`."""

    elem: "Type"

    def __repr__(self) -> str:
        return f"opt<{self.elem!r}>"


Type = Union[TensorType, SequenceType, OptionalType]
