"""Marks known conformance failures as strict xfails and prints the conformance count."""

import os
from pathlib import Path

import pytest

_KNOWN = {line.split("#")[0].strip() for line in
          (Path(__file__).parent / "known_failures.txt").read_text().splitlines()} - {""}
_counts = {"passed": 0, "failed": 0}


def pytest_collection_modifyitems(config, items):
    # the suite also generates a `_cuda` twin of every case; opencann.backend runs on "CPU" only
    cuda = [i for i in items if "OnnxBackendNodeModelTest" in i.nodeid and i.name.endswith("_cuda")]
    if cuda:
        config.hook.pytest_deselected(items=cuda)
        items[:] = [i for i in items if not i.name.endswith("_cuda") or "OnnxBackendNodeModelTest" not in i.nodeid]
    for item in items:
        if "OnnxBackendNodeModelTest" in item.nodeid and item.name in _KNOWN:
            item.add_marker(pytest.mark.xfail(reason="known conformance failure (known_failures.txt)",
                                              strict=True))


def pytest_runtest_logreport(report):
    if "OnnxBackendNodeModelTest" not in report.nodeid:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        ok = report.outcome == "passed" and not hasattr(report, "wasxfail")
        _counts["passed" if ok else "failed"] += 1


def pytest_terminal_summary(terminalreporter):
    total = _counts["passed"] + _counts["failed"]
    if total:
        backend = os.environ.get("OPENCANN_BACKEND", "ref")
        terminalreporter.write_line(
            f"ONNX node conformance (backend {backend}, {total} cases): "
            f"{_counts['passed']} passed, {_counts['failed']} failed")
