"""The vector-add example of docs/tile.md runs as written."""

import re
from pathlib import Path

import numpy as np

DOC = Path(__file__).resolve().parents[2] / "docs" / "tile.md"


def test_vector_add_example_runs(tmp_path):
    code = re.search(r"## Vector add\n\n```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    path = tmp_path / "vector_add_example.py"  # kernels need their source in a file
    path.write_text(code)
    ns = {"__name__": "vector_add_example"}
    exec(compile(code, str(path), "exec"), ns)
    np.testing.assert_allclose(ns["out"], ns["x"] + ns["y"])
