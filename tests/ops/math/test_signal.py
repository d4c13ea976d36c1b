"""Signal ops: DFT (opsets 17 and 20), STFT, window functions, MelWeightMatrix."""

import numpy as np
import pytest

from opencann.ops.infer import InferError


def _complex(x):
    return np.stack([x.real, x.imag], axis=-1)


def test_dft17_infer_symbolic_batch(infer_op, tt):
    out = infer_op("DFT", [tt("float32", "n", 10, 1)], {"axis": 1}, opset=17)
    assert out.shape == ("n", 10, 2)
    out = infer_op("DFT", [tt("float32", "n", 10, 1)], {"axis": 1, "onesided": 1}, opset=17)
    assert out.shape == ("n", 6, 2)
    out = infer_op("DFT", [tt("float32", "n", 6, 2)], {"axis": 1, "onesided": 1, "inverse": 1}, opset=17)
    assert out.shape == ("n", 10, 1)


def test_dft20_infer_axis_and_length(infer_op, tt):
    x = tt("float32", "b", 7, 5, 2)
    assert infer_op("DFT", [x], opset=20).shape == ("b", 7, 5, 2)  # default axis -2
    axis = (tt("int64"), np.array(1))
    n = (tt("int64"), np.array(12))
    assert infer_op("DFT", [x, n, axis], opset=20).shape == ("b", 12, 5, 2)
    # a data-dependent axis leaves only the rank known
    assert infer_op("DFT", [x, None, tt("int64")], opset=20).shape == (None,) * 4
    with pytest.raises(InferError, match="out of range"):
        infer_op("DFT", [x, None, (tt("int64"), np.array(3))], opset=20)


def test_dft_complex_with_padding_and_truncation(run_op):
    rng = np.random.default_rng(0)
    c = rng.standard_normal((3, 8)) + 1j * rng.standard_normal((3, 8))
    x = _complex(c).astype(np.float64)
    for n in (5, 8, 11):
        got = run_op("DFT", [x, np.array(n, np.int64), np.array(-2, np.int64)], opset=20)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, _complex(np.fft.fft(c, n=n, axis=1)), atol=1e-12)


def test_dft_inverse_and_irfft_round_trip(run_op):
    sig = np.random.default_rng(1).standard_normal((2, 9, 3)).astype(np.float32)
    spec = run_op("DFT", [sig[..., None]], {"axis": 1, "onesided": 1}, opset=17)
    assert spec.shape == (2, 5, 3, 2)
    back = run_op("DFT", [spec, np.array(9, np.int64)], {"axis": 1, "onesided": 1, "inverse": 1}, opset=17)
    assert back.shape == (2, 9, 3, 1) and back.dtype == np.float32
    np.testing.assert_allclose(back[..., 0], sig, atol=1e-5)
    full = run_op("DFT", [sig[..., None]], {"axis": 2}, opset=17)
    inv = run_op("DFT", [full], {"axis": 2, "inverse": 1}, opset=17)
    np.testing.assert_allclose(inv[..., 0], sig, atol=1e-5)
    np.testing.assert_allclose(inv[..., 1], 0, atol=1e-5)


def test_dft_float16_computes_in_float32(run_op):
    x = np.arange(6, dtype=np.float16).reshape(1, 6, 1)
    got = run_op("DFT", [x], {"axis": 1}, opset=17)
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float32), _complex(np.fft.fft(np.arange(6.0))).reshape(1, 6, 2),
                               atol=1e-2)


def test_stft_complex_two_sided_with_window(run_op):
    rng = np.random.default_rng(2)
    c = rng.standard_normal((2, 20)) + 1j * rng.standard_normal((2, 20))
    window = np.hanning(6).astype(np.float32)
    got = run_op("STFT", [_complex(c).astype(np.float32), np.array(4, np.int64), window], {"onesided": 0}, opset=17)
    frames = (20 - 6) // 4 + 1
    want = np.stack([np.fft.fft(c[:, i * 4:i * 4 + 6] * window, axis=-1) for i in range(frames)], axis=1)
    assert got.shape == (2, frames, 6, 2)
    np.testing.assert_allclose(got, _complex(want), atol=1e-4)


def test_stft_infer(infer_op, tt):
    out = infer_op("STFT", [tt("float32", "b", 128, 1), (tt("int64"), np.array(8)), None,
                            (tt("int64"), np.array(16))], opset=17)
    assert out.shape == ("b", 15, 9, 2)
    out = infer_op("STFT", [tt("float32", "b", "len", 1), tt("int64"), tt("float32", 16)], {"onesided": 0}, opset=17)
    assert out.shape == ("b", None, 16, 2)


@pytest.mark.parametrize("op, ref", [("HannWindow", np.hanning), ("BlackmanWindow", np.blackman)])
def test_symmetric_windows_match_numpy(run_op, op, ref):
    got = run_op(op, [np.array(9, np.int64)], {"periodic": 0, "output_datatype": 11}, opset=17)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref(9), atol=1e-12)


def test_periodic_hamming_and_infer(run_op, infer_op, tt):
    got = run_op("HammingWindow", [np.array(4, np.int32)], opset=17)
    assert got.dtype == np.float32
    a0 = 25 / 46
    np.testing.assert_allclose(got, [a0 - (1 - a0), a0, a0 + (1 - a0), a0], atol=1e-6)
    assert infer_op("HannWindow", [(tt("int32"), np.array(7))], opset=17).shape == (7,)
    assert infer_op("HannWindow", [tt("int32")], {"output_datatype": 10}, opset=17).dtype.name == "float16"


def test_mel_weight_matrix_triangles(run_op, infer_op, tt):
    got = run_op("MelWeightMatrix", [np.array(4, np.int64), np.array(64, np.int64), np.array(16000, np.int64),
                                     np.array(0.0, np.float32), np.array(8000.0, np.float32)], opset=17)
    assert got.shape == (33, 4) and got.dtype == np.float32
    # each filter is a triangle peaking at 1, and filters are ordered by frequency
    assert np.allclose(got.max(axis=0), 1.0)
    peaks = got.argmax(axis=0)
    assert list(peaks) == sorted(peaks)
    assert infer_op("MelWeightMatrix", [(tt("int64"), np.array(4)), (tt("int64"), np.array(64)), tt("int64"),
                                        tt("float32"), tt("float32")], opset=17).shape == (33, 4)
