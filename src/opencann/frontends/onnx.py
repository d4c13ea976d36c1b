"""The ONNX frontend: reads an ONNX model (a path, bytes or a `ModelProto`) into opencann's IR.

Handles opsets 7 up to the newest the installed onnx knows, external-data initializers, subgraph
attributes (If/Loop/Scan bodies), model-local functions (inlined), sequence and optional types,
and symbolic dims from `dim_param`.

    >>> from opencann.frontends.onnx import import_model
    >>> graph = import_model("model.onnx")          # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from .. import dtypes
from ..errors import InvalidModelError, ModelLoadError
from ..ir import Graph, OptionalType, SequenceType, TensorType, Value

MIN_OPSET = 7
MAX_OPSET = onnx.defs.onnx_opset_version()


def load_proto(model: Any) -> tuple[onnx.ModelProto, str]:
    """Read `model` into a `ModelProto`; returns it with a name for messages."""
    if isinstance(model, onnx.ModelProto):
        return model, model.graph.name or "<ModelProto>"
    if isinstance(model, (bytes, bytearray)):
        try:
            return onnx.load_model_from_string(bytes(model)), "<bytes>"
        except Exception as e:  # noqa: BLE001
            raise ModelLoadError(f"the bytes given are not an ONNX model ({e}); pass a path, "
                                 "bytes of a .onnx file, or an onnx.ModelProto") from e
    path = os.fspath(model)
    if not os.path.exists(path):
        raise ModelLoadError(f"model file {path!r} does not exist")
    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as e:  # noqa: BLE001
        raise ModelLoadError(f"{path!r} is not a readable ONNX model: {type(e).__name__}: {e}. "
                             "Is the file truncated, or not an .onnx file?") from e
    if not proto.graph.node and not proto.graph.output:
        raise ModelLoadError(f"{path!r} holds no ONNX graph (is it an ONNX file?)")
    # external weights stay in their files: the importer memory-maps them (see `ExternalData`)
    return proto, path


def convert_type(tp: onnx.TypeProto, where: str):
    """An ONNX TypeProto as an IR type (None when undefined)."""
    kind = tp.WhichOneof("value")
    if kind == "tensor_type" or kind == "sparse_tensor_type":
        tt = getattr(tp, kind)
        if tt.elem_type == 0:
            return None
        try:
            dt = dtypes.from_onnx(tt.elem_type)
        except ValueError as e:
            raise ModelLoadError(f"{where}: {e}") from None
        if not tt.HasField("shape"):
            return TensorType(dt, None)
        dims = []
        for d in tt.shape.dim:
            w = d.WhichOneof("value")
            dims.append(int(d.dim_value) if w == "dim_value" else (d.dim_param or None) if w == "dim_param" else None)
        return TensorType(dt, tuple(dims))
    if kind == "sequence_type":
        return SequenceType(convert_type(tp.sequence_type.elem_type, where))
    if kind == "optional_type":
        return OptionalType(convert_type(tp.optional_type.elem_type, where))
    if kind is None:
        return None
    raise ModelLoadError(f"{where}: ONNX type {kind!r} is not supported by opencann")


class ExternalData:
    """Reads initializers stored outside the .onnx file. Tensors whose bytes are the array's bytes
    are memory-mapped read-only (no copy: a model's weights are never held twice); packed types
    (int4, float4, ...) go through onnx's reader."""

    def __init__(self, model_name: str, base_dir: str):
        self.model_name = model_name
        self.base_dir = os.path.abspath(base_dir)

    def array(self, t: onnx.TensorProto) -> np.ndarray:
        info = {e.key: e.value for e in t.external_data}
        where = f"model {self.model_name!r}: initializer {t.name!r}"
        loc = info.get("location", "")
        path = os.path.abspath(os.path.join(self.base_dir, loc))
        if not loc or os.path.isabs(loc) or os.path.commonpath([path, self.base_dir]) != self.base_dir:
            raise ModelLoadError(f"{where} names external data {loc!r} outside the model's folder")
        if not os.path.isfile(path):
            raise ModelLoadError(f"{where}: its external data file {loc!r} is missing; keep the data "
                                 f"files next to the model, under the names it records ({self.base_dir})")
        dt = dtypes.from_onnx(t.data_type)
        shape = tuple(int(d) for d in t.dims)
        offset = int(info.get("offset", 0))
        nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        if dt.bits < 8 or dt.kind == "string" or sys.byteorder != "little":
            copy = onnx.TensorProto()
            copy.CopyFrom(t)
            onnx.external_data_helper.load_external_data_for_tensor(copy, self.base_dir)
            return to_array(copy)
        if offset + nbytes > os.path.getsize(path):
            raise ModelLoadError(f"{where}: {loc!r} is too short ({os.path.getsize(path)} bytes; the tensor "
                                 f"needs bytes {offset}..{offset + nbytes}). Is the data file truncated?")
        if nbytes == 0:
            return np.zeros(shape, dt.np)
        return np.memmap(path, dtype=dt.np, mode="r", offset=offset, shape=shape)


def to_array(t: onnx.TensorProto) -> np.ndarray:
    """An ONNX tensor as a NumPy array; strings become an object array of `str`."""
    a = numpy_helper.to_array(t)
    if a.dtype == object:
        a = np.vectorize(lambda s: s.decode("utf-8") if isinstance(s, bytes) else s, otypes=[object])(a) if a.size else a
    return a


def _attr_value(a: onnx.AttributeProto, convert_graph, where: str):
    T = onnx.AttributeProto
    if a.ref_attr_name:
        raise InvalidModelError(f"{where}: attribute {a.name!r} refers to a function attribute outside a function")
    if a.type == T.FLOAT:
        return float(a.f)
    if a.type == T.INT:
        return int(a.i)
    if a.type == T.STRING:
        return a.s.decode("utf-8", "surrogateescape")
    if a.type == T.TENSOR:
        return to_array(a.t)
    if a.type == T.SPARSE_TENSOR:
        return _sparse_to_dense(a.sparse_tensor)
    if a.type == T.GRAPH:
        return convert_graph(a.g)
    if a.type == T.FLOATS:
        return [float(x) for x in a.floats]
    if a.type == T.INTS:
        return [int(x) for x in a.ints]
    if a.type == T.STRINGS:
        return [s.decode("utf-8", "surrogateescape") for s in a.strings]
    if a.type == T.TENSORS:
        return [to_array(t) for t in a.tensors]
    if a.type == T.GRAPHS:
        return [convert_graph(g) for g in a.graphs]
    if a.type == T.TYPE_PROTO:
        return convert_type(a.tp, where)
    if a.type == T.TYPE_PROTOS:
        return [convert_type(t, where) for t in a.type_protos]
    raise InvalidModelError(f"{where}: attribute {a.name!r} has an unsupported type {a.type}")


def _sparse_to_dense(sp: onnx.SparseTensorProto) -> np.ndarray:
    values = to_array(sp.values)
    idx = to_array(sp.indices) if sp.indices.dims else np.zeros((0,), np.int64)
    dense = np.zeros(int(np.prod(sp.dims)), dtype=values.dtype)
    if idx.ndim == 2:  # coordinates, one row per value
        idx = np.ravel_multi_index(idx.T, tuple(sp.dims))
    dense[idx] = values
    return dense.reshape(tuple(sp.dims))


class _Importer:
    def __init__(self, model_name: str, base_dir: str):
        self.model_name = model_name
        self.counter = 0
        self.external = ExternalData(model_name, base_dir)

    def array(self, t: onnx.TensorProto) -> np.ndarray:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            return self.external.array(t)
        return to_array(t)

    def graph(self, gp: onnx.GraphProto, outer: list[dict[str, Value]], opset: dict[str, int]) -> Graph:
        g = Graph(gp.name or "main", opset)
        scope: dict[str, Value] = {}
        scopes = outer + [scope]
        declared = {vi.name: vi.type for vi in gp.value_info}
        where_g = f"model {self.model_name!r}, graph {g.name!r}"

        def lookup(name: str, user: str) -> Value:
            for s in reversed(scopes):
                if name in s:
                    return s[name]
            raise InvalidModelError(f"{where_g}: {user} reads {name!r}, which no node, input or "
                                    "initializer defines (is the graph sorted topologically?)")

        init_names = set()
        for t in gp.initializer:
            try:
                arr = self.array(t)
            except ModelLoadError:
                raise
            except Exception as e:  # noqa: BLE001
                raise ModelLoadError(f"{where_g}: initializer {t.name!r} cannot be read: {e}") from e
            scope[t.name] = g.add_constant(t.name, arr)
            init_names.add(t.name)
        for t in gp.sparse_initializer:
            arr = _sparse_to_dense(t)
            scope[t.values.name] = g.add_constant(t.values.name, arr)
            init_names.add(t.values.name)
        for vi in gp.input:
            if vi.name in init_names:
                continue  # an initializer listed as input (old exporters): a constant, not a feed
            scope[vi.name] = g.add_input(vi.name, convert_type(vi.type, f"{where_g}, input {vi.name!r}"))

        for i, n in enumerate(gp.node):
            label = n.name or (n.output[0] if n.output else f"#{i}")
            where = f"{where_g}, node {label!r} ({n.op_type})"
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and len(n.attribute) == 1 and n.output:
                scope[n.output[0]] = g.add_constant(g.fresh_name(n.output[0]), self._constant(n, where))
                continue
            ins = [None if name == "" else lookup(name, f"node {label!r} ({n.op_type})") for name in n.input]
            attrs = {a.name: _attr_value(a, lambda sub: self.graph(sub, scopes, {}), where) for a in n.attribute}
            outs = []
            for name in n.output:
                if name == "":
                    self.counter += 1
                    name = g.fresh_name(f"_unused{self.counter}")
                if name in scope:
                    raise InvalidModelError(f"{where}: output {name!r} is already defined (ONNX graphs are SSA)")
                v = Value(name, convert_type(declared[name], where) if name in declared else None)
                outs.append(v)
            g.add_node(n.op_type, ins, outs, attrs, n.name, n.domain if n.domain != "ai.onnx" else "")
            for v in outs:
                scope[v.name] = v

        for vi in gp.output:
            v = lookup(vi.name, "graph output")
            t = convert_type(vi.type, f"{where_g}, output {vi.name!r}")
            if t is not None and v.type is None:
                v.type = t
            g.outputs.append(v)
        return g

    def _constant(self, n: onnx.NodeProto, where: str) -> np.ndarray:
        a = n.attribute[0]
        v = _attr_value(a, None, where)
        if a.name in ("value", "sparse_value"):
            return v
        dt = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64,
              "value_ints": np.int64, "value_string": object, "value_strings": object}.get(a.name)
        if dt is None:
            raise InvalidModelError(f"{where}: Constant has an unknown attribute {a.name!r}")
        return np.array(v, dtype=dt)


def import_model(model: Any) -> Graph:
    """Read an ONNX model into an IR `Graph` (types on graph inputs and outputs as declared; run
    `opencann.engine` inference for the rest)."""
    proto, name = load_proto(model)
    opset = {}
    for imp in proto.opset_import:
        dom = "" if imp.domain in ("", "ai.onnx") else imp.domain
        opset[dom] = int(imp.version)
    if "" not in opset and proto.ir_version < 3:
        opset[""] = 1
    v = opset.get("")
    if v is not None and v > MAX_OPSET:
        raise ModelLoadError(f"model {name!r} uses opset {v}, newer than the newest this opencann knows "
                             f"({MAX_OPSET}, from onnx {onnx.__version__}). Re-export it at opset "
                             f"{MAX_OPSET} or lower, or upgrade onnx and opencann.")
    if proto.functions:
        try:
            proto = onnx.inliner.inline_local_functions(proto)
        except Exception as e:  # noqa: BLE001
            raise ModelLoadError(f"model {name!r}: its local functions cannot be inlined: {e}") from e
    base_dir = os.path.dirname(os.path.abspath(os.fspath(model))) if isinstance(model, (str, os.PathLike)) else os.getcwd()
    imp = _Importer(name, base_dir)
    g = imp.graph(proto.graph, [], opset)
    return g
