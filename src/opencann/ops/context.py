"""What a reference implementation may ask of whoever is running it, chosen by context.

Control-flow ops (If, Loop, Scan, SequenceMap) run subgraphs, and a few ops need to know how many
outputs their node has (Split). Instead of threading an executor through every reference, the
engine sets these for the node being run (`running`), and references call `run_graph` /
`num_outputs`. The operator library therefore never imports the engine.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Any, Callable

_RUNNER: ContextVar[Callable | None] = ContextVar("opencann_graph_runner", default=None)
_NODE: ContextVar[Any] = ContextVar("opencann_current_node", default=None)


@contextlib.contextmanager
def graph_runner(run: Callable):
    """Install `run(graph, feeds: dict[str, object], outer_env) -> list[outputs]` for references."""
    tok = _RUNNER.set(run)
    try:
        yield
    finally:
        _RUNNER.reset(tok)


def run_graph(graph, inputs: list) -> list:
    """Run a subgraph (an attribute of the current node) on positional inputs; returns its outputs."""
    run = _RUNNER.get()
    if run is None:
        raise RuntimeError("run_graph called outside of a graph execution")
    return run(graph, inputs)


def set_node(node):
    return _NODE.set(node)


def reset_node(token) -> None:
    _NODE.reset(token)


def current_node():
    """The IR node whose reference is running (None when called directly)."""
    return _NODE.get()


def num_outputs(default: int = 1) -> int:
    """How many outputs the running node has (`default` when called outside a graph)."""
    node = _NODE.get()
    return default if node is None else len(node.outputs)
