"""Elementwise activation functions: Relu and its relatives, sigmoids, Gelu, Mish, Swish, Shrink.

Each reference keeps the input's dtype. Float16 and bfloat16 inputs are computed in float32 and
cast back (their own precision loses too much in exp/tanh/erf); float32 and float64 are computed
in their own precision. Where ONNX dropped the legacy `consumed_inputs` attribute (opset 6), the
op has a definition for opset 1 that accepts it and ignores it: it only described memory reuse.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import infer
from ..math.elementwise import erf_float
from ..registry import defop

# ONNX types whose arithmetic NumPy does poorly or not at all in their own precision
_NARROW_FLOATS = frozenset({"float16", "bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2",
                            "float8_e5m2fnuz"})


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a float reference computes in for inputs of `dtype` (float32 for narrow floats)."""
    return np.dtype(np.float32) if dtype.name in _NARROW_FLOATS else dtype


def in_float(fn):
    """Run `fn(x, **attrs)` with `x` widened to its compute dtype; cast the result back."""

    @functools.wraps(fn)
    def run(x, **attrs):
        wide = compute_dtype(x.dtype)
        y = fn(x.astype(wide, copy=False) if wide != x.dtype else x, **attrs)
        return np.asarray(y).astype(x.dtype, copy=False)

    return run


def _c(x: np.ndarray, value: float):
    """`value` as a scalar of `x`'s dtype, so arithmetic keeps that dtype."""
    return x.dtype.type(value)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of -|x| never overflows; both branches are exact rearrangements of 1 / (1 + e^-x)
    e = np.exp(-np.abs(x))
    one = _c(x, 1)
    return np.where(x >= 0, one / (one + e), e / (one + e))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(_c(x, 0), x)


# --- the Relu family -----------------------------------------------------------------------------
@defop("Relu", inputs=["X"], outputs=["Y"], infer=infer.same, attrs={"consumed_inputs": None})
@defop("Relu", inputs=["X"], outputs=["Y"], infer=infer.same, since=6)
def relu(x, consumed_inputs=None):
    """max(0, x); integer types too (opset 14)."""
    return np.maximum(x, _c(x, 0))


@defop("LeakyRelu", inputs=["X"], outputs=["Y"], infer=infer.same,
       attrs={"alpha": 0.01, "consumed_inputs": None})
@defop("LeakyRelu", inputs=["X"], outputs=["Y"], infer=infer.same, attrs={"alpha": 0.01}, since=6)
@in_float
def leaky_relu(x, *, alpha, consumed_inputs=None):
    """x where x >= 0, alpha * x elsewhere."""
    return np.where(x < 0, x * _c(x, alpha), x)


def _prelu_slope(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """The slope broadcast onto X. From opset 7 it broadcasts unidirectionally (NumPy rules); the
    older form also took one slope per channel (shape [C] against [N, C, ...])."""
    try:
        return np.broadcast_to(slope, x.shape)
    except ValueError:
        if slope.ndim == 1 and x.ndim >= 2 and slope.shape[0] == x.shape[1]:
            return np.broadcast_to(slope.reshape((-1,) + (1,) * (x.ndim - 2)), x.shape)
        raise ValueError(f"slope of shape {list(slope.shape)} does not broadcast to X of shape "
                         f"{list(x.shape)}") from None


def _infer_prelu(x, slope, **attrs):
    if x.shape is not None and slope.shape is not None:
        try:
            b = infer.broadcast_shapes(x.shape, slope.shape)
        except infer.InferError:
            b = None  # per-channel slope of the legacy form, checked by the reference
        if b is not None and len(b) > len(x.shape):
            raise infer.InferError(f"slope {slope.type!r} has a higher rank than X {x.type!r}: "
                                   "it must broadcast to X")
    return x.type


@defop("PRelu", inputs=["X", "slope"], outputs=["Y"], infer=_infer_prelu,
       attrs={"consumed_inputs": None})
@defop("PRelu", inputs=["X", "slope"], outputs=["Y"], infer=_infer_prelu, since=6)
def prelu(x, slope, consumed_inputs=None):
    """x where x >= 0, slope * x elsewhere; slope broadcasts to X."""
    s = _prelu_slope(x, slope.astype(x.dtype, copy=False))
    wide = compute_dtype(x.dtype)
    xw = x.astype(wide, copy=False)
    return np.where(xw < 0, xw * s.astype(wide, copy=False), xw).astype(x.dtype, copy=False)


@defop("ThresholdedRelu", inputs=["X"], outputs=["Y"], infer=infer.same, attrs={"alpha": 1.0}, since=10)
def thresholded_relu(x, *, alpha):
    """x where x > alpha, else 0."""
    return np.where(x > _c(x, alpha), x, _c(x, 0))


# --- exponential units ---------------------------------------------------------------------------
@defop("Elu", inputs=["X"], outputs=["Y"], infer=infer.same, attrs={"alpha": 1.0, "consumed_inputs": None})
@defop("Elu", inputs=["X"], outputs=["Y"], infer=infer.same, attrs={"alpha": 1.0}, since=6)
@in_float
def elu(x, *, alpha, consumed_inputs=None):
    """x where x >= 0, alpha * (e^x - 1) elsewhere."""
    return np.where(x < 0, _c(x, alpha) * np.expm1(np.minimum(x, _c(x, 0))), x)


_SELU_V1 = {"alpha": 1.673200011253357, "gamma": 1.0506999492645264, "consumed_inputs": None}
_SELU = {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875}


@defop("Selu", inputs=["X"], outputs=["Y"], infer=infer.same, attrs=_SELU_V1)
@defop("Selu", inputs=["X"], outputs=["Y"], infer=infer.same, attrs=_SELU, since=6)
@in_float
def selu(x, *, alpha, gamma, consumed_inputs=None):
    """gamma * x where x > 0, gamma * alpha * (e^x - 1) elsewhere."""
    neg = _c(x, alpha) * np.expm1(np.minimum(x, _c(x, 0)))
    return _c(x, gamma) * np.where(x > 0, x, neg)


@defop("Celu", inputs=["X"], outputs=["Y"], infer=infer.same, attrs={"alpha": 1.0}, since=12)
@in_float
def celu(x, *, alpha):
    """max(0, x) + min(0, alpha * (e^(x/alpha) - 1))."""
    a = _c(x, alpha)
    return np.maximum(x, _c(x, 0)) + np.minimum(_c(x, 0), a * np.expm1(np.minimum(x, _c(x, 0)) / a))


# --- sigmoids and smooth units -------------------------------------------------------------------
@defop("Sigmoid", inputs=["X"], outputs=["Y"], infer=infer.same, attrs={"consumed_inputs": None})
@defop("Sigmoid", inputs=["X"], outputs=["Y"], infer=infer.same, since=6)
@in_float
def sigmoid(x, consumed_inputs=None):
    """1 / (1 + e^-x), without overflow for large |x|."""
    return _sigmoid(x)


_HARD_SIGMOID = {"alpha": 0.2, "beta": 0.5}


@defop("HardSigmoid", inputs=["X"], outputs=["Y"], infer=infer.same,
       attrs={**_HARD_SIGMOID, "consumed_inputs": None})
@defop("HardSigmoid", inputs=["X"], outputs=["Y"], infer=infer.same, attrs=_HARD_SIGMOID, since=6)
@in_float
def hard_sigmoid(x, *, alpha, beta, consumed_inputs=None):
    """max(0, min(1, alpha * x + beta))."""
    return np.clip(_c(x, alpha) * x + _c(x, beta), _c(x, 0), _c(x, 1))


@defop("HardSwish", inputs=["X"], outputs=["Y"], infer=infer.same, since=14)
@in_float
def hard_swish(x):
    """x * max(0, min(1, x / 6 + 1 / 2))."""
    return x * np.clip(x * _c(x, 1 / 6) + _c(x, 0.5), _c(x, 0), _c(x, 1))


@defop("Tanh", inputs=["input"], outputs=["output"], infer=infer.same, attrs={"consumed_inputs": None})
@defop("Tanh", inputs=["input"], outputs=["output"], infer=infer.same, since=6)
@in_float
def tanh(x, consumed_inputs=None):
    """The hyperbolic tangent."""
    return np.tanh(x)


@defop("Softplus", inputs=["X"], outputs=["Y"], infer=infer.same)
@in_float
def softplus(x):
    """ln(1 + e^x), without overflow for large x."""
    return _softplus(x)


@defop("Softsign", inputs=["input"], outputs=["output"], infer=infer.same)
@in_float
def softsign(x):
    """x / (1 + |x|)."""
    return x / (_c(x, 1) + np.abs(x))


@defop("Gelu", inputs=["X"], outputs=["Y"], infer=infer.same, attrs={"approximate": "none"}, since=20)
@in_float
def gelu(x, *, approximate):
    """0.5 x (1 + erf(x / sqrt 2)); with approximate="tanh",
    0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))."""
    if approximate == "tanh":
        inner = _c(x, np.sqrt(2 / np.pi)) * (x + _c(x, 0.044715) * x * x * x)
        return _c(x, 0.5) * x * (_c(x, 1) + np.tanh(inner))
    if approximate != "none":
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return _c(x, 0.5) * x * (_c(x, 1) + erf_float(x * (1 / np.sqrt(2))).astype(x.dtype))


@defop("Mish", inputs=["X"], outputs=["Y"], infer=infer.same, since=18)
@in_float
def mish(x):
    """x * tanh(softplus(x))."""
    return x * np.tanh(_softplus(x))


@defop("Swish", inputs=["X"], outputs=["Y"], infer=infer.same, attrs={"alpha": 1.0}, since=24)
@in_float
def swish(x, *, alpha):
    """x * sigmoid(alpha * x)."""
    return x * _sigmoid(_c(x, alpha) * x)


@defop("Shrink", inputs=["input"], outputs=["output"], infer=infer.same,
       attrs={"bias": 0.0, "lambd": 0.5}, since=9)
def shrink(x, *, bias, lambd):
    """x + bias where x < -lambd, x - bias where x > lambd, 0 elsewhere (any numeric type; the
    attributes are cast to it, as the ONNX function body's CastLike does)."""
    if x.dtype.kind in "iu":
        b, lam = np.asarray(bias).astype(x.dtype), np.asarray(lambd).astype(x.dtype)
        low = (x < -lam) if x.dtype.kind == "i" else np.zeros(x.shape, bool)
        with np.errstate(over="ignore"):
            return np.where(low, x + b, np.where(x > lam, x - b, _c(x, 0))).astype(x.dtype, copy=False)
    wide = compute_dtype(x.dtype)
    xw = x.astype(wide, copy=False)
    b, lam = _c(xw, bias), _c(xw, lambd)
    return np.where(xw < -lam, xw + b, np.where(xw > lam, xw - b, _c(xw, 0))).astype(x.dtype, copy=False)
