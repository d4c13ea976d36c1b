"""NonMaxSuppression: greedy selection per batch and class."""

import numpy as np


def test_selection_with_thresholds_and_limit(run_op):
    boxes = np.array([[[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, 2, 1, 3], [1, 1, 0, 0]]], np.float32)
    scores = np.array([[[0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.95]]], np.float32)
    sel = run_op("NonMaxSuppression", [boxes, scores, np.array([3], np.int64), np.array([0.5], np.float32),
                                       np.array([0.25], np.float32)])
    assert sel.dtype == np.int64
    # class 0: box 1 overlaps box 0 (IoU 0.82); box 3 scores under the threshold
    # class 1: box 3 (flipped corners of box 0) first, then box 2; box 0 is below the threshold
    np.testing.assert_array_equal(sel, [[0, 0, 0], [0, 0, 2], [0, 1, 3], [0, 1, 2]])
    sel = run_op("NonMaxSuppression", [boxes, scores, np.array([1], np.int64)])
    np.testing.assert_array_equal(sel, [[0, 0, 0], [0, 1, 3]])


def test_defaults_select_nothing_and_center_format(run_op):
    boxes = np.array([[[0.5, 0.5, 1, 1], [0.6, 0.5, 1, 1]]], np.float32)
    scores = np.array([[[0.4, 0.6]]], np.float32)
    assert run_op("NonMaxSuppression", [boxes, scores]).shape == (0, 3)
    sel = run_op("NonMaxSuppression", [boxes, scores, np.array(5, np.int64), np.array(0.7, np.float32)],
                 {"center_point_box": 1})
    np.testing.assert_array_equal(sel, [[0, 0, 1]])  # IoU 0.9/1.1 > 0.7 suppresses box 0


def test_infer(infer_op, tt):
    out = infer_op("NonMaxSuppression", [tt("float32", "b", "n", 4), tt("float32", "b", 3, "n")])
    assert out.shape == (None, 3) and out.dtype.name == "int64"


def test_score_equal_to_threshold_is_dropped(run_op):
    boxes = np.array([[[0, 0, 1, 1], [0, 2, 1, 3]]], np.float32)
    scores = np.array([[[0.5, 0.6]]], np.float32)
    sel = run_op("NonMaxSuppression", [boxes, scores, np.array(2, np.int64), np.array(0.5, np.float32),
                                       np.array(0.5, np.float32)])
    np.testing.assert_array_equal(sel, [[0, 0, 1]])
