"""Compilation of a model graph into a neuron-level netlist (flat structure-of-arrays)."""

from neurosim.compile.compiler import compile_graph
from neurosim.compile.netlist import Netlist

__all__ = ["Netlist", "compile_graph"]
