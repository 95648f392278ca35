"""The vectorized backprop reference against central finite differences of an independent loss.

Every expectation comes from ``independent_loss`` below, a forward pass written here with
its own activation formulas and scipy's ``log_softmax``, never from the code under test.
The helpers are reused by ``test_reference_rules.py``.
"""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
from scipy.special import log_softmax

import graph_cases
from neurosim.errors import DataError, GraphError, ParameterError
from neurosim.graph import mlp, validate_graph
from neurosim.reference import forward, gradients, loss, predict, sgd_step

ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu")
_FUNCTIONS = {
    "linear": lambda a: a,
    "sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)),
    "tanh": np.tanh,
    "relu": lambda a: np.where(a > 0, a, 0.0),
}
FD_STEP = 1e-6


def independent_forward(graph, params, x, nudge=None):
    """Values of every vertex and the argument of every vertex's activation.

    ``x`` is a dict by input vertex; ``nudge[v]`` is added to vertex ``v``'s output
    (its belief ``v``, or ``mu`` for an output), so ``d loss / d nudge = dL/dv``.
    """
    values, act_args = {}, {}
    for v in nx.topological_sort(graph):
        node = graph.nodes[v]
        if node["op"] == "input":
            out = np.asarray(x[v], dtype=np.float64)
        else:
            (parent,) = graph.predecessors(v)
            f = _FUNCTIONS[node["activation"]]
            w = params[f"{v}.weight"]
            b = params[f"{v}.bias"] if node.get("bias", True) else 0.0
            if node["convention"] == "post":
                a = np.einsum("bi,oi->bo", values[parent], w) + b
                act_args[v], out = a, f(a)
            else:
                act_args[v] = values[parent]
                out = np.einsum("bi,oi->bo", f(values[parent]), w) + b
        if nudge is not None and v in nudge:
            out = out + nudge[v]
        values[v] = out
    return values, act_args


def independent_loss(graph, params, x, y, nudge=None):
    """``sum_outputs`` mse ``1/2 sum (mu-y)^2`` or ce ``-sum y log_softmax(mu)``; x, y dicts by vertex."""
    values, _ = independent_forward(graph, params, x, nudge)
    total = 0.0
    for v in graph:
        kind = graph.nodes[v].get("loss")
        if kind == "mse":
            total += 0.5 * np.sum((values[v] - y[v]) ** 2)
        elif kind == "ce":
            total += -np.sum(y[v] * log_softmax(values[v], axis=1))
    return total


def fd_gradients(graph, params, x, y):
    """Central finite differences of ``independent_loss`` for every parameter entry."""
    return graph_cases.fd_gradients(graph, params, x, y, loss=independent_loss)


def fd_belief_gradient(graph, params, x, y, vertex):
    """``dL/dv`` of ``vertex`` (``dL/dmu`` for an output) by central differences on a nudge."""
    values, _ = independent_forward(graph, params, x)
    grad = np.zeros_like(values[vertex])
    for idx in np.ndindex(grad.shape):
        step = np.zeros_like(grad)
        step[idx] = FD_STEP
        diff = independent_loss(graph, params, x, y, {vertex: step}) - independent_loss(graph, params, x, y, {vertex: -step})
        grad[idx] = diff / (2 * FD_STEP)
    return grad


def relative_error(u, r):
    """``||u - r|| / ||r||``."""
    return float(np.linalg.norm(np.asarray(u) - np.asarray(r)) / np.linalg.norm(np.asarray(r)))


def relu_is_safe(graph, params, x):
    """No relu argument within 1e-3 of the kink, and every relu vertex has an active unit."""
    _, args = independent_forward(graph, params, x)
    relus = [args[v] for v in args if graph.nodes[v]["activation"] == "relu"]
    return all(np.min(np.abs(a)) > 1e-3 and np.any(a > 0) for a in relus)


def random_params(graph, rng):
    """Weights ``N(0, 1/fan_in)``, biases ``N(0, 0.5^2)``."""
    params = {}
    for v in nx.topological_sort(graph):
        node = graph.nodes[v]
        if node["op"] == "dense":
            (parent,) = graph.predecessors(v)
            fan_in = graph.nodes[parent]["size"]
            params[f"{v}.weight"] = rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=(node["size"], fan_in))
            if node.get("bias", True):
                params[f"{v}.bias"] = rng.normal(0.0, 0.5, size=node["size"])
    return params


def random_targets(graph, rng, batch):
    """mse: ``N(0, 1)``; ce: one-hot rows."""
    y = {}
    for v in graph:
        kind, size = graph.nodes[v].get("loss"), graph.nodes[v]["size"]
        if kind == "mse":
            y[v] = rng.normal(size=(batch, size))
        elif kind == "ce":
            y[v] = np.eye(size)[rng.integers(0, size, size=batch)]
    return y


def random_mlp_case(seed, hidden, activation, convention, bias, loss_name, batch):
    """An MLP with ``hidden`` odd-width hidden layers, its params, ``x`` and ``y`` as arrays.

    For relu the sample is redrawn until no relu argument lies within 1e-3 of the kink
    (finite differences and the derivative at the forward pass then agree) and no relu
    layer is entirely inactive (the gradients would be trivially zero).
    """
    rng = np.random.default_rng(seed)
    sizes = [3] + [int(s) for s in rng.choice([3, 5, 7], size=hidden)] + [3]
    graph = mlp(sizes, activation=activation, convention=convention, bias=bias, loss=loss_name)
    while True:
        params = random_params(graph, rng)
        x = rng.normal(size=(batch, sizes[0]))
        if relu_is_safe(graph, params, {"input": x}):
            break
    y = random_targets(graph, rng, batch)[f"layer{hidden + 1}"]
    return graph, params, x, y


GRID = list(itertools.product([1, 2, 3], ACTIVATIONS, ["post", "pre"], [True, False], ["mse", "ce"], [1, 3]))


@pytest.mark.parametrize("hidden, activation, convention, bias, loss_name, batch", GRID)
def test_gradients_match_finite_differences(hidden, activation, convention, bias, loss_name, batch):
    seed = GRID.index((hidden, activation, convention, bias, loss_name, batch))
    graph, params, x, y = random_mlp_case(seed, hidden, activation, convention, bias, loss_name, batch)
    out = f"layer{hidden + 1}"
    expected = fd_gradients(graph, params, {"input": x}, {out: y})
    got = gradients(graph, params, x, y)
    assert set(got) == set(params)
    for name in params:
        assert got[name].shape == params[name].shape
        assert relative_error(got[name], expected[name]) < 1e-6, name


def _branching_graph(convention):
    """in1 -> h1 -> {o1 (mse), h2 -> o2 (ce)};  in2 -> h3 -> o3 (mse)."""
    g = nx.DiGraph()
    g.add_node("in1", op="input", size=3)
    g.add_node("in2", op="input", size=2)
    child_act = "tanh"
    g.add_node("h1", op="dense", size=5, activation="sigmoid", convention=convention, bias=True)
    g.add_node("o1", op="dense", size=2, activation=child_act, convention=convention, bias=False, loss="mse")
    g.add_node("h2", op="dense", size=3, activation=child_act, convention=convention, bias=True)
    g.add_node("o2", op="dense", size=3, activation="linear", convention=convention, bias=True, loss="ce")
    g.add_node("h3", op="dense", size=3, activation="tanh", convention=convention, bias=True)
    g.add_node("o3", op="dense", size=2, activation="sigmoid", convention=convention, bias=True, loss="mse")
    g.add_edges_from([("in1", "h1"), ("h1", "o1"), ("h1", "h2"), ("h2", "o2"), ("in2", "h3"), ("h3", "o3")])
    validate_graph(g)
    return g


def branching_case(convention, seed=0, batch=3):
    """The branching two-input, three-output DAG with random params, x and y (dicts)."""
    rng = np.random.default_rng(seed)
    graph = _branching_graph(convention)
    params = random_params(graph, rng)
    x = {"in1": rng.normal(size=(batch, 3)), "in2": rng.normal(size=(batch, 2))}
    return graph, params, x, random_targets(graph, rng, batch)


@pytest.mark.parametrize("convention", ["post", "pre"])
def test_gradients_on_a_branching_dag_with_several_inputs_and_outputs(convention):
    graph, params, x, y = branching_case(convention)
    expected = fd_gradients(graph, params, x, y)
    got = gradients(graph, params, x, y)
    for name in params:
        assert relative_error(got[name], expected[name]) < 1e-6, name
    assert loss(graph, params, x, y) == pytest.approx(independent_loss(graph, params, x, y), rel=1e-13)


@pytest.mark.parametrize("loss_name", ["mse", "ce"])
@pytest.mark.parametrize("convention", ["post", "pre"])
def test_loss_forward_and_predict_match_the_independent_forward(convention, loss_name):
    graph, params, x, y = random_mlp_case(7, 2, "tanh", convention, True, loss_name, 4)
    values, _ = independent_forward(graph, params, {"input": x})
    expected = independent_loss(graph, params, {"input": x}, {"layer3": y})
    assert loss(graph, params, x, y) == pytest.approx(expected, rel=1e-13)
    np.testing.assert_allclose(predict(graph, params, x), values["layer3"], rtol=1e-13, atol=1e-15)
    states = forward(graph, params, x)
    assert set(states["input"]) == {"v"}
    for k in ("layer1", "layer2", "layer3"):
        assert set(states[k]) == {"x", "a", "mu", "v"}
        np.testing.assert_allclose(states[k]["v"], values[k], rtol=1e-13, atol=1e-15)
        parent = values["input" if k == "layer1" else f"layer{int(k[-1]) - 1}"]
        expected_x = parent if convention == "post" else np.tanh(parent)
        np.testing.assert_allclose(states[k]["x"], expected_x, rtol=1e-13, atol=1e-15)


def test_sgd_step_is_theta_minus_alpha_gradient_and_does_not_mutate():
    graph, params, x, y = random_mlp_case(3, 2, "sigmoid", "post", True, "mse", 3)
    before = {n: p.copy() for n, p in params.items()}
    x_before, y_before = x.copy(), y.copy()
    expected = fd_gradients(graph, params, {"input": x}, {"layer3": y})
    new = sgd_step(graph, params, x, y, alpha=0.05)
    for name in params:
        np.testing.assert_array_equal(params[name], before[name])
        assert relative_error(new[name] - before[name], -0.05 * expected[name]) < 1e-6
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(y, y_before)
    assert loss(graph, new, x, y) < loss(graph, params, x, y)


def test_float32_stays_float32_and_agrees_with_float64():
    graph, params, x, y = random_mlp_case(5, 2, "tanh", "pre", True, "ce", 3)
    p32 = {n: p.astype(np.float32) for n, p in params.items()}
    g32 = gradients(graph, p32, x, y)
    g64 = gradients(graph, params, x, y)
    for name in params:
        assert g32[name].dtype == np.float32
        assert relative_error(g32[name], g64[name]) < 1e-4
    assert predict(graph, p32, x).dtype == np.float32
    assert all(a.dtype == np.float32 for state in forward(graph, p32, x).values() for a in state.values())


def test_predict_needs_a_single_output():
    graph, params, x, _ = branching_case("post")
    with pytest.raises(GraphError, match="one output"):
        predict(graph, params, x)


@pytest.mark.parametrize(
    "x, y, match",
    [
        (np.zeros((2, 4)), np.zeros((2, 2)), r"'input'.*\(2, 4\).*\(B, 3\)"),
        (np.zeros(3), np.zeros((1, 2)), r"'input'.*\(B, 3\)"),
        (np.zeros((0, 3)), np.zeros((0, 2)), r"'input'.*B >= 1"),
        (np.array([[0.0, np.nan, 1.0]]), np.zeros((1, 2)), r"'input'.*NaN"),
        (np.zeros((2, 3)), np.zeros((2, 3)), r"'layer2'.*\(B, 2\)"),
        (np.zeros((2, 3)), np.array([[0.0, np.inf], [0.0, 0.0]]), r"'layer2'.*NaN or infinite"),
        (np.zeros((2, 3)), np.zeros((3, 2)), r"'layer2'.*3 samples.*2"),
        ([["a", "b", "c"]], np.zeros((1, 2)), r"'input'.*must hold real numbers"),
        ({"inputs": np.zeros((2, 3))}, np.zeros((2, 2)), r"exactly the vertices \['input'\]"),
    ],
)
def test_bad_data_raise_data_error_naming_the_vertex(x, y, match):
    graph = mlp([3, 5, 2], activation="tanh")
    params = random_params(graph, np.random.default_rng(0))
    with pytest.raises(DataError, match=match):
        gradients(graph, params, x, y)


def test_ce_targets_must_be_distributions():
    graph = mlp([3, 5, 3], activation="tanh", loss="ce")
    params = random_params(graph, np.random.default_rng(0))
    with pytest.raises(DataError, match="'layer2'.*summing to 1"):
        loss(graph, params, np.zeros((1, 3)), np.array([[0.5, 0.6, 0.0]]))
    with pytest.raises(DataError, match="'layer2'.*non-negative"):
        loss(graph, params, np.zeros((1, 3)), np.array([[1.5, -0.5, 0.0]]))


def test_bad_params_raise_parameter_error():
    graph = mlp([3, 5, 2], activation="tanh")
    params = random_params(graph, np.random.default_rng(0))
    x, y = np.zeros((1, 3)), np.zeros((1, 2))
    with pytest.raises(ParameterError, match="missing.*layer2.bias"):
        gradients(graph, {n: p for n, p in params.items() if n != "layer2.bias"}, x, y)
    with pytest.raises(ParameterError, match="layer1.weight.*expected \\(5, 3\\)"):
        gradients(graph, {**params, "layer1.weight": np.zeros((3, 5))}, x, y)
    with pytest.raises(ParameterError, match="layer1.bias.*NaN"):
        gradients(graph, {**params, "layer1.bias": np.full(5, np.nan)}, x, y)
