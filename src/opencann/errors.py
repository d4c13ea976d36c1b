"""The errors opencann raises for bad input. Each message names the model, node, op or value
concerned and says what to do; none of them is a traceback from deep inside NumPy."""

from __future__ import annotations


class OpenCannError(Exception):
    """Base class of opencann's user-facing errors."""


class ModelLoadError(OpenCannError):
    """The model file or proto cannot be read (truncated, not ONNX, opset too new, ...)."""


class UnsupportedOpsError(OpenCannError):
    """The model uses ops opencann does not implement; all of them are listed at once."""

    def __init__(self, model: str, missing: dict[str, list[str]]):
        self.model = model
        self.missing = missing  # "domain::Op (opset N)" -> node names
        lines = [f"model {model!r} uses {len(missing)} op(s) that opencann does not support:"]
        for op, nodes in sorted(missing.items()):
            shown = ", ".join(repr(n) for n in nodes[:5]) + (f" and {len(nodes) - 5} more" if len(nodes) > 5 else "")
            lines.append(f"  - {op}: {len(nodes)} node(s): {shown}")
        lines.append("Supported ops are listed by `opencann info --ops`; to add one, define it in "
                     "src/opencann/ops/<family>/ with @defop (see docs/ops.md).")
        super().__init__("\n".join(lines))


class InvalidModelError(OpenCannError):
    """The model is readable but wrong: a node's inputs or attributes do not fit its op."""


class InputError(OpenCannError):
    """A missing, unexpected, or wrongly typed/shaped input was fed to a compiled model."""


class ExecutionError(OpenCannError):
    """A node failed while running; the message names the node, its op and its input shapes."""
