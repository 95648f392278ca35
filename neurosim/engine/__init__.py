"""The event loop and its Python handle, cut at its seams (``docs/architecture.md``).

:mod:`~neurosim.engine.semantics` states the tick contract (S1..S8);
:mod:`~neurosim.engine.neurons` holds the neuron updates, :mod:`~neurosim.engine.ring`
the ring transport and the stage loops, :mod:`~neurosim.engine.plasticity` and
:mod:`~neurosim.engine.observers` the end of a tick and what is recorded,
:mod:`~neurosim.engine.driver` the stage order, :mod:`~neurosim.engine.bundles` the
arrays they take, :mod:`~neurosim.engine.backend` the compiler that runs them,
:mod:`~neurosim.engine.policy` the rules as data, :mod:`~neurosim.engine.handle` and
:mod:`~neurosim.engine.presentation` one presentation, and
:mod:`~neurosim.engine.simulator` the :class:`Simulator` a user drives.
"""

import os

# Parallel delivery (Simulator(threads > 1)) runs on numba's OpenMP pool. By default its
# idle threads spin, which on a small machine starves numpy's BLAS threads and the main
# thread; let them sleep instead, unless the user chose otherwise.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from neurosim.engine.simulator import LearnResult, Presentation, Simulator
from neurosim.engine.timing import Async, Sync

__all__ = ["Async", "LearnResult", "Presentation", "Simulator", "Sync"]
