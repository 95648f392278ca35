"""Model definition: a model is a ``networkx.DiGraph`` of vertices (populations).

See :mod:`neurosim.graph.spec` for the vertex attributes, :mod:`neurosim.graph.chain` for
composite vertices, :mod:`neurosim.graph.builders` for ready-made models,
:mod:`neurosim.graph.pytorch` for models read from torch modules and
:mod:`neurosim.graph.validate` for the checks run before compilation.
"""

from neurosim.graph.builders import cnn, lstm, mlp, rnn, sequential
from neurosim.graph.spec import CONVENTIONS, LOSSES, OPS, exact_steps, output_vertices, param_shapes, trigger_steps
from neurosim.graph.validate import validate_graph

__all__ = [
    "CONVENTIONS",
    "LOSSES",
    "OPS",
    "cnn",
    "exact_steps",
    "lstm",
    "mlp",
    "output_vertices",
    "param_shapes",
    "rnn",
    "sequential",
    "trigger_steps",
    "validate_graph",
]
