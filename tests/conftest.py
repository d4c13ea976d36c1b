"""Shared test helpers."""

import numpy as np
import pytest


def scaled_max_diff(actual, expected) -> float:
    """max |actual - expected| relative to the output's scale (max |expected|, at least 1e-6)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(actual - expected), initial=0.0) / max(np.max(np.abs(expected), initial=0.0), 1e-6))


@pytest.fixture
def assert_close():
    def check(actual, expected, tol=1e-4):
        assert np.shape(actual) == np.shape(expected)
        d = scaled_max_diff(actual, expected)
        assert d <= tol, f"scaled max difference {d:.3g} > {tol}"

    return check
