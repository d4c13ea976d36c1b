"""Sliding-window geometry shared by convolution and pooling: attribute defaults, output sizes and
padding (explicit, `auto_pad`, `ceil_mode`), and strided window views of a padded input.

Every op here works on channels-first tensors `(N, C, D1, ..., Dn)`; the helpers take and return
per-spatial-axis lists.
"""

from __future__ import annotations

import numpy as np

from .. import infer
from ..infer import InferError

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


class Window:
    """The resolved geometry of a sliding window over `n` spatial axes."""

    __slots__ = ("kernel", "strides", "dilations", "pads", "auto_pad", "ceil_mode")

    def __init__(self, n: int, kernel, strides=None, dilations=None, pads=None,
                 auto_pad: str = "NOTSET", ceil_mode: int = 0, error=ValueError):
        if kernel is None:
            raise error("kernel_shape is required (the op has no weights to take it from)")
        self.kernel = [int(k) for k in kernel]
        self.strides = [1] * n if not strides else [int(s) for s in strides]
        self.dilations = [1] * n if not dilations else [int(d) for d in dilations]
        self.pads = [0] * (2 * n) if not pads else [int(p) for p in pads]
        self.auto_pad = auto_pad or "NOTSET"
        self.ceil_mode = bool(ceil_mode)
        for name, vals, want in (("kernel_shape", self.kernel, n), ("strides", self.strides, n),
                                 ("dilations", self.dilations, n), ("pads", self.pads, 2 * n)):
            if len(vals) != want:
                raise error(f"{name} has {len(vals)} values, the input has {n} spatial axes "
                            f"(expected {want})")
        if self.auto_pad not in AUTO_PADS:
            raise error(f"auto_pad {self.auto_pad!r} is not one of {', '.join(AUTO_PADS)}")
        if any(s < 1 for s in self.strides) or any(d < 1 for d in self.dilations):
            raise error(f"strides {self.strides} and dilations {self.dilations} must be >= 1")
        if any(k < 1 for k in self.kernel):
            raise error(f"kernel_shape {self.kernel} must be >= 1")

    @property
    def n(self) -> int:
        return len(self.kernel)

    def extent(self, i: int) -> int:
        """How many input positions the (dilated) window spans on axis `i`."""
        return (self.kernel[i] - 1) * self.dilations[i] + 1

    def axis(self, i: int, size, error=ValueError):
        """(output size, pad before, pad after) on axis `i` for an input of `size` (None when the
        size is not a known int)."""
        if not infer.known_int(size):
            return None, None, None
        size = int(size)
        s, ext = self.strides[i], self.extent(i)
        if self.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = -(-size // s)
            total = max((out - 1) * s + ext - size, 0)
            small, big = total // 2, total - total // 2
            before, after = (small, big) if self.auto_pad == "SAME_UPPER" else (big, small)
            return out, before, after
        if self.auto_pad == "VALID":
            before = after = 0
        else:
            before, after = self.pads[i], self.pads[i + self.n]
        span = size + before + after - ext
        if span < 0:
            raise error(f"the window (extent {ext}) is larger than the padded input "
                        f"({size} + {before} + {after}) on spatial axis {i}")
        if self.ceil_mode:
            out = -(-span // s) + 1
            if (out - 1) * s >= size + before:  # the last window would start in the end padding
                out -= 1
        else:
            out = span // s + 1
        return out, before, after

    def resolve(self, sizes, error=ValueError):
        """(output sizes, pads before, pads after) for input spatial `sizes`."""
        outs, befores, afters = [], [], []
        for i, size in enumerate(sizes):
            o, b, a = self.axis(i, size, error)
            outs.append(o)
            befores.append(b)
            afters.append(a)
        return outs, befores, afters


def spatial_rank(x, what: str = "X", min_rank: int = 3) -> int | None:
    """The number of spatial axes of value `x` (rank - 2), checked; None when the rank is unknown."""
    r = infer.rank_of(x)
    if r is None:
        return None
    if r < min_rank:
        raise InferError(f"{what} has rank {r}, but the op takes (N, C, D1, ...) tensors of rank >= {min_rank}")
    return r - 2


def windows(x: np.ndarray, win: Window, outs, befores, fill=0) -> np.ndarray:
    """A strided view `(N, C, *outs, *kernel)` of the windows over `x` (N, C, *spatial), padded by
    `befores` at the start and by `fill` at the end as far as the last window reaches."""
    n = win.n
    spatial = x.shape[2:]
    pad = [(0, 0), (0, 0)]
    crop = [slice(None), slice(None)]
    for i in range(n):
        need = (outs[i] - 1) * win.strides[i] + win.extent(i)
        after = need - spatial[i] - befores[i]
        pad.append((befores[i], max(after, 0)))
        crop.append(slice(0, need))
    if any(p != (0, 0) for p in pad):
        xp = np.pad(x, pad, mode="constant", constant_values=fill)
    else:
        xp = x
    xp = xp[tuple(crop)]
    view = np.lib.stride_tricks.sliding_window_view(
        xp, [win.extent(i) for i in range(n)], axis=tuple(range(2, 2 + n)))
    sel = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in win.strides) \
        + tuple(slice(None, None, d) for d in win.dilations)
    return view[sel]


def col2im(cols: np.ndarray, out_sizes, win: Window, positions, befores) -> np.ndarray:
    """Sum column blocks back into an image: `cols` is `(N, C, *kernel, *positions)`, the window at
    position p covers image offsets `p * stride - before + k * dilation`; returns `(N, C, *out_sizes)`
    (contributions outside the image are dropped)."""
    n = win.n
    N, C = cols.shape[:2]
    full = [(positions[i] - 1) * win.strides[i] + win.extent(i) for i in range(n)]
    acc = np.zeros((N, C, *full), dtype=cols.dtype)
    for kidx in np.ndindex(*win.kernel):
        dst = [slice(None), slice(None)]
        for i in range(n):
            start = kidx[i] * win.dilations[i]
            dst.append(slice(start, start + (positions[i] - 1) * win.strides[i] + 1, win.strides[i]))
        acc[tuple(dst)] += cols[(slice(None), slice(None)) + kidx]
    # place the accumulated (unpadded-coordinate) span into the output, cropping or zero-filling
    src, dst = [slice(None), slice(None)], [slice(None), slice(None)]
    for i in range(n):
        lo = max(befores[i], 0)
        hi = min(full[i], befores[i] + out_sizes[i])
        src.append(slice(lo, max(hi, lo)))
        dst.append(slice(lo - befores[i], lo - befores[i] + max(hi - lo, 0)))
    out = np.zeros((N, C, *out_sizes), dtype=cols.dtype)
    out[tuple(dst)] = acc[tuple(src)]
    return out


def compute_dtype(dt: np.dtype) -> np.dtype:
    """The dtype to compute float data in: float32 for float16/bfloat16/float8, else itself."""
    dt = np.dtype(dt)
    if dt in (np.float32, np.float64) or dt.kind in "iub":
        return dt
    return np.dtype(np.float32)


def reduce_taps(view: np.ndarray, n: int, ufunc) -> np.ndarray:
    """Reduce a window view `(N, C, *outs, *kernel)` over its kernel axes with binary `ufunc`
    (np.maximum, np.add), one kernel tap at a time: each step is a fast elementwise pass over a
    strided slice, where a single reduction over the small trailing axes is many times slower."""
    kernel = view.shape[view.ndim - n:]
    taps = np.ndindex(*kernel)
    lead = (slice(None),) * (view.ndim - n)
    out = view[lead + next(taps)].copy()
    for tap in taps:
        ufunc(out, view[lead + tap], out=out)
    return out
