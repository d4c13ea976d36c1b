import numpy as np
import pytest

from opencann import dtypes


def test_every_onnx_type_round_trips():
    for d in dtypes.ALL:
        assert dtypes.from_onnx(d.onnx) is d
        assert dtypes.by_name(d.name) is d
        if d is not dtypes.string:
            assert dtypes.from_numpy(d.np) is d


def test_unknown_names_are_clear():
    with pytest.raises(ValueError, match="unknown dtype 'float7'"):
        dtypes.by_name("float7")
    assert dtypes.from_numpy(np.dtype("<U3")) is dtypes.string
