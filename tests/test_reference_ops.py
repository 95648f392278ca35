"""Every op of the graph spec in the vectorized reference, against an independent forward pass.

Expectations come from ``tests/graph_cases.py``: a slow per-position implementation of
each op and central finite differences of its loss; never from the code under test.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import graph_cases as gc
from neurosim.graph.spec import inputs_of
from neurosim.reference import forward, gradients, loss
from neurosim.reference.backprop import check_params, network
from neurosim.reference.ops import input_vjps, linearize

CASES = {
    "cnn-tanh-avg-post-ce": lambda: gc.cnn("tanh", "avg", "post", loss="ce"),
    "cnn-sigmoid-max-pre-stride2-pad1-mse": lambda: gc.cnn("sigmoid", "max", "pre", stride=2, padding=1, loss="mse"),
    "cnn-activation-vertex-max": lambda: gc.cnn("tanh", "max", "post", padding=1, separate_act=True),
    "deep-cnn": gc.deep_cnn,
    "rnn-last-mse": lambda: gc.rnn(steps=3, loss="mse"),
    "rnn-every-ce": lambda: gc.rnn(steps=3, loss_every=True, loss="ce"),
    "lstm-gates": lambda: gc.lstm_gates(steps=2),
    "lstm-cells": lambda: gc.lstm_cells(steps=3, loss="ce"),
    "residual": gc.residual,
    "residual-skip": lambda: gc.residual(skip=True),
    "every-op-dag": gc.every_op_dag,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_loss_match_the_naive_implementation(name):
    graph = CASES[name]()
    params, x, y = gc.random_case(graph, seed=sorted(CASES).index(name))
    expected = gc.naive_forward(graph, params, x)
    states = forward(graph, params, x)
    for v in graph:
        np.testing.assert_allclose(states[v]["v"], expected[v], rtol=1e-13, atol=1e-14, err_msg=v)
    assert loss(graph, params, x, y) == pytest.approx(gc.naive_loss(graph, params, x, y), rel=1e-13)


@pytest.mark.parametrize("name", sorted(CASES))
def test_backprop_matches_finite_differences(name):
    graph = CASES[name]()
    params, x, y = gc.random_case(graph, seed=100 + sorted(CASES).index(name))
    expected = gc.fd_gradients(graph, params, x, y)
    got = gradients(graph, params, x, y)
    assert set(got) == set(params)
    for p in params:
        assert got[p].shape == params[p].shape
        assert gc.relative_error(got[p], expected[p]) < 1e-7, p


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_input_vjp_matches_finite_differences(name):
    """``J_kp^T e`` for every vertex and parent, e.g. the input side of conv, pools, lstm."""
    graph = CASES[name]()
    params, x, _ = gc.random_case(graph, seed=200 + sorted(CASES).index(name))
    values = gc.naive_forward(graph, params, x)
    net = network(graph)
    checked = check_params(graph, params)
    rng = np.random.default_rng(3)
    for v in net.vertices:
        xs = [values[p] for p in inputs_of(graph, v)]
        e = rng.normal(size=values[v].shape)
        got = input_vjps(net.nodes[v], checked, linearize(net.nodes[v], checked, xs, np), e, np)
        for parent, g, fd in zip(inputs_of(graph, v), got, gc.fd_vertex_vjp(graph, v, params, xs, e)):
            assert g.shape == fd.shape
            assert gc.relative_error(g, fd) < 1e-7, (v, parent)


def test_gate_level_and_cell_level_lstm_agree():
    """The same parameters give the same loss and gradients through product/dense gates and lstm cells."""
    gates, cells = gc.lstm_gates(steps=3), gc.lstm_cells(steps=3)
    params, x, y = gc.random_case(cells, seed=5)
    assert {n: p.shape for n, p in params.items()} == {n: p.shape for n, p in gc.random_case(gates, 5)[0].items()}
    assert loss(gates, params, x, y) == pytest.approx(loss(cells, params, x, y), rel=1e-14)
    g_gates, g_cells = gradients(gates, params, x, y), gradients(cells, params, x, y)
    for n in params:
        assert gc.relative_error(g_gates[n], g_cells[n]) <= 1e-13, n


def test_maxpool_routes_ties_to_the_first_element_in_row_major_order():
    graph = nx.DiGraph()
    graph.add_node("x", op="input", shape=(1, 2, 4))
    graph.add_node("max", op="maxpool", kernel_size=2)
    graph.add_node("flat", op="flatten")
    graph.add_node("out", op="dense", size=1, activation="linear", convention="post", bias=False, loss="mse")
    graph.add_edges_from([("x", "max"), ("max", "flat"), ("flat", "out")])
    net = network(graph)
    img = np.array([[[1.0, 3.0, 2.0, 2.0], [3.0, 0.0, 2.0, 2.0]]]).reshape(1, 8)  # ties in both windows
    lin = linearize(net.nodes["max"], {}, [img], np)
    np.testing.assert_array_equal(lin.mu, [[3.0, 2.0]])
    (back,) = input_vjps(net.nodes["max"], {}, lin, np.array([[10.0, 20.0]]), np)
    np.testing.assert_array_equal(back.reshape(2, 4), [[0.0, 10.0, 20.0, 0.0], [0.0, 0.0, 0.0, 0.0]])


def test_forward_reports_the_signals_of_multi_parent_vertices():
    graph = gc.every_op_dag()
    params, x, _ = gc.random_case(graph, seed=9)
    states = forward(graph, params, x)
    assert set(states["h1"]) == {"mu", "v", "a", "x_x", "x_z"}
    np.testing.assert_array_equal(states["h1"]["x_z"], x["z"])
    assert set(states["o1"]) == {"mu", "v", "a", "x"}
    np.testing.assert_allclose(states["o1"]["x"], np.tanh(states["sp"]["v"]), rtol=1e-15)
    assert set(states["p"]) == {"mu", "v"}


@pytest.mark.parametrize("name", ["deep-cnn", "lstm-cells", "every-op-dag"])
def test_float32_stays_float32_on_every_op(name):
    graph = CASES[name]()
    params, x, y = gc.random_case(graph, seed=11)
    p32 = {n: p.astype(np.float32) for n, p in params.items()}
    g32, g64 = gradients(graph, p32, x, y), gradients(graph, params, x, y)
    for n in params:
        assert g32[n].dtype == np.float32
        assert gc.relative_error(g32[n], g64[n]) < 1e-4, n
    assert all(a.dtype == np.float32 for state in forward(graph, p32, x).values() for a in state.values())
