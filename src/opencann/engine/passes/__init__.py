"""Graph passes and the pipeline that runs them.

A pass is a function `pass_(graph) -> int` that rewrites the graph in place and returns how many
changes it made. `Pipeline` runs a list of them (repeating until nothing changes, when asked),
re-infers types, verifies the graph between passes in debug mode, and prints the IR after each
pass when `OPENCANN_DEBUG` is set (`1`: pass names and change counts, `2`: the IR too).

    >>> from opencann.engine.passes import Pipeline, DEFAULT_PASSES
    >>> Pipeline(DEFAULT_PASSES).run(graph)                 # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

from ...ir import Graph, verify
from .cse import cse
from .dce import dce
from .fold import fold_constants
from .shapes import fold_shapes
from .simplify import simplify

Pass = Callable[[Graph], int]

DEFAULT_PASSES: list[Pass] = [fold_constants, fold_shapes, simplify, cse, dce]


def debug_level() -> int:
    try:
        return int(os.environ.get("OPENCANN_DEBUG", "0") or 0)
    except ValueError:
        return 1


class Pipeline:
    """Runs `passes` in order; with `fixpoint`, repeats the list until no pass changes anything
    (at most `max_rounds`). `after(name, graph)` is called after each pass that changed something."""

    def __init__(self, passes: list[Pass], fixpoint: bool = True, max_rounds: int = 8,
                 reinfer: Callable[[Graph], None] | None = None, debug: int | None = None,
                 stream=None):
        self.passes = list(passes)
        self.fixpoint = fixpoint
        self.max_rounds = max_rounds
        self.reinfer = reinfer
        self.debug = debug_level() if debug is None else debug
        self.stream = stream or sys.stderr
        self.log: list[tuple[str, int, float]] = []  # (pass, changes, seconds)

    def run(self, graph: Graph) -> Graph:
        for _ in range(self.max_rounds if self.fixpoint else 1):
            changed = 0
            for p in self.passes:
                t = time.perf_counter()
                n = p(graph)
                if n and self.reinfer is not None:
                    self.reinfer(graph)
                self.log.append((p.__name__, n, time.perf_counter() - t))
                changed += n
                if self.debug and n:
                    print(f"[opencann] after {p.__name__}: {n} change(s), {len(graph.nodes)} nodes",
                          file=self.stream)
                    if self.debug >= 2:
                        print(graph.to_text(elide_above=8), file=self.stream)
                    verify(graph)
            if not changed:
                break
        return graph


__all__ = ["DEFAULT_PASSES", "Pass", "Pipeline", "cse", "dce", "fold_constants", "fold_shapes", "simplify"]
