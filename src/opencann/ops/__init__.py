"""The operator library: one definition per op (schema, type/shape inference, NumPy reference,
kernels per backend in `OpDef.kernels`; see `opencann.ops.lowering`).

Importing this package registers every op found in the family packages (math, nn, tensor,
transformer, cv, control, sequence, ml): a new op file is picked up without editing this file.

    >>> import opencann.ops as ops
    >>> ops.lookup("Relu").family
    'nn'

Every op is also callable on tensors, one op at a time (the single-op API, see `opencann.ops.single`):

    >>> ops.Relu(np.array([-1.0, 2.0], np.float32))          # doctest: +SKIP
    array([0., 2.], dtype=float32)
"""

from __future__ import annotations

import importlib
import pkgutil

from .registry import REQUIRED, OpDef, all_ops, defkernel, defop, lookup
from .single import UnknownOpError, cache_clear, cache_info, cache_size, call, op_function, op_names

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


def __getattr__(name: str):
    """`opencann.ops.<Op>`: the single-op callable of a registered op (ONNX names, CamelCase)."""
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return op_function(name)


def __dir__():
    return sorted(set(globals()) | set(op_names()))


__all__ = ["REQUIRED", "OpDef", "FAMILIES", "UnknownOpError", "all_ops", "cache_clear", "cache_info", "cache_size",
           "call", "defkernel", "defop", "lookup", "op_function", "op_names"]
