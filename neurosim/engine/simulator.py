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

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx
import numba
import numpy as np

from neurosim.compile.compiler import Delays, compile_graph
from neurosim.compile.netlist import ROLE_FREE, Netlist
from neurosim.engine.kernels import (
    CAUSE_PHI,
    CAUSE_RELAXED,
    CAUSE_SCHEDULE,
    DETECTOR_FEEDBACK,
    DETECTOR_SONG,
    MODE_LEARN,
    MODE_PREDICT,
    STATUS_BUFFER_FULL,
    STATUS_DIVERGED,
    STATUS_QUIET,
    UPDATE_AT_TRIGGER,
    UPDATE_HELD,
    UPDATE_NONE,
    UPDATE_PHI,
    Policy,
    Recorders,
)
from neurosim.engine.loop import clamp_values, run_ticks, run_ticks_parallel
from neurosim import validation
from neurosim.engine.state import allocate_state, net_arrays, state_bytes
from neurosim.errors import ConfigError, DataError, GraphError
from neurosim.monitors import Monitor
from neurosim.graph.spec import exact_steps, output_vertices, trigger_steps
from neurosim.params import Params, check_params, init_params
from neurosim.rules import BP, IL, ZIL, FaZIL, FixedPred, Rule, StrictPC

_NEVER = -(2**40)  # last_change before learning: the prediction phase, errors constant


@dataclass
class LearnResult:
    """What one presentation of a mini-batch did.

    ``updates`` maps each parameter to the change applied (built on first access; on
    divergence, what was computed before it, see :mod:`neurosim.rules`);
    ``energy[t]`` is ``1/2 sum eps^2`` at learning step ``t`` (NaN at a held-error
    update step, where no error is recomputed); ``firings`` lists phi's firings as int
    rows ``(step, vertex, position, lane)``, sorted, with ``vertex`` an index into
    ``vertices``, and ``late_firings`` the ones at a step other than the vertex's Z-IL
    trigger (:meth:`named` gives them with vertex names; the reference's
    :class:`~neurosim.reference.rules.ReferenceResult` indexes the same ``vertices``);
    ``eps_at_trigger`` gives each vertex's errors at its scheduled update (Z-IL, IL).
    """

    diverged: bool
    diverged_at: int | None
    steps: int
    energy: np.ndarray
    netlist: Netlist
    applied: np.ndarray  # flat changes, meaningful where ``learned``
    learned: np.ndarray  # per entry of theta: did it change in this presentation
    firings: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    late_firings: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    eps_at_trigger: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def vertices(self) -> list[str]:
        """The graph's vertices, in the order the firing rows index them."""
        return self.netlist.vertices

    @functools.cached_property
    def updates(self) -> Params:
        """The change applied to every parameter, PyTorch layout."""
        return self.netlist.unpack_params(np.where(self.learned, self.applied, 0.0).astype(self.applied.dtype))

    def named(self, rows: np.ndarray) -> list[tuple[int, str, int, int]]:
        """Firing rows as ``(step, vertex name, position, lane)`` tuples."""
        return [(int(t), self.vertices[int(k)], int(i), int(b)) for t, k, i, b in rows]

    def __repr__(self) -> str:
        state = f"diverged at step {self.diverged_at}" if self.diverged else "ok"
        return (f"LearnResult({state}, steps={self.steps}, parameters={len(self.netlist.param_index)}, "
                f"entries changed={int(self.learned.sum())}, firings={len(self.firings)}, "
                f"late={len(self.late_firings)})")


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
    ) -> None:
        from neurosim.params import _float_dtype

        dtype = _float_dtype(dtype)
        limit = numba.config.NUMBA_NUM_THREADS
        if not validation.is_count(threads) or not 1 <= threads <= limit:
            raise ConfigError(f"threads must be an int from 1 to {limit} (NUMBA_NUM_THREADS), got {threads!r}")
        self.threads = int(threads)
        self.monitor: Monitor | None = None  # set by neurosim.monitors.Monitor.attach
        self.graph = graph
        self.dtype = np.dtype(dtype).type
        self.netlist = compile_graph(graph, delays=delays, own_delay=own_delay)
        self.net = net_arrays(self.netlist)
        p = init_params(graph, seed, self.dtype) if params is None else check_params(graph, params, self.dtype)
        self.theta = self.netlist.pack_params(p, self.dtype)
        self.state = allocate_state(self.netlist, 1, self.theta)
        self.stale = True  # no neuron has computed from the current parameters yet
        self.tick = 0
        self.inputs = [v for v in self.netlist.vertices if graph.nodes[v]["op"] == "input"]
        self.n_exact = exact_steps(graph)
        # read-only policy defaults, shared by every chunk
        self._no_trigger = np.full(self.netlist.n_error, -1, np.int64)
        self._no_deferral = np.full(self.netlist.n_theta if self.netlist.shares_params else 0, -1, np.int64)
        self._none = np.zeros(0, np.int64)
        self._deferrals: dict[tuple[str, int], dict] = {}
        self.outputs = output_vertices(graph)
        self._fingerprint = validation.graph_fingerprint(graph)

    def _check_graph(self) -> None:
        """Raise GraphError if the graph was edited after this simulator was built on it."""
        if validation.graph_fingerprint(self.graph) != self._fingerprint:
            raise GraphError(
                "the graph was edited after this Simulator was built on it; the simulator still runs the "
                "graph as it was, so rebuild the Simulator (neurosim.engine.Simulator(graph, ...)) after editing"
            )

    # ---- parameters -------------------------------------------------------------
    @property
    def params(self) -> Params:
        """The current parameters (copies), PyTorch layout."""
        return self.netlist.unpack_params(self.theta)

    def set_params(self, params: Mapping[str, np.ndarray]) -> None:
        """Replace every parameter (validated; see :func:`neurosim.params.check_params`)."""
        self._check_graph()
        self.theta[:] = self.netlist.pack_params(check_params(self.graph, params, self.dtype), self.dtype)
        self.stale = True

    # ---- presentations ----------------------------------------------------------
    def predict(self, x: np.ndarray | Mapping[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        """Run the prediction phase on ``x`` and return the output beliefs ``(B, size)``
        (a dict by output vertex when the graph has several outputs)."""
        self._check_graph()
        self._prediction_phase(self._batch(x, self.inputs, "input"))
        outs = {o: self._vertex_values(o) for o in self.outputs}
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
        of the tick semantics (clauses S4 and S3 of :mod:`neurosim.engine.loop`).
        """
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
        return Presentation(self, x, y, rule, all_active=all_active, reverse=reverse)

    # ---- internals ------------------------------------------------------------------
    def _batch(self, data: np.ndarray | Mapping[str, np.ndarray], vertices: list[str], what: str) -> dict[str, np.ndarray]:
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

    def _vertex_values(self, vertex: str) -> np.ndarray:
        k = self.netlist.vertices.index(vertex)
        lo = int(self.netlist.vertex_lo_v[k])
        return self.state.v[lo : lo + self.graph.nodes[vertex]["size"]].T.copy()

    def _vertex_neurons(self, vertex: str) -> np.ndarray:
        k = self.netlist.vertices.index(vertex)
        lo = int(self.netlist.vertex_lo_v[k])
        return np.arange(lo, lo + self.graph.nodes[vertex]["size"], dtype=np.int64)

    def _clamp(self, batch: dict[str, np.ndarray]) -> None:
        lanes = next(iter(batch.values())).shape[0]
        if self.state.v.shape[1] != lanes:
            validation.require_budget(
                state_bytes(self.netlist, lanes, np.dtype(self.dtype).itemsize), validation.MEMORY_BUDGET,
                f"the event-loop state of a batch of {lanes} samples (bytes)", "present smaller batches",
                DataError, "MEMORY_BUDGET")
            self.state = allocate_state(self.netlist, lanes, self.theta)
            self.stale = True
        for v, arr in batch.items():
            clamp_values(self.net, self.state, self._vertex_neurons(v), np.ascontiguousarray(arr.T), self.tick)

    def _prediction_phase(self, inputs: dict[str, np.ndarray]) -> None:
        """Clamp the inputs and relax until quiescent (clause S7): the forward pass."""
        self._clamp(inputs)
        if self.stale:  # states not computed from the current parameters: everyone recomputes once
            self.state.err_wake_in[self.tick % self.state.err_wake_in.shape[0], :] = 1
            self.stale = False
        limit = (len(self.netlist.vertices) + 2) * (self.netlist.max_delay + 1) + 2
        onset, left = self.tick, limit
        net = self.netlist
        tick_work = self.state.v.shape[1] * (net.n_synapses + net.n_value + net.n_error)
        chunk = max(1, min(validation.CHUNK_WORK // max(tick_work, 1), validation.CHUNK_BYTES // 8))
        while True:
            n = min(left, chunk)  # bounded kernel calls: bounded buffers, interruptible between calls
            pol = self._policy(MODE_PREDICT, n_ticks=n, force_tick=onset, stop_when_quiet=True)
            rec = self._recorders(0, n)
            status, done = self._run(pol, rec)
            self.tick += done
            left -= done
            if self.monitor is not None:
                self.monitor.flush(rec, None)
            if status == STATUS_QUIET:
                return
            if left <= 0:  # pragma: no cover - a DAG always settles
                raise RuntimeError(f"the prediction phase did not settle within {limit} ticks")

    def _run(self, pol: Policy, rec: Recorders) -> tuple[int, int]:
        """Run the kernel on this simulator's threads (the serial entry point for one)."""
        if self.threads == 1:
            return run_ticks(self.net, self.state, pol, rec)
        numba.set_num_threads(self.threads)
        return run_ticks_parallel(self.net, self.state, pol, rec, self.netlist.shares_params)

    def _deferral(self, rule: str, ticks: int = 0) -> dict:
        """Policy fields holding back shared parameters' changes (none where nothing is shared).

        Z-IL: a parameter read at several trigger steps applies its sum at the end of the
        last one. Fa-Z-IL: no schedule says when a shared parameter's last trigger is, so
        a parameter read by several vertices applies its sum at the end of the
        presentation (``ticks``).
        """
        net = self.netlist
        if not net.shares_params:
            return {}
        key = (rule, ticks)
        if key in self._deferrals:
            return self._deferrals[key]
        if rule == "zil":
            shared = net.per_entry(net.param_trigger_lo != net.param_trigger_hi, False)
            step = net.per_entry(net.param_trigger_hi, -1)
        else:
            shared = net.per_entry(net.param_vertices > 1, False)
            step = np.full(net.n_theta, ticks - 1)
        readers = np.zeros(net.n_error, bool)
        readers[net.s_error[shared[net.synapse_params]]] = True
        bias_comp = np.repeat(np.arange(net.n_compartments), np.diff(net.c_bias_ptr))
        readers[net.c_err[bias_comp[shared[net.c_bias]]]] = True
        self._deferrals[key] = dict(defer_step=np.where(shared, step, -1).astype(np.int64),
                                    defer_params=np.flatnonzero(shared).astype(np.int64),
                                    defer_wake=np.flatnonzero(readers).astype(np.int64))
        return self._deferrals[key]

    def _policy(self, mode: int, **kw: object) -> Policy:
        base = dict(
            mode=mode, fixed=False, gamma=1.0, alpha=0.0, update_kind=UPDATE_NONE,
            trigger=self._no_trigger, t_d=1, detector=DETECTOR_SONG,
            cause=CAUSE_SCHEDULE, shares=self.netlist.shares_params,
            defer_step=self._no_deferral, defer_params=self._none, defer_wake=self._none, held_step=-1,
            tick0=self.tick, learn_tick0=self.tick, n_ticks=0, last_error_only=False,
            force_tick=-1, stop_when_quiet=False, all_active=False, reverse=False,
            max_energy_ratio=np.inf, blocks=self.threads,
        )
        base.update(kw)
        # plain Python types, so that no setting compiles a new specialization of the kernel
        for key in ("gamma", "alpha", "max_energy_ratio"):
            base[key] = float(base[key])
        for key in ("fixed", "shares", "last_error_only", "stop_when_quiet", "all_active", "reverse"):
            base[key] = bool(base[key])
        for key in ("mode", "update_kind", "t_d", "detector", "cause", "held_step", "tick0", "learn_tick0",
                    "n_ticks", "force_tick", "blocks"):
            base[key] = int(base[key])
        return Policy(**base)


    def _recorders(self, n_firings: int, n_ticks: int) -> Recorders:
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


class Presentation:
    """One mini-batch on the event loop, from its target onwards, advanced tick by tick.

    Created by :meth:`Simulator.present`: the prediction phase has run and the target is
    clamped. :meth:`advance` runs some learning ticks; :meth:`finish` runs the rest and
    returns the :class:`LearnResult` (on divergence, keeping what was computed before it).
    """

    def __init__(
        self, sim: Simulator, x: object, y: object, rule: Rule, *, all_active: bool, reverse: bool
    ) -> None:
        if not isinstance(rule, Rule):
            raise ConfigError(f"rule must be a neurosim.rules.Rule, got {type(rule).__name__}")
        if isinstance(rule, BP):
            raise ConfigError("BP is the reference, not an event-loop rule; use neurosim.reference.backprop.sgd_step")
        for name, flag in (("all_active", all_active), ("reverse", reverse)):
            if not isinstance(flag, (bool, np.bool_)):
                raise ConfigError(f"{name} must be True or False, got {flag!r}")
        self.sim = sim
        inputs = sim._batch(x, sim.inputs, "input")
        targets = sim._batch(y, sim.outputs, "target")
        lanes = next(iter(inputs.values())).shape[0]
        if next(iter(targets.values())).shape[0] != lanes:
            raise DataError("inputs and targets have different batch sizes")
        self.rule = rule
        self.kind, n_ticks, kw = self._rule_policy(rule)
        net = sim.netlist
        tick_work = lanes * (net.n_synapses + net.n_value + net.n_error)
        validation.require_budget(
            n_ticks * tick_work, validation.WORK_BUDGET,
            f"the work of this presentation ({n_ticks} ticks x {lanes} samples x "
            f"{net.n_synapses + net.n_value + net.n_error} synapses and neurons)",
            "use fewer inference steps or smaller batches", ConfigError, "WORK_BUDGET")
        # ticks per kernel call: bounded work (an interrupt is served between calls) and record memory
        tick_bytes = 8 + (24 * net.n_error * lanes if self.kind == UPDATE_PHI else 0)
        self.chunk_max = max(1, min(validation.CHUNK_WORK // max(tick_work, 1), validation.CHUNK_BYTES // tick_bytes))
        sim._prediction_phase(inputs)
        st = sim.state
        st.vhat[:] = st.v
        st.mu0[:] = st.mu
        st.last_change[:] = _NEVER
        st.spent[:] = 0
        st.saved[:] = 0
        st.e_saved[:] = 0
        st.deferred[:] = 0  # an abandoned presentation's held changes are not this one's
        sim._clamp(targets)
        if isinstance(rule, ZIL) and rule.init_noise > 0:
            self._perturb_beliefs(rule.init_noise, rule.noise_seed)
        learn0 = sim.tick
        for o in sim.outputs:  # the teacher's arrival is an event even where y == v already
            k = sim.netlist.vertices.index(o)
            lo = int(sim.netlist.vertex_lo_e[k])
            st.err_wake_own[learn0 % st.err_wake_own.shape[0], lo : lo + sim.graph.nodes[o]["size"]] = 1
        self.total = n_ticks
        self.done = 0
        self.learn0 = learn0
        self.options = dict(kw, all_active=all_active, reverse=reverse, learn_tick0=learn0)
        self.energy: list[np.ndarray] = []
        self.firings: list[np.ndarray] = []
        self.eps_at_trigger = np.full(st.eps.shape, np.nan, st.eps.dtype)
        self.energy0 = np.zeros(1)
        self.diverged_at: int | None = None

    def _rule_policy(self, rule: Rule) -> tuple[int, int, dict]:
        sim = self.sim
        n_e = sim.netlist.n_error
        kw: dict = dict(mode=MODE_LEARN, alpha=rule.alpha, max_energy_ratio=rule.max_energy_ratio,
                        last_error_only=True)
        if isinstance(rule, IL):
            kw.update(gamma=rule.gamma, update_kind=UPDATE_AT_TRIGGER, trigger=np.full(n_e, rule.t_c, np.int64),
                      cause=CAUSE_RELAXED)
            return UPDATE_AT_TRIGGER, rule.t_c + 1, kw
        net = sim.netlist
        if isinstance(rule, (ZIL, FaZIL)) and not net.triggers_defined:
            trigger_steps(sim.graph)  # raises the GraphError that says why Z-IL is not defined here
        if isinstance(rule, ZIL):
            if rule.update_step is None:  # C2: vertex j at its own step l_j
                trig = net.e_trigger.astype(np.int64)
            else:  # C2 broken (Song et al. Fig. 3): every vertex at one step
                trig = np.where(net.e_trigger >= 0, rule.update_step, -1).astype(np.int64)
            last = int(trig.max())
            if rule.shared_updates == "deferred" and rule.update_step is None:
                kw.update(sim._deferral("zil"))
            kw.update(gamma=rule.gamma, update_kind=UPDATE_AT_TRIGGER, trigger=trig)
            return UPDATE_AT_TRIGGER, last + 1, kw
        if isinstance(rule, FaZIL):
            ticks = rule.ticks if rule.ticks is not None else sim.n_exact
            if rule.shared_updates == "deferred":
                kw.update(sim._deferral("fazil", ticks))
            detector = DETECTOR_FEEDBACK if rule.detector == "feedback" else DETECTOR_SONG
            kw.update(gamma=rule.gamma, update_kind=UPDATE_PHI, t_d=rule.t_d, detector=detector, cause=CAUSE_PHI)
            return UPDATE_PHI, ticks, kw
        if isinstance(rule, StrictPC):
            kw.update(gamma=rule.eta, update_kind=UPDATE_HELD, held_step=rule.n, cause=CAUSE_RELAXED)
            return UPDATE_HELD, rule.n + 1, kw
        if isinstance(rule, FixedPred):
            n = rule.n if rule.n is not None else sim.n_exact
            kw.update(gamma=rule.eta, update_kind=UPDATE_HELD, held_step=n, fixed=True, cause=CAUSE_RELAXED)
            return UPDATE_HELD, n + 1, kw
        raise ConfigError(f"the event loop has no policy for rule {type(rule).__name__}")

    def _perturb_beliefs(self, sigma: float, seed: int) -> None:
        """Song et al.'s C1 broken: Gaussian noise on every hidden belief at the start of
        learning (the environment's perturbation, written like a clamp)."""
        sim, st = self.sim, self.sim.state
        free = np.flatnonzero(sim.netlist.v_role == ROLE_FREE).astype(np.int64)
        noise = np.random.default_rng(seed).normal(0.0, sigma, size=(len(free), st.v.shape[1]))
        clamp_values(sim.net, st, free, np.ascontiguousarray(st.v[free] + noise.astype(st.v.dtype)), sim.tick)

    @property
    def finished(self) -> bool:
        """Whether every learning tick has run (or the run diverged)."""
        return self.done >= self.total or self.diverged_at is not None

    def advance(self, n_ticks: int) -> None:
        """Run up to ``n_ticks`` more learning ticks (fewer only at the end or on divergence)."""
        if not validation.is_count(n_ticks) or n_ticks < 0:
            raise ConfigError(f"n_ticks must be an int >= 0, got {n_ticks!r}")
        target = min(self.done + n_ticks, self.total)
        while self.done < target and self.diverged_at is None:
            self._chunk(target - self.done)

    def _chunk(self, n: int) -> None:
        """One kernel call of at most ``n`` ticks (it stops early to flush a monitor)."""
        sim, st = self.sim, self.sim.state
        n = min(n, self.chunk_max)
        opts = dict(self.options)
        opts["last_error_only"] = self.done + n == self.total
        pol = sim._policy(n_ticks=n, **opts)
        rec = sim._recorders(st.eps.size * n if self.kind == UPDATE_PHI else 0, n)
        rec.energy0[0] = self.energy0[0]
        rec.eps_at_trigger[:] = self.eps_at_trigger
        status, done = sim._run(pol, rec)
        if sim.monitor is not None:
            sim.monitor.flush(rec, self.learn0)
        if status == STATUS_BUFFER_FULL:  # pragma: no cover - the buffer is sized for the worst case
            raise RuntimeError("phi firing buffer overflowed")
        self.energy0[0] = rec.energy0[0]
        self.eps_at_trigger[:] = rec.eps_at_trigger
        self.energy.append(rec.energy[:done])
        self.firings.append(rec.firings[: rec.n_firings[0]])
        sim.tick += done
        self.done += done
        if status == STATUS_DIVERGED:
            self.diverged_at = self.done - 1

    def finish(self, chunk_ticks: int | None = None) -> LearnResult:
        """Run the remaining ticks (in chunks of ``chunk_ticks``) and return the result."""
        if chunk_ticks is not None and (not validation.is_count(chunk_ticks) or chunk_ticks < 1):
            raise ConfigError(f"chunk_ticks must be a positive int, got {chunk_ticks!r}")
        while not self.finished:
            self.advance(chunk_ticks or self.total)
        sim, st = self.sim, self.sim.state
        net = sim.netlist
        diverged = self.diverged_at is not None
        learned = st.saved.astype(bool)
        applied = st.applied
        if diverged:  # the presentation ends here (see neurosim.rules): held sums apply
            if "defer_step" in self.options:
                held = self.options["defer_params"]
                held = held[self.options["defer_step"][held] >= self.diverged_at]
                sim.theta[held] += st.deferred[held]
            if not np.all(np.isfinite(sim.theta[learned])):  # a weight is not a number: undo all
                sim.theta[learned] = st.theta_saved[learned]
                learned[:] = False
            sim.state = allocate_state(net, st.v.shape[1], sim.theta)
            sim.stale = True
        else:  # the result keeps this buffer; the next presentation gets a new one
            sim.state = st._replace(applied=np.empty_like(applied))
        raw = np.concatenate(self.firings) if self.firings else np.zeros((0, 3), np.int64)
        if diverged:  # firings at the diverging step made no change
            raw = raw[raw[:, 0] < self.diverged_at]
        step, neuron, lane = raw[:, 0], raw[:, 1], raw[:, 2]
        rows = np.column_stack([step, net.e_vertex[neuron], net.e_pos[neuron], lane]).astype(np.int64)
        order = np.lexsort(rows.T[::-1])
        rows = rows[order]
        late = rows[step[order] != net.e_trigger[neuron[order]]]
        if sim.monitor is not None:
            vertex_trigger = np.where(net.vertex_lo_e >= 0, net.e_trigger[np.maximum(net.vertex_lo_e, 0)], -1)
            sim.monitor.add_firings(rows, vertex_trigger, self.learn0)
        eps_trig = {}
        if self.kind == UPDATE_AT_TRIGGER:
            for k, v in enumerate(net.vertices):
                lo = int(net.vertex_lo_e[k])
                if lo >= 0:
                    eps_trig[v] = self.eps_at_trigger[lo : lo + sim.graph.nodes[v]["size"]].T.copy()
        return LearnResult(
            diverged=diverged,
            diverged_at=self.diverged_at,
            steps=self.done,
            energy=np.concatenate(self.energy) if self.energy else np.zeros(0),
            netlist=net,
            applied=applied,
            learned=learned,
            firings=rows,
            late_firings=late,
            eps_at_trigger=eps_trig,
        )
