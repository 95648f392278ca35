"""The event loop on computation graphs (CNNs, RNNs, LSTMs, branching DAGs) against the
vectorized reference, for every rule, in float64.

The reference (``neurosim.reference``) computes each op population-wide with numpy
(convolutions by im2col, the LSTM cell by its equations) and is itself checked against
finite differences and a naive window-by-window implementation
(``tests/test_reference_ops.py``); the event loop computes the same rules neuron by
neuron, each op compiled into compartments and synapses. Agreement to round-off shows
that the compiled actors, their messages and the shared-parameter step compute the
rules as stated.
"""

from __future__ import annotations

import numpy as np
import pytest

import graph_cases as gc
from neurosim.engine import Simulator
from neurosim.errors import GraphError
from neurosim.graph import cnn, exact_steps, lstm, rnn
from neurosim.reference.backprop import gradients
from neurosim.reference.rules import run_rule
from neurosim.rules import IL, IPC, ZIL, FaZIL, FixedPred, StrictPC

ALPHA = 0.05
GRAPHS = {
    "cnn-avg-tanh": lambda: gc.cnn("tanh", "avg"),
    "cnn-max-relu": lambda: gc.cnn("relu", "max", stride=2, padding=1),
    "cnn-pre-sigmoid": lambda: gc.cnn("sigmoid", "avg", convention="pre", loss="mse"),
    "cnn-separate-act": lambda: gc.cnn("tanh", "max", separate_act=True),
    "deep-cnn": gc.deep_cnn,
    "rnn-last": lambda: gc.rnn(3),
    "rnn-every": lambda: gc.rnn(3, loss_every=True),
    "lstm-gates": lambda: gc.lstm_gates(2),
    "lstm-cells": lambda: gc.lstm_cells(3),
    "residual": lambda: gc.residual(skip=False),
    "residual-skip": lambda: gc.residual(skip=True),
    "every-op": gc.every_op_dag,
}
#: graphs on which some parametrized vertex has several path lengths to the outputs
NO_TRIGGER = {"rnn-every", "lstm-gates", "residual-skip", "every-op"}


def _rules(name: str, graph) -> list:
    n = exact_steps(graph)
    rules = [IL(alpha=ALPHA, gamma=0.2, t_c=6), StrictPC(alpha=ALPHA, eta=0.3, n=5), StrictPC(alpha=ALPHA, eta=1.0, n=3),
             FixedPred(alpha=ALPHA), FixedPred(alpha=ALPHA, eta=0.5, n=n + 2)]
    if name not in NO_TRIGGER:
        rules += [ZIL(alpha=ALPHA), ZIL(alpha=ALPHA, gamma=0.5), ZIL(alpha=ALPHA, shared_updates="immediate"),
                  FaZIL(alpha=ALPHA), FaZIL(alpha=ALPHA, ticks=n + 3), FaZIL(alpha=ALPHA, ticks=n + 3, detector="feedback")]
    return rules + [IPC(alpha=ALPHA, gamma=0.2, ticks=n + 3)]


def _compare(graph, params, x, y, rule) -> None:
    ours = Simulator(graph, params).learn(x, y, rule)
    ref = run_rule(graph, params, x, y, rule)
    assert ours.diverged == ref.diverged and ours.diverged_at == ref.diverged_at
    np.testing.assert_allclose(ours.energy[~np.isnan(ours.energy)], ref.energy, rtol=1e-10)
    scale = max(np.linalg.norm(u) for u in ref.updates.values())
    for name, u in ref.updates.items():
        assert np.linalg.norm(ours.updates[name] - u) <= 1e-11 * max(scale, 1e-300), name
    np.testing.assert_array_equal(ours.firings, ref.firings)
    ref_rows = ref.named(ref.firings)
    assert ours.named(ours.firings) == ref_rows


CASES = [(name, k) for name, make in GRAPHS.items() for k in range(len(_rules(name, make())))]


@pytest.mark.parametrize("name, k", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_event_loop_equals_the_reference(name, k):
    graph = GRAPHS[name]()
    rule = _rules(name, graph)[k]
    params, x, y = gc.random_case(graph, seed=k + 7, batch=2, scale=1.0)
    _compare(graph, params, x, y, rule)


@pytest.mark.parametrize("name", sorted(NO_TRIGGER))
def test_zil_and_fazil_say_why_they_are_not_defined(name):
    graph = GRAPHS[name]()
    params, x, y = gc.random_case(graph, seed=0)
    for rule in (ZIL(alpha=ALPHA), FaZIL(alpha=ALPHA)):
        with pytest.raises(GraphError, match="paths of lengths .* single trigger step"):
            Simulator(graph, params).learn(x, y, rule)


@pytest.mark.parametrize("graph", [
    cnn((1, 8, 8), channels=(3,), kernel_size=3, pool="max", pool_size=2, activation="tanh", n_out=3, loss="ce"),
    rnn(4, 5, 3, steps=4, loss="ce", loss_on="last"),
    lstm(4, 3, 3, steps=3, granularity="cell", loss="ce", loss_on="last"),
], ids=["cnn", "rnn", "lstm-cell"])
def test_zil_on_the_builders_is_one_sgd_step_and_immediate_shared_updates_are_not(graph):
    """Z-IL's weights after one pass equal one backprop SGD step to round-off; applying a
    shared parameter's changes at each trigger (not after its last) leaves backprop."""
    params, x, y = gc.random_case(graph, seed=3, batch=3, scale=1.0)
    grads = gradients(graph, params, x, y)
    sim = Simulator(graph, params)
    sim.learn(x, y, ZIL(alpha=ALPHA))
    for name, g in grads.items():
        expected = params[name] - ALPHA * g
        assert np.max(np.abs(sim.params[name] - expected)) <= 1e-12 * max(1.0, np.max(np.abs(expected)))
    immediate = Simulator(graph, params).learn(x, y, ZIL(alpha=ALPHA, shared_updates="immediate"))
    off = max(gc.relative_error(immediate.updates[n], -ALPHA * grads[n]) for n in grads)
    if graph.name.startswith("cnn"):  # one trigger step per kernel: nothing to defer
        assert off <= 1e-11
    else:
        assert off > 1e-6


def test_fixedpred_one_step_short_of_n_exact_is_not_the_gradient():
    graph = lstm(3, 2, 2, steps=3, granularity="gate", loss="mse")
    params, x, y = gc.random_case(graph, seed=5, scale=1.0)
    grads = gradients(graph, params, x, y)
    n = exact_steps(graph)
    exact = Simulator(graph, params).learn(x, y, FixedPred(alpha=ALPHA, n=n))
    short = Simulator(graph, params).learn(x, y, FixedPred(alpha=ALPHA, n=n - 1))
    assert max(gc.relative_error(exact.updates[k], -ALPHA * grads[k]) for k in grads) <= 1e-12
    assert max(gc.relative_error(short.updates[k], -ALPHA * grads[k]) for k in grads) > 1e-6


def test_shared_parameters_on_two_threads_give_the_same_bits():
    """The changes of a shared parameter meet in one entry: summed on one thread, in
    neuron order, whatever the number of threads of the stages."""
    graph = GRAPHS["lstm-cells"]()
    params, x, y = gc.random_case(graph, seed=2, scale=1.0)
    one, two = Simulator(graph, params), Simulator(graph, params, threads=2)
    for rule in (ZIL(alpha=ALPHA), FaZIL(alpha=ALPHA)):
        one.learn(x, y, rule)
        two.learn(x, y, rule)
    for name in params:
        assert np.array_equal(one.params[name], two.params[name])
