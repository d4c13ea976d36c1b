"""Errors raised by the tile language, each naming the kernel's source file and line.

A kernel's code objects are registered here when the kernel is built, so any frame running kernel
code (the kernel function itself, or a loop body split out of it) can be found on the stack.
"""

from __future__ import annotations

import linecache
import sys
import traceback

__all__ = ["TileError", "TileCompileError", "TileIndexError", "location", "KERNEL_CODES"]

# code objects of every kernel (and of the loop bodies split out of it) -> kernel name
KERNEL_CODES: dict = {}


class TileError(Exception):
    """Base class of the tile language's errors."""


class TileCompileError(TileError):
    """Kernel code that cannot be traced or lowered: bad name, shape mismatch, unsupported dtype..."""


class TileIndexError(TileError, IndexError):
    """An unmasked load or store outside its tensor (raised by the interpreter)."""


def _describe(filename: str, lineno: int, kernel: str | None) -> str:
    text = linecache.getline(filename, lineno).strip()
    where = f"{filename}:{lineno}"
    if kernel:
        where += f" (kernel {kernel})"
    return f"{where}: `{text}`" if text else where


def location() -> str | None:
    """`file:line (kernel k): source` of the innermost kernel frame on the stack, or None."""
    f = sys._getframe(1)
    while f is not None:
        k = KERNEL_CODES.get(f.f_code)
        if k is not None:
            return _describe(f.f_code.co_filename, f.f_lineno, k)
        f = f.f_back
    return None


def location_from_traceback(tb) -> str | None:
    """Like `location`, for the innermost kernel frame of a traceback."""
    found = None
    while tb is not None:
        k = KERNEL_CODES.get(tb.tb_frame.f_code)
        if k is not None:
            found = _describe(tb.tb_frame.f_code.co_filename, tb.tb_lineno, k)
        tb = tb.tb_next
    return found


def error(msg: str, cls=TileCompileError) -> TileError:
    """An error of class `cls` whose message starts with the current kernel location."""
    loc = location()
    return cls(f"{loc}: {msg}" if loc else msg)


def format_exception(e: BaseException) -> str:
    """`Type: message` of an exception, on one line."""
    return "".join(traceback.format_exception_only(type(e), e)).strip()
