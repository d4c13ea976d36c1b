"""Pre-resolved kernel launches for the executor's hot path.

A library launcher (`gemm`, `layer_norm`, ...) binds its arguments, derives the specialization and
looks up the compiled program on every call: tens of microseconds of Python per launch. For a
step that runs the same shapes again and again, `Prepared` does that work once per shape and
keeps the program's entry point and its scalar arguments, so a launch is one C call with fresh
data pointers.

`Prepared` belongs to the tile layer (`tile.kernel.Prepared`; the library's kernels use it too).
`Checked` guards the shortcut: the first call for a shape runs the library launcher and the
prepared launch side by side and keeps the prepared one only when both give bit-identical
results (so a launcher that changes its kernel's arguments costs speed, never correctness).

    >>> p = Prepared(kernel, grid, args, meta)     # doctest: +SKIP
    >>> p(a, b, out)                                # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from ..tile.kernel import Prepared

__all__ = ["Checked", "Prepared"]


class Checked:
    """A step function with a fast path per input-shape key: `prepare(*inputs)` returns
    `(run, out_shape)` where `run(out, *inputs)` fills `out` with prepared launches (or raises
    to refuse the shape); `slow(*inputs)` is the library-launcher path. The fast path is used
    for a shape once it matched the slow one bit for bit."""

    def __init__(self, key, prepare, slow):
        self.key = key
        self.prepare = prepare
        self.slow = slow
        self.fast: dict = {}

    def into(self, out, *inputs) -> bool:
        """Write into `out` (an arena buffer) when this shape has a fast path giving out's shape."""
        fast = self.fast.get(self.key(*inputs))
        if fast is None or fast[0] is False or fast[1] != out.shape:
            return False
        fast[0](out, *inputs)
        return True

    def __call__(self, *inputs):
        k = self.key(*inputs)
        fast = self.fast.get(k)
        if fast is not None:
            run, shape = fast
            if run is not False:
                out = np.empty(shape, np.float32)
                run(out, *inputs)
                return (out,)
            return self.slow(*inputs)
        want = self.slow(*inputs)
        try:
            run, shape = self.prepare(*inputs)
            out = np.empty(shape, np.float32)
            run(out, *inputs)
            ok = out.shape == want[0].shape and np.array_equal(out, want[0], equal_nan=True)
        except Exception:  # noqa: BLE001 - any mismatch with the launcher keeps the launcher
            ok = False
        self.fast[k] = (run, shape) if ok else (False, None)
        return want
