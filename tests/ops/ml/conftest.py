"""The ml op tests run at opset 22, and at version 1 of the ai.onnx.ml and training domains,
unless a test names an opset."""

import pytest


@pytest.fixture
def default_opset():
    return {"": 22, "ai.onnx.ml": 1, "ai.onnx.preview.training": 1}
