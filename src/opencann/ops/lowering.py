"""Lowering of single nodes to the `cpu` backend: an op's `OpDef.kernels["cpu"]` is a function
(node, attrs) that returns a `Lowered` step (a callable over the node's runtime inputs, calling the
tile-language kernels' launchers) or a string saying why the node does not fit (it then runs its
NumPy reference). Each family registers its ops' lowerings with `defkernel` in its `lower_cpu.py`
(`math/`: MatMul, Gemm, Reduce*; `nn/`: Conv, pools, Softmax, LayerNormalization; `tensor/`:
ScatterND); `lower` asks the op's definition for one.

Fused groups (GEMM epilogues, elementwise chains, attention) are built by the graph engine's
fusion; these kernels cover what runs one node per kernel.

    >>> low = lower(node, op, attrs)                 # doctest: +SKIP
    >>> low.fn(x, w) if isinstance(low, Lowered) else print("falls back:", low)  # doctest: +SKIP

A library launcher (`gemm`, `layer_norm`, ...) binds its arguments, derives the specialization and
looks up the compiled program on every call: tens of microseconds of Python per launch. For a
step that runs the same shapes again and again, `tile.kernel.Prepared` does that work once per
shape and keeps the program's entry point and its scalar arguments, so a launch is one C call with
fresh data pointers. `Checked` guards the shortcut: the first call for a shape runs the library
launcher and the prepared launch side by side and keeps the prepared one only when both give
bit-identical results (so a launcher that changes its kernel's arguments costs speed, never
correctness).

    >>> p = Prepared(kernel, grid, args, meta)     # doctest: +SKIP
    >>> p(a, b, out)                                # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import dtypes
from ..ir import Node, TensorType, Value
from .registry import OpDef

__all__ = ["Checked", "Lowered", "const_of", "f32_all", "f32_ranked", "is_f32", "lower", "rank"]


@dataclass
class Lowered:
    """A node (or fused group) made into one step: `fn(*arrays of inputs) -> tuple of outputs`."""

    fn: Callable
    inputs: list[Value]
    kernel: str
    outputs: int = 1  # how many of the node's outputs `fn` returns


def lower(node: Node, op: OpDef, attrs: dict) -> Lowered | str:
    """A cpu step for `node` (bound to its definition `op`, with `attrs` resolved), or the reason
    it runs its reference. (Elementwise ops are lowered by the engine's fusion as fused
    elementwise kernels.)"""
    f = op.kernels.get("cpu")
    if f is None:
        return f"domain {node.domain!r} has no cpu kernels" if op.domain else "no cpu kernel for this op"
    return f(node, attrs)


def is_f32(v: Value | None) -> bool:
    return v is not None and isinstance(v.type, TensorType) and v.type.dtype == dtypes.float32


def const_of(v: Value | None):
    return None if v is None else v.const


def rank(v: Value) -> int | None:
    return None if not isinstance(v.type, TensorType) or v.type.shape is None else len(v.type.shape)


def f32_ranked(node: Node, n_in: int | None = None) -> tuple[int, None] | tuple[None, str]:
    """(rank of the first input, None) when the node's operands are float32 and that rank is
    known and not 0, else (None, why not)."""
    bad = f32_all(node, n_in)
    if bad:
        return None, bad
    r = rank(node.inputs[0])
    if r is None or r == 0:
        return None, "rank unknown"
    return r, None


def f32_all(node: Node, n_in: int | None = None) -> str | None:
    ins = [v for v in node.inputs[:n_in] if v is not None]
    bad = [v for v in ins + node.outputs[:1] if not is_f32(v)]
    if bad:
        return f"needs float32, has {', '.join(repr(v.type) for v in bad)}"
    return None


class Checked:
    """A step function with a fast path per input-shape key: `prepare(*inputs)` returns
    `(run, out_shape)` where `run(out, *inputs)` fills `out` with prepared launches (or raises
    to refuse the shape); `slow(*inputs)` is the library-launcher path. The fast path is used
    for a shape once it matched the slow one bit for bit."""

    def __init__(self, key, prepare, slow):
        self.key = key
        self.prepare = prepare
        self.slow = slow
        self.fast: dict = {}

    def into(self, out, *inputs) -> bool:
        """Write into `out` (an arena buffer) when this shape has a fast path giving out's shape."""
        fast = self.fast.get(self.key(*inputs))
        if fast is None or fast[0] is False or fast[1] != out.shape:
            return False
        fast[0](out, *inputs)
        return True

    def __call__(self, *inputs):
        k = self.key(*inputs)
        fast = self.fast.get(k)
        if fast is not None:
            run, shape = fast
            if run is not False:
                out = np.empty(shape, np.float32)
                run(out, *inputs)
                return (out,)
            return self.slow(*inputs)
        want = self.slow(*inputs)
        try:
            run, shape = self.prepare(*inputs)
            out = np.empty(shape, np.float32)
            run(out, *inputs)
            ok = out.shape == want[0].shape and np.array_equal(out, want[0], equal_nan=True)
        except Exception:  # noqa: BLE001 - any mismatch with the launcher keeps the launcher
            ok = False
        self.fast[k] = (run, shape) if ok else (False, None)
        return want
