"""The `cpu` executor: runs a placed graph as a precomputed list of steps over numbered slots.

Every value of the graph gets a slot in a list; constants are put in once. A step is
`(fn, input slots, output slots, slots to free)`, so running one costs a call and a few list
reads: no name lookups. Values are dropped after their last reader, so intermediates live no
longer than the memory plan says (`memory_plan()` gives the arena a buffer-writing schedule would
need per concrete shape binding). Steps record profiler slices (kernel name, FLOPs, bytes) when
a profile is active.

    >>> ex = CpuExecutor(graph, "model")          # doctest: +SKIP
    >>> ex.run({"x": x})["y"]                     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from typing import Any

import numpy as np

from .. import profiler
from ..errors import ExecutionError
from ..ir import Graph, TensorType
from ..ops import context
from ..runtime.host import keep_freed_host_memory
from . import cost
from .interpreter import Interpreter, _describe_inputs, bind_ops
from .memory import MemoryPlan, lifetimes, plan_memory
from .passes.cse import NONDETERMINISTIC
from .placement import Placement, Step, place

__all__ = ["CpuExecutor"]


def _captured(node) -> list[int]:
    """Ids of the values a node's bodies read (outer values among them)."""
    out = []
    for g in node.subgraphs():
        for n in g.nodes:
            out += [id(v) for v in n.inputs if v is not None]
            out += _captured(n)
        out += [id(v) for v in g.outputs]
    return out


MEMO_MAX_ELEMENTS = 64  # "small integer tensors": shapes, indices and axes of shape arithmetic
MEMO_MAX_ENTRIES = 8


def _reshape_to_constant(n, model: str):
    """A Reshape to a constant shape (no 0 that copies a dim, at most one -1), as one
    `np.reshape` (a view of a contiguous input, a copy otherwise, as the reference does): a
    training graph has hundreds, and the reference's checks cost tens of microseconds each."""
    if n.op != "Reshape" or n.domain not in ("", "ai.onnx") or len(n.inputs) != 2 or \
            n.inputs[1] is None or n.inputs[1].const is None or len(n.outputs) != 1:
        return None
    target = np.asarray(n.inputs[1].const)
    if target.dtype.kind not in "iu" or target.ndim != 1 or (target == 0).any() or \
            (target < -1).any() or (target == -1).sum() > 1:
        return None
    shape = tuple(int(t) for t in target)

    def fn(x, _shape):
        try:
            return (np.reshape(x, shape),)
        except ValueError as e:
            raise ExecutionError(f"model {model!r}: {n.describe()} failed on inputs "
                                 f"({_describe_inputs((x, _shape))}): {e}") from e
    return fn


def _memoized(fn):
    """`fn` with its results remembered for small integer inputs. Exported models compute shapes
    at run time (Shape -> Gather -> Unsqueeze -> Concat -> Reshape): the same few values every
    run, dozens of reference calls. A step whose every input is a small integer (or bool) array
    returns its outputs of the last few distinct inputs, read-only, without calling the op."""
    memo: dict = {}

    def run(*args):
        key = []
        for a in args:
            if a is None:
                key.append(None)
            elif (type(a) is np.ndarray and a.dtype.kind in "iub"
                  and a.size <= MEMO_MAX_ELEMENTS):
                key.append((a.dtype.char, a.shape, a.tobytes()))
            else:
                return fn(*args)
        key = tuple(key)
        got = memo.get(key)
        if got is None:
            got = fn(*args)
            if not all(type(x) is np.ndarray for x in got):
                return got
            for x in got:
                x.flags.writeable = False
            if len(memo) >= MEMO_MAX_ENTRIES:
                memo.pop(next(iter(memo)))
            memo[key] = got
        return got
    return run


def _pure(n) -> bool:
    """Whether node `n`'s outputs are a function of its inputs alone (memoizable, skippable)."""
    return not n.subgraphs() and n.op not in NONDETERMINISTIC and n.domain in ("", "ai.onnx")


def _stand_in(x):
    """An array's shape, dtype and size without its data (small arrays, which may be shapes or
    axes a cost is read from, are copied); anything else as it is."""
    if isinstance(x, np.ndarray) and x.size > 64:
        return np.broadcast_to(np.zeros((), x.dtype), x.shape)
    return x.copy() if isinstance(x, np.ndarray) else x


def _stand_ins(xs) -> list:
    return [_stand_in(x) for x in xs]


class _StaleShapes(Exception):
    """A Shape/Size step of a planned run gave other values than when the plan was made."""


def _checked_root(fn, want):
    def run(*args):
        got = fn(*args)
        if len(got) != len(want) or not all(np.array_equal(g, w) for g, w in zip(got, want)):
            raise _StaleShapes
        return got
    return run


class CpuExecutor:
    """Executes `graph` with cpu kernels where placed, op references elsewhere."""

    def __init__(self, graph: Graph, model_name: str = "model", fuse: bool = True):
        keep_freed_host_memory()
        self.graph = graph
        self.model_name = model_name
        self.bound = bind_ops(graph, model_name)
        self.placement: Placement = place(graph, self.bound, model_name, fuse)
        self._interp = None
        self._running = threading.local()  # this thread's slots, for bodies of If/Loop/Scan
        slot: dict[int, int] = {}
        self._slot = slot

        def slot_of(v):
            s = slot.get(id(v))
            if s is None:
                s = slot[id(v)] = len(slot)
            return s

        self._inputs = [(v.name, slot_of(v)) for v in graph.inputs]
        consts = [(slot_of(c), c.const) for c in graph.constants]
        keep = {id(v) for v in graph.outputs} | {id(v) for v in graph.inputs} | \
            {id(c) for c in graph.constants}
        plan_steps = []
        for st in self.placement.steps:
            reads = [id(v) for v in st.inputs if v is not None]
            for n in st.nodes:  # bodies read outer values by name: they live until the node ran
                reads += _captured(n)
            plan_steps.append((reads, [id(v) for v in st.outputs if v is not None]))
        life = lifetimes(plan_steps, keep)
        last_use: dict[int, list[int]] = {}
        for vid, (_, end) in life.items():
            last_use.setdefault(end, []).append(vid)
        self._steps = []
        for i, st in enumerate(self.placement.steps):
            ins = tuple(-1 if v is None else slot_of(v) for v in st.inputs)
            outs = tuple(slot_of(v) for v in st.outputs)
            frees = tuple(slot[v] for v in last_use.get(i, ()) if v in slot and v not in keep)
            fn = st.fn if st.device == "cpu" else self._ref_fn(st)
            self._steps.append((fn, ins, outs, frees))
        self._outputs = [(v.name, slot_of(v)) for v in graph.outputs]
        # arena candidates: outputs of cpu steps that can write a given buffer, read only by cpu
        # steps (a ref step may return a view of its input, which must not be overwritten)
        readers: dict[int, list[int]] = {}
        for i, (reads, _) in enumerate(plan_steps):
            for r in reads:
                readers.setdefault(r, []).append(i)
        self._arena_slot: list[int | None] = []
        for i, st in enumerate(self.placement.steps):
            v = st.outputs[0] if len(st.outputs) == 1 else None
            ok = (st.device == "cpu" and v is not None and hasattr(st.fn, "into")
                  and id(v) in life and id(v) not in keep
                  and all(self.placement.steps[j].device == "cpu" for j in readers.get(id(v), [])))
            self._arena_slot.append(slot[id(v)] if ok else None)
        self._roots, self._derived = self._shape_steps()
        self._arenas: dict[tuple, tuple] = {}
        self.arena_plan: MemoryPlan | None = None
        self._arena_lock = threading.Lock()
        self._template = [None] * len(slot)
        for s, c in consts:
            self._template[s] = c
        self._life = life

    def _shape_steps(self) -> tuple[set, set]:
        """(roots, derived): the Shape/Size ref steps, and the ref steps computed from nothing but
        their outputs and constants (shape arithmetic, and what it builds: position ids, causal
        masks). For one binding of input shapes a derived step gives the same values every run,
        so a planned run takes them from the first run and skips the steps; the roots still run
        and are compared with that run, and a difference drops the plan (never a wrong result)."""
        made: dict[int, int] = {}  # value id -> index of the step that makes it
        for i, st in enumerate(self.placement.steps):
            for v in st.outputs:
                if v is not None:
                    made[id(v)] = i
        consts = {id(c) for c in self.graph.constants}
        roots: set[int] = set()
        derived: set[int] = set()
        for i, st in enumerate(self.placement.steps):
            if st.device == "cpu" or len(st.nodes) != 1:
                continue
            n = st.nodes[0]
            if not _pure(n):
                continue
            if n.op in ("Shape", "Size"):
                roots.add(i)
                continue
            ins = [v for v in n.inputs if v is not None]
            if ins and all(id(v) in consts or made.get(id(v)) in roots or made.get(id(v)) in derived
                           for v in ins):
                derived.add(i)
        return roots, derived

    # --- ref steps ----------------------------------------------------------------------------
    def _ref_fn(self, st: Step):
        fast = _reshape_to_constant(st.nodes[0], self.model_name)
        if fast is not None:
            return fast
        fn = self._ref_call(st)
        return _memoized(fn) if _pure(st.nodes[0]) else fn

    def _ref_call(self, st: Step):
        n = st.nodes[0]
        d, attrs = self.bound[id(n)]
        n_args = len(n.inputs)
        pad = 0
        while n_args + pad < len(d.inputs) and not d.inputs[-1].variadic:
            pad += 1
        tensor_out = [isinstance(v.type, TensorType) for v in n.outputs]
        model, ref = self.model_name, d.reference
        n_out = len(n.outputs)

        def fn(*args):
            if pad:
                args = args + (None,) * pad
            tok = context.set_node(n)
            try:
                result = ref(*args, **attrs)
            except Exception as e:
                raise ExecutionError(f"model {model!r}: {n.describe()} failed on inputs "
                                     f"({_describe_inputs(args)}): {type(e).__name__}: {e}") from e
            finally:
                context.reset_node(tok)
            outs = result if isinstance(result, tuple) else (result,)
            if len(outs) < n_out:
                raise ExecutionError(f"model {model!r}: {n.describe()} reference returned "
                                     f"{len(outs)} outputs, the node has {n_out}")
            return tuple(np.asarray(x) if t else x for x, t in zip(outs, tensor_out))

        if n.subgraphs():
            return self._subgraph_fn(st, fn)
        return fn

    def _subgraph_fn(self, st: Step, fn):
        """A node with bodies (If/Loop/Scan): its bodies read outer values by identity, so they
        run through the interpreter over a dict view of the slots."""
        if self._interp is None:
            self._interp = Interpreter(self.graph, self.model_name)
        interp, slots, env_ref = self._interp, self._slot, self

        def run(*args):
            env = env_ref._running.env
            outer = {vid: env[s] for vid, s in slots.items() if env[s] is not None}
            with context.graph_runner(interp.subgraph_runner(outer)):
                return fn(*args)
        return run

    # --- running ------------------------------------------------------------------------------
    def run(self, feeds: dict[str, Any]) -> dict[str, Any]:
        # a run allocates many small containers: the cyclic collector would walk the whole
        # compiled model between its steps (3-5% of MiniLM's time); it runs after instead
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            return self._run(feeds)
        finally:
            if paused:
                gc.enable()

    def _env(self, feeds: dict[str, Any]) -> list:
        """The slots at the start of a run: constants and inputs."""
        env = self._template.copy()
        env.append(None)  # slot -1: an omitted optional input
        for name, s in self._inputs:
            env[s] = feeds[name]
        return env

    def _run(self, feeds: dict[str, Any]) -> dict[str, Any]:
        env = self._running.env = self._env(feeds)
        prof = profiler.active()
        if prof is not None:
            self._run_profiled(env, prof)
        elif not self._arena_lock.acquire(blocking=False):  # another thread holds the arena
            self._run_plain(env)
        else:
            try:
                # the plan's key; `into` checks each buffer's shape, so a key that misses a
                # change (a sequence input) costs a fresh allocation, never a wrong result
                key = tuple([getattr(feeds[name], "shape", None) for name, _ in self._inputs])
                plan = self._arenas.get(key)
                if plan is None:
                    self._run_plain(env, sizes := {}, seen := {})
                    self._arenas[key] = self._make_plan(sizes, seen)
                else:
                    try:
                        self._run_arena(env, *plan)
                    except _StaleShapes:  # an intermediate's shape is not what the plan saw
                        del self._arenas[key]
                        env[:] = self._env(feeds)
                        self._run_plain(env)
            finally:
                self._arena_lock.release()
        self._running.env = None
        return {name: env[s] for name, s in self._outputs}

    def _run_plain(self, env, sizes: dict | None = None, seen: dict | None = None) -> None:
        """Every step in order. With `sizes` and `seen`, also note the arena candidates' output
        shapes and the outputs of the shape steps (roots and derived), for `_make_plan`."""
        shape_steps = self._roots | self._derived if seen is not None else ()
        for i, (fn, ins, outs, frees) in enumerate(self._steps):
            args = [env[j] for j in ins]
            try:
                res = fn(*args)
            except Exception as e:
                raise self._step_error(i, args, e) from e
            for s, x in zip(outs, res):
                env[s] = x
            if sizes is not None and self._arena_slot[i] is not None:
                x = res[0]
                if isinstance(x, np.ndarray) and x.dtype == np.float32:
                    sizes[i] = x.shape
            if i in shape_steps:
                seen[i] = res
            for s in frees:
                env[s] = None

    def _make_plan(self, sizes: dict, seen: dict) -> tuple:
        """(steps, buffers, preset values) of the planned runs of one binding of input shapes."""
        bufs = self._make_arena(sizes)
        outputs = {s for _, s in self._outputs}
        preset, skip = [], set()
        for i in sorted(self._derived):
            res, outs = seen.get(i), self._steps[i][2]
            # arrays only (not sequences), and none handed to the caller (they are shared)
            if res is None or not all(type(x) is np.ndarray for x in res) or outputs & set(outs):
                continue
            skip.add(i)
            for s, x in zip(outs, res):
                x.flags.writeable = False  # shared by every run of this binding
                preset.append((s, x))
        steps = []
        for i, (fn, ins, outs, frees) in enumerate(self._steps):
            if i in skip:
                continue
            if i in self._roots:
                fn = _checked_root(fn, seen[i])
            steps.append((i, fn, ins, outs, frees, bufs[i]))
        return steps, preset

    def _run_arena(self, env, steps, preset) -> None:
        for s, x in preset:
            env[s] = x
        for i, fn, ins, outs, frees, buf in steps:
            args = [env[j] for j in ins]
            try:
                if buf is not None and fn.into(buf, *args):
                    env[outs[0]] = buf
                    res = None
                else:
                    res = fn(*args)
            except _StaleShapes:
                raise
            except Exception as e:
                raise self._step_error(i, args, e) from e
            if res is not None:
                for s, x in zip(outs, res):
                    env[s] = x
            for s in frees:
                env[s] = None

    def _step_error(self, i: int, args, e: Exception) -> Exception:
        if isinstance(e, ExecutionError):  # a reference's failure, already named
            return e
        st = self.placement.steps[i]
        nodes = ", ".join(n.describe() for n in st.nodes)
        return ExecutionError(f"model {self.model_name!r}: cpu kernel {st.kernel} for {nodes} failed on "
                              f"inputs ({_describe_inputs(args)}): {type(e).__name__}: {e}. Compile "
                              f"with backend='ref' to run the references instead")

    def _make_arena(self, shapes: dict[int, tuple]) -> list:
        """Buffers in one arena for the steps that can write them, for the shapes of one run."""
        life = self._life
        by_slot = {s: vid for vid, s in self._slot.items()}
        items = []
        for i, shape in shapes.items():
            vid = by_slot[self._arena_slot[i]]
            nbytes = 4 * int(np.prod(shape, dtype=np.int64))
            items.append((i, nbytes, *life[vid]))
        plan = plan_memory(items)
        self.arena_plan = plan
        arena = np.empty(max(plan.arena_bytes, 1), np.uint8)
        bufs: list = [None] * len(self._steps)
        for i, shape in shapes.items():
            off, n = plan.offsets[i], plan.sizes[i]
            if n:
                bufs[i] = arena[off:off + n].view(np.float32).reshape(shape)
        return bufs

    def _run_profiled(self, env, prof) -> None:
        """Run the steps, timing each; their costs are worked out after the run, from shape-only
        stand-ins of the arrays (Python work between launches would let the kernels' threads go
        to sleep and charge their waking to the next step)."""
        done = []
        for st, (fn, ins, outs, frees) in zip(self.placement.steps, self._steps):
            args = [env[i] for i in ins]
            t0 = time.perf_counter()
            res = fn(*args)
            dt = time.perf_counter() - t0
            for s, x in zip(outs, res):
                env[s] = x
            done.append((st, t0, dt, _stand_ins(args), _stand_ins(res), {
                id(v): _stand_in(env[self._slot[id(v)]]) for n in st.nodes
                for v in (*n.inputs, *n.outputs)
                if v is not None and id(v) in self._slot and env[self._slot[id(v)]] is not None}))
            for s in frees:
                env[s] = None
        for st, t0, dt, args, arrays, seen in done:
            arrays = [x for x in arrays if isinstance(x, np.ndarray)]
            flops = 0.0
            for n in st.nodes:
                _, attrs = self.bound[id(n)]
                nargs = [seen.get(id(v)) if v is not None else None for v in n.inputs]
                nouts = [seen[id(v)] for v in n.outputs if id(v) in seen] or arrays
                # a fused group's intermediates are gone: count the nodes whose inputs remain
                if all(isinstance(a, np.ndarray) for a, v in zip(nargs, n.inputs) if v is not None):
                    with contextlib.suppress(Exception):
                        flops += cost.flops(n.op, attrs, nargs, nouts)
            kernel = st.kernel if st.device == "cpu" else f"ref:{st.nodes[0].op}"
            prof.add(profiler.Slice(st.name, st.op, kernel, t0, dt, flops=flops,
                                    bytes=cost.nbytes(args) + cost.nbytes(arrays)))

    def warm_variants(self) -> int:
        """Compile the kernels a step may pick from its data rather than its shapes (attention's
        mask forms) for the shapes run so far; returns the steps warmed."""
        n = 0
        for st in self.placement.steps:
            variants = getattr(st.fn, "variants", None) if st.device == "cpu" else None
            if variants is not None:
                variants()
                n += 1
        return n

    def report(self) -> str:
        """The placement report, plus the arena of the shapes run so far."""
        text = self.placement.report()
        n = sum(1 for s in self._arena_slot if s is not None)
        if self.arena_plan is not None:
            text += (f"\narena ({n} steps can write planned buffers; last shapes run): "
                     f"{self.arena_plan.summary()}")
        else:
            text += f"\narena: {n} steps can write planned buffers (planned on the first run of each shape)"
        return text

    # --- memory -------------------------------------------------------------------------------
    def memory_plan(self, feeds: dict[str, Any]) -> MemoryPlan:
        """The arena plan of this schedule's intermediates for the shapes of `feeds` (runs the
        model once to learn every intermediate's size)."""
        sizes: dict[int, int] = {}
        env_sizes = {}
        env = self._running.env = self._env(feeds)
        for fn, ins, outs, _ in self._steps:
            res = fn(*[env[i] for i in ins])
            for s, x in zip(outs, res):
                env[s] = x
                if isinstance(x, np.ndarray):
                    env_sizes[s] = x.nbytes
        by_slot = {s: vid for vid, s in self._slot.items()}
        for s, nb in env_sizes.items():
            vid = by_slot[s]
            if vid in self._life:
                sizes[vid] = nb
        return plan_memory((vid, sizes[vid], *self._life[vid]) for vid in sizes)
