"""The tensor family's tests run at opset 23 unless a test names an opset."""

import pytest


@pytest.fixture
def default_opset():
    return 23
