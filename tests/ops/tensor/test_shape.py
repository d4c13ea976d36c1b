"""Shape ops: symbolic inference (Reshape, Flatten, Squeeze, Expand, Tile, ...) and values for
legacy opsets and corner cases the conformance suite misses."""

import numpy as np
import pytest

from opencann import dtypes
from opencann.ir import TensorType
from opencann.ops.infer import InferError

i64 = np.int64


def f32(*shape):
    return TensorType(dtypes.float32, shape)


def test_reshape_symbolic_copy_and_infer(infer_op):
    t = infer_op("Reshape", [f32("batch", "seq", 768), np.array([0, 0, 12, 64], i64)])
    assert t.shape == ("batch", "seq", 12, 64)
    t = infer_op("Reshape", [f32("batch", "seq", 12, 64), np.array([0, 0, -1], i64)])
    assert t.shape == ("batch", "seq", 768)
    # -1 recovers a symbol when the remaining ints cancel
    t = infer_op("Reshape", [f32("batch", 3, 4), np.array([12, -1], i64)])
    assert t.shape == (12, "batch")


def test_reshape_unknown_target_keeps_rank(infer_op):
    t = infer_op("Reshape", [f32("batch", 6), TensorType(dtypes.int64, (3,))])
    assert t.shape == (None, None, None)


def test_reshape_rejects_bad_target(infer_op):
    with pytest.raises(InferError, match="more than one -1"):
        infer_op("Reshape", [f32(2, 3), np.array([-1, -1], i64)])
    with pytest.raises(InferError, match="cannot reshape"):
        infer_op("Reshape", [f32(2, 3), np.array([4, 2], i64)])


def test_reshape_allowzero_and_opset1(run_op):
    x = np.zeros((0, 3), np.float32)
    assert run_op("Reshape", [x, np.array([3, 0], i64)], {"allowzero": 1}, opset=14).shape == (3, 0)
    y = run_op("Reshape", [np.arange(6, dtype=np.float32)], {"shape": [-1, 3]}, opset=1)
    np.testing.assert_array_equal(y, np.arange(6, dtype=np.float32).reshape(2, 3))


def test_flatten_symbolic(infer_op):
    assert infer_op("Flatten", [f32("batch", 512, 1, 1)]).shape == ("batch", 512)
    assert infer_op("Flatten", [f32("batch", 2, 3)], {"axis": 0}).shape == (1, None)
    assert infer_op("Flatten", [f32(2, 3, 4)], {"axis": -1}).shape == (6, 4)


def test_squeeze_unsqueeze_infer(infer_op):
    assert infer_op("Squeeze", [f32("b", 1, 4, 1), np.array([1, -1], i64)]).shape == ("b", 4)
    assert infer_op("Squeeze", [f32("b", 1, 4)]).shape is None  # "b" may be 1 at run time
    assert infer_op("Squeeze", [f32(1, 4)], {"axes": [0]}, opset=11).shape == (4,)
    assert infer_op("Unsqueeze", [f32("b", 4), np.array([0, -1], i64)]).shape == (1, "b", 4, 1)
    assert infer_op("Unsqueeze", [f32("b", 4)], {"axes": [1]}, opset=11).shape == ("b", 1, 4)
    with pytest.raises(InferError, match="cannot squeeze"):
        infer_op("Squeeze", [f32(2, 4), np.array([0], i64)])


def test_expand_and_tile_infer(infer_op):
    assert infer_op("Expand", [f32("b", 1, 4), np.array([1, 3, 1], i64)]).shape == ("b", 3, 4)
    assert infer_op("Expand", [f32(3, 1), np.array([2, 1, 6], i64)]).shape == (2, 3, 6)
    assert infer_op("Expand", [f32(3, 1), TensorType(dtypes.int64, (3,))]).shape == (None, 3, None)
    assert infer_op("Tile", [f32("b", 2), np.array([1, 3], i64)]).shape == ("b", 6)
    assert infer_op("Tile", [f32("b", 2), np.array([2, 3], i64)]).shape == (None, 6)


def test_tile_opset1(run_op):
    x = np.array([[1, 2]], np.float32)
    y = run_op("Tile", [x, np.array(3, i64), np.array(0, i64)], opset=1)
    np.testing.assert_array_equal(y, np.tile(x, (3, 1)))


def test_transpose_infer(infer_op):
    assert infer_op("Transpose", [f32("b", "s", 8)]).shape == (8, "s", "b")
    assert infer_op("Transpose", [f32("b", "s", 8)], {"perm": [0, 2, 1]}).shape == ("b", 8, "s")


def test_shape_start_end(run_op, infer_op):
    x = np.zeros((2, 3, 4, 5), np.float32)
    np.testing.assert_array_equal(run_op("Shape", [x], {"start": -3, "end": -1}), [3, 4])
    assert infer_op("Shape", [f32("b", 3, 4)], {"start": 1}).shape == (2,)
    assert infer_op("Shape", [f32("b", 3, 4)], {"start": 5}).shape == (0,)


def test_depth_to_space_roundtrip(run_op):
    x = np.arange(2 * 8 * 3 * 2, dtype=np.float32).reshape(2, 8, 3, 2)
    for mode in ("DCR", "CRD"):
        y = run_op("DepthToSpace", [x], {"blocksize": 2, "mode": mode})
        assert y.shape == (2, 2, 6, 4)
        back = run_op("SpaceToDepth", [y], {"blocksize": 2, "mode": mode}, opset=28)
        np.testing.assert_array_equal(back, x)


def test_identity_sequence_passes_through():
    from opencann import ops

    seq = [np.ones(2, np.float32), np.zeros(3, np.float32)]
    out = ops.lookup("Identity").reference(seq)
    assert out is not seq and all(a is b for a, b in zip(out, seq))


def test_untyped_inputs_give_what_is_known():
    """Inside a loop body an input may have no type yet: infer what does not need it, else None."""
    from opencann import ops
    from opencann.ir import Value

    untyped = Value("x", None)
    t = ops.lookup("Shape").infer(untyped, start=0, end=None)
    assert (t.dtype, t.shape) == (dtypes.int64, (None,))
    assert ops.lookup("Reshape").infer(untyped, Value("s", None), allowzero=0) is None
    t = ops.lookup("Where").infer(untyped, Value("a", f32(2)), Value("b", f32(2)))
    assert t.dtype == dtypes.float32
