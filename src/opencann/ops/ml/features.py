"""ai.onnx.ml feature transforms: ArrayFeatureExtractor, Binarizer."""

import numpy as np

from ... import dtypes
from .. import infer
from ..infer import InferError
from ..registry import defop

ML = "ai.onnx.ml"


def _afe_infer(x, y):
    if y.dtype is not None and y.dtype != dtypes.int64:
        raise InferError(f"ArrayFeatureExtractor indices must be int64, got {y.dtype}")
    n = infer.dim_mul(y.shape) if y.shape is not None else None
    if x.shape is None:
        return infer.tensor(x.dtype, None)
    if len(x.shape) == 1:
        return infer.tensor(x.dtype, (1, n))
    return infer.tensor(x.dtype, (*x.shape[:-1], n))


@defop("ArrayFeatureExtractor", inputs=["X", "Y"], outputs=["Z"], domain=ML, since=1, infer=_afe_infer)
def array_feature_extractor(x, y):
    """Select entries of X's last axis at indices Y (flattened); a 1-D X gives a [1, len(Y)] result."""
    x = np.asarray(x)
    idx = np.asarray(y, dtype=np.int64).reshape(-1)
    last = x.shape[-1] if x.ndim else 0
    if idx.size and (idx.min() < 0 or idx.max() >= last):
        raise ValueError(f"ArrayFeatureExtractor index out of range [0, {last}): {idx.tolist()}")
    z = np.take(x, idx, axis=-1)
    return z.reshape(1, -1) if x.ndim == 1 else z


@defop("Binarizer", inputs=["X"], outputs=["Y"], domain=ML, since=1, attrs={"threshold": 0.0},
       infer=infer.same)
def binarizer(x, *, threshold):
    """1 where X > threshold, else 0, in X's type."""
    x = np.asarray(x)
    return (x > threshold).astype(x.dtype)
