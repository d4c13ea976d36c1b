"""The IR's text form: printed by `Graph.to_text()`, read back by `parse()` to an equal graph.

    graph mlp(%x: float32[batch,4]) -> (%y) opset {"": 17} {
      %w: float32[4,2] = const [[1.0, 2.0], ...]
      %h: float32[batch,2] = MatMul(%x, %w)
      %y: float32[batch,2] = Relu(%h) as "relu_1"
    }

Values are `%name` (quoted, `%"a/b:0"`, when the name has other characters); an omitted optional
input is `_`; attributes follow the call in braces (`{axis=1, mode="constant", body=graph ...}`);
small constants print as nested lists, large ones as `b64"..."` of their raw bytes.
"""

from __future__ import annotations

import base64
import json
import math
import re

import numpy as np

from .. import dtypes
from .graph import Graph, Value
from .types import OptionalType, SequenceType, TensorType

_SIMPLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_LIST_MAX = 64  # constants up to this many elements print as readable lists


class TextError(ValueError):
    """The text is not a valid graph; the message gives the line and column."""


# ------------------------------------------------------------------------------------------------
# printing
# ------------------------------------------------------------------------------------------------
def _name(n: str) -> str:
    return n if _SIMPLE.match(n) and n not in ("nan", "inf") else json.dumps(n)


def _vref(v: Value | None) -> str:
    return "_" if v is None else "%" + _name(v.name)


def format_type(t) -> str:
    if t is None:
        return "?"
    if isinstance(t, TensorType):
        if t.shape is None:
            return f"{t.dtype.name}[*]"
        dims = ",".join("?" if d is None else (str(d) if isinstance(d, int) else _name(d)) for d in t.shape)
        return f"{t.dtype.name}[{dims}]"
    if isinstance(t, SequenceType):
        return f"seq<{format_type(t.elem)}>"
    if isinstance(t, OptionalType):
        return f"opt<{format_type(t.elem)}>"
    raise TypeError(f"cannot print type {t!r}")


def _float(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(float(x))


def _list(a) -> str:
    if isinstance(a, list):
        return "[" + ", ".join(_list(x) for x in a) + "]"
    if isinstance(a, (bool, np.bool_)):
        return "true" if a else "false"
    if isinstance(a, (int, np.integer)):
        return str(int(a))
    if isinstance(a, (bytes, str)):
        return json.dumps(a.decode("utf-8", "surrogateescape") if isinstance(a, bytes) else a)
    return _float(float(a))


def format_tensor(a: np.ndarray, elide_above: int | None = None) -> str:
    dt = dtypes.from_numpy(a.dtype)
    if elide_above is not None and a.size > elide_above:
        return f"<{'x'.join(map(str, a.shape)) or 'scalar'} {dt.name}>"
    listable = dt.kind in ("int", "uint", "bool", "string") or dt in (dtypes.float16, dtypes.float32, dtypes.float64, dtypes.bfloat16)
    if listable and dt.bits >= 8 and a.size <= _LIST_MAX or dt is dtypes.string:
        data = a.astype(np.float64).tolist() if dt is dtypes.bfloat16 else a.tolist()
        return _list(data)
    raw = np.ascontiguousarray(a).tobytes()
    return 'b64"' + base64.b64encode(raw).decode() + '"'


def _attr(v, indent: str, elide_above) -> str:
    if isinstance(v, Graph):
        return print_graph(v, indent, elide_above)
    if isinstance(v, np.ndarray):
        return f"tensor {format_type(TensorType(dtypes.from_numpy(v.dtype), v.shape))} {format_tensor(v, elide_above)}"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _float(v)
    if isinstance(v, (str, bytes)):
        return _list(v)
    if isinstance(v, (TensorType, SequenceType, OptionalType)):
        return "type " + format_type(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_attr(x, indent, elide_above) for x in v) + "]"
    raise TypeError(f"cannot print attribute value {v!r}")


def print_graph(g: Graph, indent: str = "", elide_above: int | None = None,
                weights: dict | None = None) -> str:
    """The text form of `g`. With a `weights` dict, the top-level graph's constants of more than
    64 elements are moved into it (by value name) and printed as `const @weights`."""
    ins = ", ".join(f"{_vref(v)}: {format_type(v.type)}" for v in g.inputs)
    outs = ", ".join(_vref(v) for v in g.outputs)
    opset = ""
    if g.opset:
        opset = " opset {" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in sorted(g.opset.items())) + "}"
    lines = [f"graph {_name(g.name)}({ins}) -> ({outs}){opset} {{"]
    inner = indent + "  "
    for c in g.constants:
        if weights is not None and c.const.size > _LIST_MAX and c.const.dtype != object:
            weights[c.name] = c.const
            data = "@weights"
        else:
            data = format_tensor(c.const, elide_above)
        lines.append(f"{inner}{_vref(c)}: {format_type(c.type)} = const {data}")
    for n in g.nodes:
        outs_s = ", ".join(f"{_vref(o)}: {format_type(o.type)}" for o in n.outputs)
        op = (_name(n.domain) + "::" if n.domain else "") + _name(n.op)
        args = ", ".join(_vref(v) for v in n.inputs)
        line = f"{inner}{outs_s} = {op}({args})"
        if n.attrs:
            line += " {" + ", ".join(f"{_name(k)}={_attr(v, inner, elide_above)}" for k, v in n.attrs.items()) + "}"
        if n.name:
            line += f" as {json.dumps(n.name)}"
        lines.append(line)
    lines.append(indent + "}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# parsing
# ------------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<b64>b64"[A-Za-z0-9+/=]*")
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<num>-?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\d+|inf\b|nan\b)|-inf\b)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>->|::|@|[%(){}\[\],:=<>*?_])
""", re.VERBOSE)


class _Parser:
    def __init__(self, text: str, weights: dict | None = None):
        self.text = text
        self.weights = weights
        self.toks: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                self._fail_at(pos, f"unexpected character {text[pos]!r}")
            if m.lastgroup != "ws":
                self.toks.append((m.lastgroup, m.group(), pos))
            pos = m.end()
        self.i = 0

    def _fail_at(self, pos: int, msg: str):
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        raise TextError(f"line {line}, column {col}: {msg}")

    def fail(self, msg: str):
        pos = self.toks[self.i][2] if self.i < len(self.toks) else len(self.text)
        self._fail_at(pos, msg)

    def peek(self, k: int = 0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ("eof", "", len(self.text))

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        t = self.peek()
        if (value is not None and t[1] != value) or (kind is not None and t[0] != kind):
            self.fail(f"expected {value or kind}, found {t[1] or 'end of text'!r}")
        self.i += 1
        return t[1]

    def accept(self, value: str) -> bool:
        if self.peek()[1] == value and self.peek()[0] != "str":
            self.i += 1
            return True
        return False

    def name(self) -> str:
        kind, tok, _ = self.peek()
        if kind == "str":
            self.i += 1
            return json.loads(tok)
        return self.take(kind="ident")

    # types
    def type(self):
        if self.accept("?"):
            return None
        kind = self.take(kind="ident")
        if kind in ("seq", "opt"):
            self.take("<")
            elem = self.type()
            self.take(">")
            return SequenceType(elem) if kind == "seq" else OptionalType(elem)
        try:
            dt = dtypes.by_name(kind)
        except ValueError as e:
            self.i -= 1
            self.fail(str(e))
        self.take("[")
        if self.accept("*"):
            self.take("]")
            return TensorType(dt, None)
        dims = []
        while not self.accept("]"):
            if dims:
                self.take(",")
            kind_, tok, _ = self.peek()
            if tok == "?":
                self.i += 1
                dims.append(None)
            elif kind_ == "num":
                self.i += 1
                dims.append(int(tok))
            else:
                dims.append(self.name())
        return TensorType(dt, tuple(dims))

    # literals
    def literal(self):
        kind, tok, _ = self.peek()
        if tok == "[" and kind == "punct":
            self.i += 1
            items = []
            while not self.accept("]"):
                if items:
                    self.take(",")
                items.append(self.literal())
            return items
        self.i += 1
        if kind == "num":
            return float(tok) if any(c in tok for c in ".eEni") else int(tok)
        if kind == "str":
            return json.loads(tok)
        if tok in ("true", "false"):
            return tok == "true"
        self.i -= 1
        self.fail(f"expected a literal, found {tok!r}")

    def tensor(self, t: TensorType) -> np.ndarray:
        kind, tok, _ = self.peek()
        if kind == "b64":
            self.i += 1
            raw = base64.b64decode(tok[4:-1])
            return np.frombuffer(raw, dtype=t.dtype.np).reshape(t.shape).copy()
        data = self.literal()
        if t.dtype is dtypes.string:
            return np.array(data, dtype=object).reshape(t.shape)
        return np.array(data, dtype=np.float64 if t.dtype is dtypes.bfloat16 else None).astype(t.dtype.np).reshape(t.shape)

    def attr_value(self, scopes):
        kind, tok, _ = self.peek()
        if kind == "ident" and tok == "graph":
            return self.graph(scopes)
        if kind == "ident" and tok == "tensor":
            self.i += 1
            t = self.type()
            return self.tensor(t)
        if kind == "ident" and tok == "type":
            self.i += 1
            return self.type()
        if tok == "[" and kind == "punct" and self.peek(1)[1] == "graph":
            self.i += 1
            gs = [self.graph(scopes)]
            while self.accept(","):
                gs.append(self.graph(scopes))
            self.take("]")
            return gs
        return self.literal()

    # graphs
    def graph(self, scopes: list[dict[str, Value]]) -> Graph:
        self.take("graph")
        g = Graph(self.name())
        scope: dict[str, Value] = {}
        inner = scopes + [scope]

        def define(v: Value):
            scope[v.name] = v

        def lookup(name: str) -> Value:
            for s in reversed(inner):
                if name in s:
                    return s[name]
            self.fail(f"value %{name} is used before it is defined")

        self.take("(")
        while not self.accept(")"):
            if g.inputs:
                self.take(",")
            self.take("%")
            n = self.name()
            self.take(":")
            define(g.add_input(n, self.type()))
        self.take("->")
        self.take("(")
        out_names = []
        while not self.accept(")"):
            if out_names:
                self.take(",")
            self.take("%")
            out_names.append(self.name())
        if self.accept("opset"):
            self.take("{")
            while not self.accept("}"):
                if g.opset:
                    self.take(",")
                dom = json.loads(self.take(kind="str"))
                self.take(":")
                g.opset[dom] = int(self.take(kind="num"))
        self.take("{")
        while not self.accept("}"):
            outs = []
            while True:
                self.take("%")
                n = self.name()
                self.take(":")
                outs.append((n, self.type()))
                if not self.accept(","):
                    break
            self.take("=")
            if self.accept("const"):
                (n, t), = outs
                if self.accept("@"):
                    self.take("weights")
                    if self.weights is None or n not in self.weights:
                        self.fail(f"constant %{n} refers to weights that were not given")
                    define(g.add_constant(n, self.weights[n], t))
                else:
                    define(g.add_constant(n, self.tensor(t), t))
                continue
            op = self.name()
            domain = ""
            if self.accept("::"):
                domain, op = op, self.name()
            self.take("(")
            args: list[Value | None] = []
            while not self.accept(")"):
                if args:
                    self.take(",")
                if self.accept("_"):
                    args.append(None)
                else:
                    self.take("%")
                    args.append(lookup(self.name()))
            attrs = {}
            if self.accept("{"):
                while not self.accept("}"):
                    if attrs:
                        self.take(",")
                    k = self.name()
                    self.take("=")
                    attrs[k] = self.attr_value(inner)
            node_name = ""
            if self.accept("as"):
                node_name = json.loads(self.take(kind="str"))
            values = g.add_node(op, args, [n for n, _ in outs], attrs, node_name, domain, [t for _, t in outs])
            for v in values:
                define(v)
        g.outputs = [lookup(n) for n in out_names]
        return g


def parse(text: str, weights: dict | None = None) -> Graph:
    """Read a graph from its text form (the inverse of `Graph.to_text()`); `weights` supplies the
    constants printed as `const @weights`."""
    p = _Parser(text, weights)
    g = p.graph([])
    if p.peek()[0] != "eof":
        p.fail("unexpected text after the graph")
    return g
