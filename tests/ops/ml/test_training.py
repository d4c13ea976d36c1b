"""ai.onnx.preview.training optimizers over several tensors at once."""

import numpy as np

TRAIN = "ai.onnx.preview.training"


def test_adagrad_two_tensors(run_op, infer_op, tt):
    r, t = np.array(0.1, np.float32), np.array(2, np.int64)
    x1, x2 = np.array([1.0, 2.0], np.float32), np.array([[3.0]], np.float32)
    g1, g2 = np.array([0.5, -1.0], np.float32), np.array([[2.0]], np.float32)
    h1, h2 = np.array([1.0, 0.0], np.float32), np.array([[4.0]], np.float32)
    outs = run_op("Adagrad", [r, t, x1, x2, g1, g2, h1, h2], {"decay_factor": 0.5, "epsilon": 0.0},
                  outputs=4, domain=TRAIN)
    rate = 0.1 / (1 + 2 * 0.5)
    np.testing.assert_allclose(outs[0], x1 - rate * g1 / np.sqrt(h1 + g1 ** 2), rtol=1e-6)
    np.testing.assert_allclose(outs[1], x2 - rate * g2 / np.sqrt(h2 + g2 ** 2), rtol=1e-6)
    np.testing.assert_allclose(outs[3], h2 + g2 ** 2)
    types = infer_op("Adagrad", [tt("float32"), tt("int64"), tt("float32", "a"), tt("float64", "b"),
                                 tt("float32", "a"), tt("float64", "b"), tt("float32", "a"), tt("float64", "b")],
                     domain=TRAIN, opset=1)
    assert [(ty.dtype.name, ty.shape) for ty in types] == [("float32", ("a",)), ("float64", ("b",))] * 2


def test_momentum_nesterov_and_adam_bias_correction(run_op):
    r, t = np.array(0.1, np.float32), np.array(3, np.int64)
    x, g, v = np.array([1.0], np.float32), np.array([2.0], np.float32), np.array([0.5], np.float32)
    xn, vn = run_op("Momentum", [r, t, x, g, v], {"alpha": 0.9, "beta": 0.5, "mode": "nesterov",
                                                  "norm_coefficient": 0.0}, outputs=2, domain=TRAIN)
    v_want = 0.9 * 0.5 + 0.5 * 2.0
    np.testing.assert_allclose(vn, [v_want], rtol=1e-6)
    np.testing.assert_allclose(xn, [1.0 - 0.1 * (2.0 + 0.9 * v_want)], rtol=1e-6)
    h = np.array([0.25], np.float32)
    xa, va, ha = run_op("Adam", [r, t, x, g, v, h], {"alpha": 0.9, "beta": 0.99, "epsilon": 0.0},
                        outputs=3, domain=TRAIN)
    v_new, h_new = 0.9 * 0.5 + 0.1 * 2.0, 0.99 * 0.25 + 0.01 * 4.0
    rate = 0.1 * np.sqrt(1 - 0.99 ** 3) / (1 - 0.9 ** 3)
    np.testing.assert_allclose(xa, [1.0 - rate * v_new / np.sqrt(h_new)], rtol=1e-6)
    np.testing.assert_allclose(ha, [h_new], rtol=1e-6)
