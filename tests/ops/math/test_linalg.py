"""MatMul, Gemm, Einsum, Det: shape inference with symbolic dims and values."""

import ml_dtypes
import numpy as np
import pytest

from opencann.ir import TensorType
from opencann.ops.infer import InferError

rng = np.random.default_rng(0)


@pytest.mark.parametrize("a,b,want", [
    (("b", "s", 64), (64, 32), ("b", "s", 32)),
    ((8,), (8,), ()),
    ((8,), (3, 8, 5), (3, 5)),
    ((2, 1, 4, 8), (8,), (2, 1, 4)),
    ((2, 1, 4, 8), (3, 8, 5), (2, 3, 4, 5)),
    (("n", 4), ("k", 6), ("n", 6)),
])
def test_matmul_shapes(infer_op, tt, a, b, want):
    assert infer_op("MatMul", [tt("float32", *a), tt("float32", *b)]) == tt("float32", *want)


def test_matmul_shape_errors(infer_op, tt):
    with pytest.raises(InferError, match="inner dims"):
        infer_op("MatMul", [tt("float32", 2, 3), tt("float32", 4, 5)])
    with pytest.raises(InferError, match="rank >= 1"):
        infer_op("MatMul", [tt("float32"), tt("float32", 4, 5)])


def test_matmul_values(run_op):
    a = rng.standard_normal((2, 1, 4, 8)).astype(np.float32)
    b = rng.standard_normal((3, 8, 5)).astype(np.float32)
    np.testing.assert_allclose(run_op("MatMul", [a, b]), a @ b, rtol=1e-5, atol=1e-6)
    ai = np.arange(6, dtype=np.int64).reshape(2, 3)
    np.testing.assert_array_equal(run_op("MatMul", [ai, ai.T.copy()]), ai @ ai.T)
    h = rng.standard_normal((16, 16)).astype(np.float16)
    got = run_op("MatMul", [h, h])
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, (h.astype(np.float32) @ h.astype(np.float32)).astype(np.float16))


def test_gemm(run_op, infer_op, tt):
    a = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal((5, 4)).astype(np.float32)
    c = rng.standard_normal((5,)).astype(np.float32)
    got = run_op("Gemm", [a, b, c], {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0})
    np.testing.assert_allclose(got, 0.5 * a.T @ b.T + 2.0 * c, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run_op("Gemm", [a.T.copy(), b.T.copy()]), a.T @ b.T, rtol=1e-5, atol=1e-6)
    ai = np.array([[1, 2], [3, 4]], np.int32)
    got = run_op("Gemm", [ai, ai, np.array([[10]], np.int32)], opset=9)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, ai @ ai + 10)
    assert infer_op("Gemm", [tt("float32", "k", "m"), tt("float32", "k", 7)], {"transA": 1}) == tt("float32", "m", 7)
    with pytest.raises(InferError, match="broadcast"):
        infer_op("Gemm", [tt("float32", 2, 3), tt("float32", 3, 4), tt("float32", 3)])


def test_gemm_c_required_before_opset_11(run_op):
    a = np.eye(2, dtype=np.float32)
    with pytest.raises(Exception, match="inputs"):
        run_op("Gemm", [a, a], opset=9)


def test_einsum_implicit_output_is_ascii_sorted(run_op):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    y = rng.standard_normal((3, 4)).astype(np.float32)
    # implicit output "Ba": upper case sorts before lower case
    got = run_op("Einsum", [x, y], {"equation": "aj,jB"})
    np.testing.assert_allclose(got, (x @ y).T, rtol=1e-5, atol=1e-6)


def test_einsum_ellipsis_and_spaces(run_op, infer_op, tt):
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    y = rng.standard_normal((3, 4)).astype(np.float32)
    got = run_op("Einsum", [x, y], {"equation": "...ij, jk -> ...ik"})
    np.testing.assert_allclose(got, x @ y, rtol=1e-5, atol=1e-6)
    assert infer_op("Einsum", [tt("float32", "b", 2, 3), tt("float32", 3, 4)],
                    {"equation": "...ij,jk"}) == tt("float32", "b", 2, 4)
    assert infer_op("Einsum", [tt("float32", 3, 3)], {"equation": "ii->i"}) == tt("float32", 3)
    assert infer_op("Einsum", [tt("float32", 3, 3)], {"equation": "ii"}) == tt("float32")
    with pytest.raises(InferError, match="dims"):
        infer_op("Einsum", [tt("float32", 2, 3), tt("float32", 4, 5)], {"equation": "ij,jk->ik"})
    with pytest.raises(InferError, match="2 input terms but the op has 1"):
        infer_op("Einsum", [tt("float32", 2, 3)], {"equation": "ij,jk->ik"})


def test_einsum_bfloat16_and_int(run_op):
    x = np.arange(12).reshape(3, 4).astype(ml_dtypes.bfloat16)
    got = run_op("Einsum", [x], {"equation": "ij->"})
    assert got.dtype == ml_dtypes.bfloat16 and float(got) == 66.0
    xi = np.arange(6, dtype=np.int32).reshape(2, 3)
    got = run_op("Einsum", [xi, xi], {"equation": "ij,ij->i"})
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, [5, 50])


def test_det(run_op, infer_op, tt):
    x = np.array([[[2, 0], [0, 3]], [[1, 2], [3, 4]]], np.float32)
    np.testing.assert_allclose(run_op("Det", [x]), [6, -2], rtol=1e-6)
    assert infer_op("Det", [tt("float32", "b", 3, 3)]) == tt("float32", "b")
    with pytest.raises(InferError, match="square"):
        infer_op("Det", [tt("float32", 3, 4)])
    assert infer_op("Det", [TensorType(tt("float32").dtype, None)]).shape is None


@pytest.mark.parametrize("sa", [(3,), (2, 3), (4, 2, 3), (1, 4, 2, 3), (5, 1, 2, 3)])
@pytest.mark.parametrize("sb", [(3,), (3, 4), (1, 3, 4), (4, 3, 4), (5, 4, 3, 4)])
def test_matmul_ref_matches_numpy_broadcasting(sa, sb):
    from opencann.ops.math.linalg import matmul_ref
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    try:
        want = np.matmul(a, b)
    except ValueError:
        with pytest.raises(ValueError):
            matmul_ref(a, b)
        return
    got = matmul_ref(a, b)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
