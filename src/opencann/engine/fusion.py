"""Fusion for the `cpu` backend: groups of nodes that run as one kernel.

- GEMM / convolution epilogues: a MatMul or Gemm followed by its bias Add, an activation (Relu,
  or a run of elementwise nodes that computes GELU or SiLU, recognised numerically so every
  exporter's spelling of `x * 0.5 * (1 + erf(x / sqrt 2))` matches) and a residual Add run as one
  launch of the GEMM kernel; a Conv absorbs a following Relu.
- Elementwise chains: a node whose output feeds exactly one elementwise node joins it, up to
  `MAX_INPUTS` distinct tensor inputs; the chain runs as one generated kernel
  (`fused_elementwise.ElementwiseProgram`). Where (a bool condition selecting between float32
  values, e.g. a causal mask) is one of the chain's ops.
- Elementwise trees: where a value is read by several nodes (a training forward keeps its
  intermediates for the backward), the elementwise nodes after it that need nothing else computed
  later join it, and the group stores every value read outside it in one pass (`tree_group`).
- Training graphs: FlashAttentionGrad takes the Adds that sum its dK and dV with the key/value
  cache's gradients (its kernel starts from them) and writes dQ, dK, dV side by side when they
  reach one Concat through views only; LayerNormalizationGrad takes the Add of the skip path's
  gradient (added as dX is written).
- Attention: MatMul(Q, Kᵀ) -> scale -> mask add -> Softmax -> MatMul(·, V) runs as the library's
  attention kernel. The additive mask is looked at once per mask array: a key-padding mask becomes
  the kernel's boolean mask, the causal mask its causal flag (key blocks past the diagonal are
  skipped), and any other mask that broadcasts to the scores is added inside the kernel.

Groups only absorb values nobody else reads, so a fused graph computes what the unfused one does.

    >>> groups = find_groups(graph, bound)          # doctest: +SKIP
    >>> [g.describe() for g in groups][:1]          # doctest: +SKIP
    ['gemm+bias+gelu: /l0/dense/MatMul, /l0/dense/Add, ...']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import dtypes
from ..ir import Graph, Node, TensorType, Value
from ..ops.lowering import Lowered, const_of, is_f32, lower, rank
from ..ops.math.lower_cpu import gemm_call, matmul_plan
from ..ops.nn.lower_cpu import conv_call, conv_plan, layer_norm_grad_lowering
from ..ops.registry import OPENCANN_DOMAIN
from ..ops.transformer.lower_cpu import flash_attention_grad_lowering
from .fused_elementwise import MAX_EXTRA, MAX_INPUTS, ElementwiseProgram, evaluate_numpy

__all__ = ["EW_OPS", "FusionGroup", "elementwise_program", "find_groups"]

# ONNX op -> (program op, arity)
EW_OPS = {"Add": ("add", 2), "Sub": ("sub", 2), "Mul": ("mul", 2), "Div": ("div", 2),
          "Pow": ("pow", 2), "Max": ("max", 2), "Min": ("min", 2), "Relu": ("relu", 1),
          "Erf": ("erf", 1), "Tanh": ("tanh", 1), "Sigmoid": ("sigmoid", 1), "Sqrt": ("sqrt", 1),
          "Exp": ("exp", 1), "Log": ("log", 1), "Neg": ("neg", 1), "Abs": ("abs", 1),
          "Reciprocal": ("reciprocal", 1), "Floor": ("floor", 1), "Ceil": ("ceil", 1),
          "Where": ("where", 3)}

# dense where activations bend, sparse far out (so a clamp such as ReLU6 never passes for ReLU)
_SAMPLES = np.concatenate([np.linspace(-6.0, 6.0, 241),
                           [s * 10.0 ** e for s in (-1, 1) for e in (1, 2, 3, 4, 6)]])
_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "gelu": lambda x: 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0))),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
}


@dataclass
class FusionGroup:
    """Nodes that run as one step: `lowered` computes `output` (and `extra`, values of the group
    that others read too) from `lowered.inputs`. The step runs where the group's last node is,
    or its first with `at_first` (every input of the group is computed before it)."""

    kind: str
    nodes: list[Node]
    lowered: Lowered
    output: Value
    parts: list[str] = field(default_factory=list)
    extra: list[Value] = field(default_factory=list)
    at_first: bool = False

    def describe(self) -> str:
        first = self.nodes[0].name or self.nodes[0].outputs[0].name
        more = f" + {len(self.nodes) - 1} node(s)" if len(self.nodes) > 1 else ""
        return f"{'+'.join([self.kind, *self.parts])} ({self.lowered.kernel}): {first}{more}"


def _scalar_const(v: Value | None, out_rank) -> float | None:
    """The value of a float32 single-element constant that cannot change the output's rank."""
    c = const_of(v)
    if c is None or not is_f32(v) or c.size != 1:
        return None
    if c.ndim and (out_rank is None or c.ndim > out_rank):
        return None
    return float(c.reshape(()))


def _is_bool(v: Value) -> bool:
    return isinstance(v.type, TensorType) and v.type.dtype == dtypes.bool_


def is_elementwise(n: Node) -> bool:
    spec = EW_OPS.get(n.op)
    if spec is None or n.domain not in ("", "ai.onnx") or len(n.outputs) != 1:
        return False
    # before opset 7 binary ops broadcast by `broadcast`/`axis` attributes, not NumPy's rules
    if any(k != "consumed_inputs" for k in n.attrs):
        return False
    ins = [v for v in n.inputs if v is not None]
    if len(ins) != spec[1] or not is_f32(n.outputs[0]):
        return False
    if n.op == "Where":  # a bool condition selecting between float32 values
        return _is_bool(ins[0]) and is_f32(ins[1]) and is_f32(ins[2])
    return all(is_f32(v) for v in ins)


def _max_rank(vs: list[Value]):
    """The largest rank among `vs`, None when one is unknown."""
    ranks = [rank(v) for v in vs]
    return None if any(r is None for r in ranks) else max(ranks)


def elementwise_program(nodes: list[Node], fixed: dict[int, int] | None = None,
                        where: dict[int, int] | None = None):
    """(program, external inputs) computing the last node's output from the chain `nodes`.
    `fixed` maps value ids to input indices decided by the caller; `where`, when given, receives
    each value's instruction index (by value id)."""
    prog: list[tuple] = []
    where = {} if where is None else where
    inputs: list[Value] = []
    for vid, k in (fixed or {}).items():
        where[vid] = len(prog)
        prog.append(("in", k))
    consts: dict[float, int] = {}
    for n in nodes:
        op, _ = EW_OPS[n.op]
        out_rank = rank(n.outputs[0])
        args = []
        for v in n.inputs:
            if v is None:
                continue
            i = where.get(id(v))
            if i is None:
                s = _scalar_const(v, out_rank)
                other = [u for u in n.inputs if u is not None and u is not v]
                # a folded constant must not be what gives the output its rank
                if s is not None and (not other or _max_rank(other) == out_rank):
                    i = consts.get(s)
                    if i is None:
                        i = consts[s] = len(prog)
                        prog.append(("c", s))
                else:
                    i = where[id(v)] = len(prog)
                    prog.append(("in", len(inputs) + len(fixed or {})))
                    inputs.append(v)
            args.append(i)
        where[id(n.outputs[0])] = len(prog)
        prog.append((op, *args))
    return tuple(prog), inputs


class _ElementwiseStep:
    """A fused elementwise step: `step(*xs) -> (y,)`, or `step.into(out, *xs)` to write an
    arena buffer (False when `out` does not have the shape these inputs give)."""

    __slots__ = ("k",)

    def __init__(self, program, n_inputs, name):
        self.k = ElementwiseProgram(program, n_inputs, name)

    def __call__(self, *xs):
        return (self.k(*xs),)

    def into(self, out, *xs) -> bool:
        plan = self.k._plans.get(tuple([x.shape for x in xs]))
        if plan is None or plan[0] != out.shape:
            return False
        self.k(*xs, out=out)
        return True


def _ew_call(program, n_inputs, name):
    return _ElementwiseStep(program, n_inputs, name)


class _ElementwiseMultiStep:
    """A fused elementwise step that also stores values of the group others read:
    `step(*xs) -> (y, *extras)`."""

    __slots__ = ("k",)

    def __init__(self, program, n_inputs, name, extra):
        self.k = ElementwiseProgram(program, n_inputs, name, extra)

    def __call__(self, *xs):
        return self.k(*xs)


def _padding_mask(mask: np.ndarray, b: int, skv: int):
    """A key-padding mask (B, Skv) bool equivalent to additive `mask` (B or 1, 1, Sq, Skv), or None
    when the mask is not of that kind: it differs between queries, holds values other than 0 and
    large negatives, or hides every key of some batch (the kernel would give zeros there, softmax
    a uniform average)."""
    if mask.shape[-1] != skv:
        return None
    first = mask[:, :, :1, :]
    if not (mask == first).all():
        return None
    keep = first == 0
    if not (keep | (first <= -1e4)).all():
        return None
    keep = np.broadcast_to(keep.reshape(mask.shape[0], skv), (b, skv))
    if not keep.any(axis=1).all():
        return None
    return np.ascontiguousarray(keep)


def _attention_call(scale: float, has_mask: bool, merged: bool = False, seen: list | None = None):
    from ..ops.math.kernels.gemm import batched_gemm
    from ..ops.nn.kernels.softmax import softmax
    from ..ops.transformer.kernels.attention import attention

    # the last mask array and its kind: the layers of a model share one mask, and the groups
    # of one graph share this list, so the mask is looked at once per run
    seen = [None] if seen is None else seen  # [(mask, kind, form)]: one store, thread-safe

    def unfused(q, k, v, mask):
        b, h, sq, d = q.shape
        s = batched_gemm(q.reshape(-1, sq, d), np.ascontiguousarray(k.swapaxes(-1, -2)).reshape(-1, d, k.shape[2]))
        s = s.reshape(b, h, sq, -1) * np.float32(scale)
        if mask is not None:
            s = s + mask
        p = softmax(s.astype(np.float32, copy=False))
        return batched_gemm(p.reshape(-1, sq, p.shape[-1]), v.reshape(-1, *v.shape[-2:])).reshape(b, h, sq, d)

    shapes: set = set()  # (q, k) shapes run, for `variants`

    def fused(q, k, v, **kw):
        out = None
        if merged:  # the (B, H, S, D) view of a (B, S, H, D) buffer: the Transpose after is free
            b, h, sq, d = q.shape
            out = np.empty((b, sq, h, d), np.float32).transpose(0, 2, 1, 3)
        shapes.add((q.shape, k.shape))
        return (attention(q, k, v, scale=scale, out=out, **kw),)

    def variants():
        """Run the kernel once per mask form (none or lengths, padding, causal, additive) for
        every shape run so far, so that each form's binary exists: which form a run takes
        depends on the mask's values, not its shape (`CompiledModel.save` calls this)."""
        for qs, ks in sorted(shapes):
            q, k = np.zeros(qs, np.float32), np.zeros(ks, np.float32)
            b, skv = qs[0], ks[2]
            attention(q, k, k, scale=scale)
            if has_mask:
                attention(q, k, k, scale=scale, key_padding_mask=np.ones((b, skv), bool))
                attention(q, k, k, scale=scale, additive_mask=np.zeros((b, 1, qs[2], skv), np.float32))
                if qs[2] == skv:
                    attention(q, k, k, scale=scale, causal=True)

    def fn(q, kt, v, mask=None):
        k = kt.swapaxes(-1, -2)
        if q.shape[:2] != k.shape[:2] or k.shape != v.shape or q.ndim != 4:
            return (unfused(q, k, v, mask),)
        if mask is None:
            return fused(q, k, v)
        last = seen[0]
        if last is not None and last[0] is mask:
            _, kind, kpm = last
        else:
            kind, kpm = _mask_kind(mask, q.shape[0], q.shape[1], q.shape[2], k.shape[2])
            seen[0] = (mask, kind, kpm)
        if kind == "padding":
            return fused(q, k, v, key_padding_mask=kpm)
        if kind == "lengths":
            return fused(q, k, v, kv_lens=kpm)
        if kind == "causal":
            return fused(q, k, v, causal=True)
        if kind == "additive":
            return fused(q, k, v, additive_mask=mask)
        return (unfused(q, k, v, mask),)
    fn.variants = variants
    return fn


def _causal(mask: np.ndarray, sq: int, skv: int) -> bool:
    """Whether additive `mask` (.., Sq, Skv) is the causal mask: 0 where key j <= query i, a large
    negative elsewhere, the same for every batch entry and head."""
    if sq != skv or mask.ndim < 2 or mask.shape[-2:] != (sq, skv):
        return False
    m = mask.reshape(-1, sq, skv)
    tri = np.tri(sq, skv, dtype=bool)
    return bool((m[:, tri] == 0).all() and (m[:, ~tri] <= -1e4).all())


def _mask_kind(mask: np.ndarray, b: int, h: int, sq: int, skv: int):
    """How the attention kernel takes additive `mask`: ("lengths", (B,) visible keys),
    ("padding", (B, Skv) bool), ("causal", None), ("additive", None) read as it is, or
    ("unfused", None) for a mask that does not broadcast to the scores (B, H, Sq, Skv)."""
    try:
        np.broadcast_shapes(mask.shape, (b, h, sq, skv))
    except ValueError:
        return "unfused", None
    if mask.ndim > 4 or mask.dtype != np.float32:
        return "unfused", None
    if mask.ndim == 4 and mask.shape[1] == 1 and mask.shape[0] in (1, b):
        kpm = _padding_mask(mask, b, skv)
        if kpm is not None:
            # keys visible up to a length per batch entry (right padding, or none): the kernel's
            # loop bound, which costs nothing, instead of a mask tile per key block
            lens = kpm.sum(axis=1)
            if (kpm == (np.arange(skv)[None, :] < lens[:, None])).all():
                return "lengths", lens.astype(np.int32)
            return "padding", kpm
    if _causal(mask, sq, skv):
        return "causal", None
    return "additive", None


def _consumers(graph: Graph) -> dict[int, list[Node]]:
    cons: dict[int, list[Node]] = {}
    for n in graph.nodes:
        seen = set()
        for v in n.inputs:
            if v is not None and id(v) not in seen:
                seen.add(id(v))
                cons.setdefault(id(v), []).append(n)
    return cons


class _Fuser:
    def __init__(self, graph: Graph, bound: dict, fuse: bool = True):
        self.fuse = fuse
        self.graph = graph
        self.bound = bound
        self.cons = _consumers(graph)
        self.outputs = {id(v) for v in graph.outputs}
        self.index = {id(n): i for i, n in enumerate(graph.nodes)}
        self.taken: set[int] = set()
        self.mask_seen: list = [None]  # shared by this graph's attention groups

    def sole(self, v: Value) -> Node | None:
        """The one node that reads `v`, if `v` is read by one untaken node and is no output."""
        c = self.cons.get(id(v), [])
        if not self.fuse or len(c) != 1 or id(v) in self.outputs or id(c[0]) in self.taken:
            return None
        return c[0]

    # --- GEMM / conv epilogues --------------------------------------------------------------
    def _bias_of(self, add: Node, cur: Value, n_cols) -> np.ndarray | None:
        if add.op != "Add" or not is_elementwise(add):
            return None
        other = [v for v in add.inputs if v is not cur]
        if len(other) != 1:
            return None
        c = const_of(other[0])
        if c is None or not isinstance(n_cols, int) or c.size != n_cols or c.shape[-1] != n_cols:
            return None
        if c.ndim > (rank(cur) or 0):
            return None
        return np.ascontiguousarray(c.reshape(-1), np.float32)

    def _activation(self, cur: Value, anchor_index: int, window: int = 12):
        """(name, nodes, output) when the elementwise nodes right after the anchor compute a known
        activation of `cur` alone, else None."""
        if not self.fuse:
            return None
        first = self.sole(cur)
        if first is not None and first.op == "Relu" and is_elementwise(first):
            return "relu", [first], first.outputs[0]
        vals = {id(cur)}
        region: list[Node] = []
        for n in self.graph.nodes[anchor_index + 1: anchor_index + 1 + window]:
            if id(n) in self.taken or not is_elementwise(n):
                continue
            ins = [v for v in n.inputs if v is not None]
            if not any(id(v) in vals for v in ins):
                continue
            if not all(id(v) in vals or _scalar_const(v, rank(n.outputs[0])) is not None
                       for v in ins):
                break
            region.append(n)
            vals.add(id(n.outputs[0]))
        if not region:
            return None
        inside = {id(n) for n in region}
        escaping = [v for v in [cur] + [n.outputs[0] for n in region]
                    if id(v) in self.outputs or any(id(c) not in inside for c in self.cons.get(id(v), []))]
        if len(escaping) != 1 or escaping[0] is not region[-1].outputs[0]:
            return None
        prog, ins = elementwise_program(region, {id(cur): 0})
        if ins:
            return None
        got = evaluate_numpy(prog, [_SAMPLES])
        with np.errstate(all="ignore"):
            for name, f in _ACTIVATIONS.items():
                if np.allclose(got, f(_SAMPLES), rtol=1e-6, atol=1e-7):
                    return name, region, region[-1].outputs[0]
        return None

    def gemm_group(self, n: Node) -> FusionGroup | str:
        _d, attrs = self.bound[id(n)]
        plan = matmul_plan(n, attrs)
        if isinstance(plan, str):
            return plan
        nodes, parts = [n], []
        cur = n.outputs[0]
        n_cols = plan.b_const.shape[1] if plan.b_const is not None else (
            None if not plan.b.type.shape else
            plan.b.type.shape[0] if plan.trans_b else plan.b.type.shape[-1])
        bias = None
        nxt = self.sole(cur)
        if nxt is not None and plan.bias is None:
            bias = self._bias_of(nxt, cur, n_cols)
            if bias is not None:
                nodes.append(nxt)
                parts.append("bias")
                cur = nxt.outputs[0]
        elif plan.bias is not None:
            parts.append("bias")
        act = self._activation(cur, self.index[id(nodes[-1])])
        activation = None
        if act is not None:
            activation, region, cur = act
            nodes += region
            parts.append(activation)
        residual = None
        nxt = self.sole(cur)
        reshape = None
        if nxt is not None and nxt.op == "Reshape" and is_f32(nxt.outputs[0]):
            # Gemm -> Reshape -> Add(residual): add the residual viewed as the GEMM's (M, N)
            after = self.sole(nxt.outputs[0])
            if after is not None and after.op == "Add" and is_elementwise(after):
                reshape, cur, nxt = nxt, nxt.outputs[0], after
        if nxt is not None and nxt.op == "Add" and is_elementwise(nxt):
            other = [v for v in nxt.inputs if v is not cur]
            if len(other) == 1 and const_of(other[0]) is None and \
                    isinstance(other[0].type, TensorType) and other[0].type.shape is not None and \
                    other[0].type.shape == nxt.outputs[0].type.shape == cur.type.shape:
                residual = other[0]
                nodes += [reshape, nxt] if reshape is not None else [nxt]
                parts += ["reshape", "residual"] if reshape is not None else ["residual"]
                cur = nxt.outputs[0]
            elif reshape is not None:
                reshape, cur = None, reshape.inputs[0]
        elif reshape is not None:
            reshape, cur = None, reshape.inputs[0]
        ins = [plan.a] + ([plan.b] if plan.b is not None else []) + ([plan.c] if plan.c else [])
        if residual is not None:
            ins.append(residual)
        fn = gemm_call(plan, activation, residual is not None, bias,
                       shaped_like_residual=reshape is not None)
        kernel = "gemm" if plan.b is None else "batched_gemm"
        return FusionGroup("gemm", nodes, Lowered(fn, ins, kernel), cur, parts)

    def conv_group(self, n: Node) -> FusionGroup | str:
        d, attrs = self.bound[id(n)]
        low = lower(n, d, attrs)
        if isinstance(low, str):
            return low
        plan = conv_plan(n, attrs)
        cur, nodes, parts, activation = n.outputs[0], [n], [], None
        if plan[1] is not None:
            parts.append("bias")
        nxt = self.sole(cur)
        if nxt is not None and nxt.op == "Relu" and is_elementwise(nxt):
            activation, cur = "relu", nxt.outputs[0]
            nodes.append(nxt)
            parts.append("relu")
        # a ResNet block's tail: Add(shortcut of the output's shape) [-> Relu]
        residual, res_act, ins = None, None, [n.inputs[0]]
        nxt = self.sole(cur)
        if nxt is not None and nxt.op == "Add" and is_elementwise(nxt):
            other = [v for v in nxt.inputs if v is not cur]
            if len(other) == 1 and const_of(other[0]) is None and is_f32(other[0]) and \
                    other[0].type.shape is not None and \
                    other[0].type.shape == nxt.outputs[0].type.shape == cur.type.shape:
                residual, cur = other[0], nxt.outputs[0]
                nodes.append(nxt)
                parts.append("residual")
                ins.append(residual)
                after = self.sole(cur)
                if after is not None and after.op == "Relu" and is_elementwise(after):
                    res_act, cur = "relu", after.outputs[0]
                    nodes.append(after)
                    parts.append("relu")
        fn = conv_call(plan, activation, residual is not None, res_act)
        return FusionGroup("conv", nodes, Lowered(fn, ins, "conv2d"), cur, parts)

    # --- attention ----------------------------------------------------------------------------
    def attention_group(self, n: Node) -> FusionGroup | None:
        """MatMul(Q, Kᵀ) [-> Mul/Div by a scalar] [-> Add(mask)] -> Softmax(last) -> MatMul(·, V)
        over (B, H, S, D) float32 values, as one attention kernel launch."""
        q, kt = n.inputs
        if not (is_f32(q) and is_f32(kt) and rank(q) == 4 and rank(kt) == 4):
            return None
        d = q.type.shape[-1]
        if not isinstance(d, int) or d > 256 or d & (d - 1) or kt.type.shape[-2] != d:
            return None
        nodes, cur, scale, mask = [n], n.outputs[0], 1.0, None
        nxt = self.sole(cur)
        if nxt is not None and nxt.op in ("Mul", "Div") and is_elementwise(nxt) and nxt.inputs[0] is cur:
            c = _scalar_const(nxt.inputs[1], 4)
            if c is not None and c != 0.0:
                scale = c if nxt.op == "Mul" else 1.0 / c
                nodes.append(nxt)
                cur = nxt.outputs[0]
                nxt = self.sole(cur)
        if nxt is not None and nxt.op == "Add" and is_elementwise(nxt):
            other = [v for v in nxt.inputs if v is not cur]
            if len(other) == 1 and rank(other[0]) == 4 and \
                    other[0].type.shape[1] == 1 and other[0].type.shape[:1] in (q.type.shape[:1], (1,)):
                mask = other[0]
                nodes.append(nxt)
                cur = nxt.outputs[0]
                nxt = self.sole(cur)
        if nxt is None or nxt.op != "Softmax" or not is_f32(nxt.outputs[0]):
            return None
        if int(self.bound[id(nxt)][1].get("axis", -1)) not in (-1, 3):
            return None
        nodes.append(nxt)
        cur = nxt.outputs[0]
        nxt = self.sole(cur)
        if nxt is None or nxt.op != "MatMul" or nxt.inputs[0] is not cur:
            return None
        v = nxt.inputs[1]
        if not is_f32(v) or rank(v) != 4 or v.type.shape[-1] != d:
            return None
        nodes.append(nxt)
        ins = [q, kt, v] + ([mask] if mask is not None else [])
        # heads merged back by Transpose(0, 2, 1, 3): write (B, S, H, D), return its (B, H, S, D) view
        after = self.sole(nxt.outputs[0])
        merged = after is not None and after.op == "Transpose" and \
            list(self.bound[id(after)][1].get("perm", [])) == [0, 2, 1, 3]
        return FusionGroup("attention", nodes, Lowered(_attention_call(scale, mask is not None, merged,
                                                                       self.mask_seen),
                                                       ins, "attention"), nxt.outputs[0],
                           (["scale"] if scale != 1.0 else []) + (["mask"] if mask is not None else []))

    # --- attention backward ------------------------------------------------------------------
    def flash_grad_group(self, n: Node) -> FusionGroup | None:
        """FlashAttentionGrad (1) whose dK and dV are each read only by an Add of another gradient
        of their shape (a model that returns its key/value cache: the cache's gradients meet the
        attention's): the kernel starts its dK and dV sums from those gradients, so the two Adds
        are no kernels of their own and dK, dV stay in the layout the kernel writes; and/or (2)
        whose three gradients reach one Concat only through views (Slice, Transpose, Reshape: a
        fused QKV projection's backward): the kernel writes them side by side in the Concat's
        order and the Concat copies nothing. The step runs where the FlashAttentionGrad is; the
        added gradients must be computed before it."""
        if not self.fuse or len(n.outputs) < 3 or any(v is None for v in n.outputs[:3]):
            return None
        start = self.index[id(n)]
        adds = [self._added_gradient(o, start) for o in n.outputs[1:3]]
        if None in adds:
            adds = []
        finals = [n.outputs[0]] + ([a.outputs[0] for a, _ in adds] or list(n.outputs[1:3]))
        packed = self._concat_places(finals)
        if not adds and packed is None:
            return None
        low = flash_attention_grad_lowering(n, self.bound[id(n)][1],
                                            *([other for _, other in adds] or [None, None]),
                                            packed=packed)
        if isinstance(low, str):
            return None
        parts = (["dk+add", "dv+add"] if adds else []) + (["side by side"] if packed else [])
        return FusionGroup("flash_attention_grad", [n, *(a for a, _ in adds)], low, n.outputs[0],
                           parts, finals[1:], at_first=True)

    VIEW_OPS = ("Slice", "Transpose", "Reshape", "Identity")

    def _concat_places(self, vals: list[Value]) -> tuple | None:
        """The places in one Concat along the last axis of 3 inputs that `vals` reach, each only
        through single-reader view ops whose values are no graph outputs; else None."""
        concat, places = None, []
        for v in vals:
            cur = v
            while True:
                c = self.sole(cur)
                if c is None:
                    return None
                if c.op == "Concat":
                    break
                if c.op not in self.VIEW_OPS or id(c.outputs[0]) in self.outputs:
                    return None
                cur = c.outputs[0]
            if concat not in (None, c) or len(c.inputs) != 3:
                return None
            concat = c
            places.append(next(i for i, x in enumerate(c.inputs) if x is cur))
        r = rank(concat.outputs[0])
        if r is None or int(self.bound[id(concat)][1].get("axis", 0)) % r != r - 1 or \
                sorted(places) != [0, 1, 2]:
            return None
        return tuple(places)

    def _added_gradient(self, g: Value, start: int) -> tuple[Node, Value] | None:
        """(Add, its other input) when gradient `g` is read only by an Add of a float32 value of
        its shape computed before node index `start` (where a group that absorbs the Add runs)."""
        a = self.sole(g)
        if a is None or a.op != "Add" or not is_elementwise(a):
            return None
        other = [v for v in a.inputs if v is not g]
        if len(other) != 1 or const_of(other[0]) is not None or not is_f32(other[0]) or \
                other[0].type.shape is None or \
                not other[0].type.shape == g.type.shape == a.outputs[0].type.shape:
            return None
        p = other[0].producer
        if p is not None and self.index.get(id(p), start) >= start:
            return None
        return a, other[0]

    def layer_norm_grad_group(self, n: Node) -> FusionGroup | None:
        """LayerNormalizationGrad whose dX is read only by an Add of another gradient of its
        shape (a residual block's: the gradient through the norm meets the one along the skip
        path): the kernel adds it as it writes dX, one pass over memory fewer. Runs where the
        LayerNormalizationGrad is."""
        if not self.fuse or len(n.outputs) != 3 or any(v is None for v in n.outputs):
            return None
        got = self._added_gradient(n.outputs[0], self.index[id(n)])
        if got is None:
            return None
        low = layer_norm_grad_lowering(n, self.bound[id(n)][1], got[1])
        if isinstance(low, str):
            return None
        return FusionGroup("layer_norm_grad", [n, got[0]], low, got[0].outputs[0], ["dx+add"],
                           list(n.outputs[1:3]), at_first=True)

    # --- elementwise trees with several outputs -------------------------------------------
    TREE_WINDOW = 24  # nodes after the first that a tree looks at

    def tree_group(self, n: Node) -> FusionGroup | None:
        """When the output of elementwise node `n` is read by several nodes (a training graph's
        forward keeps its intermediates for the backward), the untaken elementwise nodes of the
        next TREE_WINDOW that need nothing computed after `n` but the group's own values and that
        read the group's values or its inputs join it; every member value read outside the group
        is stored, in one pass (GELU's 0.5x, tanh, 1 + tanh and result: one kernel, not four). All
        members have n's static shape; at most MAX_INPUTS inputs and 1 + MAX_EXTRA outputs. The
        step runs where `n` is, so everything it reads is there. None when nothing joins."""
        shape = n.outputs[0].type.shape if isinstance(n.outputs[0].type, TensorType) else None
        if not self.fuse or shape is None or not all(isinstance(d, int) for d in shape):
            return None
        start = self.index[id(n)]
        members, mvals = [n], {id(n.outputs[0])}
        ext = {id(v) for v in n.inputs if v is not None and _scalar_const(v, len(shape)) is None}

        def before(v) -> bool:
            p = v.producer
            return p is None or self.index.get(id(p), start) < start

        best = None
        for c in self.graph.nodes[start + 1:start + 1 + self.TREE_WINDOW]:
            if id(c) in self.taken or not is_elementwise(c) or c.outputs[0].type.shape != shape:
                continue
            ins = [v for v in c.inputs if v is not None]
            if not all(id(v) in mvals or before(v) for v in ins):
                continue
            if not any(id(v) in mvals or id(v) in ext for v in ins):
                continue
            trial = members + [c]
            got = self._tree(trial, shape)
            if got is None:
                continue
            members = trial
            mvals.add(id(c.outputs[0]))
            ext.update(id(v) for v in ins if id(v) not in mvals
                       and _scalar_const(v, len(shape)) is None)
            best = got
        if best is None:
            return None
        prog, ins, extra_vals, extra_idx = best
        name = "fused_" + "_".join(EW_OPS[x.op][0] for x in members[:6])
        if extra_idx:
            name += f"_x{1 + len(extra_idx)}"
        step = (_ElementwiseMultiStep(prog, len(ins), name, extra_idx) if extra_idx
                else _ew_call(prog, len(ins), name))
        return FusionGroup("elementwise", members,
                           Lowered(step, ins, name, outputs=1 + len(extra_idx)),
                           members[-1].outputs[0], [f"{len(members)} ops"]
                           + ([f"{1 + len(extra_idx)} outputs"] if extra_idx else []),
                           extra_vals, at_first=True)

    def _tree(self, nodes: list[Node], shape):
        """(program, inputs, extra values, their instructions) for a tree group of `nodes`, or
        None when it needs too many inputs or outputs or its last value is read by no one."""
        where: dict[int, int] = {}
        prog, ins = elementwise_program(nodes, where=where)
        if len(ins) > MAX_INPUTS:
            return None
        inside = {id(x) for x in nodes}
        escaping = [x.outputs[0] for x in nodes
                    if id(x.outputs[0]) in self.outputs
                    or any(id(c) not in inside for c in self.cons.get(id(x.outputs[0]), []))]
        last = nodes[-1].outputs[0]
        if not escaping or escaping[-1] is not last or len(escaping) > 1 + MAX_EXTRA:
            return None
        extra = escaping[:-1]
        return prog, ins, extra, tuple(where[id(v)] for v in extra)

    # --- closed elementwise graphs ----------------------------------------------------------
    def closed_group(self, n: Node) -> FusionGroup | None:
        """The elementwise nodes whose values only `n` needs: working up from `n`, an untaken
        elementwise producer joins once every reader of its value has joined (a smaller one is
        broadcast, as in chains). A value read several times inside (the tanh of a tanh-GELU's
        backward, read by three of its nodes) is then computed once, in one kernel with one
        output, where chains and trees cut the graph into three kernels passing four
        intermediates through memory. None when
        fewer than 3 nodes join, when it needs more than MAX_INPUTS inputs, or when a producer
        stays out only because its value is read outside (trees store such values; this group
        would split theirs). `find_groups` asks at nodes that no untaken elementwise node reads."""
        if not self.fuse:
            return None
        members = {id(n): n}

        def candidates():
            for m in list(members.values()):
                for v in m.inputs:
                    p = None if v is None else v.producer
                    if (p is not None and id(p) not in members and id(p) not in self.taken
                            and is_elementwise(p)):
                        yield v, p

        changed = True
        while changed:
            changed = False
            for v, p in candidates():
                if id(p) not in members and id(v) not in self.outputs and all(
                        id(c) in members for c in self.cons.get(id(v), [])):
                    members[id(p)] = p
                    changed = True
        if len(members) < 3 or any(True for _ in candidates()):
            return None  # a producer read outside too is a tree's to take
        nodes = sorted(members.values(), key=lambda x: self.index[id(x)])
        if nodes[-1] is not n:
            return None
        prog, ins = elementwise_program(nodes)
        if len(ins) > MAX_INPUTS:
            return None
        name = "fused_" + "_".join(EW_OPS[x.op][0] for x in nodes[:6])
        return FusionGroup("elementwise", nodes, Lowered(_ew_call(prog, len(ins), name), ins, name),
                           n.outputs[0], [f"{len(nodes)} ops"])

    # --- elementwise chains -----------------------------------------------------------------
    def _producers_into(self, c: Node, members: set[int]) -> list[Node]:
        """Untaken elementwise nodes whose outputs only `c` reads, and so on up their inputs: the
        other branches of a tree that ends at `c` (e.g. the `0.5 * x` side of a GELU)."""
        out: list[Node] = []
        stack = [c]
        while stack:
            node = stack.pop()
            for u in node.inputs:
                p = None if u is None else u.producer
                if p is None or id(p) in members or id(p) in self.taken or not is_elementwise(p):
                    continue
                if self.sole(u) is not node:
                    continue
                members.add(id(p))
                out.append(p)
                stack.append(p)
        return out

    def elementwise_group(self, n: Node) -> FusionGroup:
        nodes = [n]
        members = {id(n)}
        cur = n.outputs[0]
        while True:
            nxt = self.sole(cur)
            if nxt is None or not is_elementwise(nxt):
                break
            trial = set(members) | {id(nxt)}
            extra = self._producers_into(nxt, trial)
            cand = sorted(nodes + extra + [nxt], key=lambda x: self.index[id(x)])
            _, ins2 = elementwise_program(cand)
            if len(ins2) > MAX_INPUTS:
                cand = sorted(nodes + [nxt], key=lambda x: self.index[id(x)])
                _, ins2 = elementwise_program(cand)
                if len(ins2) > MAX_INPUTS:
                    break
                trial = set(members) | {id(nxt)}
            nodes, members = cand, trial
            cur = nxt.outputs[0]
        prog, ins = elementwise_program(nodes)
        name = "fused_" + "_".join(EW_OPS[x.op][0] for x in nodes[:6])
        return FusionGroup("elementwise", nodes, Lowered(_ew_call(prog, len(ins), name), ins, name),
                           cur, [f"{len(nodes)} ops"] if len(nodes) > 1 else [])


def find_groups(graph: Graph, bound: dict, fuse: bool = True
                ) -> tuple[list[FusionGroup], dict[int, str]]:
    """Fusion groups of `graph`'s top-level nodes, in order of their anchors, and the reasons the
    anchors that could not be lowered fell back (by node id). With `fuse=False` every group is a
    single node (the unfused schedule, for testing fusion against it)."""
    f = _Fuser(graph, bound, fuse)
    groups: list[FusionGroup] = []
    reasons: dict[int, str] = {}
    for n in graph.nodes:  # anchors first, so their epilogues are not taken by chains
        if id(n) in f.taken:
            continue
        if n.domain == OPENCANN_DOMAIN and n.op in ("FlashAttentionGrad",
                                                    "LayerNormalizationGrad"):
            g = (f.flash_grad_group(n) if n.op == "FlashAttentionGrad"
                 else f.layer_norm_grad_group(n))
            if g is None:
                continue
        elif n.domain not in ("", "ai.onnx"):
            continue
        elif n.op == "MatMul" and fuse and (g := f.attention_group(n)) is not None:
            pass
        elif n.op in ("MatMul", "Gemm"):
            g = f.gemm_group(n)
        elif n.op == "Conv":
            g = f.conv_group(n)
        else:
            continue
        if isinstance(g, str):
            reasons[id(n)] = g
            continue
        groups.append(g)
        f.taken.update(id(x) for x in g.nodes)
    for n in reversed(graph.nodes):  # elementwise graphs closed under their values' readers
        if id(n) in f.taken or not is_elementwise(n):
            continue
        readers = f.cons.get(id(n.outputs[0]), [])
        if any(id(c) not in f.taken and is_elementwise(c) for c in readers):
            continue  # not where such a graph ends (chains and trees go on from here)
        g = f.closed_group(n)
        if g is not None:
            groups.append(g)
            f.taken.update(id(x) for x in g.nodes)
    for n in graph.nodes:
        if id(n) in f.taken or not is_elementwise(n):
            continue
        g = None
        if f.sole(n.outputs[0]) is None:  # read by several: maybe the root of a tree group
            g = f.tree_group(n)
        if g is None:
            g = f.elementwise_group(n)
        groups.append(g)
        f.taken.update(id(x) for x in g.nodes)
    return groups, reasons
