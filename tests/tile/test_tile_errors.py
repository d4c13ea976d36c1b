"""Errors in kernel code name the kernel's source file and line."""

import inspect

import numpy as np
import pytest

from opencann import tile
from opencann.tile import TileCompileError, TileError, TileIndexError

HERE = __file__


def _line_of(fn, text):
    src, start = inspect.getsourcelines(fn.fn if hasattr(fn, "fn") else fn)
    for i, line in enumerate(src):
        if text in line:
            return start + i
    raise AssertionError(text)


@tile.kernel
def oob_kernel(x, out, BLOCK: tile.constexpr):
    offs = tile.arange(0, BLOCK)
    v = tile.load(x + offs)  # no mask: reads past the end when BLOCK > len(x)
    tile.store(out + offs, v, mask=offs < 4)


def test_unmasked_out_of_bounds_load_names_the_line():
    x, out = np.zeros(4, np.float32), np.zeros(4, np.float32)
    with pytest.raises(TileIndexError) as e:
        oob_kernel[(1,)](x, out, BLOCK=8, backend="ref")
    msg = str(e.value)
    assert f"{HERE}:{_line_of(oob_kernel, 'v = tile.load(x + offs)')}" in msg
    assert "'x'" in msg and "out of bounds" in msg
    oob_kernel[(1,)](x, out, BLOCK=4, backend="ref")  # in range: fine


@tile.kernel
def oob_store_kernel(out, n, BLOCK: tile.constexpr):
    offs = tile.program_id(0) * BLOCK + tile.arange(0, BLOCK)
    tile.store(out + offs, offs)


def test_out_of_bounds_store_names_the_line():
    out = np.zeros(10, np.int32)
    with pytest.raises(TileIndexError, match=f"{HERE}:{_line_of(oob_store_kernel, 'tile.store(out + offs, offs)')}"):
        oob_store_kernel[(2,)](out, 10, BLOCK=8, backend="ref")


@tile.kernel
def unknown_name_kernel(x, BLOCK: tile.constexpr):
    offs = tile.arange(0, BLOCK)
    tile.store(x + offs, no_such_thing + offs)  # noqa: F821


@pytest.mark.parametrize("backend", ["ref", "cpu"])
def test_unknown_name_points_at_the_line(backend):
    x = np.zeros(4, np.int32)
    with pytest.raises(TileCompileError) as e:
        unknown_name_kernel[(1,)](x, BLOCK=4, backend=backend)
    assert f"{HERE}:{_line_of(unknown_name_kernel, 'no_such_thing')}" in str(e.value)
    assert "no_such_thing" in str(e.value)


@tile.kernel
def shape_mismatch_kernel(x, BLOCK: tile.constexpr):
    a = tile.arange(0, BLOCK)
    b = tile.arange(0, BLOCK * 2)
    tile.store(x + a, a + b)


@pytest.mark.parametrize("backend", ["ref", "cpu"])
def test_shape_mismatch_names_shapes_and_line(backend):
    with pytest.raises(TileCompileError) as e:
        shape_mismatch_kernel[(1,)](np.zeros(8, np.int32), BLOCK=4, backend=backend)
    msg = str(e.value)
    assert f"{HERE}:{_line_of(shape_mismatch_kernel, 'a + b')}" in msg
    assert "[4] vs [8]" in msg


@tile.kernel
def runtime_size_kernel(x, n):
    offs = tile.arange(0, n)  # n is not constexpr
    tile.store(x + offs, offs)


@pytest.mark.parametrize("backend", ["ref", "cpu"])
def test_runtime_value_where_a_constant_is_needed(backend):
    with pytest.raises(TileCompileError) as e:
        runtime_size_kernel[(1,)](np.zeros(8, np.int32), 8, backend=backend)
    msg = str(e.value)
    assert f"{HERE}:{_line_of(runtime_size_kernel, 'tile.arange(0, n)')}" in msg
    assert "constexpr" in msg


@tile.kernel
def python_if_kernel(x, n, BLOCK: tile.constexpr):
    offs = tile.arange(0, BLOCK)
    if n > 3:  # a runtime value cannot steer Python control flow
        tile.store(x + offs, offs)


def test_python_if_on_runtime_value():
    with pytest.raises(TileCompileError, match="tile.where"):
        python_if_kernel[(1,)](np.zeros(8, np.int32), 8, BLOCK=8, backend="cpu")


def test_unsupported_dtype_argument_names_the_kernel():
    with pytest.raises(TileCompileError) as e:
        oob_kernel[(1,)](np.zeros(4, np.float64), np.zeros(4, np.float32), BLOCK=4, backend="cpu")
    msg = str(e.value)
    assert f"{HERE}:{oob_kernel.lineno}" in msg and "float64" in msg and "'x'" in msg


@tile.kernel
def bad_cast_kernel(x, BLOCK: tile.constexpr):
    offs = tile.arange(0, BLOCK)
    tile.store(x + offs, offs.to("float64"))


def test_unsupported_dtype_in_kernel_names_the_line():
    with pytest.raises(TileCompileError) as e:
        bad_cast_kernel[(1,)](np.zeros(4, np.float32), BLOCK=4, backend="ref")
    assert f"{HERE}:{_line_of(bad_cast_kernel, 'float64')}" in str(e.value)


def test_break_in_tile_loop_is_rejected_with_line():
    with pytest.raises(TileCompileError) as e:
        @tile.kernel
        def break_kernel(x, n):
            for i in range(n):
                break

        break_kernel[(1,)](np.zeros(1, np.float32), 3, backend="ref")
    assert HERE in str(e.value) and "break" in str(e.value)


@tile.kernel
def carried_shape_kernel(x, n, BLOCK: tile.constexpr):
    acc = tile.zeros((BLOCK,), tile.float32)
    for i in range(n):
        acc = tile.sum(acc, axis=0)
    tile.store(x, acc)


def test_loop_carried_shape_change_is_an_error():
    with pytest.raises(TileCompileError, match="loop-carried variable 'acc' changes"):
        carried_shape_kernel[(1,)](np.zeros(4, np.float32), 2, BLOCK=4, backend="cpu")


def test_launch_without_grid_and_bad_arguments():
    with pytest.raises(TileError, match=r"oob_kernel\[grid\]"):
        oob_kernel(np.zeros(4, np.float32))
    with pytest.raises(TileError, match="missing arguments"):
        oob_kernel[(1,)](np.zeros(4, np.float32), backend="ref")
    with pytest.raises(TileError, match="language functions run only inside"):
        tile.arange(0, 4)
