"""SwiGLU (ONNX opset 28): the gated activation of Llama-style MLPs, `Swish_alpha(A) * B`."""

from __future__ import annotations

import numpy as np

from ..infer import InferError, tensor
from ..registry import defop


def _infer_swiglu(a, b, *, alpha):
    if a.dtype != b.dtype:
        raise InferError(f"A and B must have the same dtype, got {a.dtype} and {b.dtype}")
    if a.shape is not None and b.shape is not None:
        if len(a.shape) != len(b.shape) or any(
                isinstance(x, int) and isinstance(y, int) and x != y for x, y in zip(a.shape, b.shape)):
            raise InferError(f"A {a.type!r} and B {b.type!r} must have the same shape (SwiGLU does not broadcast)")
        return tensor(a.dtype, tuple(x if isinstance(x, int) or y is None else y for x, y in zip(a.shape, b.shape)))
    return tensor(a.dtype, a.shape if a.shape is not None else b.shape)


@defop("SwiGLU", inputs=["A", "B"], outputs=["Y"], attrs={"alpha": 1.0}, infer=_infer_swiglu, since=28)
def swiglu(a, b, *, alpha):
    """`A * sigmoid(alpha * A) * B`, computed in float32 (float64 for double) and cast back."""
    if a.shape != b.shape:
        raise ValueError(f"A {list(a.shape)} and B {list(b.shape)} must have the same shape")
    ct = np.float64 if a.dtype == np.float64 else np.float32
    x, y = a.astype(ct), b.astype(ct)
    # sigmoid written with exp of a non-positive number only, so large |x| cannot overflow
    z = ct(alpha) * x
    ez = np.exp(-np.abs(z))
    sig = np.where(z >= 0, 1 / (1 + ez), ez / (1 + ez))
    return (x * sig * y).astype(a.dtype)
