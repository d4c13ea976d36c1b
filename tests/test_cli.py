"""The `opencann` command line: info, run, and errors that exit non-zero with a clear message."""

import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from opencann.cli import main


def _model(path):
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "adder",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(np.array([10, 20], np.float32), "w")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for key in ("opencann 0.1.0", "backends", "devices", "C compiler", "ops"):
        assert key in out


def test_info_lists_ops(capsys):
    assert main(["info", "--ops"]) == 0
    assert "Add" in capsys.readouterr().out


def test_run_prints_outputs_and_saves(tmp_path, capsys):
    _model(tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", np.ones((3, 2), np.float32))
    assert main(["run", str(tmp_path / "m.onnx"), "--input", f"x={tmp_path / 'x.npy'}",
                 "--output-dir", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "y: shape [3, 2] dtype float32  min 11  max 21  mean 16" in out
    assert "run" in out and "ms" in out
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "y.npy"), [[11, 21]] * 3)


def test_run_errors_exit_nonzero_with_message(tmp_path, capsys):
    _model(tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", np.ones((3, 2), np.float64))
    assert main(["run", str(tmp_path / "m.onnx"), "--input", f"x={tmp_path / 'x.npy'}"]) == 1
    assert "input 'x' expects dtype float32 but got float64" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "m.onnx")]) == 1
    assert "missing input(s) x: float32[n,2]" in capsys.readouterr().err
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage")
    assert main(["run", str(tmp_path / "bad.onnx")]) == 1
    assert "bad.onnx" in capsys.readouterr().err


def test_console_script_entry_point():
    r = subprocess.run([sys.executable, "-m", "opencann.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "opencann 0.1.0" in r.stdout
