"""Recurrent builders as a PyTorch user expects: initial states, bias layouts, the LSTM
readout through an edge slice; and mlp/cnn agreeing on ``output_activation``.

Expectations: ``nn.RNN``/``nn.LSTM``'s equations written out with numpy below, finite
differences, the other LSTM granularity (a different graph of the same function), and
one SGD step of backprop for Z-IL (Song et al. 2020).
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import graph_cases as gc
from neurosim.engine import Simulator
from neurosim.errors import GraphError
from neurosim.graph import cnn, exact_steps, lstm, mlp, rnn, trigger_steps, validate_graph
from neurosim.params import merge_bias_pairs, split_bias_pairs
from neurosim.reference import gradients, run_rule
from neurosim.reference.backprop import loss, predict
from neurosim.rules import IL, ZIL, FixedPred, StrictPC

ALPHA = 0.05


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _rnn_numpy(p, xs, h):
    for x in xs:
        h = np.tanh(x @ p["rnn.weight_ih_l0"].T + h @ p["rnn.weight_hh_l0"].T + p["rnn.bias_ih_l0"] + p["rnn.bias_hh_l0"])
    return h @ p["fc.weight"].T + p["fc.bias"]


def _lstm_numpy(p, xs, h, c):
    hidden = h.shape[1]
    for x in xs:
        gates = x @ p["lstm.weight_ih_l0"].T + h @ p["lstm.weight_hh_l0"].T + p["lstm.bias_ih_l0"] + p["lstm.bias_hh_l0"]
        i, f, g, o = (gates[:, k * hidden:(k + 1) * hidden] for k in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
    return h @ p["fc.weight"].T + p["fc.bias"]


def test_rnn_initial_state_is_a_clamped_input_zero_by_default():
    graph = rnn(3, 4, 2, steps=3, loss="mse", initial_state=True)
    assert graph.nodes["h0"]["op"] == "input" and graph.nodes["h1"]["inputs"] == ["x1", "h0"]
    params, x, y = gc.random_case(graph, seed=1, batch=2, scale=1.0)
    xs = [x[f"x{t}"] for t in (1, 2, 3)]
    np.testing.assert_allclose(predict(graph, params, x), _rnn_numpy(params, xs, x["h0"]), rtol=1e-13)
    no_h0 = {k: v for k, v in x.items() if k != "h0"}
    np.testing.assert_allclose(predict(graph, params, no_h0), _rnn_numpy(params, xs, np.zeros((2, 4))), rtol=1e-13)
    # the loop: h0's data given, or left out (zeros) with the same bits as zeros given
    grads = gradients(graph, params, x, y)
    assert gc.overall_error(grads, gc.fd_gradients(graph, params, x, y)) <= 1e-7
    res = Simulator(graph, params).learn(x, y, ZIL(alpha=ALPHA))
    assert gc.overall_error(res.updates, {k: -ALPHA * g for k, g in grads.items()}) <= 1e-12
    zeros = dict(x, h0=np.zeros((2, 4)))
    a = Simulator(graph, params).learn(no_h0, y, StrictPC(alpha=ALPHA, eta=0.3, n=4))
    b = Simulator(graph, params).learn(zeros, y, StrictPC(alpha=ALPHA, eta=0.3, n=4))
    assert all(np.array_equal(a.updates[k], b.updates[k]) for k in params)


@pytest.mark.parametrize("granularity", ["gate", "cell"])
def test_lstm_initial_states_h0_c0(granularity):
    graph = lstm(3, 2, 2, steps=3, granularity=granularity, loss="mse", initial_state=True)
    params, x, y = gc.random_case(graph, seed=2, batch=2, scale=1.0)
    xs = [x[f"x{t}"] for t in (1, 2, 3)]
    np.testing.assert_allclose(predict(graph, params, x), _lstm_numpy(params, xs, x["h0"], x["c0"]), rtol=1e-12)
    grads = gradients(graph, params, x, y)
    other = lstm(3, 2, 2, steps=3, granularity="cell" if granularity == "gate" else "gate", loss="mse",
                 initial_state=True)
    assert gc.overall_error(grads, gradients(other, params, x, y)) <= 1e-13
    for rule in (FixedPred(alpha=ALPHA), IL(alpha=ALPHA, gamma=0.2, t_c=5), StrictPC(alpha=ALPHA, eta=0.3, n=4)):
        ours, ref = Simulator(graph, params).learn(x, y, rule), run_rule(graph, params, x, y, rule)
        assert gc.overall_error(ours.updates, ref.updates) <= 1e-11, rule
    assert gc.overall_error(Simulator(graph, params).learn(x, y, FixedPred(alpha=ALPHA)).updates,
                            {k: -ALPHA * g for k, g in grads.items()}) <= 1e-12


@pytest.mark.parametrize("make, module", [
    (lambda bias: rnn(3, 4, 2, steps=3, loss="mse", bias=bias), "rnn"),
    (lambda bias: lstm(3, 2, 2, steps=2, granularity="gate", loss="mse", bias=bias), "lstm"),
    (lambda bias: lstm(3, 2, 2, steps=2, granularity="cell", loss="mse", bias=bias), "lstm"),
])
def test_one_bias_or_the_pair(make, module):
    pair, single, none = make("pair"), make("single"), make("none")
    params, x, y = gc.random_case(pair, seed=3, batch=2, scale=1.0)
    merged = merge_bias_pairs(params)
    assert f"{module}.bias_l0" in merged and f"{module}.bias_ih_l0" not in merged
    assert loss(single, merged, x, y) == pytest.approx(loss(pair, params, x, y), rel=1e-14)
    assert not any("bias_" in name for name in gradients(none, {k: v for k, v in merged.items()
                                                                if "bias_l0" not in k}, x, y))
    back = split_bias_pairs(merged, [f"{module}.bias_l0"])
    assert loss(pair, back, x, y) == pytest.approx(loss(pair, params, x, y), rel=1e-14)
    # both biases of the pair are learned with the gradient of their sum: the effective
    # bias moves twice as far as a single bias in one step
    g_pair, g_single = gradients(pair, params, x, y), gradients(single, merged, x, y)
    np.testing.assert_allclose(g_pair[f"{module}.bias_ih_l0"], g_single[f"{module}.bias_l0"], rtol=1e-12)
    np.testing.assert_allclose(g_pair[f"{module}.bias_hh_l0"], g_single[f"{module}.bias_l0"], rtol=1e-12)
    rule = FixedPred(alpha=ALPHA)
    moved_pair = Simulator(pair, params).learn(x, y, rule).updates
    moved_single = Simulator(single, merged).learn(x, y, rule).updates
    np.testing.assert_allclose(moved_pair[f"{module}.bias_ih_l0"] + moved_pair[f"{module}.bias_hh_l0"],
                               2 * moved_single[f"{module}.bias_l0"], rtol=1e-11)


def test_the_cell_lstm_reads_h_through_a_slice():
    split = lstm(3, 2, 2, steps=3, granularity="cell", loss="ce")
    sliced = lstm(3, 2, 2, steps=3, granularity="cell", loss="ce", readout="slice")
    assert "h3" in split and "h3" not in sliced and sliced.edges["s3", "out"]["slice"] == (0, 2)
    assert exact_steps(sliced) == exact_steps(split) - 1 == 4
    # the same n_exact and trigger steps as a direct edge (a readout of the whole [h; c])
    direct = nx.DiGraph(sliced)
    direct.remove_node("out")
    direct.add_node("out", op="dense", size=2, activation="linear", convention="post", loss="ce")
    direct.add_edge("s3", "out")
    validate_graph(direct)
    assert exact_steps(direct) == exact_steps(sliced) and trigger_steps(direct) == trigger_steps(sliced)
    assert trigger_steps(sliced) == {"out": 0, "s3": 1, "s2": 2, "s1": 3}
    params, x, y = gc.random_case(split, seed=4, batch=3, scale=1.0)
    grads = gradients(split, params, x, y)  # through the split vertex: another graph, the same function
    sim = Simulator(sliced, params)
    sim.learn(x, y, ZIL(alpha=ALPHA))
    for k, g in grads.items():
        assert gc.relative_error(sim.params[k], params[k] - ALPHA * g) <= 1e-12, k
    fixed = Simulator(sliced, params).learn(x, y, FixedPred(alpha=ALPHA))
    assert gc.overall_error(fixed.updates, {k: -ALPHA * g for k, g in grads.items()}) <= 1e-12


def test_output_activation_in_the_pre_convention_is_refused_by_mlp_and_cnn_alike():
    for build in (lambda: mlp([3, 4, 2], convention="pre", output_activation="linear"),
                  lambda: cnn((1, 6, 6), channels=(2,), kernel_size=3, n_out=2, convention="pre",
                              output_activation="linear")):
        with pytest.raises(GraphError, match="output_activation applies to the 'post' convention only"):
            build()
    assert mlp([3, 4, 2], convention="post", output_activation="linear").nodes["layer2"]["activation"] == "linear"


def test_bad_recurrent_options_are_named():
    with pytest.raises(GraphError, match="unknown bias 'both'"):
        rnn(3, 4, 2, steps=2, bias="both")
    with pytest.raises(GraphError, match="unknown readout"):
        lstm(3, 2, 2, steps=2, granularity="cell", readout="h")
    g = rnn(3, 4, 2, steps=2, initial_state=True)
    g.nodes["h0"]["default"] = "zeros"
    with pytest.raises(GraphError, match="finite number"):
        validate_graph(g)
