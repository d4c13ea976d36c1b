"""Algebraic simplification: ops that do nothing are bypassed, chains of reshapes and transposes
collapse. Each rule is a function `rule(node) -> Value | None` (the value that can stand in for the
node's single output) or a node rewrite returning True; rules read like the algebra they encode."""

from __future__ import annotations

import numpy as np

from ...ir import Graph, Node, TensorType
from ..rewrite import output_ids, replace_uses


def _same_type(a, b) -> bool:
    return isinstance(a.type, TensorType) and a.type == b.type and a.type.shape is not None


def _const_scalar(v):
    if v is None or v.const is None or v.const.size != 1:
        return None
    return v.const.reshape(()).item()


# --- x -> y replacements -------------------------------------------------------------------------
def identity(n: Node):
    """Identity(x) -> x"""
    return n.inputs[0] if n.op == "Identity" and n.inputs and n.inputs[0] is not None \
        and isinstance(n.inputs[0].type, TensorType) else None


def inference_dropout(n: Node):
    """Dropout(x) in inference (no training_mode, or training_mode = false) -> x"""
    if n.op != "Dropout" or len(n.outputs) > 1:
        return None
    training = n.inputs[2] if len(n.inputs) > 2 else None
    if training is not None and (training.const is None or bool(training.const)):
        return None
    return n.inputs[0]


def noop_cast(n: Node):
    """Cast(x, to=dtype(x)) -> x"""
    x = n.inputs[0] if n.inputs else None
    if n.op in ("Cast", "CastLike") and x is not None and _same_type(x, n.outputs[0]):
        return x
    return None


def noop_shape_op(n: Node):
    """Reshape/Expand/Squeeze/Unsqueeze/Flatten(x) to x's own static shape -> x"""
    if n.op in ("Reshape", "Expand", "Squeeze", "Unsqueeze", "Flatten") and n.inputs[0] is not None:
        x, y = n.inputs[0], n.outputs[0]
        if _same_type(x, y) and all(isinstance(d, int) for d in x.type.shape):
            return x
    return None


def neutral_element(n: Node):
    """x + 0 -> x, x - 0 -> x, x * 1 -> x, x / 1 -> x, x ** 1 -> x (when broadcasting keeps x's type)"""
    ops = {"Add": (0, True), "Sub": (0, False), "Mul": (1, True), "Div": (1, False), "Pow": (1, False)}
    if n.op not in ops or len(n.inputs) != 2:
        return None
    neutral, commutes = ops[n.op]
    a, b = n.inputs
    y = n.outputs[0]
    if _const_scalar(b) == neutral and _same_type(a, y):
        return a
    if commutes and _const_scalar(a) == neutral and _same_type(b, y):
        return b
    return None


def expand_to_ones(n: Node):
    """Expand(x, [1, ..., 1]) with no more dims than x -> x"""
    if n.op == "Expand" and n.inputs[1].const is not None and x_rank_at_least(n.inputs[0], n.inputs[1].const.size):
        if np.all(n.inputs[1].const == 1):
            return n.inputs[0]
    return None


def x_rank_at_least(x, k: int) -> bool:
    return x.shape is not None and len(x.shape) >= k


def identity_transpose(n: Node):
    """Transpose(x, perm=identity) -> x"""
    if n.op == "Transpose":
        perm = n.attrs.get("perm")
        if perm is not None and list(perm) == sorted(perm):
            return n.inputs[0]
    return None


REPLACE_RULES = [identity, inference_dropout, noop_cast, noop_shape_op, neutral_element, expand_to_ones,
                 identity_transpose]


# --- node rewrites ----------------------------------------------------------------------------------
def transpose_of_transpose(n: Node) -> bool:
    """Transpose(Transpose(x, p), q) -> Transpose(x, p[q])"""
    if n.op != "Transpose" or n.inputs[0] is None:
        return False
    inner = n.inputs[0].producer
    if inner is None or inner.op != "Transpose":
        return False
    p, q = inner.attrs.get("perm"), n.attrs.get("perm")
    if p is None or q is None:
        return False
    n.inputs[0] = inner.inputs[0]
    n.attrs["perm"] = [int(p[i]) for i in q]
    return True


def reshape_of_reshape(n: Node) -> bool:
    """Reshape(Reshape(x, s1), s2) -> Reshape(x, s2) when s2 is constant without 0 (which would copy
    a dim of the intermediate)"""
    if n.op != "Reshape" or n.inputs[0] is None:
        return False
    inner = n.inputs[0].producer
    if inner is None or inner.op != "Reshape" or n.inputs[1].const is None:
        return False
    if np.any(n.inputs[1].const == 0):
        return False
    n.inputs[0] = inner.inputs[0]
    return True


NODE_RULES = [transpose_of_transpose, reshape_of_reshape]


def simplify(graph: Graph) -> int:
    """Apply the rules above everywhere; returns the number of rewrites. Nodes made dead are left
    for DCE."""
    outs = output_ids(graph)
    mapping = {}
    changes = 0
    for n in graph.nodes:
        for rule in NODE_RULES:
            if rule(n):
                changes += 1
        if len(n.outputs) != 1 or id(n.outputs[0]) in outs:
            continue
        for rule in REPLACE_RULES:
            v = rule(n)
            if v is not None:
                mapping[id(n.outputs[0])] = v
                break
    replace_uses(graph, mapping)
    return changes + len(mapping)
