"""Incremental predictive coding (iPC) in the vectorized reference.

Salvatori et al., "A stable, fast, and fully automatic learning algorithm for predictive
coding networks", ICLR 2024: the weights descend the energy at every inference step,
together with the values, instead of once after a relaxation (IL). With the conventions
of :mod:`neurosim.reference.rules` (``eps_j = v_j - mu_j``, an output's error
``-dL/dmu``) the energy is ``F = sum_hidden 1/2 ||eps_j||^2 + sum_outputs L(mu_o, y_o)``
(``1/2 sum eps^2`` over every error neuron for mse) and one step is gradient descent on
``F`` in the hidden values and in the parameters jointly.

The step, and what the event loop must reproduce
------------------------------------------------
Step ``t`` (``t = 0 .. ticks-1``) reads state ``t`` only, then writes state ``t + 1``:

1. errors ``eps_k(t)`` of every non-input vertex from the beliefs ``v(t)`` and the
   parameters ``theta(t)`` (an output's from its prediction and target);
2. values: ``v_j(t+1) = v_j(t) + gamma * (-eps_j(t) + sum_{c in children(j)}
   J_cj(t)^T eps_c(t))`` for every hidden ``j``, the VJPs with ``theta(t)``: the
   feedback an error neuron sends at step ``t`` is weighted by its synapses *before*
   their step-``t`` change;
3. weights: ``theta_k(t+1) = theta_k(t) + alpha * J_theta(t)^T eps_k(t)`` for every
   parametrized ``k``, with ``g_k(t) = J_a(t)^T eps_k(t)`` (``act'(a(t)) eps(t)`` post,
   ``eps(t)`` pre) and the presynaptic signals of state ``t`` (``x_k(t) = v_p(t)`` post,
   ``act(v_p(t))`` pre): dense ``dW_k = alpha g_k(t)^T x_k(t)``,
   ``db_k = alpha sum_b g_k(t)``. A parameter several vertices share (conv kernels,
   weights shared over time) takes the sum of their contributions at every step.

Steps 2 and 3 are computed from the same state and applied together (Jacobi in values
and weights alike); neither sees the other's result before state ``t + 1``. On the
event loop: an error neuron computes ``eps(t)`` with its current synapses, sends its
feedback through them, and only then adds ``alpha g(t) x(t)`` to each synapse, ``x(t)``
being the presynaptic value it received for state ``t``; a value neuron's change of
step ``t`` reaches the error neurons at state ``t + 1``.

Energy and divergence
---------------------
``energy[t] = 1/2 sum eps(t)^2`` for the states ``0 .. ticks-1`` that compute errors
(as Fa-Z-IL records them); the energy after the last step is ``energy[ticks]`` of a
run one step longer. Divergence at state ``t`` (non-finite errors or
``E(t) > max_energy_ratio * E(0)``) ends the presentation there: the weight changes of
steps ``0 .. t-1`` stay, nothing is computed from state ``t`` (as for Z-IL and Fa-Z-IL).
A change that makes a parameter non-finite undoes the whole presentation.
"""

from __future__ import annotations

from collections.abc import Callable

from neurosim.reference.backprop import Array, Params, zeros_like_params
from neurosim.reference.rules import ReferenceResult, _every_vertex, _infer, _Run, _State
from neurosim.rules import IPC

#: ``observe(t, beliefs, params, state, deltas)``: state ``t`` and the weight change of step ``t``
Observer = Callable[[int, dict[str, Array], Params, _State, Params], None]


def run_ipc(run: _Run, rule: IPC, observe: Observer | None = None) -> ReferenceResult:
    """Run ``rule.ticks`` iPC steps on the checked batch of ``run`` (the module docstring
    gives the step); ``observe``, if given, is called at every step that is not
    diverged with the beliefs, parameters and errors of state ``t`` and the weight
    change the step applies (what the tests measure against finite differences)."""
    xp = run.xp
    beliefs, params = run.initial_beliefs(), run.params
    updates = zeros_like_params(params, xp)
    for t in range(rule.ticks):
        state = run.state(params, beliefs)
        if run.record(state):
            return run.stopped(params, updates, {}, t, t)
        deltas = _every_vertex(run, state, rule.alpha)
        if observe is not None:
            observe(t, beliefs, params, state, deltas)
        beliefs = _infer(run, params, beliefs, state, rule.gamma)
        params = run.apply(params, deltas)
        if params is None:
            return run.diverged(t, t + 1)
        for name, d in deltas.items():
            updates[name] = updates[name] + d
    return run.finish(params, updates, rule.ticks)
