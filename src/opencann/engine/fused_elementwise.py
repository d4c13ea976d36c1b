"""One tile kernel for any fused chain of elementwise ops: the chain is a small expression program,
a constexpr of the kernel, evaluated while the kernel is traced, so each distinct chain compiles to
straight-line C with one load per input and one store.

A program is a tuple of instructions; instruction i defines value i:

    ("in", k)            input k (loaded with its own broadcast strides)
    ("c", 0.5)           a float32 constant
    ("add", i, j)        a binary op of two earlier values (see BINARY)
    ("erf", i)           a unary op of an earlier value (see UNARY)
    ("where", c, i, j)   value i where value c holds, else value j (ONNX Where)

Inputs are float32, except an input read only as a `where` condition, which is bool (loaded as
stored, one byte per element).

The last instruction is the result; `extra` names up to three more instructions whose values are
stored too (a fused group whose intermediates are read elsewhere: one pass instead of one kernel
per value). Like the library's binary kernel, the launcher folds NumPy broadcasting into at most
three dims (0 strides along broadcast dims, specialized constants).

    >>> prog = (("in", 0), ("c", 2.0), ("mul", 0, 1), ("erf", 2))
    >>> ElementwiseProgram(prog, 1)(np.ones(3, np.float32))            # doctest: +SKIP
    array([0.9953223, 0.9953223, 0.9953223], dtype=float32)
"""

from __future__ import annotations

import math

import numpy as np

from opencann import tile
from opencann.ops.math.kernels.elementwise import broadcast_strides, collapse_dims

__all__ = [
    "BINARY",
    "MAX_EXTRA",
    "MAX_INPUTS",
    "TERNARY",
    "UNARY",
    "ElementwiseProgram",
    "evaluate_numpy",
    "fused_elementwise_kernel",
]

MAX_INPUTS = 4
BLOCK = 2048
BINARY = ("add", "sub", "mul", "div", "pow", "max", "min")
TERNARY = ("where",)
UNARY = ("neg", "abs", "exp", "log", "sqrt", "tanh", "erf", "sigmoid", "relu", "floor", "ceil",
         "reciprocal")


def _binary(op, x, y):
    if op == "add":
        return x + y
    if op == "sub":
        return x - y
    if op == "mul":
        return x * y
    if op == "div":
        return x / y
    if op == "max":
        return tile.maximum(x, y)
    if op == "min":
        return tile.minimum(x, y)
    if isinstance(y, float):  # small integer powers as products: exact and cheaper than powf
        if y == 1.0:
            return x
        if y == 2.0:
            return x * x
        if y == 3.0:
            return x * x * x
        if y == 0.5:  # as NumPy's power does: sqrt(-inf) is NaN and sqrt(-0) is -0
            return tile.sqrt(x)
    return x ** y


def _unary(op, x):
    if op == "neg":
        return -x
    if op == "relu":
        return tile.maximum(x, 0.0)
    if op == "reciprocal":
        return 1.0 / x
    return getattr(tile, op)(x)


def _evaluate(program, inputs, strides, r0, r1, cols, mask):
    vals = []
    for ins in program:
        kind = ins[0]
        if kind == "in":
            k = ins[1]
            s0, s1, s2 = strides[k]
            vals.append(tile.load(inputs[k] + r0 * s0 + r1 * s1 + cols * s2, mask=mask))
        elif kind == "c":
            vals.append(float(ins[1]))
        elif kind in BINARY:
            vals.append(_binary(kind, vals[ins[1]], vals[ins[2]]))
        elif kind == "where":
            a, b = vals[ins[2]], vals[ins[3]]
            if not isinstance(a, tile.Tile) and not isinstance(b, tile.Tile):
                a = tile.full(cols.shape, a, tile.float32)  # both branches constants
            vals.append(tile.where(vals[ins[1]], a, b))
        else:
            vals.append(_unary(kind, vals[ins[1]]))
    return vals


def input_dtypes(program, n_inputs: int) -> tuple:
    """The dtype each input is loaded as: bool for an input read only as a `where` condition,
    float32 otherwise (a float condition is tested against zero, as NumPy's where does)."""
    cond: set[int] = set()
    other: set[int] = set()
    ins = {i: p[1] for i, p in enumerate(program) if p[0] == "in"}
    for p in program:
        if p[0] == "in" or p[0] == "c":
            continue
        for pos, j in enumerate(p[1:]):
            if j in ins:
                (cond if p[0] == "where" and pos == 0 else other).add(ins[j])
    return tuple(np.bool_ if k in cond and k not in other else np.float32 for k in range(n_inputs))


MAX_EXTRA = 3


@tile.kernel(do_not_specialize=("D1", "C"))
def fused_elementwise_kernel(out, x0, x1, x2, x3, D1, C, s00, s01, s02, s10, s11, s12,
                             s20, s21, s22, s30, s31, s32, o1, o2, o3, PROGRAM: tile.constexpr,
                             BLOCK: tile.constexpr, EXTRA: tile.constexpr = ()):
    r = tile.program_id(1)
    r0 = r // D1
    r1 = r % D1
    cols = tile.program_id(0) * BLOCK + tile.arange(0, BLOCK)
    m = cols < C
    vals = _evaluate(PROGRAM, (x0, x1, x2, x3), ((s00, s01, s02), (s10, s11, s12),
                                                 (s20, s21, s22), (s30, s31, s32)), r0, r1, cols, m)
    tile.store(out + r * C + cols, vals[-1], mask=m)
    outs = (o1, o2, o3)
    for k, i in enumerate(EXTRA):
        tile.store(outs[k] + r * C + cols, vals[i], mask=m)


_NP_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
              "pow": np.power, "max": np.maximum, "min": np.minimum}


def _np_unary(op, x):
    return {"neg": np.negative, "abs": np.abs, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
            "tanh": np.tanh, "erf": np.vectorize(math.erf, otypes=[np.float64]), "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
            "relu": lambda v: np.maximum(v, 0), "floor": np.floor, "ceil": np.ceil,
            "reciprocal": lambda v: 1.0 / v}[op](x)


def evaluate_numpy(program, inputs):
    """The program evaluated by NumPy in float64 (for recognising activations numerically)."""
    vals = []
    with np.errstate(all="ignore"):
        for ins in program:
            kind = ins[0]
            if kind == "in":
                vals.append(np.asarray(inputs[ins[1]], np.float64))
            elif kind == "c":
                vals.append(np.float64(ins[1]))
            elif kind in BINARY:
                vals.append(_NP_BINARY[kind](vals[ins[1]], vals[ins[2]]))
            elif kind == "where":
                vals.append(np.where(vals[ins[1]] != 0, vals[ins[2]], vals[ins[3]]))
            else:
                vals.append(_np_unary(kind, vals[ins[1]]))
    return vals[-1]


class ElementwiseProgram:
    """A compiled-on-first-use fused elementwise kernel for one program over `n_inputs` inputs
    (float32, or bool where `input_dtypes` says). Calling it with arrays returns a new float32
    array (or fills `out`)."""

    def __init__(self, program: tuple, n_inputs: int, name: str = "fused_elementwise",
                 extra: tuple = ()):
        if n_inputs > MAX_INPUTS:
            raise ValueError(f"a fused elementwise kernel takes at most {MAX_INPUTS} inputs")
        if len(extra) > MAX_EXTRA:
            raise ValueError(f"a fused elementwise kernel stores at most {MAX_EXTRA} extra values")
        self.extra = tuple(int(i) for i in extra)
        self.program = tuple(program)
        self.n_inputs = n_inputs
        self.dtypes = input_dtypes(self.program, n_inputs)
        self.name = name
        self._plans: dict = {}

    def _plan(self, shapes):
        out_shape = np.broadcast_shapes(*shapes)
        size = int(np.prod(out_shape, dtype=np.int64))
        strides = [broadcast_strides(s, out_shape) for s in shapes]
        dims = collapse_dims(out_shape, strides)
        materialize = len(dims) > 3
        if materialize:  # rare: broadcast every input to the output shape first
            dims = [(size, [1] * len(shapes))]
        dims = [(1, [0] * len(shapes))] * (3 - len(dims)) + dims
        (d0, st0), (d1, st1), (c, st2) = dims
        grid = (-(-c // BLOCK), d0 * d1, 1)
        scalars = [d1, c]
        for k in range(MAX_INPUTS):
            scalars += [st0[k], st1[k], st2[k]] if k < len(shapes) else [0, 0, 0]
        return out_shape, size, grid, scalars, materialize, None

    def __call__(self, *inputs, out=None):
        """The result, a new float32 array (or `out` filled); with `extra`, a tuple of the result
        and the extra values, each of the result's shape."""
        shapes = tuple(x.shape for x in inputs)
        plan = self._plans.get(shapes)
        if plan is None:
            plan = self._plans[shapes] = self._plan(shapes)
        out_shape, size, grid, scalars, materialize, prepared = plan
        if out is None:
            out = np.empty(out_shape, np.float32)
        extras = [np.empty(out_shape, np.float32) for _ in self.extra]
        if size == 0:
            return (out, *extras) if self.extra else out
        arrays = [np.ascontiguousarray(x, dt) for x, dt in zip(inputs, self.dtypes)]
        if materialize:
            arrays = [np.ascontiguousarray(np.broadcast_to(x, out_shape)) for x in arrays]
        if prepared is None:
            args = ([out, *arrays] + [None] * (MAX_INPUTS - len(arrays)) + scalars + extras
                    + [None] * (MAX_EXTRA - len(extras)))
            prog = fused_elementwise_kernel.warmup(*args, PROGRAM=self.program, BLOCK=BLOCK,
                                                   EXTRA=self.extra)
            prepared = prog.fn
            self._plans[shapes] = (out_shape, size, grid, scalars, materialize, prepared)
        prepared(*grid, out.ctypes.data, *[a.ctypes.data for a in arrays], *scalars,
                 *[e.ctypes.data for e in extras])
        return (out, *extras) if self.extra else out
