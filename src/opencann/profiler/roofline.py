"""This machine's roofline: peak float32 FLOP/s and memory bandwidth, measured once and cached.

Measured with NumPy (a BLAS sgemm for compute, a large array copy for bandwidth), so the figures are
what a well-tuned kernel attains here. `OPENCANN_ROOFLINE="gflops,gbs"` overrides the measurement.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Roofline:
    peak_gflops: float
    bandwidth_gbs: float

    def attainable_gflops(self, flops: float, nbytes: float) -> float:
        """min(peak, arithmetic intensity x bandwidth)."""
        if nbytes <= 0:
            return self.peak_gflops
        return min(self.peak_gflops, flops / nbytes * self.bandwidth_gbs)

    def __str__(self) -> str:
        return f"{self.peak_gflops:.0f} GFLOP/s fp32, {self.bandwidth_gbs:.1f} GB/s"


def _best(fn, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


@functools.lru_cache(maxsize=1)
def machine_roofline() -> Roofline:
    env = os.environ.get("OPENCANN_ROOFLINE")
    if env:
        g, b = (float(x) for x in env.split(","))
        return Roofline(g, b)
    n = 1024
    a = np.ones((n, n), np.float32)
    gemm = _best(lambda: a @ a, 3)
    src = np.ones(16 << 20, np.float32)  # 64 MB
    dst = np.empty_like(src)
    copy = _best(lambda: np.copyto(dst, src), 3)
    return Roofline(2 * n ** 3 / gemm / 1e9, 2 * src.nbytes / copy / 1e9)
