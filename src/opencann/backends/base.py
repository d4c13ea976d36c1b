"""The backend contract: what a processor implements to run opencann.

A `Backend` is one device. It allocates and frees memory and copies host arrays in and out; it
compiles a program's source into a binary (cached on disk where compiling costs time) and launches
a program over a grid; and it reports its capabilities so the layers above can decide what to
place on it. A backend knows nothing of operators or of the tile language: it receives source text
(C for `cpu`) or an already-lowered program (a Python callable for `ref`).

    >>> import numpy as np
    >>> from opencann import backends
    >>> dev = backends.get("ref")
    >>> buf = dev.allocate(16)
    >>> dev.copy_in(buf, np.arange(4, dtype=np.float32))
    >>> out = np.empty(4, np.float32); dev.copy_out(buf, out); out
    array([0., 1., 2., 3.], dtype=float32)
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass, field

import numpy as np

from .. import dtypes as _dt

__all__ = ["Capabilities", "Buffer", "Program", "Backend", "Device", "HostMemory", "BackendError"]


class BackendError(RuntimeError):
    """A backend cannot do what was asked (no compiler, a failed compile, a bad launch)."""


@dataclass(frozen=True)
class Capabilities:
    """What a device offers: element types, memory, cores, SIMD width and named features.

    Features name what a backend accepts as program source, among other things: `c-source`
    (C with the cpu entry-point convention) or `interpreter` (Python callables, as `ref`).
    """

    dtypes: tuple
    memory_bytes: int
    cores: int = 1
    simd_width_bytes: int = 0
    features: frozenset = field(default_factory=frozenset)

    def supports(self, dtype) -> bool:
        return dtype in self.dtypes


class Buffer:
    """Device memory of `nbytes` bytes; `handle` is whatever the backend uses to address it."""

    __slots__ = ("backend", "nbytes", "handle")

    def __init__(self, backend, nbytes, handle):
        self.backend, self.nbytes, self.handle = backend, nbytes, handle

    def __repr__(self):
        return f"Buffer({self.backend.name}, {self.nbytes} bytes)"


class Program:
    """A compiled program: `entry` of `binary`, taking arguments of kinds `signature`.

    `signature` is a string with one letter per argument after the grid: `p` pointer, `i` int64,
    `f` float64.
    """

    def __init__(self, name, entry, signature, binary=None, path=None):
        self.name, self.entry, self.signature, self.binary, self.path = (
            name, entry, signature, binary, path)

    def __repr__(self):
        return f"Program({self.name!r})"


class Backend(abc.ABC):
    """One device. Subclasses implement memory, compile, launch and capabilities."""

    name: str = "?"

    # memory ------------------------------------------------------------------------------
    @abc.abstractmethod
    def allocate(self, nbytes: int) -> Buffer:
        """A buffer of `nbytes` bytes of device memory (contents undefined)."""

    @abc.abstractmethod
    def free(self, buf: Buffer) -> None:
        """Give `buf` back; it must not be used afterwards."""

    @abc.abstractmethod
    def copy_in(self, buf: Buffer, host: np.ndarray, offset: int = 0) -> None:
        """Copy host array `host` into `buf` starting at byte `offset`."""

    @abc.abstractmethod
    def copy_out(self, buf: Buffer, host: np.ndarray, offset: int = 0) -> None:
        """Copy `host.nbytes` bytes of `buf` from byte `offset` into host array `host`."""

    # programs ----------------------------------------------------------------------------
    @abc.abstractmethod
    def compile(self, source, *, entry: str, signature: str, cache_key: str | None = None) -> Program:
        """Compile `source` into a program whose entry point is `entry` (cached where useful)."""

    @abc.abstractmethod
    def launch(self, program: Program, grid: tuple, args: tuple) -> None:
        """Run `program` once per point of `grid` (three ints) with `args`."""

    # description -------------------------------------------------------------------------
    @abc.abstractmethod
    def capabilities(self) -> Capabilities:
        """What this device offers."""

    def synchronize(self) -> None:
        """Wait for launched work to finish (host backends run synchronously)."""

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


Device = Backend  # the device contract under the name the runtime layer uses


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


class HostMemory:
    """Memory methods for backends whose device memory is host memory (ref, cpu).

    A buffer's handle is a 64-byte aligned uint8 NumPy array; `array(buf, dtype, shape)` views it.
    """

    HOST_DTYPES = (_dt.float32, _dt.float16, _dt.bfloat16, _dt.int32, _dt.int64, _dt.int8,
                   _dt.uint8, _dt.bool_)

    def allocate(self, nbytes: int) -> Buffer:
        raw = np.empty(int(nbytes) + 64, np.uint8)
        start = (-raw.ctypes.data) % 64
        return Buffer(self, int(nbytes), raw[start:start + int(nbytes)])

    def free(self, buf: Buffer) -> None:
        buf.handle = None

    def copy_in(self, buf: Buffer, host: np.ndarray, offset: int = 0) -> None:
        src = np.ascontiguousarray(host).reshape(-1).view(np.uint8)
        if offset + src.size > buf.nbytes:
            raise BackendError(f"copy_in of {src.size} bytes at {offset} overflows {buf}")
        buf.handle[offset:offset + src.size] = src

    def copy_out(self, buf: Buffer, host: np.ndarray, offset: int = 0) -> None:
        if not host.flags.c_contiguous:
            raise BackendError("copy_out needs a C-contiguous host array")
        dst = host.reshape(-1).view(np.uint8)
        if offset + dst.size > buf.nbytes:
            raise BackendError(f"copy_out of {dst.size} bytes at {offset} overflows {buf}")
        dst[:] = buf.handle[offset:offset + dst.size]

    @staticmethod
    def array(buf: Buffer, dtype, shape) -> np.ndarray:
        """A NumPy view of host buffer `buf` as `dtype` elements of `shape`."""
        dt = dtype.np if isinstance(dtype, _dt.DType) else np.dtype(dtype)
        n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        return buf.handle[:n].view(dt).reshape(shape)
