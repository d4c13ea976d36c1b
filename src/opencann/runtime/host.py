"""Host memory policy for compiled runs: freed buffers stay with the process.

A model run allocates and frees the same large host buffers every time (outputs of steps that do
not write the planned arena). glibc's malloc serves blocks above its mmap threshold with fresh
mappings and returns freed heap tops to the kernel, so each run faults its pages in again: 11,000
page faults and 30 ms of system time per GPT-2 run on this project's 2-vCPU machine (202 ms a
run; 183 ms with the memory kept). `keep_freed_host_memory()` raises the mmap threshold to
glibc's maximum (32 MiB) and the trim threshold to 256 MiB, once per process, on glibc only. The
process's peak is unchanged; what it returns to the system after a run comes back later.
Setting MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ yourself keeps your values.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import sys

import numpy as np

__all__ = ["keep_freed_host_memory", "release_file_pages"]

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc refuses more on 64-bit hosts
TRIM_THRESHOLD = 256 << 20

_done: list = []


def keep_freed_host_memory() -> bool:
    """Apply the policy (see the module docstring); True when glibc took it."""
    if _done:
        return _done[0]
    ok = False
    if sys.platform.startswith("linux") and not any(
            k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # not glibc
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
                bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    _done.append(ok)
    return ok



def release_file_pages(a) -> bool:
    """Give back the resident pages of an array that is a read-only view of a memory-mapped file
    (weights mapped from an ONNX file's external data, or an .ocm file), once a kernel has its
    own copy (a transposed, packed or transformed form): the mapping stays, and a later read
    faults the pages in again from the file. Anything else is left alone. True when pages were
    released."""
    mm, obj = None, a
    while obj is not None and mm is None:  # the view's chain of bases, down to the file mapping
        if isinstance(obj, mmap.mmap):
            mm = obj
        elif isinstance(getattr(obj, "_mmap", None), mmap.mmap):  # an np.memmap
            mm = obj._mmap
        obj = getattr(obj, "base", None)
    if mm is None or not isinstance(a, np.ndarray) or a.flags.writeable or \
            not hasattr(mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return False
    buf = np.frombuffer(mm, np.uint8)
    start = a.__array_interface__["data"][0] - buf.__array_interface__["data"][0]
    if start < 0 or start + a.nbytes > len(mm):
        return False
    page = mmap.PAGESIZE
    lo, hi = -(-start // page) * page, (start + a.nbytes) // page * page  # pages wholly inside
    if hi <= lo:
        return False
    mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
    return True
