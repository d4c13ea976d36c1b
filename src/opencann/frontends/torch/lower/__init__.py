"""ATen -> opencann IR: the lowering table for ATen-level FX graphs (what AOTAutograd hands over
after the core ATen decompositions).

Each entry of `LOWERINGS` maps an ATen overload to a function `fn(L, node, *args, **kwargs)` that
emits IR nodes through `L` (a `GraphLowering`) and returns the IR value(s) of the FX node: one
`Value`, a list of them for tuple results, or None. An entry may carry a `when(node)` predicate:
a node it rejects is not lowered and runs in eager PyTorch (see `partition.py`).

Values of two kinds flow through a lowered graph: tensors, and symbolic sizes (`torch.SymInt`),
which are int64 scalars in the IR, so one compiled graph serves every batch or sequence length.

    >>> L = GraphLowering(gm.graph, "model_fw")             # doctest: +SKIP
    >>> graph = L.run()                                      # doctest: +SKIP
"""

from . import attention, creation, elementwise, nn, reduce, shape, symbolic  # noqa: F401 - they fill the table
from .core import (
                   DTYPES,
                   LOWERINGS,
                   OPSET,
                   GraphLowering,
                   Lowering,
                   LoweringError,
                   dtype_supported,
                   ir_dim,
                   ir_type_of,
                   lowers,
                   meta_of,
)

# ATen ops AOTAutograd leaves whole: their lowerings know them better than their decompositions
DECOMPOSITION_EXCLUDES = attention.DECOMPOSITION_EXCLUDES + nn.DECOMPOSITION_EXCLUDES

__all__ = ["DECOMPOSITION_EXCLUDES", "DTYPES", "LOWERINGS", "OPSET", "GraphLowering", "Lowering", "LoweringError",
           "dtype_supported", "ir_dim", "ir_type_of", "lowers", "meta_of"]
