"""ImageDecoder: decodes an encoded image (JPEG, PNG, BMP, TIFF, WebP, PNM, JPEG 2000) into pixels.

Decoding needs Pillow, imported when an image is decoded so that the operator library itself does
not depend on it.
"""

import io

import numpy as np

from .. import infer
from ..infer import InferError
from ..registry import defop

_CHANNELS = {"RGB": 3, "BGR": 3, "Grayscale": 1}


def _image_decoder_infer(stream, *, pixel_format):
    if pixel_format not in _CHANNELS:
        raise InferError(f"ImageDecoder pixel_format must be RGB, BGR or Grayscale, got {pixel_format!r}")
    if stream.shape is not None and len(stream.shape) != 1:
        raise InferError(f"ImageDecoder takes a 1-D uint8 stream, got rank {len(stream.shape)}")
    return infer.tensor("uint8", (None, None, _CHANNELS[pixel_format]))


@defop("ImageDecoder", inputs=["encoded_stream"], outputs=["image"], attrs={"pixel_format": "RGB"},
       since=20, infer=_image_decoder_infer)
def image_decoder(encoded_stream, *, pixel_format):
    """Decode the bytes of an image file to [H, W, 3] (RGB or BGR) or [H, W, 1] (Grayscale) uint8."""
    try:
        import PIL.Image
    except ImportError:
        raise ValueError("ImageDecoder needs Pillow to decode images: pip install pillow") from None
    if pixel_format not in _CHANNELS:
        raise ValueError(f"ImageDecoder pixel_format must be RGB, BGR or Grayscale, got {pixel_format!r}")
    data = np.asarray(encoded_stream, dtype=np.uint8).tobytes()
    try:
        img = PIL.Image.open(io.BytesIO(data))
        img.load()
    except Exception as e:  # noqa: BLE001 - any decoder failure means the stream is not an image
        raise ValueError(f"ImageDecoder cannot decode the {len(data)}-byte stream: {e}") from e
    if pixel_format == "Grayscale":
        return np.asarray(img.convert("L"), dtype=np.uint8)[:, :, None]
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1]) if pixel_format == "BGR" else rgb
