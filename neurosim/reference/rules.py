"""Population-level, clock-driven reference of every learning rule in :mod:`neurosim.rules`.

This is the independent implementation the neuron-level event loop is checked against:
whole vertices are ``(B, size)`` arrays, one synchronous inference step is one
vector-Jacobian product per vertex (:mod:`neurosim.reference.ops`), and time advances
one step per loop iteration. The graph is any DAG of the spec's ops; forward pass,
losses and data checks are those of :mod:`neurosim.reference.backprop`.

State and errors
----------------
State ``t`` is the network after ``t`` inference steps. Beliefs ``v``: inputs are clamped
to ``x``, each output's belief is clamped to its target ``y`` and never updated, hidden
beliefs start at the forward pass (state 0: ``v_j = mu_j``, so every hidden error is 0).
At state ``t``, with the parameters ``theta(t)`` of that state, every non-input vertex
``k`` predicts ``mu_k = f_k(v_p; theta)`` from its parents' current beliefs, and

- hidden: ``eps_k = v_k - mu_k``; output: ``eps_k = -dL/dmu_k`` (``y - mu`` for mse,
  ``y - softmax(mu)`` for ce);
- a parametrized vertex (dense, conv2d, lstm) has ``g_k = J_a^T eps_k``, the error
  through its activation (dense and conv2d: ``act'(a) eps`` post, ``eps`` pre), and its
  presynaptic signals ``x_k`` (``v_p`` post, ``act(v_p)`` pre; lstm ``x_t``, ``h_{t-1}``).

One inference step (synchronous: everything read from state ``t``, applied together):

- ``v_j += step * (-eps_j + fb_j)`` for every hidden ``j``, with
  ``fb_j = sum_{c in children(j)} J_cj^T eps_c``, the VJP of ``mu_c`` with respect to
  ``v_j`` (dense: ``g_c W_c`` post, ``act_c'(v_j) (g_c W_c)`` pre);
- a vertex that updates at step ``t`` adds ``alpha J_theta^T eps_k`` to each of its
  parameters (dense: ``dW_k = alpha g_k^T x_k``, ``db_k = alpha sum_b g_k``;
  equations.md section 2); a parameter several vertices use receives the sum.

A weight update computed at step ``t`` is applied together with inference step ``t``:
the inference of step ``t`` uses the weights from before it, state ``t + 1`` the new ones.

The rules
---------
- ``BP``: ``theta - alpha dL/dtheta`` (:func:`neurosim.reference.backprop.sgd_step`).
- ``IL`` (Whittington and Bogacz 2017; Song et al. 2020, Algorithm 1): steps
  ``0..t_c-1`` with step ``gamma`` and no update, then every vertex updates from the
  errors and presynaptic signals of state ``t_c``.
- ``ZIL`` (Song et al. 2020, conditions C1-C3): step ``gamma`` (1 for C3); the
  parameters of vertex ``k`` get its contribution at step ``t = l_k``, its path length
  to the outputs (:func:`neurosim.graph.trigger_steps`, which raises ``GraphError``
  where a parametrized vertex has several); steps ``0..max l`` run. Song et al.'s
  ablations (Fig. 3): ``update_step = s`` breaks C2 (every vertex at step ``s``, steps
  ``0..s`` run); ``init_noise = sigma`` breaks C1 (Gaussian noise on every hidden
  belief of state 0, drawn from ``numpy.random.default_rng(noise_seed)`` as one
  ``(hidden neurons, samples)`` array, hidden vertices in the order of ``vertices``). A parameter used
  by vertices of different ``l`` (a weight shared across time steps) accumulates their
  contributions and applies the sum at the end of its last trigger step
  (``shared_updates="deferred"``) or applies each at the end of its own step
  (``"immediate"``: later steps see the changed weights, which is not backprop). With
  ``gamma = 1`` and deferred updates this is one BP SGD step and
  ``eps_k(l_k) = -dL/dv_k``; with ``gamma != 1`` vertex ``k``'s contribution is scaled
  by ``gamma^l_k``. ``eps_at_trigger`` holds ``eps_k(l_k)`` of every vertex whose
  ``l_k`` is among the steps run.
- ``FaZIL`` (Song et al. 2020, Algorithm 2): steps ``t = 0..T-1`` with
  ``T = ticks`` or ``max l + 1``; every parametrized vertex learns at every step with a
  per-neuron, per-sample gate, ``alpha J_theta^T (phi * eps)`` (dense:
  ``dW = alpha (phi * g)^T x``, ``db = alpha sum_b phi * g``). ``detector="song"``:
  ``phi_i(t) = 1`` iff ``eps_i(t) != eps_i(t-1)`` and ``eps_i(t-1) == ... ==
  eps_i(t-t_d)`` (exact float comparison) and ``eps_i(s) = 0`` for ``s < 0`` (the
  converged prediction phase, outputs included). ``detector="feedback"``: neuron ``i``
  fires at most once per sample, at the first ``t`` with ``eps_i(t) != eps_i(t-1)``
  while ``mu_i(t) == mu_i(0)`` exactly. A parameter of one vertex changes at the end
  of the step its neurons fired; one shared by several vertices accumulates over the
  presentation and changes after the last step (``shared_updates="deferred"``) or, like
  the others, at the end of each step its readers fired (``"immediate"``). Every firing is reported; those at a
  step other than the vertex's ``l`` are the *late* firings (Song's phi fires late where
  the backprop error is exactly 0, e.g. relu in the pre convention or max-pool;
  reproduced, not corrected).
- ``StrictPC`` (Rosenbaum 2022, Algorithm "PC"; Torch2PC ``Strict``): steps ``0..n-1``
  of size ``eta`` from the current beliefs (output error recomputed each step); the
  update is ``alpha J_theta(n)^T eps(n-1)``: the errors of state ``n-1`` pulled back
  through each vertex's parameter Jacobian evaluated at state ``n`` (dense post:
  ``alpha (act'(a(n)) * eps(n-1))^T x(n)``), as Torch2PC's ``SetPCGrads`` does.
- ``FixedPred`` (Rosenbaum 2022 "ModPC"; Millidge et al. 2020, fixed prediction
  assumption): predictions, Jacobians and presynaptic signals frozen at the forward
  pass, ``eps_j = v_j - vhat_j``, output error fixed at ``-dL/dvhat``; steps
  ``0..n-1`` of size ``eta`` (``n`` defaults to :func:`n_exact`), update
  ``alpha J_theta^T eps(n-1)`` at the forward pass. With ``eta = 1`` and
  ``n >= n_exact`` (``1 +`` the longest path from a parametrized vertex to an output)
  this is the exact negative gradient (Rosenbaum 2022, Theorem 1).
- ``IPC`` (Salvatori et al. 2024): values and weights both step from state ``t`` at
  every step; :mod:`neurosim.reference.incremental`.

Divergence
----------
``E(t) = 1/2 sum eps(t)^2`` over every error neuron (hidden and output) and sample, for
every state at which the rule computes errors (IL ``0..t_c``, ZIL ``0..max l``, FaZIL
``0..T-1``, StrictPC and FixedPred ``0..n-1``, BP the forward pass ``0``). The run
diverges at ``t`` if an ``eps(t)`` is not finite or, when ``E(0) > 0``,
``E(t) > max_energy_ratio * E(0)`` (energies computed in the parameters' dtype, compared
as Python floats). It also diverges where an update would make a parameter non-finite:
at the state whose errors produced it (IL ``t_c``, ZIL and FaZIL the step that applies
it, StrictPC and FixedPred ``n``, BP 0). A diverged run stops, reports ``diverged_at``
and never raises. Where its errors diverged at state ``t``, the presentation ends at
``t``: every change computed from the states before ``t`` takes effect (the updates
ZIL and FaZIL applied at earlier steps stay, and the sums held back for shared
parameters are applied, as at a normal end), nothing computed from state ``t`` (so IL,
StrictPC and FixedPred, which update at the end, apply nothing), and the firings before
``t`` are reported. Where an update made a parameter non-finite, the run is undone
(``params`` equal to the input, ``updates`` zero).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy

from neurosim.arrays import namespace, to_numpy
from neurosim.errors import ConfigError
from neurosim.graph.spec import exact_steps as n_exact  # FixedPred's default n (a graph property)
from neurosim.graph.spec import trigger_steps
from neurosim.reference.backprop import (
    Array,
    Params,
    accumulate,
    backward,
    linearize_all,
    output_error,
    prepare,
    zeros_like_params,
)
from neurosim.reference.ops import Linearization, input_vjps, preact_grad
from neurosim.rules import BP, IL, IPC, ZIL, FaZIL, FixedPred, Rule, StrictPC


def _no_firings() -> numpy.ndarray:
    return numpy.zeros((0, 4), dtype=numpy.int64)


@dataclass
class ReferenceResult:
    """What one run of a rule on one batch produced.

    Attributes
    ----------
    params
        The new parameters (the input parameters plus ``updates``).
    updates
        The applied change of every parameter, summed over the steps that applied one
        (on divergence, those applied before it; see the module docstring).
    diverged, diverged_at
        Whether and at which state the run diverged (see the module docstring).
    energy
        ``E(t)`` for every state at which errors were computed, up to the divergence.
    steps
        Inference steps run (up to the divergence: ``diverged_at`` if it diverged
        while computing errors).
    eps_at_trigger
        ZIL only: ``eps_k(l_k)`` for every vertex whose trigger step was run (every
        parametrized vertex among them).
    firings, late_firings
        FaZIL only: ``(k, 4)`` int64 rows ``(step, vertex, neuron, sample)``, ``vertex``
        an index into ``vertices``, sorted by those columns; ``late_firings`` are those
        with ``step != l_vertex`` (:meth:`named` gives them with vertex names).
    vertices
        Every vertex of the graph, inputs included, in lexicographic topological order
        (the order of :class:`neurosim.engine.LearnResult.vertices`): the vertices the
        firing rows index.
    """

    params: Params
    updates: Params
    diverged: bool
    diverged_at: int | None
    energy: numpy.ndarray
    steps: int
    eps_at_trigger: dict[str, Array] = field(default_factory=dict)
    firings: numpy.ndarray = field(default_factory=_no_firings)
    late_firings: numpy.ndarray = field(default_factory=_no_firings)
    vertices: tuple[str, ...] = ()

    def named(self, rows: numpy.ndarray) -> list[tuple[int, str, int, int]]:
        """Firing rows as ``(step, vertex name, neuron, sample)`` tuples."""
        return [(int(t), self.vertices[int(k)], int(i), int(b)) for t, k, i, b in rows]


@dataclass(frozen=True)
class _State:
    """Every non-input vertex at one state: its linearization and its error ``eps``."""

    lins: dict[str, Linearization]
    eps: dict[str, Array]


class _Run:
    """The checked inputs of one run, the energy record and the divergence test."""

    def __init__(
        self, graph: nx.DiGraph, params: Mapping[str, Array], x: Any, y: Any, max_energy_ratio: float, xp: Any
    ):
        xp = namespace(xp)
        self.net, self.params, self.values, self.lins, self.targets = prepare(graph, params, x, y, xp)
        self.xp = xp
        self.order = tuple(nx.lexicographical_topological_sort(graph, key=str))
        self.ratio = max_energy_ratio
        self.energy: list[float] = []

    def initial_beliefs(self) -> dict[str, Array]:
        """State 0: inputs clamped, hidden beliefs at the forward pass, outputs at the target."""
        beliefs = {v: self.values[v] for v in self.net.inputs + self.net.hidden}
        beliefs.update(self.targets)
        return beliefs

    def errors(self, lins: dict[str, Linearization], beliefs: dict[str, Array]) -> _State:
        """``eps`` of every vertex given its prediction; an output's belief is its target."""
        eps = {}
        for k, lin in lins.items():
            loss_name = self.net.attrs[k].get("loss")
            eps[k] = output_error(loss_name, lin.mu, beliefs[k], self.xp) if loss_name else beliefs[k] - lin.mu
        return _State(lins, eps)

    def state(self, params: Params, beliefs: dict[str, Array]) -> _State:
        """Errors with predictions from the current beliefs and ``params``."""
        return self.errors(linearize_all(self.net, params, beliefs, self.xp), beliefs)

    def fixed_state(self, beliefs: dict[str, Array]) -> _State:
        """Errors against the forward-pass predictions (FixedPred)."""
        return self.errors(self.lins, beliefs)

    def record(self, state: _State) -> bool:
        """Append ``E(t)`` and say whether state ``t`` diverged."""
        xp = self.xp
        eps = list(state.eps.values())
        energy = float(0.5 * sum(xp.sum(a * a) for a in eps))
        self.energy.append(energy)
        finite = all(bool(xp.all(xp.isfinite(a))) for a in eps)
        return not finite or (self.energy[0] > 0 and energy > self.ratio * self.energy[0])

    def diverged(self, at: int, steps: int, **extra: Any) -> ReferenceResult:
        """The result of a run undone: it diverged at state ``at`` after ``steps`` inference
        steps, before any update or by an update that made a parameter non-finite."""
        xp = self.xp
        params = {n: xp.array(p, copy=True) for n, p in self.params.items()}
        return self.finish(params, zeros_like_params(self.params, xp), steps, diverged_at=at, **extra)

    def stopped(self, params: Params, updates: Params, held: Params, at: int, steps: int,
                **extra: Any) -> ReferenceResult:
        """The result of a run whose errors diverged at state ``at`` (Z-IL, Fa-Z-IL): the
        presentation ends there, so the ``updates`` applied at earlier steps stay and the
        sums ``held`` back for shared parameters apply now, as at a normal end (undone
        instead if that makes a parameter non-finite)."""
        new = self.apply(params, held)
        if new is None:
            return self.diverged(at, steps, **extra)
        total = {n: updates[n] + held[n] if n in held else updates[n] for n in updates}
        return self.finish(new, total, steps, diverged_at=at, **extra)

    def finish(self, params: Params, updates: Params, steps: int, diverged_at: int | None = None,
               **extra: Any) -> ReferenceResult:
        """The result of a run (that did not diverge, unless ``diverged_at`` says where)."""
        return ReferenceResult(
            params=params,
            updates=updates,
            diverged=diverged_at is not None,
            diverged_at=diverged_at,
            energy=numpy.asarray(self.energy, dtype=numpy.float64),
            steps=steps,
            vertices=self.order,
            **extra,
        )

    def apply(self, params: Params, deltas: Params) -> Params | None:
        """``params + deltas`` as new arrays, or None if a result is not finite."""
        xp = self.xp
        new = dict(params)
        for name, d in deltas.items():
            new[name] = params[name] + d
            if not bool(xp.all(xp.isfinite(new[name]))):
                return None
        return new

    def add_update(
        self, into: Params, k: str, state: _State, alpha: float, gate: Array | None = None
    ) -> None:
        """Add ``alpha J_theta^T (gate * eps_k)`` of vertex ``k`` at ``state`` to ``into``."""
        vx, lin = self.net.nodes[k], state.lins[k]
        eps = state.eps[k] if gate is None else gate * state.eps[k]
        accumulate(into, vx, preact_grad(vx, lin, eps, self.xp), lin.signals, alpha, self.xp)


def _infer(run: _Run, params: Params, beliefs: dict[str, Array], state: _State, step: float) -> dict[str, Array]:
    """One synchronous inference step, with the VJPs of the linearizations in ``state``."""
    net, xp = run.net, run.xp
    feedback: dict[str, Array] = {}
    for c in net.vertices:
        vx = net.nodes[c]
        if all(p not in net.hidden for p in vx.parents):
            continue
        for p, back in zip(vx.parents, input_vjps(vx, params, state.lins[c], state.eps[c], xp)):
            if p in net.hidden:
                feedback[p] = feedback[p] + back if p in feedback else back
    new = dict(beliefs)
    for j in net.hidden:
        new[j] = beliefs[j] + step * (feedback[j] - state.eps[j])
    return new


def _every_vertex(run: _Run, state: _State, alpha: float) -> Params:
    """The update of every parametrized vertex from ``state``."""
    deltas = zeros_like_params(run.params, run.xp)
    for k in run.net.parametrized:
        run.add_update(deltas, k, state, alpha)
    return deltas


def _final(run: _Run, deltas: Params, at: int, steps: int, **extra: Any) -> ReferenceResult:
    """Apply ``deltas`` to the initial parameters in one go (IL, StrictPC, FixedPred, BP)."""
    new = run.apply(run.params, deltas)
    if new is None:
        return run.diverged(at, steps)
    return run.finish(new, deltas, steps, **extra)


def _bp(run: _Run, graph: nx.DiGraph, rule: BP) -> ReferenceResult:
    if run.record(run.fixed_state(run.initial_beliefs())):
        return run.diverged(0, 0)
    grads = backward(run.net, run.params, run.lins, run.targets, run.xp)
    return _final(run, {n: -rule.alpha * g for n, g in grads.items()}, 0, 0)


def _il(run: _Run, graph: nx.DiGraph, rule: IL) -> ReferenceResult:
    beliefs = run.initial_beliefs()
    for t in range(rule.t_c + 1):
        state = run.state(run.params, beliefs)
        if run.record(state):
            return run.diverged(t, t)
        if t < rule.t_c:
            beliefs = _infer(run, run.params, beliefs, state, rule.gamma)
    return _final(run, _every_vertex(run, state, rule.alpha), rule.t_c, rule.t_c)


def _users(run: _Run) -> dict[str, list[str]]:
    """For every parameter, the vertices that reference it."""
    users: dict[str, list[str]] = {n: [] for n in run.params}
    for k in run.net.parametrized:
        vx = run.net.nodes[k]
        for name in {ref.name for ref in vx.weights + vx.biases}:
            users[name].append(k)
    return users


def _perturbed(run: _Run, beliefs: dict[str, Array], sigma: float, seed: int) -> dict[str, Array]:
    """Song et al.'s C1 broken: ``N(0, sigma^2)`` noise on every hidden belief, drawn as one
    ``(hidden neurons, samples)`` array from ``numpy.random.default_rng(seed)``, its rows
    the hidden vertices in ``run.order``, each vertex's neurons in order."""
    xp = run.xp
    hidden = [v for v in run.order if v in run.net.hidden]
    sizes = [beliefs[v].shape[1] for v in hidden]
    batch = beliefs[hidden[0]].shape[0] if hidden else 0
    noise = numpy.random.default_rng(seed).normal(0.0, sigma, size=(sum(sizes), batch))
    out, row = dict(beliefs), 0
    for v, size in zip(hidden, sizes):
        out[v] = beliefs[v] + xp.asarray(noise[row : row + size].T.astype(beliefs[v].dtype))
        row += size
    return out


def _zil(run: _Run, graph: nx.DiGraph, rule: ZIL) -> ReferenceResult:
    xp, net = run.xp, run.net
    trigger = trigger_steps(graph)
    if rule.update_step is not None:  # C2 broken: every vertex at one step
        trigger = {k: rule.update_step for k in trigger}
    n_steps = max((trigger[k] for k in net.parametrized), default=0) + 1
    # the step at whose end each parameter's accumulated contributions are applied
    last = {n: max((trigger[k] for k in ks), default=0) for n, ks in _users(run).items()}
    beliefs, params = run.initial_beliefs(), run.params
    if rule.init_noise > 0:
        beliefs = _perturbed(run, beliefs, rule.init_noise, rule.noise_seed)
    updates, pending = zeros_like_params(params, xp), zeros_like_params(params, xp)
    eps_at_trigger: dict[str, Array] = {}
    for t in range(n_steps):
        state = run.state(params, beliefs)
        if run.record(state):
            held = {n: pending[n] for n in params if rule.shared_updates == "deferred" and last[n] >= t}
            return run.stopped(params, updates, held, t, t, eps_at_trigger=eps_at_trigger)
        for k in net.vertices:
            if trigger.get(k) == t:
                eps_at_trigger[k] = state.eps[k]
                if k in net.parametrized:
                    run.add_update(pending, k, state, rule.alpha)
        beliefs = _infer(run, params, beliefs, state, rule.gamma)
        due = [n for n in params if rule.shared_updates == "immediate" or last[n] == t]
        params = run.apply(params, {n: pending[n] for n in due})
        if params is None:
            return run.diverged(t, t + 1)
        for n in due:
            updates[n] = updates[n] + pending[n]
            pending[n] = xp.zeros_like(pending[n])
    return run.finish(params, updates, n_steps, eps_at_trigger=eps_at_trigger)


class _Detector:
    """Fa-Z-IL's gate ``phi`` per error neuron and sample of every parametrized vertex."""

    def __init__(self, run: _Run, rule: FaZIL):
        xp = run.xp
        self.xp, self.rule = xp, rule
        zeros = {k: xp.zeros_like(run.lins[k].mu) for k in run.net.parametrized}
        self.last = zeros  # eps_k(t-1); before t = 0 every error is 0
        # song: length (capped at t_d) of the run of equal values ending at eps_k(t-1),
        # full before t = 0; feedback: whether the neuron has fired in this presentation
        if rule.detector == "song":
            self.same = {k: xp.full(z.shape, rule.t_d, dtype=xp.int64) for k, z in zeros.items()}
        else:
            self.fired = {k: xp.zeros(z.shape, dtype=bool) for k, z in zeros.items()}
            self.mu0 = {k: run.lins[k].mu for k in zeros}

    def phi(self, k: str, state: _State) -> Array:
        """``phi`` of vertex ``k`` at the state ``state`` (called once per step, in order)."""
        xp, rule = self.xp, self.rule
        eps = state.eps[k]
        changed = eps != self.last[k]
        self.last[k] = eps
        if rule.detector == "song":
            phi = changed & (self.same[k] >= rule.t_d)
            self.same[k] = xp.where(changed, 1, xp.minimum(self.same[k] + 1, rule.t_d))
            return phi
        phi = changed & (state.lins[k].mu == self.mu0[k]) & ~self.fired[k]
        self.fired[k] = self.fired[k] | phi
        return phi


def _fazil(run: _Run, graph: nx.DiGraph, rule: FaZIL) -> ReferenceResult:
    xp, net = run.xp, run.net
    trigger = trigger_steps(graph)
    n_steps = rule.ticks if rule.ticks is not None else max((trigger[k] for k in net.parametrized), default=0) + 1
    shared = {n for n, ks in _users(run).items() if len(ks) > 1}
    beliefs, params = run.initial_beliefs(), run.params
    updates, pending = zeros_like_params(params, xp), zeros_like_params(params, xp)
    detector = _Detector(run, rule)
    levels = numpy.array([trigger.get(k, -1) for k in run.order], dtype=numpy.int64)
    fired: list[numpy.ndarray] = []
    for t in range(n_steps):
        state = run.state(params, beliefs)
        if run.record(state):
            held = {n: pending[n] for n in shared if rule.shared_updates == "deferred"}
            return run.stopped(params, updates, held, t, t, **_firing_record(fired, levels))
        for k in net.parametrized:
            index = run.order.index(k)
            phi = detector.phi(k, state)
            neuron, sample = (to_numpy(i, xp).astype(numpy.int64) for i in xp.nonzero(phi.T))
            if neuron.size:
                head = numpy.broadcast_to(numpy.array([t, index], dtype=numpy.int64), (neuron.size, 2))
                fired.append(numpy.column_stack([head, neuron, sample]))
            run.add_update(pending, k, state, rule.alpha, gate=phi.astype(state.eps[k].dtype))
        beliefs = _infer(run, params, beliefs, state, rule.gamma)
        due = [n for n in params if rule.shared_updates == "immediate" or n not in shared or t == n_steps - 1]
        params = run.apply(params, {n: pending[n] for n in due})
        if params is None:
            return run.diverged(t, t + 1, **_firing_record(fired, levels, before=t))
        for n in due:
            updates[n] = updates[n] + pending[n]
            pending[n] = xp.zeros_like(pending[n])
    return run.finish(params, updates, n_steps, **_firing_record(fired, levels))


def _firing_record(fired: list[numpy.ndarray], levels: numpy.ndarray, before: int | None = None) -> dict:
    """``firings`` (sorted rows, those at steps ``< before`` if given) and ``late_firings``
    (those at a step other than their vertex's ``levels`` entry)."""
    firings = numpy.concatenate(fired) if fired else _no_firings()
    if before is not None:
        firings = firings[firings[:, 0] < before]
    firings = firings[numpy.lexsort(firings.T[::-1])]
    return dict(firings=firings, late_firings=firings[firings[:, 0] != levels[firings[:, 1]]])


def _strict(run: _Run, graph: nx.DiGraph, rule: StrictPC) -> ReferenceResult:
    beliefs = run.initial_beliefs()
    for t in range(rule.n):
        state = run.state(run.params, beliefs)
        if run.record(state):
            return run.diverged(t, t)
        beliefs = _infer(run, run.params, beliefs, state, rule.eta)
    # Torch2PC's SetPCGrads: eps(n-1) pulled back through each vertex's parameter
    # Jacobian at state n (a fresh forward pass of every vertex on the final beliefs)
    pulled_back = _State(linearize_all(run.net, run.params, beliefs, run.xp), state.eps)
    return _final(run, _every_vertex(run, pulled_back, rule.alpha), rule.n, rule.n)


def _fixedpred(run: _Run, graph: nx.DiGraph, rule: FixedPred) -> ReferenceResult:
    n = rule.n if rule.n is not None else n_exact(graph)
    beliefs = run.initial_beliefs()
    for t in range(n):
        state = run.fixed_state(beliefs)
        if run.record(state):
            return run.diverged(t, t)
        beliefs = _infer(run, run.params, beliefs, state, rule.eta)
    return _final(run, _every_vertex(run, state, rule.alpha), n, n)


def _ipc(run: _Run, graph: nx.DiGraph, rule: IPC) -> ReferenceResult:
    from neurosim.reference.incremental import run_ipc  # it builds on this module

    return run_ipc(run, rule)


_RUNNERS = {BP: _bp, IL: _il, ZIL: _zil, FaZIL: _fazil, StrictPC: _strict, FixedPred: _fixedpred, IPC: _ipc}


def run_rule(
    graph: nx.DiGraph, params: Mapping[str, Array], x: Any, y: Any, rule: Rule, xp: Any = None
) -> ReferenceResult:
    """Run ``rule`` on one batch from the forward pass and return the updated parameters.

    Parameters
    ----------
    graph
        A neurosim model graph: any DAG of the ops of :mod:`neurosim.graph.spec`.
    params
        Every parameter of :func:`neurosim.graph.param_shapes` (PyTorch layout); not
        mutated. Their dtype (float64 or float32) is the dtype of every computation.
    x
        ``(B, n_in)`` for a single-input graph, or ``{input_vertex: (B, size)}``
        (flattened row-major).
    y
        ``(B, n_out)`` for a single-output graph (one-hot rows for ``ce``), or
        ``{output_vertex: (B, size)}``.
    rule
        A :class:`neurosim.rules.Rule`: ``BP``, ``IL``, ``ZIL``, ``FaZIL``, ``StrictPC``,
        ``FixedPred`` (the semantics of each are in the module docstring) or ``IPC``
        (:mod:`neurosim.reference.incremental`).
    xp
        Array namespace: None (numpy) or ``cupy`` (:mod:`neurosim.arrays`). ``x``, ``y``
        and ``params`` may be numpy or ``xp`` arrays; the result's ``params``,
        ``updates`` and ``eps_at_trigger`` are ``xp`` arrays (on the GPU for cupy:
        :func:`neurosim.arrays.to_numpy` copies them to the host); ``energy`` and the
        firings are numpy.

    Returns
    -------
    ReferenceResult

    Raises
    ------
    ConfigError
        ``rule`` is not one of the rules above.
    DataError
        ``x`` or ``y`` has the wrong vertices, shape or batch size, or is not finite.
    GraphError, ParameterError
        The graph or the parameters are invalid; ZIL and FaZIL on a graph where a
        parametrized vertex has several path lengths to the outputs.
    """
    runner = _RUNNERS.get(type(rule))
    if runner is None:
        raise ConfigError(
            f"rule must be one of neurosim.rules.BP, IL, ZIL, FaZIL, StrictPC, FixedPred, IPC, got {rule!r}"
        )
    run = _Run(graph, params, x, y, getattr(rule, "max_energy_ratio", numpy.inf), xp)
    with numpy.errstate(over="ignore", invalid="ignore"):  # divergence is reported, not warned about
        return runner(run, graph, rule)
