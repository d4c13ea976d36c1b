"""Linear quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, and the integer /
quantized compute ops QLinearMatMul, QLinearConv, MatMulInteger, ConvInteger.

A quantized tensor q stands for the real values `(q - zero_point) * scale`. Scale and zero point
are per tensor (a scalar), per axis (1-D, along `axis`) or blocked (the input's rank, with
`block_size` elements of `axis` sharing one entry).

Integer products are accumulated exactly: the 8-bit operands, after subtracting their zero
points, go through float BLAS, which is exact while the partial sums stay below 2**24 (float32)
or 2**53 (float64) and much faster than NumPy's integer matmul; `_exact_dtype` picks the type.
"""

from __future__ import annotations

import math

import numpy as np

from ... import dtypes
from .. import infer
from ..infer import InferError, known_int
from ..registry import defop
from ._cast_convert import convert, int_range
from .cast import target_dtype

_QUANT_FLOATS = frozenset({dtypes.float8e4m3fn, dtypes.float8e4m3fnuz, dtypes.float8e5m2,
                           dtypes.float8e5m2fnuz, dtypes.float4e2m1})
_QUANT_INTS = frozenset({dtypes.int8, dtypes.uint8, dtypes.int16, dtypes.uint16, dtypes.int4,
                         dtypes.uint4, dtypes.int2, dtypes.uint2})
_QUANT_TYPES = _QUANT_FLOATS | _QUANT_INTS
_REAL_TYPES = frozenset({dtypes.float32, dtypes.float16, dtypes.bfloat16})


def _exact(x: np.ndarray) -> np.ndarray:
    """`x` as float64 (exact for every quantized and scale type)."""
    return convert(np.asarray(x), dtypes.float64)


# --- scale / zero point layout ------------------------------------------------------------------
def _param_layout(x_shape, p_shape, axis: int, block_size: int, what: str, error) -> tuple[str, int]:
    """Classify a scale/zero-point shape: ('tensor', 0), ('axis', axis) or ('block', axis)."""
    rank = len(x_shape)
    size = math.prod(d if known_int(d) else 2 for d in p_shape)  # symbolic: assume > 1
    if len(p_shape) == 0 or (size == 1 and block_size <= 0):
        return "tensor", 0
    if rank == 0:
        raise error(f"{what} of shape {list(p_shape)} does not fit a scalar input")
    if rank == 1 and block_size <= 0:
        axis = 0  # a 1-D input has one axis to quantize along, whatever `axis` says
    if not -rank <= axis < rank:
        raise error(f"axis {axis} is out of range for an input of rank {rank}")
    axis %= rank
    if block_size > 0:
        if len(p_shape) != rank:
            raise error(f"blocked quantization needs {what} of the input's rank {rank}, got shape {list(p_shape)}")
        for i, (d, s) in enumerate(zip(x_shape, p_shape)):
            if i == axis or not (known_int(d) and known_int(s)):
                continue
            if d != s:
                raise error(f"{what} shape {list(p_shape)} must match the input shape {list(x_shape)} "
                            f"except on axis {axis}")
        d, s = x_shape[axis], p_shape[axis]
        if known_int(d) and known_int(s) and s != -(-d // block_size):
            raise error(f"{what} has {s} blocks on axis {axis}, but an input dim of {d} with "
                        f"block_size {block_size} needs {-(-d // block_size)}")
        return "block", axis
    if len(p_shape) != 1:
        raise error(f"{what} must be a scalar or 1-D (per axis) unless block_size is set; got shape {list(p_shape)}")
    d = x_shape[axis]
    if known_int(d) and known_int(p_shape[0]) and d != p_shape[0]:
        raise error(f"{what} has {p_shape[0]} entries but the input has {d} along axis {axis}")
    return "axis", axis


def _expand(p: np.ndarray, x_shape, layout: tuple[str, int], block_size: int) -> np.ndarray:
    """A scale/zero point reshaped (and, for blocks, repeated) to broadcast against the input."""
    kind, axis = layout
    if kind == "tensor":
        return p.reshape(())
    if kind == "axis":
        shape = [1] * len(x_shape)
        shape[axis] = p.shape[0]
        return p.reshape(shape)
    return np.take(np.repeat(p, block_size, axis=axis), np.arange(x_shape[axis]), axis=axis)


# --- QuantizeLinear ------------------------------------------------------------------------------
def _quantized_type(zero_point_dtype, output_dtype: int, error) -> dtypes.DType:
    if output_dtype:
        out = target_dtype(output_dtype, error)
        if zero_point_dtype is not None and zero_point_dtype != out:
            raise error(f"output_dtype {out} differs from the zero point's type {zero_point_dtype}")
    else:
        out = zero_point_dtype if zero_point_dtype is not None else dtypes.uint8
    if out not in _QUANT_TYPES:
        raise error(f"cannot quantize to {out}; supported: {', '.join(sorted(d.name for d in _QUANT_TYPES))}")
    return out


def _infer_quantize(x, scale, zero_point=None, *, axis=1, saturate=1, output_dtype=0, block_size=0,
                    precision=0):
    if zero_point is not None and zero_point.dtype is None and not output_dtype:
        return None  # the zero point's type, which names the output type, is not known yet
    out = _quantized_type(None if zero_point is None else zero_point.dtype, output_dtype, InferError)
    if x.shape is not None and scale.shape is not None:
        _param_layout(x.shape, scale.shape, axis, block_size, "y_scale", InferError)
    if precision:
        _precision_type(precision, InferError)
    return infer.tensor(out, x.shape)


def _precision_type(precision: int, error) -> dtypes.DType:
    dt = target_dtype(precision, error)
    if dt not in (dtypes.float32, dtypes.float16, dtypes.bfloat16, dtypes.float64):
        raise error(f"precision must be a float type, got {dt}")
    return dt


def _divide(x: np.ndarray, scale: np.ndarray, precision: dtypes.DType) -> np.ndarray:
    """x / scale computed in `precision` (rounded to it), returned as float32/float64."""
    wide = np.float64 if precision == dtypes.float64 else np.float32
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if precision in (dtypes.float32, dtypes.float64):
            return convert(x, dtypes.from_numpy(wide)) / convert(scale, dtypes.from_numpy(wide))
        xs, ss = convert(x, precision), convert(scale, precision)
        q = convert(xs, dtypes.float32) / convert(ss, dtypes.float32)
        return convert(convert(q, precision), dtypes.float32)  # one rounding to the precision


def quantize(x, scale, zero_point=None, *, axis=1, saturate=1, output_dtype=0, block_size=0,
             precision=0) -> np.ndarray:
    """`saturate(round(x / scale) + zero_point)` with round-half-to-even; float8/float4 outputs
    skip the integer rounding and convert `x / scale + zero_point` to the type (see Cast)."""
    x, scale = np.asarray(x), np.asarray(scale)
    zp_dtype = None if zero_point is None else dtypes.from_numpy(np.asarray(zero_point).dtype)
    out = _quantized_type(zp_dtype, output_dtype, ValueError)
    layout = _param_layout(x.shape, scale.shape, axis, block_size, "y_scale", ValueError)
    if zero_point is not None and np.shape(zero_point) != scale.shape \
            and not (np.size(zero_point) == 1 and scale.size == 1):
        raise ValueError(f"y_zero_point shape {list(np.shape(zero_point))} differs from y_scale shape {list(scale.shape)}")
    s = _expand(scale, x.shape, layout, block_size)
    prec = _precision_type(precision, ValueError) if precision else dtypes.from_numpy(scale.dtype)
    if prec not in (dtypes.float32, dtypes.float16, dtypes.bfloat16, dtypes.float64):
        prec = dtypes.float32  # int32 or float8e8m0 scales: divide in float32
    q = _divide(x, s, prec)
    zp = 0.0 if zero_point is None else _expand(_exact(zero_point), x.shape, layout, block_size)
    if out in _QUANT_FLOATS:
        return convert(q + zp, out, saturate=bool(saturate))
    lo, hi = int_range(out)
    with np.errstate(invalid="ignore"):
        y = np.clip(np.rint(q) + zp, lo, hi)
    return convert(np.nan_to_num(y, nan=0.0), dtypes.int64).astype(out.np)


_Q_IO = dict(inputs=["x", "y_scale", "y_zero_point?"], outputs=["y"], infer=_infer_quantize)


@defop("QuantizeLinear", **_Q_IO, since=10)
def quantize_linear_10(x, y_scale, y_zero_point):
    """Per-tensor quantization of `x` (opset 10)."""
    return quantize(x, y_scale, y_zero_point)


@defop("QuantizeLinear", **_Q_IO, attrs={"axis": 1}, since=13)
def quantize_linear_13(x, y_scale, y_zero_point, *, axis):
    """Per-tensor or per-axis quantization of `x`."""
    return quantize(x, y_scale, y_zero_point, axis=axis)


@defop("QuantizeLinear", **_Q_IO, attrs={"axis": 1, "saturate": 1}, since=19)
def quantize_linear_19(x, y_scale, y_zero_point, *, axis, saturate):
    """Quantization of `x`, to float8 types too (`saturate` as in Cast)."""
    return quantize(x, y_scale, y_zero_point, axis=axis, saturate=saturate)


@defop("QuantizeLinear", **_Q_IO, attrs={"axis": 1, "block_size": 0, "output_dtype": 0, "saturate": 1},
       since=21)
def quantize_linear_21(x, y_scale, y_zero_point, *, axis, block_size, output_dtype, saturate):
    """Quantization of `x`, per tensor, per axis or blocked; `output_dtype` names the type when
    there is no zero point."""
    return quantize(x, y_scale, y_zero_point, axis=axis, saturate=saturate, output_dtype=output_dtype,
                    block_size=block_size)


@defop("QuantizeLinear", **_Q_IO,
       attrs={"axis": 1, "block_size": 0, "output_dtype": 0, "precision": 0, "saturate": 1}, since=23)
def quantize_linear_23(x, y_scale, y_zero_point, *, axis, block_size, output_dtype, precision, saturate):
    """Quantization of `x`; `precision` (a float type) is the type the division is done in."""
    return quantize(x, y_scale, y_zero_point, axis=axis, saturate=saturate, output_dtype=output_dtype,
                    block_size=block_size, precision=precision)


# --- DequantizeLinear ----------------------------------------------------------------------------
def _dequantized_type(scale_dtype, output_dtype: int, error) -> dtypes.DType:
    if output_dtype:
        out = target_dtype(output_dtype, error)
    else:
        out = scale_dtype if scale_dtype in _REAL_TYPES else dtypes.float32
    if out not in _REAL_TYPES:
        raise error(f"cannot dequantize to {out}; supported: float32, float16, bfloat16")
    return out


def _infer_dequantize(x, scale, zero_point=None, *, axis=1, block_size=0, output_dtype=0):
    if x.dtype is not None and x.dtype not in _QUANT_TYPES and x.dtype != dtypes.int32:
        raise InferError(f"cannot dequantize a {x.dtype} tensor")
    if scale.dtype is None and not output_dtype:
        return None  # the output type is the scale's, not known yet
    if zero_point is not None and None not in (x.dtype, zero_point.dtype) and zero_point.dtype != x.dtype:
        raise InferError(f"x_zero_point is {zero_point.dtype} but x is {x.dtype}: they must match")
    if x.shape is not None and scale.shape is not None:
        _param_layout(x.shape, scale.shape, axis, block_size, "x_scale", InferError)
    return infer.tensor(_dequantized_type(scale.dtype, output_dtype, InferError), x.shape)


def dequantize(x, scale, zero_point=None, *, axis=1, block_size=0, output_dtype=0) -> np.ndarray:
    """`(x - zero_point) * scale`, computed exactly and rounded once to the output type."""
    x, scale = np.asarray(x), np.asarray(scale)
    out = _dequantized_type(dtypes.from_numpy(scale.dtype), output_dtype, ValueError)
    layout = _param_layout(x.shape, scale.shape, axis, block_size, "x_scale", ValueError)
    v = _exact(x)
    if zero_point is not None:
        v = v - _expand(_exact(zero_point), x.shape, layout, block_size)
    return convert(v * _expand(_exact(scale), x.shape, layout, block_size), out)


_DQ_IO = dict(inputs=["x", "x_scale", "x_zero_point?"], outputs=["y"], infer=_infer_dequantize)


@defop("DequantizeLinear", **_DQ_IO, since=10)
def dequantize_linear_10(x, x_scale, x_zero_point):
    """Per-tensor dequantization of `x` (opset 10)."""
    return dequantize(x, x_scale, x_zero_point)


@defop("DequantizeLinear", **_DQ_IO, attrs={"axis": 1}, since=13)
def dequantize_linear_13(x, x_scale, x_zero_point, *, axis):
    """Per-tensor or per-axis dequantization of `x`."""
    return dequantize(x, x_scale, x_zero_point, axis=axis)


@defop("DequantizeLinear", **_DQ_IO, attrs={"axis": 1, "block_size": 0}, since=21)
def dequantize_linear_21(x, x_scale, x_zero_point, *, axis, block_size):
    """Dequantization of `x`, per tensor, per axis or blocked."""
    return dequantize(x, x_scale, x_zero_point, axis=axis, block_size=block_size)


@defop("DequantizeLinear", **_DQ_IO, attrs={"axis": 1, "block_size": 0, "output_dtype": 0}, since=23)
def dequantize_linear_23(x, x_scale, x_zero_point, *, axis, block_size, output_dtype):
    """Dequantization of `x`; `output_dtype` (default: the scale's type) is the result type."""
    return dequantize(x, x_scale, x_zero_point, axis=axis, block_size=block_size, output_dtype=output_dtype)


# --- DynamicQuantizeLinear -----------------------------------------------------------------------
def _infer_dynamic_quantize(x):
    if x.dtype not in (dtypes.float32, None):
        raise InferError(f"DynamicQuantizeLinear takes float32, got {x.dtype}")
    return infer.tensor(dtypes.uint8, x.shape), infer.tensor(dtypes.float32, ()), infer.tensor(dtypes.uint8, ())


@defop("DynamicQuantizeLinear", inputs=["x"], outputs=["y", "y_scale", "y_zero_point"],
       infer=_infer_dynamic_quantize, since=11)
def dynamic_quantize_linear(x):
    """Quantize float32 `x` to uint8 with a scale and zero point chosen so that [min(x, 0),
    max(x, 0)] spans [0, 255]."""
    x = np.asarray(x, np.float32)
    lo = np.float32(min(0.0, x.min())) if x.size else np.float32(0)
    hi = np.float32(max(0.0, x.max())) if x.size else np.float32(0)
    scale = np.float32((hi - lo) / np.float32(255))
    if scale == 0 or not np.isfinite(scale):
        zero_point = np.uint8(0)
        y = np.zeros(x.shape, np.uint8)
    else:
        zero_point = np.uint8(np.clip(np.rint((np.float32(0) - lo) / scale), 0, 255))
        y = np.clip(np.rint(x / scale) + np.float32(zero_point), 0, 255).astype(np.uint8)
    return y, np.asarray(scale, np.float32), np.asarray(zero_point, np.uint8)


# --- integer matmul ------------------------------------------------------------------------------
def _matmul_shape(a, b, error=InferError):
    """numpy.matmul's result shape for shapes that may hold symbols (None when a rank is unknown)."""
    if a is None or b is None:
        return None
    if len(a) == 0 or len(b) == 0:
        raise error("matmul inputs must have rank >= 1")
    a1, b1 = len(a) == 1, len(b) == 1
    a2 = (1,) + tuple(a) if a1 else tuple(a)
    b2 = tuple(b) + (1,) if b1 else tuple(b)
    ka, kb = a2[-1], b2[-2]
    if known_int(ka) and known_int(kb) and ka != kb:
        raise error(f"matmul inner dims differ: {list(a)} @ {list(b)}")
    batch = infer.broadcast_shapes(a2[:-2], b2[:-2])
    out = tuple(batch) + (a2[-2], b2[-1])
    if a1:
        out = out[:-2] + out[-1:]
    if b1:
        out = out[:-1]
    return out


def _row_param(p: np.ndarray, a: np.ndarray, what: str) -> np.ndarray:
    """A per-tensor or per-row parameter of matmul operand `a`, shaped to broadcast against it."""
    if p.size == 1:
        return p.reshape(())
    if p.ndim == 1 and a.ndim >= 2 and p.shape[0] == a.shape[-2]:
        return p.reshape(-1, 1)
    if p.ndim == a.ndim:
        return p
    raise ValueError(f"{what} of shape {list(p.shape)} is neither per tensor nor per row of shape {list(a.shape)}")


def _col_param(p: np.ndarray, b: np.ndarray, what: str) -> np.ndarray:
    """A per-tensor or per-column parameter of matmul operand `b`."""
    if p.size == 1:
        return p.reshape(())
    if p.ndim == 1 and b.ndim >= 2 and p.shape[0] == b.shape[-1]:
        return p
    if p.ndim == b.ndim:
        return p
    raise ValueError(f"{what} of shape {list(p.shape)} is neither per tensor nor per column of shape {list(b.shape)}")


def _centered(x: np.ndarray, zero_point, param) -> np.ndarray:
    v = _exact(x)
    if zero_point is not None:
        v = v - param(_exact(zero_point))
    return v


def _exact_dtype(a: np.ndarray, b: np.ndarray, k: int):
    """float32 when every partial sum of k integer products of `a` and `b` is below 2**24 (so
    float32 BLAS is exact, and twice as fast), else float64 (exact below 2**53)."""
    if a.size == 0 or b.size == 0:
        return np.float64
    bound = float(np.max(np.abs(a))) * float(np.max(np.abs(b))) * k
    return np.float32 if bound < 2.0 ** 24 else np.float64


def _exact_matmul(a: np.ndarray, b: np.ndarray, integral: bool = True) -> np.ndarray:
    """matmul of float64 operands; integer operands give exact integer sums."""
    if integral:
        dt = _exact_dtype(a, b, a.shape[-1])
        return np.matmul(a.astype(dt, copy=False), b.astype(dt, copy=False)).astype(np.float64)
    return np.matmul(a, b)


def _check_8bit(*pairs):
    for name, v in pairs:
        if v is not None and v.dtype not in (dtypes.int8, dtypes.uint8, None):
            raise InferError(f"{name} must be int8 or uint8, got {v.dtype}")


def _infer_matmul_integer(a, b, a_zero_point=None, b_zero_point=None):
    _check_8bit(("A", a), ("B", b), ("a_zero_point", a_zero_point), ("b_zero_point", b_zero_point))
    return infer.tensor(dtypes.int32, _matmul_shape(a.shape, b.shape))


@defop("MatMulInteger", inputs=["A", "B", "a_zero_point?", "b_zero_point?"], outputs=["Y"],
       infer=_infer_matmul_integer, since=10)
def matmul_integer(a, b, a_zero_point, b_zero_point):
    """`(A - a_zero_point) @ (B - b_zero_point)` in int32; zero points per tensor, per row of A,
    per column of B."""
    a, b = np.asarray(a), np.asarray(b)
    av = _centered(a, a_zero_point, lambda p: _row_param(p, a, "a_zero_point"))
    bv = _centered(b, b_zero_point, lambda p: _col_param(p, b, "b_zero_point"))
    return _wrap_int32(_exact_matmul(av, bv))


def _wrap_int32(acc: np.ndarray) -> np.ndarray:
    """Exact integer sums to int32 (wrapping like a 32-bit accumulator if they overflow)."""
    return acc.astype(np.int64).astype(np.int32)


def _requantize(acc: np.ndarray, multiplier, y_zero_point, out: dtypes.DType) -> np.ndarray:
    """Real values `acc * multiplier` quantized with `y_zero_point` to `out`."""
    real = acc * multiplier
    zp = _exact(y_zero_point).reshape(np.shape(y_zero_point))
    if out in _QUANT_FLOATS:
        return convert(real + zp, out)
    lo, hi = int_range(out)
    return np.clip(np.rint(real) + zp, lo, hi).astype(out.np)


_QTYPES_MM = frozenset({dtypes.int8, dtypes.uint8, dtypes.float8e4m3fn, dtypes.float8e4m3fnuz,
                        dtypes.float8e5m2, dtypes.float8e5m2fnuz})


def _infer_qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    for name, v in (("a", a), ("b", b), ("y_zero_point", y_zero_point)):
        if v.dtype not in _QTYPES_MM and v.dtype is not None:
            raise InferError(f"{name} must be a quantized type (int8, uint8, float8), got {v.dtype}")
    if any(z.dtype != v.dtype and None not in (z.dtype, v.dtype)
           for z, v in ((a_zero_point, a), (b_zero_point, b))):
        raise InferError("a_zero_point/b_zero_point must have the types of a/b")
    shape = _matmul_shape(a.shape, b.shape)
    return None if y_zero_point.dtype is None else infer.tensor(y_zero_point.dtype, shape)


_QMM_IN = ["a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point", "y_scale", "y_zero_point"]


def qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    """Quantized matmul: the real product of the dequantized inputs, quantized with y's
    scale and zero point (round half to even, saturating)."""
    a, b = np.asarray(a), np.asarray(b)
    row = lambda p: _row_param(np.asarray(p), a, "a_scale/a_zero_point")  # noqa: E731
    col = lambda p: _col_param(np.asarray(p), b, "b_scale/b_zero_point")  # noqa: E731
    integral = a.dtype.kind in "iu" and b.dtype.kind in "iu"  # float8 inputs: a real product
    acc = _exact_matmul(_centered(a, a_zero_point, row), _centered(b, b_zero_point, col), integral)
    multiplier = row(_exact(a_scale)) * col(_exact(b_scale)) / _exact(y_scale).reshape(np.shape(y_scale))
    out = dtypes.from_numpy(np.asarray(y_zero_point).dtype)
    if np.size(y_zero_point) == 1:
        y_zero_point = np.asarray(y_zero_point).reshape(())
    return _requantize(acc, multiplier, y_zero_point, out)


@defop("QLinearMatMul", inputs=_QMM_IN, outputs=["y"], infer=_infer_qlinear_matmul, since=10)
def qlinear_matmul_10(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    """Quantized matmul of 8-bit integer inputs (opset 10)."""
    return qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point)


@defop("QLinearMatMul", inputs=_QMM_IN, outputs=["y"], infer=_infer_qlinear_matmul, since=21)
def qlinear_matmul_21(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    """Quantized matmul; inputs may also be float8, scales float16/bfloat16 (opset 21)."""
    return qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point)


# --- integer convolution -------------------------------------------------------------------------
_CONV_ATTRS = {"auto_pad": "NOTSET", "dilations": None, "group": 1, "kernel_shape": None, "pads": None,
               "strides": None}


def _conv_geometry(spatial_in, kernel, auto_pad, dilations, pads, strides, error):
    """Per spatial dim: (pad_begin, pad_end, out) — ints, or None where a dim is symbolic."""
    n = len(kernel)
    strides = list(strides) if strides else [1] * n
    dilations = list(dilations) if dilations else [1] * n
    if len(strides) != n or len(dilations) != n:
        raise error(f"strides/dilations must have {n} entries (one per spatial dim)")
    if auto_pad not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise error(f"auto_pad must be NOTSET, VALID, SAME_UPPER or SAME_LOWER, got {auto_pad!r}")
    if auto_pad == "NOTSET":
        pads = list(pads) if pads else [0] * (2 * n)
        if len(pads) != 2 * n:
            raise error(f"pads must have {2 * n} entries, got {len(pads)}")
    geo = []
    for i in range(n):
        d_in, k, s, d = spatial_in[i], kernel[i], strides[i], dilations[i]
        eff = (k - 1) * d + 1 if known_int(k) else None
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            if not known_int(d_in) or eff is None:
                geo.append((None, None, None))
                continue
            out = -(-d_in // s)
            total = max((out - 1) * s + eff - d_in, 0)
            small = total // 2
            pb, pe = (small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small)
        else:
            pb, pe = (0, 0) if auto_pad == "VALID" else (pads[i], pads[i + n])
            if not known_int(d_in) or eff is None:
                geo.append((pb, pe, None))
                continue
            out = max((d_in + pb + pe - eff) // s + 1, 0)  # 0: the kernel does not fit
        geo.append((pb, pe, out))
    return geo, strides, dilations


def _conv_out_shape(x, w, attrs, error=InferError):
    if x.shape is None or w.shape is None:
        return None
    if len(x.shape) < 3 or len(w.shape) != len(x.shape):
        raise error(f"conv input {list(x.shape)} and weight {list(w.shape)} must have the same rank >= 3")
    kernel = attrs["kernel_shape"] or list(w.shape[2:])
    geo, _, _ = _conv_geometry(x.shape[2:], kernel, attrs["auto_pad"], attrs["dilations"], attrs["pads"],
                               attrs["strides"], error)
    c, cg, group = x.shape[1], w.shape[1], attrs["group"]
    if known_int(c) and known_int(cg) and c != cg * group:
        raise error(f"input has {c} channels but weight expects {cg} x group {group}")
    return (x.shape[0], w.shape[0]) + tuple(g[2] for g in geo)


def _conv(x: np.ndarray, w: np.ndarray, attrs) -> np.ndarray:
    """Convolution of float64 arrays (N, C, *S) * (M, C/group, *K) -> (N, M, *O), zero padded;
    exact for integer-valued operands (computed in float32 where that is exact)."""
    kernel = list(attrs["kernel_shape"] or w.shape[2:])
    if list(w.shape[2:]) != kernel:
        raise ValueError(f"kernel_shape {kernel} differs from the weight's {list(w.shape[2:])}")
    geo, strides, dilations = _conv_geometry(x.shape[2:], kernel, attrs["auto_pad"], attrs["dilations"],
                                             attrs["pads"], attrs["strides"], ValueError)
    n_sp = len(kernel)
    group = int(attrs["group"])
    N, C = x.shape[:2]
    M, Cg = w.shape[:2]
    if C != Cg * group or M % group:
        raise ValueError(f"input channels {C}, weight {list(w.shape)} and group {group} do not fit")
    if any(pb < 0 or pe < 0 for pb, pe, _ in geo):
        raise ValueError("negative pads are not supported")
    if any(o == 0 for _, _, o in geo) or x.shape[0] == 0:
        return np.zeros((N, M) + tuple(o for _, _, o in geo), np.float64)
    Kn = math.prod(kernel)
    dt = _exact_dtype(x, w, Cg * Kn)
    xp = np.pad(x.astype(dt, copy=False), [(0, 0), (0, 0)] + [(pb, pe) for pb, pe, _ in geo])
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    win = np.lib.stride_tricks.sliding_window_view(xp, eff, axis=tuple(range(2, 2 + n_sp)))
    sl = (slice(None), slice(None)) + tuple(slice(None, (o - 1) * s + 1, s) for (_, _, o), s in zip(geo, strides)) \
        + tuple(slice(None, None, d) for d in dilations)
    win = win[sl]  # (N, C, *O, *K)
    out_sp = win.shape[2:2 + n_sp]
    P = math.prod(out_sp)
    # columns: (group, N * P, Cg * K)
    cols = win.reshape(N, group, Cg, P, Kn).transpose(1, 0, 3, 2, 4).reshape(group, N * P, Cg * Kn)
    wm = w.astype(dt, copy=False).reshape(group, M // group, Cg * Kn).transpose(0, 2, 1)  # (group, Cg*K, M/group)
    y = np.matmul(cols, wm).astype(np.float64)  # (group, N*P, M/group)
    y = y.reshape(group, N, P, M // group).transpose(1, 0, 3, 2).reshape((N, M) + tuple(out_sp))
    return y


def _conv_attrs(auto_pad, dilations, group, kernel_shape, pads, strides):
    return {"auto_pad": auto_pad, "dilations": dilations, "group": group, "kernel_shape": kernel_shape,
            "pads": pads, "strides": strides}


def _channel_param(p: np.ndarray, m: int, n_trailing: int, what: str) -> np.ndarray:
    """A per-tensor or per-output-channel parameter, shaped to broadcast against an array whose
    channel axis (of size `m`) is followed by `n_trailing` axes: the output (N, M, *O) or w."""
    p = np.asarray(p)
    if p.size == 1:
        return p.reshape(())
    if p.ndim == 1 and p.shape[0] == m:
        return p.reshape((m,) + (1,) * n_trailing)
    raise ValueError(f"{what} must be a scalar or have one entry per output channel ({m}), got shape {list(p.shape)}")


def _infer_conv_integer(x, w, x_zero_point=None, w_zero_point=None, **attrs):
    _check_8bit(("x", x), ("w", w), ("x_zero_point", x_zero_point), ("w_zero_point", w_zero_point))
    return infer.tensor(dtypes.int32, _conv_out_shape(x, w, attrs))


@defop("ConvInteger", inputs=["x", "w", "x_zero_point?", "w_zero_point?"], outputs=["y"],
       attrs=_CONV_ATTRS, infer=_infer_conv_integer, since=10)
def conv_integer(x, w, x_zero_point, w_zero_point, *, auto_pad, dilations, group, kernel_shape, pads, strides):
    """Convolution of `x - x_zero_point` with `w - w_zero_point` (per output channel allowed),
    accumulated in int32; padding contributes zero."""
    x, w = np.asarray(x), np.asarray(w)
    xv = _centered(x, x_zero_point, lambda p: p.reshape(()))
    n_sp = w.ndim - 2
    wv = _centered(w, w_zero_point, lambda p: _channel_param(p, w.shape[0], n_sp + 1, "w_zero_point"))
    acc = _conv(xv, wv, _conv_attrs(auto_pad, dilations, group, kernel_shape, pads, strides))
    return _wrap_int32(np.rint(acc))


_QCONV_IN = ["x", "x_scale", "x_zero_point", "w", "w_scale", "w_zero_point", "y_scale", "y_zero_point", "B?"]


def _infer_qlinear_conv(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, b=None,
                        **attrs):
    _check_8bit(("x", x), ("w", w), ("x_zero_point", x_zero_point), ("w_zero_point", w_zero_point),
                ("y_zero_point", y_zero_point))
    if b is not None and b.dtype not in (dtypes.int32, None):
        raise InferError(f"bias B must be int32, got {b.dtype}")
    shape = _conv_out_shape(x, w, attrs)
    return None if y_zero_point.dtype is None else infer.tensor(y_zero_point.dtype, shape)


@defop("QLinearConv", inputs=_QCONV_IN, outputs=["y"], attrs=_CONV_ATTRS, infer=_infer_qlinear_conv, since=10)
def qlinear_conv(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, b, *,
                 auto_pad, dilations, group, kernel_shape, pads, strides):
    """Quantized convolution: integer conv of the centered inputs plus the int32 bias B, rescaled
    by x_scale * w_scale / y_scale (w_scale per output channel allowed) and quantized."""
    x, w = np.asarray(x), np.asarray(w)
    m, n_sp = w.shape[0], w.ndim - 2
    xv = _centered(x, x_zero_point, lambda p: p.reshape(()))
    wv = _centered(w, w_zero_point, lambda p: _channel_param(p, m, n_sp + 1, "w_zero_point"))
    acc = _conv(xv, wv, _conv_attrs(auto_pad, dilations, group, kernel_shape, pads, strides))
    acc = np.rint(acc)
    if b is not None:
        acc = acc + _channel_param(_exact(b), m, n_sp, "B")
    multiplier = (_exact(x_scale).reshape(()) * _channel_param(_exact(w_scale), m, n_sp, "w_scale")
                  / _exact(y_scale).reshape(()))
    out = dtypes.from_numpy(np.asarray(y_zero_point).dtype)
    return _requantize(acc, multiplier, np.asarray(y_zero_point).reshape(()), out)
