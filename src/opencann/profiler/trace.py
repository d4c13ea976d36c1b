"""Recording slices and writing them as a Chrome trace and an op summary."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass, field

from .roofline import Roofline, machine_roofline

_ACTIVE: ContextVar["Profiler | None"] = ContextVar("opencann_profiler", default=None)


@dataclass
class Slice:
    """One timed piece of work: a node's reference, or a kernel launch."""

    name: str        # the node or kernel name
    op: str          # the op type (or kernel family)
    kernel: str      # what ran it: "ref:<op>" or the kernel's name
    start: float     # perf_counter seconds
    duration: float  # seconds
    stream: str = "main"
    flops: float = 0.0
    bytes: float = 0.0
    args: dict = field(default_factory=dict)


class Profiler:
    """Collects slices while active (see `profile()`)."""

    def __init__(self, roofline: Roofline | None = None):
        self.slices: list[Slice] = []
        self._lock = threading.Lock()
        self._origin = time.perf_counter()
        self._roofline = roofline

    @property
    def roofline(self) -> Roofline:
        if self._roofline is None:
            self._roofline = machine_roofline()
        return self._roofline

    def add(self, s: Slice) -> None:
        with self._lock:
            self.slices.append(s)

    # -- outputs ---------------------------------------------------------------------------------
    def chrome_trace(self) -> dict:
        """The trace as a Chrome/Perfetto JSON object: one complete ("X") event per slice, one
        thread row per stream."""
        tids: dict[str, int] = {}
        events = []
        for s in self.slices:
            tid = tids.setdefault(s.stream, len(tids) + 1)
            events.append({"name": s.name, "cat": s.op, "ph": "X", "pid": 1, "tid": tid,
                           "ts": round((s.start - self._origin) * 1e6, 3), "dur": round(s.duration * 1e6, 3),
                           "args": {"op": s.op, "kernel": s.kernel, "flops": s.flops, "bytes": s.bytes, **s.args}})
        meta = [{"name": "thread_name", "ph": "M", "pid": 1, "tid": t, "args": {"name": name}}
                for name, t in tids.items()]
        meta.append({"name": "process_name", "ph": "M", "pid": 1, "args": {"name": "opencann"}})
        return {"traceEvents": meta + events, "displayTimeUnit": "ms"}

    def write_trace(self, path: str | os.PathLike) -> None:
        with open(path, "w") as f:
            json.dump(self.chrome_trace(), f)

    def summary(self) -> list[dict]:
        """One row per (op, kernel), most time first."""
        rows: dict[tuple, dict] = {}
        for s in self.slices:
            r = rows.setdefault((s.op, s.kernel), {"op": s.op, "kernel": s.kernel, "calls": 0, "total_ms": 0.0,
                                                   "flops": 0.0, "bytes": 0.0})
            r["calls"] += 1
            r["total_ms"] += 1000 * s.duration
            r["flops"] += s.flops
            r["bytes"] += s.bytes
        total = sum(r["total_ms"] for r in rows.values()) or 1.0
        roof = self.roofline
        out = []
        for r in sorted(rows.values(), key=lambda r: -r["total_ms"]):
            secs = r["total_ms"] / 1000 or 1e-12
            gflops = r["flops"] / secs / 1e9
            attainable = roof.attainable_gflops(r["flops"], r["bytes"])
            if r["flops"] > 0:
                pct = 100 * gflops / attainable if attainable else 0.0
            else:  # pure data movement: measure against bandwidth
                pct = 100 * (r["bytes"] / secs / 1e9) / roof.bandwidth_gbs if roof.bandwidth_gbs else 0.0
            out.append({"op": r["op"], "kernel": r["kernel"], "calls": r["calls"],
                        "total_ms": round(r["total_ms"], 4), "mean_ms": round(r["total_ms"] / r["calls"], 4),
                        "share_pct": round(100 * r["total_ms"] / total, 2), "gflops": round(gflops, 3),
                        "bytes_moved": int(r["bytes"]), "roofline_pct": round(pct, 1)})
        return out

    def write_summary(self, path: str | os.PathLike) -> None:
        rows = self.summary()
        fields = ["op", "kernel", "calls", "total_ms", "mean_ms", "share_pct", "gflops", "bytes_moved", "roofline_pct"]
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)

    def table(self, top: int = 15) -> str:
        """The top of the summary as a fixed-width table."""
        rows = self.summary()
        head = f"{'op':22s} {'kernel':28s} {'calls':>6s} {'total ms':>10s} {'mean ms':>9s} {'share':>6s} {'GFLOP/s':>8s} {'MB moved':>9s} {'%roof':>6s}"
        lines = [head, "-" * len(head)]
        for r in rows[:top]:
            lines.append(f"{r['op'][:22]:22s} {r['kernel'][:28]:28s} {r['calls']:6d} {r['total_ms']:10.3f} "
                         f"{r['mean_ms']:9.4f} {r['share_pct']:5.1f}% {r['gflops']:8.2f} "
                         f"{r['bytes_moved'] / 1e6:9.2f} {r['roofline_pct']:5.1f}%")
        if len(rows) > top:
            lines.append(f"... and {len(rows) - top} more rows")
        total = sum(r["total_ms"] for r in rows)
        lines.append(f"total {total:.3f} ms in {sum(r['calls'] for r in rows)} calls; roofline: {self.roofline}")
        return "\n".join(lines)


@contextlib.contextmanager
def profile(roofline: Roofline | None = None):
    """Profile everything run inside the `with` block (this thread and the work it enqueues)."""
    prof = Profiler(roofline)
    tok = _ACTIVE.set(prof)
    try:
        yield prof
    finally:
        _ACTIVE.reset(tok)


def active() -> Profiler | None:
    """The profiler collecting now, or None (cheap: executors check it per node)."""
    return _ACTIVE.get()


def record(s: Slice) -> None:
    p = _ACTIVE.get()
    if p is not None:
        p.add(s)
