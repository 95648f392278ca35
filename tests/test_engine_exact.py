"""The exact rules on the event loop against backprop, in float64 to round-off.

Backprop here is an explicit chain rule written in the test module
(``tests/exact_backprop.py``), independent of both the event loop and the reference.
Tolerances: the *weights* after one pass match one SGD step to relative error
<= 1e-12 (Song et al.'s claim); the *updates* themselves to <= 1e-11, the limit set
by predictive coding's own arithmetic (``eps = v - mu`` cancels ``|v|/|eps|`` digits;
the worst case seen, a 5-layer sigmoid net, is 1.1e-12).
"""

import itertools

import numpy as np
import pytest

from exact_backprop import chain_backprop, rel_err
from neurosim.engine import Simulator
from neurosim.graph import mlp
from neurosim.params import init_params
from neurosim.reference.rules import run_rule
from neurosim.rules import ZIL, FaZIL, FixedPred

ALPHA = 0.05
WIDTHS = {1: [7], 2: [5, 9], 3: [7, 3, 5], 4: [5, 7, 3, 9]}
GRID = list(itertools.product([1, 2, 3, 4], ["sigmoid", "tanh", "relu", "linear"], ["post", "pre"],
                              [True, False], ["mse", "ce"]))


def _case(depth, act, conv, bias, loss, batch, seed):
    rng = np.random.default_rng(seed)
    sizes = [5, *WIDTHS[depth], 3]
    g = mlp(sizes, activation=act, convention=conv, bias=bias, loss=loss)
    p = init_params(g, seed=seed)
    x = rng.normal(size=(batch, sizes[0]))
    y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], batch)] if loss == "ce" else rng.normal(size=(batch, sizes[-1]))
    return g, p, x, y


def _check_equals_sgd(g, p, x, y, result):
    grads, _ = chain_backprop(g, p, x, y)
    for name, grad in grads.items():
        assert rel_err(result.updates[name], -ALPHA * grad) <= 1e-11, name
        assert rel_err(p[name] + result.updates[name], p[name] - ALPHA * grad) <= 1e-12, name


@pytest.mark.parametrize("depth, act, conv, bias, loss", GRID)
@pytest.mark.parametrize("batch", [1, 4])
def test_zil_equals_one_sgd_step(depth, act, conv, bias, loss, batch):
    g, p, x, y = _case(depth, act, conv, bias, loss, batch, seed=depth * 100 + batch)
    sim = Simulator(g, p)
    res = sim.learn(x, y, ZIL(alpha=ALPHA))
    _check_equals_sgd(g, p, x, y, res)
    for name in sim.params:  # the simulator holds the new weights
        assert np.array_equal(sim.params[name], p[name] + res.updates[name])
    # the error of every vertex at its trigger step is -dL/dv (outputs: -dL/dmu)
    _, dv = chain_backprop(g, p, x, y)
    for vertex, d in dv.items():
        assert rel_err(res.eps_at_trigger[vertex], -d) <= 1e-11, vertex


def test_zil_needs_gamma_one():
    g, p, x, y = _case(2, "tanh", "post", True, "mse", 2, seed=3)
    grads, _ = chain_backprop(g, p, x, y)
    res = Simulator(g, p).learn(x, y, ZIL(alpha=ALPHA, gamma=0.5))
    assert rel_err(res.updates["layer1.weight"], -ALPHA * grads["layer1.weight"]) > 1e-3


@pytest.mark.parametrize("depth, act, conv, bias, loss", GRID)
def test_fixedpred_is_exact_from_n_exact(depth, act, conv, bias, loss):
    g, p, x, y = _case(depth, act, conv, bias, loss, 3, seed=depth * 10 + 7)
    L = depth + 1
    grads, _ = chain_backprop(g, p, x, y)
    for n in (L, L + 2):
        _check_equals_sgd(g, p, x, y, Simulator(g, p).learn(x, y, FixedPred(alpha=ALPHA, eta=1.0, n=n)))
    short = Simulator(g, p).learn(x, y, FixedPred(alpha=ALPHA, eta=1.0, n=L - 1))
    if act == "relu" and not np.any(grads["layer1.weight"]):
        pytest.skip("every first-layer gradient is exactly 0 in this draw")
    assert rel_err(short.updates["layer1.weight"], -ALPHA * grads["layer1.weight"]) > 1e-6


@pytest.mark.parametrize("depth, act, conv, bias, loss",
                         [c for c in GRID if c[1] != "relu"])
def test_fazil_fires_only_at_l_and_equals_backprop(depth, act, conv, bias, loss):
    g, p, x, y = _case(depth, act, conv, bias, loss, 2, seed=depth + 50)
    sim = Simulator(g, p)
    res = sim.learn(x, y, FaZIL(alpha=ALPHA, t_d=4))
    assert len(res.late_firings) == 0
    steps = {v: depth + 1 - int(v.removeprefix("layer")) for v in g if v != "input"}
    assert all(t == steps[v] for t, v, _, _ in res.named(res.firings))
    assert len(res.firings) == sim.netlist.n_error * 2  # every error neuron, every sample, once
    _check_equals_sgd(g, p, x, y, res)


@pytest.mark.parametrize("conv", ["pre", "post"])
def test_fazil_relu_late_firings_are_reproduced_and_reported(conv):
    g, p, x, y = _case(3, "relu", conv, True, "mse", 3, seed=12)
    rule = FaZIL(alpha=ALPHA, t_d=4, ticks=8)
    res = Simulator(g, p).learn(x, y, rule)
    ref = run_rule(g, p, x, y, rule)
    ref_rows = ref.named(ref.firings)
    np.testing.assert_array_equal(res.firings, ref.firings)  # the same rows, indexing the same vertices
    assert res.named(res.firings) == ref_rows  # which neurons fired, when, in which sample
    for name in res.updates:
        assert rel_err(res.updates[name], ref.updates[name]) <= 1e-11
    late = [r for r in ref_rows if r[0] != 3 + 1 - int(r[1].removeprefix("layer"))]
    assert res.named(res.late_firings) == late
    if conv == "pre":
        # Song's phi as written: neurons whose true error is exactly 0 fire later, when
        # their prediction moves, and apply an update that is not backprop's
        grads, _ = chain_backprop(g, p, x, y)
        assert len(res.late_firings) > 0
        assert max(rel_err(res.updates[n], -ALPHA * grads[n]) for n in grads) > 1e-6


@pytest.mark.parametrize("conv", ["pre", "post"])
def test_feedback_detector_never_fires_late_and_equals_backprop(conv):
    """The corrected detector (fires once, while the prediction has not moved) gives
    backprop's step where Song's phi fires late (ReLU, pre convention), even with
    ticks well beyond the wave."""
    g, p, x, y = _case(3, "relu", conv, True, "mse", 3, seed=12)
    res = Simulator(g, p).learn(x, y, FaZIL(alpha=ALPHA, t_d=4, ticks=8, detector="feedback"))
    assert len(res.late_firings) == 0
    steps = {v: 3 + 1 - int(v.removeprefix("layer")) for v in g if v != "input"}
    assert all(t == steps[v] for t, v, _, _ in res.named(res.firings))
    _check_equals_sgd(g, p, x, y, res)
