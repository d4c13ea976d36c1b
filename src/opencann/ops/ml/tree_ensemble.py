"""ai.onnx.ml TreeEnsemble (opset 5): evaluates a forest of decision trees on a batch of rows.

All rows walk a tree together: each step gathers every row's current node and branches at once.
"""

import math

import numpy as np

from .. import infer
from ..infer import InferError
from ..registry import REQUIRED, defop

ML = "ai.onnx.ml"

_LEQ, _LT, _GTE, _GT, _EQ, _NEQ, _MEMBER = range(7)


def _ints(a) -> np.ndarray:
    return np.asarray(a if a is not None else [], dtype=np.int64).reshape(-1)


def _te_infer(x, *, n_targets, leaf_targetids, **attrs):
    if x.shape is not None and len(x.shape) != 2:
        raise InferError(f"TreeEnsemble takes X of shape [N, F], got rank {len(x.shape)}")
    n = int(n_targets) if n_targets is not None else int(_ints(leaf_targetids).max(initial=-1)) + 1
    return infer.tensor(x.dtype, (x.shape[0] if x.shape is not None else None, n))


def _membership_sets(modes: np.ndarray, values, dtype) -> dict[int, np.ndarray]:
    """The value set of each BRANCH_MEMBER node: membership_values split at NaNs, in node order."""
    members = np.flatnonzero(modes == _MEMBER)
    if not members.size:
        return {}
    if values is None:
        raise ValueError("TreeEnsemble has BRANCH_MEMBER nodes but no membership_values")
    vals = np.asarray(values, dtype=np.float64).reshape(-1)
    sets, cur = [], []
    for v in vals:
        if math.isnan(v):
            sets.append(cur)
            cur = []
        else:
            cur.append(v)
    if cur or len(sets) < members.size:
        sets.append(cur)
    if len(sets) < members.size:
        raise ValueError(f"TreeEnsemble has {members.size} BRANCH_MEMBER nodes but "
                         f"{len(sets)} sets in membership_values")
    return {int(node): np.asarray(s, dtype=dtype) for node, s in zip(members, sets)}


def _post_transform(scores: np.ndarray, kind: int) -> np.ndarray:
    if kind == 0:
        return scores
    if kind == 1:  # SOFTMAX
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if kind == 2:  # LOGISTIC
        return 1.0 / (1.0 + np.exp(-scores))
    if kind == 3:  # SOFTMAX_ZERO: zeros stay zero, the rest share a softmax
        nz = scores != 0
        m = np.where(nz, scores, -np.inf).max(axis=1, keepdims=True)
        e = np.where(nz, np.exp(scores - np.where(np.isfinite(m), m, 0)), 0.0)
        s = e.sum(axis=1, keepdims=True)
        return np.where(s > 0, e / np.where(s > 0, s, 1), 0.0)
    if kind == 4:  # PROBIT: sqrt(2) * erfinv(2p - 1), NaN outside 0 < p < 1
        erf = np.frompyfunc(math.erf, 1, 1)
        y = 2 * scores - 1
        with np.errstate(invalid="ignore", divide="ignore"):
            # Winitzki's approximation of erfinv, refined by Newton steps on erf(z) = y
            a = 0.147
            ln = np.log((1 - y) * (1 + y))
            t = 2 / (np.pi * a) + ln / 2
            z = np.sign(y) * np.sqrt(np.sqrt(t * t - ln / a) - t)
            for _ in range(3):
                z = z - (erf(z).astype(np.float64) - y) / (2 / np.sqrt(np.pi) * np.exp(-z * z))
            z = np.where(np.abs(y) == 1, y * np.inf, z)
        return np.sqrt(2) * z
    raise ValueError(f"TreeEnsemble post_transform must be 0..4, got {kind}")


@defop("TreeEnsemble", inputs=["X"], outputs=["Y"], domain=ML, since=5,
       attrs={"aggregate_function": 1, "leaf_targetids": REQUIRED, "leaf_weights": REQUIRED,
              "membership_values": None, "n_targets": None, "nodes_falseleafs": REQUIRED,
              "nodes_falsenodeids": REQUIRED, "nodes_featureids": REQUIRED, "nodes_hitrates": None,
              "nodes_missing_value_tracks_true": None, "nodes_modes": REQUIRED, "nodes_splits": REQUIRED,
              "nodes_trueleafs": REQUIRED, "nodes_truenodeids": REQUIRED, "post_transform": 0,
              "tree_roots": REQUIRED},
       infer=_te_infer)
def tree_ensemble(x, *, aggregate_function, leaf_targetids, leaf_weights, membership_values, n_targets,
                  nodes_falseleafs, nodes_falsenodeids, nodes_featureids, nodes_hitrates,
                  nodes_missing_value_tracks_true, nodes_modes, nodes_splits, nodes_trueleafs,
                  nodes_truenodeids, post_transform, tree_roots):
    """Y[n, t] aggregates (SUM, AVERAGE, MIN, MAX) the weights of the leaves for target t that row
    n reaches in each tree, then applies post_transform."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"TreeEnsemble takes X of shape [N, F], got {list(x.shape)}")
    cmp_dtype = np.float32 if x.dtype == np.float16 else x.dtype
    xv = x.astype(cmp_dtype)
    modes = _ints(nodes_modes)
    feats = _ints(nodes_featureids)
    splits = np.asarray(nodes_splits).reshape(-1).astype(cmp_dtype)
    true_ids, false_ids = _ints(nodes_truenodeids), _ints(nodes_falsenodeids)
    true_leaf, false_leaf = _ints(nodes_trueleafs).astype(bool), _ints(nodes_falseleafs).astype(bool)
    n_nodes = len(modes)
    missing_true = (_ints(nodes_missing_value_tracks_true).astype(bool)
                    if nodes_missing_value_tracks_true is not None else np.zeros(n_nodes, bool))
    if not all(len(a) == n_nodes for a in (feats, splits, true_ids, false_ids, true_leaf, false_leaf, missing_true)):
        raise ValueError("TreeEnsemble nodes_* attributes must all have the same length")
    targets = _ints(leaf_targetids)
    weights = np.asarray(leaf_weights, dtype=np.float64).reshape(-1)
    n_out = int(n_targets) if n_targets is not None else int(targets.max(initial=-1)) + 1
    sets = _membership_sets(modes, membership_values, cmp_dtype)

    n_rows = x.shape[0]
    rows = np.arange(n_rows)
    roots = _ints(tree_roots)
    total = np.zeros((n_rows, n_out))
    best = np.full((n_rows, n_out), np.nan)  # for MIN / MAX
    hit = np.zeros((n_rows, n_out), bool)
    for root in roots:
        node = np.full(n_rows, root)
        leaf = np.full(n_rows, -1)
        active = np.ones(n_rows, bool)
        for _ in range(n_nodes + 1):
            if not active.any():
                break
            r, nd = rows[active], node[active]
            v = xv[r, feats[nd]]
            s = splits[nd]
            m = modes[nd]
            cond = np.select([m == _LEQ, m == _LT, m == _GTE, m == _GT, m == _EQ, m == _NEQ],
                             [v <= s, v < s, v >= s, v > s, v == s, v != s], False)
            for k in np.unique(nd[m == _MEMBER]):
                sel = (m == _MEMBER) & (nd == k)
                cond[sel] = np.isin(v[sel], sets[int(k)])
            cond = np.where(np.isnan(v) & missing_true[nd], True, cond) if v.dtype.kind == "f" else cond
            nxt = np.where(cond, true_ids[nd], false_ids[nd])
            is_leaf = np.where(cond, true_leaf[nd], false_leaf[nd])
            done_rows = r[is_leaf]
            leaf[done_rows] = nxt[is_leaf]
            node[r[~is_leaf]] = nxt[~is_leaf]
            active[done_rows] = False
        else:
            raise ValueError(f"TreeEnsemble tree at root {root} has a cycle")
        t, w = targets[leaf], weights[leaf]
        np.add.at(total, (rows, t), w)
        if aggregate_function in (2, 3):
            cur = best[rows, t]
            pick = np.fmin if aggregate_function == 2 else np.fmax
            best[rows, t] = pick(cur, w)
            hit[rows, t] = True
    if aggregate_function == 0:
        scores = total / max(len(roots), 1)
    elif aggregate_function == 1:
        scores = total
    elif aggregate_function in (2, 3):
        scores = np.where(hit, best, 0.0)
    else:
        raise ValueError(f"TreeEnsemble aggregate_function must be 0..3, got {aggregate_function}")
    return _post_transform(scores, int(post_transform)).astype(x.dtype)
