"""End-to-end model benchmark: opencann against onnxruntime (the fastest peer here) and torch eager.

Five models are built here (opencann.zoo: MLP 1024 wide batch 64, ResNet-18-shaped CNN at 224x224,
BERT-base, GPT-2 small and the real MiniLM at sequence 128), exported to ONNX once, and each engine
runs the same file with the same thread count. Every (model, engine) pair runs in its own process
(onnxruntime's spinning worker threads would slow whatever ran next), in alternating rounds; the
best median of the rounds counts. Peak memory is the process's peak RSS above its RSS before the
model was loaded. Outputs are compared with onnxruntime's, relative to the output scale.

    python bench/models.py [--models mlp,cnn] [--runs 20] [--rounds 2] [--backend cpu] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ENGINES = ("opencann", "onnxruntime", "torch")
BATCH = {"mlp": 64, "cnn": 1, "bert": 1, "gpt2": 1, "minilm": 1}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(model: str, engine: str, runs: int, threads: int, backend: str, out_path: str) -> dict:
    """Runs in a child process: load the model on one engine, time `runs` runs after warm-up."""
    import resource

    from opencann import zoo

    path = str(zoo.export(model))
    feeds = zoo.example_inputs(model, batch=BATCH[model])
    if engine == "onnxruntime":
        import onnxruntime as ort

        base = _rss_mb()
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]

        def run():
            return dict(zip(names, sess.run(None, feeds)))
    elif engine == "opencann":
        import opencann

        base = _rss_mb()
        m = opencann.compile(path, backend=backend)

        def run():
            return m.run(feeds)
    else:
        import torch

        torch.set_num_threads(threads)
        if model in ("bert", "gpt2", "minilm"):
            import transformers  # noqa: F401 - imported before the baseline, like the other engines' libraries
        base = _rss_mb()
        module = zoo.torch_module(model)
        args = [torch.from_numpy(feeds[k]) for k in feeds]
        names = zoo._OUTPUT_NAMES[model]

        def run():
            with torch.inference_mode():
                out = module(*args)
            out = out if isinstance(out, tuple) else (out,)
            return {n: o.numpy() for n, o in zip(names, out)}

    outputs = run()
    for _ in range(2):
        run()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        run()
        times.append(1000 * (time.perf_counter() - t))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.savez(out_path, **{k.replace("/", "_"): np.asarray(v) for k, v in outputs.items()})
    return {"median_ms": statistics.median(times), "min_ms": min(times), "peak_mb": peak - base}


def _child(args) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    res = worker(args.model, args.engine, args.runs, args.threads, args.backend, args.out)
    print(json.dumps(res))
    return 0


def _run_child(model, engine, runs, threads, backend, out) -> dict | None:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    cmd = [sys.executable, __file__, "--child", "--model", model, "--engine", engine, "--runs", str(runs),
           "--threads", str(threads), "--backend", backend, "--out", out]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if r.returncode != 0:
        print(f"  {model}/{engine}: failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def _scaled_diff(a: dict, b: dict) -> float:
    worst = 0.0
    for k in b:
        x, y = np.asarray(a[k], np.float64), np.asarray(b[k], np.float64)
        worst = max(worst, float(np.max(np.abs(x - y), initial=0) / max(np.max(np.abs(y), initial=0), 1e-6)))
    return worst


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="mlp,cnn,bert,gpt2,minilm")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--backend", default=os.environ.get("OPENCANN_BACKEND", "cpu"),
                   help="opencann backend to measure (default cpu)")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--engine", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return _child(args)

    from opencann.model import BACKENDS

    if args.backend not in BACKENDS:
        print(f"backend {args.backend!r} cannot compile models yet; measuring 'ref' instead")
        args.backend = "ref"
    from opencann import zoo

    engines = args.engines.split(",")
    rows = []
    tmp = tempfile.mkdtemp(prefix="opencann-bench-")
    print(f"{args.threads} threads, {args.runs} runs x {args.rounds} alternating rounds per engine; "
          f"opencann backend {args.backend}\n")
    print(f"{'model':8s} {'engine':12s} {'median ms':>10s} {'min ms':>9s} {'vs ORT':>7s} {'peak MB':>8s} {'max diff':>9s}")
    for model in args.models.split(","):
        zoo.export(model)  # once, outside the timings
        best: dict[str, dict] = {}
        for _ in range(args.rounds):
            for engine in engines:
                res = _run_child(model, engine, args.runs, args.threads, args.backend,
                                 os.path.join(tmp, f"{model}-{engine}.npz"))
                if res is not None and (engine not in best or res["median_ms"] < best[engine]["median_ms"]):
                    best[engine] = res
        ref = dict(np.load(os.path.join(tmp, f"{model}-onnxruntime.npz"))) if "onnxruntime" in best else None
        for engine in engines:
            if engine not in best:
                continue
            r = best[engine]
            out = dict(np.load(os.path.join(tmp, f"{model}-{engine}.npz")))
            diff = _scaled_diff(out, ref) if ref is not None else float("nan")
            ratio = r["median_ms"] / best["onnxruntime"]["median_ms"] if "onnxruntime" in best else float("nan")
            row = {"model": model, "engine": engine, "backend": args.backend if engine == "opencann" else None,
                   "median_ms": round(r["median_ms"], 3), "min_ms": round(r["min_ms"], 3),
                   "ratio_vs_onnxruntime": round(ratio, 3), "peak_mb": round(r["peak_mb"], 1),
                   "max_diff": diff}
            rows.append(row)
            print(f"{model:8s} {engine:12s} {r['median_ms']:10.2f} {r['min_ms']:9.2f} {ratio:6.2f}x "
                  f"{r['peak_mb']:8.1f} {diff:9.1e}")
        print()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
