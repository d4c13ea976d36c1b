"""ImageDecoder: lossless formats decode to the exact pixels, in each pixel format."""

import io

import numpy as np
import pytest

from opencann.errors import ExecutionError

PIL = pytest.importorskip("PIL.Image")


def _png(pixels) -> np.ndarray:
    buf = io.BytesIO()
    PIL.fromarray(pixels).save(buf, format="PNG")
    return np.frombuffer(buf.getvalue(), np.uint8)


def test_png_rgb_bgr_grayscale(run_op):
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    stream = _png(pixels)
    np.testing.assert_array_equal(run_op("ImageDecoder", [stream], opset=20), pixels)
    np.testing.assert_array_equal(run_op("ImageDecoder", [stream], {"pixel_format": "BGR"}, opset=20),
                                  pixels[:, :, ::-1])
    gray = run_op("ImageDecoder", [stream], {"pixel_format": "Grayscale"}, opset=20)
    assert gray.shape == (5, 7, 1) and gray.dtype == np.uint8
    np.testing.assert_array_equal(gray[:, :, 0], np.asarray(PIL.fromarray(pixels).convert("L")))


def test_bad_stream(run_op):
    with pytest.raises(ExecutionError, match="cannot decode"):
        run_op("ImageDecoder", [np.arange(20, dtype=np.uint8)], opset=20)


def test_infer(infer_op, tt):
    assert infer_op("ImageDecoder", [tt("uint8", "n")], {"pixel_format": "Grayscale"}).shape == (None, None, 1)
