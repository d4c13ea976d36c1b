"""The ONNX backend node test suite, run against `opencann.backend`: our conformance suite.

Each ONNX node test case becomes a pytest test `test_<case>_cpu`. Cases that do not pass yet are
listed in `known_failures.txt` and run as strict xfails, so a newly passing case must be removed
from the list (those marked `chance`, random ops that can match ONNX's one draw by luck, are not
strict). The summary line `ONNX node conformance ...: N passed, M failed` is printed at the
end of the run (see conftest.py).
"""

import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the suite's own data generators warn about overflows
    import onnx.backend.test

import opencann.backend

_backend_test = onnx.backend.test.BackendTest(opencann.backend, __name__)
_backend_test.include(r"_cpu$")
OnnxBackendNodeModelTest = pytest.mark.conformance(_backend_test.test_cases["OnnxBackendNodeModelTest"])
