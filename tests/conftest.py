"""Shared test helpers, and the conformance count printed at the end of a run."""

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


# The ONNX conformance count. These hooks live here, not in tests/conformance/, because under
# pytest-xdist only the controller sees every report, and it loads this conftest.
_conformance = {"passed": 0, "failed": 0}


def pytest_runtest_logreport(report):
    if "OnnxBackendNodeModelTest" not in report.nodeid:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        ok = report.outcome == "passed" and not hasattr(report, "wasxfail")
        _conformance["passed" if ok else "failed"] += 1


def pytest_terminal_summary(terminalreporter):
    total = _conformance["passed"] + _conformance["failed"]
    if total:
        from opencann.backend import default_backend

        backend = default_backend()
        terminalreporter.write_line(
            f"ONNX node conformance (backend {backend}, {total} cases): "
            f"{_conformance['passed']} passed, {_conformance['failed']} failed")
