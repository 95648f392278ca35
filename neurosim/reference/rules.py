"""Population-level, clock-driven reference of every learning rule in :mod:`neurosim.rules`.

This is the independent implementation the neuron-level event loop is checked against:
whole vertices are ``(B, size)`` arrays, one synchronous inference step is a handful of
matrix products, and time advances one step per loop iteration. Forward pass, losses and
data checks are those of :mod:`neurosim.reference.backprop`.

State and errors
----------------
State ``t`` is the network after ``t`` inference steps. Beliefs ``v``: inputs are clamped
to ``x``, each output's belief is clamped to its target ``y`` and never updated, hidden
beliefs start at the forward pass (state 0: ``v_j = mu_j``, so every hidden error is 0).
At state ``t``, with the parameters ``theta(t)`` of that state, for dense vertex ``k`` with
parent ``p`` (``x_k``, ``a_k``, ``mu_k`` as in the forward pass, from the current beliefs):

- hidden: ``eps_k = v_k - mu_k``; output: ``eps_k = -dL/dmu_k`` (``y - mu`` for mse,
  ``y - softmax(mu)`` for ce);
- ``g_k = act_k'(a_k) * eps_k`` (post) or ``g_k = eps_k`` (pre).

One inference step (synchronous: everything read from state ``t``, applied together):

- ``v_j += step * (-eps_j + fb_j)`` for every hidden ``j``, with
  ``fb_j = sum_{c in children(j)} g_c W_c`` (post) or ``act_c'(v_j) * (g_c W_c)`` (pre);
- a vertex that updates at step ``t`` adds ``dW_k = alpha * g_k^T x_k`` and
  ``db_k = alpha * sum_b g_k`` (``J_theta^T eps``; equations.md section 2).

A weight update computed at step ``t`` is applied together with inference step ``t``:
the inference of step ``t`` uses the weights from before it, state ``t + 1`` the new ones.

The rules
---------
- ``BP``: ``theta - alpha dL/dtheta`` (:func:`neurosim.reference.backprop.sgd_step`).
- ``IL`` (Whittington and Bogacz 2017; Song et al. 2020, Algorithm 1): steps
  ``0..t_c-1`` with step ``gamma`` and no update, then every vertex updates from the
  errors and presynaptic signals of state ``t_c``.
- ``ZIL`` (Song et al. 2020, conditions C1-C3): step ``gamma`` (1 for C3); vertex ``k``
  updates once, at step ``t = l_k``, its path length to the outputs
  (:func:`neurosim.graph.trigger_steps`, which raises ``GraphError`` where it is not
  unique); steps ``0..max l`` run. With ``gamma = 1`` this is one BP SGD step and
  ``eps_k(l_k) = -dL/dv_k``; with ``gamma != 1`` vertex ``k``'s update is scaled by
  ``gamma^l_k``. ``eps_at_trigger`` holds ``eps_k(l_k)``.
- ``FaZIL`` (Song et al. 2020, Algorithm 2): steps ``t = 0..T-1`` with
  ``T = ticks`` or ``max l + 1``; every vertex updates at every step with a per-neuron,
  per-sample gate, ``dW = alpha (phi * g)^T x``, ``db = alpha sum_b phi * g``, where
  ``phi_i(t) = 1`` iff ``eps_i(t) != eps_i(t-1)`` and
  ``eps_i(t-1) == ... == eps_i(t-t_d)`` (exact float comparison) and ``eps_i(s) = 0`` for
  ``s < 0`` (the converged prediction phase, outputs included). Every firing is
  reported; those at a step other than the vertex's ``l`` are the *late* firings (the
  rule's known failure where the backprop error is exactly 0, e.g. relu in the pre
  convention; reproduced, not corrected).
- ``StrictPC`` (Rosenbaum 2022, Algorithm "PC"; Torch2PC ``Strict``): steps ``0..n-1``
  of size ``eta`` from the current beliefs (output error recomputed each step); the
  update is ``alpha g(n-1)^T x(n)``: error-neuron quantities of state ``n-1`` (post:
  including ``act'(a(n-1))``) with the presynaptic signals of state ``n``.
- ``FixedPred`` (Rosenbaum 2022 "ModPC"; Millidge et al. 2020, fixed prediction
  assumption): predictions frozen at the forward pass, ``eps_j = v_j - vhat_j``,
  ``g = act'(ahat) * eps`` (post) or ``eps`` (pre), feedback Jacobians at the forward
  pass (pre: ``act_c'(vhat_j)``), output error fixed at ``-dL/dvhat``; steps
  ``0..n-1`` of size ``eta`` (``n`` defaults to :func:`n_exact`), update
  ``alpha g(n-1)^T xhat``. With ``eta = 1`` and ``n >= n_exact`` this is the exact
  negative gradient (Rosenbaum 2022, Theorem 1).

Divergence
----------
``E(t) = 1/2 sum eps(t)^2`` over every error neuron (hidden and output) and sample, for
every state at which the rule computes errors (IL ``0..t_c``, ZIL ``0..max l``, FaZIL
``0..T-1``, StrictPC and FixedPred ``0..n-1``, BP the forward pass ``0``). The run
diverges at ``t`` if an ``eps(t)`` is not finite or, when ``E(0) > 0``,
``E(t) > max_energy_ratio * E(0)`` (energies computed in the parameters' dtype, compared
as Python floats). It also diverges where an update would make a parameter non-finite:
at the state whose errors produced it (IL ``t_c``, ZIL and FaZIL the step, StrictPC and
FixedPred ``n``, BP 0). A diverged run applies no update (``params`` equal to the
input, ``updates`` zero), reports ``diverged_at`` and never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy

from neurosim.activations import derivative
from neurosim.errors import ConfigError
from neurosim.graph.spec import trigger_steps
from neurosim.reference.backprop import (
    Array,
    Network,
    Params,
    backward,
    dense_prediction,
    output_error,
    prepare,
    presynaptic,
)
from neurosim.graph.spec import exact_steps as n_exact  # FixedPred's default n (a graph property)
from neurosim.rules import BP, IL, ZIL, FaZIL, FixedPred, Rule, StrictPC


def _no_firings() -> numpy.ndarray:
    return numpy.zeros((0, 4), dtype=numpy.int64)


@dataclass
class ReferenceResult:
    """What one run of a rule on one batch produced.

    Attributes
    ----------
    params
        The new parameters (equal to the input parameters if the run diverged).
    updates
        The applied change of every parameter, summed over the steps that applied one
        (zeros if the run diverged).
    diverged, diverged_at
        Whether and at which state the run diverged (see the module docstring).
    energy
        ``E(t)`` for every state at which errors were computed, up to the divergence.
    steps
        Inference steps run (up to the divergence: ``diverged_at`` if it diverged
        while computing errors).
    eps_at_trigger
        ZIL only: ``eps_k(l_k)`` for every dense vertex.
    firings, late_firings
        FaZIL only: ``(k, 4)`` int64 rows ``(step, vertex, neuron, sample)``, ``vertex``
        the index among dense vertices in topological order, sorted by those columns;
        ``late_firings`` are those with ``step != l_vertex``.
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


@dataclass(frozen=True)
class _Errors:
    """One dense vertex at one state: presynaptic signal ``x``, error ``eps``, ``g``."""

    x: Array
    eps: Array
    g: Array


class _Run:
    """The checked inputs of one run, the energy record and the divergence test."""

    def __init__(
        self, graph: nx.DiGraph, params: Mapping[str, Array], x: Any, y: Any, max_energy_ratio: float, xp: Any
    ):
        self.net, self.params, self.states, self.targets = prepare(graph, params, x, y, xp)
        self.xp = xp
        self.ratio = max_energy_ratio
        self.energy: list[float] = []

    def initial_beliefs(self) -> dict[str, Array]:
        """State 0: inputs clamped, hidden beliefs at the forward pass, outputs at the target."""
        beliefs = {v: self.states[v]["v"] for v in self.net.inputs + self.net.hidden}
        beliefs.update(self.targets)
        return beliefs

    def record(self, errors: dict[str, _Errors]) -> bool:
        """Append ``E(t)`` and say whether state ``t`` diverged."""
        xp = self.xp
        eps = [e.eps for e in errors.values()]
        energy = float(0.5 * sum(xp.sum(a * a) for a in eps))
        self.energy.append(energy)
        finite = all(bool(xp.all(xp.isfinite(a))) for a in eps)
        return not finite or (self.energy[0] > 0 and energy > self.ratio * self.energy[0])

    def diverged(self, at: int, steps: int) -> ReferenceResult:
        """The result of a run that diverged at state ``at`` after ``steps`` inference steps."""
        xp = self.xp
        return ReferenceResult(
            params={n: xp.array(p, copy=True) for n, p in self.params.items()},
            updates={n: xp.zeros_like(p) for n, p in self.params.items()},
            diverged=True,
            diverged_at=at,
            energy=numpy.asarray(self.energy, dtype=numpy.float64),
            steps=steps,
        )

    def finish(self, params: Params, updates: Params, steps: int, **extra: Any) -> ReferenceResult:
        """The result of a run that did not diverge."""
        return ReferenceResult(
            params=params,
            updates=updates,
            diverged=False,
            diverged_at=None,
            energy=numpy.asarray(self.energy, dtype=numpy.float64),
            steps=steps,
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


def _vertex_errors(net: Network, k: str, x: Array, a: Array, mu: Array, belief: Array, xp: Any) -> _Errors:
    """``eps`` and ``g`` of vertex ``k`` given its prediction; ``belief`` is the target for an output."""
    attrs = net.attrs[k]
    loss_name = attrs.get("loss")
    eps = output_error(loss_name, mu, belief, xp) if loss_name is not None else belief - mu
    g = derivative(attrs["activation"], a) * eps if attrs["convention"] == "post" else eps
    return _Errors(x=x, eps=eps, g=g)


def _errors(run: _Run, params: Params, beliefs: dict[str, Array]) -> dict[str, _Errors]:
    """Errors of every dense vertex with predictions from the current beliefs and ``params``."""
    net, out = run.net, {}
    for k in net.dense:
        x = presynaptic(net, k, beliefs[net.parent[k]])
        a, mu = dense_prediction(net, params, k, x)
        out[k] = _vertex_errors(net, k, x, a, mu, beliefs[k], run.xp)
    return out


def _fixed_errors(run: _Run, beliefs: dict[str, Array]) -> dict[str, _Errors]:
    """Errors of every dense vertex against the forward-pass predictions (FixedPred)."""
    net, states = run.net, run.states
    return {
        k: _vertex_errors(net, k, states[k]["x"], states[k]["a"], states[k]["mu"], beliefs[k], run.xp)
        for k in net.dense
    }


def _infer(
    run: _Run,
    params: Params,
    beliefs: dict[str, Array],
    errors: dict[str, _Errors],
    step: float,
    jacobian_at: dict[str, Array],
) -> dict[str, Array]:
    """One synchronous inference step; pre-convention Jacobians ``act_c'`` are taken at ``jacobian_at``."""
    net = run.net
    new = dict(beliefs)
    for j in net.hidden:
        fb = 0
        for c in net.children[j]:
            back = errors[c].g @ params[f"{c}.weight"]
            if net.attrs[c]["convention"] == "pre":
                back = derivative(net.attrs[c]["activation"], jacobian_at[j]) * back
            fb = fb + back
        new[j] = beliefs[j] + step * (fb - errors[j].eps)
    return new


def _delta(net: Network, k: str, g: Array, x: Array, alpha: float) -> Params:
    """``alpha g^T x`` and ``alpha sum_b g`` for the parameters of vertex ``k``."""
    out = {f"{k}.weight": alpha * (g.T @ x)}
    if net.attrs[k].get("bias", True):
        out[f"{k}.bias"] = alpha * g.sum(axis=0)
    return out


def _every_vertex(
    run: _Run, errors: dict[str, _Errors], alpha: float, signals: dict[str, Array] | None = None
) -> Params:
    """The update of every dense vertex from ``errors``, with ``signals`` in place of ``x`` where given."""
    deltas: Params = {}
    for k, e in errors.items():
        deltas.update(_delta(run.net, k, e.g, e.x if signals is None else signals[k], alpha))
    return deltas


def _final(run: _Run, deltas: Params, at: int, steps: int, **extra: Any) -> ReferenceResult:
    """Apply ``deltas`` to the initial parameters in one go (IL, StrictPC, FixedPred, BP)."""
    new = run.apply(run.params, deltas)
    if new is None:
        return run.diverged(at, steps)
    return run.finish(new, deltas, steps, **extra)


def _bp(run: _Run, graph: nx.DiGraph, rule: BP) -> ReferenceResult:
    if run.record(_fixed_errors(run, run.initial_beliefs())):
        return run.diverged(0, 0)
    grads = backward(run.net, run.params, run.states, run.targets, run.xp)
    return _final(run, {n: -rule.alpha * g for n, g in grads.items()}, 0, 0)


def _il(run: _Run, graph: nx.DiGraph, rule: IL) -> ReferenceResult:
    beliefs = run.initial_beliefs()
    for t in range(rule.t_c + 1):
        errors = _errors(run, run.params, beliefs)
        if run.record(errors):
            return run.diverged(t, t)
        if t < rule.t_c:
            beliefs = _infer(run, run.params, beliefs, errors, rule.gamma, beliefs)
    return _final(run, _every_vertex(run, errors, rule.alpha), rule.t_c, rule.t_c)


def _zil(run: _Run, graph: nx.DiGraph, rule: ZIL) -> ReferenceResult:
    trigger = trigger_steps(graph)
    n_steps = max(trigger[k] for k in run.net.dense) + 1
    beliefs, params = run.initial_beliefs(), run.params
    updates = {n: run.xp.zeros_like(p) for n, p in params.items()}
    eps_at_trigger: dict[str, Array] = {}
    for t in range(n_steps):
        errors = _errors(run, params, beliefs)
        if run.record(errors):
            return run.diverged(t, t)
        deltas: Params = {}
        for k in run.net.dense:
            if trigger[k] == t:
                eps_at_trigger[k] = errors[k].eps
                deltas.update(_delta(run.net, k, errors[k].g, errors[k].x, rule.alpha))
        beliefs = _infer(run, params, beliefs, errors, rule.gamma, beliefs)
        params = run.apply(params, deltas)
        if params is None:
            return run.diverged(t, t + 1)
        updates.update(deltas)
    return run.finish(params, updates, n_steps, eps_at_trigger=eps_at_trigger)


def _fazil(run: _Run, graph: nx.DiGraph, rule: FaZIL) -> ReferenceResult:
    xp, net = run.xp, run.net
    trigger = trigger_steps(graph)
    n_steps = rule.ticks if rule.ticks is not None else max(trigger[k] for k in net.dense) + 1
    beliefs, params = run.initial_beliefs(), run.params
    updates = {n: xp.zeros_like(p) for n, p in params.items()}
    # last[k] = eps_k(t-1); same[k] = length (capped at t_d) of the run of equal values
    # ending at eps_k(t-1). Before t = 0 every error is 0 forever, so the run is full.
    last = {k: xp.zeros_like(run.states[k]["mu"]) for k in net.dense}
    same = {k: xp.full(last[k].shape, rule.t_d, dtype=xp.int64) for k in net.dense}
    fired: list[numpy.ndarray] = []
    to_host = getattr(xp, "asnumpy", numpy.asarray)
    for t in range(n_steps):
        errors = _errors(run, params, beliefs)
        if run.record(errors):
            return run.diverged(t, t)
        deltas: Params = {}
        for index, k in enumerate(net.dense):
            eps = errors[k].eps
            changed = eps != last[k]
            phi = changed & (same[k] >= rule.t_d)
            same[k] = xp.where(changed, 1, xp.minimum(same[k] + 1, rule.t_d))
            last[k] = eps
            neuron, sample = (to_host(i).astype(numpy.int64) for i in xp.nonzero(phi.T))
            if neuron.size:
                head = numpy.broadcast_to(numpy.array([t, index], dtype=numpy.int64), (neuron.size, 2))
                fired.append(numpy.column_stack([head, neuron, sample]))
            deltas.update(_delta(net, k, errors[k].g * phi, errors[k].x, rule.alpha))
        beliefs = _infer(run, params, beliefs, errors, rule.gamma, beliefs)
        params = run.apply(params, deltas)
        if params is None:
            return run.diverged(t, t + 1)
        updates = {n: updates[n] + d for n, d in deltas.items()}
    firings = numpy.concatenate(fired) if fired else _no_firings()
    levels = numpy.array([trigger[k] for k in net.dense], dtype=numpy.int64)
    late = firings[firings[:, 0] != levels[firings[:, 1]]]
    return run.finish(params, updates, n_steps, firings=firings, late_firings=late)


def _strict(run: _Run, graph: nx.DiGraph, rule: StrictPC) -> ReferenceResult:
    beliefs = run.initial_beliefs()
    for t in range(rule.n):
        errors = _errors(run, run.params, beliefs)
        if run.record(errors):
            return run.diverged(t, t)
        beliefs = _infer(run, run.params, beliefs, errors, rule.eta, beliefs)
    signals = {k: presynaptic(run.net, k, beliefs[run.net.parent[k]]) for k in run.net.dense}  # state n
    return _final(run, _every_vertex(run, errors, rule.alpha, signals), rule.n, rule.n)


def _fixedpred(run: _Run, graph: nx.DiGraph, rule: FixedPred) -> ReferenceResult:
    n = rule.n if rule.n is not None else n_exact(graph)
    beliefs = run.initial_beliefs()
    forward_beliefs = dict(beliefs)
    for t in range(n):
        errors = _fixed_errors(run, beliefs)
        if run.record(errors):
            return run.diverged(t, t)
        beliefs = _infer(run, run.params, beliefs, errors, rule.eta, forward_beliefs)
    return _final(run, _every_vertex(run, errors, rule.alpha), n, n)


_RUNNERS = {BP: _bp, IL: _il, ZIL: _zil, FaZIL: _fazil, StrictPC: _strict, FixedPred: _fixedpred}


def run_rule(
    graph: nx.DiGraph, params: Mapping[str, Array], x: Any, y: Any, rule: Rule, xp: Any = numpy
) -> ReferenceResult:
    """Run ``rule`` on one batch from the forward pass and return the updated parameters.

    Parameters
    ----------
    graph
        A neurosim model graph (inputs and dense vertices).
    params
        ``{"<vertex>.weight": (out, in), "<vertex>.bias": (out,)}``; not mutated. Their
        dtype (float64 or float32) is the dtype of every computation.
    x
        ``(B, n_in)`` for a single-input graph, or ``{input_vertex: (B, size)}``.
    y
        ``(B, n_out)`` for a single-output graph (one-hot rows for ``ce``), or
        ``{output_vertex: (B, size)}``.
    rule
        A :class:`neurosim.rules.Rule`: ``BP``, ``IL``, ``ZIL``, ``FaZIL``, ``StrictPC``
        or ``FixedPred``; the semantics of each are in the module docstring.
    xp
        Array namespace, ``numpy`` or ``cupy``. ``params``, ``updates`` and
        ``eps_at_trigger`` are ``xp`` arrays; ``energy`` and the firings are numpy.

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
        The graph or the parameters are invalid; ZIL and FaZIL on a graph where a vertex
        has several path lengths to the outputs.
    """
    runner = _RUNNERS.get(type(rule))
    if runner is None:
        raise ConfigError(
            f"rule must be one of neurosim.rules.BP, IL, ZIL, FaZIL, StrictPC, FixedPred, got {rule!r}"
        )
    run = _Run(graph, params, x, y, getattr(rule, "max_energy_ratio", numpy.inf), xp)
    with numpy.errstate(over="ignore", invalid="ignore"):  # divergence is reported, not warned about
        return runner(run, graph, rule)
