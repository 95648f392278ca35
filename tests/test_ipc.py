"""Incremental PC (Salvatori et al., ICLR 2024) in the reference, against closed forms.

Every expectation is computed here, independently of ``neurosim.reference``:

- one and two steps on a linear network, written out by hand;
- the whole trajectory of a model whose energy is a convex quadratic in its values and
  weights jointly (``x -> h = W x -> out = h``, output clamped), where one iPC step is
  an affine map ``z -> A z + c`` built here from the energy, and its fixed point, the
  least-squares solution ``W* = Y^T X (X^T X)^-1`` obtained with ``numpy.linalg.lstsq``;
- backprop (``exact_backprop.chain_backprop``, or finite differences of the naive loss
  of ``graph_cases``): at step ``l`` the error reaching a vertex ``l`` edges from the
  output is ``gamma^l`` times backprop's (Song et al. 2020's argument for Z-IL holds
  because no weight below the error front has changed yet), so a run of ``l + 1``
  steps gives that vertex exactly ``gamma^l`` times backprop's update;
- finite differences of the energy written with ``graph_cases.naive_vertex``: the
  step from state ``t`` is ``-alpha dF/dtheta`` and ``-gamma dF/dv`` at state ``t``;
- the energy decreasing monotonically for small steps (hypothesis over small MLPs).
"""

from __future__ import annotations

import dataclasses

import networkx as nx
import numpy as np
import pytest
from exact_backprop import chain_backprop
from fuzz_support import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import log_softmax

import graph_cases as gc
from neurosim.engine import Simulator
from neurosim.errors import ConfigError
from neurosim.graph import mlp, validate_graph
from neurosim.graph.spec import bias_refs, weight_refs
from neurosim.reference import run_rule
from neurosim.reference.incremental import run_ipc
from neurosim.reference.rules import _Run
from neurosim.rules import IL, IPC, make_rule

RTOL = 1e-12


def _rel(u, r):
    """``||u - r|| / ||r||``, or ``||u||`` where ``r = 0`` (a relu layer with no live unit)."""
    norm = np.linalg.norm(np.ravel(r))
    return float(np.linalg.norm(np.ravel(u) - np.ravel(r)) / (norm if norm > 0 else 1.0))


def _linear_case(convention="post", seed=0):
    graph = mlp([3, 4, 2], activation="linear", convention=convention, loss="mse")
    rng = np.random.default_rng(seed)
    p = {"layer1.weight": rng.normal(size=(4, 3)), "layer1.bias": rng.normal(size=4),
         "layer2.weight": rng.normal(size=(2, 4)), "layer2.bias": rng.normal(size=2)}
    return graph, p, rng.normal(size=(5, 3)), rng.normal(size=(5, 2))


# --- one and two steps by hand ---------------------------------------------------------


@pytest.mark.parametrize("convention", ["post", "pre"])  # the same function when act is linear
def test_one_step_on_a_linear_network_is_alpha_eps_x(convention):
    graph, p, x, y = _linear_case(convention)
    alpha = 0.07
    h = x @ p["layer1.weight"].T + p["layer1.bias"]
    e2 = y - (h @ p["layer2.weight"].T + p["layer2.bias"])  # the only nonzero error at state 0
    res = run_rule(graph, p, x, y, IPC(alpha=alpha, gamma=0.3, ticks=1))
    assert _rel(res.updates["layer2.weight"], alpha * e2.T @ h) < RTOL
    assert _rel(res.updates["layer2.bias"], alpha * e2.sum(axis=0)) < RTOL
    assert not res.updates["layer1.weight"].any() and not res.updates["layer1.bias"].any()
    assert res.energy.tolist() == pytest.approx([0.5 * np.sum(e2**2)], rel=RTOL)


def test_two_steps_on_a_linear_network_by_hand():
    """Step 1 reads state 1: the moved hidden values, the output weights changed at step 0."""
    graph, p, x, y = _linear_case()
    alpha, gamma = 0.05, 0.4
    W1, b1, W2, b2 = p["layer1.weight"], p["layer1.bias"], p["layer2.weight"], p["layer2.bias"]
    h0 = x @ W1.T + b1
    e2_0 = y - (h0 @ W2.T + b2)
    W2_1, b2_1 = W2 + alpha * e2_0.T @ h0, b2 + alpha * e2_0.sum(axis=0)
    h1 = h0 + gamma * (0.0 + e2_0 @ W2)  # -eps_h(0) = 0, feedback through W2 of state 0
    e1_1 = h1 - (x @ W1.T + b1)
    e2_1 = y - (h1 @ W2_1.T + b2_1)
    res = run_rule(graph, p, x, y, IPC(alpha=alpha, gamma=gamma, ticks=2))
    expected = {
        "layer1.weight": alpha * e1_1.T @ x, "layer1.bias": alpha * e1_1.sum(axis=0),
        "layer2.weight": alpha * (e2_0.T @ h0 + e2_1.T @ h1),
        "layer2.bias": alpha * (e2_0.sum(axis=0) + e2_1.sum(axis=0)),
    }
    for name, value in expected.items():
        assert _rel(res.updates[name], value) < RTOL, name
        assert _rel(res.params[name] - p[name], value) < 1e-11, name
    e_state1 = 0.5 * (np.sum(e1_1**2) + np.sum(e2_1**2))
    assert res.energy == pytest.approx([0.5 * np.sum(e2_0**2), e_state1], rel=RTOL)


# --- the joint dynamics of a convex model: trajectory and fixed point --------------------


def _regression_graph(n_in, n_out):
    """``x -> h = W x (no bias) -> out = h`` (mse): ``F = 1/2||h - W x||^2 + 1/2||y - h||^2``."""
    g = nx.DiGraph(name="regression")
    g.add_node("x", op="input", size=n_in)
    g.add_node("h", op="dense", size=n_out, activation="linear", convention="post", bias=False)
    g.add_node("out", op="activation", activation="linear", loss="mse")
    g.add_edges_from([("x", "h"), ("h", "out")])
    validate_graph(g)
    return g


def _affine_step(X, y_i, gamma, alpha):
    """One iPC step for output unit ``i`` as ``z -> A z + c``, ``z = [h[:, i]; W[i, :]]``,
    from the energy: ``dF/dh = (h - X w) - (y - h)``, ``dF/dw = -X^T (h - X w)``."""
    B, m = X.shape
    A = np.block([[(1 - 2 * gamma) * np.eye(B), gamma * X],
                  [alpha * X.T, np.eye(m) - alpha * X.T @ X]])
    return A, np.concatenate([gamma * y_i, np.zeros(m)])


def _closed_form(W, X, Y, gamma, alpha, t):
    """``W(t)`` and the energies ``E(0..t-1)`` from ``z(s) = z* + A^s (z(0) - z*)``."""
    B, m = X.shape
    W_t, energies = np.empty_like(W), np.zeros(t)
    for i in range(W.shape[0]):
        A, c = _affine_step(X, Y[:, i], gamma, alpha)
        z_star = np.linalg.solve(np.eye(B + m) - A, c)
        z0 = np.concatenate([X @ W[i], W[i]])  # state 0: the forward pass
        for s in range(t + 1):
            z = z_star + np.linalg.matrix_power(A, s) @ (z0 - z_star)
            h, w = z[:B], z[B:]
            if s < t:
                energies[s] += 0.5 * np.sum((h - X @ w) ** 2) + 0.5 * np.sum((Y[:, i] - h) ** 2)
        W_t[i] = w
    return W_t, energies


def _regression_case(seed=3, B=6, m=3, n=2):
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(B, m)), rng.normal(size=(B, n))
    return _regression_graph(m, n), {"h.weight": rng.normal(size=(n, m))}, X, Y


TRAJECTORIES = [(0.2, 0.05, 1), (0.2, 0.05, 7), (0.45, 0.01, 40)]


def trajectory_errors(gamma, alpha, ticks):
    """Relative errors of ``W(ticks)`` and of ``E(0..ticks-1)`` against the closed form."""
    graph, p, X, Y = _regression_case()
    res = run_rule(graph, p, X, Y, IPC(alpha=alpha, gamma=gamma, ticks=ticks))
    W_t, energies = _closed_form(p["h.weight"], X, Y, gamma, alpha, ticks)
    return _rel(res.params["h.weight"], W_t), _rel(res.energy, energies)


@pytest.mark.parametrize("gamma, alpha, ticks", TRAJECTORIES)
def test_trajectory_of_a_convex_model_equals_its_closed_form(gamma, alpha, ticks):
    assert max(trajectory_errors(gamma, alpha, ticks)) < 1e-12


def fixed_point_errors(ticks=3000):
    """The stationary point of ``F`` in ``(h, W)``: ``W* = argmin ||Y - X W^T||`` and
    ``h* = (X W*^T + Y) / 2``, where ``F* = 1/4 ||Y - X W*^T||^2``; the relative errors
    of ``W(ticks)`` and ``E(ticks - 1)`` against them, and ``E(0) / F*``."""
    graph, p, X, Y = _regression_case()
    W_star = np.linalg.lstsq(X, Y, rcond=None)[0].T
    F_star = 0.25 * np.sum((Y - X @ W_star.T) ** 2)
    res = run_rule(graph, p, X, Y, IPC(alpha=0.03, gamma=0.2, ticks=ticks))
    assert not res.diverged
    return _rel(res.params["h.weight"], W_star), abs(res.energy[-1] / F_star - 1), res.energy[0] / F_star


def test_long_run_converges_to_the_least_squares_fixed_point():
    w_err, f_err, start = fixed_point_errors()
    assert w_err < 1e-10 and f_err < 1e-10
    assert start > 2  # it got there from far away


# --- against backprop ------------------------------------------------------------------


def _level(graph, name):
    """The vertex owning parameter ``name`` and its path length to the output."""
    owner = next(v for v in graph if graph.nodes[v]["op"] not in ("input",)
                 and any(r.name == name for r in list(_refs(graph, v))))
    return owner, nx.shortest_path_length(graph, owner, next(v for v in graph if graph.nodes[v].get("loss")))


def _refs(graph, v):
    if graph.nodes[v]["op"] in ("dense", "conv2d"):
        return list(weight_refs(graph, v).values()) + list(bias_refs(graph, v))
    return []


MLPS = [("tanh", "post", "mse"), ("sigmoid", "pre", "ce"), ("relu", "post", "ce"), ("tanh", "pre", "mse")]


@pytest.mark.parametrize("activation, convention, loss", MLPS)
@pytest.mark.parametrize("gamma", [1.0, 0.5])
def test_step_l_gives_gamma_l_times_backprop_on_mlps(activation, convention, loss, gamma):
    """A run of ``l + 1`` steps gives the vertex ``l`` edges from the output exactly
    ``gamma^l`` times backprop's update (``l = 0``: iPC's first step, equal to IL with
    ``t_c = 0``, is backprop on the output layer; every other error is 0 at state 0)."""
    assert mlp_backprop_error(activation, convention, loss, gamma) < 1e-12


def mlp_backprop_error(activation, convention, loss, gamma):
    """The worst relative error, over the parameters, of a run of ``l + 1`` steps against
    ``gamma^l`` times backprop's update (``exact_backprop.chain_backprop``)."""
    out = "linear" if convention == "post" else None
    graph = mlp([4, 5, 3, 4, 3], activation=activation, convention=convention, loss=loss, output_activation=out)
    params, x, y = gc.random_case(graph, 11, batch=3)
    (x,), (y,) = x.values(), y.values()
    grads, _ = chain_backprop(graph, params, x, y)
    alpha, worst = 0.02, 0.0
    for name in params:
        assert np.any(grads[name]), name  # the comparison below is not vacuous
        _, level = _level(graph, name)
        res = run_rule(graph, params, x, y, IPC(alpha=alpha, gamma=gamma, ticks=level + 1))
        worst = max(worst, _rel(res.updates[name], -alpha * gamma**level * grads[name]))
        if level == 0:
            il = run_rule(graph, params, x, y, IL(alpha=alpha, t_c=0))
            assert _rel(res.updates[name], il.updates[name]) < 1e-14
        else:  # the error has not reached it one step earlier
            early = run_rule(graph, params, x, y, IPC(alpha=alpha, gamma=gamma, ticks=level))
            assert not early.updates[name].any(), name
    return worst


CNNS = {"cnn": gc.cnn, "deep_cnn": gc.deep_cnn}


def cnn_backprop_error(name):
    """As :func:`mlp_backprop_error`, against central differences of the naive loss."""
    graph = CNNS[name]()
    params, x, y = gc.random_case(graph, 5, batch=2)
    fd = gc.fd_gradients(graph, params, x, y)
    alpha, gamma, worst = 0.01, 0.7, 0.0
    for p in params:
        _, level = _level(graph, p)
        res = run_rule(graph, params, x, y, IPC(alpha=alpha, gamma=gamma, ticks=level + 1))
        worst = max(worst, _rel(res.updates[p], -alpha * gamma**level * fd[p]))
    return worst


@pytest.mark.parametrize("name", sorted(CNNS))
def test_step_l_gives_gamma_l_times_backprop_on_cnns(name):
    assert cnn_backprop_error(name) < 1e-7


# --- finite differences of the energy at state t ------------------------------------------


def _energy(graph, params, beliefs, y):
    """``F = sum_hidden 1/2 ||v - mu||^2 + sum_outputs loss(mu, y)``, from naive_vertex."""
    total = 0.0
    for v in nx.topological_sort(graph):
        node = graph.nodes[v]
        if node["op"] == "input":
            continue
        mu = gc.naive_vertex(graph, v, params, gc.parent_values(graph, v, beliefs))
        if node.get("loss") == "mse":
            total += 0.5 * np.sum((mu - y[v]) ** 2)
        elif node.get("loss") == "ce":
            total += -np.sum(y[v] * log_softmax(mu, axis=1))
        else:
            total += 0.5 * np.sum((beliefs[v] - mu) ** 2)
    return total


GRAPHS = {
    "mlp-post": lambda: mlp([3, 4, 3, 2], activation="tanh", convention="post", loss="mse"),
    "mlp-pre": lambda: mlp([3, 4, 3, 2], activation="sigmoid", convention="pre", loss="ce"),
    "cnn": lambda: gc.cnn(act="tanh", pool="max"),
    "block-cnn": lambda: gc.block_cnn(act="tanh"),
    "rnn-loss-every-step": lambda: gc.rnn(3, loss_every=True),
    "lstm-gates": lambda: gc.lstm_gates(2),
    "lstm-cells": lambda: gc.lstm_cells(2),
    "residual": lambda: gc.residual(skip=True),
    "sliced": gc.sliced_dag,
    "every-op": gc.every_op_dag,
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_each_step_is_minus_the_energy_gradient_at_state_t(name):
    assert max(fd_errors(name)) < 1e-7


def fd_errors(name, t=2):
    """At state ``t`` (2: hidden errors nonzero, the output's weights already changed),
    the relative errors of the weight change against ``-alpha dF/dtheta`` and of the
    value change against ``-gamma dF/dv``, by central differences of the energy."""
    graph = GRAPHS[name]()
    params, x, y = gc.random_case(graph, 7, batch=2)
    alpha, gamma = 0.1, 0.3
    seen = []
    run = _Run(graph, params, x, y, np.inf, np)
    run_ipc(run, IPC(alpha=alpha, gamma=gamma, ticks=4),
            observe=lambda t, b, p, s, d: seen.append((dict(b), dict(p), d)))
    assert len(seen) == 4 and t + 1 < 4
    hidden = [v for v in graph if graph.nodes[v]["op"] != "input" and not graph.nodes[v].get("loss")]
    beliefs, p, deltas = seen[t]
    fd = gc.fd_param_gradients(lambda q: _energy(graph, q, beliefs, y), p)
    flat = [np.concatenate([np.ravel(a[n]) for n in sorted(p)]) for a in (deltas, fd)]
    moved = {v: seen[t + 1][0][v] - beliefs[v] for v in hidden}
    fd_v = gc.fd_param_gradients(lambda b: _energy(graph, p, {**beliefs, **b}, y), {v: beliefs[v] for v in hidden})
    flat_v = [np.concatenate([np.ravel(a[v]) for v in hidden]) for a in (moved, fd_v)]
    return _rel(flat[0], -alpha * flat[1]), _rel(flat_v[0], -gamma * flat_v[1])


# --- the energy goes down for small steps --------------------------------------------------


@fuzz_settings(40)
@given(
    widths=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    n_in=st.integers(1, 4),
    n_out=st.integers(1, 3),
    activation=st.sampled_from(["tanh", "sigmoid", "linear", "relu"]),
    convention=st.sampled_from(["post", "pre"]),
    batch=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_energy_decreases_monotonically_for_small_steps(widths, n_in, n_out, activation, convention, batch, seed):
    """Gradient descent on ``F`` jointly in values and weights with steps below the
    inverse curvature (``gamma = alpha = 0.01`` here: inputs and targets are ``N(0, 1)``,
    weights within PyTorch's init bound) never raises ``F`` (mse: ``F = E``)."""
    graph = mlp([n_in, *widths, n_out], activation=activation, convention=convention, loss="mse")
    params, x, y = gc.random_case(graph, seed, batch=batch, scale=1.0)
    res = run_rule(graph, params, x, y, IPC(alpha=0.01, gamma=0.01, ticks=25))
    assert not res.diverged
    assert np.all(np.diff(res.energy) <= 1e-12 * res.energy[0])
    if any(np.any(u) for u in res.updates.values()):  # else a stationary point (e.g. a dead relu output)
        assert res.energy[-1] < res.energy[0]


# --- configuration and divergence ------------------------------------------------------------


def test_make_rule_and_validation():
    assert make_rule("ipc", alpha=0.1, ticks=5, gamma=0.2) == IPC(alpha=0.1, gamma=0.2, ticks=5)
    assert make_rule("Incremental-PC") == IPC()
    assert {f.name for f in dataclasses.fields(IPC)} == {"alpha", "gamma", "ticks", "max_energy_ratio"}
    for bad in (dict(ticks=0), dict(gamma=0.0), dict(gamma=float("nan")), dict(ticks=1.5), dict(alpha=-1.0)):
        with pytest.raises(ConfigError):
            IPC(**bad)
    with pytest.raises(ConfigError, match="t_c"):
        make_rule("ipc", t_c=3)


def test_divergence_keeps_the_steps_before_it():
    """``gamma = 1.5`` on a linear chain makes the values explode: the run stops at the
    first state past ``max_energy_ratio``, keeping the weight changes of the steps before
    it, which equal those of a run that ends one step earlier."""
    graph, p, x, y = _linear_case()
    rule = IPC(alpha=1e-3, gamma=1.5, ticks=60, max_energy_ratio=1e3)
    res = run_rule(graph, p, x, y, rule)
    assert res.diverged and 0 < res.diverged_at < 60
    at = res.diverged_at
    assert res.energy[at] > 1e3 * res.energy[0] and np.all(res.energy[:at] <= 1e3 * res.energy[0])
    before = run_rule(graph, p, x, y, dataclasses.replace(rule, ticks=at))
    assert not before.diverged
    for name in p:
        np.testing.assert_array_equal(res.updates[name], before.updates[name])
        np.testing.assert_array_equal(res.params[name], before.params[name])


def test_an_update_that_overflows_a_weight_undoes_the_presentation():
    graph, p, x, y = _linear_case()
    res = run_rule(graph, p, x, y, IPC(alpha=1e308, gamma=0.1, ticks=3))
    assert res.diverged and res.diverged_at == 0 and res.steps == 1
    for name in p:
        np.testing.assert_array_equal(res.params[name], p[name])
        assert not res.updates[name].any()


# --- the event loop (after the engine cut) ------------------------------------------------


@pytest.mark.xfail(raises=ConfigError, strict=True, reason="iPC on the event loop follows the engine cut (issue 12)")
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_event_loop_equals_the_reference_in_sync_mode(name):
    """Issue 12's acceptance test: the loop's iPC equals this reference to 1e-12 (strict
    xfail until the loop has iPC: a pass is reported so that the mark goes)."""
    graph = GRAPHS[name]()
    params, x, y = gc.random_case(graph, 7, batch=2, scale=1.0)
    rule = IPC(alpha=0.05, gamma=0.3, ticks=6)
    ref = run_rule(graph, params, x, y, rule)
    ours = Simulator(graph, params).learn(x, y, rule)
    assert ours.diverged == ref.diverged and ours.diverged_at == ref.diverged_at
    np.testing.assert_allclose(ours.energy, ref.energy, rtol=1e-12)
    flat = [np.concatenate([np.ravel(r.updates[n]) for n in sorted(params)]) for r in (ours, ref)]
    assert _rel(flat[0], flat[1]) < 1e-12


def report() -> None:
    """Print every measured error (``cd tests && PYTHONPATH=.. python -c "import test_ipc; test_ipc.report()"``)."""
    for case in TRAJECTORIES:
        print("trajectory gamma, alpha, ticks =", case, "W, E:", trajectory_errors(*case))
    print("fixed point after 3000 steps: W, F, E(0)/F*:", fixed_point_errors())
    for case in MLPS:
        for gamma in (1.0, 0.5):
            print(f"gamma^l backprop, mlp {case} gamma={gamma}:", mlp_backprop_error(*case, gamma))
    for name in sorted(CNNS):
        print(f"gamma^l backprop (finite differences), {name}:", cnn_backprop_error(name))
    for name in sorted(GRAPHS):
        print(f"finite differences at state 2, {name}: theta, v:", fd_errors(name))
