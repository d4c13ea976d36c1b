"""Dropout, in all its versions.

In inference Dropout is the identity and its mask is all true. In training it zeroes each element
with probability `ratio` and scales the kept ones by 1 / (1 - ratio). Which mode a node runs in:

- opsets 1-6: training unless the `is_test` attribute is set; the mask has the data's dtype;
- opsets 7-11: always inference (the mask has the data's dtype in 7-9, bool from 10);
- opset 12 on: the optional `training_mode` input (default false) decides, `ratio` is an optional
  input (default 0.5), and the `seed` attribute makes the draw repeatable.

With a seed, the draw is NumPy's legacy `RandomState(seed).uniform(0, 1, shape) >= ratio`, the one
the ONNX test generators use, so seeded results match them exactly.
"""

from __future__ import annotations

import numpy as np

from ... import dtypes
from .. import infer
from ..registry import defop
from .activation import compute_dtype


def _keep_mask(shape: tuple, ratio: float, seed) -> np.ndarray:
    if seed is None:
        u = np.random.default_rng().random(shape)
    else:
        u = np.random.RandomState(int(seed) % 2**32).uniform(0.0, 1.0, shape)
    return u >= ratio


def _dropout(x: np.ndarray, ratio: float, training: bool, seed=None) -> tuple[np.ndarray, np.ndarray]:
    """(output, bool mask)."""
    if not training or ratio == 0:
        return x.copy(), np.ones(x.shape, dtype=bool)
    if not 0 <= ratio <= 1:
        raise ValueError(f"ratio must be in [0, 1), got {ratio}")
    if ratio == 1:  # everything dropped: the scale 1 / (1 - ratio) would be infinite
        return np.zeros_like(x), np.zeros(x.shape, dtype=bool)
    mask = _keep_mask(x.shape, ratio, seed)
    wide = compute_dtype(x.dtype)
    y = x.astype(wide, copy=False) * mask * wide.type(1 / (1 - ratio))
    return y.astype(x.dtype, copy=False), mask


def _infer_dropout(mask_dtype=None):
    def infer_fn(data, *inputs, **attrs):
        # from opset 12, `ratio` and `training_mode` are scalar inputs (before, `ratio` is an attribute)
        for name, v in zip(("ratio", "training_mode"), inputs):
            if v is not None and v.shape is not None and len(v.shape) != 0:
                raise infer.InferError(f"{name} must be a scalar, got {v.type!r}")
        return data.type, infer.tensor(mask_dtype or data.dtype, data.shape)

    return infer_fn


@defop("Dropout", inputs=["data"], outputs=["output", "mask?"], infer=_infer_dropout(),
       attrs={"consumed_inputs": None, "is_test": 0, "ratio": 0.5})
@defop("Dropout", inputs=["data"], outputs=["output", "mask?"], infer=_infer_dropout(),
       attrs={"is_test": 0, "ratio": 0.5}, since=6)
def dropout_v1(data, *, is_test, ratio, consumed_inputs=None):
    """Opsets 1-6: random dropout unless `is_test`; the mask has the data's dtype (1 = kept)."""
    y, mask = _dropout(data, ratio, training=not is_test)
    return y, mask.astype(data.dtype)


@defop("Dropout", inputs=["data"], outputs=["output", "mask?"], infer=_infer_dropout(),
       attrs={"ratio": 0.5}, since=7)
def dropout_v7(data, *, ratio):
    """Opsets 7-9: identity (inference only); the mask has the data's dtype, all ones."""
    return data.copy(), np.ones(data.shape, dtype=data.dtype)


@defop("Dropout", inputs=["data"], outputs=["output", "mask?"], infer=_infer_dropout(dtypes.bool_),
       attrs={"ratio": 0.5}, since=10)
def dropout_v10(data, *, ratio):
    """Opsets 10-11: identity (inference only); the mask is all true."""
    return data.copy(), np.ones(data.shape, dtype=bool)


@defop("Dropout", inputs=["data", "ratio?", "training_mode?"], outputs=["output", "mask?"],
       infer=_infer_dropout(dtypes.bool_), attrs={"seed": None}, since=12)
def dropout(data, ratio, training_mode, *, seed):
    """Identity unless `training_mode` is true; then each element is dropped with probability
    `ratio` (default 0.5) and the rest are scaled by 1 / (1 - ratio). The mask marks kept ones."""
    training = bool(training_mode) if training_mode is not None else False
    r = float(ratio) if ratio is not None else 0.5
    return _dropout(data, r, training, seed)
