"""The profiler, opencann's msprof: a Chrome/Perfetto trace of every node or kernel launch, and an
op summary (calls, time, share, GFLOP/s, bytes moved, percent of this machine's roofline).

    >>> import opencann
    >>> from opencann import profiler
    >>> with profiler.profile() as prof:                        # doctest: +SKIP
    ...     model.run(feeds)
    >>> prof.write_trace("trace.json"); prof.write_summary("ops.csv")   # doctest: +SKIP
    >>> print(prof.table())                                     # doctest: +SKIP

The profiler sits beside the layers: executors call `record()`, which costs one context-variable
read when no profile is active.
"""

from .trace import Profiler, Slice, active, profile, record
from .roofline import Roofline, machine_roofline

__all__ = ["Profiler", "Roofline", "Slice", "active", "machine_roofline", "profile", "record"]
