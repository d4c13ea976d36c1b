"""Backends: the devices opencann runs on, behind one small contract (`base.Backend`).

Built in: `ref` (NumPy, the semantic definition) and `cpu` (C compiled by the system compiler, with
OpenMP and SIMD). Third-party backends register a factory (a `Backend` subclass or a function
returning an instance) under the entry-point group `opencann.backends`:

    [project.entry-points."opencann.backends"]
    mychip = "mychip_opencann:MyChipBackend"

    >>> from opencann import backends
    >>> backends.get("ref").name
    'ref'
"""

from __future__ import annotations

import importlib
import os
import threading

from .base import Backend, BackendError, Buffer, Capabilities, Device, Program

__all__ = ["get", "available", "default_backend", "register", "Backend", "Device", "Buffer", "Capabilities", "Program",
           "BackendError", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "opencann.backends"
_BUILTIN = {"ref": "opencann.backends.ref:RefBackend", "cpu": "opencann.backends.cpu:CPUBackend"}
_factories: dict = {}
_instances: dict = {}
_lock = threading.Lock()


def register(name: str, factory) -> None:
    """Make backend `name` available, built on first use by calling `factory()`."""
    with _lock:
        _factories[name] = factory
        _instances.pop(name, None)


def _entry_points() -> dict:
    from importlib.metadata import entry_points

    try:
        eps = entry_points(group=ENTRY_POINT_GROUP)
    except TypeError:  # Python < 3.10 API
        eps = entry_points().get(ENTRY_POINT_GROUP, [])
    return {ep.name: ep for ep in eps}


def _factory(name: str):
    if name in _factories:
        return _factories[name]
    if name in _BUILTIN:
        mod, _, cls = _BUILTIN[name].partition(":")
        return getattr(importlib.import_module(mod), cls)
    eps = _entry_points()
    if name in eps:
        return eps[name].load()
    known = sorted(set(_BUILTIN) | set(_factories) | set(eps))
    raise BackendError(f"unknown backend {name!r}; known backends: {', '.join(known)}")


def get(name: str) -> Backend:
    """The backend called `name` (one shared instance per name)."""
    inst = _instances.get(name)
    if inst is not None:
        return inst
    with _lock:
        inst = _instances.get(name)
        if inst is None:
            inst = _factory(name)()
            if not isinstance(inst, Backend):
                raise BackendError(f"backend {name!r} factory returned {type(inst).__name__}, "
                                   "not an opencann.backends.Backend")
            _instances[name] = inst
    return inst


def available() -> list:
    """Names of the backends that can run here (cpu needs a C compiler)."""
    names = []
    for name in list(_BUILTIN) + sorted(set(_factories) | set(_entry_points())):
        if name in names:
            continue
        try:
            b = get(name)
            ok = getattr(b, "is_available", lambda: True)()
        except Exception:
            ok = False
        if ok:
            names.append(name)
    return names


def default_backend() -> str:
    """`OPENCANN_BACKEND` if set, else the best backend this machine runs: `cpu` when a C
    compiler is on PATH, else `ref`. Models, the ONNX backend API and the torch.compile backend
    all start from this choice."""
    env = os.environ.get("OPENCANN_BACKEND")
    if env:
        return env
    try:
        return "cpu" if get("cpu").is_available() else "ref"
    except Exception:  # noqa: BLE001 - a broken cpu backend leaves the reference
        return "ref"

