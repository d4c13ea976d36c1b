"""The transformer op tests run at opset 25 (and version 1 of ai.onnx.preview) unless a test names
an opset; `rng` is a seeded generator."""

import numpy as np
import pytest


@pytest.fixture
def default_opset():
    return {"": 25, "ai.onnx.preview": 1}


@pytest.fixture
def rng():
    return np.random.default_rng(0)
