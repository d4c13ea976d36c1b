import pytest

from opencann.engine import bind_ops
from opencann.engine.infer import infer_graph
from opencann.ir import parse


@pytest.fixture
def typed():
    """Parse a graph from its text form and infer every type, as compile() does."""

    def make(text: str):
        g = parse(text)
        infer_graph(g, bind_ops(g, g.name), g.name)
        return g

    return make
