"""Signal processing: DFT, STFT, the window functions and MelWeightMatrix.

Complex tensors travel as real tensors with a trailing dim: size 2 (real, imaginary) for complex
values, size 1 for real ones. References compute in the input's precision (single for float32 and
narrower, double for float64), as NumPy's FFT does, and cast back to the input's element type.
"""

import numpy as np

from ... import dtypes
from .. import infer
from ..infer import InferError
from ..registry import defop

# --- helpers -------------------------------------------------------------------------------------


def _scalar(v):
    """The Python int/float of a scalar input Value known at compile time, else None."""
    c = infer.const(v)
    if c is None:
        return None
    c = np.asarray(c)
    if c.size != 1:
        raise InferError(f"expected a scalar, got shape {list(c.shape)}")
    return c.reshape(()).item()


def _work_dtype(dt) -> np.dtype:
    """float64 stays double; narrower floats compute in single precision (NumPy's FFT keeps it)."""
    return np.dtype(np.float64) if np.dtype(dt) == np.float64 else np.dtype(np.float32)


def _to_complex(x: np.ndarray) -> np.ndarray:
    """[..., 1] real or [..., 2] (re, im) as a complex array of shape [...] (complex64, or
    complex128 for float64 input)."""
    real = _work_dtype(x.dtype)
    cplx = np.complex128 if real == np.float64 else np.complex64
    if x.shape[-1] == 1:
        return x[..., 0].astype(real).astype(cplx)
    if x.shape[-1] == 2:
        xf = x.astype(real)
        out = np.empty(xf.shape[:-1], cplx)
        out.real, out.imag = xf[..., 0], xf[..., 1]
        return out
    raise ValueError(f"the last dim must be 1 (real) or 2 (complex), got {x.shape[-1]}")


def _from_complex(c: np.ndarray, dtype) -> np.ndarray:
    return np.stack([c.real, c.imag], axis=-1).astype(dtype)


def _output_dtype(code: int):
    try:
        return dtypes.from_onnx(int(code))
    except ValueError as e:
        raise InferError(str(e)) from None


# --- DFT -----------------------------------------------------------------------------------------


def _dft_axis(axis: int, rank: int | None) -> int:
    if rank is None:
        return axis
    if not (-rank <= axis <= -2 or 0 <= axis <= rank - 2):
        raise InferError(f"DFT axis {axis} is out of range for an input of rank {rank} "
                         f"(accepted: [-{rank}, -2] or [0, {rank - 2}]; the last dim holds re/im)")
    return axis + rank if axis < 0 else axis


def _dft_infer(x, dft_length, axis: int, inverse: int, onesided: int):
    shape = x.shape
    if shape is None:
        return infer.tensor(x.dtype, None)
    if len(shape) < 2:
        raise InferError(f"DFT input needs rank >= 2 (signal dims plus re/im), got rank {len(shape)}")
    last = shape[-1]
    if infer.known_int(last) and last not in (1, 2):
        raise InferError(f"DFT input's last dim must be 1 (real) or 2 (complex), got {last}")
    ax = _dft_axis(axis, len(shape))
    n = _scalar(dft_length)
    dim = shape[ax]
    if n is None and dft_length is None:
        if onesided and inverse:
            n = 2 * (int(dim) - 1) if infer.known_int(dim) else None
        else:
            n = dim if infer.known_int(dim) else None
    out = list(shape)
    if onesided and not inverse:
        out[ax] = int(n) // 2 + 1 if n is not None else None
    else:
        out[ax] = int(n) if n is not None else (dim if dft_length is None and not onesided else None)
    out[-1] = 1 if (onesided and inverse) else 2
    return infer.tensor(x.dtype, tuple(out))


def _dft(x, dft_length, axis: int, inverse: int, onesided: int):
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"DFT input needs rank >= 2, got rank {x.ndim}")
    ax = _dft_axis(int(axis), x.ndim)
    c = _to_complex(x)
    dim = c.shape[ax]
    if dft_length is not None:
        n = int(np.asarray(dft_length).reshape(()))
    else:
        n = 2 * (dim - 1) if (onesided and inverse) else dim
    if n <= 0:
        raise ValueError(f"DFT length must be positive, got {n}")
    if inverse and onesided:
        return np.fft.irfft(c, n=n, axis=ax)[..., None].astype(x.dtype)
    y = np.fft.ifft(c, n=n, axis=ax) if inverse else np.fft.fft(c, n=n, axis=ax)
    if onesided:
        y = np.take(y, np.arange(n // 2 + 1), axis=ax)
    return _from_complex(y, x.dtype)


@defop("DFT", inputs=["input", "dft_length?"], outputs=["output"],
       attrs={"axis": 1, "inverse": 0, "onesided": 0}, since=17,
       infer=lambda x, n, **a: _dft_infer(x, n, a["axis"], a["inverse"], a["onesided"]))
def dft_17(x, dft_length, *, axis, inverse, onesided):
    """Discrete Fourier transform along `axis` (an attribute until opset 20)."""
    return _dft(x, dft_length, axis, inverse, onesided)


def _dft20_infer(x, n, axis, *, inverse, onesided):
    if axis is None:
        ax = -2
    else:
        ax = _scalar(axis)
        if ax is None:  # data-dependent axis: only the rank is known
            r = infer.rank_of(x)
            return infer.tensor(x.dtype, None if r is None else (None,) * r)
    return _dft_infer(x, n, int(ax), inverse, onesided)


@defop("DFT", inputs=["input", "dft_length?", "axis?"], outputs=["output"],
       attrs={"inverse": 0, "onesided": 0}, since=20, infer=_dft20_infer)
def dft_20(x, dft_length, axis, *, inverse, onesided):
    """Discrete Fourier transform along the `axis` input (default -2, the last signal axis)."""
    ax = -2 if axis is None else int(np.asarray(axis).reshape(()))
    return _dft(x, dft_length, ax, inverse, onesided)


# --- STFT ----------------------------------------------------------------------------------------


def _stft_infer(signal, frame_step, window, frame_length, *, onesided):
    shape = signal.shape
    if shape is not None and len(shape) != 3:
        raise InferError(f"STFT signal must have rank 3 [batch, length, 1 or 2], got rank {len(shape)}")
    if window is not None and window.shape is not None and len(window.shape) != 1:
        raise InferError(f"STFT window must be 1-D, got rank {len(window.shape)}")
    fl = _scalar(frame_length)
    if fl is None and frame_length is None:
        if window is not None:
            fl = window.shape[0] if window.shape is not None and infer.known_int(window.shape[0]) else None
        elif shape is not None and infer.known_int(shape[1]):
            fl = shape[1]
    step = _scalar(frame_step)
    batch = shape[0] if shape is not None else None
    length = shape[1] if shape is not None else None
    frames = None
    if fl is not None and step is not None and infer.known_int(length):
        frames = (int(length) - int(fl)) // int(step) + 1
    bins = None if fl is None else (int(fl) // 2 + 1 if onesided else int(fl))
    return infer.tensor(signal.dtype, (batch, frames, bins, 2))


@defop("STFT", inputs=["signal", "frame_step", "window?", "frame_length?"], outputs=["output"],
       attrs={"onesided": 1}, since=17, infer=_stft_infer)
def stft(signal, frame_step, window, frame_length, *, onesided):
    """Short-time Fourier transform: a DFT of each (windowed) frame of the signal."""
    signal = np.asarray(signal)
    if signal.ndim != 3:
        raise ValueError(f"STFT signal must have rank 3, got rank {signal.ndim}")
    c = _to_complex(signal)  # [batch, length]
    length = c.shape[1]
    step = int(np.asarray(frame_step).reshape(()))
    if frame_length is not None:
        fl = int(np.asarray(frame_length).reshape(()))
        if window is not None and np.asarray(window).shape[0] != fl:
            raise ValueError(f"window length {np.asarray(window).shape[0]} != frame_length {fl}")
    elif window is not None:
        fl = np.asarray(window).shape[0]
    else:
        fl = length
    if step <= 0 or fl <= 0 or fl > length:
        raise ValueError(f"STFT needs frame_step > 0 and 0 < frame_length <= signal length "
                         f"(got step {step}, frame_length {fl}, length {length})")
    frames = (length - fl) // step + 1
    idx = np.arange(frames)[:, None] * step + np.arange(fl)[None, :]
    seg = c[:, idx]  # [batch, frames, fl]
    if window is not None:
        seg = seg * np.asarray(window).astype(seg.real.dtype)
    y = np.fft.fft(seg, axis=-1)
    if onesided:
        y = y[..., : fl // 2 + 1]
    return _from_complex(y, signal.dtype)


# --- windows -------------------------------------------------------------------------------------


def _window_infer(size, *, periodic, output_datatype):
    n = _scalar(size)
    return infer.tensor(_output_dtype(output_datatype), (None if n is None else int(n),))


def _cosine_window(size, periodic: int, output_datatype: int, coeffs) -> np.ndarray:
    n = int(np.asarray(size).reshape(()))
    if n < 0:
        raise ValueError(f"window size must be >= 0, got {n}")
    denom = n if periodic else n - 1
    k = np.arange(n, dtype=np.float64)
    w = np.zeros(n, dtype=np.float64)
    for i, a in enumerate(coeffs):
        w += a * (np.cos(2 * np.pi * i * k / denom) if denom > 0 else 1.0)
    return w.astype(dtypes.from_onnx(int(output_datatype)).np)


_WINDOW_ATTRS = {"periodic": 1, "output_datatype": 1}


@defop("HannWindow", inputs=["size"], outputs=["output"], attrs=_WINDOW_ATTRS, since=17,
       infer=_window_infer)
def hann_window(size, *, periodic, output_datatype):
    """w[n] = 0.5 - 0.5 cos(2 pi n / N), N = size (periodic) or size - 1 (symmetric)."""
    return _cosine_window(size, periodic, output_datatype, (0.5, -0.5))


@defop("HammingWindow", inputs=["size"], outputs=["output"], attrs=_WINDOW_ATTRS, since=17,
       infer=_window_infer)
def hamming_window(size, *, periodic, output_datatype):
    """w[n] = 25/46 - 21/46 cos(2 pi n / N)."""
    return _cosine_window(size, periodic, output_datatype, (25 / 46, -21 / 46))


@defop("BlackmanWindow", inputs=["size"], outputs=["output"], attrs=_WINDOW_ATTRS, since=17,
       infer=_window_infer)
def blackman_window(size, *, periodic, output_datatype):
    """w[n] = 0.42 - 0.5 cos(2 pi n / N) + 0.08 cos(4 pi n / N)."""
    return _cosine_window(size, periodic, output_datatype, (0.42, -0.5, 0.08))


# --- MelWeightMatrix -----------------------------------------------------------------------------


def _mel_infer(num_mel_bins, dft_length, sample_rate, lower, upper, *, output_datatype):
    bins, n = _scalar(num_mel_bins), _scalar(dft_length)
    return infer.tensor(_output_dtype(output_datatype),
                        (None if n is None else int(n) // 2 + 1, None if bins is None else int(bins)))


@defop("MelWeightMatrix", inputs=["num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz",
                                  "upper_edge_hertz"], outputs=["output"],
       attrs={"output_datatype": 1}, since=17, infer=_mel_infer)
def mel_weight_matrix(num_mel_bins, dft_length, sample_rate, lower_edge_hertz, upper_edge_hertz, *,
                      output_datatype):
    """Triangular filters, evenly spaced on the mel scale, mapping [dft_length // 2 + 1]
    spectrogram bins to [num_mel_bins] mel bins."""
    bins = int(np.asarray(num_mel_bins).reshape(()))
    n = int(np.asarray(dft_length).reshape(()))
    rate = float(np.asarray(sample_rate).reshape(()))
    lo = float(np.asarray(lower_edge_hertz).reshape(()))
    hi = float(np.asarray(upper_edge_hertz).reshape(()))
    if bins <= 0 or n <= 0 or rate <= 0 or not 0 <= lo < hi:
        raise ValueError(f"MelWeightMatrix needs num_mel_bins, dft_length, sample_rate > 0 and "
                         f"0 <= lower_edge_hertz < upper_edge_hertz (got {bins}, {n}, {rate}, {lo}, {hi})")
    n_spec = n // 2 + 1
    lo_mel = 2595 * np.log10(1 + lo / 700)
    hi_mel = 2595 * np.log10(1 + hi / 700)
    step = (hi_mel - lo_mel) / (bins + 2)
    mel = np.arange(bins + 2) * step + lo_mel
    hz = 700 * (10 ** (mel / 2595) - 1)
    edges = np.floor((n + 1) * hz / rate).astype(np.int64)
    left, center, right = edges[:-2], edges[1:-1], edges[2:]
    j = np.arange(n_spec, dtype=np.float64)[:, None]
    up_w = np.maximum(center - left, 1)
    down_w = np.maximum(right - center, 1)
    rising = np.where((j >= left) & (j <= center), (j - left) / up_w, 0.0)
    falling = np.where((j >= center) & (j < right), (right - j) / down_w, 0.0)
    # the falling edge overwrites the centre bin when it exists (as the spec's loop does)
    out = np.where((j >= center) & (j < right), falling, rising)
    out = np.where((center == left) & (j == center) & ~((j >= center) & (j < right)), 1.0, out)
    return out.astype(dtypes.from_onnx(int(output_datatype)).np)
