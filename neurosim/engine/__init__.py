"""The event loop and its Python handle.

:mod:`neurosim.engine.loop` holds the tick semantics and the numba kernels,
:mod:`neurosim.engine.kernels` the array bundles they take,
:mod:`neurosim.engine.state` the allocation of neuron state and message lines, and
:mod:`neurosim.engine.simulator` the :class:`Simulator` a user drives.
"""

import os

# Parallel delivery (Simulator(threads > 1)) runs on numba's OpenMP pool. By default its
# idle threads spin, which on a small machine starves numpy's BLAS threads and the main
# thread; let them sleep instead, unless the user chose otherwise.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from neurosim.engine.simulator import LearnResult, Presentation, Simulator

__all__ = ["LearnResult", "Presentation", "Simulator"]
