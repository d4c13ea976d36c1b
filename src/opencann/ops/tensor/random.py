"""Random generators: RandomUniform, RandomNormal, their -Like forms, Bernoulli, Multinomial.

Each draws from NumPy's default generator, seeded with the `seed` attribute when given (so a seeded
node repeats its values), else from fresh entropy.
"""

from __future__ import annotations

import numpy as np

from ... import dtypes
from ..infer import InferError, tensor
from ..registry import REQUIRED
from ._common import defop


def _rng(seed) -> np.random.Generator:
    if seed is None:
        return np.random.default_rng()
    # the attribute is a float; use its bits so that 0.5 and 0.25 give different streams
    return np.random.default_rng(int(np.float64(seed).view(np.uint64)))


def _float_dtype(dtype, default=None, what="dtype"):
    dt = default if dtype is None else dtypes.from_onnx(int(dtype))
    if dt is None or not dt.is_float:
        raise InferError(f"{what} must be a float type, got {dt}")
    return dt


def _shape_attr(shape):
    shape = [int(d) for d in shape]
    if any(d < 0 for d in shape):
        raise InferError(f"shape {shape} has a negative dim")
    return tuple(shape)


@defop("RandomUniform", inputs=[], outputs=["output"],
       attrs={"shape": REQUIRED, "dtype": 1, "low": 0.0, "high": 1.0, "seed": None},
       infer=lambda *, shape, dtype, low, high, seed: tensor(_float_dtype(dtype), _shape_attr(shape)))
def random_uniform(*, shape, dtype, low, high, seed):
    """Uniform samples in [low, high) of the given shape and float dtype."""
    dt = dtypes.from_onnx(int(dtype)).np
    return _rng(seed).uniform(low, high, size=tuple(shape)).astype(dt)


@defop("RandomNormal", inputs=[], outputs=["output"],
       attrs={"shape": REQUIRED, "dtype": 1, "mean": 0.0, "scale": 1.0, "seed": None},
       infer=lambda *, shape, dtype, mean, scale, seed: tensor(_float_dtype(dtype), _shape_attr(shape)))
def random_normal(*, shape, dtype, mean, scale, seed):
    """Normal samples N(mean, scale^2) of the given shape and float dtype."""
    dt = dtypes.from_onnx(int(dtype)).np
    return _rng(seed).normal(mean, scale, size=tuple(shape)).astype(dt)


def _infer_like(x, *, dtype, seed, **_):
    return tensor(_float_dtype(dtype, x.dtype if dtype is None else None, "output dtype"), x.shape)


@defop("RandomUniformLike", inputs=["input"], outputs=["output"],
       attrs={"dtype": None, "low": 0.0, "high": 1.0, "seed": None}, infer=_infer_like)
def random_uniform_like(x, *, dtype, low, high, seed):
    """Uniform samples in [low, high) shaped like `input` (dtype from the attribute or input)."""
    dt = x.dtype if dtype is None else dtypes.from_onnx(int(dtype)).np
    return _rng(seed).uniform(low, high, size=x.shape).astype(dt)


@defop("RandomNormalLike", inputs=["input"], outputs=["output"],
       attrs={"dtype": None, "mean": 0.0, "scale": 1.0, "seed": None}, infer=_infer_like)
def random_normal_like(x, *, dtype, mean, scale, seed):
    """Normal samples N(mean, scale^2) shaped like `input` (dtype from the attribute or input)."""
    dt = x.dtype if dtype is None else dtypes.from_onnx(int(dtype)).np
    return _rng(seed).normal(mean, scale, size=x.shape).astype(dt)


def _infer_bernoulli(x, *, dtype, seed):
    dt = x.dtype if dtype is None else dtypes.from_onnx(int(dtype))
    return tensor(dt, x.shape)


@defop("Bernoulli", inputs=["input"], outputs=["output"], attrs={"dtype": None, "seed": None},
       infer=_infer_bernoulli, since=15)
def bernoulli(x, *, dtype, seed):
    """1 with probability `input` (elementwise), else 0, in `dtype` (the input's when absent)."""
    p = np.asarray(x, dtype=np.float64)
    if p.size and (np.nanmin(p) < 0 or np.nanmax(p) > 1):
        raise ValueError("probabilities must lie in [0, 1]")
    dt = x.dtype if dtype is None else dtypes.from_onnx(int(dtype)).np
    return (_rng(seed).random(size=p.shape) < p).astype(dt)


def _infer_multinomial(x, *, dtype, sample_size, seed):
    dt = dtypes.from_onnx(int(dtype))
    if dt not in (dtypes.int32, dtypes.int64):
        raise InferError(f"dtype must be int32 or int64, got {dt}")
    s = x.shape
    if s is not None and len(s) != 2:
        raise InferError(f"input must be [batch, classes], got rank {len(s)}")
    return tensor(dt, (None if s is None else s[0], int(sample_size)))


@defop("Multinomial", inputs=["input"], outputs=["output"], attrs={"dtype": 6, "sample_size": 1, "seed": None},
       infer=_infer_multinomial, since=7)
def multinomial(x, *, dtype, sample_size, seed):
    """`sample_size` class indices per batch row, drawn with probabilities softmax(input[row])
    (the input holds unnormalized log-probabilities)."""
    if x.ndim != 2:
        raise ValueError(f"input must be [batch, classes], got rank {x.ndim}")
    logits = x.astype(np.float64)
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    cdf = np.cumsum(p, axis=1)
    cdf /= cdf[:, -1:]
    u = _rng(seed).random(size=(x.shape[0], int(sample_size)))
    idx = (u[:, :, None] >= cdf[:, None, :]).sum(axis=2)
    idx = np.minimum(idx, x.shape[1] - 1)
    return idx.astype(dtypes.from_onnx(int(dtype)).np)
