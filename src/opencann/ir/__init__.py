"""opencann's graph IR: `Graph`, `Node`, `Value`, their types, a text form and a verifier."""

from ..dtypes import DType
from .equal import graphs_equal
from .graph import Graph, Node, Value
from .text import TextError, parse
from .types import Dim, OptionalType, SequenceType, TensorType, Type
from .verify import VerifyError, compatible, verify

__all__ = ["DType", "Dim", "Graph", "Node", "OptionalType", "SequenceType", "TensorType", "TextError",
           "Type", "Value", "VerifyError", "compatible", "graphs_equal", "parse", "verify"]
