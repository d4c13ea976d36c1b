"""opencann's tile language: SPMD kernels over a launch grid, written once, run on every backend.

    import numpy as np
    from opencann import tile

    @tile.kernel
    def add(x, y, out, n, BLOCK: tile.constexpr):
        offs = tile.program_id(0) * BLOCK + tile.arange(0, BLOCK)
        mask = offs < n
        tile.store(out + offs, tile.load(x + offs, mask=mask) + tile.load(y + offs, mask=mask),
                   mask=mask)

    x = y = np.ones(1000, np.float32); out = np.empty_like(x)
    add[lambda m: (tile.cdiv(m["n"], m["BLOCK"]),)](x, y, out, x.size, BLOCK=256)
    add[(4,)](x, y, out, x.size, BLOCK=256, backend="ref")   # the NumPy interpreter

See docs/tile.md for the language, and `Kernel.ir(...)` / `Kernel.c_source(...)` to look inside.
"""

from .c_runtime import dot_panel_width
from .errors import TileCompileError, TileError, TileIndexError
from .kernel import Kernel, compile_many, kernel
from .language import *  # noqa: F401,F403  (the language's functions and dtypes)
from .language import __all__ as _lang_all

jit = kernel

__all__ = ["kernel", "jit", "Kernel", "compile_many", "TileError", "TileCompileError",
           "TileIndexError", "dot_panel_width", *_lang_all]
