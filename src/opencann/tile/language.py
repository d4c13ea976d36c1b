"""The tile language: what a kernel body calls (Triton's names where the meaning is the same).

Every function here checks shapes and dtypes, then hands the operation to the builder of the current
context: the tracer (which records kernel IR for a code generator) or the interpreter (which computes
it with NumPy). One kernel body therefore has one meaning under both.

Types: tiles hold float32, float16, bfloat16, int32, int64, int8, uint8 or bool elements. float16 and
bfloat16 are storage types: arithmetic on them is done in float32 (`x.to(tile.float16)` rounds).
Python numbers are weakly typed: `x + 1` keeps x's dtype; `i + 0.5` with an int tile gives float32.
Integer `//` and `%` follow C (truncate toward zero), as in Triton.
"""

from __future__ import annotations

import builtins
import threading

import numpy as np

from .. import dtypes as _dt
from .errors import TileError, error
from .ir import COMPARE, PtrType

__all__ = [
    "constexpr", "Tile", "program_id", "num_programs", "arange", "zeros", "full", "zeros_like",
    "load", "store", "where", "exp", "log", "sqrt", "rsqrt", "tanh", "erf", "sigmoid", "abs",
    "floor", "ceil", "cos", "sin", "minimum", "maximum", "sum", "max", "min", "argmax", "dot",
    "trans", "reshape", "expand_dims", "broadcast_to", "cast", "cdiv", "static_range", "range",
    "multiple_of", "is_float_storage", "make_block_ptr", "advance", "BlockPointer",
    "SUPPORTED_DTYPES", "UNDEFINED", "float32", "float16", "bfloat16", "int32",
    "int64", "int8", "uint8", "bool_",
]

float32, float16, bfloat16 = _dt.float32, _dt.float16, _dt.bfloat16
int32, int64, int8, uint8, bool_ = _dt.int32, _dt.int64, _dt.int8, _dt.uint8, _dt.bool_
SUPPORTED_DTYPES = (float32, float16, bfloat16, int32, int64, int8, uint8, bool_)
_FLOATS = (float32, float16, bfloat16)


class constexpr:
    """Marks a kernel parameter as a compile-time constant: `BLOCK: tile.constexpr`.

    A constexpr reaches the kernel body as a plain Python value, so it can size tiles and steer
    Python `if`s; each distinct value compiles its own kernel.
    """

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return f"constexpr({self.value!r})"


class _Undefined:
    """Value of a variable first assigned inside a tile loop, read after the loop."""

    def _fail(self, *a, **k):
        raise error("a variable first assigned inside a tile loop is read outside it; "
                    "assign it before the loop")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = _fail
    __getitem__ = __getattr__ = __bool__ = __lt__ = __gt__ = __le__ = __ge__ = _fail

    def __repr__(self):
        return "UNDEFINED"


UNDEFINED = _Undefined.__new__(_Undefined)


# --- the context: which builder runs the kernel body -----------------------------------------

class _Context(threading.local):
    builder = None


CONTEXT = _Context()


def builder():
    """The builder of the current context (tracer or interpreter)."""
    b = CONTEXT.builder
    if b is None:
        raise TileError("tile language functions run only inside a @tile.kernel being launched, "
                        "traced or interpreted")
    return b


# --- tiles -------------------------------------------------------------------------------------

class Tile:
    """A tile value in a kernel: an n-d block of `dtype` elements of a constexpr `shape`.

    `h` is the builder's handle: an IR value when tracing, a NumPy array when interpreting.
    Pointer tiles (dtype `PtrType`) also keep `base`, the tensor they point into (interpreter).
    """

    __slots__ = ("h", "dtype", "shape", "base")

    def __init__(self, h, dtype, shape, base=None):
        self.h, self.dtype, self.shape, self.base = h, dtype, tuple(shape), base

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __repr__(self):
        ty = self.dtype.name
        return f"Tile({ty}[{', '.join(map(str, self.shape))}])"

    def type_str(self) -> str:
        return f"{self.dtype.name}[{','.join(map(str, self.shape))}]" if self.shape else self.dtype.name

    # Python control flow cannot branch on a value known only at run time
    def __bool__(self):
        raise error("a runtime tile value cannot steer Python control flow (if/while/and/or); "
                    "use tile.where or `&`/`|`, or make the value a tile.constexpr")

    def __index__(self):
        raise error(f"a runtime value ({self.type_str()}) is used where a constant is needed; "
                    "make it a tile.constexpr parameter")

    __hash__ = object.__hash__

    def __add__(self, o): return _binary("add", self, o)
    def __radd__(self, o): return _binary("add", o, self)
    def __sub__(self, o): return _binary("sub", self, o)
    def __rsub__(self, o): return _binary("sub", o, self)
    def __mul__(self, o): return _binary("mul", self, o)
    def __rmul__(self, o): return _binary("mul", o, self)
    def __truediv__(self, o): return _binary("div", self, o)
    def __rtruediv__(self, o): return _binary("div", o, self)
    def __floordiv__(self, o): return _binary("floordiv", self, o)
    def __rfloordiv__(self, o): return _binary("floordiv", o, self)
    def __mod__(self, o): return _binary("mod", self, o)
    def __rmod__(self, o): return _binary("mod", o, self)
    def __pow__(self, o): return _binary("pow", self, o)
    def __and__(self, o): return _binary("and", self, o)
    def __rand__(self, o): return _binary("and", o, self)
    def __or__(self, o): return _binary("or", self, o)
    def __ror__(self, o): return _binary("or", o, self)
    def __xor__(self, o): return _binary("xor", self, o)
    def __rxor__(self, o): return _binary("xor", o, self)
    def __lt__(self, o): return _binary("lt", self, o)
    def __le__(self, o): return _binary("le", self, o)
    def __gt__(self, o): return _binary("gt", self, o)
    def __ge__(self, o): return _binary("ge", self, o)
    def __eq__(self, o): return _binary("eq", self, o)
    def __ne__(self, o): return _binary("ne", self, o)
    def __neg__(self): return _unary("neg", self)
    def __pos__(self): return self
    def __invert__(self): return _unary("not", self)
    def __abs__(self): return _unary("abs", self)

    def __getitem__(self, key):
        """`x[:, None]`, `x[None, :]`: insert unit dims (the only indexing tiles support)."""
        key = key if isinstance(key, tuple) else (key,)
        shape, src = [], iter(self.shape)
        for k in key:
            if k is None:
                shape.append(1)
            elif isinstance(k, slice) and k == slice(None):
                try:
                    shape.append(next(src))
                except StopIteration:
                    raise error(f"too many indices for a tile of shape {self.shape}") from None
            else:
                raise error(f"tiles support only `None` and `:` indices (got {k!r}); "
                            "load a different block instead")
        shape.extend(src)
        return _view(self, tuple(shape))

    def to(self, dtype, **_):
        return cast(self, dtype)

    def sum(self, axis=None, keep_dims=False): return sum(self, axis, keep_dims)
    def max(self, axis=None, keep_dims=False): return max(self, axis, keep_dims)
    def min(self, axis=None, keep_dims=False): return min(self, axis, keep_dims)
    def argmax(self, axis, keep_dims=False): return argmax(self, axis, keep_dims)
    def reshape(self, *shape): return reshape(self, shape[0] if len(shape) == 1 else shape)

    @property
    def T(self):
        return trans(self)


# --- helpers -------------------------------------------------------------------------------------

def _emit(op, srcs, dtype, shape, arg=None, base=None) -> Tile:
    return builder().emit(op, srcs, dtype, tuple(shape), arg, base)


def _check_dtype(d):
    if isinstance(d, str):
        d = _dt.by_name(d)
    if isinstance(d, np.dtype) or (isinstance(d, type) and issubclass(d, np.generic)):
        d = _dt.from_numpy(d)
    if d not in SUPPORTED_DTYPES:
        raise error(f"dtype {d} is not supported by the tile language "
                    f"(supported: {', '.join(x.name for x in SUPPORTED_DTYPES)})")
    return d


def _const(value, dtype) -> Tile:
    return _emit("const", (), dtype, (), _py(value, dtype))


def _py(value, dtype):
    if dtype is bool_:
        return bool(value)
    if dtype.is_float:
        return float(value)
    return int(value)


def _is_py_number(x) -> bool:
    return isinstance(x, (bool, int, float, np.number, np.bool_))


def _lift(x, like=None) -> Tile:
    """A Python number as a scalar tile; weakly typed against `like`'s dtype."""
    if isinstance(x, Tile):
        return x
    if isinstance(x, constexpr):
        x = x.value
    if x is UNDEFINED:
        UNDEFINED._fail()
    if isinstance(x, (bool, np.bool_)):
        return _const(x, bool_)
    if isinstance(x, (int, np.integer)):
        if like is not None and not isinstance(like.dtype, PtrType) and like.dtype is not bool_:
            return _const(x, float32 if like.dtype in _FLOATS else like.dtype)
        return _const(x, int32 if -2**31 <= int(x) < 2**31 else int64)
    if isinstance(x, (float, np.floating)):
        return _const(x, float32)
    raise error(f"cannot use {type(x).__name__} {x!r} as a tile value")


def _promote(a, b):
    if a in _FLOATS or b in _FLOATS:
        return float32
    if a is int64 or b is int64:
        return int64
    if a is bool_ and b is bool_:
        return bool_
    return int32


def _broadcast_shape(*shapes):
    nd = builtins.max(len(s) for s in shapes)
    out = []
    for i in builtins.range(nd):
        dims = {s[i - nd + len(s)] for s in shapes if i - nd + len(s) >= 0} - {1}
        if len(dims) > 1:
            raise error("tile shapes do not broadcast: " + " vs ".join(str(list(s)) for s in shapes))
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def _view(x: Tile, shape) -> Tile:
    """Reshape x to `shape` (same elements; used for inserting and removing unit dims)."""
    if tuple(shape) == x.shape:
        return x
    return _emit("view", (x,), x.dtype, shape, tuple(shape), base=x.base)


def _rank(x: Tile, nd: int) -> Tile:
    return _view(x, (1,) * (nd - x.ndim) + x.shape) if x.ndim < nd else x


def _expand_to(x: Tile, shape, what: str) -> Tile:
    """x made to have `shape` by broadcasting (error if it cannot)."""
    if x.ndim > len(shape) or _broadcast_shape(x.shape, shape) != tuple(shape):
        raise error(f"{what} of shape {list(x.shape)} does not broadcast to {list(shape)}")
    x = _rank(x, len(shape))
    if x.shape != tuple(shape):
        x = _emit("broadcast", (x,), x.dtype, shape, tuple(shape), base=x.base)
    return x


def cast(x, dtype) -> Tile:
    """x converted to `dtype` (floats to ints truncate; float to float16/bfloat16 rounds)."""
    dtype = _check_dtype(dtype)
    x = _lift(x)
    if isinstance(x.dtype, PtrType):
        raise error("pointers cannot be cast")
    if x.dtype is dtype:
        return x
    return _emit("cast", (x,), dtype, x.shape, dtype)


def _binary(op, a, b) -> Tile:
    if not isinstance(a, Tile) and not isinstance(b, Tile):
        a = _lift(a)
    a = _lift(a, b if isinstance(b, Tile) else None)
    b = _lift(b, a)
    if isinstance(a.dtype, PtrType) or isinstance(b.dtype, PtrType):
        return _pointer_arith(op, a, b)
    cd = _promote(a.dtype, b.dtype)
    if op in ("and", "or", "xor"):
        if cd is float32:
            raise error(f"`{op}` needs integer or bool tiles, got {a.dtype} and {b.dtype}")
    elif op not in COMPARE and cd is bool_:
        cd = int32
    if op == "div" and cd is not float32:
        cd = float32
    a, b = cast(a, cd), cast(b, cd)
    shape = _broadcast_shape(a.shape, b.shape)
    a, b = _rank(a, len(shape)), _rank(b, len(shape))
    return _emit(op, (a, b), bool_ if op in COMPARE else cd, shape)


def _pointer_arith(op, a, b) -> Tile:
    if op == "add" and isinstance(b.dtype, PtrType):
        a, b = b, a
    if op not in ("add", "sub") or isinstance(b.dtype, PtrType) or not b.dtype.is_int:
        raise error(f"pointer arithmetic supports `pointer + int tile` only (got {op} of "
                    f"{a.type_str()} and {b.type_str()})")
    if op == "sub":
        b = _unary("neg", b)
    shape = _broadcast_shape(a.shape, b.shape)
    a, b = _rank(a, len(shape)), _rank(b, len(shape))
    return _emit("addptr", (a, b), a.dtype, shape, base=a.base)


def _unary(op, x) -> Tile:
    x = _lift(x)
    if isinstance(x.dtype, PtrType):
        raise error(f"`{op}` does not apply to pointers")
    if op == "not":
        if x.dtype in _FLOATS:
            raise error("`~` needs an integer or bool tile")
        return _emit(op, (x,), x.dtype, x.shape)
    if op in ("neg", "abs"):
        d = float32 if x.dtype in _FLOATS else (int32 if x.dtype in (bool_, int8, uint8) else x.dtype)
        x = cast(x, d)
        return _emit(op, (x,), d, x.shape)
    x = cast(x, float32)
    return _emit(op, (x,), float32, x.shape)


def _int_const(x, what):
    if isinstance(x, constexpr):
        x = x.value
    if isinstance(x, Tile):
        raise error(f"{what} must be a constant, but it is a runtime value ({x.type_str()}); "
                    "make it a tile.constexpr parameter")
    if not isinstance(x, (int, np.integer)) or isinstance(x, bool):
        raise error(f"{what} must be an int, got {x!r}")
    return int(x)


def _shape_const(shape, what="shape"):
    if isinstance(shape, (int, np.integer, Tile, constexpr)):
        shape = (shape,)
    return tuple(_int_const(s, f"{what} entry") for s in shape)


# --- the public functions ---------------------------------------------------------------------

def program_id(axis: int) -> Tile:
    """This program's index along launch-grid `axis` (0, 1 or 2), an int32 scalar."""
    axis = _int_const(axis, "program_id axis")
    if axis not in (0, 1, 2):
        raise error(f"program_id axis must be 0, 1 or 2, got {axis}")
    return _emit("program_id", (), int32, (), axis)


def num_programs(axis: int) -> Tile:
    """The launch grid's size along `axis`, an int32 scalar."""
    axis = _int_const(axis, "num_programs axis")
    if axis not in (0, 1, 2):
        raise error(f"num_programs axis must be 0, 1 or 2, got {axis}")
    return _emit("num_programs", (), int32, (), axis)


def arange(start, end=None) -> Tile:
    """The int32 tile [start, start+1, ..., end-1]; both bounds constexpr."""
    if end is None:
        start, end = 0, start
    start, end = _int_const(start, "arange start"), _int_const(end, "arange end")
    if end < start:
        raise error(f"arange({start}, {end}) is empty or reversed")
    return _emit("arange", (), int32, (end - start,), start)


def full(shape, value, dtype=float32) -> Tile:
    """A tile of constexpr `shape` filled with `value` (a number or a scalar tile)."""
    shape = _shape_const(shape)
    dtype = _check_dtype(dtype)
    if isinstance(value, Tile):
        if value.shape != ():
            raise error("full() needs a scalar fill value")
        return _expand_to(cast(value, dtype), shape, "fill value")
    if isinstance(value, constexpr):
        value = value.value
    return _emit("full", (), dtype, shape, _py(value, dtype))


def zeros(shape, dtype=float32) -> Tile:
    """A tile of constexpr `shape` filled with zeros."""
    return full(shape, 0, dtype)


def zeros_like(x: Tile) -> Tile:
    """A tile of zeros with x's shape and dtype."""
    return full(x.shape, 0, x.dtype)


def load(pointer, mask=None, other=None, boundary_check=(), padding_option="zero", **_) -> Tile:
    """Elements at `pointer` (a pointer tile); where `mask` is False, `other` (default 0) instead.

    An unmasked element outside its tensor is an error (the interpreter raises, naming the line).
    `pointer` may also be a block pointer (`make_block_ptr`): then `boundary_check` names the dims
    checked against the tensor's shape, and out-of-bounds elements read 0 (`padding_option="nan"`:
    NaN).
    """
    if isinstance(pointer, BlockPointer):
        pointer, mask = pointer._pointers(boundary_check)
        if mask is not None:
            other = float("nan") if padding_option == "nan" else 0
    if not isinstance(pointer, Tile) or not isinstance(pointer.dtype, PtrType):
        raise error(f"load() needs a pointer tile (tensor argument + offsets), got {pointer!r}")
    d = pointer.dtype.elem
    if mask is None:
        if other is not None:
            raise error("load(other=...) needs a mask")
        return builder().load(pointer, None, None)
    m = _expand_to(_lift(mask), pointer.shape, "load mask")
    if m.dtype is not bool_:
        raise error(f"load mask must be bool, got {m.dtype}")
    o = cast(_lift(0 if other is None else other), d)
    o = _expand_to(o, pointer.shape, "load `other`") if o.shape else o
    return builder().load(pointer, m, o)


def store(pointer, value, mask=None, boundary_check=(), **_) -> None:
    """Write `value` (converted to the tensor's dtype) at `pointer` where `mask` is True.

    With a block pointer, elements outside the dims named in `boundary_check` are not written.
    """
    if isinstance(pointer, BlockPointer):
        pointer, mask = pointer._pointers(boundary_check)
    if not isinstance(pointer, Tile) or not isinstance(pointer.dtype, PtrType):
        raise error(f"store() needs a pointer tile (tensor argument + offsets), got {pointer!r}")
    v = _lift(value)
    if isinstance(v.dtype, PtrType):
        raise error("cannot store a pointer")
    v = cast(v, pointer.dtype.elem)
    v = _expand_to(v, pointer.shape, "stored value") if v.shape != pointer.shape else v
    m = None
    if mask is not None:
        m = _expand_to(_lift(mask), pointer.shape, "store mask")
        if m.dtype is not bool_:
            raise error(f"store mask must be bool, got {m.dtype}")
    builder().store(pointer, v, m)


class BlockPointer:
    """A block of `block_shape` elements at `offsets` of an n-d tensor (`make_block_ptr`).

    Loads and stores through it compute the element pointers and bounds masks; `advance` moves it.
    It can be carried through a tile loop (its offsets are the loop-carried values).
    """

    def __init__(self, base, shape, strides, offsets, block_shape, order):
        self.base, self.shape, self.strides = base, tuple(shape), tuple(strides)
        self.offsets, self.block_shape, self.order = tuple(offsets), tuple(block_shape), order

    def __repr__(self):
        return f"BlockPointer(block {list(self.block_shape)})"

    def _replace(self, offsets):
        return BlockPointer(self.base, self.shape, self.strides, offsets, self.block_shape,
                            self.order)

    def _pointers(self, boundary_check):
        nd = len(self.block_shape)
        ptr, mask = self.base, None
        for d in builtins.range(nd):
            idx = self.offsets[d] + arange(0, self.block_shape[d])
            idx = _view(idx, tuple(self.block_shape[d] if e == d else 1 for e in builtins.range(nd)))
            ptr = ptr + idx * self.strides[d]
            if d in tuple(boundary_check):
                m = (idx >= 0) & (idx < self.shape[d])
                mask = m if mask is None else mask & m
        return _expand_to(ptr, self.block_shape, "block pointer"), mask


def make_block_ptr(base, shape, strides, offsets, block_shape, order=None) -> BlockPointer:
    """A block pointer into the tensor at `base` (a tensor argument) of `shape` and `strides`
    (runtime values), for the block at `offsets` of constexpr `block_shape`."""
    if not isinstance(base, Tile) or not isinstance(base.dtype, PtrType) or base.shape != ():
        raise error("make_block_ptr needs a tensor argument as its base")
    block_shape = _shape_const(block_shape, "block_shape")
    if not len(shape) == len(strides) == len(offsets) == len(block_shape):
        raise error("make_block_ptr: shape, strides, offsets and block_shape need one entry per dim")
    return BlockPointer(base, shape, strides, offsets, block_shape, order)


def advance(pointer: BlockPointer, offsets) -> BlockPointer:
    """The block pointer moved by `offsets` (one per dim)."""
    if not isinstance(pointer, BlockPointer):
        raise error("advance() needs a block pointer (make_block_ptr)")
    if len(offsets) != len(pointer.offsets):
        raise error(f"advance needs {len(pointer.offsets)} offsets, got {len(offsets)}")
    return pointer._replace(tuple(o + d for o, d in zip(pointer.offsets, offsets)))


def flatten_carried(x):
    """Loop-carried leaves of a value (a block pointer carries its offsets) and how to rebuild it."""
    if isinstance(x, BlockPointer):
        return list(x.offsets), (lambda leaves, x=x: x._replace(tuple(leaves)))
    return [x], (lambda leaves: leaves[0])


def where(condition, x, y) -> Tile:
    """Elementwise `x if condition else y`, broadcasting all three."""
    c = _lift(condition)
    if c.dtype is not bool_:
        c = c != 0
    if not isinstance(x, Tile) and not isinstance(y, Tile):
        x = _lift(x)
    x = _lift(x, y if isinstance(y, Tile) else None)
    y = _lift(y, x)
    if isinstance(x.dtype, PtrType) or isinstance(y.dtype, PtrType):
        raise error("where() on pointers is not supported; select the offsets instead")
    d = _promote(x.dtype, y.dtype)
    x, y = cast(x, d), cast(y, d)
    shape = _broadcast_shape(c.shape, x.shape, y.shape)
    c, x, y = (_rank(t, len(shape)) for t in (c, x, y))
    return _emit("where", (c, x, y), d, shape)


def exp(x):
    """e ** x (float32)."""
    return _unary("exp", x)


def log(x):
    """Natural logarithm (float32)."""
    return _unary("log", x)


def sqrt(x):
    """Square root (float32)."""
    return _unary("sqrt", x)


def rsqrt(x):
    """1 / sqrt(x) (float32)."""
    return _unary("rsqrt", x)


def tanh(x):
    """Hyperbolic tangent (float32)."""
    return _unary("tanh", x)


def erf(x):
    """The error function (float32)."""
    return _unary("erf", x)


def sigmoid(x):
    """1 / (1 + exp(-x)) (float32)."""
    return _unary("sigmoid", x)


def floor(x):
    """Largest integer <= x, as float32."""
    return _unary("floor", x)


def ceil(x):
    """Smallest integer >= x, as float32."""
    return _unary("ceil", x)


def cos(x):
    """Cosine (float32)."""
    return _unary("cos", x)


def sin(x):
    """Sine (float32)."""
    return _unary("sin", x)


def abs(x):  # noqa: A001 - the language's name
    """|x|."""
    return _unary("abs", x)


def minimum(x, y):
    """Elementwise minimum, broadcasting."""
    return _binary("min", x, y)


def maximum(x, y):
    """Elementwise maximum, broadcasting."""
    return _binary("max", x, y)


def _reduce(kind, x, axis, keep_dims):
    x = _lift(x)
    if isinstance(x.dtype, PtrType):
        raise error("cannot reduce pointers")
    if axis is None:
        x = _view(x, (x.numel,)) if x.ndim != 1 else x
        axis = 0
        keep_dims = False
    axis = _int_const(axis, "reduction axis")
    if not -x.ndim <= axis < x.ndim:
        raise error(f"reduction axis {axis} out of range for a tile of shape {list(x.shape)}")
    axis %= x.ndim
    if x.dtype in _FLOATS:
        x = cast(x, float32)
    elif x.dtype in (bool_, int8, uint8) and kind == "sum":
        x = cast(x, int32)
    out_shape = x.shape[:axis] + x.shape[axis + 1:]
    d = int32 if kind == "argmax" else x.dtype
    r = _emit("reduce", (x,), d, out_shape, (kind, axis))
    if keep_dims:
        r = _view(r, x.shape[:axis] + (1,) + x.shape[axis + 1:])
    return r


def sum(x, axis=None, keep_dims=False):  # noqa: A001
    """Sum along `axis` (all axes if None); float tiles sum in float32."""
    return _reduce("sum", x, axis, keep_dims)


def max(x, axis=None, keep_dims=False):  # noqa: A001
    """Maximum along `axis` (all axes if None)."""
    return _reduce("max", x, axis, keep_dims)


def min(x, axis=None, keep_dims=False):  # noqa: A001
    """Minimum along `axis` (all axes if None)."""
    return _reduce("min", x, axis, keep_dims)


def argmax(x, axis, keep_dims=False):
    """Index (int32) of the first largest element along `axis`."""
    return _reduce("argmax", x, axis, keep_dims)


def dot(a, b, acc=None, **_) -> Tile:
    """`acc + a @ b` for a (M, K) and b (K, N) float tiles, accumulated in float32."""
    a, b = _lift(a), _lift(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise error(f"dot needs (M, K) @ (K, N) tiles, got {list(a.shape)} @ {list(b.shape)}")
    for t in (a, b):
        if t.dtype not in _FLOATS:
            raise error(f"dot supports float tiles only, got {t.dtype}")
    a, b = cast(a, float32), cast(b, float32)
    shape = (a.shape[0], b.shape[1])
    if acc is None:
        return _emit("dot", (a, b), float32, shape)
    acc = _lift(acc)
    if acc.shape != shape or acc.dtype is not float32:
        raise error(f"dot accumulator must be float32{list(shape)}, got {acc.type_str()}")
    return _emit("dot", (a, b, acc), float32, shape)


def trans(x, *dims) -> Tile:
    """x with its axes permuted (default: the two axes of a 2-d tile swapped)."""
    x = _lift(x)
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    perm = tuple(_int_const(d, "trans axis") for d in dims) if dims else tuple(
        builtins.range(x.ndim))[::-1]
    if sorted(perm) != list(builtins.range(x.ndim)):
        raise error(f"trans axes {perm} are not a permutation of a {x.ndim}-d tile's axes")
    if perm == tuple(builtins.range(x.ndim)):
        return x
    return _emit("trans", (x,), x.dtype, tuple(x.shape[p] for p in perm), perm, base=x.base)


def reshape(x, shape) -> Tile:
    """x with constexpr `shape` (same number of elements, row-major order)."""
    shape = _shape_const(shape)
    x = _lift(x)
    if int(np.prod(shape, dtype=np.int64)) != x.numel:
        raise error(f"cannot reshape a tile of shape {list(x.shape)} to {list(shape)}")
    return _view(x, shape)


def expand_dims(x, axis) -> Tile:
    """x with a unit dim inserted at `axis`."""
    x = _lift(x)
    axis = _int_const(axis, "axis") % (x.ndim + 1)
    return _view(x, x.shape[:axis] + (1,) + x.shape[axis:])


def broadcast_to(x, shape) -> Tile:
    """x broadcast to constexpr `shape`."""
    return _expand_to(_lift(x), _shape_const(shape), "tile")


def multiple_of(x, _n):
    """A hint (accepted for Triton compatibility; the cpu backend does not need it)."""
    return x


def is_float_storage(np_dtype) -> bool:
    """Whether arrays of NumPy dtype `np_dtype` are float tiles (float32, float16, bfloat16)."""
    return np.dtype(np_dtype) in (float32.np, float16.np, bfloat16.np)


def cdiv(a, b):
    """Ceiling division, on the host or in a kernel."""
    return (a + b - 1) // b


def static_range(*args):
    """A loop unrolled while tracing; its bounds are constexpr ints."""
    return builtins.range(*(_int_const(a, "static_range bound") for a in args))


def range(*args, **_):  # noqa: A001
    """`for i in tile.range(lo, hi, step)`: a loop whose bounds may be runtime values.

    The kernel decorator rewrites such loops (and `for ... in range(...)`); called anywhere else
    with constant bounds it is Python's range.
    """
    return builtins.range(*(_int_const(a, "range bound") for a in args))


def _check_shapes_equal(name, before: Tile, after: Tile):
    if before.shape != after.shape or before.dtype != after.dtype:
        raise error(f"loop-carried variable '{name}' changes from {before.type_str()} to "
                    f"{after.type_str()} inside the loop; keep its shape and dtype fixed")

