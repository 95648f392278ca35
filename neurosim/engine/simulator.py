"""The user's handle on the event loop: present samples, run a rule, read the results.

>>> import numpy as np
>>> from neurosim.graph import mlp
>>> from neurosim.rules import ZIL
>>> from neurosim.engine import Simulator
>>> sim = Simulator(mlp([3, 4, 2]), seed=0)
>>> result = sim.learn(np.ones((1, 3)), np.array([[1.0, 0.0]]), ZIL(alpha=0.1))
>>> sorted(result.updates)
['layer1.bias', 'layer1.weight', 'layer2.bias', 'layer2.weight']
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import numba
import numpy as np

from neurosim import validation
from neurosim.compile.compiler import Delays, compile_graph
from neurosim.compile.netlist import Netlist
from neurosim.engine.async_engine import AsyncEngine
from neurosim.engine.bundles import StateArrays
from neurosim.engine.handle import EngineHandle
from neurosim.engine.presentation import LearnResult, Presentation
from neurosim.engine.timing import Async, Sync
from neurosim.errors import ConfigError, GraphError
from neurosim.monitors import Monitor
from neurosim.params import Params, check_params, init_params
from neurosim.rules import Rule

__all__ = ["LearnResult", "Presentation", "Simulator"]


class Simulator:
    """A compiled predictive coding network running on the event loop.

    The simulator is compiled from ``graph`` as it is now: editing the graph afterwards
    makes the next call raise :class:`~neurosim.errors.GraphError` (rebuild the
    simulator instead).

    Parameters
    ----------
    graph
        The model (see :mod:`neurosim.graph`).
    params
        Initial parameters in PyTorch layout; drawn by
        :func:`neurosim.params.init_params` with ``seed`` when omitted.
    seed
        Seed of the initial parameters.
    dtype
        ``numpy.float64`` (default) or ``numpy.float32``.
    delays, own_delay
        Synaptic delays in ticks (see :func:`neurosim.compile.compile_graph`).
    threads
        Threads for parallel delivery: each stage is split into this many contiguous
        blocks of neurons, run in parallel. The result is bit-for-bit the same for any
        value; more threads pay off only on large networks.
    timing
        :class:`~neurosim.engine.timing.Sync` (default: ticks, clauses S1..S8) or
        :class:`~neurosim.engine.timing.Async` (float time in hops, its own delays,
        jitter and clocks: clauses A1..A9, ``docs/async.md``).
    """

    def __init__(
        self,
        graph: nx.DiGraph,
        params: Mapping[str, np.ndarray] | None = None,
        *,
        seed: int = 0,
        dtype: type = np.float64,
        delays: Delays = 1,
        own_delay: int = 1,
        threads: int = 1,
        timing: Sync | Async | None = None,
    ) -> None:
        from neurosim.params import _float_dtype

        dtype = _float_dtype(dtype)
        limit = numba.config.NUMBA_NUM_THREADS
        if not validation.is_count(threads) or not 1 <= threads <= limit:
            raise ConfigError(f"threads must be an int from 1 to {limit} (NUMBA_NUM_THREADS), got {threads!r}")
        self.threads = int(threads)
        self.graph = graph
        self.dtype = np.dtype(dtype).type
        netlist = compile_graph(graph, delays=delays, own_delay=own_delay)
        p = init_params(graph, seed, self.dtype) if params is None else check_params(graph, params, self.dtype)
        self.engine = EngineHandle(graph, netlist, netlist.pack_params(p, self.dtype), self.threads)
        self._fingerprint = validation.graph_fingerprint(graph)
        # ---- the asynchronous mode (docs/async.md): its own run state over this handle
        if timing is not None and not isinstance(timing, (Sync, Async)):
            raise ConfigError(f"timing must be neurosim.engine.Sync() or Async(...), got {timing!r}")
        if isinstance(timing, Async) and (delays != 1 or own_delay != 1):
            raise ConfigError("with timing=Async(...) give the delays in hops as Async(delays=..., own_delay=...), "
                              "not as the Simulator's delays/own_delay (ticks of the synchronous mode)")
        self.timing = timing or Sync()
        self.asynchronous = AsyncEngine(self.engine, timing) if isinstance(timing, Async) else None

    def _check_graph(self) -> None:
        """Raise GraphError if the graph was edited after this simulator was built on it."""
        if validation.graph_fingerprint(self.graph) != self._fingerprint:
            raise GraphError(
                "the graph was edited after this Simulator was built on it; the simulator still runs the "
                "graph as it was, so rebuild the Simulator (neurosim.engine.Simulator(graph, ...)) after editing"
            )

    # ---- the engine's state, read through the handle ------------------------------------
    @property
    def netlist(self) -> Netlist:
        """The compiled netlist."""
        return self.engine.netlist

    @property
    def theta(self) -> np.ndarray:
        """The flat parameter vector the kernels read and change (not a copy)."""
        return self.engine.theta

    @property
    def state(self) -> StateArrays:
        """Every neuron's state, the message lines and the wake rings (not a copy)."""
        return self.engine.state

    @property
    def tick(self) -> int:
        """The current tick."""
        return self.engine.tick

    @property
    def monitor(self) -> Monitor | None:
        """The attached :class:`~neurosim.monitors.Monitor`, if any (set by its ``attach``)."""
        return self.engine.monitor

    @monitor.setter
    def monitor(self, monitor: Monitor | None) -> None:
        self.engine.monitor = monitor

    @property
    def inputs(self) -> list[str]:
        """The input vertices."""
        return self.engine.inputs

    @property
    def outputs(self) -> list[str]:
        """The output vertices."""
        return self.engine.outputs

    # ---- parameters -------------------------------------------------------------
    @property
    def params(self) -> Params:
        """The current parameters (copies), PyTorch layout."""
        return self.netlist.unpack_params(self.theta)

    def set_params(self, params: Mapping[str, np.ndarray]) -> None:
        """Replace every parameter (validated; see :func:`neurosim.params.check_params`)."""
        self._check_graph()
        self.theta[:] = self.netlist.pack_params(check_params(self.graph, params, self.dtype), self.dtype)
        self.engine.stale = True
        if self.asynchronous is not None:
            self.asynchronous.stale = True

    # ---- presentations ----------------------------------------------------------
    def predict(self, x: np.ndarray | Mapping[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        """Run the prediction phase on ``x`` and return the output beliefs ``(B, size)``
        (a dict by output vertex when the graph has several outputs)."""
        self._check_graph()
        if self.asynchronous is not None:
            self.asynchronous.prediction_phase(self.engine.batch(x, self.inputs, "input"))
            v = self.asynchronous.state.v
            outs = {o: v[self.engine.vertex_neurons(o)].T.copy() for o in self.outputs}
            return outs[self.outputs[0]] if len(outs) == 1 else outs
        self.engine.prediction_phase(self.engine.batch(x, self.inputs, "input"))
        outs = {o: self.engine.vertex_values(o) for o in self.outputs}
        return outs[self.outputs[0]] if len(outs) == 1 else outs

    def learn(
        self,
        x: np.ndarray | Mapping[str, np.ndarray],
        y: np.ndarray | Mapping[str, np.ndarray],
        rule: Rule,
        *,
        chunk_ticks: int | None = None,
        all_active: bool = False,
        reverse: bool = False,
    ) -> LearnResult:
        """Present a mini-batch: prediction phase on ``x``, then learning with target ``y``.

        The rule's update is applied to the parameters (on divergence, what the rule
        computed before it: see :mod:`neurosim.rules`).
        ``chunk_ticks`` splits the learning phase into kernel calls of that many ticks
        (the result does not depend on it); ``all_active`` and ``reverse`` are checks
        of the tick semantics (clauses S4 and S3 of :mod:`neurosim.engine.semantics`).
        """
        if self.asynchronous is not None:
            if all_active or reverse:
                raise ConfigError("all_active and reverse are checks of the synchronous stages; "
                                  "the asynchronous mode has no stages (leave them False)")
            if chunk_ticks is not None and (not validation.is_count(chunk_ticks) or chunk_ticks < 1):
                raise ConfigError(f"chunk_ticks must be a positive int, got {chunk_ticks!r}")
            self._check_graph()
            return self.asynchronous.learn(x, y, rule, None if chunk_ticks is None else 2.0 * chunk_ticks)
        presentation = self.present(x, y, rule, all_active=all_active, reverse=reverse)
        return presentation.finish(chunk_ticks)

    def present(
        self,
        x: np.ndarray | Mapping[str, np.ndarray],
        y: np.ndarray | Mapping[str, np.ndarray],
        rule: Rule,
        *,
        all_active: bool = False,
        reverse: bool = False,
    ) -> Presentation:
        """Start a presentation (prediction phase done, target clamped) to advance by hand."""
        self._check_graph()
        if self.asynchronous is not None:
            raise ConfigError("present() advances synchronous ticks; in the asynchronous mode use learn() "
                              "(chunk_ticks=k runs the learning phase in chunks of 2k hops)")
        return Presentation(self.engine, x, y, rule, all_active=all_active, reverse=reverse)
