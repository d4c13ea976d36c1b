"""The math tests run at opset 21 unless a test names an opset."""

import pytest


@pytest.fixture
def default_opset():
    return 21
