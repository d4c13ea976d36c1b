"""ai.onnx.preview.training optimizers: Adagrad, Adam, Momentum.

Each takes the learning rate R, the update count T, then groups of n tensors (the weights X, their
gradients G, and the optimizer state), and returns the updated weights and state, group by group.
"""

import numpy as np

from ..infer import InferError
from ..registry import REQUIRED, defop

TRAINING = "ai.onnx.preview.training"


def _groups(tensors: tuple, k: int, op: str) -> list[tuple]:
    if not tensors or len(tensors) % k:
        raise ValueError(f"{op} takes R, T and {k} groups of n tensors; got {len(tensors)} tensors after R, T")
    n = len(tensors) // k
    return [tuple(tensors[j * n + i] for j in range(k)) for i in range(n)]


def _optimizer_infer(k_in: int, k_out: int, op: str):
    def infer_fn(r, t, *tensors, **attrs):
        if not tensors or len(tensors) % k_in:
            raise InferError(f"{op} takes R, T and {k_in} groups of n tensors; got {len(tensors)} after R, T")
        n = len(tensors) // k_in
        # outputs: X_new group, then the updated state groups (the inputs after X and G)
        sources = list(range(n)) + list(range(2 * n, (k_out + 1) * n))
        return tuple(tensors[i].type for i in sources)

    return infer_fn


def _f(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _finish(outputs: list[list], dtypes_: list) -> tuple:
    flat = [o for group in outputs for o in group]
    return tuple(np.asarray(o).astype(d) for o, d in zip(flat, dtypes_))


@defop("Adagrad", inputs=["R", "T", "inputs*"], outputs=["outputs*"], domain=TRAINING, since=1,
       attrs={"decay_factor": 0.0, "epsilon": 1e-6, "norm_coefficient": 0.0},
       infer=_optimizer_infer(3, 2, "Adagrad"))
def adagrad(r, t, *tensors, decay_factor, epsilon, norm_coefficient):
    """Inputs X..., G..., H...; outputs X_new..., H_new... (H accumulates squared gradients)."""
    groups = _groups(tensors, 3, "Adagrad")
    rate = float(_f(r)) / (1 + float(_f(t)) * decay_factor)
    xs, hs = [], []
    for x, g, h in groups:
        g_reg = norm_coefficient * _f(x) + _f(g)
        h_new = _f(h) + g_reg * g_reg
        xs.append(_f(x) - rate * g_reg / (np.sqrt(h_new) + epsilon))
        hs.append(h_new)
    return _finish([xs, hs], [np.asarray(x).dtype for x, _, _ in groups] + [np.asarray(h).dtype for _, _, h in groups])


@defop("Adam", inputs=["R", "T", "inputs*"], outputs=["outputs*"], domain=TRAINING, since=1,
       attrs={"alpha": 0.9, "beta": 0.999, "epsilon": 1e-6, "norm_coefficient": 0.0,
              "norm_coefficient_post": 0.0},
       infer=_optimizer_infer(4, 3, "Adam"))
def adam(r, t, *tensors, alpha, beta, epsilon, norm_coefficient, norm_coefficient_post):
    """Inputs X..., G..., V..., H...; outputs X_new..., V_new..., H_new... (bias-corrected when T > 0)."""
    groups = _groups(tensors, 4, "Adam")
    step = float(_f(t))
    rate = float(_f(r))
    if step > 0:
        rate = rate * np.sqrt(1 - beta ** step) / (1 - alpha ** step)
    xs, vs, hs = [], [], []
    for x, g, v, h in groups:
        g_reg = norm_coefficient * _f(x) + _f(g)
        v_new = alpha * _f(v) + (1 - alpha) * g_reg
        h_new = beta * _f(h) + (1 - beta) * g_reg * g_reg
        x_new = _f(x) - rate * v_new / (np.sqrt(h_new) + epsilon)
        xs.append((1 - norm_coefficient_post) * x_new)
        vs.append(v_new)
        hs.append(h_new)
    dts = [np.asarray(a).dtype for grp in (0, 2, 3) for a in (gr[grp] for gr in groups)]
    return _finish([xs, vs, hs], dts)


@defop("Momentum", inputs=["R", "T", "inputs*"], outputs=["outputs*"], domain=TRAINING, since=1,
       attrs={"alpha": REQUIRED, "beta": REQUIRED, "mode": REQUIRED, "norm_coefficient": REQUIRED},
       infer=_optimizer_infer(3, 2, "Momentum"))
def momentum(r, t, *tensors, alpha, beta, mode, norm_coefficient):
    """Inputs X..., G..., V...; outputs X_new..., V_new...; mode 'standard' or 'nesterov'."""
    if mode not in ("standard", "nesterov"):
        raise ValueError(f"Momentum mode must be 'standard' or 'nesterov', got {mode!r}")
    groups = _groups(tensors, 3, "Momentum")
    rate = float(_f(r))
    beta_adj = beta if float(_f(t)) > 0 else 1.0
    xs, vs = [], []
    for x, g, v in groups:
        g_reg = norm_coefficient * _f(x) + _f(g)
        v_new = alpha * _f(v) + beta_adj * g_reg
        step = v_new if mode == "standard" else g_reg + alpha * v_new
        xs.append(_f(x) - rate * step)
        vs.append(v_new)
    return _finish([xs, vs], [np.asarray(x).dtype for x, _, _ in groups] + [np.asarray(v).dtype for _, _, v in groups])
