"""The engine handle: what a presentation may do to a compiled network, and nothing more.

A :class:`~neurosim.engine.Simulator` owns one :class:`EngineHandle`; a
:class:`~neurosim.engine.presentation.Presentation` drives it through these methods:
validate data (:meth:`batch`), clamp, run the prediction phase, run a chunk of ticks
under a policy (:meth:`run`), and start afresh after a divergence (:meth:`reset`). The
handle holds the run's state (neurons, lines, parameters, the tick) and the backend
that runs the kernels.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import numpy as np

from neurosim import validation
from neurosim.compile.netlist import Netlist
from neurosim.engine.backend import NumbaCPU
from neurosim.engine.bundles import Recorders, RuleArrays, Schedule, StateArrays
from neurosim.engine.policy import Network
from neurosim.engine.semantics import MODE_PREDICT, STATUS_QUIET
from neurosim.engine.state import allocate_state, state_bytes
from neurosim.errors import DataError
from neurosim.graph.spec import exact_steps, output_vertices
from neurosim.monitors import Monitor


class EngineHandle:
    """A compiled network's run state and the operations a presentation needs."""

    def __init__(self, graph: nx.DiGraph, netlist: Netlist, theta: np.ndarray, threads: int) -> None:
        self.graph = graph
        self.netlist = netlist
        self.dtype = theta.dtype.type
        self.theta = theta
        self.threads = threads
        self.backend = NumbaCPU(netlist, threads)
        self.network = Network(graph, netlist, exact_steps(graph))
        self.state: StateArrays = allocate_state(netlist, 1, theta)
        self.stale = True  # no neuron has computed from the current parameters yet
        self.tick = 0
        self.monitor: Monitor | None = None
        self.inputs = [v for v in netlist.vertices if graph.nodes[v]["op"] == "input"]
        self.outputs = output_vertices(graph)

    # ---- data -------------------------------------------------------------------------
    def batch(self, data: np.ndarray | Mapping[str, np.ndarray], vertices: list[str], what: str) -> dict[str, np.ndarray]:
        """Validated ``(B, size)`` arrays for ``vertices`` from an array or a dict; an input
        with a ``default`` (an initial state) left out of the data is clamped to it."""
        given = data if isinstance(data, Mapping) else {}
        optional = {v: self.graph.nodes[v].get("default") for v in vertices if v not in given}
        optional = {v: d for v, d in optional.items() if d is not None}
        if not isinstance(data, Mapping):
            if len(vertices) - len(optional) != 1:
                raise DataError(f"this graph has {what} vertices {vertices}; pass a dict {{vertex: array}}")
            data = {next(v for v in vertices if v not in optional): data}
        missing = [v for v in vertices if v not in data and v not in optional]
        if missing:
            raise DataError(f"no {what} data for vertex {missing[0]!r}; pass an array for each of {vertices}")
        extra = sorted(set(data) - set(vertices))
        if extra:
            raise DataError(f"{what} data given for {extra}, which are not {what} vertices {vertices}")
        out, lanes = {}, None
        for v in vertices:
            if v in optional:
                continue
            arr = validation.real_array(data[v], f"{what} data for vertex {v!r}", DataError, self.dtype)
            size = self.graph.nodes[v]["size"]
            if arr.ndim == 1:
                arr = arr[None, :]
            if arr.ndim != 2 or arr.shape[1] != size or arr.shape[0] < 1:
                raise DataError(
                    f"{what} data for vertex {v!r} has shape {np.shape(data[v])}; expected (batch, {size}) "
                    "with a batch of at least one sample"
                )
            if not np.all(np.isfinite(arr)):
                raise DataError(f"{what} data for vertex {v!r} contains NaN or infinite values")
            if lanes is not None and arr.shape[0] != lanes:
                raise DataError(f"{what} data for vertex {v!r} has batch {arr.shape[0]}, others have {lanes}")
            if what == "target" and self.graph.nodes[v].get("loss") == "ce":
                tol = float(np.sqrt(np.finfo(self.dtype).eps))
                if np.any(arr < 0) or np.any(np.abs(arr.sum(axis=1) - 1) > tol):
                    raise DataError(
                        f"target data for the ce output {v!r} must have non-negative rows summing to 1 (one-hot labels)"
                    )
            lanes = arr.shape[0]
            out[v] = arr
        if lanes is None:
            raise DataError(f"no {what} data given; pass an array for at least one of {vertices}")
        return {v: out[v] if v in out else np.full((lanes, self.graph.nodes[v]["size"]), optional[v], self.dtype)
                for v in vertices}

    def vertex_values(self, vertex: str) -> np.ndarray:
        """The beliefs of a vertex's value neurons, ``(B, size)`` (a copy)."""
        lo = int(self.netlist.vertex_lo_v[self.netlist.vertices.index(vertex)])
        return self.state.v[lo : lo + self.graph.nodes[vertex]["size"]].T.copy()

    def vertex_neurons(self, vertex: str, kind: str = "value") -> np.ndarray:
        """The indices of a vertex's value (or error) neurons."""
        k = self.netlist.vertices.index(vertex)
        lo = int((self.netlist.vertex_lo_v if kind == "value" else self.netlist.vertex_lo_e)[k])
        return np.arange(lo, lo + self.graph.nodes[vertex]["size"], dtype=np.int64)

    # ---- clamping and phases ------------------------------------------------------------
    def clamp(self, batch: dict[str, np.ndarray]) -> None:
        """Clamp vertices to ``(B, size)`` arrays (a new state if the batch size changed)."""
        lanes = next(iter(batch.values())).shape[0]
        if self.state.v.shape[1] != lanes:
            validation.require_budget(
                state_bytes(self.netlist, lanes, np.dtype(self.dtype).itemsize), validation.MEMORY_BUDGET,
                f"the event-loop state of a batch of {lanes} samples (bytes)", "present smaller batches",
                DataError, "MEMORY_BUDGET")
            self.reset(lanes)
        for v, arr in batch.items():
            self.clamp_neurons(self.vertex_neurons(v), np.ascontiguousarray(arr.T))

    def clamp_neurons(self, neurons: np.ndarray, values: np.ndarray) -> None:
        """Clamp value neurons to ``values`` ``[len(neurons), lanes]`` now (the environment
        writing a stimulus: every slot of their lines, their receivers woken)."""
        self.backend.clamp(self.state, neurons, values, self.tick)

    def reset(self, lanes: int) -> None:
        """A fresh state for ``lanes`` samples over the current parameters."""
        self.state = allocate_state(self.netlist, lanes, self.theta)
        self.stale = True

    def prediction_phase(self, inputs: dict[str, np.ndarray]) -> None:
        """Clamp the inputs and relax until quiescent (clause S7): the forward pass."""
        self.clamp(inputs)
        if self.stale:  # states not computed from the current parameters: everyone recomputes once
            self.state.err_wake_in[self.tick % self.state.err_wake_in.shape[0], :] = 1
            self.stale = False
        net = self.netlist
        limit = (len(net.vertices) + 2) * (net.max_delay + 1) + 2
        onset, left = self.tick, limit
        tick_work = self.state.v.shape[1] * (net.n_synapses + net.n_value + net.n_error)
        chunk = max(1, min(validation.CHUNK_WORK // max(tick_work, 1), validation.CHUNK_BYTES // 8))
        idle = self.network.idle
        while True:
            n = min(left, chunk)  # bounded kernel calls: bounded buffers, interruptible between calls
            rec = self.recorders(0, n)
            status, done = self.run(idle, self.schedule(MODE_PREDICT, n_ticks=n, force_tick=onset,
                                                        stop_when_quiet=True), rec)
            left -= done
            if self.monitor is not None:
                self.monitor.flush(rec, None)
            if status == STATUS_QUIET:
                return
            if left <= 0:  # pragma: no cover - a DAG always settles
                raise RuntimeError(f"the prediction phase did not settle within {limit} ticks")

    # ---- running ------------------------------------------------------------------------
    def schedule(self, mode: int, *, n_ticks: int, learn_tick0: int | None = None, last_error_only: bool = False,
                 force_tick: int = -1, stop_when_quiet: bool = False, all_active: bool = False,
                 reverse: bool = False) -> Schedule:
        """The schedule of a kernel call starting now (plain Python values, so that no
        setting compiles a new specialization of the kernels)."""
        return Schedule(mode=int(mode), tick0=int(self.tick),
                        learn_tick0=int(self.tick if learn_tick0 is None else learn_tick0), n_ticks=int(n_ticks),
                        last_error_only=bool(last_error_only), force_tick=int(force_tick),
                        stop_when_quiet=bool(stop_when_quiet), all_active=bool(all_active), reverse=bool(reverse),
                        blocks=int(self.threads))

    def run(self, rule: RuleArrays, schedule: Schedule, rec: Recorders) -> tuple[int, int]:
        """Run a chunk of ticks; the tick advances by the ticks done. Returns ``(status, done)``."""
        status, done = self.backend.run(self.state, rule, schedule, rec)
        self.tick += done
        return status, done

    def recorders(self, n_firings: int, n_ticks: int) -> Recorders:
        """The kernel's record buffers for a chunk, with the monitor's (empty if none)."""
        n_e, lanes = self.state.eps.shape
        if self.monitor is not None:
            buffers = self.monitor.buffers(lanes)
        else:
            buffers = _NO_MONITOR.get(self.dtype) or _NO_MONITOR.setdefault(self.dtype, _empty_monitor(self.dtype))
        return Recorders(
            energy=np.full(n_ticks, np.nan), firings=np.zeros((n_firings, 3), np.int64),
            n_firings=np.zeros(1, np.int64), eps_at_trigger=np.full((n_e, lanes), np.nan, self.state.eps.dtype),
            energy0=np.zeros(1), **buffers,
        )


_NO_MONITOR: dict[type, dict[str, np.ndarray]] = {}


def _empty_monitor(dtype: type) -> dict[str, np.ndarray]:
    """Monitor buffers with no rows: every monitor off (same array types as a real one)."""
    i64 = np.zeros(0, np.int64)
    return dict(
        ev=np.zeros((0, 3), np.int64), ev_n=np.zeros(1, np.int64), pl=np.zeros((0, 4), np.int64),
        pl_delta=np.zeros(0, dtype), pl_n=np.zeros(1, np.int64), tr_v_idx=i64, tr_e_idx=i64, tr_tick=i64,
        tr_v=np.zeros((0, 0, 0), dtype), tr_mu=np.zeros((0, 0, 0), dtype), tr_eps=np.zeros((0, 0, 0), dtype),
        tr_phi=np.zeros((0, 0, 0), np.uint8), tr_energy=np.zeros(0), tr_n=np.zeros(1, np.int64),
        reserve=np.zeros(2, np.int64),
    )
