"""The operator library: one definition per op (schema, type/shape inference, NumPy reference).

Importing this package registers every op found in the family packages (math, nn, tensor,
transformer, cv, control, sequence, ml): a new op file is picked up without editing this file.

    >>> import opencann.ops as ops
    >>> ops.lookup("Relu").family
    'nn'
"""

from __future__ import annotations

import importlib
import pkgutil

from .registry import REQUIRED, OpDef, all_ops, defop, lookup

FAMILIES = ("math", "nn", "tensor", "transformer", "cv", "control", "sequence", "ml")


def _load_families() -> None:
    for fam in FAMILIES:
        pkg = importlib.import_module(f"{__name__}.{fam}")
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}."):
            leaf = info.name.rsplit(".", 1)[-1]
            # tile-language kernels load lazily, when a backend asks for them
            if not leaf.startswith("_") and ".kernels" not in info.name:
                importlib.import_module(info.name)


_load_families()

__all__ = ["REQUIRED", "OpDef", "FAMILIES", "all_ops", "defop", "lookup"]
