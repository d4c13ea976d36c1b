"""Fixtures for the op tests, from `opencann.testing`: `run_op` (run one node end to end), `infer_op`
(call an op's type inference) and `tt` (TensorType shorthand). A family's conftest may override
`default_opset`, the opset they use when a test names none."""

import functools

import pytest

from opencann import testing


@pytest.fixture
def default_opset():
    """None: the newest opset (see `opencann.testing`)."""
    return None


@pytest.fixture
def run_op(default_opset):
    return functools.partial(testing.run_op, opset=default_opset)


@pytest.fixture
def infer_op(default_opset):
    return functools.partial(testing.infer_op, opset=default_opset)


@pytest.fixture
def tt():
    return testing.tensor_type
