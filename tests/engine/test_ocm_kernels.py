""".ocm files carry their cpu kernels: a fresh process with an empty kernel cache and no working C
compiler loads and runs the model; bad kernel sections and binaries for another CPU are refused
clearly."""

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import opencann
from opencann.backends.cpu.compiler import find_compiler
from opencann.engine import ocm

pytestmark = pytest.mark.skipif(find_compiler() is None, reason="needs a C compiler to build the kernels")

_RUN = """
import sys, numpy as np, opencann
m = opencann.load(sys.argv[1])
np.save(sys.argv[3], m.run({"x": np.load(sys.argv[2])})["y"])
"""


def _model():
    rng = np.random.default_rng(0)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["a"]),
         helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Softmax", ["r"], ["s"], axis=-1),
         helper.make_node("Tanh", ["s"], ["t"]), helper.make_node("Mul", ["t", "s"], ["y"])], "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(rng.standard_normal((32, 16)).astype(np.float32), "w"),
         numpy_helper.from_array(rng.standard_normal(16).astype(np.float32), "b")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("ocm_kernels")
    m = opencann.compile(_model(), backend="cpu")
    x = np.random.default_rng(1).standard_normal((3, 32)).astype(np.float32)
    y = m.run({"x": x})["y"]
    path = d / "mlp.ocm"
    m.save(path)
    np.save(d / "x.npy", x)
    return path, d / "x.npy", y


def _fresh_run(path, x_path, tmp_path, env_change, remove=()):
    """Load and run `path` in a new process with an empty kernel cache; returns (proc, y or None)."""
    cache = tmp_path / "empty-cache"
    cache.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in remove}
    env.update(OPENCANN_CACHE_DIR=str(cache), **env_change)
    out = tmp_path / "y.npy"
    r = subprocess.run([sys.executable, "-c", _RUN, str(path), str(x_path), str(out)], env=env,
                       capture_output=True, text=True, timeout=120)
    return r, (np.load(out) if r.returncode == 0 else None)


def test_file_carries_kernels_for_its_target(saved):
    path, _, _ = saved
    header = ocm.read_header(path)
    assert header["format"] == ocm.FORMAT == 2
    assert header["target"]["isa"] == opencann.backends.get("cpu").describe()
    kernels = ocm.read_kernels(path, header)
    assert len(kernels) == header["kernel_count"] >= 2
    for k in kernels:
        assert k["source_key"].startswith("tile:") and len(k["key"]) == 40
        assert bytes(k["binary"][:4]) == b"\x7fELF"
        assert "entry" in k["source"] or "oc_" in k["source"]


@pytest.mark.parametrize("no_compiler", [{"CC": "/bin/false"}, {"PATH": "/nonexistent"}],
                         ids=["CC=/bin/false", "no-compiler-on-PATH"])
def test_fresh_process_without_compiler_runs_the_model(saved, tmp_path, no_compiler):
    path, x_path, y = saved
    remove = ("CC",) if "PATH" in no_compiler else ()
    r, got = _fresh_run(path, x_path, tmp_path, no_compiler, remove)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(got, y)
    names = {n for _, _, files in os.walk(tmp_path / "empty-cache") for n in files}
    assert sum(n.endswith(".so") for n in names) == ocm.read_header(path)["kernel_count"]


def test_cli_run_without_compiler(saved, tmp_path):
    path, x_path, _ = saved
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {**os.environ, "OPENCANN_CACHE_DIR": str(cache), "CC": "/bin/false"}
    r = subprocess.run([sys.executable, "-m", "opencann.cli", "run", str(path), "--input", f"x={x_path}"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "y: shape [3, 16] dtype float32" in r.stdout and "(backend cpu)" in r.stdout


def test_corrupted_kernels_section(saved, tmp_path):
    path, _, _ = saved
    header = ocm.read_header(path)
    s = header["sections"]["kernels"]
    data = bytearray(path.read_bytes())
    data[s["offset"] + s["size"] - 40] ^= 0xFF  # inside the last kernel's bytes
    bad = tmp_path / "bad.ocm"
    bad.write_bytes(bytes(data))
    with pytest.raises(opencann.ModelLoadError, match="corrupted: section 'kernels' fails its checksum"):
        opencann.load(bad)


def test_corrupted_binary_is_refused_without_checksums(saved, tmp_path):
    path, _, _ = saved
    k = ocm.read_kernels(path)[0]
    header = ocm.read_header(path)
    s = header["sections"]["kernels"]
    (ilen,) = struct.unpack("<Q", path.read_bytes()[s["offset"]:s["offset"] + 8])
    at = s["offset"] + 8 + ilen + json.loads(
        path.read_bytes()[s["offset"] + 8:s["offset"] + 8 + ilen])["kernels"][0]["binary"][0] + 100
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    bad = tmp_path / "bad.ocm"
    bad.write_bytes(bytes(data))
    with pytest.raises(opencann.ModelLoadError, match=f"kernel binary {k['key']} does not match its SHA-256"):
        opencann.load(bad, verify=False)


def test_garbled_kernel_index(saved, tmp_path):
    path, _, _ = saved
    s = ocm.read_header(path)["sections"]["kernels"]
    data = bytearray(path.read_bytes())
    data[s["offset"] + 8:s["offset"] + 16] = b"@@@@@@@@"  # the JSON index no longer parses
    bad = tmp_path / "bad.ocm"
    bad.write_bytes(bytes(data))
    with pytest.raises(opencann.ModelLoadError, match="corrupted: its kernels section is not valid"):
        opencann.load(bad, verify=False)


def test_truncated_in_kernels(saved, tmp_path):
    path, _, _ = saved
    s = ocm.read_header(path)["sections"]["kernels"]
    cut = tmp_path / "cut.ocm"
    cut.write_bytes(path.read_bytes()[: s["offset"] + s["size"] // 2])
    with pytest.raises(opencann.ModelLoadError, match="is truncated: section 'kernels'"):
        opencann.load(cut)


def _other_cpu_file(saved, tmp_path):
    path, _, _ = saved
    graph, header = ocm.load(path)
    other = tmp_path / "other.ocm"
    ocm.save(other, graph, "cpu", kernels=ocm.read_kernels(path, header),
             target={**header["target"], "isa": "riscv64|Imaginary Core|"})
    return other


def test_kernels_for_another_cpu_without_compiler(saved, tmp_path):
    other = _other_cpu_file(saved, tmp_path)
    _, x_path, _ = saved
    r, _ = _fresh_run(other, x_path, tmp_path, {"PATH": "/nonexistent"}, remove=("CC",))
    assert r.returncode != 0
    assert "ModelLoadError" in r.stderr and "riscv64|Imaginary Core|" in r.stderr
    assert opencann.backends.get("cpu").describe() in r.stderr and "no C compiler" in r.stderr
    assert "Traceback" in r.stderr and "Segmentation" not in r.stderr


def test_kernels_for_another_cpu_are_not_used(saved, tmp_path, monkeypatch):
    other = _other_cpu_file(saved, tmp_path)
    _, x_path, y = saved
    monkeypatch.setenv("OPENCANN_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match="not this one"):
        m = opencann.load(other)
    assert not os.path.exists(tmp_path / "cache") or not any(
        n.endswith(".so") for _, _, fs in os.walk(tmp_path / "cache") for n in fs)
    np.testing.assert_array_equal(m.run({"x": np.load(x_path)})["y"], y)


def test_wrong_backend_given(saved):
    path, _, _ = saved
    with pytest.raises(opencann.ModelLoadError, match="compiled for backend 'cpu', not 'ref'"):
        opencann.compile(path, backend="ref")


def test_old_and_unknown_formats(saved, tmp_path, monkeypatch):
    path, x_path, y = saved
    graph, _ = ocm.load(path)
    monkeypatch.setattr(ocm, "FORMAT", 1)  # a format-1 file: no kernels (an empty section reads the same)
    old = tmp_path / "old.ocm"
    ocm.save(old, graph, "cpu")
    np.testing.assert_array_equal(opencann.load(old).run({"x": np.load(x_path)})["y"], y)
    monkeypatch.setattr(ocm, "FORMAT", 99)
    new = tmp_path / "new.ocm"
    ocm.save(new, graph, "cpu")
    monkeypatch.undo()
    with pytest.raises(opencann.ModelLoadError, match="has .ocm format 99; this opencann reads formats 1, 2"):
        opencann.load(new)


def test_save_without_running_warms_up(tmp_path):
    m = opencann.compile(_model(), backend="cpu")
    m.save(tmp_path / "m.ocm")  # never run: the save runs it once on made-up inputs
    assert ocm.read_header(tmp_path / "m.ocm")["kernel_count"] >= 2
    m.save(tmp_path / "none.ocm", kernels=False)
    assert ocm.read_header(tmp_path / "none.ocm")["kernel_count"] == 0


_RUN_ATTN = """
import sys, numpy as np, opencann
m = opencann.load(sys.argv[1])
q = np.load(sys.argv[2])
np.save(sys.argv[4], np.stack([m.run({"q": q, "mask": mask})["y"] for mask in np.load(sys.argv[3])]))
"""


def _masks():
    """Additive masks of each form: none, right padding (lengths), holes, causal, anything else."""
    masks = np.zeros((5, 1, 1, 16, 16), np.float32)
    masks[1, ..., 12:] = -1e9
    masks[2, ..., 3] = -1e9
    masks[3] = np.where(np.tri(16, 16, dtype=bool), 0, -1e9)
    masks[4] = np.linspace(-1, 1, 256).reshape(16, 16)
    return masks


def test_attention_kernels_for_every_mask_form_travel_with_the_model(tmp_path):
    """Which attention kernel runs depends on the mask's values (padding lengths, holes, causal,
    anything else), not its shape: the file carries all of them, so a fresh process without a
    compiler runs any mask."""
    g = helper.make_graph(
        [helper.make_node("Transpose", ["q"], ["kt"], perm=[0, 1, 3, 2]),
         helper.make_node("MatMul", ["q", "kt"], ["s"]), helper.make_node("Mul", ["s", "c"], ["s2"]),
         helper.make_node("Add", ["s2", "mask"], ["s3"]),
         helper.make_node("Softmax", ["s3"], ["p"], axis=-1),
         helper.make_node("MatMul", ["p", "q"], ["y"])], "attn",
        [helper.make_tensor_value_info("q", TensorProto.FLOAT, [1, 2, 16, 8]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(0.35, np.float32), "c")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m = opencann.compile(model, backend="cpu")
    assert any(s.kernel == "attention" for s in m._exec.placement.steps)
    q = np.random.default_rng(2).standard_normal((1, 2, 16, 8)).astype(np.float32)
    masks = _masks()
    m.run({"q": q, "mask": masks[0]})  # one mask form only
    path = tmp_path / "attn.ocm"
    m.save(path)
    np.save(tmp_path / "q.npy", q)
    np.save(tmp_path / "masks.npy", masks)
    env = dict(os.environ, OPENCANN_CACHE_DIR=str(tmp_path / "empty-cache"), CC="/bin/false")
    r = subprocess.run([sys.executable, "-c", _RUN_ATTN, str(path), str(tmp_path / "q.npy"),
                        str(tmp_path / "masks.npy"), str(tmp_path / "y.npy")], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    ref = opencann.compile(model, backend="ref")
    for got, mask in zip(np.load(tmp_path / "y.npy"), masks):
        np.testing.assert_allclose(got, ref.run({"q": q, "mask": mask})["y"], rtol=1e-4, atol=1e-5)


def test_a_kept_launch_counts_for_every_model_that_runs_it():
    """Attention launches are kept prepared across calls (process-wide); a second model that
    runs the same launch still records its program, so its .ocm carries the kernel."""
    from opencann.tile.kernel import ProgramLog
    from opencann.ops.transformer.kernels.attention import attention

    q = np.random.default_rng(3).standard_normal((1, 2, 16, 8)).astype(np.float32)
    attention(q, q, q)  # the launch is prepared and kept
    with ProgramLog() as log:
        attention(q, q, q)  # a kept launch: no compile, no lookup
    assert any(getattr(p, "name", "") == "attention_kernel" or "attention" in repr(p)
               for p in log.programs), log.programs
