"""Marks known conformance failures as strict xfails (the count is printed by tests/conftest.py)."""

from pathlib import Path

import pytest

_KNOWN = {line.split("#")[0].strip() for line in
          (Path(__file__).parent / "known_failures.txt").read_text().splitlines()} - {""}


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
