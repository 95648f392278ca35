"""What divergence means for a rule whose updates are already made (``neurosim.rules``).

A run whose errors diverge at step ``t`` ends there: every change computed from the
states before ``t`` takes effect (Z-IL's and Fa-Z-IL's updates made at earlier steps,
and the sums held back for shared parameters), nothing computed from state ``t``. So a
Fa-Z-IL presentation kept running long after its last trigger, which the default
``max_energy_ratio`` reports as diverged, still makes backprop's exact SGD step
(checked against :func:`neurosim.reference.backprop.gradients`, itself checked against
finite differences). A run in which an update makes a weight non-finite is undone.
"""

from __future__ import annotations

import numpy as np
import pytest

import graph_cases as gc
from neurosim.engine import Simulator
from neurosim.graph import exact_steps, mlp
from neurosim.reference.backprop import gradients
from neurosim.reference.rules import run_rule
from neurosim.rules import ZIL, FaZIL

ALPHA = 0.01


def _both(graph, params, x, y, rule):
    sim = Simulator(graph, params)
    ours = sim.learn(x, y, rule)
    ours.params = sim.params
    ref = run_rule(graph, params, x, y, rule)
    assert ours.diverged == ref.diverged and ours.diverged_at == ref.diverged_at
    assert ours.named(ours.firings) == ref.named(ref.firings)
    assert gc.overall_error(ours.updates, ref.updates) <= 1e-12
    return ours, ref


@pytest.mark.parametrize("case", ["mlp-linear-pre", "mlp-linear-post", "rnn-tanh-deferred"])
def test_fazil_run_past_its_triggers_diverges_but_keeps_the_exact_update(case):
    if case.startswith("mlp"):
        graph = mlp([4, 8, 8, 8, 3], activation="linear", convention=case.split("-")[-1], loss="mse")
    else:
        graph = gc.rnn(3, hidden=5)
    params, x, y = gc.random_case(graph, 0, batch=2, scale=3.0)
    last = exact_steps(graph) - 1  # the last trigger step l
    ours, ref = _both(graph, params, x, y, FaZIL(alpha=ALPHA, ticks=last + 12))  # default max_energy_ratio
    assert ours.diverged and last < ours.diverged_at < last + 12
    sgd = {n: -ALPHA * g for n, g in gradients(graph, params, x, y).items()}
    assert gc.overall_error(ours.updates, sgd) <= 1e-12
    assert gc.overall_error(ref.updates, sgd) <= 1e-12
    for name, value in params.items():  # the parameters kept the update
        np.testing.assert_array_equal(ref.params[name], value + ref.updates[name])
        np.testing.assert_allclose(ours.params[name], value + ours.updates[name], rtol=0, atol=1e-15)


def test_zil_diverging_mid_run_keeps_the_updates_of_earlier_steps():
    graph = mlp([4, 8, 8, 3], activation="linear", convention="pre", loss="mse")
    params, x, y = gc.random_case(graph, 0, batch=2, scale=3.0)
    energy = run_rule(graph, params, x, y, ZIL(alpha=ALPHA)).energy
    assert energy[1] < energy[2]  # this case's energy grows at step 2
    ratio = float(energy[2] / energy[0]) * (1 - 1e-9)
    ours, ref = _both(graph, params, x, y, ZIL(alpha=ALPHA, max_energy_ratio=ratio))
    assert ours.diverged_at == 2
    grads = gradients(graph, params, x, y)
    for name in ("layer3.weight", "layer3.bias", "layer2.weight", "layer2.bias"):  # l = 0, 1: made
        assert gc.relative_error(ours.updates[name], -ALPHA * grads[name]) <= 1e-12
    for name in ("layer1.weight", "layer1.bias"):  # l = 2: computed from the diverging state
        assert not np.any(ours.updates[name]) and not np.any(ref.updates[name])


def test_an_update_that_makes_a_weight_non_finite_undoes_the_presentation():
    graph = mlp([3, 5, 2], activation="tanh", convention="pre", loss="mse")
    params, x, y = gc.random_case(graph, 1, batch=2)
    params = {n: p.astype(np.float32) for n, p in params.items()}
    y = {v: 1e3 * t for v, t in y.items()}  # output errors ~1e3: alpha g x overflows float32 at step 0
    sim = Simulator(graph, params, dtype=np.float32)
    ours = sim.learn(x, y, FaZIL(alpha=1e38))
    ref = run_rule(graph, params, x, y, FaZIL(alpha=1e38))
    assert ours.diverged and ref.diverged and ours.diverged_at == ref.diverged_at == 0
    for name, value in params.items():
        np.testing.assert_array_equal(sim.params[name], value)
        np.testing.assert_array_equal(ref.params[name], value)
        assert not np.any(ours.updates[name]) and not np.any(ref.updates[name])
