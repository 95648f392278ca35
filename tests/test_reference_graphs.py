"""The PC rules of the reference on graphs beyond the MLP: CNNs, RNNs, LSTMs, residual blocks.

Expectations are backprop (checked against finite differences of an independent forward
pass in ``test_reference_ops.py``) and the papers' theorems: FixedPred with ``eta = 1``
and ``n_exact`` steps is the exact gradient (Rosenbaum 2022, Theorem 1), Z-IL is one SGD
step where every parametrized vertex has one path length to the outputs and shared
parameters apply their updates after their last trigger (Song et al. 2020), Fa-Z-IL's
phi fires late where the backprop error is exactly 0 (equations.md section 3).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import graph_cases as gc
from neurosim.errors import GraphError
from neurosim.graph import exact_steps, mlp, trigger_steps
from neurosim.reference import gradients, run_rule
from neurosim.rules import IL, ZIL, FaZIL, FixedPred, StrictPC

ALPHA = 1e-3
CNN_GRID = list(itertools.product(["relu", "tanh"], ["avg", "max"], [(1, 0), (2, 1)], ["post", "pre"]))


def cnn_case(act, pool, geometry, convention, seed):
    stride, padding = geometry
    graph = gc.cnn(act, pool, convention, stride=stride, padding=padding, separate_act=convention == "pre")
    return (graph, *gc.random_case(graph, seed, batch=3))


SEQUENCES = {
    "rnn-last-3": lambda: gc.rnn(steps=3),
    "rnn-last-4-ce": lambda: gc.rnn(steps=4, act="sigmoid", loss="ce"),
    "rnn-every-3": lambda: gc.rnn(steps=3, loss_every=True),
    "lstm-gates-2": lambda: gc.lstm_gates(steps=2),
    "lstm-gates-3": lambda: gc.lstm_gates(steps=3, loss="ce"),
    "lstm-cells-3": lambda: gc.lstm_cells(steps=3),
    "lstm-cells-4-ce": lambda: gc.lstm_cells(steps=4, loss="ce"),
}
#: the sequence graphs where every parametrized vertex has one path length to the output
ZIL_SEQUENCES = ["rnn-last-3", "rnn-last-4-ce", "lstm-cells-3", "lstm-cells-4-ce"]


def assert_exact(result, grads, tol=1e-12):
    assert not result.diverged
    for name in grads:
        assert gc.relative_error(result.updates[name], -ALPHA * grads[name]) <= tol, name


def assert_fixedpred_exact_at_n_exact_only(graph, params, x, y):
    grads = gradients(graph, params, x, y)
    n = exact_steps(graph)
    exact = run_rule(graph, params, x, y, FixedPred(alpha=ALPHA))
    assert exact.steps == n
    assert_exact(exact, grads)
    short = run_rule(graph, params, x, y, FixedPred(alpha=ALPHA, n=n - 1))
    assert gc.overall_error(short.updates, {k: -ALPHA * g for k, g in grads.items()}) > 1e-6


@pytest.mark.parametrize("act, pool, geometry, convention", CNN_GRID)
def test_fixedpred_is_the_gradient_on_cnns(act, pool, geometry, convention):
    graph, params, x, y = cnn_case(act, pool, geometry, convention, CNN_GRID.index((act, pool, geometry, convention)))
    assert exact_steps(graph) == (5 if convention == "pre" else 4)  # conv [-> act] -> pool -> flat -> out
    assert_fixedpred_exact_at_n_exact_only(graph, params, x, y)


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_fixedpred_is_the_gradient_on_rnns_and_lstms(name):
    graph = SEQUENCES[name]()
    assert_fixedpred_exact_at_n_exact_only(graph, *gc.random_case(graph, sorted(SEQUENCES).index(name), batch=3))


def test_fixedpred_n_exact_of_the_sequences():
    assert exact_steps(gc.rnn(steps=3)) == 4  # h1 -> h2 -> h3 -> y3
    assert exact_steps(gc.lstm_cells(steps=3)) == 5  # s1 -> s2 -> s3 -> h -> out
    assert exact_steps(gc.lstm_gates(steps=2)) == 7  # i1 -> c1 -> h1 -> i2 -> c2 -> h2 -> out


@pytest.mark.parametrize("act, pool, geometry, convention", CNN_GRID)
def test_zil_is_one_sgd_step_on_cnns(act, pool, geometry, convention):
    seed = 50 + CNN_GRID.index((act, pool, geometry, convention))
    graph, params, x, y = cnn_case(act, pool, geometry, convention, seed)
    result = run_rule(graph, params, x, y, ZIL(alpha=ALPHA))
    assert result.steps == max(trigger_steps(graph)[k] for k in ("conv", "out")) + 1
    assert_exact(result, gradients(graph, params, x, y))


@pytest.mark.parametrize("name", ZIL_SEQUENCES)
def test_zil_is_one_sgd_step_on_rnns_and_cell_level_lstms_and_immediate_is_not(name):
    graph = SEQUENCES[name]()
    params, x, y = gc.random_case(graph, 70 + ZIL_SEQUENCES.index(name), batch=3)
    grads = gradients(graph, params, x, y)
    assert_exact(run_rule(graph, params, x, y, ZIL(alpha=ALPHA)), grads)
    immediate = run_rule(graph, params, x, y, ZIL(alpha=ALPHA, shared_updates="immediate"))
    assert not immediate.diverged
    shared = [n for n in params if "weight_hh" in n]  # used at several trigger steps
    for n in shared:
        assert gc.relative_error(immediate.updates[n], -ALPHA * grads[n]) > 1e-6, n
    # the readout is used once, at step 0, before any shared weight changed
    assert gc.relative_error(immediate.updates["out.weight"], -ALPHA * grads["out.weight"]) <= 1e-12


@pytest.mark.parametrize("name, vertex", [("rnn-every-3", "h"), ("lstm-gates-2", "")])
def test_zil_and_fazil_refuse_graphs_without_a_single_trigger_step(name, vertex):
    graph = SEQUENCES[name]()
    params, x, y = gc.random_case(graph, 1)
    for rule in (ZIL(alpha=ALPHA), FaZIL(alpha=ALPHA)):
        with pytest.raises(GraphError, match=rf"vertex '{vertex}\w*' reaches the outputs along paths of lengths.*"
                                             r"single trigger step.*use IL, Strict PC or FixedPred"):
            run_rule(graph, params, x, y, rule)


def test_a_residual_block_of_equal_branches_runs_every_rule():
    graph = gc.residual()
    params, x, y = gc.random_case(graph, 3, batch=3)
    grads = gradients(graph, params, x, y)
    assert trigger_steps(graph) == {"out": 0, "s": 1, "a": 2, "b": 2, "h": 3}
    for rule in (ZIL(alpha=ALPHA), FaZIL(alpha=ALPHA), FixedPred(alpha=ALPHA)):
        assert_exact(run_rule(graph, params, x, y, rule), grads)
    for rule in (IL(alpha=ALPHA, gamma=0.1, t_c=20), StrictPC(alpha=ALPHA, eta=0.1, n=20)):
        result = run_rule(graph, params, x, y, rule)
        assert not result.diverged and all(np.all(np.isfinite(u)) for u in result.updates.values())
        u = np.concatenate([result.updates[n].ravel() for n in sorted(params)])
        r = -np.concatenate([grads[n].ravel() for n in sorted(params)])
        assert u @ r > 0  # a descent direction


def test_a_skip_connection_of_another_length_refuses_zil_but_runs_the_others():
    graph = gc.residual(skip=True)
    params, x, y = gc.random_case(graph, 4, batch=3)
    with pytest.raises(GraphError, match=r"vertex 'h' reaches the outputs along paths of lengths \[2, 3\]"):
        run_rule(graph, params, x, y, ZIL(alpha=ALPHA))
    assert_exact(run_rule(graph, params, x, y, FixedPred(alpha=ALPHA)), gradients(graph, params, x, y))
    for rule in (IL(alpha=ALPHA), StrictPC(alpha=ALPHA)):
        result = run_rule(graph, params, x, y, rule)
        assert not result.diverged and any(np.any(u) for u in result.updates.values())


@pytest.mark.parametrize(
    "graph", [gc.cnn("tanh", "avg", "post"), gc.cnn("sigmoid", "avg", "pre", stride=2, padding=1), gc.rnn(steps=3),
              gc.rnn(steps=4, act="sigmoid", loss="ce")],
    ids=["cnn-tanh", "cnn-sigmoid-pre", "rnn-3", "rnn-4-sigmoid"],
)
def test_fazil_song_equals_backprop_and_fires_only_at_the_trigger(graph):
    params, x, y = gc.random_case(graph, 8, batch=2)
    result = run_rule(graph, params, x, y, FaZIL(alpha=ALPHA))
    assert_exact(result, gradients(graph, params, x, y))
    assert len(result.firings) and result.late_firings.shape == (0, 4)
    # every error neuron of every sample whose backprop error is not 0 fires once, at its
    # trigger (pool windows that skip the last conv row and column leave zeros)
    trigger = trigger_steps(graph)
    at_trigger = run_rule(graph, params, x, y, ZIL(alpha=ALPHA)).eps_at_trigger
    expected = sorted(
        (trigger[v], k, int(i), int(b))
        for k, v in enumerate(result.vertices)
        if graph.nodes[v]["op"] in ("dense", "conv2d", "lstm")  # the vertices with synapses that learn
        for b, i in zip(*np.nonzero(at_trigger[v]))
    )
    assert [tuple(map(int, row)) for row in result.firings] == expected


def test_fazil_feedback_detector_has_no_late_firings_on_a_relu_pre_mlp():
    graph = mlp([3, 5, 7, 3], activation="relu", convention="pre")
    params, x, y = gc.random_case(graph, 0, batch=2)
    values = gc.naive_forward(graph, params, x)
    assert np.any(values["layer1"] < 0) and np.any(values["layer2"] < 0)  # relu'(v) = 0 somewhere
    grads = gradients(graph, params, x, y)
    song = run_rule(graph, params, x, y, FaZIL(alpha=ALPHA))
    assert len(song.late_firings) > 0
    assert gc.overall_error(song.updates, {n: -ALPHA * g for n, g in grads.items()}) > 1e-6
    feedback = run_rule(graph, params, x, y, FaZIL(alpha=ALPHA, detector="feedback"))
    assert feedback.late_firings.shape == (0, 4)
    assert_exact(feedback, grads)  # a neuron with backprop error 0 never fires, which is backprop's 0


def test_fazil_feedback_detector_has_no_late_firings_on_a_maxpool_cnn():
    graph = gc.cnn("tanh", "max", "post")
    params, x, y = gc.random_case(graph, 2, batch=2)
    grads = gradients(graph, params, x, y)
    ticks = max(trigger_steps(graph)[v] for v in ("conv", "out")) + 3  # room for late firings
    song = run_rule(graph, params, x, y, FaZIL(alpha=ALPHA, ticks=ticks))
    conv = song.vertices.index("conv")
    assert len(song.late_firings) > 0 and set(song.late_firings[:, 1]) == {conv}  # non-maximal positions
    feedback = run_rule(graph, params, x, y, FaZIL(alpha=ALPHA, ticks=ticks, detector="feedback"))
    assert feedback.late_firings.shape == (0, 4)
    assert_exact(feedback, grads)


def test_fazil_applies_a_shared_parameter_after_the_last_step():
    """W_hh of an RNN is used at three trigger steps: applied after the presentation, Fa-Z-IL
    is exact; applying each step's part at once (Z-IL's "immediate", the same firing
    schedule here) is not."""
    graph = gc.rnn(steps=3)
    params, x, y = gc.random_case(graph, 5, batch=2)
    grads = gradients(graph, params, x, y)
    result = run_rule(graph, params, x, y, FaZIL(alpha=ALPHA))
    assert_exact(result, grads)
    assert result.late_firings.shape == (0, 4)
    immediate = run_rule(graph, params, x, y, ZIL(alpha=ALPHA, shared_updates="immediate"))
    assert gc.relative_error(immediate.updates["rnn.weight_hh"], -ALPHA * grads["rnn.weight_hh"]) > 1e-6


def fd_belief_gradient(graph, params, x, y, vertex):
    """``dL/dv`` of ``vertex`` by central differences of the naive loss on a nudge of its value."""
    values = gc.naive_forward(graph, params, x)
    grad = np.zeros_like(values[vertex])
    for idx in np.ndindex(grad.shape):
        step = np.zeros_like(grad)
        step[idx] = gc.FD_STEP
        diff = gc.naive_loss(graph, params, x, y, {vertex: step}) - gc.naive_loss(graph, params, x, y, {vertex: -step})
        grad[idx] = diff / (2 * gc.FD_STEP)
    return grad


@pytest.mark.parametrize("graph", [gc.deep_cnn(), gc.lstm_cells(steps=3), gc.residual()], ids=["cnn", "lstm", "res"])
def test_zil_error_at_trigger_is_minus_dl_dv_on_every_vertex(graph):
    """Song et al.: with gamma = 1 the error wave reaches vertex j at t = l_j carrying -dL/dv_j."""
    params, x, y = gc.random_case(graph, 21, batch=2)
    result = run_rule(graph, params, x, y, ZIL(alpha=ALPHA))
    hidden = [v for v in graph if graph.nodes[v]["op"] != "input" and graph.nodes[v].get("loss") is None]
    assert set(hidden) <= set(result.eps_at_trigger)
    for v in hidden:
        expected = -fd_belief_gradient(graph, params, x, y, v)
        assert gc.relative_error(result.eps_at_trigger[v], expected) < 1e-7, v
