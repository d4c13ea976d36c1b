"""The cpu backend: compiling C, launching over a grid, the on-disk cache across processes."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from opencann import backends
from opencann.backends.cpu import CPUBackend
from opencann.backends.cpu.compiler import KernelCache

SRC = textwrap.dedent("""
    #include <stdint.h>
    void fill(int64_t g0, int64_t g1, int64_t g2, float *out, int64_t n, double v) {
      #pragma omp parallel for
      for (int64_t p = 0; p < g0 * g1 * g2; p++)
        for (int64_t i = p * n; i < (p + 1) * n; i++) out[i] = (float)v + (float)p;
    }
""")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENCANN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_compile_and_launch_c_source(cache_dir):
    dev = CPUBackend()
    prog = dev.compile(SRC, entry="fill", signature="pif")
    out = np.zeros(12, np.float32)
    dev.launch(prog, (2, 3), (out.ctypes.data, 2, 0.5))
    np.testing.assert_array_equal(out, np.repeat(np.arange(6), 2) + 0.5)
    assert list(cache_dir.glob("*/*.so"))  # stored in the cache
    assert dev.compile(SRC, entry="fill", signature="pif") is prog


def test_compile_error_reports_compiler_output(cache_dir):
    with pytest.raises(backends.BackendError, match="C compile failed"):
        CPUBackend().compile("this is not C;", entry="f", signature="")


def test_cache_key_covers_flags_and_source(cache_dir):
    a = KernelCache(flags=["-O2", "-shared", "-fPIC"])
    b = KernelCache(flags=["-O3", "-shared", "-fPIC"])
    assert a.key("src") != b.key("src") and a.key("src") != a.key("src2")
    assert a.key("src") == KernelCache(flags=["-O2", "-shared", "-fPIC"]).key("src")


def test_compile_many_runs_compilers_in_parallel(cache_dir):
    dev = CPUBackend()
    items = [(SRC.replace("fill", f"fill{i}"), f"fill{i}", "pif", None) for i in range(3)]
    progs = dev.compile_many(items)
    out = np.zeros(2, np.float32)
    dev.launch(progs[2], (1,), (out.ctypes.data, 2, 7.0))
    np.testing.assert_array_equal(out, [7, 7])


LAUNCH = textwrap.dedent("""
    import sys, time, numpy as np
    t0 = time.perf_counter()
    from opencann.ops.math.kernels.elementwise import triad_kernel
    from opencann import backends
    backends.get("cpu")  # import the backend module before timing the load itself
    x = np.arange(100, dtype=np.float32); out = np.zeros_like(x)
    t1 = time.perf_counter()
    prog = triad_kernel.warmup(x, x, out, 2.0, 100, BLOCK=8192)
    t2 = time.perf_counter()
    triad_kernel[(1,)](x, x, out, 2.0, 100, BLOCK=8192)
    assert (out == 3 * x).all()
    print(f"load_ms={(t2 - t1) * 1e3:.2f}")
""")


def _run_launch(env):
    r = subprocess.run([sys.executable, "-c", LAUNCH], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def _env(cache_dir, cc):
    env = dict(os.environ, OPENCANN_CACHE_DIR=str(cache_dir), CC=str(cc))
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _counting_cc(tmp_path):
    log = tmp_path / "cc.log"
    cc = tmp_path / "cc"
    cc.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\nexec gcc \"$@\"\n")
    cc.chmod(0o755)
    return cc, log


def _compiles(log):
    return [line for line in log.read_text().splitlines() if "-shared" in line] if log.exists() else []


def test_fresh_process_loads_cached_kernel_without_compiler(tmp_path):
    cc, log = _counting_cc(tmp_path)
    env = _env(tmp_path / "cache", cc)
    _run_launch(env)
    assert len(_compiles(log)) == 1
    before = log.read_text()
    out = _run_launch(env)  # a fresh process: same kernel, warm cache
    assert log.read_text() == before, "the compiler ran again"
    assert "load_ms=" in out  # (the load time is printed for the record, not asserted)


def test_concurrent_processes_compile_once(tmp_path):
    cc, log = _counting_cc(tmp_path)
    env = _env(tmp_path / "cache", cc)
    procs = [subprocess.Popen([sys.executable, "-c", LAUNCH], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, out + err
    assert len(_compiles(log)) == 1


def test_cc_may_be_a_command_with_arguments(cache_dir, monkeypatch):
    monkeypatch.setenv("CC", "gcc -DOC_TEST_FLAG=1")
    src = SRC.replace("(float)v + (float)p", "(float)v + (float)p + OC_TEST_FLAG")
    prog = CPUBackend().compile(src, entry="fill", signature="pif")
    out = np.zeros(2, np.float32)
    CPUBackend().launch(prog, (1,), (out.ctypes.data, 2, 1.0))
    np.testing.assert_array_equal(out, [2, 2])
