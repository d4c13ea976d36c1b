"""Helpers for the torch adapter's tests: compile with opencann, compare with eager."""

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Each test compiles from scratch and reads a report of its own compiles only."""
    import opencann.frontends.torch as oc

    torch._dynamo.reset()
    oc.reset_report()
    yield
    torch._dynamo.reset()


def max_rel_diff(a, b) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / max(b.abs().max().item(), 1e-6)) if b.numel() else 0.0
