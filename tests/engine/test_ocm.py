"""Offline models (.ocm): round trip, loading in a fresh process, and clear errors for bad files."""

import os
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import opencann
from opencann.cli import main


def _model():
    rng = np.random.default_rng(0)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["a"]),
         helper.make_node("Relu", ["a"], ["y"])], "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(rng.standard_normal((32, 16)).astype(np.float32), "w"),
         numpy_helper.from_array(rng.standard_normal(16).astype(np.float32), "b")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture
def saved(tmp_path):
    m = opencann.compile(_model(), backend="ref")
    path = tmp_path / "mlp.ocm"
    m.save(path)
    return m, path


def test_round_trip(saved):
    m, path = saved
    loaded = opencann.load(path)
    x = np.random.default_rng(1).standard_normal((3, 32)).astype(np.float32)
    np.testing.assert_array_equal(loaded.run({"x": x})["y"], m.run({"x": x})["y"])
    assert loaded.graph.inputs[0].type.shape == ("batch", 32)
    w = next(c for c in loaded.graph.constants if c.name == "w").const
    assert isinstance(w.base, np.memmap) or isinstance(w, np.memmap) or not w.flags.writeable  # mapped, read-only


def test_fresh_process_loads_and_runs(saved):
    _, path = saved
    code = ("import numpy as np, opencann, sys; m = opencann.load(sys.argv[1]); "
            "print(m.run({'x': np.ones((2, 32), np.float32)})['y'].shape)")
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "(2, 16)"


def test_truncated_file(saved, tmp_path):
    _, path = saved
    cut = tmp_path / "cut.ocm"
    cut.write_bytes(path.read_bytes()[: os.path.getsize(path) // 2])
    with pytest.raises(opencann.ModelLoadError, match="is truncated"):
        opencann.load(cut)


def test_corrupted_file(saved, tmp_path):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # flip bits inside the weights
    bad = tmp_path / "bad.ocm"
    bad.write_bytes(bytes(data))
    with pytest.raises(opencann.ModelLoadError, match="corrupted: section 'weights' fails its checksum"):
        opencann.load(bad)


def test_not_an_ocm_file(tmp_path):
    p = tmp_path / "x.ocm"
    p.write_bytes(b"hello world, not a model")
    with pytest.raises(opencann.ModelLoadError, match="not an opencann model"):
        opencann.load(p)


def test_wrong_target(saved):
    _, path = saved
    from opencann.engine import ocm

    with pytest.raises(opencann.ModelLoadError, match="compiled for backend 'ref', not 'gpu9'"):
        ocm.load(path, expect_backend="gpu9")


def test_cli_compile_and_run(tmp_path, capsys):
    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes(_model().SerializeToString())
    out = tmp_path / "m.ocm"
    assert main(["compile", str(onnx_path), "-o", str(out), "--input-shape", "x=4,32"]) == 0
    assert "wrote" in capsys.readouterr().out
    np.save(tmp_path / "x.npy", np.ones((4, 32), np.float32))
    assert main(["run", str(out), "--input", f"x={tmp_path / 'x.npy'}"]) == 0
    assert "y: shape [4, 16] dtype float32" in capsys.readouterr().out
    assert main(["compile", str(onnx_path), "-o", str(out), "--input-shape", "x=4,31"]) == 1
    assert "does not fit" in capsys.readouterr().err
