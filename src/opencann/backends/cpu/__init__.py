"""The `cpu` backend: C source compiled by the system compiler, OpenMP across programs.

A program's C source defines `void entry(int64_t g0, int64_t g1, int64_t g2, args...)` which runs
every program of the grid (the tile language's C code generator writes such sources). Binaries are
cached on disk (see `compiler.KernelCache`) and loaded with ctypes.
"""

from __future__ import annotations

import ctypes
import os
import threading

from ..base import Backend, BackendError, Capabilities, HostMemory, Program, _memory_bytes
from .compiler import KernelCache, find_compiler, host_isa, simd_flags

__all__ = ["CPUBackend"]

from ... import _openmp  # noqa: F401,E402 - the OpenMP wait policy, set before any kernel loads

_ARGTYPES = {"p": ctypes.c_void_p, "i": ctypes.c_int64, "f": ctypes.c_double}


class CPUProgram(Program):
    """A loaded entry point: call it as `prog(g0, g1, g2, *args)`."""

    def __init__(self, name, entry, signature, lib, path):
        super().__init__(name, entry, signature, binary=lib, path=path)
        fn = getattr(lib, entry)
        fn.restype = None
        fn.argtypes = [ctypes.c_int64] * 3 + [_ARGTYPES[c] for c in signature]
        self.fn = fn

    def __call__(self, *args):
        self.fn(*args)


class CPUBackend(HostMemory, Backend):
    """The host CPU: host memory, C programs compiled with OpenMP and SIMD."""

    name = "cpu"

    def __init__(self, cache: KernelCache | None = None):
        self.cache = cache
        self._loaded: dict = {}
        self._lock = threading.Lock()

    def _cache(self) -> KernelCache:
        if self.cache is None or self.cache.directory != _cache_dir_now():
            self.cache = KernelCache()
        return self.cache

    def is_available(self) -> bool:
        return find_compiler() is not None

    def _load(self, path, entry, signature) -> CPUProgram:
        k = (path, entry)
        prog = self._loaded.get(k)
        if prog is None:
            with self._lock:
                prog = self._loaded.get(k)
                if prog is None:
                    try:
                        lib = ctypes.CDLL(path)
                    except OSError as e:
                        raise BackendError(f"cannot load compiled kernel {path}: {e}") from e
                    prog = CPUProgram(entry, entry, signature, lib, path)
                    self._loaded[k] = prog
        return prog

    def compile(self, source, *, entry, signature="", cache_key=None) -> CPUProgram:
        """Compile C `source` (or take it from the cache) and load `entry`."""
        return self._load(self._cache().build(source, cache_key), entry, signature)

    def compile_many(self, items) -> list:
        """Compile several `(source, entry, signature, cache_key)` in parallel compiler processes."""
        items = list(items)
        paths = self._cache().build_many([(s, k) for s, _e, _g, k in items])
        return [self._load(p, e, g) for p, (_s, e, g, _k) in zip(paths, items)]

    def load_cached(self, cache_key, *, entry, signature="") -> CPUProgram | None:
        """The program cached under `cache_key`, or None; never runs the compiler."""
        path = self._cache().lookup(cache_key)
        return None if path is None else self._load(path, entry, signature)

    def launch(self, program: CPUProgram, grid, args) -> None:
        g = tuple(grid) + (1,) * (3 - len(grid))
        program.fn(*g, *args)

    def capabilities(self) -> Capabilities:
        flags = simd_flags()
        width = 64 if "avx512f" in flags else 32 if "avx2" in flags else 16
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return Capabilities(dtypes=self.HOST_DTYPES, memory_bytes=_memory_bytes(), cores=cores or 1,
                            simd_width_bytes=width,
                            features=frozenset(flags | {"openmp", "compiler", "c-source"}) - {""})

    def describe(self) -> str:
        return host_isa()


def _cache_dir_now() -> str:
    from .compiler import cache_dir

    return cache_dir()
