"""The `cpu` backend: C source compiled by the system compiler, OpenMP across programs.

A program's C source defines `void entry(int64_t g0, int64_t g1, int64_t g2, args...)` which runs
every program of the grid (the tile language's C code generator writes such sources). Binaries are
cached on disk (see `compiler.KernelCache`) and loaded with ctypes.

Binaries travel with compiled models: `export(programs)` gives the bytes, C source and keys of
loaded programs (what an .ocm file stores), and `install(kernels)` puts such binaries into the
cache and maps their source keys straight to them, so `load_cached` finds them with no compiler
on the machine (not even one to ask for its version, which the cache key otherwise hashes).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import threading

from ..base import Backend, BackendError, Capabilities, HostMemory, Program, _memory_bytes
from .compiler import KernelCache, compiler_version, find_compiler, host_isa, simd_flags

__all__ = ["CPUBackend"]

from ... import _openmp  # noqa: F401,E402 - the OpenMP wait policy, set before any kernel loads

_ARGTYPES = {"p": ctypes.c_void_p, "i": ctypes.c_int64, "f": ctypes.c_double}


class CPUProgram(Program):
    """A loaded entry point: call it as `prog(g0, g1, g2, *args)`."""

    def __init__(self, name, entry, signature, lib, path, source_key=None):
        super().__init__(name, entry, signature, binary=lib, path=path)
        self.source_key = source_key  # the caller's cache key (e.g. a tile kernel's), if any
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
        self._installed: dict = {}  # source key -> binary path, from install()

    def _cache(self) -> KernelCache:
        if self.cache is None or self.cache.directory != _cache_dir_now():
            self.cache = KernelCache()
        return self.cache

    def is_available(self) -> bool:
        return find_compiler() is not None

    def _load(self, path, entry, signature, source_key=None) -> CPUProgram:
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
                    prog = CPUProgram(entry, entry, signature, lib, path, source_key)
                    self._loaded[k] = prog
        return prog

    def compile(self, source, *, entry, signature="", cache_key=None) -> CPUProgram:
        """Compile C `source` (or take it from the cache) and load `entry`."""
        return self._load(self._cache().build(source, cache_key), entry, signature, cache_key)

    def compile_many(self, items) -> list:
        """Compile several `(source, entry, signature, cache_key)` in parallel compiler processes."""
        items = list(items)
        paths = self._cache().build_many([(s, k) for s, _e, _g, k in items])
        return [self._load(p, e, g, k) for p, (_s, e, g, k) in zip(paths, items)]

    def load_cached(self, cache_key, *, entry, signature="") -> CPUProgram | None:
        """The program cached under `cache_key`, or None; never runs the compiler. Binaries
        installed from a compiled model are found first, without asking for a compiler."""
        path = self._installed.get(cache_key)
        if path is None or not os.path.exists(path):
            path = self._cache().lookup(cache_key)
        return None if path is None else self._load(path, entry, signature, cache_key)

    # --- binaries that travel with compiled models ---------------------------------------------
    def target(self) -> dict:
        """What binaries built here are for: the host ISA (binaries run only where it is equal),
        the compiler's identity and the flags (for information)."""
        cache = self._cache()
        try:
            cc = compiler_version(cache.cc) if cache.cc else None
        except (BackendError, OSError):
            cc = None
        return {"isa": host_isa(), "compiler": cc, "flags": list(cache.flags)}

    def export(self, programs) -> list:
        """The binaries of loaded `programs` (those with a source key), one entry each, in a
        stable order: `{"source_key", "key", "sha256", "binary": bytes, "source": str}`."""
        out = {}
        for p in programs:
            sk, path = getattr(p, "source_key", None), getattr(p, "path", None)
            if not sk or not path or sk in out:
                continue
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise BackendError(f"cannot read compiled kernel {path}: {e}") from e
            try:
                with open(path[:-3] + ".c") as f:
                    source = f.read()
            except OSError:
                source = ""
            out[sk] = {"source_key": sk, "key": os.path.basename(path)[:-3],
                       "sha256": hashlib.sha256(data).hexdigest(), "binary": data, "source": source}
        return [out[k] for k in sorted(out)]

    def install(self, kernels) -> int:
        """Put binaries built for this host (entries as `export` gives them; `binary` may be any
        bytes-like object) into the kernel cache, and look them up by source key from now on.
        Checks each binary's SHA-256 first; raises BackendError on a mismatch or a cache that
        cannot be written. Returns how many were installed."""
        cache = self._cache()
        n = 0
        for k in kernels:
            data = k["binary"]
            if hashlib.sha256(data).hexdigest() != k["sha256"]:
                raise BackendError(f"kernel binary {k['key']} does not match its SHA-256")
            try:
                path = cache.install(k["key"], data, k.get("source") or None)
            except OSError as e:
                raise BackendError(f"cannot write kernel binaries into the cache {cache.directory}: {e}. "
                                   "Set OPENCANN_CACHE_DIR to a writable directory") from e
            self._installed[k["source_key"]] = path
            n += 1
        return n

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
