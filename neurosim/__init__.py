"""neurosim: an event-driven simulator of predictive coding networks.

A model is a ``networkx`` graph (:func:`neurosim.graph.mlp`); a numba event loop runs
it neuron by neuron under a learning rule (:func:`neurosim.rules.make_rule`) and is
checked against backprop. Start with :func:`neurosim.train` or ``neurosim train``;
:func:`neurosim.load_run` reads a saved run back as a model.
"""

__version__ = "0.1.0"

from neurosim.data import load_dataset, one_hot
from neurosim.graph import mlp
from neurosim.params import init_params
from neurosim.recording import RunDirectory
from neurosim.rules import make_rule
from neurosim.runs import Run, load_run
from neurosim.training import TrainConfig, TrainResult, train

__all__ = [
    "Run",
    "RunDirectory",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "init_params",
    "load_dataset",
    "load_run",
    "make_rule",
    "mlp",
    "one_hot",
    "train",
]
