"""Helpers for the control-flow tests: small IR graphs with subgraph bodies."""

import pytest

import opencann
from opencann.ir import Graph
from opencann.testing import tensor_type as tensor


class Body:
    """Builds a subgraph: `b = Body(("x", "float32", 2), ...)`, then `b.node(...)`, `b.out(...)`."""

    def __init__(self, *inputs, name="body"):
        self.g = Graph(name)
        self.ins = [self.g.add_input(n, None if dt is None else tensor(dt, *shape)) for n, dt, *shape in inputs]

    def node(self, op, inputs, n_out=1, **attrs):
        outs = self.g.add_node(op, inputs, [self.g.fresh_name(op.lower()) for _ in range(n_out)], attrs)
        return outs[0] if n_out == 1 else outs

    def const(self, array):
        return self.g.add_constant(self.g.fresh_name("c"), array)

    def out(self, *values, types=None):
        for i, v in enumerate(values):
            if types is not None and types[i] is not None:
                v.type = types[i]
            self.g.outputs.append(v)
        return self.g


def run_graph(g, feeds):
    return opencann.compile(g).run(feeds)


@pytest.fixture(name="Body")
def body_fixture():
    return Body


@pytest.fixture(name="tensor")
def tensor_fixture():
    return tensor


@pytest.fixture(name="run")
def run_fixture():
    return run_graph
