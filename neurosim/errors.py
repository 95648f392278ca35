"""The exceptions neurosim raises for bad input.

Every error names what is wrong and how to fix it. They are raised by the Python
layer *before* any numba kernel runs, so a user never sees a traceback from inside
compiled code.
"""

from __future__ import annotations


class NeurosimError(Exception):
    """Base class of every error neurosim raises on purpose."""


class GraphError(NeurosimError, ValueError):
    """A model graph is malformed (unknown op, missing attribute, cycle, shape mismatch...)."""


class ParameterError(NeurosimError, ValueError):
    """A parameter dict does not fit its graph (missing name, wrong shape, NaN...)."""


class ConfigError(NeurosimError, ValueError):
    """A run configuration is invalid (unknown rule, bad step size, bad batch...)."""


class DataError(NeurosimError):
    """Input data are missing, corrupt, of the wrong shape, or not finite."""


class DivergenceError(NeurosimError, FloatingPointError):
    """A run diverged: a state became non-finite or the energy exploded."""
