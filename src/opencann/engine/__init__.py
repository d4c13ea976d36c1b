"""The graph engine: binds ops, checks graphs, and executes them: the reference interpreter, and
for the `cpu` backend placement (each op's cpu kernel, from the operator library), fusion, memory
planning and the compiled executor."""

from .executor import CpuExecutor
from .interpreter import Interpreter, bind_ops
from .placement import Placement, Step, place

__all__ = ["CpuExecutor", "Interpreter", "Placement", "Step", "bind_ops", "place"]
