"""Convolutions: Conv, ConvTranspose, DeformConv, Col2Im and CausalConvWithState.

Conv is im2col: a strided window view of the padded input, gathered once into columns, then one
batched matmul over the groups. ConvTranspose is the adjoint (matmul into columns, then col2im).
float16/bfloat16 data is computed in float32 and cast back.
"""

from __future__ import annotations

import math

import numpy as np

from .. import infer
from ..infer import InferError
from ..registry import defop
from ._window import Window, col2im, compute_dtype, spatial_rank, windows

_CONV_ATTRS = {"auto_pad": "NOTSET", "dilations": None, "group": 1, "kernel_shape": None,
               "pads": None, "strides": None}


def _kernel_of(w, kernel_shape, n):
    """kernel_shape, else the spatial dims of weight value `w` (None entries where unknown)."""
    if kernel_shape:
        return list(kernel_shape)
    if w is not None and w.shape is not None and len(w.shape) == n + 2:
        return list(w.shape[2:])
    return [None] * n


def _spatial_outs(x, w, n, attrs, ceil_mode=0):
    kernel = _kernel_of(w, attrs.get("kernel_shape"), n)
    if any(not infer.known_int(k) for k in kernel):
        return [None] * n
    win = Window(n, kernel, attrs.get("strides"), attrs.get("dilations"), attrs.get("pads"),
                 attrs.get("auto_pad", "NOTSET"), ceil_mode, error=InferError)
    return win.resolve(x.shape[2:], InferError)[0]


def _check_channels(c, w_in, group, what="X"):
    if infer.known_int(c) and infer.known_int(w_in) and c != w_in * group:
        raise InferError(f"{what} has {c} channels, but W expects {w_in} per group x {group} "
                         f"group(s) = {w_in * group}")


def _check_float_inputs(*pairs):
    """InferError unless every present (name, value) is a float tensor of one dtype."""
    seen = [(name, v.dtype) for name, v in pairs if v is not None and v.dtype is not None]
    for name, dt in seen:
        if dt.kind != "float":
            raise InferError(f"{name} has dtype {dt.name}, the op takes float tensors")
    if len({dt.name for _, dt in seen}) > 1:
        raise InferError("inputs must share one dtype, got "
                         + ", ".join(f"{name}: {dt.name}" for name, dt in seen))


def _conv_operands(x, w, b):
    """Checks Conv and ConvTranspose inference share: (type to return at once when ranks are not
    known, else None; spatial rank; W's shape)."""
    _check_float_inputs(("X", x), ("W", w), ("B", b))
    n = spatial_rank(x)
    if n is None and infer.rank_of(w) is not None:
        n = infer.rank_of(w) - 2
    if n is None:
        return infer.tensor(x.dtype), None, None
    if x.shape is None:
        return infer.tensor(x.dtype, (None,) * (n + 2)), None, None
    wshape = w.shape if w.shape is not None else (None,) * (n + 2)
    if len(wshape) != n + 2:
        raise InferError(f"W has rank {len(wshape)}, X has rank {n + 2}: they must match")
    return None, n, wshape


def _infer_conv(x, w, b=None, **attrs):
    early, n, wshape = _conv_operands(x, w, b)
    if early is not None:
        return early
    group = int(attrs["group"])
    _check_channels(x.shape[1], wshape[1], group)
    if infer.known_int(wshape[0]) and wshape[0] % group:
        raise InferError(f"W has {wshape[0]} output channels, not divisible by group {group}")
    return infer.tensor(x.dtype, (x.shape[0], wshape[0], *_spatial_outs(x, w, n, attrs)))


def conv_nd(x: np.ndarray, w: np.ndarray, b, group: int, win: Window) -> np.ndarray:
    """N-d grouped convolution of `x` (N, C, *spatial) with `w` (M, C/group, *kernel)."""
    n = win.n
    N, C = x.shape[:2]
    M = w.shape[0]
    if C != w.shape[1] * group or M % group:
        raise ValueError(f"X has {C} channels and W has shape {list(w.shape)}: with group {group}, "
                         f"W must be (M, C/group, ...) with M divisible by group")
    outs, befores, _ = win.resolve(x.shape[2:])
    G, Cg, K, P = group, C // group, math.prod(win.kernel), math.prod(outs)
    wm = w.reshape(G, M // G, Cg * K)
    if all(k == 1 for k in win.kernel) and all(s == 1 for s in win.strides) and not any(befores) \
            and list(outs) == list(x.shape[2:]):
        # a 1x1 convolution: the input already is the columns
        y = np.matmul(wm, x.reshape(N, G, Cg, P))
    else:
        # gather the columns a few images at a time, so their copy stays within ~64 MB
        per_image = C * K * P * x.dtype.itemsize
        chunk = max(1, min(N, (64 << 20) // max(per_image, 1)))
        perm = (0, 1) + tuple(range(2 + n, 2 + 2 * n)) + tuple(range(2, 2 + n))
        y = np.empty((N, G, M // G, P), dtype=np.result_type(x.dtype, w.dtype))
        for lo in range(0, N, chunk):
            view = windows(x[lo:lo + chunk], win, outs, befores, 0)  # (n, C, *outs, *kernel)
            cols = view.transpose(perm).reshape(view.shape[0], G, Cg * K, P)
            np.matmul(wm, cols, out=y[lo:lo + chunk])
    y = y.reshape(N, M, *outs)
    if b is not None:
        y += b.reshape((1, M) + (1,) * n)
    return y


@defop("Conv", inputs=["X", "W", "B?"], outputs=["Y"], attrs=dict(_CONV_ATTRS), infer=_infer_conv)
def conv(x, w, b=None, *, auto_pad, dilations, group, kernel_shape, pads, strides):
    """N-d convolution (cross-correlation) with groups, strides, dilations and padding."""
    n = x.ndim - 2
    if n < 1 or w.ndim != x.ndim:
        raise ValueError(f"X has shape {list(x.shape)} and W {list(w.shape)}: both must be (.., .., D1, ...) of one rank >= 3")
    win = Window(n, w.shape[2:], strides, dilations, pads, auto_pad)
    if kernel_shape and list(kernel_shape) != list(w.shape[2:]):
        raise ValueError(f"kernel_shape {list(kernel_shape)} does not match W's spatial dims {list(w.shape[2:])}")
    ct = compute_dtype(x.dtype)
    y = conv_nd(x.astype(ct, copy=False), w.astype(ct, copy=False),
                None if b is None else b.astype(ct, copy=False), int(group), win)
    return y.astype(x.dtype, copy=False)


# --- ConvTranspose --------------------------------------------------------------------------------
def _transpose_geometry(in_sizes, win: Window, output_padding, output_shape, error=ValueError):
    """(output sizes, pads before) of a transposed convolution (None entries where unknown)."""
    n = win.n
    op = list(output_padding) if output_padding else [0] * n
    if len(op) != n:
        raise error(f"output_padding has {len(op)} values for {n} spatial axes")
    if output_shape:
        output_shape = list(output_shape)[-n:]
    outs, befores = [], []
    for i, size in enumerate(in_sizes):
        if not infer.known_int(size):
            outs.append(int(output_shape[i]) if output_shape else None)
            befores.append(None)
            continue
        full = win.strides[i] * (int(size) - 1) + op[i] + win.extent(i)
        if output_shape or win.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = int(output_shape[i]) if output_shape else int(size) * win.strides[i]
            total = full - out
            before = total // 2 if win.auto_pad == "SAME_UPPER" else total - total // 2
        elif win.auto_pad == "VALID":
            out, before = full, 0
        else:
            before = win.pads[i]
            out = full - win.pads[i] - win.pads[i + n]
        if out < 0:
            raise error(f"the output size on spatial axis {i} would be {out}")
        outs.append(out)
        befores.append(before)
    return outs, befores


def _infer_conv_transpose(x, w, b=None, **attrs):
    early, n, wshape = _conv_operands(x, w, b)
    if early is not None:
        return early
    group = int(attrs["group"])
    if infer.known_int(x.shape[1]) and infer.known_int(wshape[0]) and x.shape[1] != wshape[0]:
        raise InferError(f"X has {x.shape[1]} channels, but W (C, M/group, ...) has {wshape[0]}")
    m = wshape[1] * group if infer.known_int(wshape[1]) else None
    kernel = _kernel_of(w, attrs.get("kernel_shape"), n)
    if any(not infer.known_int(k) for k in kernel):
        outs = list(attrs["output_shape"])[-n:] if attrs.get("output_shape") else [None] * n
    else:
        win = Window(n, kernel, attrs.get("strides"), attrs.get("dilations"), attrs.get("pads"),
                     attrs.get("auto_pad", "NOTSET"), error=InferError)
        outs, _ = _transpose_geometry(x.shape[2:], win, attrs.get("output_padding"),
                                      attrs.get("output_shape"), InferError)
    return infer.tensor(x.dtype, (x.shape[0], m, *outs))


@defop("ConvTranspose", inputs=["X", "W", "B?"], outputs=["Y"],
       attrs={**_CONV_ATTRS, "output_padding": None, "output_shape": None}, infer=_infer_conv_transpose)
def conv_transpose(x, w, b=None, *, auto_pad, dilations, group, kernel_shape, pads, strides,
                   output_padding, output_shape):
    """Transposed convolution: the gradient of Conv with respect to its input."""
    n = x.ndim - 2
    if n < 1 or w.ndim != x.ndim:
        raise ValueError(f"X has shape {list(x.shape)} and W {list(w.shape)}: both must have one rank >= 3")
    N, C = x.shape[:2]
    G = int(group)
    if w.shape[0] != C or C % G:
        raise ValueError(f"X has {C} channels, W has shape {list(w.shape)}: W must be (C, M/group, ...) "
                         f"with C divisible by group {G}")
    win = Window(n, w.shape[2:], strides, dilations, pads, auto_pad)
    outs, befores = _transpose_geometry(x.shape[2:], win, output_padding, output_shape)
    ct = compute_dtype(x.dtype)
    xc, wc = x.astype(ct, copy=False), w.astype(ct, copy=False)
    Cg, Mg, K, P = C // G, w.shape[1], math.prod(win.kernel), math.prod(x.shape[2:])
    wt = wc.reshape(G, Cg, Mg * K).transpose(0, 2, 1)  # (G, Mg*K, Cg)
    cols = np.matmul(wt, xc.reshape(N, G, Cg, P))  # (N, G, Mg*K, P)
    cols = cols.reshape(N, G * Mg, *win.kernel, *x.shape[2:])
    y = col2im(cols, outs, win, list(x.shape[2:]), befores)
    if b is not None:
        y += b.astype(ct, copy=False).reshape((1, G * Mg) + (1,) * n)
    return y.astype(x.dtype, copy=False)


# --- DeformConv -----------------------------------------------------------------------------------
def _infer_deform_conv(x, w, offset, b=None, mask=None, **attrs):
    _check_float_inputs(("X", x), ("W", w), ("offset", offset), ("B", b), ("mask", mask))
    return _infer_conv(x, w, **{**attrs, "auto_pad": "NOTSET"})


def _bilinear_gather(x: np.ndarray, coords: list[np.ndarray]) -> np.ndarray:
    """Sample `x` (N, G, Cg, *spatial) at fractional `coords` (one (N, G, Q) array per spatial
    axis) with linear interpolation, zero outside; returns (N, G, Cg, Q)."""
    N, G, Cg = x.shape[:3]
    spatial = x.shape[3:]
    flat = x.reshape(N, G, Cg, -1)
    lo = [np.floor(c) for c in coords]
    frac = [c - f for c, f in zip(coords, lo)]
    lo = [f.astype(np.int64) for f in lo]
    out = np.zeros((N, G, Cg, coords[0].shape[-1]), dtype=x.dtype)
    strides = [math.prod(spatial[i + 1:]) for i in range(len(spatial))]
    for corner in np.ndindex(*(2,) * len(spatial)):
        weight = np.ones(coords[0].shape, dtype=x.dtype)
        valid = np.ones(coords[0].shape, dtype=bool)
        index = np.zeros(coords[0].shape, dtype=np.int64)
        for i, c in enumerate(corner):
            idx = lo[i] + c
            weight = weight * (frac[i] if c else 1 - frac[i])
            valid &= (idx >= 0) & (idx < spatial[i])
            index += np.clip(idx, 0, spatial[i] - 1) * strides[i]
        vals = np.take_along_axis(flat, index[:, :, None, :], axis=3)
        out += vals * (weight * valid)[:, :, None, :]
    return out


@defop("DeformConv", inputs=["X", "W", "offset", "B?", "mask?"], outputs=["Y"], since=19,
       attrs={"dilations": None, "group": 1, "kernel_shape": None, "offset_group": 1, "pads": None,
              "strides": None}, infer=_infer_deform_conv)
def deform_conv(x, w, offset, b=None, mask=None, *, dilations, group, kernel_shape, offset_group,
                pads, strides):
    """Deformable convolution: each kernel tap samples the input at its position plus a learned
    (bilinearly interpolated) offset, optionally scaled by a mask."""
    n = x.ndim - 2
    N, C = x.shape[:2]
    G, OG = int(group), int(offset_group)
    if C % OG or C != w.shape[1] * G:
        raise ValueError(f"X has {C} channels, W has shape {list(w.shape)}, group {G}, offset_group "
                         f"{OG}: C must equal W.shape[1] * group and be divisible by offset_group")
    win = Window(n, w.shape[2:], strides, dilations, pads)
    outs, befores, _ = win.resolve(x.shape[2:])
    K, P = math.prod(win.kernel), math.prod(outs)
    ct = compute_dtype(x.dtype)
    xc = x.astype(ct, copy=False)
    expected = (N, OG * K * n, *outs)
    if tuple(offset.shape) != expected:
        raise ValueError(f"offset has shape {list(offset.shape)}, expected {list(expected)}")
    off = offset.astype(ct, copy=False).reshape(N, OG, K, n, P)
    # base sampling position of each (kernel tap, output position), per spatial axis
    kpos = np.stack(np.meshgrid(*[np.arange(k) for k in win.kernel], indexing="ij"), 0).reshape(n, K)
    opos = np.stack(np.meshgrid(*[np.arange(o) for o in outs], indexing="ij"), 0).reshape(n, P)
    coords = []
    for i in range(n):
        base = (opos[i] * win.strides[i] - befores[i])[None, :] + (kpos[i] * win.dilations[i])[:, None]
        coords.append((base[None, None] + off[:, :, :, i]).reshape(N, OG, K * P))
    sampled = _bilinear_gather(xc.reshape(N, OG, C // OG, *x.shape[2:]), coords)  # (N, OG, C/OG, K*P)
    sampled = sampled.reshape(N, OG, C // OG, K, P)
    if mask is not None:
        sampled = sampled * mask.astype(ct, copy=False).reshape(N, OG, 1, K, P)
    cols = sampled.reshape(N, G, (C // G) * K, P)
    M = w.shape[0]
    y = np.matmul(w.astype(ct, copy=False).reshape(G, M // G, (C // G) * K), cols).reshape(N, M, *outs)
    if b is not None:
        y += b.astype(ct, copy=False).reshape((1, M) + (1,) * n)
    return y.astype(x.dtype, copy=False)


# --- Col2Im ---------------------------------------------------------------------------------------
def _infer_col2im(x, image_shape, block_shape, **attrs):
    img = infer.const(image_shape)
    blk = infer.const(block_shape)
    n = None
    if img is not None:
        n = int(np.asarray(img).size)
    elif image_shape.shape is not None and len(image_shape.shape) == 1 and infer.known_int(image_shape.shape[0]):
        n = int(image_shape.shape[0])
    if infer.rank_of(x) not in (None, 3):
        raise InferError(f"input has rank {infer.rank_of(x)}, Col2Im takes (N, C*prod(block_shape), L)")
    if n is None:
        return infer.tensor(x.dtype)
    batch = x.shape[0] if x.shape is not None else None
    c = None
    if blk is not None and x.shape is not None and infer.known_int(x.shape[1]):
        k = math.prod(int(v) for v in np.asarray(blk).reshape(-1))
        if x.shape[1] % k:
            raise InferError(f"input dim 1 ({x.shape[1]}) is not divisible by prod(block_shape) = {k}")
        c = x.shape[1] // k
    dims = [int(v) for v in np.asarray(img).reshape(-1)] if img is not None else [None] * n
    return infer.tensor(x.dtype, (batch, c, *dims))


@defop("Col2Im", inputs=["input", "image_shape", "block_shape"], outputs=["output"], since=18,
       attrs={"dilations": None, "pads": None, "strides": None}, infer=_infer_col2im)
def col2im_op(x, image_shape, block_shape, *, dilations, pads, strides):
    """Sum column blocks (N, C*prod(block), L) back into images (N, C, *image_shape)."""
    img = [int(v) for v in np.asarray(image_shape).reshape(-1)]
    blk = [int(v) for v in np.asarray(block_shape).reshape(-1)]
    n = len(img)
    if len(blk) != n:
        raise ValueError(f"image_shape {img} and block_shape {blk} must have the same length")
    win = Window(n, blk, strides, dilations, pads)
    positions, befores, _ = win.resolve(img)
    N, CK, L = x.shape
    K = math.prod(blk)
    if CK % K or L != math.prod(positions):
        raise ValueError(f"input has shape {list(x.shape)}: expected (N, C*{K}, {math.prod(positions)}) "
                         f"blocks for image {img}")
    ct = compute_dtype(x.dtype)
    cols = x.astype(ct, copy=False).reshape(N, CK // K, *blk, *positions)
    return col2im(cols, img, win, positions, befores).astype(x.dtype, copy=False)


# --- CausalConvWithState --------------------------------------------------------------------------
def _infer_causal_conv(x, w, bias=None, past=None, **attrs):
    _check_float_inputs(("input", x), ("weight", w), ("bias", bias), ("past_state", past))
    if infer.rank_of(x) not in (None, 3):
        raise InferError(f"input has rank {infer.rank_of(x)}, the op takes (batch, channels, length)")
    if infer.rank_of(w) not in (None, 3):
        raise InferError(f"weight has rank {infer.rank_of(w)}, the op takes (channels, 1, k)")
    if attrs["activation"] not in ("none", "silu", "swish"):
        raise InferError(f"activation {attrs['activation']!r} is not one of none, silu, swish")
    xs = x.shape if x.shape is not None else (None, None, None)
    k = w.shape[2] if w.shape is not None else None
    state = (xs[0], xs[1], k - 1 if infer.known_int(k) else None)
    return infer.tensor(x.dtype, xs), infer.tensor(x.dtype, state)


@defop("CausalConvWithState", inputs=["input", "weight", "bias?", "past_state?"],
       outputs=["output", "present_state"], since=27, attrs={"activation": "none"},
       infer=_infer_causal_conv)
def causal_conv_with_state(x, w, bias=None, past_state=None, *, activation):
    """Causal depthwise 1-d convolution that carries the last k-1 inputs across calls."""
    B, C, L = x.shape
    if w.shape[0] != C or w.shape[1] != 1:
        raise ValueError(f"weight has shape {list(w.shape)}, expected ({C}, 1, k)")
    k = w.shape[2]
    ct = compute_dtype(x.dtype)
    if past_state is None:
        past = np.zeros((B, C, k - 1), dtype=ct)
    else:
        if tuple(past_state.shape) != (B, C, k - 1):
            raise ValueError(f"past_state has shape {list(past_state.shape)}, expected {[B, C, k - 1]}")
        past = past_state.astype(ct)
    seq = np.concatenate([past, x.astype(ct)], axis=2)  # (B, C, k-1+L)
    view = np.lib.stride_tricks.sliding_window_view(seq, k, axis=2)  # (B, C, L, k)
    y = np.einsum("bclk,ck->bcl", view, w[:, 0, :].astype(ct))
    if bias is not None:
        y += bias.astype(ct)[None, :, None]
    if activation in ("silu", "swish"):
        with np.errstate(over="ignore"):
            y = y / (1 + np.exp(-y))
    elif activation != "none":
        raise ValueError(f"activation {activation!r} is not one of none, silu, swish")
    present = seq[:, :, seq.shape[2] - (k - 1):]
    return y.astype(x.dtype), present.astype(x.dtype)
