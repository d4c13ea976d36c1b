"""The operator registry: each op is defined once, with its schema, type inference and reference.

    from opencann.ops.registry import defop
    from opencann.ops import infer

    @defop("LeakyRelu", inputs=["X"], outputs=["Y"], attrs={"alpha": 0.01}, infer=infer.same)
    def leaky_relu(x, *, alpha):
        return np.where(x < 0, x * x.dtype.type(alpha), x)

- `inputs`/`outputs` name the parameters; a trailing `?` marks an optional one, a trailing `*` a
  variadic tail. A missing optional input reaches the reference as `None`.
- `attrs` maps every attribute to its default (`REQUIRED` when it has none). The reference receives
  all of them as keyword arguments, defaults filled in.
- `infer(*inputs, **attrs)` receives the input `Value`s (with `.type`, `.dtype`, `.shape` and
  `.const`, the data when known at compile time) and returns the output type(s).
- The reference is the meaning of the op, written with NumPy in this project. It returns one array
  or a tuple of arrays (lists for sequences, None for an empty optional).
- `since` is the first opset version a definition applies to; where ONNX changed an op's meaning, a
  later `since` adds another definition and lookups pick the newest one not above the model's opset.

An op's kernels for a backend are registered beside it with `defkernel`; they land in
`OpDef.kernels[backend]` of every version of the op (see `opencann.ops.lowering` for what a `cpu`
kernel is):

    @defkernel("cpu", "Softmax", "LogSoftmax")
    def _lower_softmax(node, attrs): ...
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["REQUIRED", "OpDef", "Param", "defkernel", "defop", "lookup", "all_ops", "normalize_domain"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Param:
    """One input or output of an op's schema."""

    name: str
    optional: bool = False
    variadic: bool = False

    @staticmethod
    def parse(spec: str) -> "Param":
        if spec.endswith("*"):
            return Param(spec[:-1], optional=True, variadic=True)
        if spec.endswith("?"):
            return Param(spec[:-1], optional=True)
        return Param(spec)


@dataclass
class OpDef:
    """The single definition of an operator (for the opsets from `since` on)."""

    name: str
    domain: str
    since: int
    family: str
    inputs: tuple[Param, ...]
    outputs: tuple[Param, ...]
    attrs: dict[str, Any]
    infer: Callable
    reference: Callable
    doc: str = ""
    kernels: dict[str, Any] = field(default_factory=dict)  # backend name -> kernel, filled by `defkernel`
    # ops with bodies (Loop, Scan, SequenceMap): (*inputs, **attrs) -> {attr name: [body input types]}
    infer_subgraph_inputs: Callable | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.domain}::{self.name}" if self.domain else self.name

    @property
    def min_inputs(self) -> int:
        return sum(1 for p in self.inputs if not p.optional)

    @property
    def max_inputs(self) -> float:
        return float("inf") if self.inputs and self.inputs[-1].variadic else len(self.inputs)

    @property
    def max_outputs(self) -> float:
        return float("inf") if self.outputs and self.outputs[-1].variadic else len(self.outputs)

    def resolve_attrs(self, given: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Defaults filled in; returns (attrs, problems) where problems name unknown or missing ones."""
        problems = [f"unknown attribute {k!r} (known: {', '.join(self.attrs) or 'none'})"
                    for k in given if k not in self.attrs]
        out = {}
        for k, default in self.attrs.items():
            if k in given:
                out[k] = given[k]
            elif default is REQUIRED:
                problems.append(f"required attribute {k!r} is missing")
            else:
                out[k] = default
        return out, problems


_REGISTRY: dict[tuple[str, str], list[OpDef]] = {}
# (domain, op) -> {backend: kernel}, kept so that a version defined after its kernel gets it too
_KERNELS: dict[tuple[str, str], dict[str, Any]] = {}


# opencann's own ops (what training graphs need and ONNX lacks: an attention that keeps its
# log-sum-exp, the backward of attention and of layer normalization)
OPENCANN_DOMAIN = "ai.opencann"


def normalize_domain(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


def _family_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 2 and parts[0] == "opencann" and parts[1] == "ops":
        return parts[2]
    return "custom"


def defop(name: str, *, inputs: list[str], outputs: list[str], infer: Callable,
          attrs: dict[str, Any] | None = None, domain: str = "", since: int = 1,
          family: str | None = None) -> Callable:
    """Register the decorated function as the reference of op `name` (see the module doc)."""

    def register(fn: Callable) -> Callable:
        d = OpDef(
            name=name, domain=normalize_domain(domain), since=since,
            family=family or _family_of(fn.__module__),
            inputs=tuple(Param.parse(s) for s in inputs), outputs=tuple(Param.parse(s) for s in outputs),
            attrs=dict(attrs or {}), infer=infer, reference=fn, doc=inspect.getdoc(fn) or "",
            kernels=dict(_KERNELS.get((normalize_domain(domain), name), {})),
        )
        versions = _REGISTRY.setdefault((d.domain, name), [])
        if any(v.since == since for v in versions):
            raise ValueError(f"op {d.qualified_name} is defined twice for opset {since} "
                             f"(second definition in {fn.__module__})")
        versions.append(d)
        versions.sort(key=lambda v: v.since)
        return fn

    return register


def defkernel(backend: str, *names: str, domain: str = "") -> Callable:
    """Register the decorated function as the `backend` kernel of ops `names` in `domain`, in every
    version of each op (also those defined after it, so family modules load in any order)."""

    def register(fn: Callable) -> Callable:
        for name in names:
            key = (normalize_domain(domain), name)
            _KERNELS.setdefault(key, {})[backend] = fn
            for d in _REGISTRY.get(key, []):
                d.kernels[backend] = fn
        return fn

    return register


def lookup(name: str, domain: str = "", opset: int | None = None) -> OpDef | None:
    """The definition of op `name` in `domain` that applies at `opset` (the newest when None)."""
    versions = _REGISTRY.get((normalize_domain(domain), name))
    if not versions:
        return None
    if opset is None:
        return versions[-1]
    fitting = [v for v in versions if v.since <= opset]
    return fitting[-1] if fitting else None


def all_ops() -> list[OpDef]:
    """The newest definition of every registered op, sorted by domain and name."""
    return [v[-1] for _, v in sorted(_REGISTRY.items())]
