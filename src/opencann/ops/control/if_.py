"""If: runs one of two subgraphs, chosen by a boolean scalar."""

from __future__ import annotations

import numpy as np

from ..context import run_graph
from ..infer import InferError
from ..registry import REQUIRED, defop
from ._types import join, output_types


def _infer_if(cond, *, then_branch, else_branch):
    then_t, else_t = output_types(then_branch), output_types(else_branch)
    if len(then_t) != len(else_t):
        raise InferError(f"then_branch has {len(then_t)} outputs but else_branch has {len(else_t)}")
    return tuple(join(a, b) for a, b in zip(then_t, else_t))


def _truth(cond) -> bool:
    c = np.asarray(cond)
    if c.size != 1:
        raise ValueError(f"cond must hold exactly one element, got shape {list(c.shape)}")
    return bool(c.reshape(-1)[0])


@defop("If", inputs=["cond"], outputs=["outputs*"],
       attrs={"then_branch": REQUIRED, "else_branch": REQUIRED}, infer=_infer_if)
def if_(cond, *, then_branch, else_branch):
    """Runs `then_branch` when `cond` is true, else `else_branch`; the node's outputs are the
    chosen branch's outputs."""
    return tuple(run_graph(then_branch if _truth(cond) else else_branch, []))
