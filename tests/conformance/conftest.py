"""Marks known conformance failures as xfails, strict unless they can pass by chance (the count is
printed by tests/conftest.py)."""

from pathlib import Path

import pytest

# "name" is a strict xfail (a case that starts passing must be taken off the list); "name chance"
# is one that can pass by luck (a random op compared with one unseeded draw), so not strict
_ENTRIES = [line.split("#")[0].split() for line in
            (Path(__file__).parent / "known_failures.txt").read_text().splitlines()]
_KNOWN = {e[0]: e[1:] != ["chance"] for e in _ENTRIES if e}


def pytest_collection_modifyitems(config, items):
    # the suite also generates a `_cuda` twin of every case; opencann.backend runs on "CPU" only
    cuda = [i for i in items if "OnnxBackendNodeModelTest" in i.nodeid and i.name.endswith("_cuda")]
    if cuda:
        config.hook.pytest_deselected(items=cuda)
        items[:] = [i for i in items if not i.name.endswith("_cuda") or "OnnxBackendNodeModelTest" not in i.nodeid]
    for item in items:
        if "OnnxBackendNodeModelTest" in item.nodeid and item.name in _KNOWN:
            item.add_marker(pytest.mark.xfail(reason="known conformance failure (known_failures.txt)",
                                              strict=_KNOWN[item.name]))
