"""Tile-language kernels on the cpu backend against the fastest peer on this machine.

Peers: NumPy (OpenBLAS sgemm; softmax, norms and attention written with NumPy arrays) and, for
memory bandwidth, a plain C OpenMP triad compiled in this run with the same compiler and flags.
Each case is timed in 5 rounds spread over the run; a round takes the best of a block of our calls
and the best of a block of the peer's, side by side in time, and the round with the median ratio
is reported (bursts of load elsewhere on the machine then shift both figures, not one). A warm-up
call first compiles (or loads) the kernels. `ratio` > 1 means opencann is better.

    python bench/tile_kernels.py [--quick] [--only gemm] [--threads 1] [--json results.json]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from opencann.backends.cpu.compiler import compiler_command, default_flags  # noqa: E402
from opencann.ops.math.kernels import elementwise as ew  # noqa: E402
from opencann.ops.math.kernels.gemm import gemm  # noqa: E402
from opencann.ops.nn.kernels.normalization import layer_norm, rms_norm  # noqa: E402
from opencann.ops.nn.kernels.softmax import softmax  # noqa: E402
from opencann.ops.transformer.kernels.attention import attention  # noqa: E402

C_TRIAD = r"""
#include <stdint.h>
void triad(float *a, const float *b, const float *c, float s, int64_t n) {
  #pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
}
"""


def c_triad():
    """The peer for bandwidth: a plain OpenMP triad built now with the system compiler."""
    d = tempfile.mkdtemp(prefix="opencann-bench-")
    src, lib = os.path.join(d, "triad.c"), os.path.join(d, "triad.so")
    with open(src, "w") as f:
        f.write(C_TRIAD)
    subprocess.run([*compiler_command(), *default_flags(), "-o", lib, src], check=True)
    fn = ctypes.CDLL(lib).triad
    fn.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_float, ctypes.c_int64]
    fn.restype = None
    return lambda a, b, c, s: fn(a.ctypes.data, b.ctypes.data, c.ctypes.data, s, a.size)


def _block(fn, reps, min_time):
    fn()  # warm-up: also lets the other side's worker threads (OpenMP, OpenBLAS) go idle
    best, n, start = float("inf"), 0, time.perf_counter()
    while n < reps or (time.perf_counter() - start < min_time and n < 200):
        s = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - s)
        n += 1
    return best


def best_of(ours, peer, reps, min_time=0.0):
    """Best times (seconds) of a block of `ours` calls and a block of `peer` calls.

    Calls are grouped in blocks rather than alternated one by one: both OpenMP and OpenBLAS keep
    their worker threads spinning for a while after a call, and on a small machine alternating
    single calls makes each side run against the other's spinning threads.
    """
    return _block(ours, reps, min_time), _block(peer, reps, min_time)


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_layer_norm(x, w, b, eps=1e-5):
    m = x.mean(-1, keepdims=True)
    return (x - m) / np.sqrt(x.var(-1, keepdims=True) + eps) * w + b


def np_rms_norm(x, w, eps=1e-6):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def np_attention(q, k, v):
    s = q @ np.swapaxes(k, -1, -2) * np.float32(1 / math.sqrt(q.shape[-1]))
    return np_softmax(s) @ v


def np_causal_attention(q, k, v):
    s = q @ np.swapaxes(k, -1, -2) * np.float32(1 / math.sqrt(q.shape[-1]))
    s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, np.float32(-np.inf))
    return np_softmax(s) @ v


def run(quick=False, only=None, rounds=None):
    """Time every case in several rounds spread over the whole run; each round times a block of
    our calls next to a block of the peer's, and the round with the median ratio is reported."""
    rng = np.random.default_rng(0)
    reps = 3 if quick else 5
    min_time = 0.15 if quick else 0.3
    rounds = rounds or (1 if quick else 5)
    cases = []

    def case(name, ours, peer, unit, work):
        if not only or only in name:
            cases.append((name, ours, peer, unit, work))

    # GEMM float32: GFLOP/s against NumPy's sgemm
    shapes = [("gemm 1024x1024x1024", 1024, 1024, 1024), ("gemm 2048x2048x2048", 2048, 2048, 2048),
              ("gemm bert qkv 128x768x768", 128, 768, 768),
              ("gemm bert ffn1 128x768x3072", 128, 3072, 768),
              ("gemm bert ffn2 128x3072x768", 128, 768, 3072)]
    for name, m, n, k in shapes[:3] if quick else shapes:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        case(name, lambda a=a, b=b: gemm(a, b), lambda a=a, b=b: a @ b, "GFLOP/s", 2.0 * m * n * k)
    a = rng.standard_normal((128, 768)).astype(np.float32)
    w = rng.standard_normal((768, 3072)).astype(np.float32)
    bias = rng.standard_normal(3072).astype(np.float32)
    case("gemm+bias+gelu 128x768x3072", lambda: gemm(a, w, bias=bias, activation="gelu"),
         lambda: 0.5 * (y := a @ w + bias) * (1 + np.tanh(0.7978845608 * (y + 0.044715 * y ** 3))),
         "GFLOP/s", 2.0 * 128 * 768 * 3072)

    # bandwidth: against a C OpenMP triad built in this run
    n = (64 << 20) // 4  # 64 MB per array
    x, y, out, ref_out = (np.full(n, 1.0, np.float32) for _ in range(4))
    triad = c_triad()
    peer = lambda: triad(ref_out, x, y, 3.0)  # noqa: E731
    case("triad 64MB (b + s*c)", lambda: ew.triad(x, y, 3.0, out=out), peer, "GB/s", 3.0 * 4 * n)
    case("add 64MB (same shape)", lambda: ew.binary_kernel[(-(-n // ew.BLOCK), 1)](
        x, y, out, 1, n, 0, 0, 1, 0, 0, 1, OP="add", BLOCK=ew.BLOCK), peer, "GB/s", 3.0 * 4 * n)
    xm = x.reshape(4096, 4096)
    row = rng.standard_normal(4096).astype(np.float32)
    outm = out.reshape(4096, 4096)
    case("broadcast add 64MB + row", lambda: ew.binary_kernel[(2, 4096)](
        xm, row, outm, 4096, 4096, 0, 0, 1, 0, 0, 1, OP="add", BLOCK=ew.BLOCK), peer, "GB/s",
         2.0 * 4 * n)  # reads x, writes out (the row stays in cache)

    # row kernels: time against NumPy
    X = rng.standard_normal((4096, 1024)).astype(np.float32)
    w1, b1 = rng.standard_normal(1024).astype(np.float32), rng.standard_normal(1024).astype(np.float32)
    case("softmax 4096x1024", lambda: softmax(X), lambda: np_softmax(X), "ms", 0)
    case("layer norm 4096x1024", lambda: layer_norm(X, w1, b1), lambda: np_layer_norm(X, w1, b1), "ms", 0)
    case("rms norm 4096x1024", lambda: rms_norm(X, w1), lambda: np_rms_norm(X, w1), "ms", 0)

    # attention: one fused kernel against NumPy matmul + softmax + matmul
    for s in (128, 512):
        q, k, v = (rng.standard_normal((1, 12, s, 64)).astype(np.float32) for _ in range(3))
        case(f"attention b1 h12 s{s} d64", lambda q=q, k=k, v=v: attention(q, k, v),
             lambda q=q, k=k, v=v: np_attention(q, k, v), "ms", 0)
        case(f"attention causal b1 h12 s{s} d64", lambda q=q, k=k, v=v: attention(q, k, v, causal=True),
             lambda q=q, k=k, v=v: np_causal_attention(q, k, v), "ms", 0)
    pairs = {name: [] for name, *_ in cases}
    for _ in range(rounds):
        for name, ours, peer, unit, work in cases:
            pairs[name].append(best_of(ours, peer, reps, min_time))
    rows = []
    for name, _o, _p, unit, work in cases:
        # the round whose ratio is the median: ours and the peer measured side by side in time,
        # so a burst of load elsewhere on the machine shifts both
        t_o, t_p = sorted(pairs[name], key=lambda tp: tp[1] / tp[0])[len(pairs[name]) // 2]
        if unit == "ms":
            o, p, ratio = t_o * 1e3, t_p * 1e3, t_p / t_o
        else:
            o, p = work / t_o / 1e9, work / t_p / 1e9
            ratio = o / p
        r = {"name": name, "ours": round(o, 3), "peer": round(p, 3), "unit": unit,
             "ratio": round(ratio, 3)}
        rows.append(r)
        print(f"{name:<34} ours {r['ours']:>9.2f} {unit:<7} peer {r['peer']:>9.2f} {unit:<7} "
              f"ratio {r['ratio']:.2f}", flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the results as a JSON list to this file")
    ap.add_argument("--quick", action="store_true", help="fewer shapes and repetitions")
    ap.add_argument("--only", help="run only cases whose name contains this text")
    ap.add_argument("--rounds", type=int, help="rounds over all cases (default 5; 1 with --quick)")
    ap.add_argument("--threads", type=int, help="threads for both sides (OpenMP and OpenBLAS); "
                    "1 compares per-core efficiency, which a busy shared machine disturbs least")
    args = ap.parse_args(argv)
    if args.threads and os.environ.get("_OPENCANN_BENCH_THREADS") != str(args.threads):
        # thread pools are sized when the libraries load: restart with the environment set
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
                   OPENBLAS_NUM_THREADS=str(args.threads), _OPENCANN_BENCH_THREADS=str(args.threads))
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *sys.argv[1:]], env)
    threads = os.environ.get("OMP_NUM_THREADS", str(os.cpu_count()))
    rounds = args.rounds or (1 if args.quick else 5)
    print(f"# opencann tile kernels (cpu backend) vs peers; {os.cpu_count()} cpus, {threads} threads; "
          f"numpy {np.__version__}; median of {rounds} paired rounds (best of a block of calls "
          "each); ratio > 1: opencann better")
    rows = run(args.quick, args.only, rounds)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
