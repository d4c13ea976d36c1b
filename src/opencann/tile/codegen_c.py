"""Lowers kernel IR to C for the `cpu` backend.

The generated function runs the whole grid: an OpenMP loop over programs, each program's body a
sequence of loop nests over tiles that gcc and clang vectorize. Four ideas keep it fast:

* Integer tiles that are affine in the tile indices (`pid * BLOCK + arange(...)`, `rm[:, None] *
  stride + rk[None, :]`) are never stored: loads and stores compute addresses inline, so a
  contiguous block becomes a unit-stride loop.
* Masks made of comparisons of such tiles with scalars (`offs < n`) become loop bounds, so a masked
  load is a plain copy of the in-range part plus a fill of the rest.
* Elementwise values used once are folded into their consumer's loop; other tiles live in per-thread
  scratch memory.
* A load whose only reader is a store under the same mask (through elementwise ops) is read inside
  the store's loop: `out = x + s * y` is one streaming loop, as a hand-written one would be.

`dot` calls a packed, register-blocked micro-kernel (see c_runtime.py).
"""

from __future__ import annotations

import math
from collections import defaultdict

from .. import dtypes as _dt
from .c_runtime import DOT, PRELUDE
from .errors import TileCompileError
from .ir import COMPARE, ELEMENTWISE, KernelIR, Value

__all__ = ["generate", "entry_name", "signature_of"]

CT = {_dt.float32: "float", _dt.float16: "float", _dt.bfloat16: "float", _dt.int32: "int32_t",
      _dt.int64: "int64_t", _dt.int8: "int8_t", _dt.uint8: "uint8_t", _dt.bool_: "_Bool"}
PT = {_dt.float32: "float", _dt.float16: "_Float16", _dt.bfloat16: "uint16_t", _dt.int32: "int32_t",
      _dt.int64: "int64_t", _dt.int8: "int8_t", _dt.uint8: "uint8_t", _dt.bool_: "uint8_t"}
_SUFFIX = {"float": "f", "int32_t": "i32", "int64_t": "i64", "int8_t": "i8", "uint8_t": "u8",
           "_Bool": "b"}
SIZE = {"float": 4, "int32_t": 4, "int64_t": 8, "int8_t": 1, "uint8_t": 1, "_Bool": 1}
_FLIP = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
_CBIN = {"add": "+", "sub": "-", "mul": "*", "div": "/", "and": "&", "or": "|", "xor": "^",
         "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
_CUN = {"exp": "oc_exp", "log": "oc_log", "sqrt": "sqrtf", "tanh": "oc_tanh", "erf": "oc_erf",
        "sigmoid": "oc_sigmoid", "floor": "floorf", "ceil": "ceilf", "cos": "cosf", "sin": "sinf"}


def entry_name(k: KernelIR) -> str:
    """Name of the C function that runs kernel `k` over a grid."""
    return f"oc_{k.name}"


def signature_of(k: KernelIR) -> str:
    """One letter per runtime parameter: `p` pointer, `i` int64, `f` float (passed as double)."""
    return "".join("p" if p.is_ptr else ("f" if p.dtype.is_float else "i") for p in k.params)


# --- symbolic scalars: Python ints when known, C expressions otherwise -----------------------

def _is0(a):
    return isinstance(a, int) and a == 0


def s_add(a, b):
    """a + b, folded when both are known."""
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if _is0(a):
        return b
    if _is0(b):
        return a
    return f"({a} + {b})"


def s_neg(a):
    """-a, folded when known."""
    return -a if isinstance(a, int) else f"(-{a})"


def s_sub(a, b):
    """a - b, folded when both are known."""
    return s_add(a, s_neg(b))


def s_floordiv(a, k: int):
    """floor(a / k) for an int k > 0, folded when a is known."""
    if k == 1:
        return a
    if isinstance(a, int):
        return a // k
    return f"OC_FLOORDIV({a}, {k})"


def s_ceildiv(a, k: int):
    """ceil(a / k) for an int k > 0, folded when a is known."""
    if k == 1:
        return a
    if isinstance(a, int):
        return -(-a // k)
    return f"(-OC_FLOORDIV(-({a}), {k}))"


def s_mul(a, b):
    """a * b, folded when both are known (0 and 1 simplify)."""
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    if _is0(a) or _is0(b):
        return 0
    if a == 1:
        return b
    if b == 1:
        return a
    return f"({a} * {b})"


def _idx(i):
    return 0 if i == "0" else i


def _lit(value, dtype) -> str:
    if dtype is _dt.bool_:
        return "1" if value else "0"
    if dtype.is_float:
        v = float(value)
        if math.isnan(v):
            return "NAN"
        if math.isinf(v):
            return "INFINITY" if v > 0 else "(-INFINITY)"
        r = repr(v)
        return f"{r}f" if ("." in r or "e" in r) else f"{r}.0f"
    v = int(value)
    if dtype is _dt.int64 or not -2**31 <= v < 2**31:
        return f"INT64_C({v})"
    return str(v) if v >= 0 else f"({v})"


def _unit_map(src_shape, dst_shape):
    """Dims of src matched to dims of dst when the two differ only in unit dims, else None."""
    s = [d for d in range(len(src_shape)) if src_shape[d] != 1]
    t = [d for d in range(len(dst_shape)) if dst_shape[d] != 1]
    if [src_shape[d] for d in s] != [dst_shape[d] for d in t]:
        return None
    return dict(zip(s, t))


class _Gen:
    def __init__(self, k: KernelIR):
        self.k = k
        self.out: list[str] = []
        self.ind = 0
        self.kind: dict = {}
        self.name: dict = {}
        self.users: dict = defaultdict(list)
        self.block_of: dict = {}
        self.results: dict = defaultdict(list)
        self.force_buf: set = set()
        self.direct: dict = {}  # load id -> its dim that may be cut short (find_direct_dot_operands)
        self.first_flag: dict = {}  # dot id -> C flag: 1 while its accumulator is still unset
        self.first_row: dict = {}  # dot id -> C buffer of the row its unset accumulator starts from
        self.buf_ld: dict = {}  # buffer name -> its row stride, when not the tile's width
        self.hoisted: set = set()  # scalars emitted ahead of their place (before a loop)
        self.skip_copy: dict = {}  # store id -> accumulator that may already be the output
        self._aff: dict = {}
        self.scratch = 0
        self.ntmp = 0

    # --- helpers -------------------------------------------------------------------------------
    def line(self, s: str):
        self.out.append("  " * self.ind + s)

    def ctype(self, v: Value) -> str:
        if v.is_ptr:
            return PT[v.dtype.elem] + " *"
        return CT[v.dtype]

    def fail(self, v: Value, msg: str):
        where = f"{v.loc}: " if v.loc else ""
        return TileCompileError(f"{where}cpu backend: {msg}")

    def alloc(self, ctype: str, numel: int, name: str, restrict: bool = True) -> str:
        off = self.scratch
        # stagger buffers by a few cache lines so equal indices of different tiles do not all
        # fall in the same L1 set
        self.scratch += (numel * SIZE.get(ctype, 4) + 63) // 64 * 64 + 64 * (1 + self.ntmp % 7)
        self.ntmp += 1
        self.line(f"{ctype} *{'restrict ' if restrict else ''}{name} = ({ctype} *)(oc_sp + {off});")
        return name

    def alloc_value(self, v: Value) -> str:
        name = self.alloc(CT[v.dtype], math.prod(v.shape), f"t{v.id}")
        self.name[v.id] = name
        return name

    def tmp(self, prefix="tmp") -> str:
        self.ntmp += 1
        return f"{prefix}{self.ntmp}"

    @staticmethod
    def flat(shape, idx) -> str:
        terms, stride = [], 1
        for d in reversed(range(len(shape))):
            if shape[d] != 1 and idx[d] != "0":
                terms.append(idx[d] if stride == 1 else f"{idx[d]} * {stride}")
            stride *= shape[d]
        return " + ".join(reversed(terms)) or "0"

    def loops(self, shape, body, lo=None, hi=None, order=None):
        """Emit a loop nest over `shape` (or [lo, hi) per dim), dims in `order` (outermost first;
        default 0, 1, ...); body(idx) emits the inner lines."""
        n = len(shape)
        idx = [f"i{d}" for d in range(n)]
        for k, d in enumerate(order or range(n)):
            a = 0 if lo is None else lo[d]
            b = shape[d] if hi is None else hi[d]
            if k == n - 1:
                self.line("#pragma GCC ivdep")
            self.line(f"for (int64_t i{d} = {a}; i{d} < {b}; i{d}++) {{")
            self.ind += 1
        body(idx)
        for _ in range(n):
            self.ind -= 1
            self.line("}")

    # --- analysis ------------------------------------------------------------------------------
    def index(self, block):
        for p in block.params:
            self.block_of[p.id] = block
        for v in block.values:
            self.block_of[v.id] = block
            for s in v.srcs:
                self.users[s.id].append((v, block))
            if v.op == "result":
                self.results[v.srcs[0].id].append(v)
            if v.op == "view" and _unit_map(v.srcs[0].shape, v.shape) is None:
                self.force_buf.add(v.srcs[0].id)
            if v.op == "for":
                self.index(v.arg)
                for y in v.arg.yields:
                    self.users[y.id].append(("yield", v.arg))

    def plan(self):
        for p in self.k.params:
            self.kind[p.id] = "scalar"
            self.name[p.id] = f"a_{p.arg}"
        for v in self.k.body.walk():
            self.kind[v.id] = self.kind_of(v)
            if v.shape == () and v.op not in ("store", "for", "const"):
                self.name.setdefault(v.id, f"v{v.id}")
            if v.op == "for":
                for k, p in enumerate(v.arg.params[1:]):
                    if p.shape == ():
                        self.name[p.id] = f"s{v.id}_{k}"
                for r in self.results[v.id]:
                    if r.shape == ():
                        self.name[r.id] = f"s{v.id}_{r.arg}"

    def fuse_loads(self):
        """Loads read only by one store, through single-use elementwise ops, under the same mask,
        are read inside the store's loop instead of being staged in a buffer."""
        for v in self.k.body.walk():
            if v.op != "load" or self.kind.get(v.id) != "buf" or v.shape == ():
                continue
            u, ok = v, True
            while True:
                us = self.users[u.id]
                if len(us) != 1 or us[0][0] == "yield" or us[0][1] is not self.block_of[v.id]:
                    ok = False
                    break
                u = us[0][0]
                if u.op == "store" or u.shape != v.shape or self.kind.get(u.id) != "inline" \
                        or u.op not in ELEMENTWISE:
                    break
            if not ok or u.op != "store" or u.shape != v.shape or u.srcs[0] is v:
                continue
            vals = self.block_of[v.id].values
            i, j = vals.index(v), vals.index(u)
            if any(w.op in ("store", "for") for w in vals[i + 1:j]):
                continue  # a store in between could change what the load reads
            if self.ptr_base(v.srcs[0]) == self.ptr_base(u.srcs[0]) and (
                    self.affine(v.srcs[0]) is None
                    or self.affine(v.srcs[0]) != self.affine(u.srcs[0])):
                continue  # in place at other offsets: the load must see the old values
            if len(v.srcs) == 1 or (len(u.srcs) > 2 and u.srcs[2] is v.srcs[1]):
                self.kind[v.id] = "load"

    def find_direct_dot_operands(self):
        """A float32 2-d load read only by a `dot` (as its left operand, its right operand, or its
        right operand through one `trans`), from rows that are contiguous in memory, is not copied
        when the block lies wholly inside the tensor: the micro-kernel reads A's rows where they
        are and packs B's panels straight from the tensor."""
        for v in self.k.body.walk():
            if v.op != "dot":
                continue
            a, b = v.srcs[:2]
            # (load, its reader, the load's dim along the dot's M or N): a block cut short there
            # by its mask (zeros past the edge) is read in place too, the dot told how many
            # rows/columns are real; the dot's other rows/columns keep the accumulator's values,
            # which is what zeros would add
            cands = [(a, v, 0), (b, v, 1)]
            if a.op == "trans" and len(self.users[a.id]) == 1:
                cands.append((a.srcs[0], a, 1))
            if b.op == "trans" and len(self.users[b.id]) == 1:
                cands.append((b.srcs[0], b, 0))
            for x, reader, free in cands:
                us = self.users[x.id]
                aff = self.affine(x.srcs[0]) if x.op == "load" else None
                if (aff is not None and self.kind.get(x.id) == "buf" and len(x.shape) == 2
                        and len(us) == 1 and us[0][0] is reader
                        and self.block_of[x.id] is self.block_of[v.id]
                        and x.srcs[0].dtype.elem is _dt.float32 and aff[1][1] == 1):
                    self.direct[x.id] = free

    def kind_of(self, v: Value) -> str:
        op = v.op
        if op in ("store", "for"):
            return "none"
        if v.shape == ():
            return "const" if op == "const" else "scalar"
        if v.is_ptr:
            if op not in ("addptr", "view", "broadcast", "trans"):
                raise self.fail(v, f"pointer tiles cannot be loop-carried or come from `{op}`; "
                                   "carry integer offsets instead")
            return "ptr"
        if op in ("param", "result", "load", "reduce", "dot") or v.id in self.force_buf:
            return "buf"
        if op in ("arange", "full"):
            return "inline"
        if v.dtype.is_int and self.affine(v) is not None:
            return "affine"
        if op in ("view", "broadcast", "trans"):
            return "view"
        if op in ELEMENTWISE:
            us = self.users[v.id]
            same = all(u != "yield" and b is self.block_of[v.id] for u, b in us)
            if v.dtype is _dt.bool_ and same and all(
                    u.op in ("load", "store", "and", "or", "not", "where", "view", "broadcast")
                    for u, _ in us):
                return "inline"
            # fold into the single consumer, unless the consumer broadcasts it (it would be
            # recomputed for every element of the larger tile)
            if len(us) == 1 and same and us[0][0].op not in ("dot", "for") and \
                    self.consumer_numel(v) <= math.prod(v.shape):
                return "inline"
            return "buf"
        raise self.fail(v, f"no C lowering for op `{op}`")

    def consumer_numel(self, v: Value) -> int:
        """Elements of the largest tile that reads v, looking through views."""
        n = 0
        for u, _ in self.users[v.id]:
            if u == "yield":
                n = max(n, math.prod(v.shape))
            elif u.op in ("view", "broadcast", "trans"):
                n = max(n, self.consumer_numel(u))
            else:
                n = max(n, math.prod(u.shape))
        return n

    def affine(self, v: Value):
        """(s, coeffs): v[i] == s + sum(coeffs[d] * i[d]), for integer and pointer-offset tiles."""
        if v.id in self._aff:
            return self._aff[v.id]
        self._aff[v.id] = r = self._affine(v)
        return r

    def _affine(self, v: Value):
        op, nd = v.op, len(v.shape)
        if not v.is_ptr and not v.dtype.is_int:
            return None
        if v.shape == ():
            if v.is_ptr:
                return (0, ())
            if op == "const":
                return (int(v.arg), ())
            return (self.name.get(v.id, f"v{v.id}") if op != "arg" else f"a_{v.arg}", ())
        if op == "arange":
            return (v.arg, (1 if v.shape[0] > 1 else 0,))
        if op == "full":
            return (int(v.arg), (0,) * nd)
        if op == "cast" and v.srcs[0].dtype.is_int:
            return self.affine(v.srcs[0])
        if op == "view":
            src = v.srcs[0]
            m = _unit_map(src.shape, v.shape)
            a = self.affine(src)
            if m is None or a is None:
                return None
            c = [0] * nd
            for sd, td in m.items():
                c[td] = a[1][sd]
            return (a[0], tuple(c))
        if op == "broadcast":
            a = self.affine(v.srcs[0])
            return None if a is None else (a[0], tuple(0 if v.srcs[0].shape[d] == 1 else c
                                                       for d, c in enumerate(a[1])))
        if op == "trans":
            a = self.affine(v.srcs[0])
            return None if a is None else (a[0], tuple(a[1][p] for p in v.arg))
        if op in ("add", "sub", "addptr"):
            a, b = (self.affine(s) for s in v.srcs)
            if a is None or b is None:
                return None
            ac = self._align(a, v.srcs[0], nd)
            bc = self._align(b, v.srcs[1], nd)
            f = s_sub if op == "sub" else s_add
            return (f(a[0], b[0]), tuple(f(x, y) for x, y in zip(ac, bc)))
        if op == "mul":
            a, b = (self.affine(s) for s in v.srcs)
            if a is None or b is None:
                return None
            ac, bc = self._align(a, v.srcs[0], nd), self._align(b, v.srcs[1], nd)
            if all(_is0(c) for c in bc):
                return (s_mul(a[0], b[0]), tuple(s_mul(c, b[0]) for c in ac))
            if all(_is0(c) for c in ac):
                return (s_mul(a[0], b[0]), tuple(s_mul(c, a[0]) for c in bc))
            return None
        if op == "neg":
            a = self.affine(v.srcs[0])
            return None if a is None else (s_neg(a[0]), tuple(s_neg(c) for c in a[1]))
        return None

    @staticmethod
    def _align(a, src, nd):
        c = list(a[1])
        c = [0] * (nd - len(c)) + c
        shape = (1,) * (nd - len(src.shape)) + tuple(src.shape)
        return [0 if shape[d] == 1 else c[d] for d in range(nd)]

    @staticmethod
    def aff_expr(a, idx) -> str:
        e = a[0]
        for c, i in zip(a[1], idx):
            e = s_add(e, s_mul(c, _idx(i)))
        return str(e)

    # --- element access ------------------------------------------------------------------------
    def elem(self, v: Value, idx) -> str:
        k = self.kind[v.id]
        if k == "scalar":
            return self.name[v.id]
        if k == "const":
            return _lit(v.arg, v.dtype)
        if k == "buf":
            name = self.name[v.id]
            if name in self.buf_ld:  # an accumulator that may lie in the output (row stride ld)
                return f"{name}[{_idx(idx[0])} * {self.buf_ld[name]} + {_idx(idx[1])}]"
            return f"{name}[{self.flat(v.shape, idx)}]"
        if k == "affine":
            return self.aff_expr(self.affine(v), idx)
        if k == "load":
            p = v.srcs[0]
            return self.load_conv(p.dtype.elem, f"{self.ptr_base(p)}[{self.ptr_off(p, idx)}]")
        return self.expr(v, idx)

    @staticmethod
    def bidx(u: Value, idx):
        nd = len(idx)
        shape = (1,) * (nd - len(u.shape)) + tuple(u.shape)
        full = ["0" if shape[d] == 1 else idx[d] for d in range(nd)]
        return full[nd - len(u.shape):]

    def src_idx(self, v: Value, idx):
        """Indices into v's operand for element idx of a view, broadcast or transpose v."""
        src = v.srcs[0]
        if v.op == "broadcast":
            return self.bidx(src, idx)
        if v.op == "trans":
            out = [None] * len(idx)
            for d, p in enumerate(v.arg):
                out[p] = idx[d]
            return out
        m = _unit_map(src.shape, v.shape)
        out = ["0"] * len(src.shape)
        for sd, td in m.items():
            out[sd] = idx[td]
        return out

    def expr(self, v: Value, idx) -> str:
        op = v.op
        if v.dtype is not None and not v.is_ptr and v.dtype.is_int and v.shape:
            a = self.affine(v)
            if a is not None:
                return self.aff_expr(a, idx)
        if op == "program_id":
            return f"(int32_t)pid{v.arg}"
        if op == "num_programs":
            return f"(int32_t)g{v.arg}"
        if op in ("full", "const"):
            return _lit(v.arg, v.dtype)
        if op == "view" and self.kind.get(v.srcs[0].id) == "buf":
            return f"{self.name[v.srcs[0].id]}[{self.flat(v.shape, idx)}]"
        if op in ("view", "broadcast", "trans"):
            return self.elem(v.srcs[0], self.src_idx(v, idx))
        if op == "addptr":
            return f"({self.elem(v.srcs[0], [])} + {self.elem(v.srcs[1], [])})"
        ops = [self.elem(s, self.bidx(s, idx)) for s in v.srcs]
        if op == "cast":
            return self.cast_expr(ops[0], v.srcs[0].dtype, v.dtype)
        if op == "where":
            return f"oc_sel_{_SUFFIX[CT[v.dtype]]}({ops[0]}, {ops[1]}, {ops[2]})"
        f = v.dtype.is_float if op not in COMPARE else v.srcs[0].dtype.is_float
        if op in _CBIN:
            return f"({ops[0]} {_CBIN[op]} {ops[1]})"
        if op == "floordiv":
            return f"floorf({ops[0]} / {ops[1]})" if f else f"({ops[0]} / {ops[1]})"
        if op == "mod":
            return f"fmodf({ops[0]}, {ops[1]})" if f else f"({ops[0]} % {ops[1]})"
        if op == "max":
            return f"oc_max_{_SUFFIX[CT[v.dtype]]}({ops[0]}, {ops[1]})"
        if op == "min":
            return f"oc_min_{_SUFFIX[CT[v.dtype]]}({ops[0]}, {ops[1]})"
        if op == "pow":
            return f"powf({ops[0]}, {ops[1]})"
        if op == "neg":
            return f"(-{ops[0]})"
        if op == "abs":
            return f"fabsf({ops[0]})" if f else f"({ops[0]} < 0 ? -{ops[0]} : {ops[0]})"
        if op == "not":
            return f"(!{ops[0]})" if v.dtype is _dt.bool_ else f"(~{ops[0]})"
        if op == "rsqrt":
            return f"(1.0f / sqrtf({ops[0]}))"
        if op in _CUN:
            return f"{_CUN[op]}({ops[0]})"
        raise self.fail(v, f"no C lowering for op `{op}`")

    @staticmethod
    def cast_expr(x, src, dst) -> str:
        if dst is _dt.bool_:
            return f"(({x}) != 0)"
        if dst is _dt.float16:
            return f"(float)(_Float16)({x})"
        if dst is _dt.bfloat16:
            return f"oc_bf16_round((float)({x}))"
        return f"({CT[dst]})({x})"

    @staticmethod
    def load_conv(d, x):
        if d is _dt.float16:
            return f"(float)({x})"
        if d is _dt.bfloat16:
            return f"oc_bf16_to_f32({x})"
        if d is _dt.bool_:
            return f"(_Bool)({x})"
        return x

    @staticmethod
    def store_conv(d, x):
        if d is _dt.float16:
            return f"(_Float16)({x})"
        if d is _dt.bfloat16:
            return f"oc_f32_to_bf16({x})"
        if d is _dt.bool_:
            return f"(uint8_t)({x})"
        return x

    def ptr_base(self, p: Value) -> str:
        while p.shape != ():
            p = p.srcs[0]
        return self.name[p.id]

    def ptr_off(self, p: Value, idx) -> str:
        a = self.affine(p)
        if a is not None:
            return self.aff_expr(a, idx)
        return str(self._ptr_off(p, idx))

    def _ptr_off(self, p: Value, idx):
        if p.shape == ():
            return 0
        if p.op == "addptr":
            a, b = p.srcs
            return s_add(self._ptr_off(a, self.bidx(a, idx)), self.elem(b, self.bidx(b, idx)))
        return self._ptr_off(p.srcs[0], self.src_idx(p, idx))

    # --- masks ---------------------------------------------------------------------------------
    def region(self, mask: Value, shape):
        """Split a mask into per-dim [lo, hi) bounds and residual conditions (value, dim map)."""
        nd = len(shape)
        lo = [[] for _ in range(nd)]
        hi = [[] for _ in range(nd)]
        residual = []

        def walk(v, dmap):
            if v.op == "and" and v.dtype is _dt.bool_:
                for s in v.srcs:
                    walk(s, [dmap[d] if s.shape[d] != 1 else None for d in range(len(s.shape))])
                return
            if v.op == "broadcast":
                s = v.srcs[0]
                walk(s, [dmap[d] if s.shape[d] != 1 else None for d in range(len(s.shape))])
                return
            if v.op == "view" and v.shape:
                m = _unit_map(v.srcs[0].shape, v.shape)
                if m is not None:
                    walk(v.srcs[0], [dmap[m[d]] if d in m else None
                                     for d in range(len(v.srcs[0].shape))])
                    return
            if v.op in _FLIP and v.shape:
                iv = self.interval(v)
                if iv is not None and dmap[iv[0]] is not None:
                    d, side, e = iv
                    (hi if side == "hi" else lo)[dmap[d]].append(e)
                    return
            residual.append((v, dmap))

        walk(mask, list(range(nd)))
        return lo, hi, residual

    def interval(self, v: Value):
        a, b = (self.affine(s) for s in v.srcs)
        if a is None or b is None:
            return None

        def single(f):  # (dim, coefficient) of an index tile k * i[d] + s, k a positive int
            nz = [(d, c) for d, c in enumerate(f[1]) if not _is0(c)]
            ok = len(nz) == 1 and isinstance(nz[0][1], int) and nz[0][1] > 0
            return nz[0] if ok else None

        def uniform(f):
            return all(_is0(c) for c in f[1])

        op = v.op
        if single(a) is not None and uniform(b):
            (d, k), s, u = single(a), a[0], b[0]
        elif single(b) is not None and uniform(a):
            (d, k), s, u, op = single(b), b[0], a[0], _FLIP[op]
        else:
            return None
        # k*i + s <op> u, i.e. k*i <op> lim: a bound on i (strided indices, e.g. a stride-2
        # window's taps, become loop bounds too instead of a test per element)
        lim = s_sub(u, s)
        if op == "lt":
            return d, "hi", s_ceildiv(lim, k)
        if op == "le":
            return d, "hi", s_add(s_floordiv(lim, k), 1)
        if op == "gt":
            return d, "lo", s_add(s_floordiv(lim, k), 1)
        return d, "lo", s_ceildiv(lim, k)

    def bounds(self, shape, lo_l, hi_l):
        """Declare clamped loop bounds; returns (lo, hi, whether the region may be partial)."""
        lo, hi, partial = [], [], []
        for d, n in enumerate(shape):
            a = 0
            for e in lo_l[d]:
                a = e if a == 0 else f"OC_MAX({a}, {e})"
            b = n
            for e in hi_l[d]:
                b = e if b == n else f"OC_MIN({b}, {e})"
            if a != 0:
                nm = self.tmp("lo")
                self.line(f"const int64_t {nm} = OC_CLAMP((int64_t)({a}), 0, {n});")
                a = nm
                partial.append(f"{nm} != 0")
            if b != n:
                nm = self.tmp("hi")
                self.line(f"const int64_t {nm} = OC_CLAMP((int64_t)({b}), {a}, {n});")
                b = nm
                partial.append(f"{nm} != {n}")
            lo.append(a)
            hi.append(b)
        return lo, hi, partial

    def cond(self, residual, idx) -> str:
        parts = []
        for v, dmap in residual:
            parts.append(self.elem(v, [idx[d] if d is not None else "0" for d in dmap]))
        return " && ".join(parts)

    # --- emission ------------------------------------------------------------------------------
    def emit_block(self, block):
        for v in block.values:
            if v.id in self.hoisted:
                continue
            k = self.kind[v.id]
            op = v.op
            if op == "store":
                self.emit_store(v)
            elif op == "for":
                self.emit_for(v)
            elif op == "result" or op == "param":
                continue
            elif k == "scalar":
                self.emit_scalar(v)
            elif k == "buf":
                if op == "load":
                    self.emit_load(v)
                elif op == "reduce":
                    self.emit_reduce(v)
                elif op == "dot":
                    self.emit_dot(v)
                else:
                    name = self.alloc_value(v)
                    self.loops(v.shape, lambda idx, v=v, name=name: self.line(
                        f"{name}[{self.flat(v.shape, idx)}] = {self.expr(v, idx)};"))

    def emit_scalar(self, v: Value):
        name = self.name[v.id]
        if v.op == "load":
            return self.emit_load(v)
        if v.op == "reduce":
            return self.emit_reduce(v)
        if v.is_ptr:
            if v.op != "addptr":
                raise self.fail(v, f"unsupported scalar pointer op `{v.op}`")
            a, b = v.srcs
            self.line(f"{self.ctype(v)}{name} = {self.elem(a, [])} + {self.elem(b, [])};")
            return
        self.line(f"const {CT[v.dtype]} {name} = {self.expr(v, [])};")

    def emit_load(self, v: Value):
        p = v.srcs[0]
        mask = v.srcs[1] if len(v.srcs) > 1 else None
        other = v.srcs[2] if mask is not None else None
        d = p.dtype.elem
        if v.shape == ():
            val = self.load_conv(d, f"{self.elem(p, [])}[0]")
            if mask is not None:
                val = f"({self.elem(mask, [])} ? {val} : {self.elem(other, [])})"
            self.line(f"const {CT[v.dtype]} {self.name[v.id]} = {val};")
            return
        name = self.alloc_value(v)
        base = self.ptr_base(p)
        shape = v.shape
        if mask is None and v.id in self.direct:
            a = self.affine(p)
            self.line(f"const float *pa{v.id} = &{base}[{self.aff_expr(a, ['0', '0'])}];")
            self.line(f"const int64_t lda{v.id} = {a[1][0]};")
            self.line(f"const int64_t dn{v.id} = {shape[self.direct[v.id]]};")
            return
        if mask is None:
            self.loops(shape, lambda idx: self.line(
                f"{name}[{self.flat(shape, idx)}] = {self.load_conv(d, f'{base}[{self.ptr_off(p, idx)}]')};"))
            return
        lo_l, hi_l, residual = self.region(mask, shape)
        lo, hi, partial = self.bounds(shape, lo_l, hi_l)
        if v.id in self.direct and not residual:
            # a whole block: the dot reads it in place; a partial one is copied and padded,
            # unless it is cut short only along the dot's M/N dim (`free`) and pads with zeros
            a = self.affine(p)
            free = self.direct[v.id]
            zero_pad = other.op in ("const", "full") and float(other.arg) == 0.0
            if zero_pad and lo[free] == 0:
                partial = [c for d in range(2) if d != free for c in
                           ([f"{lo[d]} != 0"] if lo[d] != 0 else [])
                           + ([f"{hi[d]} != {shape[d]}"] if hi[d] != shape[d] else [])]
                self.line(f"int64_t dn{v.id} = {hi[free]};")
            else:
                self.line(f"const int64_t dn{v.id} = {shape[free]};")
            self.line(f"const float *pa{v.id} = {name};")
            self.line(f"int64_t lda{v.id} = {shape[1]};")
            if partial:
                self.line(f"if (!({' || '.join(partial)})) {{")
            else:
                self.line("{")
            self.line(f"  pa{v.id} = &{base}[{self.aff_expr(a, ['0', '0'])}];")
            self.line(f"  lda{v.id} = {a[1][0]};")
            if not partial:
                self.line("}")
                return
            if zero_pad and lo[free] == 0:
                self.line(f"  dn{v.id} = {hi[free]};")
            self.line("} else {")
            self.ind += 1
            if zero_pad and lo[free] == 0:
                self.line(f"dn{v.id} = {shape[free]};")
            self.direct_copy(v, name, base, p, d, other, shape, lo, hi)
            self.ind -= 1
            self.line("}")
            return
        if v.id in self.direct:
            del self.direct[v.id]
        if partial:
            self.line(f"if ({' || '.join(partial)}) {{")
            self.ind += 1
            self.loops(shape, lambda idx: self.line(
                f"{name}[{self.flat(shape, idx)}] = {self.elem(other, self.bidx(other, idx))};"))
            self.ind -= 1
            self.line("}")

        def body(idx):
            val = self.load_conv(d, f"{base}[{self.ptr_off(p, idx)}]")
            if residual:
                val = f"({self.cond(residual, idx)}) ? {val} : {self.elem(other, self.bidx(other, idx))}"
            self.line(f"{name}[{self.flat(shape, idx)}] = {val};")

        self.loops(shape, body, lo, hi)

    def direct_copy(self, v, name, base, p, d, other, shape, lo, hi):
        self.loops(shape, lambda idx: self.line(
            f"{name}[{self.flat(shape, idx)}] = {self.elem(other, self.bidx(other, idx))};"))
        self.loops(shape, lambda idx: self.line(
            f"{name}[{self.flat(shape, idx)}] = "
            f"{self.load_conv(d, f'{base}[{self.ptr_off(p, idx)}]')};"), lo, hi)

    def emit_store(self, v: Value):
        p, val = v.srcs[:2]
        mask = v.srcs[2] if len(v.srcs) > 2 else None
        d = p.dtype.elem
        if v.shape == ():
            st = f"{self.elem(p, [])}[0] = {self.store_conv(d, self.elem(val, []))};"
            self.line(f"if ({self.elem(mask, [])}) {st}" if mask is not None else st)
            return
        base, shape = self.ptr_base(p), v.shape
        lo = hi = None
        residual = []
        if mask is not None:
            lo_l, hi_l, residual = self.region(mask, shape)
            lo, hi, _ = self.bounds(shape, lo_l, hi_l)

        def body(idx):
            st = f"{base}[{self.ptr_off(p, idx)}] = {self.store_conv(d, self.elem(val, self.bidx(val, idx)))};"
            self.line(f"if ({self.cond(residual, idx)}) {st}" if residual else st)

        # a 2-d store whose memory runs along dim 0 (a transposed result, e.g. a GEMM writing
        # C^T) sweeps dim 0 innermost: contiguous writes instead of one cache line per element
        order = None
        aff = self.affine(p)
        if len(shape) == 2 and aff is not None and aff[1][0] == 1 and aff[1][1] != 1:
            order = (1, 0)
        if v.id in self.skip_copy:
            self.line(f"if ({self.skip_copy[v.id][0]} != {self.skip_copy[v.id][1]}) {{")
            self.ind += 1
            self.loops(shape, body, lo, hi, order)
            self.ind -= 1
            self.line("}")
            return
        self.loops(shape, body, lo, hi, order)

    def emit_reduce(self, v: Value):
        kind, axis = v.arg
        x = v.srcs[0]
        ct = CT[x.dtype]
        isf = x.dtype.is_float
        if kind == "sum":
            init = "0"
        elif kind in ("max", "argmax"):
            init = "(-INFINITY)" if isf else (f"INT64_MIN" if x.dtype is _dt.int64 else "INT32_MIN")
        else:
            init = "INFINITY" if isf else (f"INT64_MAX" if x.dtype is _dt.int64 else "INT32_MAX")
        if x.dtype is _dt.bool_:
            init = "0" if kind != "min" else "1"
        scalar = v.shape == ()
        out = self.name[v.id] if scalar else self.alloc_value(v)
        if scalar:
            self.line(f"{CT[v.dtype]} {out};")
        outer = [n for d, n in enumerate(x.shape) if d != axis]
        n = x.shape[axis]

        def dst(idx):
            return out if scalar else f"{out}[{self.flat(v.shape, idx)}]"

        def body(idx):
            full = list(idx[:axis]) + ["j"] + list(idx[axis:])
            e = self.elem(x, full)
            if kind == "argmax":
                self.line(f"{ct} best = {init}; int32_t bi = 0;")
                self.line(f"for (int64_t j = 0; j < {n}; j++) {{ {ct} e = {e}; "
                          "if (e > best) { best = e; bi = (int32_t)j; } }")
                self.line(f"{dst(idx)} = bi;")
                return
            red = {"sum": "+", "max": "max", "min": "min"}[kind]
            comb = {"sum": "acc + e", "max": "(e > acc ? e : acc)", "min": "(e < acc ? e : acc)"}[kind]
            self.line(f"{ct} acc = {init};")
            self.line(f"#pragma omp simd reduction({red}:acc)")
            self.line(f"for (int64_t j = 0; j < {n}; j++) {{ {ct} e = {e}; acc = {comb}; }}")
            self.line(f"{dst(idx)} = acc;")

        if axis == x.ndim - 1 or kind == "argmax" or scalar:
            if outer:
                self.loops(tuple(outer), lambda idx: (self.line("{"), body(idx), self.line("}")))
            else:
                self.line("{")
                body([])
                self.line("}")
            return
        # reduce a leading axis: accumulate whole rows so the inner loop stays contiguous
        self.loops(tuple(outer), lambda idx: self.line(f"{dst(idx)} = {init};"))
        comb = {"sum": "{o} + {e}", "max": "({e} > {o} ? {e} : {o})", "min": "({e} < {o} ? {e} : {o})"}[kind]

        def acc_body(idx):
            o = dst([i for d, i in enumerate(idx) if d != axis])
            self.line(f"{o} = {comb.format(o=o, e=self.elem(x, idx))};")

        order = list(x.shape)
        self.loops(tuple(order), acc_body)

    def as_buffer(self, v: Value) -> str:
        if self.kind[v.id] == "buf":
            return self.name[v.id]
        name = self.alloc(CT[v.dtype], math.prod(v.shape), self.tmp())
        self.loops(v.shape, lambda idx: self.line(f"{name}[{self.flat(v.shape, idx)}] = {self.elem(v, idx)};"))
        return name

    def single_use_here(self, acc: Value, user: Value) -> bool:
        us = self.users[acc.id]
        return (len(us) == 1 and us[0][0] is user and self.kind[acc.id] == "buf"
                and self.block_of.get(acc.id) is self.block_of[user.id])

    def emit_dot(self, v: Value):
        a, b = v.srcs[:2]
        acc = v.srcs[2] if len(v.srcs) > 2 else None
        (M, N), K = v.shape, a.shape[1]
        a_trans = a.op == "trans" and self.kind[a.srcs[0].id] == "buf"
        asrc = a.srcs[0] if a_trans else a
        ab = self.name[asrc.id] if a_trans else self.as_buffer(a)  # read a^T as stored
        b_trans = b.op == "trans" and self.kind[b.srcs[0].id] == "buf"
        bsrc = b.srcs[0] if b_trans else b
        bb = self.name[bsrc.id] if b_trans else self.as_buffer(b)  # pack straight from b^T
        ow = self.first_flag.get(v.id, "0")  # the product may overwrite its accumulator
        if acc is not None and self.single_use_here(acc, v):
            name = self.name[acc.id]
            self.name[v.id] = name
        else:
            name = self.alloc_value(v)
            if acc is None:
                ow = "1"
            else:
                self.loops(v.shape, lambda idx: self.line(
                    f"{name}[{self.flat(v.shape, idx)}] = {self.elem(acc, idx)};"))
        pack = self.alloc("float", (M + 8) * K + (N + 32) * K + 64, self.tmp("pack"))
        lda, m = (M if a_trans else K), M
        if asrc.id in self.direct:
            ab, lda, m = f"pa{asrc.id}", f"lda{asrc.id}", f"dn{asrc.id}"
        ldb, n = (K if b_trans else N), N
        if bsrc.id in self.direct:
            bb, ldb, n = f"pa{bsrc.id}", f"lda{bsrc.id}", f"dn{bsrc.id}"
        row = self.first_row.get(v.id, "NULL") if ow not in ("0", "1") else "NULL"
        self.line(f"oc_dot_f32_ld({m}, {n}, {K}, {ab}, {lda}, {int(a_trans)}, {bb}, {ldb}, "
                  f"{int(b_trans)}, {name}, {self.buf_ld.get(name, N)}, {pack}, {ow}, {M}, {N}, "
                  f"{row});")
        if ow not in ("0", "1"):
            self.line(f"{ow} = 0;")

    def zero_carried_dot(self, f: Value, p: Value, init: Value, y: Value) -> bool:
        """Whether loop-carried tile `p` starts as zeros (or as one row broadcast down its rows,
        see `row_init`) and each iteration is `p = dot(a, b, p)` with p read by nothing else:
        the first product can then overwrite the accumulator instead of it being set first
        (`oc_dot_f32_ld`'s `ow`, with its `row`)."""
        us = self.users[p.id]
        return ((init.op == "full" and float(init.arg) == 0.0 or self.row_init(init) is not None)
                and y.op == "dot"
                and len(y.srcs) > 2 and y.srcs[2] is p and len(us) == 1 and us[0][0] is y
                and self.block_of.get(y.id) is f.arg and self.kind.get(y.id) == "buf")

    @staticmethod
    def row_init(init: Value) -> Value | None:
        """The (1, N) float32 row a 2-d accumulator's start broadcasts down its rows (a GEMM's
        bias), or None."""
        if init.op != "broadcast" or len(init.shape) != 2 or init.dtype is not _dt.float32:
            return None
        r = init.srcs[0]
        if r.dtype is not _dt.float32 or tuple(r.shape) != (1, init.shape[1]):
            return None
        return r

    @staticmethod
    def root_param(p: Value) -> Value:
        while p.op != "arg" and p.srcs:
            p = p.srcs[0]
        return p

    def output_of(self, f: Value, r: Value | None):
        """(store, its pointer's affine form, mask region, scalars to hoist) when the loop result
        `r` (a float32 2-d accumulator) goes only to one store after the loop, through
        elementwise ops folded into the store's loop, at unit column stride under a mask that is
        just row/column bounds, and everything the store's address and bounds need can be
        computed before the loop; else None. Such an accumulator may live in the output itself
        (`accumulate_in_output`)."""
        if r is None or len(r.shape) != 2 or r.dtype is not _dt.float32:
            return None
        blk, u = self.block_of[f.id], r
        while True:
            us = self.users[u.id]
            if len(us) != 1 or us[0][0] == "yield" or us[0][1] is not blk:
                return None
            w = us[0][0]
            if w.op == "store":
                break
            if w.op not in ELEMENTWISE or self.kind.get(w.id) != "inline" or w.shape != r.shape:
                return None
            u = w
        st = w
        if st.srcs[1] is not u or st.shape != r.shape or st.srcs[0].dtype.elem is not _dt.float32:
            return None
        aff = self.affine(st.srcs[0])
        if aff is None or len(aff[1]) != 2 or aff[1][1] != 1 or _is0(aff[1][0]):
            return None
        region = None
        if len(st.srcs) > 2:
            lo_l, hi_l, residual = self.region(st.srcs[2], st.shape)
            if residual or any(lo_l):
                return None
            region = hi_l
        # the store's address and mask, computed before the loop: scalars of this block defined
        # after the loop are hoisted if they are plain arithmetic on what is known before it
        pos = {id(v): i for i, v in enumerate(blk.values)}
        at = pos.get(id(f))
        hoist, seen = [], set()

        def need(v) -> bool:
            if v.id in seen:
                return True
            seen.add(v.id)
            if v.op in ("arg", "const", "program_id", "num_programs"):
                return True
            if self.block_of.get(v.id) is not blk:  # a loop's value (or an outer block's)
                return False
            if pos.get(id(v), -1) < at:
                return True
            if v.shape != () and self.kind.get(v.id) == "buf":
                return False
            if v.op in ("load", "reduce", "result", "for", "store", "dot"):
                return False
            if not all(need(x) for x in v.srcs):
                return False
            if v.shape == ():
                hoist.append(v)
            return True

        if not need(st.srcs[0]) or (len(st.srcs) > 2 and not need(st.srcs[2])):
            return None
        return st, aff, region, sorted(hoist, key=lambda v: pos[id(v)])

    def accumulate_in_output(self, f: Value, nm: str, shape, r: Value, st: Value, aff, region,
                             hoist):
        """Point accumulator `nm` at its block of the output when the block lies wholly inside it
        (and no array the kernel reads is the output array): the dot then writes the output as it
        goes, and the store after the loop works in place. Otherwise it stays in scratch."""
        for v in hoist:
            self.emit_scalar(v)
            self.hoisted.add(v.id)
        conds = []
        if region is not None:
            _, hi, _ = self.bounds(shape, [[], []], region)
            conds += [f"{h} == {n}" for h, n in zip(hi, shape) if h != n]
        out = self.root_param(st.srcs[0])
        for v in self.k.body.walk():  # an input that is the output itself: keep the scratch
            if v.op == "store" and v is not st and self.root_param(v.srcs[0]) is out:
                return  # another store to the output could land on the accumulator
            if v.op == "load":
                src = self.root_param(v.srcs[0])
                if src is out:
                    return
                conds.append(f"(const void *){self.name[src.id]} != (const void *){self.name[out.id]}")
        base = self.ptr_base(st.srcs[0])
        ld = f"ld{f.id}_{nm}"
        self.line(f"int64_t {ld} = {shape[1]};")
        self.line(f"if ({' && '.join(conds) or '1'}) {{")
        self.line(f"  {nm} = &{base}[{self.aff_expr(aff, ['0', '0'])}];")
        self.line(f"  {ld} = {aff[1][0]};")
        self.line("}")
        self.buf_ld[nm] = ld
        if st.srcs[1] is r:  # stored as it is: nothing to do when it already lies there
            self.skip_copy[st.id] = (nm, f"&{base}[{self.aff_expr(aff, ['0', '0'])}]")

    def emit_for(self, f: Value):
        body = f.arg
        lo, hi, step, *inits = f.srcs
        iv, *params = body.params
        results = {r.arg: r for r in self.results[f.id]}
        unset = []  # (flag, buffer, numel): accumulators the loop's first product overwrites
        for k, (p, init) in enumerate(zip(params, inits)):
            if p.shape == ():
                self.line(f"{self.ctype(p)} {self.name[p.id]} = {self.elem(init, [])};")
                continue
            y = body.yields[k]
            if self.zero_carried_dot(f, p, init, y):
                into = self.output_of(f, results.get(k))
                nm = self.alloc(CT[p.dtype], math.prod(p.shape), f"c{f.id}_{k}",
                                restrict=into is None)
                flag = f"oc_unset{f.id}_{k}"
                self.line(f"int {flag} = 1;")
                self.first_flag[y.id] = flag
                row = self.row_init(init)
                if row is not None:
                    row = self.first_row[y.id] = self.as_buffer(row)
                if into is not None:
                    self.accumulate_in_output(f, nm, p.shape, results[k], *into)
                unset.append((flag, nm, p.shape, row))
            elif self.single_use_here(init, f) and init.op not in ("param",):
                nm = self.name[init.id]
            else:
                nm = self.alloc(CT[p.dtype], math.prod(p.shape), f"c{f.id}_{k}")
                self.loops(p.shape, lambda idx, nm=nm, p=p, init=init: self.line(
                    f"{nm}[{self.flat(p.shape, idx)}] = {self.elem(init, self.bidx(init, idx))};"))
            self.name[p.id] = nm
            if k in results:
                self.name[results[k].id] = nm
        ivn = self.name[iv.id]
        a, b, s = self.elem(lo, []), self.elem(hi, []), self.elem(step, [])
        if step.op == "const" and int(step.arg) > 0:
            cond = f"{ivn} < {b}"
        else:
            cond = f"({s} > 0 ? {ivn} < {b} : {ivn} > {b})"
        self.line(f"for (int64_t {ivn} = {a}; {cond}; {ivn} += {s}) {{")
        self.ind += 1
        self.emit_block(body)
        pending = []
        for k, (p, y) in enumerate(zip(params, body.yields)):
            if y is p:
                continue
            if p.shape == ():
                t = self.tmp("y")
                self.line(f"const {self.ctype(p)} {t} = {self.elem(y, [])};")
                pending.append(f"{self.name[p.id]} = {t};")
                continue
            if self.name.get(y.id) == self.name[p.id]:
                continue
            if self.kind[y.id] == "buf" and y.op != "param":
                src = self.name[y.id]
            else:
                src = self.as_buffer_tmp(y)
            pending.append(f"memcpy({self.name[p.id]}, {src}, {SIZE[CT[p.dtype]] * math.prod(p.shape)});")
        for s_ in pending:
            self.line(s_)
        self.ind -= 1
        self.line("}")
        for flag, nm, shape, row in unset:  # the loop ran no iteration: what it started from
            ld = self.buf_ld.get(nm, shape[1])
            fill = (f"memcpy({nm} + r * {ld}, {row}, sizeof(float) * {shape[1]})" if row else
                    f"memset({nm} + r * {ld}, 0, sizeof(float) * {shape[1]})")
            self.line(f"if ({flag}) for (int64_t r = 0; r < {shape[0]}; r++) {fill};")

    def as_buffer_tmp(self, v: Value) -> str:
        name = self.alloc(CT[v.dtype], math.prod(v.shape), self.tmp())
        self.loops(v.shape, lambda idx: self.line(f"{name}[{self.flat(v.shape, idx)}] = {self.elem(v, idx)};"))
        return name

    # --- the whole kernel ----------------------------------------------------------------------
    def generate(self) -> str:
        k = self.k
        self.index(k.body)
        self.plan()
        self.fuse_loads()
        self.find_direct_dot_operands()
        self.ind = 3
        self.emit_block(k.body)
        body = self.out
        self.out = []
        params = []
        for p in k.params:
            if p.is_ptr:
                params.append(f"{PT[p.dtype.elem]} *a_{p.arg}")
            elif p.dtype.is_float:
                params.append(f"double a_{p.arg}_d")
            else:
                params.append(f"int64_t a_{p.arg}")
        self.ind = 0
        self.line(f"/* kernel {k.name}; constexprs: {', '.join(f'{n}={v!r}' for n, v in k.constexprs.items())} */")
        self.line(f"void {entry_name(k)}(int64_t g0, int64_t g1, int64_t g2"
                  + "".join(", " + p for p in params) + ") {")
        self.ind = 1
        for p in k.params:
            if not p.is_ptr and p.dtype.is_float:
                self.line(f"const float a_{p.arg} = (float)a_{p.arg}_d;")
        self.line("const int64_t oc_total = g0 * g1 * g2;")
        self.line("if (oc_total <= 0) return;")
        self.line("const int64_t oc_chunk = OC_MAX(oc_total / (16 * (int64_t)omp_get_max_threads()), 1);")
        self.line("#pragma omp parallel if (oc_total > 1)")
        self.line("{")
        self.ind = 2
        self.line(f"char *oc_sp = oc_scratch({self.scratch});")
        self.line("(void)oc_sp;")
        # chunks of about 1/16 of a thread's share, handed out on demand: a thread that the OS
        # deschedules (another process wants the core) holds back little work at the barrier
        self.line("#pragma omp for schedule(dynamic, oc_chunk)")
        self.line("for (int64_t oc_pid = 0; oc_pid < oc_total; oc_pid++) {")
        self.ind = 3
        self.line("const int64_t pid0 = oc_pid % g0, pid1 = (oc_pid / g0) % g1, pid2 = oc_pid / (g0 * g1);")
        self.line("(void)pid0; (void)pid1; (void)pid2;")
        head = self.out
        self.out = []
        self.ind = 2
        self.line("}")
        self.ind = 1
        self.line("}")
        self.ind = 0
        self.line("}")
        return "\n".join(head + body + self.out) + "\n"


def generate(k: KernelIR) -> str:
    """C source (runtime prelude + one entry function) for kernel `k`."""
    uses_dot = any(v.op == "dot" for v in k.body.walk())
    return PRELUDE + (DOT if uses_dot else "") + "\n" + _Gen(k).generate()
