"""Spatial transformers: AffineGrid builds a sampling grid, GridSample samples an image on it.

Grids hold normalized coordinates in [-1, 1], innermost spatial dim first (x, then y, then z), as
in torch.nn.functional.affine_grid / grid_sample.
"""

import itertools

import numpy as np

from .. import infer
from ..infer import InferError
from ..registry import defop

# --- AffineGrid ----------------------------------------------------------------------------------


def _base_coords(n: int, align_corners: int) -> np.ndarray:
    """Normalized centres of `n` pixels along one axis."""
    if align_corners:
        return np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(n)
    return (2.0 * np.arange(n) + 1.0) / n - 1.0


def _affine_grid_infer(theta, size, *, align_corners):
    ts = theta.shape
    if ts is not None and (len(ts) != 3 or (infer.known_int(ts[1]) and ts[1] not in (2, 3))):
        raise InferError(f"AffineGrid theta must be [N, 2, 3] or [N, 3, 4], got {list(ts)}")
    s = infer.const(size)
    if s is not None:
        s = [int(d) for d in np.asarray(s).reshape(-1)]
        if len(s) not in (4, 5):
            raise InferError(f"AffineGrid size must have 4 (N, C, H, W) or 5 (N, C, D, H, W) "
                             f"elements, got {s}")
        return infer.tensor(theta.dtype, (s[0], *s[2:], len(s) - 2))
    r = None
    if ts is not None and infer.known_int(ts[1]):
        r = int(ts[1])
    elif size is not None and size.shape is not None and infer.known_int(size.shape[0]):
        r = int(size.shape[0]) - 2
    n = ts[0] if ts is not None else None
    return infer.tensor(theta.dtype, None if r is None else (n, *(None,) * r, r))


@defop("AffineGrid", inputs=["theta", "size"], outputs=["grid"], attrs={"align_corners": 0},
       since=20, infer=_affine_grid_infer)
def affine_grid(theta, size, *, align_corners):
    """grid[n, ..., :] = theta[n] @ (x, y[, z], 1) over a regular grid of normalized positions."""
    size = [int(d) for d in np.asarray(size).reshape(-1)]
    if len(size) not in (4, 5):
        raise ValueError(f"AffineGrid size must have 4 or 5 elements, got {size}")
    r = len(size) - 2
    theta = np.asarray(theta)
    if theta.shape != (size[0], r, r + 1):
        raise ValueError(f"AffineGrid theta must be [{size[0]}, {r}, {r + 1}] for size {size}, "
                         f"got {list(theta.shape)}")
    spatial = size[2:]  # (D,) H, W
    axes = [_base_coords(n, align_corners) for n in spatial]
    mesh = np.meshgrid(*axes, indexing="ij")  # one array per spatial dim, outermost first
    # homogeneous positions, innermost dim first: (x, y[, z], 1)
    pos = np.stack([*reversed(mesh), np.ones(spatial)], axis=-1).reshape(-1, r + 1)
    work = np.float64 if theta.dtype == np.float64 else np.float32
    grid = np.einsum("pk,nik->npi", pos.astype(work), theta.astype(work))
    return grid.reshape(size[0], *spatial, r).astype(theta.dtype)


# --- GridSample ----------------------------------------------------------------------------------


def _grid_sample_infer(x, grid, **attrs):
    xs, gs = x.shape, grid.shape
    if xs is not None and len(xs) < 3:
        raise InferError(f"GridSample X must have rank >= 3 (N, C, spatial...), got rank {len(xs)}")
    if xs is not None and gs is not None:
        if len(gs) != len(xs):
            raise InferError(f"GridSample grid rank {len(gs)} must equal X rank {len(xs)}")
        if infer.known_int(gs[-1]) and gs[-1] != len(xs) - 2:
            raise InferError(f"GridSample grid's last dim must be {len(xs) - 2}, got {gs[-1]}")
    if gs is None:
        return infer.tensor(x.dtype, None if xs is None else (xs[0], xs[1], *(None,) * (len(xs) - 2)))
    n = gs[0] if xs is None or not infer.known_int(xs[0]) else xs[0]
    c = xs[1] if xs is not None else None
    return infer.tensor(x.dtype, (n, c, *gs[1:-1]))


def _reflect(c: np.ndarray, twice_low: float, twice_high: float) -> np.ndarray:
    """Reflect coordinates into [twice_low / 2, twice_high / 2] until they land inside."""
    if twice_low == twice_high:
        return np.zeros_like(c)
    lo = twice_low / 2
    span = (twice_high - twice_low) / 2
    c = np.abs(c - lo)
    extra = np.fmod(c, span)
    flips = np.floor(c / span)
    return np.where(flips % 2 == 0, extra + lo, span - extra + lo)


def _pad_coords(c: np.ndarray, size: int, padding_mode: str, align_corners: int) -> np.ndarray:
    """Apply the padding mode to (continuous or integer) source coordinates along one axis."""
    if padding_mode == "border":
        return np.clip(c, 0, size - 1)
    if padding_mode == "reflection":
        c = _reflect(c, 0, 2 * (size - 1)) if align_corners else _reflect(c, -1, 2 * size - 1)
        return np.clip(c, 0, size - 1)
    return c


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """Cubic convolution weights (A = -0.75) for the 4 taps at offsets -1, 0, 1, 2."""
    a = -0.75
    w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    w1 = ((a + 2) * t - (a + 3)) * t * t + 1
    u = 1 - t
    w2 = ((a + 2) * u - (a + 3)) * u * u + 1
    w3 = ((a * (u + 1) - 5 * a) * (u + 1) + 8 * a) * (u + 1) - 4 * a
    return [w0, w1, w2, w3]


def _grid_sample(x, grid, mode: str, padding_mode: str, align_corners: int):
    x, grid = np.asarray(x), np.asarray(grid)
    r = x.ndim - 2
    if r < 1 or grid.ndim != x.ndim or grid.shape[-1] != r or grid.shape[0] != x.shape[0]:
        raise ValueError(f"GridSample needs X [N, C, d1..dr] and grid [N, o1..or, r]; got X "
                         f"{list(x.shape)} and grid {list(grid.shape)}")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"GridSample padding_mode {padding_mode!r} is not one of zeros, border, reflection")
    n_batch, out_sp, in_sp = x.shape[0], grid.shape[1:-1], x.shape[2:]
    xt = np.moveaxis(x, 1, -1)  # [N, d1..dr, C]
    work = np.float64
    g = grid.astype(work)
    # source coordinates per spatial dim (outermost first); the grid lists the innermost first
    coords = []
    for i, size in enumerate(in_sp):
        gi = g[..., r - 1 - i]
        coords.append(((gi + 1) / 2) * (size - 1) if align_corners else ((gi + 1) * size - 1) / 2)
    batch = np.arange(n_batch).reshape((n_batch,) + (1,) * len(out_sp))

    def fetch(idx: list[np.ndarray]) -> np.ndarray:
        """Values at integer positions (zeros outside the image): [N, o1..or, C]."""
        inside = np.ones(idx[0].shape, bool)
        clipped = []
        for i, size in enumerate(in_sp):
            inside &= (idx[i] >= 0) & (idx[i] <= size - 1)
            clipped.append(np.clip(idx[i], 0, size - 1).astype(np.intp))
        v = xt[(batch, *clipped)].astype(work)
        return v * inside[..., None]

    if mode == "nearest":
        idx = [np.rint(_pad_coords(c, s, padding_mode, align_corners)) for c, s in zip(coords, in_sp)]
        out = fetch(idx)
    elif mode == "linear":
        coords = [_pad_coords(c, s, padding_mode, align_corners) for c, s in zip(coords, in_sp)]
        lo = [np.floor(c) for c in coords]
        frac = [c - f for c, f in zip(coords, lo)]
        out = 0
        for corner in itertools.product((0, 1), repeat=r):
            w = 1.0
            for i, k in enumerate(corner):
                w = w * (frac[i] if k else 1 - frac[i])
            out = out + fetch([lo[i] + k for i, k in enumerate(corner)]) * w[..., None]
    elif mode == "cubic":
        lo = [np.floor(c) for c in coords]
        weights = [_cubic_weights(c - f) for c, f in zip(coords, lo)]
        out = 0
        for taps in itertools.product(range(4), repeat=r):
            w = 1.0
            idx = []
            for i, k in enumerate(taps):
                w = w * weights[i][k]
                idx.append(_pad_coords(lo[i] - 1 + k, in_sp[i], padding_mode, align_corners))
            out = out + fetch(idx) * w[..., None]
    else:
        raise ValueError(f"GridSample mode {mode!r} is not supported")
    out = np.asarray(out) + np.zeros((n_batch, *out_sp, x.shape[1]))  # shape even for empty taps
    return np.moveaxis(out, -1, 1).astype(x.dtype)


def _grid_sample_16_infer(x, grid, **attrs):
    if x.shape is not None and len(x.shape) != 4:
        raise InferError(f"GridSample (opset 16) takes 4-D X (N, C, H, W), got rank {len(x.shape)}; "
                         "N-D inputs need opset 20")
    return _grid_sample_infer(x, grid, **attrs)


_GS_ATTRS_16 = {"mode": "bilinear", "padding_mode": "zeros", "align_corners": 0}
_GS_ATTRS_20 = {"mode": "linear", "padding_mode": "zeros", "align_corners": 0}


@defop("GridSample", inputs=["X", "grid"], outputs=["Y"], attrs=_GS_ATTRS_16, since=16,
       infer=_grid_sample_16_infer)
def grid_sample_16(x, grid, *, mode, padding_mode, align_corners):
    """Sample 4-D X at the grid's positions; modes bilinear, nearest, bicubic."""
    names = {"bilinear": "linear", "nearest": "nearest", "bicubic": "cubic"}
    if mode not in names:
        raise ValueError(f"GridSample (opset 16) mode must be bilinear, nearest or bicubic, got {mode!r}")
    if np.ndim(x) != 4:
        raise ValueError(f"GridSample (opset 16) takes 4-D X, got rank {np.ndim(x)}")
    return _grid_sample(x, grid, names[mode], padding_mode, align_corners)


@defop("GridSample", inputs=["X", "grid"], outputs=["Y"], attrs=_GS_ATTRS_20, since=20,
       infer=_grid_sample_infer)
def grid_sample_20(x, grid, *, mode, padding_mode, align_corners):
    """Sample N-D X at the grid's positions; modes linear (N-linear), nearest, cubic (N-cubic)."""
    if mode not in ("linear", "nearest", "cubic"):
        raise ValueError(f"GridSample mode must be linear, nearest or cubic, got {mode!r}")
    return _grid_sample(x, grid, mode, padding_mode, align_corners)
