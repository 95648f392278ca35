"""The asynchronous mode's run state and presentations (clauses A1..A9 of ``docs/async.md``).

:class:`AsyncEngine` holds what the event-driven driver (:mod:`neurosim.engine.events_driver`)
runs on: the neurons' own state (the same :class:`~neurosim.engine.bundles.ErrorState`
and :class:`~neurosim.engine.bundles.ValueState` as the synchronous mode, ``last_change``
in learning steps as a float), the per-link inboxes, the event queue with the messages
in flight and their payloads, and the time in hops. A presentation is the prediction
phase until no message is in flight, then the learning phase from
``learn0 = 2 floor(t_last / 2) + 2`` (the first even hop after the last event) to
``learn0 + 2 (steps - 1) + 1`` (A9). The next presentation starts one hop later, with
the messages still in flight.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurosim import validation
from neurosim.compile.netlist import ROLE_FREE
from neurosim.engine.bundles import ErrorState, Inbox, ValueState, Weights, cut
from neurosim.engine.delays import own_delays, synapse_delays
from neurosim.engine.events_driver import (
    STATUS_STALLED,
    Boxes,
    Clock,
    LinkNet,
    Log,
    Pool,
    clamp_links,
    run_events,
)
from neurosim.engine.handle import EngineHandle
from neurosim.engine.policy import builder
from neurosim.engine.presentation import LearnResult
from neurosim.engine.semantics import (
    MODE_LEARN,
    MODE_PREDICT,
    STATUS_DIVERGED,
    UPDATE_AT_TRIGGER,
    UPDATE_HELD,
    UPDATE_PHI,
)
from neurosim.engine.state import allocate_state
from neurosim.engine.timing import Async
from neurosim.engine.transport.events import EventQueue, grown, new_queue
from neurosim.errors import ConfigError, DataError
from neurosim.rules import ZIL, Rule

_NEVER = -(2.0**40)  # phi's last change before learning


@dataclass
class AsyncLearnResult(LearnResult):
    """A :class:`~neurosim.engine.presentation.LearnResult` in float time: ``learn0`` and
    ``t_end`` (hops), ``firing_times`` (the time of each of phi's firings, in the order
    of ``firings``' rows before sorting: ``(time, error neuron, lane)``),
    ``trigger_times`` (per vertex, each error neuron's trigger time, NaN where it did
    not trigger), and, when recorded (:meth:`AsyncEngine.record`), ``emissions``
    ``(time, link, index, arrival)``, ``computations`` ``(time, neuron id)`` of the
    error neurons and ``plasticity`` ``(time, error neuron, entry, change)``."""

    learn0: float = 0.0
    t_end: float = 0.0
    firing_times: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    trigger_times: dict[str, np.ndarray] = field(default_factory=dict)
    emissions: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    computations: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    plasticity: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))


class AsyncEngine:
    """A compiled network in the asynchronous mode, over the synchronous engine's handle
    (its netlist, bundles, parameters and data checks)."""

    def __init__(self, handle: EngineHandle, timing: Async) -> None:
        if not isinstance(timing, Async):
            raise ConfigError(f"timing must be neurosim.engine.Async(...) here, got {timing!r}")
        self.handle = handle
        self.timing = timing
        net = handle.netlist
        S = net.n_synapses
        self.delays = synapse_delays(timing.delays, handle.graph, net)
        self.own = own_delays(timing.own_delay, net)
        br_len = net.br_len.astype(np.int64)
        first = np.concatenate([[0], np.cumsum(br_len)[:-1]]).astype(np.int64)
        run = np.repeat(np.arange(len(br_len)), br_len)
        q = np.arange(len(run)) - first[run]
        syn = net.br_syn[run].astype(np.int64) + q * net.br_stride[run].astype(np.int64)
        gpos = np.full(S, -1, np.int64)
        gpos[syn] = np.arange(len(run))
        if np.any(gpos < 0):  # pragma: no cover - every synapse leaves one value neuron
            raise RuntimeError("a synapse is in no outgoing run")
        jit = timing.jitter
        self.ln = LinkNet(
            s_err=net.s_error.astype(np.int64), s_pre=net.s_pre.astype(np.int64), s_gpos=gpos,
            s_delay=self.delays.astype(np.float64), own_delay=self.own.astype(np.float64),
            e_value=net.e_value.astype(np.int64), e_vg_ptr=net.e_vg_ptr, e_vg=net.e_vg, vg_ptr=net.vg_ptr,
            vg_members=net.vg_members, sigma=float(jit.sigma) if jit else 0.0, floor=float(jit.floor) if jit else 0.05,
            seed=int(jit.seed) if jit else 0, latency=float(timing.latency), commit_delay=float(timing.commit_delay),
            integration=float(timing.integration))
        self.x_base = net.fr_syn.astype(np.int64)
        self.g_base = first
        b = handle.backend
        self.cp, self.en, self.vn, self.pk = b.cp, b.en, b.vn, b.pk
        e_in = np.diff(net.in_ptr[net.e_comp_ptr])  # synapses per error neuron
        csum = np.concatenate([[0], np.cumsum(br_len)])
        out = np.diff(csum[net.br_ptr])  # synapses per value neuron
        vg = np.diff(net.vg_ptr)
        e_vg = np.array([vg[net.e_vg[net.e_vg_ptr[i]:net.e_vg_ptr[i + 1]]].sum() for i in range(net.n_error)] or [0])
        share = np.diff(net.sg_ptr).max(initial=1)
        group = int(np.max(net.e_group_hi - net.e_group_lo, initial=1))
        self.fan = int(max(group * (int(e_in.max(initial=0)) + 2), int(out.max(initial=0)) + 2,
                           share * (int(e_vg.max()) + 1) + 1, net.n_error * (int(e_vg.max()) + 2) + 1) + 4)
        self.t = 0.0
        self.stale = True
        self.record_rows = (0, 0, 0)
        self.reset(1)

    # ---- state ------------------------------------------------------------------------
    def reset(self, lanes: int) -> None:
        """A fresh state for ``lanes`` samples: every neuron at 0, no message in flight."""
        h, net = self.handle, self.handle.netlist
        st = allocate_state(net, lanes, h.theta)
        self.state = st._replace(last_change=np.zeros(st.last_change.shape, np.float64))
        dt = h.theta.dtype
        S, n_e, n_v = net.n_synapses, net.n_error, net.n_value
        i64 = lambda n: np.full(n, -1, np.int64)  # noqa: E731
        self.boxes = Boxes(
            x_in=np.zeros((1, S, lanes), dt), x_seq=i64(S), x_tag=np.zeros(S, np.uint8),
            g_in=np.zeros((1, S, lanes), dt), g_seq=i64(S), g_tag=np.zeros(S, np.uint8),
            v_in=np.zeros((1, n_e, lanes), dt), v_seq=i64(n_e), v_tag=np.zeros(n_e, np.uint8),
            mu_in=np.zeros((1, n_v, lanes), dt), e_in=np.zeros((1, n_v, lanes), dt), me_seq=i64(n_v),
            me_tag=np.zeros(n_v, np.uint8), sent=np.zeros(2 * S + 2 * n_e, np.int64),
            dirty=np.zeros(n_e, np.uint8), comp_time=np.full(n_v + n_e, -np.inf),
            mu_sent=np.zeros((n_e, lanes), dt), triggered=np.zeros(n_e, np.uint8), dw_syn=np.zeros(S),
            dw_b=np.zeros(len(net.c_bias)), commits=np.zeros(1, np.int64))
        cap = max(1024, 4 * self.fan)
        self.queue: EventQueue = new_queue(cap)
        self.pool = Pool(np.zeros((cap, 2, lanes), dt), np.zeros(cap, np.uint8),
                         np.arange(cap - 1, -1, -1, dtype=np.int64), np.array([cap], np.int64))
        self.stale = True

    def record(self, emissions: int = 0, computations: int = 0, plasticity: int = 0) -> None:
        """Record up to this many rows of emissions, error computations and plasticity
        commits per presentation (0: off; the results do not depend on it)."""
        for name, n in (("emissions", emissions), ("computations", computations), ("plasticity", plasticity)):
            if not validation.is_count(n) or n < 0:
                raise ConfigError(f"{name} must be an int >= 0, got {n!r}")
        self.record_rows = (int(emissions), int(computations), int(plasticity))

    def _log(self, n_steps: int) -> Log:
        n_e, lanes = self.state.eps.shape
        ne, nc, npl = self.record_rows
        return Log(energy=np.full(max(n_steps, 1), np.nan), energy0=np.zeros(1),
                   firings=np.zeros((n_e * lanes * max(n_steps, 1), 3)), n_firings=np.zeros(1, np.int64),
                   trigger_time=np.full(n_e, np.nan), eps_at_trigger=np.full((n_e, lanes), np.nan, self.state.eps.dtype),
                   emits=np.zeros((ne, 4)), n_emits=np.zeros(1, np.int64), computes=np.zeros((nc, 2)),
                   n_computes=np.zeros(1, np.int64), plast=np.zeros((npl, 4)), n_plast=np.zeros(1, np.int64))

    def _room(self, n: int) -> None:
        while self.queue.size[0] + n > self.queue.time.shape[0]:
            self.queue = grown(self.queue)

    def clamp_neurons(self, which: np.ndarray, values: np.ndarray, t: float, tag: bool = False) -> None:
        """Clamp value neurons ``which`` to ``values`` ``[len(which), lanes]`` at ``t``."""
        net = self.handle.netlist
        out = int(np.sum(net.br_len[np.concatenate([np.arange(net.br_ptr[j], net.br_ptr[j + 1]) for j in which])]))
        self._room(out + len(which))
        clamp_links(self.vn, self.ln, self.boxes, self.state.v, which.astype(np.int64),
                    np.ascontiguousarray(values, self.state.v.dtype), self.queue, float(t), bool(tag))

    def _clamp(self, batch: dict[str, np.ndarray], t: float, tag: bool) -> None:
        lanes = next(iter(batch.values())).shape[0]
        if self.state.v.shape[1] != lanes:
            self.reset(lanes)
        for v, arr in batch.items():
            self.clamp_neurons(self.handle.vertex_neurons(v), np.ascontiguousarray(arr.T), t, tag)

    def _run(self, ck: Clock, log: Log) -> tuple[int, float, int, int]:
        es, vs, w = cut(ErrorState, self.state), cut(ValueState, self.state), cut(Weights, self.state)
        bx = self.boxes
        x = Inbox(bx.x_in, np.zeros(1, np.int64), np.zeros(len(self.x_base), np.int64), self.x_base)
        g = Inbox(bx.g_in, np.zeros(1, np.int64), np.zeros(len(self.g_base), np.int64), self.g_base)
        status, t_last, at, sample, self.queue, self.pool = run_events(
            self.cp, self.en, self.vn, self.pk, es, vs, w, x, g, bx, self.ln, self._rule, ck, log, self.queue,
            self.pool)
        return status, t_last, at, sample

    # ---- phases -----------------------------------------------------------------------
    def prediction_phase(self, inputs: dict[str, np.ndarray], log: Log | None = None) -> float:
        """Clamp the inputs at the current time and relax until no message is in flight
        (A9); returns ``learn0``, the first even hop after the last event. ``log``: where
        to record (the presentation's)."""
        t0 = self.t
        self._clamp(inputs, t0, False)
        n_e = self.handle.netlist.n_error
        if self.stale:  # states not computed from the current parameters: everyone recomputes once
            self.boxes.dirty[:] = 1
            self.stale = False
        self._room(n_e)
        from neurosim.engine.events_driver import _wake  # noqa: PLC0415 - a compiled helper
        n_v = self.handle.netlist.n_value
        for i in range(n_e):  # the stimulus onset: every error neuron computes and emits once
            _wake(self.queue, t0, n_v + i)
        self._rule = self.handle.network.idle
        net = self.handle.netlist
        budget = 1000 * (net.n_synapses + net.n_value + net.n_error) * (len(net.vertices) + 2) + 10**6
        ck = Clock(mode=MODE_PREDICT, learn0=t0, t_end=np.inf, onset=t0, front=False, held_time=-1.0, n_steps=0,
                   max_events=budget, fan=self.fan, t_stop=np.inf, sample0=0)
        status, t_last, _, _ = self._run(ck, log if log is not None else self._log(0))
        if status == STATUS_STALLED:  # pragma: no cover - a DAG always settles
            raise RuntimeError(f"the prediction phase did not settle within {budget} events")
        learn0 = 2.0 * np.floor(t_last / 2.0) + 2.0
        self.t = learn0
        return learn0

    def learn(self, x: object, y: object, rule: Rule, chunk_hops: float | None = None) -> AsyncLearnResult:
        """Present a mini-batch: the prediction phase on ``x``, then ``rule`` with target
        ``y`` (in chunks of ``chunk_hops`` hops; the result does not depend on them)."""
        h = self.handle
        build = builder(rule)
        if chunk_hops is not None and (not validation.is_real(chunk_hops) or not chunk_hops > 0):
            raise ConfigError(f"chunk_hops must be a number of hops > 0, got {chunk_hops!r}")
        inputs = h.batch(x, h.inputs, "input")
        targets = h.batch(y, h.outputs, "target")
        if next(iter(targets.values())).shape[0] != next(iter(inputs.values())).shape[0]:
            raise DataError("inputs and targets have different batch sizes")
        plan = build(rule, h.network)
        ra, n = plan.rule, plan.n_ticks
        front = isinstance(rule, ZIL) and self.timing.zil_trigger == "front"
        if front and len(ra.defer_params):
            raise ConfigError("Z-IL at the front (zil_trigger='front') needs a graph without shared parameters; "
                              "use zil_trigger='clock' on convolutional or recurrent graphs")
        lanes = next(iter(inputs.values())).shape[0]
        if self.state.v.shape[1] != lanes:
            self.reset(lanes)
        log = self._log(n)
        learn0 = self.prediction_phase(inputs, log)
        st, bx, net = self.state, self.boxes, h.netlist
        st.vhat[:] = st.v
        st.mu0[:] = st.mu
        st.last_change[:] = _NEVER
        st.spent[:] = 0
        st.saved[:] = 0
        st.e_saved[:] = 0
        st.deferred[:] = 0
        for tag in (bx.x_tag, bx.g_tag, bx.v_tag, bx.me_tag, bx.triggered):
            tag[:] = 0
        self._clamp(targets, learn0, True)  # the teacher: tagged, an event even where y == v already
        if plan.perturb is not None:
            sigma, seed = plan.perturb
            free = np.flatnonzero(net.v_role == ROLE_FREE).astype(np.int64)
            noise = np.random.default_rng(seed).normal(0.0, sigma, size=(len(free), st.v.shape[1]))
            self.clamp_neurons(free, st.v[free] + noise.astype(st.v.dtype), learn0)
        from neurosim.engine.events_driver import _wake  # noqa: PLC0415
        from neurosim.engine.transport.events import COMMIT, push  # noqa: PLC0415
        n_v, n_e = net.n_value, net.n_error
        self._room(2 * n_e + n + 2)
        if ra.update_kind == UPDATE_AT_TRIGGER and not front:
            for i in np.flatnonzero((ra.trigger >= 0) & (ra.trigger < n)):
                _wake(self.queue, learn0 + 2.0 * ra.trigger[i], n_v + int(i))
        held_time = -1.0
        if ra.update_kind == UPDATE_HELD:
            held_time = learn0 + 2.0 * ra.held_step
            _wake(self.queue, held_time, n_v + n_e)
        for step in np.unique(ra.defer_step[ra.defer_params]) if len(ra.defer_params) else ():
            push(self.queue, learn0 + 2.0 * step + 1.0, COMMIT, n_v + n_e + 1, int(step), 0, 0)
        t_end = learn0 + (self.timing.max_hops if front else 2.0 * (n - 1) + 1.0)
        self._rule = ra
        sample, status, t_last, at = 0, 0, learn0, -1
        stop = learn0
        if front:
            chunk_hops = None  # the front's end is not a time known in advance
        while True:
            stop = stop + chunk_hops if chunk_hops is not None else np.inf
            ck = Clock(mode=MODE_LEARN, learn0=learn0, t_end=t_end, onset=-1.0, front=front, held_time=held_time,
                       n_steps=n, max_events=0, fan=self.fan, t_stop=stop, sample0=sample)
            status, t_last, at, sample = self._run(ck, log)
            q = self.queue
            over = q.size[0] == 0 or q.time[0] > t_end
            if status == STATUS_DIVERGED or stop == np.inf or over or stop > t_end:
                break
        if front:
            t_end = t_last
        self.t = t_end + 1.0
        return self._result(plan, rule, log, learn0, t_end, status, at, n)

    def _result(self, plan: object, rule: Rule, log: Log, learn0: float, t_end: float, status: int, at: int,
                n: int) -> AsyncLearnResult:
        h, st, net = self.handle, self.state, self.handle.netlist
        ra = plan.rule
        diverged = status == STATUS_DIVERGED
        learned = st.saved.astype(bool)
        applied = st.applied
        steps = at + 1 if diverged else n
        if diverged:
            held = ra.defer_params[ra.defer_step[ra.defer_params] >= at]
            h.theta[held] += st.deferred[held]
            if not np.all(np.isfinite(h.theta[learned])):
                h.theta[learned] = st.theta_saved[learned]
                learned[:] = False
            self.reset(st.v.shape[1])
        else:
            self.state = st._replace(applied=np.empty_like(applied))
        raw = log.firings[: log.n_firings[0]]
        if diverged:
            raw = raw[(raw[:, 0] - learn0) // 2 < at]
        step = ((raw[:, 0] - learn0) // 2).astype(np.int64)
        neuron, lane = raw[:, 1].astype(np.int64), raw[:, 2].astype(np.int64)
        rows = np.column_stack([step, net.e_vertex[neuron], net.e_pos[neuron], lane]).astype(np.int64)
        order = np.lexsort(rows.T[::-1])
        rows = rows[order]
        late = rows[step[order] != net.e_trigger[neuron[order]]] if plan.rule.update_kind == UPDATE_PHI else rows[:0]
        eps_trig, trig_t = {}, {}
        for k, v in enumerate(net.vertices):
            lo = int(net.vertex_lo_e[k])
            if lo >= 0:
                size = h.graph.nodes[v]["size"]
                trig_t[v] = log.trigger_time[lo : lo + size].copy()
                if ra.update_kind == UPDATE_AT_TRIGGER:
                    eps_trig[v] = log.eps_at_trigger[lo : lo + size].T.copy()
        return AsyncLearnResult(
            diverged=diverged, diverged_at=at if diverged else None, steps=steps, energy=log.energy[:steps].copy(),
            netlist=net, applied=applied, learned=learned, firings=rows, late_firings=late,
            eps_at_trigger=eps_trig, learn0=learn0, t_end=t_end, firing_times=raw.copy(), trigger_times=trig_t,
            emissions=log.emits[: log.n_emits[0]].copy(), computations=log.computes[: log.n_computes[0]].copy(),
            plasticity=log.plast[: log.n_plast[0]].copy())
