"""One presentation of a mini-batch (clause S7), driven through the engine handle.

A :class:`Presentation` runs the prediction phase, clamps the target and runs the
learning phase in chunks of ticks under its rule's plan (:mod:`neurosim.engine.policy`),
then gathers the :class:`LearnResult`. It uses only the public methods of
:class:`~neurosim.engine.handle.EngineHandle`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from neurosim import validation
from neurosim.compile.netlist import ROLE_FREE, Netlist
from neurosim.engine.handle import EngineHandle
from neurosim.engine.policy import builder
from neurosim.engine.semantics import MODE_LEARN, STATUS_BUFFER_FULL, STATUS_DIVERGED, UPDATE_AT_TRIGGER, UPDATE_PHI
from neurosim.errors import ConfigError, DataError
from neurosim.params import Params
from neurosim.rules import Rule

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


class Presentation:
    """One mini-batch on the event loop, from its target onwards, advanced tick by tick.

    Created by :meth:`Simulator.present <neurosim.engine.Simulator.present>`: the
    prediction phase has run and the target is clamped. :meth:`advance` runs some
    learning ticks; :meth:`finish` runs the rest and returns the :class:`LearnResult`
    (on divergence, keeping what was computed before it).
    """

    def __init__(self, engine: EngineHandle, x: object, y: object, rule: Rule, *, all_active: bool,
                 reverse: bool) -> None:
        self.engine = engine
        build = builder(rule)
        for name, flag in (("all_active", all_active), ("reverse", reverse)):
            if not isinstance(flag, (bool, np.bool_)):
                raise ConfigError(f"{name} must be True or False, got {flag!r}")
        inputs = engine.batch(x, engine.inputs, "input")
        targets = engine.batch(y, engine.outputs, "target")
        lanes = next(iter(inputs.values())).shape[0]
        if next(iter(targets.values())).shape[0] != lanes:
            raise DataError("inputs and targets have different batch sizes")
        self.rule = rule
        self.plan = build(rule, engine.network)
        self.kind, n_ticks = self.plan.rule.update_kind, self.plan.n_ticks
        net = engine.netlist
        tick_work = lanes * (net.n_synapses + net.n_value + net.n_error)
        validation.require_budget(
            n_ticks * tick_work, validation.WORK_BUDGET,
            f"the work of this presentation ({n_ticks} ticks x {lanes} samples x "
            f"{net.n_synapses + net.n_value + net.n_error} synapses and neurons)",
            "use fewer inference steps or smaller batches", ConfigError, "WORK_BUDGET")
        # ticks per kernel call: bounded work (an interrupt is served between calls) and record memory
        tick_bytes = 8 + (24 * net.n_error * lanes if self.kind == UPDATE_PHI else 0)
        self.chunk_max = max(1, min(validation.CHUNK_WORK // max(tick_work, 1), validation.CHUNK_BYTES // tick_bytes))
        engine.prediction_phase(inputs)
        st = engine.state
        st.vhat[:] = st.v
        st.mu0[:] = st.mu
        st.last_change[:] = _NEVER
        st.spent[:] = 0
        st.saved[:] = 0
        st.e_saved[:] = 0
        st.deferred[:] = 0  # an abandoned presentation's held changes are not this one's
        engine.clamp(targets)
        if self.plan.perturb is not None:
            self._perturb_beliefs(*self.plan.perturb)
        learn0 = engine.tick
        for o in engine.outputs:  # the teacher's arrival is an event even where y == v already
            st.err_wake_own[learn0 % st.err_wake_own.shape[0], engine.vertex_neurons(o, "error")] = 1
        self.total = n_ticks
        self.done = 0
        self.learn0 = learn0
        self.options = dict(all_active=all_active, reverse=reverse, learn_tick0=learn0)
        self.energy: list[np.ndarray] = []
        self.firings: list[np.ndarray] = []
        self.eps_at_trigger = np.full(st.eps.shape, np.nan, st.eps.dtype)
        self.energy0 = np.zeros(1)
        self.diverged_at: int | None = None

    def _perturb_beliefs(self, sigma: float, seed: int) -> None:
        """Song et al.'s C1 broken: Gaussian noise on every hidden belief at the start of
        learning (the environment's perturbation, written like a clamp)."""
        engine, st = self.engine, self.engine.state
        free = np.flatnonzero(engine.netlist.v_role == ROLE_FREE).astype(np.int64)
        noise = np.random.default_rng(seed).normal(0.0, sigma, size=(len(free), st.v.shape[1]))
        engine.clamp_neurons(free, np.ascontiguousarray(st.v[free] + noise.astype(st.v.dtype)))

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
        engine = self.engine
        n = min(n, self.chunk_max)
        schedule = engine.schedule(MODE_LEARN, n_ticks=n, last_error_only=self.done + n == self.total, **self.options)
        rec = engine.recorders(engine.state.eps.size * n if self.kind == UPDATE_PHI else 0, n)
        rec.energy0[0] = self.energy0[0]
        rec.eps_at_trigger[:] = self.eps_at_trigger
        status, done = engine.run(self.plan.rule, schedule, rec)
        if engine.monitor is not None:
            engine.monitor.flush(rec, self.learn0)
        if status == STATUS_BUFFER_FULL:  # pragma: no cover - the buffer is sized for the worst case
            raise RuntimeError("phi firing buffer overflowed")
        self.energy0[0] = rec.energy0[0]
        self.eps_at_trigger[:] = rec.eps_at_trigger
        self.energy.append(rec.energy[:done])
        self.firings.append(rec.firings[: rec.n_firings[0]])
        self.done += done
        if status == STATUS_DIVERGED:
            self.diverged_at = self.done - 1

    def finish(self, chunk_ticks: int | None = None) -> LearnResult:
        """Run the remaining ticks (in chunks of ``chunk_ticks``) and return the result."""
        if chunk_ticks is not None and (not validation.is_count(chunk_ticks) or chunk_ticks < 1):
            raise ConfigError(f"chunk_ticks must be a positive int, got {chunk_ticks!r}")
        while not self.finished:
            self.advance(chunk_ticks or self.total)
        engine, st = self.engine, self.engine.state
        net = engine.netlist
        diverged = self.diverged_at is not None
        learned = st.saved.astype(bool)
        applied = st.applied
        if diverged:  # the presentation ends here (see neurosim.rules): held sums apply
            ra = self.plan.rule
            held = ra.defer_params[ra.defer_step[ra.defer_params] >= self.diverged_at]
            engine.theta[held] += st.deferred[held]
            if not np.all(np.isfinite(engine.theta[learned])):  # a weight is not a number: undo all
                engine.theta[learned] = st.theta_saved[learned]
                learned[:] = False
            engine.reset(st.v.shape[1])
        else:  # the result keeps this buffer; the next presentation gets a new one
            engine.state = st._replace(applied=np.empty_like(applied))
        raw = np.concatenate(self.firings) if self.firings else np.zeros((0, 3), np.int64)
        if diverged:  # firings at the diverging step made no change
            raw = raw[raw[:, 0] < self.diverged_at]
        step, neuron, lane = raw[:, 0], raw[:, 1], raw[:, 2]
        rows = np.column_stack([step, net.e_vertex[neuron], net.e_pos[neuron], lane]).astype(np.int64)
        order = np.lexsort(rows.T[::-1])
        rows = rows[order]
        late = rows[step[order] != net.e_trigger[neuron[order]]]
        if engine.monitor is not None:
            vertex_trigger = np.where(net.vertex_lo_e >= 0, net.e_trigger[np.maximum(net.vertex_lo_e, 0)], -1)
            engine.monitor.add_firings(rows, vertex_trigger, self.learn0)
        eps_trig = {}
        if self.kind == UPDATE_AT_TRIGGER:
            for k, v in enumerate(net.vertices):
                lo = int(net.vertex_lo_e[k])
                if lo >= 0:
                    eps_trig[v] = self.eps_at_trigger[lo : lo + engine.graph.nodes[v]["size"]].T.copy()
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
