"""The C compiler driver and the on-disk kernel cache of the `cpu` backend.

A binary is stored as `<cache>/<key[:2]>/<key>.so`, where the key hashes the program's source (or
the caller's cache key), the compiler flags, the compiler's version and the host ISA. The file
appears atomically (compiled to a temporary name, then renamed) under an fcntl lock, so concurrent
processes compile a kernel once and never load a half-written file. A cached binary loads without
running the compiler: the compiler's version is itself cached, by the compiler binary's path, size
and modification time. `KernelCache.install` puts a binary built elsewhere (one carried by an .ocm
file) under its key the same atomic way, without any compiler.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

from ..base import BackendError

__all__ = ["cache_dir", "find_compiler", "compiler_command", "compiler_version", "host_isa",
           "default_flags", "KernelCache"]

_FLAGS = ["-O3", "-march=native", "-ffp-contract=fast", "-fopenmp", "-fno-math-errno",
          "-fno-trapping-math", "-std=gnu11", "-fPIC", "-shared"]
# x86: vectorized loops use 512-bit registers where the host has AVX-512 (gcc prefers 256 bits
# on Intel server cores by default). The training step's compute-bound elementwise kernels (a
# tanh-GELU's backward: 0.74 -> 0.62 ns per element on 2 threads) made it 3.5% faster over three
# alternating pairs of runs; inference on the five models stayed within noise. Without AVX-512
# the flag changes nothing.
if platform.machine().lower() in ("x86_64", "amd64"):
    _FLAGS.append("-mprefer-vector-width=512")


def cache_dir() -> str:
    """`OPENCANN_CACHE_DIR`, or ~/.cache/opencann/kernels."""
    d = os.environ.get("OPENCANN_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "opencann", "kernels")
    os.makedirs(d, exist_ok=True)
    return d


def find_compiler() -> str | None:
    """The C compiler's path: the first word of `CC` if set, else gcc, clang or cc on PATH."""
    cmd = compiler_command()
    return cmd[0] if cmd else None


def compiler_command() -> list | None:
    """The command that runs the C compiler: `CC` split into words (`ccache gcc` works), else
    gcc, clang or cc found on PATH; None if there is none."""
    cc = os.environ.get("CC")
    if cc:
        words = shlex.split(cc)
        path = shutil.which(words[0]) or (words[0] if os.path.exists(words[0]) else None)
        return [path, *words[1:]] if path else None
    for name in ("gcc", "clang", "cc"):
        path = shutil.which(name)
        if path:
            return [path]
    return None


def default_flags() -> list:
    """The compiler flags: the built-in ones plus `OPENCANN_CFLAGS`."""
    extra = os.environ.get("OPENCANN_CFLAGS", "").split()
    return _FLAGS + extra


@contextlib.contextmanager
def _locked(path: str):
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield f
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


_versions: dict = {}


def compiler_version(cc) -> str:
    """`cc --version`'s first line, cached on disk by the compiler binary's identity.

    `cc` is a path or a command (a list of words, as `compiler_command` returns)."""
    cmd = [cc] if isinstance(cc, str) else list(cc)
    real = os.path.realpath(cmd[0])
    st = os.stat(real)
    ident = f"{' '.join([real, *cmd[1:]])}:{st.st_size}:{st.st_mtime_ns}"
    if ident in _versions:
        return _versions[ident]
    index = os.path.join(cache_dir(), "compilers.json")
    try:
        with open(index) as f:
            known = json.load(f)
    except (OSError, ValueError):
        known = {}
    if ident not in known:
        try:
            out = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=60)
        except OSError as e:
            raise BackendError(f"cannot run the C compiler {cc!r} ({e}), and a kernel this input "
                               f"needs is not compiled yet (not in the kernel cache, nor among "
                               f"a loaded model's binaries): install gcc or clang or set CC, "
                               f"or run with backend='ref'") from e
        if out.returncode != 0:
            raise BackendError(f"the C compiler {cc!r} does not work (`--version` failed: "
                               f"{out.stderr.strip() or 'no message'}), and a kernel this input "
                               f"needs is not compiled yet (not in the kernel cache, nor among "
                               f"a loaded model's binaries): install gcc or clang or set CC, "
                               f"or run with backend='ref'")
        with _locked(index + ".lock"):
            try:
                with open(index) as f:
                    known = json.load(f)
            except (OSError, ValueError):
                known = {}
            known[ident] = (out.stdout.splitlines() or ["?"])[0]
            tmp = f"{index}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                json.dump(known, f)
            os.replace(tmp, index)
    _versions[ident] = known[ident]
    return known[ident]


_isa = None
_ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
              "avx512_bf16", "avx512_fp16", "amx_tile", "asimd", "sve")


def host_isa() -> str:
    """A short description of the host CPU (arch, model, SIMD flags): part of every cache key."""
    global _isa
    if _isa is None:
        model, flags = "", set()  # (platform.processor() would run a subprocess)
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    key, _, val = line.partition(":")
                    key = key.strip()
                    if key in ("model name", "CPU part") and not model:
                        model = val.strip()
                    elif key == "model name":
                        model = val.strip()
                    elif key in ("flags", "Features"):
                        flags = set(val.split())
                    if key == "" and flags:
                        break
        except OSError:
            pass
        _isa = f"{platform.machine()}|{model}|" + ",".join(f for f in _ISA_FLAGS if f in flags)
    return _isa


def simd_flags() -> set:
    """The host's SIMD feature flags (avx2, fma, avx512f, ...)."""
    return set(host_isa().rsplit("|", 1)[-1].split(","))


def _same_bytes(path: str, data: bytes) -> bool:
    try:
        if os.path.getsize(path) != len(data):
            return False
        with open(path, "rb") as f:
            return f.read() == data
    except OSError:
        return False


class KernelCache:
    """Compiles C sources to shared libraries, once per key, across threads and processes."""

    def __init__(self, directory: str | None = None, cc=None, flags=None):
        self.directory = directory or cache_dir()
        cc = cc or compiler_command()
        self.cc = None if cc is None else ([cc] if isinstance(cc, str) else list(cc))
        self.flags = list(flags or default_flags())
        self._pool = None

    def key(self, source_key: str) -> str:
        if self.cc is None:
            raise BackendError("no C compiler found: install gcc or clang, or set CC")
        h = hashlib.sha256()
        for part in (source_key, " ".join(self.flags), compiler_version(self.cc), host_isa()):
            h.update(part.encode())
            h.update(b"\0")
        return h.hexdigest()[:40]

    def path(self, key: str) -> str:
        return os.path.join(self.directory, key[:2], key + ".so")

    def lookup(self, source_key: str) -> str | None:
        """The cached binary for `source_key`, or None (never compiles)."""
        p = self.path(self.key(source_key))
        return p if os.path.exists(p) else None

    def build(self, source: str, source_key: str | None = None) -> str:
        """The binary of `source` (compiled now unless cached); returns its path."""
        key = self.key(source_key or hashlib.sha256(source.encode()).hexdigest())
        out = self.path(key)
        if os.path.exists(out):
            return out
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with _locked(out[:-3] + ".lock"):
            if os.path.exists(out):  # another process compiled it while we waited
                return out
            src_path = out[:-3] + ".c"
            with open(src_path, "w") as f:
                f.write(source)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=os.path.dirname(out))
            os.close(fd)
            cmd = [*self.cc, *self.flags, "-o", tmp, src_path, "-lm"]
            try:
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            except OSError as e:
                os.unlink(tmp)
                raise BackendError(f"cannot run the C compiler {self.cc!r}: {e}") from e
            if res.returncode != 0:
                os.unlink(tmp)
                raise BackendError(f"C compile failed ({' '.join(cmd)}):\n{res.stderr[-4000:]}")
            os.replace(tmp, out)
        return out

    def install(self, key: str, binary, source: str | None = None) -> str:
        """Store `binary` (the bytes of a shared library built for this host's ISA, e.g. carried by
        an .ocm file) as the binary of cache key `key`; returns its path. Needs no compiler. A file
        already there with the same bytes is kept; one with other bytes is replaced atomically."""
        if not key or any(c not in "0123456789abcdef" for c in key):
            raise BackendError(f"invalid kernel cache key {key!r}")
        out = self.path(key)
        data = bytes(binary)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if _same_bytes(out, data):
            return out
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=os.path.dirname(out))
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o755)
            os.replace(tmp, out)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if source is not None and not os.path.exists(out[:-3] + ".c"):
            tmp = f"{out[:-3]}.c.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                f.write(source)
            os.replace(tmp, out[:-3] + ".c")
        return out

    def build_many(self, items) -> list:
        """Compile several (source, source_key) pairs in parallel; returns their paths in order."""
        items = list(items)
        if len(items) <= 1:
            return [self.build(s, k) for s, k in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))
        return list(self._pool.map(lambda sk: self.build(*sk), items))
