"""The runtime: devices, pools with statistics, streams (in order, asynchronous), events, tensors."""

import threading
import time

import numpy as np
import pytest

from opencann import runtime


def test_tensor_round_trip_and_pool_reuse():
    dev = runtime.device("ref")
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = runtime.Tensor.from_numpy(a, dev)
    np.testing.assert_array_equal(t.numpy(), a)
    hits = dev.pool.stats.cache_hits
    t.free()
    t2 = runtime.Tensor.empty((3, 4), np.float32, dev)
    assert dev.pool.stats.cache_hits == hits + 1
    assert dev.pool.stats.peak_allocated_bytes >= t2.nbytes
    t2.free()
    assert dev.pool.empty_cache() > 0


def test_device_names():
    assert runtime.device("cpu") is runtime.device("cpu:0")
    assert "ref:0" in runtime.devices()


def test_stream_runs_in_order_and_asynchronously():
    s = runtime.device("ref").new_stream("t")
    gate = threading.Event()
    order = []
    s.enqueue(gate.wait)
    s.enqueue(order.append, 1)
    s.enqueue(order.append, 2)
    assert not s.query() and order == []  # the host was not blocked
    gate.set()
    s.synchronize()
    assert order == [1, 2]


def test_stream_errors_surface_at_synchronize_with_the_work_named():
    s = runtime.device("ref").new_stream("failing")

    def boom():
        raise ValueError("bad kernel argument")

    s.enqueue(boom, what="kernel softmax_kernel")
    with pytest.raises(runtime.StreamError, match="failing: kernel softmax_kernel failed: ValueError: bad kernel argument"):
        s.synchronize()


def test_events_order_streams_and_time_work():
    dev = runtime.device("ref")
    s1, s2 = dev.new_stream("s1"), dev.new_stream("s2")
    seen = []
    start, done = runtime.Event("start"), runtime.Event("done")
    start.record(s1)
    s1.enqueue(time.sleep, 0.05)
    s1.enqueue(seen.append, "produced")
    done.record(s1)
    s2.wait_event(done)
    s2.enqueue(lambda: seen.append("consumed"))
    s2.synchronize()
    assert seen == ["produced", "consumed"]
    assert start.elapsed_time(done) >= 40  # ms; a lower bound, not a timing assertion


def test_async_copy_on_stream():
    dev = runtime.device("cpu")
    s = dev.new_stream()
    a = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    t = runtime.Tensor.from_numpy(a, dev, stream=s)
    np.testing.assert_array_equal(t.numpy(stream=s), a)
