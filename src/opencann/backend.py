"""ONNX's backend API over opencann, as `onnxruntime.backend` provides it for onnxruntime, so that
`onnx.backend.test.BackendTest(opencann.backend)` runs the ONNX conformance suite.

    >>> import opencann.backend as backend
    >>> rep = backend.prepare(model_proto)          # doctest: +SKIP
    >>> outputs = rep.run([x])                      # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from . import dtypes
from .frontends.onnx import MAX_OPSET
from .ir import Graph
from .model import CompiledModel, compile, default_backend


class OpenCannRep(BackendRep):
    """A prepared model; `run` takes inputs in graph order (a list) or by name (a dict)."""

    def __init__(self, model: CompiledModel):
        self.model = model

    def run(self, inputs: Any, **kwargs: Any) -> list:
        names = self.model.input_names
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            feeds = dict(zip(names, inputs))
        out = self.model.run(feeds)
        return [out[n] for n in self.model.output_names]


def _newest_domain_version(op: str, domain: str) -> int:
    """The newest opset version of `domain` that onnx knows for `op` (1 for unknown domains)."""
    try:
        return int(onnx.defs.get_schema(op, domain=domain).since_version)
    except Exception:  # noqa: BLE001 - custom domains have no onnx schema
        return 1


def _device_ok(device: str) -> bool:
    return str(device).upper().split(":")[0] == "CPU"


class OpenCannBackend(Backend):
    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        return _device_ok(device)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return _device_ok(device)

    @classmethod
    def prepare(cls, model: Any, device: str = "CPU", **kwargs: Any) -> OpenCannRep:
        if not _device_ok(device):
            raise RuntimeError(f"opencann.backend runs on device 'CPU', not {device!r}")
        # The graph runs as written (no graph passes unless optimize=True), as on ref: this API
        # is how the conformance suite checks each backend's kernels, lowering and fusion.
        return OpenCannRep(compile(model, backend=kwargs.get("backend") or default_backend(),
                                   optimize=kwargs.get("optimize", False)))

    @classmethod
    def run_model(cls, model: Any, inputs: Any, device: str = "CPU", **kwargs: Any) -> list:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU",
                 outputs_info: Sequence[tuple] | None = None, **kwargs: Any) -> list:
        """Run one NodeProto on `inputs` (a list in the node's input order, or a dict)."""
        opset = int(kwargs.get("opset_version", MAX_OPSET))
        g = Graph(node.name or node.op_type, {"": opset})
        if node.domain not in ("", "ai.onnx"):
            g.opset[node.domain] = _newest_domain_version(node.op_type, node.domain)
        feeds = {}
        named = inputs if isinstance(inputs, dict) else dict(zip([n for n in node.input if n], inputs))
        graph_inputs = []
        for name in node.input:
            if name == "":
                continue
            x = named[name]
            graph_inputs.append(onnx.helper.make_tensor_value_info(
                name, dtypes.from_numpy(np.asarray(x).dtype).onnx, np.shape(x)))
            feeds[name] = x
        outs = [onnx.helper.make_value_info(o, onnx.TypeProto()) for o in node.output if o]
        proto = onnx.helper.make_model(
            onnx.helper.make_graph([node], g.name, graph_inputs, outs),
            opset_imports=[onnx.helper.make_opsetid(d, v) for d, v in g.opset.items()])
        return cls.prepare(proto, device, **kwargs).run(feeds)


prepare = OpenCannBackend.prepare
run_model = OpenCannBackend.run_model
run_node = OpenCannBackend.run_node
supports_device = OpenCannBackend.supports_device
is_compatible = OpenCannBackend.is_compatible

__all__ = ["OpenCannBackend", "OpenCannRep", "default_backend", "prepare", "run_model", "run_node", "supports_device",
           "is_compatible"]
