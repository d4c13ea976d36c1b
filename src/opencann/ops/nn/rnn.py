"""Recurrent layers: RNN, LSTM and GRU (forward, reverse and bidirectional; custom activations
with alpha/beta, clip, sequence_lens, initial states, peepholes, linear_before_reset, layout).

The input projection X W^T + Wb is one matmul over all time steps; only the recurrence itself
loops over time, vectorised over the batch. Batch entries shorter than the sequence keep their
state past their length and output zeros there (a reverse pass starts at each entry's own end).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import infer
from ..infer import InferError
from ..registry import defop
from ._window import compute_dtype

# name -> (function of (x, alpha, beta), default alpha, default beta); None: the parameter is unused
_ACTIVATIONS: dict[str, tuple[Callable, float | None, float | None]] = {
    "relu": (lambda x, a, b: np.maximum(x, 0), None, None),
    "tanh": (lambda x, a, b: np.tanh(x), None, None),
    "sigmoid": (lambda x, a, b: 0.5 * (1 + np.tanh(0.5 * x)), None, None),
    "affine": (lambda x, a, b: a * x + b, 1.0, 0.0),
    "leakyrelu": (lambda x, a, b: np.where(x < 0, a * x, x), 0.01, None),
    "thresholdedrelu": (lambda x, a, b: np.where(x > a, x, 0), 1.0, None),
    "scaledtanh": (lambda x, a, b: a * np.tanh(b * x), 1.0, 1.0),
    "hardsigmoid": (lambda x, a, b: np.clip(a * x + b, 0, 1), 0.2, 0.5),
    "elu": (lambda x, a, b: np.where(x < 0, a * np.expm1(np.minimum(x, 0)), x), 1.0, None),
    "softsign": (lambda x, a, b: x / (1 + np.abs(x)), None, None),
    "softplus": (lambda x, a, b: np.logaddexp(0, x), None, None),
}


def _activations(names, alphas, betas, per_direction: int, directions: int, defaults):
    """One list of `per_direction` functions per direction. alpha/beta values are consumed in
    order by the functions that take them."""
    names = list(names) if names else list(defaults)
    if len(names) == per_direction and directions == 2:
        names = names * 2
    elif len(names) == 2 * per_direction and directions == 1:
        names = names[:per_direction]  # RNN's default lists both directions' functions
    if len(names) != per_direction * directions:
        raise ValueError(f"activations {names} has {len(names)} entries, expected {per_direction} "
                         f"per direction x {directions} direction(s)")
    alphas, betas = list(alphas or []), list(betas or [])
    fns = []
    for name in names:
        key = name.lower()
        if key not in _ACTIVATIONS:
            raise ValueError(f"activation {name!r} is not one of {', '.join(_ACTIVATIONS)}")
        fn, da, db = _ACTIVATIONS[key]
        a = (alphas.pop(0) if alphas else da) if da is not None else None
        b = (betas.pop(0) if betas else db) if db is not None else None
        fns.append(lambda x, fn=fn, a=a, b=b: fn(x, a, b))
    return [fns[d * per_direction:(d + 1) * per_direction] for d in range(directions)]


def _directions(direction: str) -> list[bool]:
    """The `reverse` flag of each direction."""
    direction = "forward" if direction == "foward" else direction  # GRU-1's default spelling
    if direction == "forward":
        return [False]
    if direction == "reverse":
        return [True]
    if direction == "bidirectional":
        return [False, True]
    raise ValueError(f"direction {direction!r} is not one of forward, reverse, bidirectional")


def _recur(xw: np.ndarray, lens: np.ndarray | None, reverse: bool, state: tuple, step: Callable):
    """Run `step(xw_t, state) -> state` over time (state[0] is the hidden state); returns
    (Y (T, B, H), final state)."""
    T = xw.shape[0]
    ys = np.zeros((T, *state[0].shape), dtype=state[0].dtype)
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        new = step(xw[t], state)
        if lens is not None:
            live = (t < lens)[:, None]
            new = tuple(np.where(live, n, s) for n, s in zip(new, state))
            ys[t] = np.where(live, new[0], 0)
        else:
            ys[t] = new[0]
        state = new
    return ys, state


def _run_layer(x, w, r, b, seq_lens, initial, gates, layout, direction, hidden_size, make_step,
               extra=None):
    """Shared driver: normalises layout and dtypes, runs every direction and stacks the outputs.
    `initial` is a list of optional initial-state arrays (h, then c for LSTM); `make_step(d, W, R,
    Rb, extra_d)` returns the step function of direction d; returns (Y, *final states)."""
    ct = compute_dtype(x.dtype)
    if layout:
        x = np.swapaxes(x, 0, 1)
        initial = [None if s is None else np.swapaxes(s, 0, 1) for s in initial]
    T, B, _ = x.shape
    reverses = _directions(direction)
    D = len(reverses)
    H = int(hidden_size) if hidden_size else r.shape[-1]
    if w.shape[0] != D or w.shape[1] != gates * H or r.shape != (D, gates * H, H):
        raise ValueError(f"W {list(w.shape)} and R {list(r.shape)} do not fit {D} direction(s), "
                         f"{gates} gates and hidden_size {H}")
    xc, wc, rc = x.astype(ct, copy=False), w.astype(ct, copy=False), r.astype(ct, copy=False)
    bc = np.zeros((D, 2 * gates * H), dtype=ct) if b is None else b.astype(ct, copy=False)
    lens = None
    if seq_lens is not None:
        lens = np.asarray(seq_lens).astype(np.int64).reshape(-1)
        if lens.shape != (B,) or (lens > T).any() or (lens < 0).any():
            raise ValueError(f"sequence_lens {lens.tolist()} must hold {B} lengths in [0, {T}]")
        if (lens == T).all():
            lens = None
    ys, finals = [], []
    for d, reverse in enumerate(reverses):
        xw = xc @ wc[d].T + bc[d, :gates * H]  # (T, B, gates*H)
        state = tuple(np.zeros((B, H), dtype=ct) if s is None else s[d].astype(ct) for s in initial)
        step = make_step(d, rc[d].T.copy(), bc[d, gates * H:], None if extra is None else extra[d])
        y, final = _recur(xw, lens, reverse, state, step)
        ys.append(y)
        finals.append(final)
    Y = np.stack(ys, axis=1)  # (T, D, B, H)
    states = [np.stack([f[i] for f in finals], axis=0) for i in range(len(initial))]  # (D, B, H)
    if layout:
        Y = Y.transpose(2, 0, 1, 3)
        states = [np.swapaxes(s, 0, 1) for s in states]
    return tuple(a.astype(x.dtype, copy=False) for a in (Y, *states))


def _clipper(clip):
    if clip is None:
        return lambda v: v
    c = float(clip)
    return lambda v: np.clip(v, -c, c)


# --- type inference -------------------------------------------------------------------------------
def _rnn_infer(gates: int, n_states: int):
    def infer_fn(x, w, r, b=None, seq_lens=None, *initial, **attrs):
        if x.dtype is not None and x.dtype.kind != "float":
            raise InferError(f"X has dtype {x.dtype.name}, recurrent layers take float tensors")
        for v, what, rank in ((x, "X", 3), (w, "W", 3), (r, "R", 3)):
            if infer.rank_of(v) not in (None, rank):
                raise InferError(f"{what} has rank {infer.rank_of(v)}, expected {rank}")
        direction = attrs.get("direction", "forward")
        if direction not in ("forward", "reverse", "bidirectional", "foward"):
            raise InferError(f"direction {direction!r} is not one of forward, reverse, bidirectional")
        D = 2 if direction == "bidirectional" else 1
        H = attrs.get("hidden_size")
        if H is None and r.shape is not None:
            H = r.shape[2]
        if H is None and w.shape is not None and infer.known_int(w.shape[1]):
            H = w.shape[1] // gates
        layout = attrs.get("layout", 0)
        xs = x.shape if x.shape is not None else (None, None, None)
        T, B = (xs[1], xs[0]) if layout else (xs[0], xs[1])
        if layout:
            y, state = (B, T, D, H), (B, D, H)
        else:
            y, state = (T, D, B, H), (D, B, H)
        return (infer.tensor(x.dtype, y),) + (infer.tensor(x.dtype, state),) * n_states
    return infer_fn


_COMMON = {"activation_alpha": None, "activation_beta": None, "activations": None, "clip": None,
           "direction": "forward", "hidden_size": None}


def _versions(base: dict, v1_extra: dict) -> list[tuple[int, dict]]:
    return [(1, {**base, **v1_extra, "output_sequence": 0}), (7, dict(base)),
            (14, {**base, "layout": 0})]


# --- RNN ------------------------------------------------------------------------------------------
def _rnn(x, w, r, b=None, sequence_lens=None, initial_h=None, *, activation_alpha=None,
         activation_beta=None, activations=None, clip=None, direction="forward", hidden_size=None,
         layout=0, output_sequence=0):
    """Elman RNN: H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb)."""
    D = len(_directions(direction))
    acts = _activations(activations, activation_alpha, activation_beta, 1, D, ["Tanh"])
    clipped = _clipper(clip)

    def make_step(d, rt, rb, _):
        f = acts[d][0]
        return lambda xw, s: (f(clipped(xw + s[0] @ rt + rb)),)

    return _run_layer(x, w, r, b, sequence_lens, [initial_h], 1, layout, direction, hidden_size,
                      make_step)


for _since, _attrs in _versions({**_COMMON, "activations": ["Tanh", "Tanh"]}, {}):
    defop("RNN", inputs=["X", "W", "R", "B?", "sequence_lens?", "initial_h?"], outputs=["Y?", "Y_h?"],
          attrs=_attrs, since=_since, infer=_rnn_infer(1, 1))(_rnn)


# --- GRU ------------------------------------------------------------------------------------------
def _gru(x, w, r, b=None, sequence_lens=None, initial_h=None, *, activation_alpha=None,
         activation_beta=None, activations=None, clip=None, direction="forward", hidden_size=None,
         layout=0, linear_before_reset=0, output_sequence=0):
    """GRU with gates z (update), r (reset), h (candidate):
    H_t = (1 - z) * h + z * H_{t-1}; `linear_before_reset` applies r after the recurrent matmul."""
    D = len(_directions(direction))
    acts = _activations(activations, activation_alpha, activation_beta, 2, D, ["Sigmoid", "Tanh"])
    clipped = _clipper(clip)

    def make_step(d, rt, rb, _):
        f, g = acts[d]
        H = rt.shape[0]
        r_zr, r_h = rt[:, :2 * H], rt[:, 2 * H:]
        rb_zr, rb_h = rb[:2 * H], rb[2 * H:]

        def step(xw, s):
            h_prev = s[0]
            zr = f(clipped(xw[:, :2 * H] + h_prev @ r_zr + rb_zr))
            z, rg = zr[:, :H], zr[:, H:]
            if linear_before_reset:
                cand = xw[:, 2 * H:] + rg * (h_prev @ r_h + rb_h)
            else:
                cand = xw[:, 2 * H:] + (rg * h_prev) @ r_h + rb_h
            h = g(clipped(cand))
            return ((1 - z) * h + z * h_prev,)

        return step

    return _run_layer(x, w, r, b, sequence_lens, [initial_h], 3, layout, direction, hidden_size,
                      make_step)


_GRU_BASE = {**_COMMON, "linear_before_reset": 0}
defop("GRU", inputs=["X", "W", "R", "B?", "sequence_lens?", "initial_h?"], outputs=["Y?", "Y_h?"],
      attrs={**_COMMON, "direction": "foward", "output_sequence": 0}, since=1,
      infer=_rnn_infer(3, 1))(_gru)
for _since, _attrs in [(3, {**_GRU_BASE, "output_sequence": 0})] + _versions(_GRU_BASE, {})[1:]:
    defop("GRU", inputs=["X", "W", "R", "B?", "sequence_lens?", "initial_h?"], outputs=["Y?", "Y_h?"],
          attrs=_attrs, since=_since, infer=_rnn_infer(3, 1))(_gru)


# --- LSTM -----------------------------------------------------------------------------------------
def _lstm(x, w, r, b=None, sequence_lens=None, initial_h=None, initial_c=None, p=None, *,
          activation_alpha=None, activation_beta=None, activations=None, clip=None,
          direction="forward", hidden_size=None, input_forget=0, layout=0, output_sequence=0):
    """LSTM with gates i, o, f and cell c (ONNX order), optional peepholes P = [Pi, Po, Pf]:
    C_t = f * C_{t-1} + i * g(c); H_t = o * h(C_t). `input_forget` couples f = 1 - i."""
    D = len(_directions(direction))
    acts = _activations(activations, activation_alpha, activation_beta, 3, D,
                        ["Sigmoid", "Tanh", "Tanh"])
    clipped = _clipper(clip)
    ct = compute_dtype(x.dtype)
    peep = None if p is None else p.astype(ct, copy=False)

    def make_step(d, rt, rb, pd):
        f, g, h = acts[d]
        H = rt.shape[0]
        pi, po, pf = (None, None, None) if pd is None else (pd[:H], pd[H:2 * H], pd[2 * H:])

        def step(xw, s):
            h_prev, c_prev = s
            z = xw + h_prev @ rt + rb
            zi, zo, zf, zc = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
            if pi is not None:
                zi, zf = zi + pi * c_prev, zf + pf * c_prev
            i = f(clipped(zi))
            fg = 1 - i if input_forget else f(clipped(zf))
            c = fg * c_prev + i * g(clipped(zc))
            if po is not None:
                zo = zo + po * c
            o = f(clipped(zo))
            return o * h(c), c

        return step

    return _run_layer(x, w, r, b, sequence_lens, [initial_h, initial_c], 4, layout, direction,
                      hidden_size, make_step, extra=peep)


for _since, _attrs in _versions({**_COMMON, "input_forget": 0}, {}):
    defop("LSTM", inputs=["X", "W", "R", "B?", "sequence_lens?", "initial_h?", "initial_c?", "P?"],
          outputs=["Y?", "Y_h?", "Y_c?"], attrs=_attrs, since=_since, infer=_rnn_infer(4, 2))(_lstm)
