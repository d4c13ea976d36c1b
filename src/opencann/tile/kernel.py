"""`@tile.kernel`: a Python function made into an SPMD kernel, launched as `kernel[grid](args)`.

A launch binds the arguments, splits the constexpr meta-parameters from the runtime arguments and
picks the backend (`backend=` keyword, else `OPENCANN_TILE_BACKEND`, else `cpu`). On `ref` the
kernel body runs in the NumPy interpreter; on `cpu` it is traced once per specialization (dtypes of
the tensor arguments, constexpr values, which int arguments equal 1), lowered to C, compiled and
cached on disk, so a later process loads it without tracing or compiling. Like Triton, int
arguments equal to 0 or 1 (strides, mostly) are specialized: the kernel sees the constant, which
lets unit-stride accesses become contiguous loops (opt out per argument with `do_not_specialize`).

`ProgramLog` records which compiled programs kernels use while it is active (`with log:`), so a
compiled model can carry the binaries it ran.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os

import numpy as np

from .. import backends as _backends
from .. import dtypes as _dt
from .errors import (KERNEL_CODES, TileCompileError, TileError, format_exception,
                     location_from_traceback)
from .ir import KernelIR, PtrType
from .language import CONTEXT, SUPPORTED_DTYPES, Tile, builder, constexpr
from .rewrite import rewrite

__all__ = ["kernel", "Kernel", "compile_many", "ProgramLog", "Prepared"]

_TILE_FILES = ("ir.py", "language.py", "trace.py", "passes.py", "codegen_c.py", "c_runtime.py",
               "kernel.py", "rewrite.py")


@functools.lru_cache(maxsize=1)
def _tile_version() -> str:
    """Hash of the tile compiler's own sources: changing the compiler invalidates cached kernels."""
    h = hashlib.sha256()
    here = os.path.dirname(__file__)
    for f in _TILE_FILES:
        with open(os.path.join(here, f), "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()


_recorders: list = []  # the active ProgramLogs


class ProgramLog:
    """The compiled programs that kernels launched or prepared while this log was active, across
    threads (`with log: ...`; re-entrant). `programs` is a set of backend programs."""

    __slots__ = ("programs",)

    def __init__(self):
        self.programs: set = set()

    def __enter__(self) -> "ProgramLog":
        _recorders.append(self)
        return self

    def __exit__(self, *exc) -> None:
        for i in range(len(_recorders) - 1, -1, -1):  # by identity, the latest entry
            if _recorders[i] is self:
                del _recorders[i]
                break


def _note(prog) -> None:
    for r in _recorders:
        r.programs.add(prog)


def _is_constexpr(annotation) -> bool:
    if annotation is constexpr:
        return True
    return isinstance(annotation, str) and annotation.split(".")[-1] == "constexpr"


def _loop(*args):
    return builder().for_loop(*args)


class Kernel:
    """A tile kernel. Launch with `k[grid](*args, **meta)`; `grid` is a tuple or `f(meta) -> tuple`."""

    def __init__(self, fn, do_not_specialize=()):
        self.fn = fn
        self.name = fn.__name__
        functools.update_wrapper(self, fn)
        sig = inspect.signature(fn)
        self.arg_names = list(sig.parameters)
        self.constexprs = {n for n, p in sig.parameters.items() if _is_constexpr(p.annotation)}
        self.defaults = {n: p.default for n, p in sig.parameters.items()
                         if p.default is not inspect.Parameter.empty}
        self.do_not_specialize = set(do_not_specialize)
        self.filename = inspect.getsourcefile(fn) or fn.__code__.co_filename
        self.lineno = fn.__code__.co_firstlineno
        self._body = None
        self._programs: dict = {}
        self._file_hash = None

    def __repr__(self):
        return f"<tile kernel {self.name} at {self.filename}:{self.lineno}>"

    @property
    def body(self):
        """The kernel function with its loops rewritten for tracing (built on first use)."""
        if self._body is None:
            fn, codes = rewrite(self.fn, _loop)
            for c in codes:
                KERNEL_CODES[c] = self.name
            self._body = fn
        return self._body

    def __getitem__(self, grid):
        return functools.partial(self.run, grid=grid)

    def __call__(self, *args, **kwargs):
        raise TileError(f"launch kernel {self.name} with a grid: {self.name}[grid](...)")

    # --- arguments ---------------------------------------------------------------------------
    def _where(self) -> str:
        return f"{self.filename}:{self.lineno} (kernel {self.name})"

    def bind(self, args, kwargs):
        """(runtime [(name, value)], constexprs {name: value}) of one launch."""
        if len(args) > len(self.arg_names):
            raise TileError(f"{self._where()}: takes {len(self.arg_names)} arguments, "
                            f"got {len(args)}")
        values = dict(self.defaults)
        values.update(zip(self.arg_names, args))
        for n, v in kwargs.items():
            if n not in self.arg_names:
                raise TileError(f"{self._where()}: unexpected argument {n!r}")
            values[n] = v
        missing = [n for n in self.arg_names if n not in values]
        if missing:
            raise TileError(f"{self._where()}: missing arguments {', '.join(missing)}")
        runtime, meta = [], {}
        for n in self.arg_names:
            v = values[n]
            if isinstance(v, constexpr):
                v = v.value
            if n in self.constexprs or v is None:
                meta[n] = v
            else:
                runtime.append((n, v))
        return runtime, meta

    def spec(self, runtime):
        """The specialization of runtime arguments: dtypes of arrays, kinds and ==1 of numbers."""
        out = []
        for n, v in runtime:
            if isinstance(v, np.ndarray):
                try:
                    d = _dt.from_numpy(v.dtype)
                except ValueError:
                    d = None
                if d not in SUPPORTED_DTYPES:
                    raise TileCompileError(
                        f"{self._where()}: argument '{n}' has dtype {v.dtype}, which tile kernels "
                        f"do not support (supported: {', '.join(x.name for x in SUPPORTED_DTYPES)})")
                if not v.flags.c_contiguous:
                    raise TileError(f"{self._where()}: argument '{n}' must be C-contiguous "
                                    "(pass strides explicitly and np.ascontiguousarray the data)")
                out.append(("p", d.name))
            elif isinstance(v, (bool, np.bool_, int, np.integer)):
                iv = int(v)
                out.append(("i", iv if iv in (0, 1) and n not in self.do_not_specialize else None))
            elif isinstance(v, (float, np.floating)):
                out.append(("f",))
            else:
                raise TileError(f"{self._where()}: argument '{n}' is a {type(v).__name__}; pass "
                                "NumPy arrays, numbers, or mark it tile.constexpr")
        return tuple(out)

    # --- tracing -----------------------------------------------------------------------------
    def trace(self, spec, meta) -> KernelIR:
        """Kernel IR for runtime-argument specialization `spec` and constexprs `meta`."""
        from .passes import dce, verify
        from .trace import TraceBuilder

        tb = TraceBuilder()
        kwargs, params = dict(meta), []
        runtime_names = [n for n in self.arg_names if n not in meta]
        for n, s in zip(runtime_names, spec):
            if s[0] == "p":
                d = PtrType(_dt.by_name(s[1]))
                v = tb.param(n, d)
                kwargs[n] = Tile(v, d, ())
            elif s[0] == "i":
                v = tb.param(n, _dt.int64)
                kwargs[n] = s[1] if s[1] is not None else Tile(v, _dt.int64, ())
            else:
                v = tb.param(n, _dt.float32)
                kwargs[n] = Tile(v, _dt.float32, ())
            params.append(v)
        body = self.body
        prev = CONTEXT.builder
        CONTEXT.builder = tb
        try:
            body(**kwargs)
        except TileError:
            raise
        except Exception as e:
            loc = location_from_traceback(e.__traceback__) or self._where()
            raise TileCompileError(f"{loc}: {format_exception(e)}") from e
        finally:
            CONTEXT.builder = prev
        k = KernelIR(self.name, params, {n: v for n, v in meta.items()}, tb.blocks[0])
        dce(k)
        verify(k)
        return k

    def ir(self, *args, **kwargs) -> KernelIR:
        """Kernel IR for example arguments (arrays and numbers, as for a launch)."""
        runtime, meta = self.bind(args, kwargs)
        return self.trace(self.spec(runtime), meta)

    def c_source(self, *args, **kwargs) -> str:
        """The C source the cpu backend compiles for these example arguments."""
        from .codegen_c import generate

        return generate(self.ir(*args, **kwargs))

    # --- launching ---------------------------------------------------------------------------
    def _cache_key(self, spec, meta) -> str:
        if self._file_hash is None:
            try:
                with open(self.filename, "rb") as f:
                    self._file_hash = hashlib.sha256(f.read()).hexdigest()
            except OSError:
                self._file_hash = hashlib.sha256(inspect.getsource(self.fn).encode()).hexdigest()
        text = repr((self._file_hash, self.fn.__qualname__, spec, sorted(meta.items(), key=str),
                     _tile_version()))
        return "tile:" + hashlib.sha256(text.encode()).hexdigest()

    def _cpu_program(self, backend, spec, meta, compile=True):
        key = (backend.name, spec, tuple(sorted(meta.items(), key=str)))
        prog = self._programs.get(key)
        if prog is not None:
            if _recorders:
                _note(prog)
            return prog
        ckey = self._cache_key(spec, meta)
        entry = f"oc_{self.name}"
        signature = "".join({"p": "p", "i": "i", "f": "f"}[s[0]] for s in spec)
        prog = backend.load_cached(ckey, entry=entry, signature=signature) \
            if hasattr(backend, "load_cached") else None
        if prog is None:
            if not compile:
                return None
            from .codegen_c import entry_name, generate, signature_of

            k = self.trace(spec, meta)
            assert entry_name(k) == entry and signature_of(k) == signature
            source = generate(k)
            _dump(k, source)
            prog = backend.compile(source, entry=entry, signature=signature, cache_key=ckey)
        self._programs[key] = prog
        if _recorders:
            _note(prog)
        return prog

    def _grid(self, grid, runtime, meta):
        if callable(grid):
            g = grid({**dict(runtime), **meta})
        else:
            g = grid
        if isinstance(g, (int, np.integer)):
            g = (g,)
        g = tuple(int(x) for x in g)
        if not 1 <= len(g) <= 3:
            raise TileError(f"{self._where()}: a grid has 1 to 3 dims, got {g}")
        return g + (1,) * (3 - len(g))

    def run(self, *args, grid, backend=None, **kwargs):
        """Launch over `grid` on `backend` (name or instance)."""
        runtime, meta = self.bind(args, kwargs)
        g = self._grid(grid, runtime, meta)
        spec = self.spec(runtime)
        be = backend if isinstance(backend, _backends.Backend) else _backends.get(
            backend or os.environ.get("OPENCANN_TILE_BACKEND", "cpu"))
        if g[0] * g[1] * g[2] == 0:
            return
        features = self._features(be)
        if "interpreter" in features:
            from .interpreter import kernel_arguments, run_program

            kw = {**kernel_arguments(runtime), **meta}
            body = self.body
            prog = be.compile(lambda pid, grid: run_program(body, pid, grid, kw),
                              entry=self.name)
            be.launch(prog, g, ())
            return
        if "c-source" not in features:
            raise TileError(f"{self._where()}: backend {be.name!r} takes neither C source nor "
                            "interpreted programs; the tile language has no code generator for it")
        prog = self._cpu_program(be, spec, meta)
        args_c = []
        for (n, v), s in zip(runtime, spec):
            if s[0] == "p":
                args_c.append(v.__array_interface__["data"][0])
            elif s[0] == "i":
                args_c.append(int(v))
            else:
                args_c.append(float(v))
        be.launch(prog, g, args_c)

    PREPARED_MAX = 64  # prepared launches `launch` keeps per kernel

    def launch(self, grid, *args, backend="cpu", **kwargs) -> None:
        """`self[grid](*args, **kwargs)`, through a launch kept prepared for everything but the
        arrays' data: the generic launcher binds and specializes the arguments in Python on every
        call (tens of microseconds, a third of a small layer norm), a prepared launch is one C
        call. The last PREPARED_MAX argument patterns are kept; arrays are the positional and
        keyword arguments that are NumPy arrays, None is a missing one."""
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        order = {n: i for i, n in enumerate(self.arg_names)}
        arrays += [a for _, a in sorted(((order.get(k, len(order)), a) for k, a in kwargs.items()
                                         if isinstance(a, np.ndarray)), key=lambda t: t[0])]
        key = (str(backend), tuple(int(g) for g in grid),
               tuple((a.dtype.char, a.ndim) if isinstance(a, np.ndarray) else
                     ("none" if a is None else a) for a in args),
               tuple((k, (a.dtype.char, a.ndim) if isinstance(a, np.ndarray) else a)
                     for k, a in kwargs.items()))
        cache = self.__dict__.setdefault("_prepared", {})
        p = cache.get(key) if isinstance(backend, str) else None
        if p is None:
            p = self.prepare(grid, *args, backend=backend, **kwargs)
            if isinstance(backend, str):
                if len(cache) >= self.PREPARED_MAX:
                    cache.pop(next(iter(cache)))
                cache[key] = p
        p(*arrays)

    def prepare(self, grid, *args, backend="cpu", **kwargs) -> "Prepared":
        """This launch with everything but its arrays fixed: `p = k.prepare(grid, *args,
        **meta)`, then `p(*arrays)` with arrays in the places (and of the dtypes) of the
        template's arrays. On a C backend the call goes straight to the compiled program."""
        return Prepared(self, grid, args, kwargs, backend)

    _feature_cache: dict = {}

    @classmethod
    def _features(cls, be) -> frozenset:
        f = cls._feature_cache.get(be)
        if f is None:
            f = cls._feature_cache[be] = be.capabilities().features
        return f

    def warmup(self, *args, backend="cpu", **kwargs):
        """Compile (or load) the program these arguments need, without running it."""
        runtime, meta = self.bind(args, kwargs)
        be = _backends.get(backend) if isinstance(backend, str) else backend
        return self._cpu_program(be, self.spec(runtime), meta)


def _dump(k: KernelIR, source: str) -> None:
    """`OPENCANN_TILE_DUMP=ir,c`: print the IR and/or C of each kernel compiled, to stderr."""
    what = {w.strip() for w in os.environ.get("OPENCANN_TILE_DUMP", "").split(",") if w.strip()}
    if not what:
        return
    import sys

    if "ir" in what:
        print(f"// ---- kernel IR of {k.name}\n{k}", file=sys.stderr)
    if "c" in what:
        print(f"// ---- C source of {k.name}\n{source.split('/* kernel', 1)[-1]}", file=sys.stderr)


def kernel(fn=None, *, do_not_specialize=()):
    """Decorator: make `fn` a tile kernel.

        @tile.kernel
        def add(x, y, out, n, BLOCK: tile.constexpr):
            offs = tile.program_id(0) * BLOCK + tile.arange(0, BLOCK)
            mask = offs < n
            tile.store(out + offs, tile.load(x + offs, mask=mask) + tile.load(y + offs, mask=mask),
                       mask=mask)

        add[(tile.cdiv(n, 1024),)](x, y, out, n, BLOCK=1024)
    """
    if fn is None:
        return lambda f: Kernel(f, do_not_specialize)
    return Kernel(fn, do_not_specialize)


def compile_many(launches, backend="cpu"):
    """Compile several kernels in parallel: `launches` is a list of (kernel, args, kwargs).

    Kernels already cached load at once; the rest are traced here and compiled by parallel
    compiler processes.
    """
    from .codegen_c import generate, signature_of

    be = _backends.get(backend) if isinstance(backend, str) else backend
    todo = []
    for k, args, kwargs in launches:
        runtime, meta = k.bind(args, kwargs)
        spec = k.spec(runtime)
        if k._cpu_program(be, spec, meta, compile=False) is None:
            ir = k.trace(spec, meta)
            todo.append((k, spec, meta, (generate(ir), f"oc_{k.name}", signature_of(ir),
                                         k._cache_key(spec, meta))))
    if todo:
        progs = be.compile_many([t[3] for t in todo])
        for (k, spec, meta, _), prog in zip(todo, progs):
            k._programs[(be.name, spec, tuple(sorted(meta.items(), key=str)))] = prog
            if _recorders:
                _note(prog)


class Prepared:
    """One kernel launch with its program, grid and scalar arguments resolved once; call it with
    the array arguments (the arrays of `args`, in order). A launcher that binds arguments,
    derives the specialization and looks up the program costs tens of microseconds of Python per
    call; a prepared C launch is one call with fresh data pointers. On a backend without C (the
    interpreter) it launches through `Kernel.run` with the same arguments."""

    __slots__ = ("args", "fn", "grid", "ptr_pos", "program", "_slow")

    def __init__(self, kernel, grid, args, meta, backend="cpu"):
        runtime, fixed = kernel.bind(args, meta)
        be = backend if isinstance(backend, _backends.Backend) else _backends.get(backend)
        g = tuple(int(x) for x in grid)
        self.grid = g + (1,) * (3 - len(g))
        if "c-source" not in Kernel._features(be):
            # the arrays come in the order of the kernel's arguments, keyword ones included
            names = [n for n, _ in runtime]
            template = [v for _, v in runtime]
            arr_pos = [i for i, a in enumerate(template) if isinstance(a, np.ndarray)]

            def slow(*arrays):
                a = template.copy()
                for i, x in zip(arr_pos, arrays):
                    a[i] = x
                kernel.run(grid=self.grid, backend=be, **dict(zip(names, a)), **fixed)
            self._slow, self.fn, self.args, self.ptr_pos, self.program = slow, None, [], [], None
            return
        self._slow = None
        spec = kernel.spec(runtime)
        self.program = kernel.warmup(*args, backend=be, **meta)
        self.fn = self.program.fn
        self.args, self.ptr_pos = [], []
        for i, ((_, v), s) in enumerate(zip(runtime, spec)):
            if s[0] == "p":
                self.ptr_pos.append(i)
                self.args.append(0)
            elif s[0] == "i":
                self.args.append(int(v))
            else:
                self.args.append(float(v))

    def __call__(self, *arrays) -> None:
        if self._slow is not None:
            return self._slow(*arrays)
        if _recorders:  # a launch kept from before a ProgramLog started still counts in it
            _note(self.program)
        a = self.args.copy()
        for i, x in zip(self.ptr_pos, arrays):
            a[i] = x.ctypes.data
        if self.grid[0] * self.grid[1] * self.grid[2]:
            self.fn(*self.grid, *a)
