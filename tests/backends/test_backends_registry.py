"""The backend registry and the contract's memory and description methods."""

import numpy as np
import pytest

from opencann import backends
from opencann.backends import Backend, BackendError, Capabilities


def test_builtin_backends_are_available():
    names = backends.available()
    assert names[:2] == ["ref", "cpu"]
    assert backends.get("cpu") is backends.get("cpu")
    assert isinstance(backends.get("ref"), Backend)


def test_unknown_backend_lists_known_ones():
    with pytest.raises(BackendError, match="known backends: .*cpu.*ref"):
        backends.get("no-such-chip")


@pytest.mark.parametrize("name", ["ref", "cpu"])
def test_memory_roundtrip(name):
    dev = backends.get(name)
    x = np.arange(10, dtype=np.float32)
    buf = dev.allocate(x.nbytes + 8)
    assert buf.nbytes == 48 and buf.handle.ctypes.data % 64 == 0
    dev.copy_in(buf, x, offset=8)
    out = np.empty_like(x)
    dev.copy_out(buf, out, offset=8)
    np.testing.assert_array_equal(out, x)
    with pytest.raises(BackendError):
        dev.copy_in(buf, np.zeros(100, np.float32))
    dev.free(buf)


def test_capabilities():
    cpu = backends.get("cpu").capabilities()
    assert isinstance(cpu, Capabilities)
    from opencann import dtypes

    assert cpu.supports(dtypes.float32) and cpu.supports(dtypes.bfloat16)
    assert cpu.simd_width_bytes >= 16 and cpu.cores >= 1 and "openmp" in cpu.features
    assert "interpreter" in backends.get("ref").capabilities().features


class _NullBackend(Backend):
    """A backend that does nothing, as a third party might start one."""

    name = "null"

    def allocate(self, nbytes):
        return backends.Buffer(self, nbytes, None)

    def free(self, buf):
        pass

    def copy_in(self, buf, host, offset=0):
        pass

    def copy_out(self, buf, host, offset=0):
        pass

    def compile(self, source, *, entry, signature, cache_key=None):
        return backends.Program(entry, entry, signature)

    def launch(self, program, grid, args):
        pass

    def capabilities(self):
        return Capabilities(dtypes=(), memory_bytes=0)


def test_register_and_entry_points(monkeypatch):
    backends.register("null", _NullBackend)
    assert backends.get("null").name == "null"
    assert "null" in backends.available()

    class EP:
        name = "viaentrypoint"

        def load(self):
            return _NullBackend

    monkeypatch.setattr(backends, "_entry_points", lambda: {"viaentrypoint": EP()})
    assert isinstance(backends.get("viaentrypoint"), _NullBackend)
    assert "viaentrypoint" in backends.available()


def test_tile_kernels_refuse_a_backend_without_a_code_generator():
    import numpy as np

    from opencann import tile

    @tile.kernel
    def k(x, BLOCK: tile.constexpr):
        tile.store(x + tile.arange(0, BLOCK), tile.zeros((BLOCK,), tile.float32))

    backends.register("null2", _NullBackend)
    with pytest.raises(tile.TileError, match="no code generator"):
        k[(1,)](np.zeros(4, np.float32), BLOCK=4, backend="null2")
