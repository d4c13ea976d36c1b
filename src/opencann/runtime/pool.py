"""A caching memory pool over a backend's allocator, with statistics.

Freed blocks are kept by size class and handed out again, so a model that runs repeatedly stops
calling the backend's allocator after the first run (the way CUDA's caching allocator behaves).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass

_GRANULE = 512


def size_class(nbytes: int) -> int:
    """Blocks are rounded up to 512 bytes, then to 1/8 steps of their power of two."""
    n = max(int(nbytes), 1)
    n = -(-n // _GRANULE) * _GRANULE
    if n <= 8 * _GRANULE:
        return n
    step = 1 << (n.bit_length() - 4)
    return -(-n // step) * step


@dataclass
class PoolStats:
    """Bytes handed out now and at most, bytes held from the backend, and call counts."""

    allocated_bytes: int = 0
    peak_allocated_bytes: int = 0
    reserved_bytes: int = 0
    allocations: int = 0
    cache_hits: int = 0
    backend_allocations: int = 0


class MemoryPool:
    """Allocates `Buffer`s of a backend, caching freed ones for reuse."""

    def __init__(self, backend):
        self.backend = backend
        self.stats = PoolStats()
        self._free: dict[int, list] = defaultdict(list)
        self._lock = threading.Lock()

    def allocate(self, nbytes: int):
        cls = size_class(nbytes)
        with self._lock:
            s = self.stats
            s.allocations += 1
            if self._free[cls]:
                buf = self._free[cls].pop()
                s.cache_hits += 1
            else:
                buf = self.backend.allocate(cls)
                s.backend_allocations += 1
                s.reserved_bytes += cls
            s.allocated_bytes += cls
            s.peak_allocated_bytes = max(s.peak_allocated_bytes, s.allocated_bytes)
        return buf

    def free(self, buf) -> None:
        with self._lock:
            self._free[buf.nbytes].append(buf)
            self.stats.allocated_bytes -= buf.nbytes

    def empty_cache(self) -> int:
        """Give every cached block back to the backend; returns the bytes released."""
        with self._lock:
            released = 0
            for blocks in self._free.values():
                for b in blocks:
                    self.backend.free(b)
                    released += b.nbytes
            self._free.clear()
            self.stats.reserved_bytes -= released
        return released
