"""The cv op tests run at opset 22 unless a test names an opset."""

import pytest


@pytest.fixture
def default_opset():
    return 22
