"""The population-level reference of the PC rules against backprop and the papers' results.

Expectations come from finite differences of the independent loss in
``test_reference_backprop.py``, from backprop (itself checked against finite differences
there), or from closed forms stated in the papers: Z-IL and FixedPred with ``n_exact``
steps equal backprop (Song et al. 2020; Rosenbaum 2022 Theorem 1), Z-IL with step
``gamma`` scales vertex ``k``'s update by ``gamma^l_k``, IL approaches backprop for small
output errors (Whittington and Bogacz 2017), Fa-Z-IL fires late where the backprop
error is exactly 0 (relu, pre convention).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from test_reference_backprop import (
    ACTIVATIONS,
    branching_case,
    fd_belief_gradient,
    independent_forward,
    random_mlp_case,
    random_params,
    relative_error,
)

from neurosim.errors import ConfigError, DataError, GraphError
from neurosim.graph import mlp
from neurosim.reference import gradients, n_exact, predict, run_rule
from neurosim.rules import BP, IL, ZIL, FaZIL, FixedPred, StrictPC

ALPHA = 1e-3
GRID = list(itertools.product([1, 2, 3, 4], ACTIVATIONS, ["post", "pre"], [True, False], ["mse", "ce"], [1, 4]))
SMALL_GRID = list(itertools.product(ACTIVATIONS, ["post", "pre"], ["mse", "ce"]))


def grid_case(hidden, activation, convention, bias, loss_name, batch):
    seed = 1000 + GRID.index((hidden, activation, convention, bias, loss_name, batch))
    return random_mlp_case(seed, hidden, activation, convention, bias, loss_name, batch)


def assert_unchanged(result, params):
    """A diverged run: no update, the input parameters, finite."""
    assert result.diverged
    for name, value in params.items():
        np.testing.assert_array_equal(result.params[name], value)
        assert np.all(np.isfinite(result.params[name]))
        assert not np.any(result.updates[name])


@pytest.mark.parametrize("hidden, activation, convention, bias, loss_name, batch", GRID)
def test_fixedpred_with_n_exact_steps_is_the_gradient(hidden, activation, convention, bias, loss_name, batch):
    graph, params, x, y = grid_case(hidden, activation, convention, bias, loss_name, batch)
    n_layers = hidden + 1  # Rosenbaum's n_exact = L for a chain
    assert n_exact(graph) == n_layers
    grads = gradients(graph, params, x, y)
    exact = run_rule(graph, params, x, y, FixedPred(alpha=ALPHA))
    assert not exact.diverged and exact.steps == n_layers
    for name in params:
        assert relative_error(exact.updates[name], -ALPHA * grads[name]) <= 1e-12, name
        np.testing.assert_array_equal(exact.params[name], params[name] + exact.updates[name])
    if n_layers > 1:
        short = run_rule(graph, params, x, y, FixedPred(alpha=ALPHA, n=n_layers - 1))
        assert relative_error(short.updates["layer1.weight"], -ALPHA * grads["layer1.weight"]) > 1e-6


@pytest.mark.parametrize("hidden, activation, convention, bias, loss_name, batch", GRID)
def test_zil_is_one_sgd_step(hidden, activation, convention, bias, loss_name, batch):
    graph, params, x, y = grid_case(hidden, activation, convention, bias, loss_name, batch)
    grads = gradients(graph, params, x, y)
    result = run_rule(graph, params, x, y, ZIL(alpha=ALPHA))
    assert not result.diverged and result.steps == hidden + 1
    for name in params:
        assert relative_error(result.updates[name], -ALPHA * grads[name]) <= 1e-12, name
    assert set(result.eps_at_trigger) == {f"layer{k}" for k in range(1, hidden + 2)}


@pytest.mark.parametrize("activation, convention, loss_name", SMALL_GRID)
def test_zil_error_at_trigger_is_minus_dl_dv(activation, convention, loss_name):
    graph, params, x, y = random_mlp_case(77, 2, activation, convention, True, loss_name, 2)
    result = run_rule(graph, params, x, y, ZIL(alpha=ALPHA))
    for k in ("layer1", "layer2", "layer3"):
        expected = -fd_belief_gradient(graph, params, {"input": x}, {"layer3": y}, k)
        assert relative_error(result.eps_at_trigger[k], expected) < 1e-6, k


@pytest.mark.parametrize("convention", ["post", "pre"])
def test_zil_with_gamma_scales_vertex_k_by_gamma_to_the_l(convention):
    graph, params, x, y = random_mlp_case(5, 3, "tanh", convention, True, "mse", 3)
    grads = gradients(graph, params, x, y)
    result = run_rule(graph, params, x, y, ZIL(alpha=ALPHA, gamma=0.5))
    for k in range(1, 5):
        level = 4 - k  # path length to the output
        for name in (f"layer{k}.weight", f"layer{k}.bias"):
            assert relative_error(result.updates[name], -ALPHA * 0.5**level * grads[name]) <= 1e-12
            if level:
                assert relative_error(result.updates[name], -ALPHA * grads[name]) > 0.4


def test_zil_on_a_branching_dag_and_refusal_where_l_is_not_unique():
    graph, params, x, y = branching_case("post")
    with pytest.raises(GraphError, match="'h1'.*lengths \\[1, 2\\]"):
        run_rule(graph, params, x, y, ZIL(alpha=ALPHA))
    graph.remove_node("h2")  # now h1 -> {o1, o2}: both children at l = 0, h1 at l = 1
    graph.add_edge("h1", "o2")
    params = {n: p for n, p in params.items() if not n.startswith("h2.")}
    params["o2.weight"] = np.random.default_rng(3).normal(size=(3, 5)) / np.sqrt(5)
    grads = gradients(graph, params, x, y)
    result = run_rule(graph, params, x, y, ZIL(alpha=ALPHA))
    for name in params:
        assert relative_error(result.updates[name], -ALPHA * grads[name]) <= 1e-12, name


@pytest.mark.parametrize("convention", ["post", "pre"])
def test_fixedpred_on_a_branching_dag(convention):
    graph, params, x, y = branching_case(convention)
    assert n_exact(graph) == 3  # h1 -> h2 -> o2
    grads = gradients(graph, params, x, y)
    exact = run_rule(graph, params, x, y, FixedPred(alpha=ALPHA))
    for name in params:
        assert relative_error(exact.updates[name], -ALPHA * grads[name]) <= 1e-12, name
    short = run_rule(graph, params, x, y, FixedPred(alpha=ALPHA, n=2))
    assert relative_error(short.updates["h1.weight"], -ALPHA * grads["h1.weight"]) > 1e-6


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "linear"])
@pytest.mark.parametrize("convention", ["post", "pre"])
def test_fazil_equals_backprop_and_fires_once_per_neuron_at_its_level(activation, convention):
    graph, params, x, y = random_mlp_case(11, 3, activation, convention, True, "mse", 3)
    grads = gradients(graph, params, x, y)
    result = run_rule(graph, params, x, y, FaZIL(alpha=ALPHA, t_d=4))
    assert not result.diverged and result.steps == 4
    for name in params:
        assert relative_error(result.updates[name], -ALPHA * grads[name]) <= 1e-12, name
    assert result.vertices == ("input", "layer1", "layer2", "layer3", "layer4")
    expected = [
        (4 - k, k, neuron, sample)
        for k in (4, 3, 2, 1)
        for neuron in range(graph.nodes[f"layer{k}"]["size"])
        for sample in range(3)
    ]
    np.testing.assert_array_equal(result.firings, np.array(expected, dtype=np.int64))
    assert result.firings.dtype == np.int64
    assert result.late_firings.shape == (0, 4)


def test_fazil_relu_pre_fires_late_where_the_backprop_error_is_zero():
    graph, params, x, y = random_mlp_case(0, 2, "relu", "pre", True, "mse", 2)
    values, _ = independent_forward(graph, params, {"input": x})
    assert np.any(values["layer1"] < 0) and np.any(values["layer2"] < 0)
    grads = gradients(graph, params, x, y)
    result = run_rule(graph, params, x, y, FaZIL(alpha=ALPHA, t_d=4))
    late = result.late_firings
    assert len(late) > 0
    for step, name, neuron, sample in result.named(late):
        # relu'(v) = 0 in the child's activation: the backprop error of that neuron is 0
        assert values[name][sample, neuron] < 0
        assert step > 3 - int(name.removeprefix("layer"))  # later than its level l = L - k
    hit = {name for _, name, _, _ in result.named(late)}
    for name in hit:
        assert relative_error(result.updates[f"{name}.weight"], -ALPHA * grads[f"{name}.weight"]) > 1e-6


def test_fazil_with_a_window_of_one_fires_at_every_change():
    graph, params, x, y = random_mlp_case(11, 2, "sigmoid", "post", True, "mse", 2)
    result = run_rule(graph, params, x, y, FaZIL(alpha=ALPHA, t_d=1))
    output = result.firings[result.firings[:, 1] == result.vertices.index("layer3")]
    assert set(output[:, 0]) == {0, 1, 2}  # the output error changes at every step
    grads = gradients(graph, params, x, y)
    assert relative_error(result.updates["layer3.weight"], -ALPHA * grads["layer3.weight"]) > 1e-6


@pytest.mark.parametrize("convention", ["post", "pre"])
def test_il_approaches_backprop_for_small_output_errors(convention):
    graph = mlp([3, 5, 4, 2], activation="sigmoid", convention=convention, loss="mse")
    rng = np.random.default_rng(2)
    params = random_params(graph, rng)
    x = rng.normal(size=(3, 3))
    y = predict(graph, params, x) + 0.1 * rng.normal(size=(3, 2))
    grads = gradients(graph, params, x, y)
    result = run_rule(graph, params, x, y, IL(alpha=ALPHA, gamma=0.1, t_c=200))
    assert not result.diverged and result.steps == 200 and len(result.energy) == 201
    u = np.concatenate([result.updates[n].ravel() for n in params])
    r = -np.concatenate([grads[n].ravel() for n in params])
    assert u @ r / (np.linalg.norm(u) * np.linalg.norm(r)) > 0.99
    assert np.all(np.diff(result.energy) <= 1e-12 * result.energy[0])  # small steps descend the energy
    assert result.energy[-1] < result.energy[0]


@pytest.mark.parametrize("convention", ["post", "pre"])
def test_il_update_reads_the_errors_and_beliefs_of_state_t_c(convention):
    # layer2 is linear in both conventions: mu_out = v_1 W^T + b
    graph = mlp([3, 5, 2], activation=["tanh", "linear"], convention=convention, loss="mse")
    rng = np.random.default_rng(4)
    params = random_params(graph, rng)
    x, y = rng.normal(size=(2, 3)), rng.normal(size=(2, 2))
    gamma = 0.3
    values, _ = independent_forward(graph, params, {"input": x})
    e_h = -fd_belief_gradient(graph, params, {"input": x}, {"layer2": y}, "layer1")
    v1 = values["layer1"] + gamma * e_h  # state 1: one step from the forward pass
    w, b = params["layer2.weight"], params["layer2.bias"]
    g_out = y - (v1 @ w.T + b)
    grads = gradients(graph, params, x, y)
    result = run_rule(graph, params, x, y, IL(alpha=ALPHA, gamma=gamma, t_c=1))
    # hidden: eps(1) = gamma * (-dL/dv), its parent is the clamped input, so gamma * BP
    assert relative_error(result.updates["layer1.weight"], -ALPHA * gamma * grads["layer1.weight"]) < 1e-6
    assert relative_error(result.updates["layer2.weight"], ALPHA * g_out.T @ v1) < 1e-6
    assert relative_error(result.updates["layer2.bias"], ALPHA * g_out.sum(0)) < 1e-6


def test_il_with_zero_steps_updates_only_the_output_layer():
    graph, params, x, y = random_mlp_case(3, 2, "tanh", "post", True, "ce", 3)
    grads = gradients(graph, params, x, y)
    result = run_rule(graph, params, x, y, IL(alpha=ALPHA, t_c=0))
    assert result.steps == 0 and len(result.energy) == 1
    for name in params:
        if name.startswith("layer3"):
            assert relative_error(result.updates[name], -ALPHA * grads[name]) <= 1e-12
        else:
            assert not np.any(result.updates[name])


def test_strict_pc_update_uses_errors_of_state_n_minus_1_and_beliefs_of_state_n():
    graph = mlp([3, 5, 2], activation="sigmoid", convention="post", loss="mse", output_activation="linear")
    rng = np.random.default_rng(6)
    params = random_params(graph, rng)
    x, y = rng.normal(size=(2, 3)), rng.normal(size=(2, 2))
    eta = 0.3
    values, _ = independent_forward(graph, params, {"input": x})
    v1 = values["layer1"] - eta * fd_belief_gradient(graph, params, {"input": x}, {"layer2": y}, "layer1")
    g_out0 = y - values["layer2"]  # state 0: the hidden errors are 0
    result = run_rule(graph, params, x, y, StrictPC(alpha=ALPHA, eta=eta, n=1))
    assert result.steps == 1 and len(result.energy) == 1
    assert not np.any(result.updates["layer1.weight"]) and not np.any(result.updates["layer1.bias"])
    assert relative_error(result.updates["layer2.weight"], ALPHA * g_out0.T @ v1) < 1e-6
    assert relative_error(result.updates["layer2.bias"], ALPHA * g_out0.sum(0)) <= 1e-15


def _hand_written_pc(x, y, w1, b1, w2, b2, step, n_states):
    """input -> tanh (post) -> sigmoid output (post, mse), written out for this one network.

    Returns, for states 0..n_states, the hidden belief, the errors and the activations'
    derivatives ``act'(a)`` at the current pre-activations, all from the current beliefs.
    """
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))  # noqa: E731
    v_h = np.tanh(x @ w1.T + b1)
    states = []
    for _ in range(n_states + 1):
        a_h = x @ w1.T + b1
        eps_h = v_h - np.tanh(a_h)
        a_o = v_h @ w2.T + b2
        eps_o = y - sig(a_o)
        d_h, d_o = 1 - np.tanh(a_h) ** 2, sig(a_o) * (1 - sig(a_o))
        states.append(dict(v_h=v_h, eps_h=eps_h, eps_o=eps_o, d_h=d_h, d_o=d_o))
        v_h = v_h + step * (-eps_h + (d_o * eps_o) @ w2)
    return states


def test_strict_pc_and_il_against_a_hand_written_network():
    graph = mlp([3, 5, 2], activation=["tanh", "sigmoid"], convention="post", loss="mse")
    rng = np.random.default_rng(12)
    params = random_params(graph, rng)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    w1, b1, w2, b2 = (params[n] for n in ("layer1.weight", "layer1.bias", "layer2.weight", "layer2.bias"))
    states = _hand_written_pc(x, y, w1, b1, w2, b2, step=0.4, n_states=3)
    strict = run_rule(graph, params, x, y, StrictPC(alpha=ALPHA, eta=0.4, n=3))
    last, now = states[2], states[3]  # errors of state n - 1 through the Jacobian at state n
    g_o, g_h = now["d_o"] * last["eps_o"], now["d_h"] * last["eps_h"]
    assert relative_error(strict.updates["layer2.weight"], ALPHA * g_o.T @ now["v_h"]) <= 1e-12
    assert relative_error(strict.updates["layer2.bias"], ALPHA * g_o.sum(0)) <= 1e-12
    assert relative_error(strict.updates["layer1.weight"], ALPHA * g_h.T @ x) <= 1e-12
    # the output's act' at state n - 1 instead would be visibly different
    old = (last["d_o"] * last["eps_o"]).T @ now["v_h"]
    assert relative_error(strict.updates["layer2.weight"], ALPHA * old) > 1e-4
    il = run_rule(graph, params, x, y, IL(alpha=ALPHA, gamma=0.4, t_c=3))
    g_o, g_h = now["d_o"] * now["eps_o"], now["d_h"] * now["eps_h"]  # errors and beliefs of the same state t_c
    assert relative_error(il.updates["layer2.weight"], ALPHA * g_o.T @ now["v_h"]) <= 1e-12
    assert relative_error(il.updates["layer1.weight"], ALPHA * g_h.T @ x) <= 1e-12
    assert relative_error(il.updates["layer1.bias"], ALPHA * g_h.sum(0)) <= 1e-12


def test_strict_pc_with_step_one_diverges_and_reports_it():
    graph = mlp([4, 7, 7, 2], activation="linear", convention="post", loss="mse")
    rng = np.random.default_rng(0)
    params = random_params(graph, rng)
    x, y = rng.normal(size=(2, 4)), rng.normal(size=(2, 2))
    rule = StrictPC(alpha=ALPHA, eta=1.0, n=100)
    result = run_rule(graph, params, x, y, rule)
    assert_unchanged(result, params)
    t = result.diverged_at
    assert 0 < t < 100 and result.steps == t and len(result.energy) == t + 1
    assert result.energy[t] > rule.max_energy_ratio * result.energy[0]
    assert np.all(result.energy[:t] <= rule.max_energy_ratio * result.energy[0])


def test_non_finite_errors_are_a_divergence_in_float32():
    graph = mlp([4, 7, 7, 2], activation="linear", convention="post", loss="mse")
    rng = np.random.default_rng(0)
    params = {n: p.astype(np.float32) for n, p in random_params(graph, rng).items()}
    x, y = rng.normal(size=(2, 4)), rng.normal(size=(2, 2))
    result = run_rule(graph, params, x, y, StrictPC(alpha=ALPHA, eta=1.0, n=1000, max_energy_ratio=1e300))
    assert_unchanged(result, params)
    assert not np.isfinite(result.energy[-1])
    assert result.params["layer1.weight"].dtype == np.float32


def test_a_non_finite_update_diverges_at_n():
    graph = mlp([3, 5, 2], activation="tanh", convention="post", loss="mse")
    rng = np.random.default_rng(1)
    params = {n: p.astype(np.float32) for n, p in random_params(graph, rng).items()}
    x, y = rng.normal(size=(2, 3)), 1e3 * rng.normal(size=(2, 2))
    # state 0 is finite; the beliefs of state 1 overflow float32, and so does the update
    result = run_rule(graph, params, x, y, StrictPC(alpha=ALPHA, eta=1e38, n=1))
    assert_unchanged(result, params)
    assert result.diverged_at == 1 and len(result.energy) == 1 and np.isfinite(result.energy[0])


RULES = [
    IL(alpha=ALPHA),
    ZIL(alpha=ALPHA),
    FaZIL(alpha=ALPHA),
    StrictPC(alpha=ALPHA),
    FixedPred(alpha=ALPHA),
]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_energy_ratio_below_one_diverges_at_state_zero(rule):
    graph, params, x, y = random_mlp_case(2, 2, "tanh", "pre", True, "mse", 3)
    result = run_rule(graph, params, x, y, type(rule)(alpha=ALPHA, max_energy_ratio=0.5))
    assert_unchanged(result, params)
    assert result.diverged_at == 0 and result.steps == 0
    mu = independent_forward(graph, params, {"input": x})[0]["layer3"]
    np.testing.assert_allclose(result.energy, [0.5 * np.sum((y - mu) ** 2)], rtol=1e-13)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_zero_initial_energy_is_no_divergence_and_no_update(rule):
    graph, params, x, _ = random_mlp_case(2, 2, "sigmoid", "post", True, "mse", 3)
    y = predict(graph, params, x)  # bit for bit the reference's prediction: E(0) = 0
    result = run_rule(graph, params, x, y, rule)
    assert not result.diverged and result.diverged_at is None
    assert not np.any(result.energy)
    for name in params:
        assert not np.any(result.updates[name])


@pytest.mark.parametrize("rule", RULES + [BP(alpha=ALPHA)], ids=lambda r: r.name)
def test_float32_runs_stay_float32_and_match_float64(rule):
    graph, params, x, y = random_mlp_case(8, 2, "sigmoid", "post", True, "ce", 4)
    p32 = {n: p.astype(np.float32) for n, p in params.items()}
    r32 = run_rule(graph, p32, x, y, rule)
    r64 = run_rule(graph, params, x, y, rule)
    assert not r32.diverged
    for name in params:
        assert r32.params[name].dtype == np.float32 and r32.updates[name].dtype == np.float32
        assert relative_error(r32.updates[name], r64.updates[name]) < 1e-3
    assert all(e.dtype == np.float32 for e in r32.eps_at_trigger.values())


def test_bp_rule_is_the_sgd_step():
    graph, params, x, y = random_mlp_case(9, 2, "relu", "post", True, "ce", 3)
    grads = gradients(graph, params, x, y)
    result = run_rule(graph, params, x, y, BP(alpha=0.1))
    assert not result.diverged and result.steps == 0 and len(result.energy) == 1
    for name in params:
        np.testing.assert_array_equal(result.updates[name], -0.1 * grads[name])
        np.testing.assert_array_equal(result.params[name], params[name] - 0.1 * grads[name])


@pytest.mark.parametrize("rule", RULES + [BP(alpha=ALPHA)], ids=lambda r: r.name)
def test_inputs_are_not_mutated_and_non_fazil_rules_report_no_firings(rule):
    graph, params, x, y = random_mlp_case(4, 2, "tanh", "post", True, "mse", 2)
    copies = ({n: p.copy() for n, p in params.items()}, x.copy(), y.copy())
    result = run_rule(graph, params, x, y, rule)
    for name in params:
        np.testing.assert_array_equal(params[name], copies[0][name])
    np.testing.assert_array_equal(x, copies[1])
    np.testing.assert_array_equal(y, copies[2])
    if not isinstance(rule, FaZIL):
        assert result.firings.shape == (0, 4) and result.late_firings.shape == (0, 4)
    if not isinstance(rule, ZIL):
        assert result.eps_at_trigger == {}


def test_fazil_ticks_sets_the_number_of_steps():
    graph, params, x, y = random_mlp_case(4, 1, "tanh", "post", True, "mse", 2)
    result = run_rule(graph, params, x, y, FaZIL(alpha=ALPHA, ticks=7))
    assert result.steps == 7 and len(result.energy) == 7


def test_run_rule_rejects_a_non_rule():
    graph, params, x, y = random_mlp_case(4, 1, "tanh", "post", True, "mse", 2)
    for bad in ("zil", None, object()):
        with pytest.raises(ConfigError, match="rule must be one of"):
            run_rule(graph, params, x, y, bad)


@pytest.mark.parametrize(
    "x, y, match",
    [
        (np.zeros((2, 4)), np.zeros((2, 2)), r"'input'.*\(B, 3\)"),
        (np.full((2, 3), np.nan), np.zeros((2, 2)), r"'input'.*NaN"),
        (np.zeros((2, 3)), np.zeros((2, 5)), r"'layer2'.*\(B, 2\)"),
        (np.zeros((2, 3)), np.full((2, 2), np.nan), r"'layer2'.*NaN"),
    ],
)
def test_run_rule_bad_data_raise_data_error(x, y, match):
    graph = mlp([3, 5, 2], activation="tanh")
    params = random_params(graph, np.random.default_rng(0))
    with pytest.raises(DataError, match=match):
        run_rule(graph, params, x, y, ZIL(alpha=ALPHA))
