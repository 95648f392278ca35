"""Strict PC's weight update as Torch2PC computes it, against a check that shares no code
with the event loop or the reference.

Torch2PC's ``Strict`` (Rosenbaum 2022, Algorithm "PC"; ``shared/design/equations.md``):
``n`` inference steps of size ``eta`` from the current beliefs, then the errors of the
last step, ``eps(n-1)``, pulled back through every vertex's parameter Jacobian
evaluated at the beliefs of state ``n``. So the update is ``alpha dG/dtheta`` with

    G(theta) = sum_j < eps_j(n-1), f_j(parents' beliefs at state n; theta) >,

which this file computes by central finite differences of ``G`` written with the naive
ops of ``graph_cases.py``. The relaxation itself is gradient descent on the energy
``F = sum_hidden 1/2 ||v_j - f_j||^2 + sum_outputs L(f_out)`` (its negative gradient in
``v_j`` is ``-eps_j + sum_c J_cj^T eps_c``), also by finite differences of ``F``.
The event loop and the reference must both agree with it, and with each other to 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax, softmax

import graph_cases as gc
from neurosim.engine import Simulator
from neurosim.graph import cnn, mlp
from neurosim.reference.rules import run_rule
from neurosim.rules import StrictPC

ALPHA, ETA, N = 0.1, 0.2, 4
STEP = 1e-6


def _mu(graph, params, beliefs, v):
    return gc.naive_vertex(graph, v, params, gc.parent_values(graph, v, beliefs))


def _energy(graph, params, beliefs, y):
    """``F``: hidden prediction errors plus the output losses at the current beliefs."""
    total = 0.0
    for v in graph:
        node = graph.nodes[v]
        if node["op"] == "input":
            continue
        mu = _mu(graph, params, beliefs, v)
        if node.get("loss") == "mse":
            total += 0.5 * np.sum((mu - y[v]) ** 2)
        elif node.get("loss") == "ce":
            total -= np.sum(y[v] * log_softmax(mu, axis=1))
        else:
            total += 0.5 * np.sum((beliefs[v] - mu) ** 2)
    return total


def _errors(graph, params, beliefs, y):
    """``eps`` of every non-input vertex: ``v - mu`` hidden, ``-dL/dmu`` at an output."""
    eps = {}
    for v in graph:
        node = graph.nodes[v]
        if node["op"] == "input":
            continue
        mu = _mu(graph, params, beliefs, v)
        loss = node.get("loss")
        eps[v] = y[v] - mu if loss == "mse" else y[v] - softmax(mu, axis=1) if loss == "ce" else beliefs[v] - mu
    return eps


def independent_strict_pc(graph, params, x, y, alpha=ALPHA, eta=ETA, n=N):
    """Strict PC by finite differences: relax ``n`` steps on ``F``, then ``alpha dG/dtheta``."""
    values = gc.naive_forward(graph, params, x)
    hidden = [v for v in graph if graph.nodes[v]["op"] != "input" and graph.nodes[v].get("loss") is None]
    beliefs = {v: values[v] for v in graph if graph.nodes[v].get("loss") is None}
    beliefs.update({v: y[v] for v in graph if graph.nodes[v].get("loss") is not None})
    for _ in range(n):
        eps = _errors(graph, params, beliefs, y)  # state t; after the loop, state n - 1
        new = dict(beliefs)
        for v in hidden:
            grad = np.zeros_like(beliefs[v])
            for idx in np.ndindex(grad.shape):
                shifted = []
                for sign in (1.0, -1.0):
                    moved = dict(beliefs)
                    moved[v] = beliefs[v].copy()
                    moved[v][idx] += sign * STEP
                    shifted.append(_energy(graph, params, moved, y))
                grad[idx] = (shifted[0] - shifted[1]) / (2 * STEP)
            new[v] = beliefs[v] - eta * grad
        beliefs = new

    def g_of(p):
        return sum(np.sum(e * _mu(graph, p, beliefs, v)) for v, e in eps.items())

    return {name: alpha * d for name, d in gc.fd_param_gradients(g_of, params, STEP).items()}


def _mlp_case(activation, loss, convention="post", output_activation=None, seed=0, batch=3):
    kw = {} if output_activation is None else {"output_activation": output_activation}
    graph = mlp([3, 4, 4, 2], activation=activation, convention=convention, loss=loss, **kw)
    params, x, y = gc.random_case(graph, seed, batch=batch, scale=1.5)
    return graph, params, x, y


CASES = {
    **{f"mlp-post-{a}-{loss}": (lambda a=a, loss=loss: _mlp_case(a, loss, seed=len(a)))
       for a in ("linear", "tanh", "sigmoid", "relu") for loss in ("mse", "ce")},
    "mlp-post-sigmoid-output": lambda: _mlp_case("tanh", "mse", output_activation="sigmoid", seed=4),
    "mlp-pre-tanh-ce": lambda: _mlp_case("tanh", "ce", convention="pre", seed=5),
    "cnn-avg-tanh": lambda: _graph_case(gc.cnn("tanh", "avg"), 6),
    "cnn-max-relu": lambda: _graph_case(gc.cnn("relu", "max", stride=2, padding=1), 7),
    "deep-cnn": lambda: _graph_case(gc.deep_cnn(), 8),
    "cnn-two-conv-tanh": lambda: _graph_case(cnn((1, 7, 7), channels=(2, 2), kernel_size=2, pool="avg",
                                                 pool_size=2, activation="tanh", hidden=(3,), n_out=3), 13),
    "cnn-two-conv-relu-max": lambda: _graph_case(cnn((1, 7, 7), channels=(2, 2), kernel_size=2, pool="max",
                                                     pool_size=2, activation="relu", n_out=2, loss="mse",
                                                     output_activation="sigmoid"), 14),
    "rnn-last": lambda: _graph_case(gc.rnn(3), 9),
    "rnn-every": lambda: _graph_case(gc.rnn(3, loss_every=True, loss="ce"), 10),
    "lstm-gates": lambda: _graph_case(gc.lstm_gates(2), 11),
    "lstm-cells": lambda: _graph_case(gc.lstm_cells(3), 12),
    # composite vertices (issue 9.3) and edge slices (9.4): the Jacobian of the whole chain at state n
    "block-cnn-relu-max": lambda: _graph_case(gc.block_cnn("relu", "max"), 15),
    "block-cnn-tanh-avg": lambda: _graph_case(gc.block_cnn("tanh", "avg", loss="mse"), 16),
    "block-cnn-conv-sigmoid-max-after": lambda: _graph_case(
        gc.block_cnn("sigmoid", "max", separate_act=False, act_after_pool=True), 17),
    "sliced-dag": lambda: _graph_case(gc.sliced_dag(), 18),
}



def _graph_case(graph, seed):
    params, x, y = gc.random_case(graph, seed, batch=2, scale=1.5)
    return graph, params, x, y


def strict_errors(name):
    """``(loop vs independent, reference vs independent, loop vs reference)``, overall
    relative errors of the update of case ``name``."""
    graph, params, x, y = CASES[name]()
    rule = StrictPC(alpha=ALPHA, eta=ETA, n=N)
    ours = Simulator(graph, params).learn(x, y, rule)
    ref = run_rule(graph, params, x, y, rule)
    assert not ours.diverged and not ref.diverged
    expected = independent_strict_pc(graph, params, x, y)
    return (gc.overall_error(ours.updates, expected), gc.overall_error(ref.updates, expected),
            gc.overall_error(ours.updates, ref.updates))


@pytest.mark.parametrize("name", sorted(CASES))
def test_strict_pc_update_is_eps_n_minus_1_through_the_jacobian_at_state_n(name):
    loop_err, ref_err, loop_vs_ref = strict_errors(name)
    assert loop_err < 1e-7 and ref_err < 1e-7, (loop_err, ref_err)
    assert loop_vs_ref <= 1e-12

