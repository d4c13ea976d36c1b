"""Elementwise unary math: Abs, Neg, trigonometric and hyperbolic functions, Exp, Log, Sqrt,
Reciprocal, Floor, Ceil, Round, Sign, Erf, IsInf, IsNaN, Not, BitwiseNot.

Narrow floats (float16, bfloat16, float8) are computed in float32 and rounded back once.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.polynomial import Chebyshev, Polynomial

from ... import dtypes
from .. import infer
from ._common import BOOL, FLOAT, INT, NUMERIC, check_kind, float_unary, is_float, versions

_LEGACY = {"consumed_inputs": None}  # opset 1 only; it named in-place buffers and means nothing here


def _same_of(kinds):
    def infer_fn(x, **attrs):
        check_kind(x, kinds)
        return x.type

    return infer_fn


def _bool_of(kinds):
    def infer_fn(x, **attrs):
        check_kind(x, kinds)
        return infer.tensor(dtypes.bool_, x.shape)

    return infer_fn


def _unary(name: str, fn, table: dict, kinds=FLOAT, inputs=("X",), outputs=("Y",), doc: str = ""):
    """Register a float unary op whose reference is `fn` applied in float32/float64."""
    ref = float_unary(fn)

    def reference(x):
        return ref(x)

    reference.__doc__ = doc or f"{name}: elementwise {fn.__name__}, in the input's dtype."
    reference.__name__ = reference.__qualname__ = name.lower()
    reference.__module__ = __name__
    versions(name, table, inputs=list(inputs), outputs=list(outputs), infer=_same_of(kinds))(reference)
    return reference


_unary("Exp", np.exp, {1: _LEGACY, 6: {}}, inputs=("input",), outputs=("output",))
_unary("Log", np.log, {1: _LEGACY, 6: {}}, inputs=("input",), outputs=("output",))
_unary("Sqrt", np.sqrt, {1: _LEGACY, 6: {}})
_unary("Reciprocal", np.reciprocal, {1: _LEGACY, 6: {}})
_unary("Floor", np.floor, {1: _LEGACY, 6: {}})
_unary("Ceil", np.ceil, {1: _LEGACY, 6: {}})
_unary("Round", np.round, {11: {}}, doc="Round: to the nearest integer, halves to even.")
for _name, _fn, _since in [("Acos", np.arccos, 7), ("Asin", np.arcsin, 7), ("Atan", np.arctan, 7),
                           ("Cos", np.cos, 7), ("Sin", np.sin, 7), ("Tan", np.tan, 7),
                           ("Acosh", np.arccosh, 9), ("Asinh", np.arcsinh, 9), ("Atanh", np.arctanh, 9),
                           ("Cosh", np.cosh, 9), ("Sinh", np.sinh, 9)]:
    _unary(_name, _fn, {_since: {}}, inputs=("input",), outputs=("output",))


@versions("Abs", {1: _LEGACY, 6: {}}, inputs=["X"], outputs=["Y"], infer=_same_of(NUMERIC))
def abs_(x):
    """Abs: |x| (unsigned integers unchanged; the most negative signed integer wraps, as in C)."""
    if x.dtype.kind == "u":
        return x.copy()
    return float_unary(np.abs)(x)


@versions("Neg", {1: _LEGACY, 6: {}}, inputs=["X"], outputs=["Y"], infer=_same_of(NUMERIC))
def neg(x):
    """Neg: -x (integers wrap)."""
    return float_unary(np.negative)(x)


@versions("Sign", {9: {}}, inputs=["input"], outputs=["output"], infer=_same_of(NUMERIC))
def sign(x):
    """Sign: -1, 0 or 1 in the input's dtype (NaN stays NaN)."""
    return float_unary(np.sign)(x)


# --- Erf: NumPy has none. Chebyshev interpolants of math.erf/erfc, built once at import:
# erf(x) = x * P(x*x) for |x| <= 2, and 1 - exp(-x*x) * Q(x) beyond. float64 inputs get high
# degrees (a few ulp); float32 and narrower get low-degree Horner forms in float64 (within 1 ulp of
# float32, about ten times faster, which matters for GELU in BERT-sized models).
def _erf_over_x(u):
    s = np.sqrt(u)
    vals = np.array([math.erf(v) / v if v > 0 else 2 / math.sqrt(math.pi) for v in np.ravel(s)])
    return vals.reshape(np.shape(u))


def _erfc_scaled(x):
    return np.array([math.erfc(v) * math.exp(v * v) for v in np.ravel(x)]).reshape(np.shape(x))


_ERF_NEAR = Chebyshev.interpolate(_erf_over_x, 20, domain=[0.0, 4.0])   # erf(x)/x in u = x*x, |x| <= 2
_ERF_FAR = Chebyshev.interpolate(_erfc_scaled, 30, domain=[2.0, 6.0])   # erfc(x)*exp(x*x), 2 < |x| < 6
# float32 tier: power-series coefficients in the interval mapped to [-1, 1]; erfc(4) < 2e-8
_ERF32_NEAR = Chebyshev.interpolate(_erf_over_x, 12, domain=[0.0, 4.0]).convert(
    kind=Polynomial, domain=[0.0, 4.0], window=[-1.0, 1.0]).coef[::-1].copy()
_ERF32_FAR = Chebyshev.interpolate(_erfc_scaled, 16, domain=[2.0, 4.0]).convert(
    kind=Polynomial, domain=[2.0, 4.0], window=[-1.0, 1.0]).coef[::-1].copy()


def erf_float(x: np.ndarray) -> np.ndarray:
    """The error function of a float array, in float64 (accurate to float64 for float64 input,
    to float32 otherwise)."""
    x64 = np.asarray(x, dtype=np.float64)
    a = np.abs(x64)
    if np.asarray(x).dtype != np.float64:
        near = np.minimum(a, 2.0)
        far = np.clip(a, 2.0, 4.0)
        p_near = np.polyval(_ERF32_NEAR, near * near * 0.5 - 1.0) * near
        p_far = 1.0 - np.exp(-far * far) * np.polyval(_ERF32_FAR, far - 3.0)
        out = np.where(a <= 2.0, p_near, np.where(a < 4.0, p_far, 1.0))
        return np.where(np.isnan(x64), np.nan, np.copysign(out, x64))
    out = np.sign(x64)  # |x| >= 6 (and +-inf); NaN stays NaN
    near = a <= 2.0
    if near.any():
        xn = x64[near]
        out[near] = xn * _ERF_NEAR(xn * xn)
    mid = (a > 2.0) & (a < 6.0)
    if mid.any():
        am = a[mid]
        out[mid] = np.sign(x64[mid]) * (1.0 - np.exp(-am * am) * _ERF_FAR(am))
    return out


@versions("Erf", {9: {}}, inputs=["input"], outputs=["output"], infer=_same_of(NUMERIC))
def erf(x):
    """Erf: the Gauss error function (integer inputs give -1, 0 or 1 in their dtype)."""
    if x.size == 0:
        return x.copy()
    return erf_float(x).astype(x.dtype)


@versions("IsInf", {10: {"detect_negative": 1, "detect_positive": 1}}, inputs=["X"], outputs=["Y"],
          infer=_bool_of(FLOAT))
def isinf(x, *, detect_negative, detect_positive):
    """IsInf: whether each element is an infinity the attributes ask for."""
    w = x.astype(np.float32) if x.dtype not in (np.float32, np.float64) else x
    pos = np.isposinf(w) if detect_positive else np.zeros(w.shape, bool)
    neg_ = np.isneginf(w) if detect_negative else np.zeros(w.shape, bool)
    return pos | neg_


@versions("IsNaN", {9: {}}, inputs=["X"], outputs=["Y"], infer=_bool_of(FLOAT))
def isnan(x):
    """IsNaN: whether each element is NaN."""
    return np.isnan(x.astype(np.float32) if is_float(x.dtype) and x.dtype.kind != "f" else x)


@versions("Not", {1: {}}, inputs=["X"], outputs=["Y"], infer=_same_of(BOOL))
def not_(x):
    """Not: logical negation of a bool tensor."""
    return np.logical_not(x)


@versions("BitwiseNot", {18: {}}, inputs=["X"], outputs=["Y"], infer=_same_of(INT))
def bitwise_not(x):
    """BitwiseNot: ~x on integers."""
    return np.invert(x)
