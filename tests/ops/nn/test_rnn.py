"""Recurrent layers: inference with symbolic dims, and values against a per-sequence loop
implementation for what the ONNX suite leaves out (sequence_lens with reverse and bidirectional
passes, peepholes with clip, custom activations with alpha, layout 1)."""

import functools

import numpy as np

from opencann.testing import infer_op, run_op, tensor_type

rng = np.random.default_rng(2)


# these tests run at opset 22 unless they name an opset
run = functools.partial(run_op, opset=22)
infer_types = functools.partial(infer_op, opset=22)
t = tensor_type


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def naive_lstm_one_direction(x, w, r, b, p, h0, c0, clip):
    """x (T, I) for one batch entry, already cut to its length and reversed when needed."""
    H = r.shape[1]
    h, c = h0.copy(), c0.copy()
    cl = (lambda v: np.clip(v, -clip, clip)) if clip else (lambda v: v)
    ys = []
    for xt in x:
        z = w @ xt + r @ h + b[:4 * H] + b[4 * H:]
        zi, zo, zf, zc = np.split(z, 4)
        i = sigmoid(cl(zi + p[:H] * c))
        f = sigmoid(cl(zf + p[2 * H:] * c))
        c = f * c + i * np.tanh(cl(zc))
        o = sigmoid(cl(zo + p[H:2 * H] * c))
        h = o * np.tanh(c)
        ys.append(h)
    return np.array(ys).reshape(-1, H), h, c


def test_lstm_bidirectional_sequence_lens_peepholes_clip():
    T, B, I, H = 5, 3, 2, 4
    x = rng.standard_normal((T, B, I))
    w = rng.standard_normal((2, 4 * H, I))
    r = rng.standard_normal((2, 4 * H, H))
    b = rng.standard_normal((2, 8 * H))
    p = rng.standard_normal((2, 3 * H))
    h0 = rng.standard_normal((2, B, H))
    c0 = rng.standard_normal((2, B, H))
    lens = np.array([5, 2, 0], np.int32)
    y, yh, yc = run("LSTM", [x, w, r, b, lens, h0, c0, p],
                    {"direction": "bidirectional", "hidden_size": H, "clip": 1.5}, outputs=3)
    assert y.shape == (T, 2, B, H) and yh.shape == yc.shape == (2, B, H)
    for bi in range(B):
        L = lens[bi]
        for d in range(2):
            seq = x[:L, bi] if d == 0 else x[:L, bi][::-1]
            ys, hT, cT = naive_lstm_one_direction(seq, w[d], r[d], b[d], p[d], h0[d, bi], c0[d, bi], 1.5)
            if d == 1:
                ys = ys[::-1]
            np.testing.assert_allclose(y[:L, d, bi], ys, rtol=1e-10)
            np.testing.assert_array_equal(y[L:, d, bi], 0)
            np.testing.assert_allclose(yh[d, bi], hT, rtol=1e-10)
            np.testing.assert_allclose(yc[d, bi], cT, rtol=1e-10)


def test_gru_layout_1_equals_layout_0_transposed():
    T, B, I, H = 4, 2, 3, 5
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    w = rng.standard_normal((1, 3 * H, I)).astype(np.float32)
    r = rng.standard_normal((1, 3 * H, H)).astype(np.float32)
    b = rng.standard_normal((1, 6 * H)).astype(np.float32)
    h0 = rng.standard_normal((1, B, H)).astype(np.float32)
    attrs = {"hidden_size": H, "linear_before_reset": 1, "direction": "reverse"}
    y0, h_0 = run("GRU", [x, w, r, b, None, h0], attrs, outputs=2)
    y1, h_1 = run("GRU", [x.transpose(1, 0, 2), w, r, b, None, h0.transpose(1, 0, 2)], {**attrs, "layout": 1}, outputs=2)
    assert y1.dtype == np.float32 and y1.shape == (B, T, 1, H)
    np.testing.assert_allclose(y1, y0.transpose(2, 0, 1, 3), rtol=1e-6)
    np.testing.assert_allclose(h_1, h_0.transpose(1, 0, 2), rtol=1e-6)
    # reverse: the final state is the output at t = 0, computed by hand for the last step
    xw = x[0] @ w[0].T
    hn = y0[1, 0]
    z = sigmoid(xw[:, :H] + hn @ r[0, :H].T + b[0, :H] + b[0, 3 * H:4 * H])
    rr = sigmoid(xw[:, H:2 * H] + hn @ r[0, H:2 * H].T + b[0, H:2 * H] + b[0, 4 * H:5 * H])
    cand = np.tanh(xw[:, 2 * H:] + rr * (hn @ r[0, 2 * H:].T + b[0, 5 * H:]) + b[0, 2 * H:3 * H])
    np.testing.assert_allclose(h_0[0], (1 - z) * cand + z * hn, rtol=1e-5, atol=1e-6)


def test_rnn_custom_activation_alpha_and_float16():
    T, B, I, H = 3, 2, 2, 3
    x = rng.standard_normal((T, B, I)).astype(np.float16)
    w = rng.standard_normal((1, H, I)).astype(np.float16)
    r = rng.standard_normal((1, H, H)).astype(np.float16)
    y, yh = run("RNN", [x, w, r], {"activations": ["LeakyRelu"], "activation_alpha": [0.3]}, outputs=2)
    assert y.dtype == np.float16
    h = np.zeros((B, H), np.float32)
    for t_ in range(T):
        z = x[t_].astype(np.float32) @ w[0].T.astype(np.float32) + h @ r[0].T.astype(np.float32)
        h = np.where(z < 0, 0.3 * z, z)
        np.testing.assert_allclose(y[t_, 0].astype(np.float32), h, rtol=2e-2, atol=2e-2)
    np.testing.assert_allclose(yh[0].astype(np.float32), h, rtol=2e-2, atol=2e-2)


def test_rnn_infer_shapes_with_symbols():
    y, yh = infer_types("RNN", [t("float32", "seq", "batch", 8), t("float32", 2, 16, 8), t("float32", 2, 16, 16)],
                        {"direction": "bidirectional"})
    assert y.shape == ("seq", 2, "batch", 16) and yh.shape == (2, "batch", 16)
    y, yh, yc = infer_types("LSTM", [t("float32", "batch", "seq", 8), t("float32", 1, 40, 8), t("float32", 1, 40, 10)],
                            {"layout": 1})
    assert y.shape == ("batch", "seq", 1, 10) and yh.shape == yc.shape == ("batch", 1, 10)
    y, _ = infer_types("GRU", [t("float32", 5, 2, 3), t("float32", 1, 12, 3), t("float32", 1, 12, 4)], opset=1)
    assert y.shape == (5, 1, 2, 4)
