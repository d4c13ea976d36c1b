"""What a node costs: floating-point operations and bytes moved, from its actual inputs and
outputs. Used by the profiler's op summary and roofline; later by placement decisions."""

from __future__ import annotations

import numpy as np

# ops whose cost is about one flop per output element
_ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Relu", "Neg", "Abs", "Max", "Min", "Pow", "Sqrt",
                "Reciprocal", "Where", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "Exp", "Log", "Erf",
                "Gelu", "HardSigmoid", "Softplus", "Sum", "Mean", "PRelu", "Elu", "Selu"}
# ops that take about this many flops per element of their first input
_PER_INPUT = {"Softmax": 5, "LogSoftmax": 5, "LayerNormalization": 8, "RMSNormalization": 5,
              "BatchNormalization": 2, "InstanceNormalization": 8, "GroupNormalization": 8,
              "ReduceSum": 1, "ReduceMean": 1, "ReduceMax": 1, "ReduceL2": 2, "ReduceSumSquare": 2,
              "MaxPool": 1, "AveragePool": 1, "GlobalAveragePool": 1}


def _size(x) -> int:
    return int(x.size) if isinstance(x, np.ndarray) else 0


# ops that read only part of their first input: they move about as many bytes as they write
_PARTIAL_READ = {"Gather", "GatherElements", "GatherND", "Slice", "Shape", "Size", "Compress", "TopK"}


def nbytes(arrays) -> int:
    return sum(int(a.nbytes) for a in arrays if isinstance(a, np.ndarray))


def moved_bytes(op: str, inputs: list, outputs: list) -> int:
    """Bytes a node reads and writes (for partial readers, the part read is taken as the part written)."""
    out = nbytes(outputs)
    if op in _PARTIAL_READ:
        return 2 * out + nbytes(inputs[1:])
    return nbytes(inputs) + out


def flops(op: str, attrs: dict, inputs: list, outputs: list) -> float:
    """Floating-point operations of one execution of `op` on these arrays (0 when not modelled)."""
    out = outputs[0] if outputs and isinstance(outputs[0], np.ndarray) else None
    if out is None:
        return 0.0
    if op == "MatMul" and inputs[0].ndim >= 1:
        return 2.0 * out.size * inputs[0].shape[-1]
    if op == "Gemm":
        k = inputs[0].shape[0] if attrs.get("transA") else inputs[0].shape[-1]
        return 2.0 * out.size * k
    if op in ("Conv", "ConvTranspose") and inputs[1].ndim >= 3:
        w = inputs[1]
        per_out = int(np.prod(w.shape[1:])) if op == "Conv" else int(np.prod(w.shape[2:])) * w.shape[0] // max(out.shape[1], 1)
        return 2.0 * out.size * per_out
    if op == "Attention" and inputs[0].ndim >= 3:
        q, k = inputs[0], inputs[1]
        return 4.0 * q.size * (k.shape[-2] if k.ndim == 4 else k.shape[1])
    if op in _ELEMENTWISE:
        return float(out.size)
    if op in _PER_INPUT and inputs and isinstance(inputs[0], np.ndarray):
        return float(_PER_INPUT[op] * inputs[0].size)
    return 0.0
