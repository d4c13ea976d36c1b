"""The public compile API: `opencann.compile(model, backend=None) -> CompiledModel`.

    >>> import opencann, numpy as np
    >>> m = opencann.compile("mlp.onnx")                                # doctest: +SKIP
    >>> m.run({"x": np.zeros((1, 784), np.float32)})["y"].shape         # doctest: +SKIP
    (1, 10)
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from . import dtypes
from .engine import Interpreter, bind_ops, ocm
from .engine.executor import CpuExecutor
from .engine.infer import infer_graph
from .engine.passes import DEFAULT_PASSES, Pipeline
from .errors import InputError, ModelLoadError, OpenCannError
from .ir import Graph, OptionalType, SequenceType, TensorType, Value
from .backends import default_backend
from .tile.kernel import ProgramLog

BACKENDS = ("ref", "cpu")


def _model_name(model: Any) -> str:
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    if isinstance(model, Graph):
        return model.name
    return getattr(getattr(model, "graph", None), "name", None) or type(model).__name__


def to_graph(model: Any) -> tuple[Graph, str]:
    """Bring `model` (a path to .onnx, ONNX bytes, a ModelProto or a Graph) into the IR."""
    if isinstance(model, Graph):
        return model, model.name
    from .frontends.onnx import import_model

    return import_model(model), _model_name(model)


def _is_ocm(model: Any) -> bool:
    if not isinstance(model, (str, os.PathLike)) or not os.path.isfile(model):
        return False
    with open(model, "rb") as f:
        return f.read(8) == ocm.MAGIC


def _pin_shapes(graph: Graph, name: str, shapes: dict[str, tuple]) -> None:
    by_name = {v.name: v for v in graph.inputs}
    for k, dims in shapes.items():
        v = by_name.get(k)
        if v is None:
            raise OpenCannError(f"model {name!r} has no input {k!r} to give a shape; its inputs are "
                                f"{', '.join(by_name)}")
        t = v.type
        if not isinstance(t, TensorType) or (t.shape is not None and len(t.shape) != len(dims)):
            raise OpenCannError(f"model {name!r}: input {k!r} is {t!r}; shape {list(dims)} does not fit it")
        for d, s in zip(t.shape or (), dims):
            if isinstance(d, int) and d != s:
                raise OpenCannError(f"model {name!r}: input {k!r} is {t!r}; shape {list(dims)} does not fit it")
        v.type = TensorType(t.dtype, tuple(int(s) for s in dims))


def compile(model: Any, backend: str | None = None, *, input_shapes: dict[str, tuple] | None = None,  # noqa: A001
            optimize: bool | None = None) -> "CompiledModel":
    """Import, check and prepare `model` to run on `backend` (default: `default_backend()`, i.e.
    the `OPENCANN_BACKEND` environment variable, else `cpu` where a C compiler exists, else `ref`).
    `model` may also be an .ocm file, which is loaded (an explicit `backend` must be its target).
    `input_shapes` pins inputs' symbolic dims (`{"ids": (1, 128)}`); `optimize` runs the graph
    passes (default: on for every backend but `ref`, which runs the graph as written)."""
    if _is_ocm(model):
        return load(model, backend=backend)
    backend = backend or default_backend()
    if backend not in BACKENDS:
        raise OpenCannError(f"backend {backend!r} cannot compile models yet; available: {', '.join(BACKENDS)}")
    graph, name = to_graph(model)
    if input_shapes:
        _pin_shapes(graph, name, input_shapes)
    bound = bind_ops(graph, name)
    infer_graph(graph, bound, name)
    if optimize if optimize is not None else backend != "ref":
        Pipeline(DEFAULT_PASSES, reinfer=lambda g: infer_graph(g, bind_ops(g, name), name)).run(graph)
    return CompiledModel(graph, name, backend)


def load(path: str | os.PathLike, verify: bool = True, backend: str | None = None) -> "CompiledModel":
    """Load an .ocm file written by `CompiledModel.save` (or `opencann compile`). Nothing is
    compiled: weights are memory-mapped and the kernel binaries the file carries go into the
    kernel cache, so the model runs on a machine without a C compiler. `backend`, if given, must
    be the file's target. Raises `ModelLoadError` for a truncated, corrupted or wrong-target file."""
    graph, header = ocm.load(path, verify=verify, expect_backend=backend)
    name = header.get("name") or os.path.basename(os.fspath(path))
    if header["backend"] not in BACKENDS:
        raise OpenCannError(f"{os.fspath(path)!r} targets backend {header['backend']!r}, which this "
                            f"opencann cannot run; available: {', '.join(BACKENDS)}")
    if header["backend"] == "cpu":
        _install_kernels(os.fspath(path), header)
    bound = bind_ops(graph, name)
    infer_graph(graph, bound, name)
    return CompiledModel(graph, name, header["backend"])


def _install_kernels(where: str, header: dict) -> None:
    """Put the cpu kernel binaries of an .ocm file into the kernel cache, after checking they
    were built for this CPU."""
    kernels = ocm.read_kernels(where, header)
    if not kernels:
        return
    from . import backends
    from .backends import BackendError

    be = backends.get("cpu")
    theirs, ours = header.get("target", {}).get("isa"), be.describe()
    if theirs != ours:
        if not be.is_available():
            raise ModelLoadError(
                f"{where!r} holds kernels built for the CPU {theirs!r}, but this machine is {ours!r} and "
                "has no C compiler to build them for itself. Compile the model on this machine "
                "(opencann compile), or install gcc or clang (or set CC).")
        warnings.warn(f"{where!r} holds kernels built for the CPU {theirs!r}, not this one ({ours!r}): "
                      "they are not used, and the model's kernels compile here on first run. "
                      "Compile the model on this machine to avoid that.", stacklevel=3)
        return
    try:
        be.install(kernels)
    except BackendError as e:
        raise ModelLoadError(f"{where!r}: cannot install its kernels: {e}") from None


class CompiledModel:
    """A model ready to run. `run(feeds)` takes a dict of input name -> array and returns a dict of
    output name -> array; inputs are checked against the declared (possibly symbolic) types."""

    def __init__(self, graph: Graph, name: str, backend: str):
        self.graph = graph
        self.name = name
        self.backend = backend
        self._log = ProgramLog()  # the compiled kernels this model's runs used (saved with it)
        self._warmed = False
        if backend == "cpu":
            with self._log:  # kernels prepared while placing count as the model's too
                self._exec = CpuExecutor(graph, name)
        else:
            self._exec = Interpreter(graph, name)

    @property
    def input_names(self) -> list[str]:
        return [v.name for v in self.graph.inputs]

    @property
    def output_names(self) -> list[str]:
        return [v.name for v in self.graph.outputs]

    def run(self, feeds: dict[str, Any]) -> dict[str, Any]:
        checked = check_feeds(self.name, self.graph.inputs, feeds)
        with self._log:
            return self._exec.run(checked)

    def report(self) -> str:
        """Where each node runs: the placement report (fusion groups, ref fallbacks and why)."""
        if isinstance(self._exec, CpuExecutor):
            return self._exec.report()
        return (f"placement of model {self.name!r} on {self.backend}: all {len(self.graph.nodes)} "
                "nodes run their NumPy references")

    def save(self, path: str | os.PathLike, *, examples=(), kernels: bool = True) -> None:
        """Write this model to an .ocm file (graph, target, kernels, weights), loadable with
        `opencann.load`. On `cpu` the file carries the binaries of the kernels the model's runs
        used: run it first on the shapes it will serve, or pass them as `examples` (a list of
        feed dicts, run now). A model never run is run once on made-up inputs (symbolic dims 1).
        Other shapes may need kernels the file lacks; a process then compiles them on first
        use. `kernels=False` writes no binaries."""
        entries, target = [], None
        if self.backend == "cpu" and kernels:
            for feeds in examples:
                self.run(feeds)
            if not self._log.programs and not self._warmed:
                self._warm_up()
            if isinstance(self._exec, CpuExecutor):
                with self._log:  # kernels chosen by the data (attention's mask forms) too
                    self._exec.warm_variants()
            from . import backends

            be = backends.get("cpu")
            entries = be.export(self._log.programs)
            target = be.target()
        ocm.save(path, self.graph, self.backend, kernels=entries, target=target)

    def _warm_up(self) -> None:
        """Run once on made-up inputs so the kernels compile (and are logged); warn on failure."""
        self._warmed = True
        why = None
        try:
            feeds = _made_up_feeds(self.graph)
        except OpenCannError as e:
            why = str(e)
        else:
            try:
                self.run(feeds)
            except Exception as e:  # noqa: BLE001 - made-up values may not suit every model
                why = f"a run on made-up inputs failed ({type(e).__name__}: {e})"
        if why:
            warnings.warn(f"model {self.name!r}: its .ocm file carries no kernels: {why}. Run the model "
                          "on real inputs (or pass save(examples=[feeds])) before saving, or a fresh "
                          "process compiles the kernels on first run.", stacklevel=3)

    def __repr__(self) -> str:
        ins = ", ".join(f"{v.name}: {v.type!r}" for v in self.graph.inputs)
        return f"<CompiledModel {self.name!r} on {self.backend}: ({ins}) -> {self.output_names}>"


def _made_up_feeds(graph: Graph) -> dict:
    """Feeds of the graph's input types: symbolic dims 1, zeros (ones for floats)."""
    feeds = {}
    for v in graph.inputs:
        t = v.type
        if isinstance(t, OptionalType):
            feeds[v.name] = None
            continue
        if not isinstance(t, TensorType) or t.shape is None or t.dtype.kind == "string":
            raise OpenCannError(f"input {v.name!r} ({t!r}) cannot be made up")
        shape = tuple(d if isinstance(d, int) else 1 for d in t.shape)
        feeds[v.name] = (np.ones if t.dtype.is_float else np.zeros)(shape, t.dtype.np)
    return feeds


def _check_value(model: str, v: Value, x: Any, t, symbols: dict[str, tuple[int, str]]) -> Any:
    what = f"model {model!r}: input {v.name!r}"
    if t is None:
        return x
    if isinstance(t, OptionalType):
        return None if x is None else _check_value(model, v, x, t.elem, symbols)
    if isinstance(t, SequenceType):
        if not isinstance(x, (list, tuple)):
            raise InputError(f"{what} is a sequence ({t!r}); pass a list of arrays, not {type(x).__name__}")
        return [_check_value(model, v, e, t.elem, {}) for e in x]
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x, dtype=t.dtype.np)
        except (TypeError, ValueError) as e:
            raise InputError(f"{what} expects {t!r}; {type(x).__name__} cannot be converted: {e}") from None
    if dtypes.from_numpy(x.dtype) != t.dtype:
        raise InputError(f"{what} expects dtype {t.dtype.name} but got {x.dtype}; convert it with "
                         f".astype(np.{t.dtype.np.name if t.dtype.kind != 'string' else 'object_'})")
    if t.shape is not None:
        if x.ndim != len(t.shape):
            raise InputError(f"{what} expects rank {len(t.shape)} ({t!r}) but got shape {list(x.shape)}")
        for i, (d, s) in enumerate(zip(t.shape, x.shape)):
            if isinstance(d, int) and d != s:
                raise InputError(f"{what} expects {t!r} but got shape {list(x.shape)} (dim {i} must be {d})")
            if isinstance(d, str):
                seen = symbols.setdefault(d, (s, v.name))
                if seen[0] != s:
                    raise InputError(f"{what} has {d}={s} (dim {i}) but input {seen[1]!r} has {d}={seen[0]}; "
                                     f"inputs sharing the symbol {d!r} must agree")
    return x


def check_feeds(model: str, inputs: list[Value], feeds: dict[str, Any]) -> dict[str, Any]:
    """Check `feeds` against the graph inputs; raise `InputError` naming every problem."""
    if not isinstance(feeds, dict):
        raise InputError(f"model {model!r}: run() takes a dict of input name -> array, not {type(feeds).__name__}")
    expected = {v.name for v in inputs}
    missing = [f"{v.name}: {v.type!r}" for v in inputs
               if v.name not in feeds and not isinstance(v.type, OptionalType)]
    unknown = sorted(k for k in feeds if k not in expected)
    if missing or unknown:
        parts = []
        if missing:
            parts.append("missing input(s) " + ", ".join(missing))
        if unknown:
            parts.append("unknown input name(s) " + ", ".join(map(repr, unknown)))
        raise InputError(f"model {model!r}: " + "; ".join(parts) +
                         f". The model's inputs are: {', '.join(f'{v.name}: {v.type!r}' for v in inputs)}")
    symbols: dict[str, tuple[int, str]] = {}
    return {v.name: _check_value(model, v, feeds.get(v.name), v.type, symbols) for v in inputs}


# the single-op API (`opencann.ops.<Op>(...)`, in the operator layer below) compiles its one-node
# graphs here: registered when this module is imported (dependency inversion, no upward import)
from .ops import single as _single  # noqa: E402

_single.set_compiler(compile, default_backend, BACKENDS)
