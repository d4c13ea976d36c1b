"""Devices: a backend, its memory pool and its streams, by name (`cpu`, `ref`, `cpu:0`)."""

from __future__ import annotations

import threading

from .. import backends
from .pool import MemoryPool
from .stream import Stream

_devices: dict[str, "Device"] = {}
_lock = threading.Lock()


class Device:
    """One device: `backend` (the contract's implementation), a caching `pool`, a default stream."""

    def __init__(self, name: str):
        self.name = name
        self.backend = backends.get(name.split(":")[0])
        self.pool = MemoryPool(self.backend)
        self._default_stream: Stream | None = None

    @property
    def default_stream(self) -> Stream:
        if self._default_stream is None:
            self._default_stream = Stream(self, f"{self.name}/default")
        return self._default_stream

    def new_stream(self, name: str | None = None) -> Stream:
        return Stream(self, name or f"{self.name}/stream")

    def capabilities(self):
        return self.backend.capabilities()

    def synchronize(self) -> None:
        if self._default_stream is not None:
            self._default_stream.synchronize()
        self.backend.synchronize()

    def __repr__(self) -> str:
        return f"<Device {self.name}>"


def device(name: str = "cpu") -> Device:
    """The device called `name` (one object per name)."""
    key = name if ":" in name else f"{name}:0"
    with _lock:
        d = _devices.get(key)
        if d is None:
            d = _devices[key] = Device(key)
        return d


def devices() -> list[str]:
    """Names of the devices of every available backend."""
    return [f"{b}:0" for b in backends.available()]
