"""The profiler: trace JSON, op summary with FLOP counts and roofline, and the CLI command."""

import csv
import json

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import opencann
from opencann import profiler
from opencann.cli import main
from opencann.profiler import Roofline

ROOF = Roofline(peak_gflops=100.0, bandwidth_gbs=10.0)


def _mlp():
    rng = np.random.default_rng(0)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"), helper.make_node("Relu", ["h"], ["y"], name="act")],
        "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(rng.standard_normal((64, 32)).astype(np.float32), "w")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_profile_records_each_node_with_costs():
    m = opencann.compile(_mlp(), backend="ref")
    x = np.ones((8, 64), np.float32)
    with profiler.profile(ROOF) as prof:
        for _ in range(3):
            m.run({"x": x})
    assert [s.op for s in prof.slices] == ["MatMul", "Relu"] * 3
    mm = prof.slices[0]
    assert mm.flops == 2 * 8 * 64 * 32
    assert mm.bytes == (8 * 64 + 64 * 32 + 8 * 32) * 4
    rows = {r["op"]: r for r in prof.summary()}
    assert rows["MatMul"]["calls"] == 3 and rows["Relu"]["calls"] == 3
    assert abs(sum(r["share_pct"] for r in rows.values()) - 100) < 0.1
    assert rows["MatMul"]["gflops"] > 0 and rows["MatMul"]["roofline_pct"] > 0


def test_nothing_is_recorded_outside_a_profile():
    m = opencann.compile(_mlp(), backend="ref")
    with profiler.profile(ROOF) as prof:
        pass
    m.run({"x": np.ones((1, 64), np.float32)})
    assert prof.slices == [] and profiler.active() is None


def test_trace_and_summary_files(tmp_path):
    m = opencann.compile(_mlp(), backend="ref")
    with profiler.profile(ROOF) as prof:
        m.run({"x": np.ones((2, 64), np.float32)})
    prof.write_trace(tmp_path / "t.json")
    prof.write_summary(tmp_path / "s.csv")
    trace = json.loads((tmp_path / "t.json").read_text())
    slices = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert [e["name"] for e in slices] == ["mm", "act"]
    assert all(e["dur"] >= 0 and "op" in e["args"] for e in slices)
    rows = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert {r["op"] for r in rows} == {"MatMul", "Relu"}
    assert set(rows[0]) >= {"op", "kernel", "calls", "total_ms", "mean_ms", "share_pct", "gflops",
                            "bytes_moved", "roofline_pct"}
    assert "MatMul" in prof.table()


def test_roofline_math():
    assert ROOF.attainable_gflops(1000, 1000) == 10.0   # memory bound: 1 flop/byte x 10 GB/s
    assert ROOF.attainable_gflops(1e6, 10) == 100.0     # compute bound


def test_cli_profile(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENCANN_ROOFLINE", "100,10")
    path = tmp_path / "m.onnx"
    path.write_bytes(_mlp().SerializeToString())
    assert main(["profile", str(path), "--runs", "2", "--dim", "batch=4", "--trace", str(tmp_path / "t.json"),
                 "--summary", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    assert "MatMul" in out and "%roof" in out and (tmp_path / "t.json").exists()


def test_gather_counts_what_it_reads_not_the_whole_table():
    from opencann.engine import cost

    table = np.zeros((30000, 384), np.float32)
    idx = np.array([[1, 2, 3]], np.int64)
    out = table[idx]
    assert cost.moved_bytes("Gather", [table, idx], [out]) == 2 * out.nbytes + idx.nbytes
    assert cost.moved_bytes("Add", [out, out], [out]) == 3 * out.nbytes


def test_compiled_steps_get_their_costs_after_the_run():
    """On the cpu backend the steps are timed back to back and their costs worked out after the
    run, from the shapes of what they read and wrote; the fused MatMul+Relu counts the MatMul."""
    m = opencann.compile(_mlp(), backend="cpu")
    x = np.ones((8, 64), np.float32)
    want = m.run({"x": x})["y"]
    with profiler.profile(ROOF) as prof:
        got = m.run({"x": x})["y"]
    np.testing.assert_array_equal(got, want)
    assert len(prof.slices) == 1
    s = prof.slices[0]
    assert s.flops == 2 * 8 * 64 * 32
    assert s.bytes >= (8 * 64 + 8 * 32) * 4 and s.duration > 0
