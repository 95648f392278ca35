"""The event loop and its Python handle.

:mod:`neurosim.engine.loop` holds the tick semantics and the numba kernels,
:mod:`neurosim.engine.kernels` the array bundles they take,
:mod:`neurosim.engine.state` the allocation of neuron state and message lines, and
:mod:`neurosim.engine.simulator` the :class:`Simulator` a user drives.
"""

from neurosim.engine.simulator import LearnResult, Presentation, Simulator, exact_steps

__all__ = ["LearnResult", "Presentation", "Simulator", "exact_steps"]
