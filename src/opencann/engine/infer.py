"""Type and shape inference over a whole graph, with symbolic dims: each node's op infers its
output types from its inputs; declared types (ONNX value_info, graph outputs) refine the result."""

from __future__ import annotations

from ..errors import InvalidModelError
from ..ir import Graph, OptionalType, SequenceType, TensorType
from ..ir.verify import compatible
from ..ops import context
from . import symbolic


def merge_types(declared, inferred):
    """The more specific of two compatible types: known ints beat symbols beat unknowns, and an
    inferred symbol (tied to the inputs' symbols) beats a declared one (often an exporter's
    invented name)."""
    if declared is None:
        return inferred
    if inferred is None:
        return declared
    if isinstance(declared, (SequenceType, OptionalType)) and type(declared) is type(inferred):
        return type(declared)(merge_types(declared.elem, inferred.elem))
    if not isinstance(declared, TensorType) or not isinstance(inferred, TensorType):
        return inferred
    if declared.shape is None or inferred.shape is None or len(declared.shape) != len(inferred.shape):
        return inferred if inferred.shape is not None else declared
    dims = []
    for a, b in zip(declared.shape, inferred.shape):
        dims.append(b if b is not None else a)
    return TensorType(inferred.dtype, tuple(dims))


def infer_graph(graph: Graph, bound: dict, model_name: str) -> None:
    """Give every node output a type (in place). `bound` maps id(node) -> (OpDef, attrs), as
    returned by `bind_ops`."""
    for n in graph.nodes:
        d, attrs = bound[id(n)]
        args = list(n.inputs)
        while len(args) < len(d.inputs) and not d.inputs[-1].variadic:
            args.append(None)
        # bodies that do not declare their inputs' types (ONNX function expansions do not) take
        # them from the node's inputs; the op says how (Loop, Scan, SequenceMap)
        if d.infer_subgraph_inputs is not None and n.subgraphs():
            for key, types in d.infer_subgraph_inputs(*args, **attrs).items():
                for v, t in zip(attrs[key].inputs, types):
                    v.type = merge_types(v.type, t)
        for sg in n.subgraphs():
            infer_graph(sg, bound, model_name)
        tok = context.set_node(n)  # ops whose output count comes from the node (Split) read it
        try:
            result = d.infer(*args, **attrs)
        except Exception as e:  # noqa: BLE001 - re-raised with model, node and inputs named
            ins = ", ".join("_" if v is None else f"%{v.name}: {v.type!r}" for v in n.inputs)
            raise InvalidModelError(f"model {model_name!r}: {n.describe()} cannot take inputs ({ins}): {e}") from e
        finally:
            context.reset_node(tok)
        types = list(result) if isinstance(result, (tuple, list)) else [result]
        types = symbolic.refine(n, types)
        for i, o in enumerate(n.outputs):
            t = types[i] if i < len(types) else None
            if o.type is not None and t is not None and not compatible(o.type, t):
                # a stale declaration from the exporter: trust the op's own inference
                o.type = t
            else:
                o.type = merge_types(o.type, t)
        if n.outputs:
            n.outputs[0].sym = symbolic.track(n)
