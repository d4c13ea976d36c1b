"""Loop: runs a body subgraph while a trip count and/or a condition allow, carrying values from
one iteration to the next and stacking per-iteration (scan) outputs."""

from __future__ import annotations

import numpy as np

from ...ir.types import TensorType
from ..context import run_graph
from ..infer import InferError, tensor
from ..registry import REQUIRED, defop
from ... import dtypes
from ._types import body_inputs, join, loosen, output_types


def _infer_loop(m, cond, *v_initial, body):
    outs = output_types(body)
    n_carried = len(v_initial)
    if len(outs) < 1 + n_carried:
        raise InferError(f"the body has {len(outs)} outputs; it needs the condition and "
                         f"{n_carried} loop-carried values")
    if len(body.inputs) != 2 + n_carried:
        raise InferError(f"the body takes {len(body.inputs)} inputs; it needs the iteration number, "
                         f"the condition and {n_carried} loop-carried values")
    carried = []
    for v, t in zip(v_initial, outs[1:1 + n_carried]):
        # the carried value's shape may change between iterations (and stays the initial one
        # when the loop runs zero times)
        carried.append(join(v.type, t) if v is not None and v.type is not None else t)
    scans = []
    for t in outs[1 + n_carried:]:
        if t is None:
            scans.append(None)
        elif not isinstance(t, TensorType):
            raise InferError(f"a scan output of the body must be a tensor, got {t!r}")
        else:
            scans.append(tensor(t.dtype, None if t.shape is None else (None,) + t.shape))
    return tuple(carried + scans)


def _empty_scan(t) -> np.ndarray:
    shape = (0,) + tuple(d if isinstance(d, int) else 0 for d in (t.shape or ()))
    return np.zeros(shape, dtype=t.dtype.np)


@defop("Loop", inputs=["M?", "cond?", "v_initial*"], outputs=["v_final_and_scan_outputs*"],
       attrs={"body": REQUIRED}, infer=_infer_loop)
def loop(m, cond, *v_initial, body):
    """Runs `body(i, cond, *carried) -> (cond, *carried, *scan)` while `i < M` (when M is given)
    and `cond` holds (when given); returns the final carried values, then each scan output
    stacked along a new leading axis."""
    trip = None if m is None else int(np.asarray(m).reshape(-1)[0])
    keep_going = True if cond is None else bool(np.asarray(cond).reshape(-1)[0])
    carried = list(v_initial)
    n = len(carried)
    body_types = output_types(body)
    scans: list[list] = [[] for _ in body_types[1 + n:]]
    i = 0
    while (trip is None or i < trip) and keep_going:
        outs = run_graph(body, [np.array(i, dtype=np.int64), np.array(keep_going), *carried])
        keep_going = bool(np.asarray(outs[0]).reshape(-1)[0])
        carried = list(outs[1:1 + n])
        for acc, x in zip(scans, outs[1 + n:]):
            acc.append(np.asarray(x))
        i += 1
    stacked = []
    for acc, t in zip(scans, body_types[1 + n:]):
        if acc:
            stacked.append(np.stack(acc))
        elif isinstance(t, TensorType):
            stacked.append(_empty_scan(t))
        else:
            stacked.append(np.zeros((0,), np.float32))
    return tuple(carried + stacked)


@body_inputs("Loop", since=1)
def _loop_body_inputs(m, cond, *v_initial, body):
    # a carried value may change shape from one iteration to the next: only its rank is fixed
    return {"body": [tensor(dtypes.int64, ()), tensor(dtypes.bool_, ())]
            + [None if v is None else loosen(v.type) for v in v_initial]}
