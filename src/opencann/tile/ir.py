"""The kernel IR: what a traced tile kernel is, between the Python surface and the code generators.

A kernel is a `KernelIR`: named parameters and a `Block` of `Value`s in program order. Each `Value`
is one operation with its operands (`srcs`), result dtype and tile shape (a tuple of ints; `()` is a
scalar). Loops are `for` values owning a body `Block` whose parameters are the induction variable and
the loop-carried values, and whose `yields` feed the next iteration; the loop's results are `result`
values. The IR prints as text:

    kernel add(x: *float32, y: *float32, out: *float32, n: int64)  [BLOCK=1024]
      %0 = program_id 0 : int32
      ...
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..dtypes import DType

__all__ = ["PtrType", "Value", "Block", "KernelIR", "UNARY", "BINARY", "COMPARE", "ELEMENTWISE"]

UNARY = frozenset({"neg", "exp", "log", "sqrt", "rsqrt", "tanh", "erf", "sigmoid", "abs", "floor",
                   "ceil", "not", "cos", "sin"})
COMPARE = frozenset({"lt", "le", "gt", "ge", "eq", "ne"})
BINARY = frozenset({"add", "sub", "mul", "div", "floordiv", "mod", "max", "min", "and", "or",
                    "xor", "pow"}) | COMPARE
# ops computed one element at a time from the same element of their (broadcast) operands
ELEMENTWISE = UNARY | BINARY | {"where", "cast"}


@dataclass(frozen=True)
class PtrType:
    """The type of a pointer into a tensor whose elements are `elem`."""

    elem: DType

    @property
    def name(self) -> str:
        return f"*{self.elem.name}"

    def __repr__(self) -> str:
        return self.name


class Value:
    """One operation of a kernel: `op` over `srcs`, giving a tile of `dtype` and `shape`.

    `arg` holds the op's static attribute (a constant, an axis, a dtype, a body block...), `loc`
    the kernel source location it was traced from.
    """

    __slots__ = ("id", "op", "srcs", "dtype", "shape", "arg", "loc")

    def __init__(self, id, op, srcs, dtype, shape, arg=None, loc=None):
        self.id, self.op, self.srcs, self.dtype, self.shape, self.arg, self.loc = (
            id, op, tuple(srcs), dtype, tuple(shape), arg, loc)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_ptr(self) -> bool:
        return isinstance(self.dtype, PtrType)

    def type_str(self) -> str:
        if self.dtype is None:
            return ""
        dims = "x".join(map(str, self.shape))
        return f"{self.dtype.name}[{dims}]" if self.shape else self.dtype.name

    def __repr__(self) -> str:
        return f"%{self.id}"


@dataclass
class Block:
    """Values in program order; a loop body also has `params` (induction var first) and `yields`."""

    values: list = field(default_factory=list)
    params: list = field(default_factory=list)
    yields: list = field(default_factory=list)

    def walk(self):
        """Every value in this block and the blocks nested in it, in program order."""
        for v in self.params:
            yield v
        for v in self.values:
            yield v
            if v.op == "for":
                yield from v.arg.walk()


@dataclass
class KernelIR:
    """A traced kernel: its name, runtime parameters (`arg` values), constexprs and body."""

    name: str
    params: list
    constexprs: dict
    body: Block

    def __str__(self) -> str:
        return format_kernel(self)

    def values(self):
        yield from self.params
        yield from self.body.walk()


def _fmt_arg(v: Value) -> str:
    a = v.arg
    if v.op == "for":
        return ""
    if v.op == "reduce":
        kind, axis = a
        return f" {kind} axis={axis}"
    if isinstance(a, DType):
        return f" to {a.name}"
    if a is None:
        return ""
    return f" {a!r}" if not isinstance(a, str) else f" {a}"


def _format_block(block: Block, indent: str, out: list) -> None:
    for v in block.values:
        srcs = ", ".join(repr(s) for s in v.srcs)
        if v.op == "for":
            body = v.arg
            lo, hi, step, *inits = v.srcs
            iv, *carried = body.params
            it = ", ".join(f"{p}={i}" for p, i in zip(carried, inits))
            out.append(f"{indent}{v} = for {iv} in range({lo}, {hi}, {step}) iter({it}) {{")
            _format_block(body, indent + "  ", out)
            out.append(f"{indent}  yield {', '.join(map(repr, body.yields))}")
            out.append(f"{indent}}}")
            continue
        lhs = f"{v} = " if v.dtype is not None else ""
        ty = f" : {v.type_str()}" if v.dtype is not None else ""
        out.append(f"{indent}{lhs}{v.op}{_fmt_arg(v)}{' ' + srcs if srcs else ''}{ty}")


def format_kernel(k: KernelIR) -> str:
    """The text form of a kernel's IR."""
    params = ", ".join(f"{p.arg}: {p.type_str()}" for p in k.params)
    meta = ", ".join(f"{n}={v!r}" for n, v in k.constexprs.items())
    out = [f"kernel {k.name}({params})" + (f"  [{meta}]" if meta else "")]
    _format_block(k.body, "  ", out)
    return "\n".join(out)
