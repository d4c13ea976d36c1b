"""Activation functions (seed ops; family owners extend)."""

import numpy as np

from .. import infer
from ..registry import defop


@defop("Relu", inputs=["X"], outputs=["Y"], infer=infer.same)
def relu(x):
    return np.maximum(x, x.dtype.type(0))
