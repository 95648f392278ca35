"""How time runs in a :class:`~neurosim.engine.Simulator`: :class:`Sync` (ticks, the
default) or :class:`Async` (continuous time in hops, clauses A1..A9 of ``docs/async.md``).

>>> Async(delays=0.7).commit_delay
1.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim import validation
from neurosim.engine.delays import SynapseDelays, check_delay
from neurosim.engine.transport.jitter import Jitter
from neurosim.errors import ConfigError

ZIL_TRIGGERS = ("clock", "front")


@dataclass(frozen=True)
class Sync:
    """The synchronous mode: integer ticks, every neuron in lock-step (clauses S1..S8);
    the ``Simulator``'s ``delays`` and ``own_delay`` (ticks) apply."""


@dataclass(frozen=True)
class Async:
    """The asynchronous mode: float64 time in hops, one event queue (clauses A1..A9).

    ``delays`` (A1): the synapses' delays in hops, any spec of
    :func:`neurosim.engine.delays.synapse_delays` (a number, ``{vertex: delay}``,
    ``EdgeDelays()``, one float per synapse, a ``DelayDistribution``); ``own_delay``:
    the private link of each value neuron and its error neuron (a number or one per
    error neuron). ``jitter`` (A2): a :class:`~neurosim.engine.transport.jitter.Jitter`
    or None. ``latency`` (A4): hops from an arrival to the computation it causes.
    ``commit_delay`` (A7): hops from a plasticity decision to its commit.
    ``integration`` (A4): hops after which a value neuron that moved while learning
    computes again. ``zil_trigger`` (A8): ``"clock"`` (Z-IL's update of error neuron
    ``i`` at ``learn0 + 2 l_i``) or ``"front"`` (its first learning computation that
    read a front-tagged message). ``max_hops``: a learning phase under the front
    trigger ends at the latest this many hops after it began.
    """

    delays: SynapseDelays = 1.0
    own_delay: float | np.ndarray = 1.0
    jitter: Jitter | None = None
    latency: float = 0.0
    commit_delay: float = 1.0
    integration: float = 2.0
    zil_trigger: str = "clock"
    max_hops: float = 1e4

    def __post_init__(self) -> None:
        if self.jitter is not None and not isinstance(self.jitter, Jitter):
            raise ConfigError(f"jitter must be a neurosim.engine.transport.jitter.Jitter or None, got {self.jitter!r}")
        if not validation.is_real(self.latency) or not np.isfinite(self.latency) or self.latency < 0:
            raise ConfigError(f"latency must be a finite number of hops >= 0, got {self.latency!r}")
        check_delay(self.commit_delay, "commit_delay")
        check_delay(self.integration, "integration")
        check_delay(self.max_hops, "max_hops")
        if self.zil_trigger not in ZIL_TRIGGERS:
            raise ConfigError(f"zil_trigger must be one of {ZIL_TRIGGERS}, got {self.zil_trigger!r}")
