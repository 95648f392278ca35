"""Vectorized, clock-driven numpy reference of backprop and of every PC rule.

Population-level and written against an array namespace ``xp`` (numpy, or cupy on a
GPU), it is the independent implementation the neuron-level event loop is checked
against, on any DAG of the graph spec's ops. :mod:`neurosim.reference.ops` holds each
op's forward rule and vector-Jacobian products, :mod:`neurosim.reference.backprop` the
forward pass, the losses and backprop; :mod:`neurosim.reference.rules` the PC rules
(Whittington and Bogacz 2017; Song et al. 2020; Rosenbaum 2022; Millidge et al. 2020)
behind :func:`run_rule`.
"""

from neurosim.reference.backprop import forward, gradients, loss, predict, sgd_step
from neurosim.reference.rules import ReferenceResult, n_exact, run_rule

__all__ = ["ReferenceResult", "forward", "gradients", "loss", "n_exact", "predict", "run_rule", "sgd_step"]
