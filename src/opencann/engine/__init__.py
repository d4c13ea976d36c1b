"""The graph engine: binds ops, checks graphs, and executes them (the reference interpreter now;
passes, fusion, placement and memory planning as they land)."""

from .interpreter import Interpreter, bind_ops

__all__ = ["Interpreter", "bind_ops"]
