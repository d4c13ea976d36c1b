"""The single-op API, opencann's aclnn: `opencann.ops.<Op>(*inputs, **attributes)` runs one op.

    >>> import numpy as np, opencann
    >>> from opencann import runtime
    >>> a = runtime.Tensor.from_numpy(np.ones((2, 3), np.float32))
    >>> y = opencann.ops.Add(a, a)                      # Tensors in -> a Tensor out, same device
    >>> z = opencann.ops.Softmax(y, axis=-1)             # ONNX attributes as keywords
    >>> v, i = opencann.ops.TopK(np.arange(6.0, dtype=np.float32), np.array([2]))  # NumPy in -> NumPy out
    >>> opencann.ops.cache_info().misses
    3

Each call is one node of a one-node graph, compiled the way a model is (`opencann.compile`: the
backend's kernels where the op has them, its NumPy reference otherwise). The compiled graph is
cached per signature: op, domain, definition (opset), attribute values, each input's dtype and
shape (element dtypes and shapes for a sequence), the number of outputs and the backend. A call with
a signature seen before runs the cached graph: no inference, no compilation. The cache is an LRU of
`cache_size()` entries; `cache_info()` counts hits and misses, `cache_clear()` empties it.

Calls take `backend=` (default: the device of the Tensor inputs when it can compile, else
opencann's default backend), `opset=` (default: the newest definition the library has), `domain=`
(only for `call`; an op name found in one domain only needs none) and `n_outputs=` (how many of the
op's outputs to return: by default its required ones, all of them where every output is optional).

This module sits in the operator layer and does not import the graph engine: the layer that can
compile graphs (`opencann.model`) registers itself with `set_compiler` when it is imported, and a
call imports it by name when nothing is registered yet.
"""

from __future__ import annotations

import difflib
import importlib
import os
import threading
from collections import OrderedDict, namedtuple
from typing import Any, Callable

import numpy as np

from .. import dtypes
from ..errors import InputError, InvalidModelError, OpenCannError
from ..ir import Graph, SequenceType, TensorType
from . import registry

__all__ = ["CacheInfo", "OpFunction", "UnknownOpError", "cache_clear", "cache_info", "cache_size", "call",
           "op_function", "op_names", "set_compiler"]

CacheInfo = namedtuple("CacheInfo", "hits misses maxsize currsize")


class UnknownOpError(OpenCannError, AttributeError):
    """`opencann.ops.<name>` for a name that is no registered op (an AttributeError too, so that
    `hasattr(opencann.ops, name)` is False)."""


# --- the hook the compiling layer fills in -----------------------------------------------------
_compiler: dict[str, Any] = {}


def set_compiler(compile: Callable, default_backend: Callable[[], str], backends: tuple) -> None:  # noqa: A002
    """Register how to compile a graph: `compile(graph, backend)` returns an object whose
    `run(feeds)` maps input names to arrays and returns a dict of outputs; `default_backend()`
    names the backend to use when a call names none; `backends` are those `compile` accepts.
    `opencann.model` calls this when it is imported."""
    _compiler.update(compile=compile, default_backend=default_backend, backends=tuple(backends))
    _cache.clear()


def _hooks() -> dict:
    if not _compiler:
        importlib.import_module("opencann.model")  # by name: it registers itself (a higher layer)
        if not _compiler:
            raise OpenCannError("no compiler is registered for the single-op API: import opencann.model "
                                "(it registers one), or call opencann.ops.single.set_compiler")
    return _compiler


# --- the cache -----------------------------------------------------------------------------------
class _Cache:
    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self.entries: OrderedDict = OrderedDict()
        self.hits = self.misses = 0
        self.lock = threading.Lock()
        self.backend_memo: dict = {}  # OPENCANN_BACKEND or device name -> backend chosen

    def get(self, key):
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                self.misses += 1
            else:
                self.hits += 1
                self.entries.move_to_end(key)
            return entry

    def put(self, key, entry) -> None:
        with self.lock:
            self.entries[key] = entry
            self.entries.move_to_end(key)
            while len(self.entries) > self.maxsize:
                self.entries.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.backend_memo.clear()
            self.hits = self.misses = 0


_cache = _Cache(int(os.environ.get("OPENCANN_SINGLE_OP_CACHE", "256")))


def cache_info() -> CacheInfo:
    """(hits, misses, maxsize, currsize) of the compiled single-op cache."""
    with _cache.lock:
        return CacheInfo(_cache.hits, _cache.misses, _cache.maxsize, len(_cache.entries))


def cache_clear() -> None:
    """Drop every compiled single op and reset the hit and miss counts."""
    _cache.clear()


def cache_size(maxsize: int | None = None) -> int:
    """The cache's bound (entries, least recently used dropped first); `maxsize` sets it (default
    256, or the `OPENCANN_SINGLE_OP_CACHE` environment variable)."""
    if maxsize is not None:
        if int(maxsize) < 0:
            raise ValueError(f"cache_size({maxsize}): the bound is a number of entries, 0 or more")
        with _cache.lock:
            _cache.maxsize = int(maxsize)
            while len(_cache.entries) > _cache.maxsize:
                _cache.entries.popitem(last=False)
    return _cache.maxsize


# --- finding ops -------------------------------------------------------------------------------
_functions: dict[tuple[str, str], "OpFunction"] = {}
_names: dict[str, list[str]] = {}  # op name -> domains defining it
_names_at = -1  # registry size when _names was built


def _domains(name: str) -> list[str]:
    global _names_at
    reg = registry._REGISTRY
    if _names_at != len(reg):
        _names.clear()
        for dom, n in sorted(reg):
            _names.setdefault(n, []).append(dom)
        _names_at = len(reg)
    return _names.get(name, [])


def op_names() -> list[str]:
    """Names callable as `opencann.ops.<name>` (ops of every domain)."""
    _domains("")
    return sorted(_names)


def _has_body(d: registry.OpDef) -> bool:
    return d.family == "control" or d.infer_subgraph_inputs is not None


def op_function(name: str, domain: str | None = None) -> "OpFunction":
    """The callable for op `name` (what `opencann.ops.<name>` returns). Raises `UnknownOpError`
    with the closest names when there is no such op."""
    key = (name, domain)
    f = _functions.get(key)
    if f is not None and _names_at == len(registry._REGISTRY):
        return f
    doms = _domains(name)
    if domain is not None:
        domain = registry.normalize_domain(domain)
        if domain not in doms:
            where = f" (it is defined in {', '.join(repr(x) for x in doms)})" if doms else ""
            raise UnknownOpError(f"opencann.ops: there is no op {name!r} in domain {domain!r}{where}")
    elif not doms:
        close = difflib.get_close_matches(name, op_names(), n=3, cutoff=0.6)
        if not close:
            lowered = {n.lower(): n for n in op_names()}
            close = [lowered[n] for n in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)]
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownOpError(f"opencann.ops has no op {name!r}{hint} (opencann.ops.op_names() lists the "
                             f"{len(op_names())} ops; names are ONNX's, e.g. 'MatMul', 'Relu')")
    elif "" in doms:
        domain = ""
    elif len(doms) == 1:
        domain = doms[0]
    else:
        raise UnknownOpError(f"op {name!r} is defined in several domains ({', '.join(doms)}); call it as "
                             f"opencann.ops.call({name!r}, ..., domain=...)")
    f = _functions[key] = OpFunction(name, domain)
    return f


def call(op: str, *inputs, domain: str | None = None, **kwargs):
    """Run op `op` once: `call("Add", a, b)` is `opencann.ops.Add(a, b)`; `domain` picks among
    domains that define the same name."""
    return op_function(op, domain)(*inputs, **kwargs)


# --- one call ----------------------------------------------------------------------------------
def _attr_key(v):
    """A hashable, type-exact form of an attribute value for the cache key."""
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.str, v.shape, v.tobytes() if v.dtype != object else tuple(v.ravel().tolist()))
    if isinstance(v, list):
        return ("list", tuple(_attr_key(x) for x in v))
    return (type(v).__name__, v)


def _attr_value(op: str, k: str, v, default):
    """A user's attribute value in the form the ONNX importer gives (ints, floats, strs, lists,
    arrays); an int where the op's default is a float becomes a float."""
    if isinstance(v, Graph) or (isinstance(v, (list, tuple)) and any(isinstance(x, Graph) for x in v)):
        raise InvalidModelError(f"opencann.ops.{op}: attribute {k!r} is a graph; ops with bodies are not "
                                "single ops (build a graph and opencann.compile it)")
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, int) and isinstance(default, float):
        return float(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    if isinstance(v, (list, tuple)):
        return [_attr_value(op, k, x, None) for x in v]
    return v


def _scalar_array(x, like: list[np.ndarray]) -> np.ndarray:
    """A Python scalar as a 0-d array: the dtype of the first input array of its kind (float with
    float, int with int), else bool, int64 or float32."""
    if isinstance(x, bool):
        return np.asarray(x, np.bool_)
    want = (lambda a: a.dtype.kind == "f") if isinstance(x, float) else (lambda a: a.dtype.kind in "iu")
    for a in like:
        if want(a):
            return np.asarray(x, a.dtype)
    return np.asarray(x, np.float32 if isinstance(x, float) else np.int64)


def _type_of(op: str, pos: int, x) -> tuple[Any, Any]:
    """(IR type, cache key) of an input."""
    if isinstance(x, list):
        if not x:
            raise InputError(f"opencann.ops.{op}: input {pos} is an empty sequence, whose element type is "
                             "unknown; build a graph with a SequenceEmpty node instead")
        elems = [_type_of(op, pos, e) for e in x]
        first = elems[0][0]
        if any(t.dtype != first.dtype for t, _ in elems):
            raise InputError(f"opencann.ops.{op}: input {pos} is a sequence whose elements have different "
                             f"dtypes ({', '.join(sorted({t.dtype.name for t, _ in elems}))}); make them one dtype")
        shapes = {t.shape for t, _ in elems}
        ranks = {len(s) for s in shapes}
        shape = first.shape if len(shapes) == 1 else (tuple([None] * ranks.pop()) if len(ranks) == 1 else None)
        return SequenceType(TensorType(first.dtype, shape)), ("seq", tuple(k for _, k in elems))
    try:
        dt = dtypes.from_numpy(x.dtype)
    except Exception as e:  # noqa: BLE001 - re-raised naming the input
        raise InputError(f"opencann.ops.{op}: input {pos} has dtype {x.dtype}, which opencann does not "
                         f"support ({e}); convert it with .astype(...)") from None
    return TensorType(dt, x.shape), (dt.name, x.shape)


class OpFunction:
    """`opencann.ops.<Op>`: call it with the op's inputs (runtime Tensors, NumPy arrays, Python
    scalars, lists of arrays for sequences, None for an omitted optional input) and its ONNX
    attributes as keywords. See `opencann.ops.single`."""

    def __init__(self, name: str, domain: str):
        self.name = name
        self.domain = domain
        d = self.opdef
        self.__doc__ = f"{self._signature(d)}\n\n{d.doc}"  # what help() shows

    @property
    def opdef(self) -> registry.OpDef:
        """The newest definition of the op."""
        return registry.lookup(self.name, self.domain)

    def _signature(self, d: registry.OpDef) -> str:
        ins = [p.name + ("=None" if p.optional and not p.variadic else "") for p in d.inputs]
        ins = [("*" + p.name) if p.variadic else s for p, s in zip(d.inputs, ins)]
        attrs = [f"{k}={'REQUIRED' if v is registry.REQUIRED else repr(v)}" for k, v in d.attrs.items()]
        star = [] if d.inputs and d.inputs[-1].variadic else ["*"]
        return (f"opencann.ops.{self.name}({', '.join(ins + star + attrs + ['backend=None', 'opset=None'])})"
                f" -> {', '.join(p.name for p in d.outputs)}")

    def __repr__(self) -> str:
        dom = f" (domain {self.domain!r})" if self.domain else ""
        return f"<single op {self.name}{dom}: {self._signature(self.opdef)}>"

    def __call__(self, *inputs, backend: str | None = None, opset: int | None = None,
                 n_outputs: int | None = None, **attrs):
        name = self.name
        d = registry.lookup(name, self.domain, opset)
        if d is None:
            first = registry.lookup(name, self.domain, None)
            if first is None:
                raise UnknownOpError(f"opencann.ops: op {name!r} is no longer registered")
            since = min(v.since for v in registry._REGISTRY[(self.domain, name)])
            raise InvalidModelError(f"opencann.ops.{name}: opset={opset} is older than the op's first "
                                    f"definition (opset {since}); pass opset={since} or newer, or none")
        if _has_body(d):
            raise InvalidModelError(f"opencann.ops.{name} runs subgraphs (its bodies are attributes), so it is "
                                    "not a single op: build a graph with it (opencann.frontends or ONNX) and "
                                    "opencann.compile that")

        # inputs: host arrays (a host-memory Tensor is read in place), and the device they came from
        device = None
        arrays: list = []
        for pos, x in enumerate(inputs):
            if x is None or isinstance(x, (bool, int, float)):
                arrays.append(x)
                continue
            x, dev = _host(name, pos, x)
            if dev is not None:
                if device is not None and dev is not device:
                    raise InputError(f"opencann.ops.{name}: inputs are on different devices ({device.name} and "
                                     f"{dev.name}); copy them to one device first")
                device = dev
            arrays.append(x)
        like = [a for a in arrays if isinstance(a, np.ndarray)]
        arrays = [_scalar_array(a, like) if isinstance(a, (bool, int, float)) else a for a in arrays]
        while arrays and arrays[-1] is None:
            arrays.pop()

        attrs = {k: _attr_value(name, k, v, d.attrs.get(k)) for k, v in attrs.items()}
        types = [None if a is None else _type_of(name, i, a) for i, a in enumerate(arrays)]
        hooks = _compiler or _hooks()
        be = backend or _pick_backend(hooks, device)
        n_out = _output_count(d, name, attrs, arrays, n_outputs)
        key = (self.domain, name, d.since, tuple(sorted((k, _attr_key(v)) for k, v in attrs.items())),
               tuple(None if t is None else t[1] for t in types), n_out, be)

        entry = _cache.get(key)
        if entry is None:
            entry = _compile(hooks, d, self.domain, attrs, [None if t is None else t[0] for t in types], n_out, be)
            if _cache.maxsize:
                _cache.put(key, entry)
        model, in_names, out_names = entry
        feeds = {n: a for n, a in zip(in_names, arrays) if n is not None}
        results = model.run(feeds)
        outs = [_deliver(results[n], device, like) for n in out_names]
        return outs[0] if len(outs) == 1 else tuple(outs)


def _host(op: str, pos: int, x):
    """(host data, device or None) of an input that is not None or a Python scalar."""
    from ..runtime import Tensor  # the runtime is a lower layer; imported when first needed

    if isinstance(x, Tensor):
        if x.buffer is None:
            raise InputError(f"opencann.ops.{op}: input {pos} ({x!r}) has been freed")
        from ..backends.base import HostMemory

        data = x.host_view() if isinstance(x.device.backend, HostMemory) else x.numpy()
        return data, x.device
    if isinstance(x, (list, tuple)) and x and all(isinstance(e, (np.ndarray, Tensor)) for e in x):
        elems = [_host(op, pos, e) for e in x]
        devs = {id(dv): dv for _, dv in elems if dv is not None}
        if len(devs) > 1:
            raise InputError(f"opencann.ops.{op}: the elements of input {pos} are on different devices")
        return [e for e, _ in elems], next(iter(devs.values()), None)
    if isinstance(x, (list, tuple)) and not x:
        return [], None
    if isinstance(x, np.ndarray):
        return x, None
    try:
        a = np.asarray(x)
        if a.dtype == object and not all(isinstance(e, str) for e in a.ravel().tolist()):
            raise TypeError("its elements are neither numbers nor strings")
    except Exception as e:  # noqa: BLE001 - re-raised naming the input
        raise InputError(f"opencann.ops.{op}: input {pos} is a {type(x).__name__}, which is no tensor "
                         f"({e}); pass a runtime.Tensor, a NumPy array, a scalar or None") from None
    return a, None


def _pick_backend(hooks: dict, device) -> str:
    memo = _cache.backend_memo
    k = ("device", device.name) if device is not None else ("env", os.environ.get("OPENCANN_BACKEND"))
    be = memo.get(k)
    if be is None:
        be = None
        if device is not None:
            kind = device.name.split(":")[0]
            available = getattr(device.backend, "is_available", None)  # ref has none: it always runs
            if kind in hooks["backends"] and (available is None or available()):
                be = kind
        be = memo[k] = be or hooks["default_backend"]()
    return be


def _output_count(d: registry.OpDef, op: str, attrs: dict, arrays: list, n_outputs: int | None) -> int:
    outs = d.outputs
    if n_outputs is not None:
        if not 1 <= int(n_outputs) <= d.max_outputs:
            raise InvalidModelError(f"opencann.ops.{op}: n_outputs={n_outputs}, but the op has "
                                    f"{d.max_outputs} output(s) ({', '.join(p.name for p in outs)})")
        return int(n_outputs)
    if not (outs and outs[-1].variadic):
        required = sum(1 for p in outs if not p.optional)
        return required or len(outs)
    fixed = len(outs) - 1
    if attrs.get("num_outputs") is not None:
        return fixed + int(attrs["num_outputs"])
    if isinstance(attrs.get("split"), list):
        return fixed + len(attrs["split"])
    split_at = next((i for i, p in enumerate(d.inputs) if p.name == "split"), None)
    if split_at is not None and split_at < len(arrays) and isinstance(arrays[split_at], np.ndarray):
        return fixed + int(arrays[split_at].size)
    raise InvalidModelError(f"opencann.ops.{op}: the number of outputs is not known from the call; "
                            "pass n_outputs=N" + (" or num_outputs=N" if "num_outputs" in d.attrs else ""))


def _compile(hooks: dict, d: registry.OpDef, domain: str, attrs: dict, types: list, n_out: int, backend: str):
    """(compiled one-node graph, input names by position (None where omitted), output names)."""
    g = Graph(f"opencann.ops.{d.name}", opset={domain: d.since})
    in_names, node_inputs = [], []
    for i, t in enumerate(types):
        p = d.inputs[min(i, len(d.inputs) - 1)] if d.inputs else registry.Param(f"input{i}")
        if t is None:
            in_names.append(None)
            node_inputs.append(None)
            continue
        base = f"{p.name}_{i - len(d.inputs) + 1}" if p.variadic else p.name
        v = g.add_input(g.fresh_name(base or f"input{i}"), t)
        in_names.append(v.name)
        node_inputs.append(v)
    out_names = []
    for i in range(n_out):
        p = d.outputs[min(i, len(d.outputs) - 1)]
        out_names.append(g.fresh_name(f"{p.name}_{i - len(d.outputs) + 1}" if p.variadic else p.name))
    outs = g.add_node(d.name, node_inputs, out_names, attrs, name=d.name, domain=domain)
    g.outputs.extend(outs)
    return hooks["compile"](g, backend), in_names, [o.name for o in outs]


def _deliver(x, device, inputs: list):
    """An output as the caller gets it: a Tensor on `device`, else an array that shares no memory
    with the caller's inputs."""
    if x is None:
        return None
    if isinstance(x, list):
        return [_deliver(e, device, inputs) for e in x]
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if device is not None:
        from ..runtime import Tensor

        return Tensor.from_numpy(x, device)
    if not x.flags.writeable or any(np.may_share_memory(x, a) for a in inputs):
        x = x.copy()
    return x
