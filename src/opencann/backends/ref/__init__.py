"""The `ref` backend: the NumPy device, and the semantic definition of every other backend.

Memory is host memory. A program is a Python callable `program(pid, grid, *args)` run once per grid
point (the tile language hands over its interpreter this way), so `ref` runs any tile kernel with
no compiler.
"""

from __future__ import annotations

import itertools

from ..base import Backend, BackendError, Capabilities, HostMemory, Program, _memory_bytes

__all__ = ["RefBackend"]


class RefBackend(HostMemory, Backend):
    """Host memory and Python programs; what every backend's results are checked against."""

    name = "ref"

    def compile(self, source, *, entry: str = "program", signature: str = "",
                cache_key: str | None = None) -> Program:
        if not callable(source):
            raise BackendError("the ref backend runs Python callables `program(pid, grid, *args)`")
        return Program(entry, entry, signature, binary=source)

    def launch(self, program: Program, grid, args) -> None:
        g = tuple(grid) + (1,) * (3 - len(grid))
        for z, y, x in itertools.product(range(g[2]), range(g[1]), range(g[0])):
            program.binary((x, y, z), g, *args)

    def capabilities(self) -> Capabilities:
        return Capabilities(dtypes=self.HOST_DTYPES, memory_bytes=_memory_bytes(),
                            cores=1, simd_width_bytes=0, features=frozenset({"interpreter"}))

