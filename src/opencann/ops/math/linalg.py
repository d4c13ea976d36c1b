"""Linear algebra: MatMul (N-d broadcasting, 1-d operands), Gemm, Einsum, Det.

Float16/bfloat16 products accumulate in float32 (NumPy's float16 matmul is slow and rounds every
partial sum); float32/float64 go to NumPy's BLAS.
"""

from __future__ import annotations

import numpy as np

from .. import infer
from ..infer import InferError
from ..registry import REQUIRED
from ._common import FLOAT, NUMERIC, check_kind, check_same_dtype, dtype_of, is_float, versions, wide

_MATMUL_KINDS = ("float", "int", "uint")


def _dims_agree(a, b) -> bool:
    return not (infer.known_int(a) and infer.known_int(b) and a != b)


# --- MatMul --------------------------------------------------------------------------------------
def matmul_shape(a_shape, b_shape) -> tuple | None:
    """numpy.matmul's output shape over shapes with symbolic dims (None when a rank is unknown)."""
    if a_shape is None or b_shape is None:
        return None
    if len(a_shape) == 0 or len(b_shape) == 0:
        raise InferError("MatMul operands must have rank >= 1")
    a = (1,) + tuple(a_shape) if len(a_shape) == 1 else tuple(a_shape)
    b = tuple(b_shape) + (1,) if len(b_shape) == 1 else tuple(b_shape)
    if not _dims_agree(a[-1], b[-2]):
        raise InferError(f"inner dims differ: A[..., {a[-1]}] @ B[{b[-2]}, ...] "
                         f"(shapes {list(a_shape)} and {list(b_shape)})")
    batch = infer.broadcast_shapes(a[:-2], b[:-2])
    out = tuple(batch)
    if len(a_shape) > 1:
        out += (a[-2],)
    if len(b_shape) > 1:
        out += (b[-1],)
    return out


def _matmul_infer(a, b):
    check_kind(a, _MATMUL_KINDS, "A")
    check_same_dtype(a, b)
    shape = matmul_shape(a.shape, b.shape)
    dt = dtype_of(a, b)
    return None if dt is None else infer.tensor(dt, shape)


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # N-d @ 2-d as one 2-d product: NumPy runs the stacked form as many small products, ~15x slower
    if a.ndim > 2 and b.ndim == 2:
        out = np.ascontiguousarray(a).reshape(-1, a.shape[-1]) @ b
        return out.reshape(a.shape[:-1] + (b.shape[-1],))
    return np.matmul(a, b)


def matmul_ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """numpy.matmul semantics; an N-d A times a matrix runs as one 2-d product (one large BLAS
    call instead of one per batch entry)."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("MatMul operands must have rank >= 1")
    if is_float(a.dtype) and a.dtype not in (np.float32, np.float64):
        return _matmul(wide(a), wide(b)).astype(a.dtype)
    return np.asarray(_matmul(a, b))


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape[-1] != b.shape[0 if b.ndim == 1 else -2]:
        raise ValueError(f"inner dims differ: shapes {list(a.shape)} and {list(b.shape)}")
    if a.ndim > 2 and b.ndim <= 2:
        y = np.matmul(a.reshape(-1, a.shape[-1]), b)
        return y.reshape(a.shape[:-1] + b.shape[1:])
    return np.matmul(a, b)


@versions("MatMul", {1: {}}, inputs=["A", "B"], outputs=["Y"], infer=_matmul_infer)
def matmul(a, b):
    """MatMul: numpy.matmul semantics (N-d batch broadcasting; a 1-d A gains and loses a leading 1,
    a 1-d B a trailing 1)."""
    return matmul_ref(a, b)


# --- Gemm ----------------------------------------------------------------------------------------
def _gemm_infer(a, b, c=None, *, alpha=1.0, beta=1.0, transA=0, transB=0, **legacy):
    check_kind(a, _MATMUL_KINDS, "A")
    check_same_dtype(a, b, c)
    for v, what in ((a, "A"), (b, "B")):
        if v.shape is not None and len(v.shape) != 2:
            raise InferError(f"{what} must be 2-d, got {v.type!r}")
    m = k1 = k2 = n = None
    if a.shape is not None:
        m, k1 = (a.shape[1], a.shape[0]) if transA else a.shape
    if b.shape is not None:
        k2, n = (b.shape[1], b.shape[0]) if transB else b.shape
    if not _dims_agree(k1, k2):
        raise InferError(f"inner dims differ: A' is [{m},{k1}] and B' is [{k2},{n}]")
    out = (m, n)
    if c is not None and c.shape is not None:
        if len(c.shape) > 2:
            raise InferError(f"C must have rank <= 2, got {c.type!r}")
        # C broadcasts one way, to [M, N]
        for d, o in zip(reversed(c.shape), reversed(out)):
            if infer.known_int(d) and d != 1 and infer.known_int(o) and d != o:
                raise InferError(f"C {c.type!r} does not broadcast to [{m},{n}]")
    dt = dtype_of(a, b, c)
    return None if dt is None else infer.tensor(dt, out)


def _gemm(a, b, c, alpha, beta, trans_a, trans_b):
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"A and B must be 2-d, got shapes {list(a.shape)} and {list(b.shape)}")
    a = a.T if trans_a else a
    b = b.T if trans_b else b
    dt = a.dtype
    fl = is_float(dt)
    wa, wb = (wide(a), wide(b)) if fl else (a, b)
    y = wa @ wb
    if alpha != 1.0:
        y = y * y.dtype.type(alpha) if fl else y * alpha
    if c is not None:
        wc = wide(c) if fl else c
        y = y + (wc * wc.dtype.type(beta) if fl else wc * beta) if beta != 1.0 else y + wc
    with np.errstate(all="ignore"):
        if not fl and y.dtype.kind == "f":
            y = np.trunc(y)
        return np.asarray(y).astype(dt)


_GEMM_ATTRS = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}


@versions("Gemm", {11: dict(_GEMM_ATTRS)}, inputs=["A", "B", "C?"], outputs=["Y"], infer=_gemm_infer)
def gemm(a, b, c=None, *, alpha, beta, transA, transB):  # noqa: N803 - ONNX's attribute names
    """Gemm: alpha * A' @ B' + beta * C, where A' and B' are A and B transposed when transA/transB;
    C (optional from opset 11) broadcasts to [M, N]."""
    return _gemm(a, b, c, alpha, beta, transA, transB)


@versions("Gemm", {1: {**_GEMM_ATTRS, "broadcast": 0}, 7: dict(_GEMM_ATTRS)}, inputs=["A", "B", "C"],
          outputs=["Y"], infer=_gemm_infer)
def gemm_c_required(a, b, c, *, alpha, beta, transA, transB):  # noqa: N803
    """Gemm (opsets 1-10): C is required (`broadcast` before opset 7 only allowed what NumPy
    broadcasting does)."""
    return _gemm(a, b, c, alpha, beta, transA, transB)


# --- Einsum --------------------------------------------------------------------------------------
def parse_einsum(equation: str, n_inputs: int) -> tuple[list[list[str]], list[str]]:
    """Split an einsum equation into per-input label lists and the output labels ("..." is one
    label). In implicit mode the output is the ellipsis (if any) then the labels used once, in
    ASCII order."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = [_tokens(t, equation) for t in lhs.split(",")]
    if len(terms) != n_inputs:
        raise InferError(f"equation {equation!r} has {len(terms)} input terms but the op has {n_inputs} inputs")
    for t in terms:
        if t.count("...") > 1:
            raise InferError(f"equation {equation!r}: a term has more than one ellipsis")
    if arrow:
        out = _tokens(rhs, equation)
        if out.count("...") > 1:
            raise InferError(f"equation {equation!r}: the output has more than one ellipsis")
        known = {c for t in terms for c in t}
        for c in out:
            if c not in known:
                raise InferError(f"equation {equation!r}: output label {c!r} is in no input term")
        if len(set(out)) != len(out):
            raise InferError(f"equation {equation!r}: an output label repeats")
    else:
        counts: dict[str, int] = {}
        for t in terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = (["..."] if "..." in counts else []) + sorted(c for c, k in counts.items() if k == 1 and c != "...")
    return terms, out


def _tokens(term: str, equation: str) -> list[str]:
    out, i = [], 0
    while i < len(term):
        if term.startswith("...", i):
            out.append("...")
            i += 3
        elif term[i].isascii() and term[i].isalpha():
            out.append(term[i])
            i += 1
        else:
            raise InferError(f"equation {equation!r} has an invalid character {term[i]!r}")
    return out


def _einsum_infer(*inputs, equation):
    if not inputs:
        raise InferError("Einsum needs at least one input")
    check_kind(inputs[0], NUMERIC, "Inputs[0]")
    check_same_dtype(*inputs)
    terms, out = parse_einsum(equation, len(inputs))
    dt = dtype_of(*inputs)
    if dt is None:
        return None
    dims: dict[str, object] = {}
    ellipses, ell_unknown = [], False
    for t, v in zip(terms, inputs):
        if v.shape is None:
            ell_unknown |= "..." in t
            continue
        letters = len(t) - t.count("...")
        ell_rank = len(v.shape) - letters
        if ell_rank < 0 or ("..." not in t and ell_rank != 0):
            raise InferError(f"term {''.join(t)!r} does not fit input {v.type!r}")
        i = 0
        for c in t:
            if c == "...":
                ellipses.append(tuple(v.shape[i:i + ell_rank]))
                i += ell_rank
                continue
            d = v.shape[i]
            prev = dims.get(c)
            if not _dims_agree(prev, d):
                raise InferError(f"label {c!r} has dims {prev} and {d}")
            if c not in dims or not infer.known_int(prev):
                dims[c] = d
            i += 1
    shape = []
    for c in out:
        if c == "...":
            if ell_unknown:
                return infer.tensor(dt, None)
            shape.extend(infer.broadcast_shapes(*ellipses) if ellipses else ())
        else:
            shape.append(dims.get(c))
    return infer.tensor(dt, tuple(shape))


@versions("Einsum", {12: {"equation": REQUIRED}}, inputs=["Inputs*"], outputs=["Output"], infer=_einsum_infer)
def einsum(*inputs, equation):
    """Einsum: Einstein summation over the inputs (explicit `->` form, or implicit: labels used
    once, in ASCII order, after any ellipsis)."""
    if not inputs:
        raise ValueError("Einsum needs at least one input")
    terms, out = parse_einsum(equation, len(inputs))
    spec = ",".join("".join(t) for t in terms) + "->" + "".join(out)
    dt = inputs[0].dtype
    ops = [wide(x) for x in inputs] if is_float(dt) else list(inputs)
    y = np.einsum(spec, *ops, optimize=len(ops) > 1)
    return np.asarray(y).astype(dt)


# --- Det -----------------------------------------------------------------------------------------
def _det_infer(x):
    check_kind(x, FLOAT, "X")
    if x.dtype is None:
        return None
    if x.shape is None:
        return infer.tensor(x.dtype, None)
    if len(x.shape) < 2:
        raise InferError(f"X must have rank >= 2, got {x.type!r}")
    if not _dims_agree(x.shape[-1], x.shape[-2]):
        raise InferError(f"X must hold square matrices, got {x.type!r}")
    return infer.tensor(x.dtype, x.shape[:-2])


@versions("Det", {11: {}}, inputs=["X"], outputs=["Y"], infer=_det_infer)
def det(x):
    """Det: the determinant of each square matrix in the trailing two dims."""
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"X must hold square matrices in its last two dims, got shape {list(x.shape)}")
    return np.asarray(np.linalg.det(wide(x))).astype(x.dtype)
