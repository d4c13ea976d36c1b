"""Passes over kernel IR that every backend wants: use counting, dead-code removal, verification."""

from __future__ import annotations

from collections import defaultdict

from .errors import TileCompileError
from .ir import ELEMENTWISE, Block, KernelIR

__all__ = ["uses", "dce", "verify", "has_side_effects"]


def uses(block: Block, out=None) -> dict:
    """value id -> number of uses (operands and loop yields) in `block` and the blocks inside it."""
    out = defaultdict(int) if out is None else out
    for v in block.values:
        for s in v.srcs:
            out[s.id] += 1
        if v.op == "for":
            uses(v.arg, out)
            for y in v.arg.yields:
                out[y.id] += 1
    return out


def has_side_effects(block: Block) -> bool:
    """Whether `block` (or a loop inside it) stores to memory."""
    return any(v.op == "store" or (v.op == "for" and has_side_effects(v.arg)) for v in block.values)


def dce(k: KernelIR) -> KernelIR:
    """Remove values nothing uses (in place); loops without stores whose results are unused go too."""
    changed = True
    while changed:
        changed = False
        counts = uses(k.body)

        def sweep(block: Block):
            nonlocal changed
            keep = []
            for v in block.values:
                if v.op == "for":
                    sweep(v.arg)
                    dead = not has_side_effects(v.arg) and not any(
                        counts[r.id] for r in block.values if r.op == "result" and r.srcs[0] is v)
                elif v.op == "store":
                    dead = False
                else:
                    dead = counts[v.id] == 0
                if dead:
                    changed = True
                else:
                    keep.append(v)
            block.values = keep

        sweep(k.body)
    return k


def verify(k: KernelIR) -> None:
    """Check that every operand is defined before use and elementwise operands share a rank."""
    defined = {p.id for p in k.params}

    def check(block: Block):
        for p in block.params:
            defined.add(p.id)
        for v in block.values:
            for s in v.srcs:
                if s.id not in defined:
                    raise TileCompileError(f"kernel IR of {k.name}: %{v.id} ({v.op}) uses %{s.id} "
                                           "before it is defined")
            if v.op in ELEMENTWISE:
                for s in v.srcs:
                    if s.shape and len(s.shape) != len(v.shape):
                        raise TileCompileError(f"kernel IR of {k.name}: %{v.id} ({v.op}) mixes "
                                               "ranks")
            if v.op == "for":
                check(v.arg)
                for y in v.arg.yields:
                    if y.id not in defined:
                        raise TileCompileError(f"kernel IR of {k.name}: loop yields undefined %{y.id}")
            defined.add(v.id)

    check(k.body)
