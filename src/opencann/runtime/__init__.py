"""The runtime, opencann's AscendCL: devices, memory pools, streams, events and device tensors.

It sits on the backend contract and knows nothing of operators, graphs or ONNX.

    >>> from opencann import runtime
    >>> dev = runtime.device("cpu")
    >>> t = runtime.Tensor.from_numpy(np.arange(4, dtype=np.float32), dev)   # doctest: +SKIP
    >>> s = dev.new_stream(); ev = runtime.Event(); ev.record(s); ev.synchronize()  # doctest: +SKIP
"""

from .device import Device, device, devices
from .pool import MemoryPool, PoolStats
from .stream import Event, Stream, StreamError
from .tensor import Tensor

__all__ = ["Device", "Event", "MemoryPool", "PoolStats", "Stream", "StreamError", "Tensor", "device", "devices"]
