"""Memory planning: one static arena for a schedule's intermediates, reused by liveness.

Every intermediate value lives from the step that writes it to the last step that reads it. Two
values whose lifetimes do not overlap may share bytes. The planner places values in an arena,
largest first, each at the lowest offset that does not collide with an already placed value alive
at the same time (the greedy-by-size strategy of TFLite's arena planner), aligned to 64 bytes.

For symbolic shapes the plan depends on the concrete sizes, so a compiled model keeps one plan per
concrete binding of its symbols (`PlanCache`).

    >>> plan = plan_memory([("a", 1024, 0, 1), ("b", 1024, 1, 2), ("c", 1024, 2, 3)])
    >>> plan.arena_bytes, plan.offsets["a"] == plan.offsets["c"]
    (2048, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterable

ALIGN = 64


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class MemoryPlan:
    """Byte offsets of values in one arena, and what the plan saves."""

    offsets: dict[Hashable, int]
    sizes: dict[Hashable, int]
    lifetimes: dict[Hashable, tuple[int, int]]
    arena_bytes: int

    @property
    def total_bytes(self) -> int:
        """What the intermediates would take without reuse."""
        return sum(_align(s) for s in self.sizes.values())

    def check(self) -> None:
        """Raise AssertionError if two values alive at the same time overlap (a planner bug)."""
        items = sorted(self.offsets, key=lambda k: self.offsets[k])
        for i, a in enumerate(items):
            a1 = self.offsets[a] + self.sizes[a]
            assert a1 <= self.arena_bytes, f"{a!r} ends past the arena"
            for b in items[i + 1:]:
                b0 = self.offsets[b]
                if b0 >= a1:
                    break
                (s1, e1), (s2, e2) = self.lifetimes[a], self.lifetimes[b]
                assert not (s1 <= e2 and s2 <= e1), f"{a!r} and {b!r} overlap while both alive"

    def summary(self) -> str:
        saved = 1 - self.arena_bytes / self.total_bytes if self.total_bytes else 0.0
        return (f"planned peak {self.arena_bytes / 2**20:.2f} MiB for {len(self.sizes)} intermediates "
                f"totalling {self.total_bytes / 2**20:.2f} MiB ({100 * saved:.0f}% saved by reuse)")


def plan_memory(values: Iterable[tuple[Hashable, int, int, int]]) -> MemoryPlan:
    """Plan `values`, each `(key, nbytes, first_step, last_step)` (inclusive lifetime)."""
    vals = [(k, int(n), int(s), int(e)) for k, n, s, e in values]
    placed: list[tuple[int, int, int, int]] = []  # offset, end, first, last
    offsets: dict[Hashable, int] = {}
    for key, nbytes, first, last in sorted(vals, key=lambda v: (-v[1], v[2])):
        size = _align(max(nbytes, 1))
        busy = sorted((o, e) for o, e, s2, e2 in placed if s2 <= last and first <= e2)
        offset = 0
        for o, e in busy:
            if offset + size <= o:
                break
            offset = max(offset, e)
        offsets[key] = offset
        placed.append((offset, offset + size, first, last))
    arena = max((e for _, e, _, _ in placed), default=0)
    return MemoryPlan(offsets, {k: n for k, n, _, _ in vals}, {k: (s, e) for k, _, s, e in vals}, arena)


def lifetimes(steps: list[tuple[list[Hashable], list[Hashable]]], keep: set[Hashable]) -> dict[Hashable, tuple[int, int]]:
    """Lifetimes of the values written by `steps` (each `(reads, writes)`), except those in `keep`
    (graph inputs, constants and outputs, which live outside the arena)."""
    life: dict[Hashable, list[int]] = {}
    for i, (reads, writes) in enumerate(steps):
        for w in writes:
            if w not in keep:
                life.setdefault(w, [i, i])
        for r in reads:
            if r in life:
                life[r][1] = i
    return {k: (s, e) for k, (s, e) in life.items()}


@dataclass
class PlanCache:
    """One plan per concrete binding of the symbols (`batch=1, seq=128`), made on first use."""

    make: Callable[[dict[str, int]], MemoryPlan]
    plans: dict[tuple, MemoryPlan] = field(default_factory=dict)

    def get(self, bindings: dict[str, int]) -> MemoryPlan:
        key = tuple(sorted(bindings.items()))
        plan = self.plans.get(key)
        if plan is None:
            plan = self.plans[key] = self.make(bindings)
        return plan
