"""The `opencann` command line.

    opencann info [--ops]                         version, backends, devices, C compiler, ops
    opencann compile MODEL -o OUT.ocm             compile ahead of time into one file
    opencann run MODEL --input NAME=FILE.npy ...  run a model (.onnx or .ocm) and summarise its outputs
    opencann profile MODEL [--runs N]             trace, op summary and roofline of a model
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time

import numpy as np

from . import __version__
from .errors import OpenCannError


def _c_compiler() -> str:
    cc = os.environ.get("CC") or next((c for c in ("gcc", "clang", "cc") if shutil.which(c)), None)
    if not cc or not shutil.which(cc.split()[0]):
        return "none found (the cpu backend needs gcc or clang on PATH, or CC set)"
    try:
        first = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=10).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        first = "version unknown"
    return f"{shutil.which(cc.split()[0])} ({first})"


def _backends() -> list[str]:
    try:
        from . import backends

        return list(backends.available())
    except Exception:  # noqa: BLE001 - the backend layer is optional for `info`
        return ["ref"]


def cmd_info(args) -> int:
    import onnx

    from . import ops
    from .frontends.onnx import MAX_OPSET
    from .model import BACKENDS

    print(f"opencann {__version__}")
    print(f"python   {platform.python_version()} ({sys.executable})")
    print(f"numpy    {np.__version__}, onnx {onnx.__version__} (ONNX opsets up to {MAX_OPSET})")
    print(f"machine  {platform.machine()}, {os.cpu_count()} CPU(s)")
    print(f"backends {', '.join(_backends())} (compile models for: {', '.join(BACKENDS)})")
    print("devices  cpu:0 (host)")
    print(f"C compiler {_c_compiler()}")
    defs = ops.all_ops()
    fams: dict[str, int] = {}
    for d in defs:
        fams[d.family] = fams.get(d.family, 0) + 1
    print(f"ops      {len(defs)} (" + ", ".join(f"{k} {v}" for k, v in sorted(fams.items())) + ")")
    if args.ops:
        for d in defs:
            print(f"  {d.qualified_name:32s} {d.family:12s} since opset {d.since}")
    return 0


def _summary(x) -> str:
    if isinstance(x, list):
        return f"sequence of {len(x)}"
    if x is None:
        return "empty optional"
    a = np.asarray(x)
    if a.size == 0 or a.dtype == object:
        return ""
    f = a.astype(np.float64)
    return f"min {f.min():.6g}  max {f.max():.6g}  mean {f.mean():.6g}"


def _load_inputs(specs) -> dict:
    feeds = {}
    for spec in specs or []:
        if "=" not in spec:
            raise OpenCannError(f"--input {spec!r}: write it as NAME=FILE.npy")
        name, path = spec.split("=", 1)
        if not os.path.exists(path):
            raise OpenCannError(f"--input {name}: file {path!r} does not exist")
        try:
            feeds[name] = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise OpenCannError(f"--input {name}: {path!r} is not a .npy array file ({e})") from None
    return feeds


def _random_inputs(model, given: dict, dims: list[str] | None) -> dict:
    """Random feeds for inputs not given, symbolic dims bound by --dim NAME=VALUE (default 1)."""
    from .ir import TensorType

    bind = {}
    for spec in dims or []:
        k, _, v = spec.partition("=")
        if not v.isdigit():
            raise OpenCannError(f"--dim {spec!r}: write it as NAME=INTEGER, e.g. --dim seq=128")
        bind[k] = int(v)
    rng = np.random.default_rng(0)
    feeds = dict(given)
    for v in model.graph.inputs:
        if v.name in feeds:
            continue
        t = v.type
        if not isinstance(t, TensorType) or t.shape is None or t.dtype.kind == "string":
            raise OpenCannError(f"input {v.name!r} ({t!r}) cannot be made up; pass it with --input")
        shape = [d if isinstance(d, int) else bind.get(d, 1) for d in t.shape]
        if t.dtype.is_float:
            feeds[v.name] = rng.standard_normal(shape).astype(t.dtype.np)
        elif t.dtype.kind == "bool":
            feeds[v.name] = rng.random(shape) < 0.5
        else:
            feeds[v.name] = rng.integers(0, 2, shape).astype(t.dtype.np)
    return feeds


def cmd_profile(args) -> int:
    from . import profiler
    from .model import compile

    model = compile(args.model, backend=args.backend)
    feeds = _random_inputs(model, _load_inputs(args.input), args.dim)
    model.run(feeds)  # warm-up, outside the profile
    with profiler.profile() as prof:
        for _ in range(args.runs):
            model.run(feeds)
    prof.write_trace(args.trace)
    prof.write_summary(args.summary)
    print(prof.table(args.top))
    print(f"trace   {args.trace} (open in https://ui.perfetto.dev or chrome://tracing)")
    print(f"summary {args.summary}")
    return 0


def _shapes(specs) -> dict:
    out = {}
    for spec in specs or []:
        name, _, dims = spec.partition("=")
        try:
            out[name] = tuple(int(d) for d in dims.split(","))
        except ValueError:
            raise OpenCannError(f"--input-shape {spec!r}: write it as NAME=D1,D2,... e.g. ids=1,128") from None
    return out


def cmd_compile(args) -> int:
    from .model import compile

    t0 = time.perf_counter()
    model = compile(args.model, backend=args.backend, input_shapes=_shapes(args.input_shape), optimize=True)
    model.save(args.output)
    size = os.path.getsize(args.output)
    ins = ", ".join(f"{v.name}: {v.type!r}" for v in model.graph.inputs)
    print(f"compiled {args.model} for {model.backend} in {1000 * (time.perf_counter() - t0):.0f} ms: "
          f"{len(model.graph.nodes)} nodes, inputs ({ins})")
    from .engine import ocm

    n = ocm.read_header(args.output).get("kernel_count", 0)
    print(f"wrote {args.output} ({size / 2**20:.1f} MiB, {n} kernel binar{'y' if n == 1 else 'ies'})")
    if args.report:
        print(model.report())
    return 0


def cmd_run(args) -> int:
    from .model import compile

    feeds = _load_inputs(args.input)
    t0 = time.perf_counter()
    model = compile(args.model, backend=args.backend)
    t1 = time.perf_counter()
    outputs = model.run(feeds)
    t2 = time.perf_counter()
    for name, x in outputs.items():
        shape = f"{list(np.shape(x))}" if not isinstance(x, list) and x is not None else "-"
        dtype = str(np.asarray(x).dtype) if not isinstance(x, list) and x is not None else "-"
        print(f"{name}: shape {shape} dtype {dtype}  {_summary(x)}")
        if args.output_dir:
            os.makedirs(args.output_dir, exist_ok=True)
            if isinstance(x, np.ndarray):
                np.save(os.path.join(args.output_dir, f"{name.replace('/', '_')}.npy"), x)
    print(f"compile {1000 * (t1 - t0):.1f} ms, run {1000 * (t2 - t1):.1f} ms (backend {model.backend})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="opencann", description="opencann: an open compute architecture for neural networks.")
    p.add_argument("--version", action="version", version=f"opencann {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="version, backends, devices, the C compiler found, and ops")
    info.add_argument("--ops", action="store_true", help="also list every supported op")
    info.set_defaults(func=cmd_info)
    comp = sub.add_parser("compile", help="compile a model ahead of time into an .ocm file")
    comp.add_argument("model", help="an .onnx file")
    comp.add_argument("-o", "--output", required=True, help="the .ocm file to write")
    comp.add_argument("--backend", default=None, help="target backend (default: $OPENCANN_BACKEND, else cpu if a C compiler exists, else ref)")
    comp.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...", help="pin an input's shape")
    comp.add_argument("--report", action="store_true",
                      help="print the placement report: fusion groups, and nodes that fall back to ref and why")
    comp.set_defaults(func=cmd_compile)
    run = sub.add_parser("run", help="run a model on .npy inputs and summarise its outputs")
    run.add_argument("model", help="an .onnx or .ocm file")
    run.add_argument("--input", "-i", action="append", metavar="NAME=FILE.npy", help="an input (repeat for each)")
    run.add_argument("--output-dir", "-o", metavar="DIR", help="also save each output as DIR/NAME.npy")
    run.add_argument("--backend", default=None, help="backend to run on (default: $OPENCANN_BACKEND, else cpu if a C compiler exists, else ref)")
    run.set_defaults(func=cmd_run)
    prof = sub.add_parser("profile", help="profile a model: Chrome trace, op summary CSV, top-ops table")
    prof.add_argument("model", help="an .onnx file")
    prof.add_argument("--runs", type=int, default=10, help="profiled runs after one warm-up (default 10)")
    prof.add_argument("--input", "-i", action="append", metavar="NAME=FILE.npy", help="an input (others are random)")
    prof.add_argument("--dim", action="append", metavar="NAME=VALUE", help="value of a symbolic dim for random inputs")
    prof.add_argument("--trace", default="opencann_trace.json", help="Chrome/Perfetto trace file to write")
    prof.add_argument("--summary", default="opencann_ops.csv", help="op summary CSV to write")
    prof.add_argument("--top", type=int, default=15, help="rows of the summary to print")
    prof.add_argument("--backend", default=None, help="backend to run on (default: $OPENCANN_BACKEND, else cpu if a C compiler exists, else ref)")
    prof.set_defaults(func=cmd_profile)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except OpenCannError as e:
        print(f"opencann: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
