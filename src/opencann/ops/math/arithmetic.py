"""Binary arithmetic with NumPy broadcasting: Add, Sub, Mul, Div (seed ops; family owners extend)."""

import numpy as np

from .. import infer
from ..registry import defop


@defop("Add", inputs=["A", "B"], outputs=["C"], infer=infer.broadcast)
def add(a, b):
    return np.add(a, b)
