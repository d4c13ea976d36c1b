"""opencann: an open, hardware-neutral compute architecture for neural networks.

    >>> import opencann
    >>> model = opencann.compile("model.onnx", backend="cpu")      # doctest: +SKIP
    >>> outputs = model.run({"x": x})                               # doctest: +SKIP

The names below load on first use, so `import opencann.tile` (or any lower layer) does not pull in
the graph engine, the ONNX frontend or onnx itself.
"""

from __future__ import annotations

import importlib
import importlib.util

from . import _openmp  # noqa: F401 - before any OpenMP library loads
from .errors import (ExecutionError, InputError, InvalidModelError, ModelLoadError, OpenCannError,
                     UnsupportedOpsError)

__version__ = "0.1.0"

_LAZY = {"CompiledModel": "opencann.model", "compile": "opencann.model", "load": "opencann.model"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # `opencann.backends` etc. on first use
    raise AttributeError(f"module 'opencann' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


__all__ = ["CompiledModel", "ExecutionError", "InputError", "InvalidModelError", "ModelLoadError",
           "OpenCannError", "UnsupportedOpsError", "compile", "load", "__version__"]
