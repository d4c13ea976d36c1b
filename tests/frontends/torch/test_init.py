"""torch.compile(backend="opencann") end to end: transformer and CNN inference against eager,
dynamic shapes without recompiling, training through AOTAutograd, fallback and its report."""

import copy
import importlib.metadata
import logging
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

import opencann.frontends.torch as oc
from opencann.errors import OpenCannError, UnsupportedOpsError

from .conftest import max_rel_diff

tf = pytest.importorskip("transformers")
tf.logging.set_verbosity_error()

SMALL = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
         "vocab_size": 100}


def _main_output(out):
    for name in ("last_hidden_state", "logits"):
        if hasattr(out, name):
            return getattr(out, name)
    return out


def _bert():
    return tf.BertModel(tf.BertConfig(**SMALL))


def _gpt2():
    return tf.GPT2LMHeadModel(tf.GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=100))


def _llama():
    return tf.LlamaForCausalLM(tf.LlamaConfig(**SMALL, num_key_value_heads=2))


def _t5():
    return tf.T5EncoderModel(tf.T5Config(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, vocab_size=100))


def _vit():
    return tf.ViTModel(tf.ViTConfig(**{k: v for k, v in SMALL.items() if k != "vocab_size"}, image_size=32,
                                    patch_size=8))


TEXT_MODELS = {"bert": _bert, "gpt2": _gpt2, "llama": _llama, "t5": _t5}


def _compare(model, *inputs, tol=1e-4):
    compiled = torch.compile(model, backend="opencann")
    with torch.no_grad():
        expect, got = _main_output(model(*inputs)), _main_output(compiled(*inputs))
    assert got.shape == expect.shape
    assert max_rel_diff(got, expect) < tol
    return compiled


@pytest.mark.parametrize("name", sorted(TEXT_MODELS))
@pytest.mark.slow
def test_transformers_match_eager_and_do_not_recompile_per_length(name):
    torch.manual_seed(0)
    model = TEXT_MODELS[name]().eval()
    compiled = torch.compile(model, backend="opencann")
    for length in (8, 11, 16, 5):
        ids = torch.randint(0, 100, (2, length))
        with torch.no_grad():
            expect, got = _main_output(model(ids)), _main_output(compiled(ids))
        assert max_rel_diff(got, expect) < 1e-4
    r = oc.report()
    # dynamo compiles once static, once with a symbolic length after the second; then never again
    assert r.backend_calls == 2
    assert [rec.symbolic for rec in r.records] == [False, True]
    assert not r.fallbacks


def test_bert_with_attention_mask_and_new_batch_and_length():
    torch.manual_seed(0)
    model = _bert().eval()
    compiled = torch.compile(model, backend="opencann", dynamic=True)
    seen = []
    for batch, length in ((2, 8), (3, 13), (4, 5)):
        ids = torch.randint(0, 100, (batch, length))
        mask = torch.ones(batch, length, dtype=torch.long)
        mask[0, length // 2:] = 0
        with torch.no_grad():
            expect = model(ids, attention_mask=mask).last_hidden_state
            got = compiled(ids, attention_mask=mask).last_hidden_state
        assert max_rel_diff(got, expect) < 1e-4
        r = oc.report()
        seen.append((r.backend_calls, r.graphs))
    assert seen[0] == seen[1] == seen[2]  # compiled once, for symbolic batch and length
    r = oc.report()
    assert r.graphs == 1 and r.records[0].symbolic
    assert not r.fallbacks


@pytest.mark.slow
def test_vit_matches_eager():
    torch.manual_seed(0)
    _compare(_vit().eval(), torch.randn(2, 3, 32, 32))
    assert not oc.report().fallbacks


@pytest.mark.slow
def test_resnet18_matches_eager():
    from opencann.zoo import _resnet18

    torch.manual_seed(0)
    _compare(_resnet18().eval(), torch.randn(1, 3, 64, 64))
    assert not oc.report().fallbacks


def _gpt(layers=2, width=64, seq=16, heads=4, attn="sdpa"):
    cfg = tf.GPT2Config(n_embd=width, n_layer=layers, n_head=heads, vocab_size=128, n_positions=seq,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    cfg._attn_implementation = attn
    return tf.GPT2LMHeadModel(cfg)


@pytest.mark.parametrize("attn,engine", [("sdpa", "ref"), ("eager", "ref"), ("sdpa", "cpu")])
def test_gpt_trains_like_eager(attn, engine):
    torch.manual_seed(0)
    eager = _gpt(attn=attn)
    model = copy.deepcopy(eager)
    compiled = torch.compile(model, backend="opencann", options={"engine": engine})
    opt_e = torch.optim.AdamW(eager.parameters(), lr=1e-3)
    opt_c = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(1)
    for step in range(3):
        ids = torch.randint(0, 128, (2, 16), generator=gen)
        loss_e = eager(ids, labels=ids).loss
        loss_e.backward()
        loss_c = compiled(ids, labels=ids).loss
        loss_c.backward()
        assert abs(loss_c.item() - loss_e.item()) <= 1e-3 * abs(loss_e.item())
        for (name, pe), pc in zip(eager.named_parameters(), model.parameters()):
            assert max_rel_diff(pc.grad, pe.grad) < 1e-4, name
        for opt in (opt_e, opt_c):
            opt.step()
            opt.zero_grad()
    r = oc.report()
    assert any("backward" in rec.graph for rec in r.records)
    assert not r.fallbacks


class _Bad(torch.nn.Module):
    """An op with no lowering (erfinv) and a dtype opencann does not run (bfloat16) mid-graph."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(8, 8)
        self.b = torch.nn.Linear(8, 4)

    def forward(self, x):
        h = torch.special.erfinv(torch.tanh(self.a(x)) * 0.5)
        h = (h.to(torch.bfloat16) * 2).to(torch.float32)
        return self.b(torch.relu(h))


def test_bad_model_trains_with_fallback_reported_once(caplog):
    torch.manual_seed(0)
    eager = _Bad()
    model = copy.deepcopy(eager)
    compiled = torch.compile(model, backend="opencann")
    x = torch.randn(4, 8)
    with caplog.at_level(logging.WARNING, logger="opencann.frontends.torch"):
        for _ in range(3):
            compiled(x).sum().backward()
            eager(x).sum().backward()
    for pe, pc in zip(eager.parameters(), model.parameters()):
        assert max_rel_diff(pc.grad, pe.grad) < 1e-5
    r = oc.report()
    assert [rec.graph.split("_")[1] for rec in r.records] == ["forward", "backward1"]
    # forward: erfinv, two bfloat16 casts and the bfloat16 multiply; backward: erfinv's derivative
    # is exp/mul (lowered), the casts and multiply come back in bfloat16
    fwd = r.records[0].fallbacks
    assert fwd == {"aten.erfinv.default": 1, "aten._to_copy.default": 2, "aten.mul.Tensor": 1}
    assert r.records[0].reasons["aten.erfinv.default"] == "no lowering"
    assert r.records[0].reasons["aten._to_copy.default"] == "dtype bfloat16"
    assert r.records[0].regions >= 2
    # one log line per compiled graph, none per call
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "opencann.frontends.torch"]
    assert len(lines) == 2 and all("aten.erfinv.default" in line for line in lines)
    text = str(r)
    assert "aten.erfinv.default" in text and "dtype bfloat16" in text


def test_fallback_off_raises_listing_the_ops():
    compiled = torch.compile(_Bad(), backend="opencann", options={"fallback": False})
    with pytest.raises(Exception) as info, torch.no_grad():
        compiled(torch.randn(2, 8))
    assert isinstance(info.value, UnsupportedOpsError) or isinstance(info.value.__cause__, UnsupportedOpsError) \
        or "aten.erfinv.default" in str(info.value)
    assert "aten.erfinv.default" in str(info.value)


def test_options_are_checked_and_debug_prints_the_ir(capsys):
    with pytest.raises(Exception, match="unknown option"):
        torch.compile(torch.nn.Linear(2, 2), backend="opencann", options={"nope": 1})(torch.randn(1, 2))
    torch._dynamo.reset()
    compiled = torch.compile(lambda x: torch.relu(x) * 2, backend="opencann", options={"debug": True})
    x = torch.randn(3)
    assert torch.equal(compiled(x), torch.relu(x) * 2)
    err = capsys.readouterr().err
    assert "Relu(" in err and "opencann compiled" in err


def test_entry_point_registers_the_backend():
    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="torch_dynamo_backends")}
    assert names.get("opencann") == "opencann.frontends.torch:opencann_backend"
    assert "opencann" in torch._dynamo.list_backends()


def test_opencann_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import opencann, opencann.frontends, opencann.frontends.onnx\n"
            "print('ok')")
    env = dict(os.environ)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert done.stdout.strip() == "ok", done.stderr
    assert isinstance(OpenCannError("x"), Exception)


@pytest.mark.slow
def test_resnet18_training_step_matches_eager():
    # convolution, batch-norm (training statistics) and max-pool gradients on opencann
    from opencann.zoo import _resnet18

    torch.manual_seed(0)
    model = _resnet18().train()
    eager = copy.deepcopy(model)
    compiled = torch.compile(model, backend="opencann")
    x = torch.randn(2, 3, 48, 48)
    out = compiled(x)
    weights = torch.randn_like(out)  # not a plain sum: its gradient vanishes through the last batch norm
    (out * weights).sum().backward()
    (eager(x) * weights).sum().backward()
    for (name, pe), pc in zip(eager.named_parameters(), model.parameters()):
        assert max_rel_diff(pc.grad, pe.grad) < 1e-4, name
    assert max_rel_diff(model.layers[0].b1.running_var, eager.layers[0].b1.running_var) < 1e-5
    assert not oc.report().fallbacks


def test_a_lowering_that_fails_sends_its_node_to_eager(monkeypatch):
    from opencann.frontends.torch import lower

    def broken(L, n, *args, **kwargs):
        raise lower.LoweringError(f"node {n.name}: broken on purpose")

    monkeypatch.setitem(lower.LOWERINGS, torch.ops.aten.tanh.default, lower.Lowering(broken))
    f = torch.compile(lambda x: torch.tanh(x * 2) + 1, backend="opencann")
    x = torch.randn(4)
    with torch.no_grad():
        assert torch.allclose(f(x), torch.tanh(x * 2) + 1)
    r = oc.report()
    assert r.fallbacks == {"aten.tanh.default": 1}
    assert r.records[0].reasons["aten.tanh.default"] == "its lowering failed"
