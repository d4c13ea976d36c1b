"""Device tensors: a dtype, a shape and a buffer from a device's pool, with explicit copies."""

from __future__ import annotations

import numpy as np

from .. import dtypes
from .device import Device, device as get_device


class Tensor:
    """A tensor in device memory. Create with `Tensor.empty` or `Tensor.from_numpy`; read back with
    `numpy()`. Copies are explicit: host arrays never alias device memory through this API."""

    def __init__(self, dev: Device, dtype: dtypes.DType, shape: tuple, buffer):
        self.device = dev
        self.dtype = dtype
        self.shape = tuple(int(s) for s in shape)
        self.buffer = buffer

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    @staticmethod
    def empty(shape, dtype=dtypes.float32, device: Device | str = "cpu") -> "Tensor":
        dev = get_device(device) if isinstance(device, str) else device
        dt = dtype if isinstance(dtype, dtypes.DType) else dtypes.from_numpy(dtype)
        n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        return Tensor(dev, dt, tuple(shape), dev.pool.allocate(n))

    @staticmethod
    def from_numpy(array: np.ndarray, device: Device | str = "cpu", stream=None) -> "Tensor":
        """Copy `array` to `device` (on `stream` when given: the copy is then asynchronous, and
        `array` must stay unchanged until the stream has run it)."""
        a = np.ascontiguousarray(array)
        t = Tensor.empty(a.shape, dtypes.from_numpy(a.dtype), device)
        if stream is None:
            t.device.backend.copy_in(t.buffer, a)
        else:
            stream.enqueue(t.device.backend.copy_in, t.buffer, a, what="copy to device")
        return t

    def numpy(self, stream=None) -> np.ndarray:
        """A host copy (after the work enqueued on `stream`, when given)."""
        out = np.empty(self.shape, self.dtype.np)
        if stream is not None:
            stream.synchronize()
        self.device.backend.copy_out(self.buffer, out)
        return out

    def host_view(self) -> np.ndarray:
        """A NumPy view of the memory, for host-memory devices (ref, cpu): what kernels receive."""
        return self.buffer.handle[: self.nbytes].view(self.dtype.np).reshape(self.shape)

    def free(self) -> None:
        if self.buffer is not None:
            self.device.pool.free(self.buffer)
            self.buffer = None

    def __repr__(self) -> str:
        return f"Tensor({self.dtype.name}{list(self.shape)} on {self.device.name})"
