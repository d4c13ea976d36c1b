"""opencann: an open, hardware-neutral compute architecture for neural networks.

    >>> import opencann
    >>> model = opencann.compile("model.onnx", backend="ref")      # doctest: +SKIP
    >>> outputs = model.run({"x": x})                               # doctest: +SKIP
"""

from .errors import (ExecutionError, InputError, InvalidModelError, ModelLoadError, OpenCannError,
                     UnsupportedOpsError)
from .model import CompiledModel, compile, load

__version__ = "0.1.0"

__all__ = ["CompiledModel", "ExecutionError", "InputError", "InvalidModelError", "ModelLoadError",
           "OpenCannError", "UnsupportedOpsError", "compile", "load", "__version__"]
