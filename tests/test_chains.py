"""Composite vertices (``op="chain"``, Torch2PC's blocks) on the reference and the event loop.

Independent checks: the naive forward of ``graph_cases`` (each op of a chain applied
window by window) and its finite differences; the *unfused* graph (one vertex per op,
the same parameters), whose backprop goes through the plain ops and not through any
chain code. Expectations: FixedPred with ``eta = 1`` and ``n_exact`` iterations is the
exact gradient (Rosenbaum 2022, Theorem 1), Z-IL and Fa-Z-IL after one pass equal one
SGD step (Song et al. 2020), both to 1e-12 relative in float64; Strict PC and IL equal
the reference (itself checked above) to round-off.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import graph_cases as gc
from neurosim.compile import compile_graph
from neurosim.engine import Simulator
from neurosim.errors import GraphError
from neurosim.graph import cnn, exact_steps, trigger_steps, validate_graph
from neurosim.graph.spec import OP_ATTRIBUTES, OPS
from neurosim.reference import gradients, run_rule
from neurosim.reference.backprop import forward
from neurosim.rules import IL, ZIL, FaZIL, FixedPred, StrictPC

ALPHA = 0.05
BLOCKS = {
    "relu-max": lambda: gc.block_cnn("relu", "max"),
    "tanh-avg": lambda: gc.block_cnn("tanh", "avg", loss="mse"),
    "sigmoid-max-post-act": lambda: gc.block_cnn("sigmoid", "max", separate_act=False),
    "tanh-avg-pre": lambda: gc.block_cnn("tanh", "avg", convention="pre", separate_act=False),
    "max-then-relu": lambda: gc.block_cnn("relu", "max", act_after_pool=True),
}


def _unfused_grads(graph, params, x, y):
    """Backprop on the one-vertex-per-op graph: the chain code is not on this path."""
    plain, last = gc.unfused(graph)
    return gradients(plain, params, x, {last[v]: t for v, t in y.items()})


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_chain_forward_and_gradient_equal_the_naive_ops(name):
    graph = BLOCKS[name]()
    params, x, y = gc.random_case(graph, seed=1, batch=2)
    naive = gc.naive_forward(graph, params, x)
    ours = forward(graph, params, x)
    for v in graph:
        np.testing.assert_allclose(ours[v]["v"], naive[v], rtol=1e-13, atol=1e-13)
    grads = gradients(graph, params, x, y)
    fd = gc.fd_gradients(graph, params, x, y)
    assert gc.overall_error(grads, fd) <= 1e-7
    unfused = _unfused_grads(graph, params, x, y)
    assert gc.overall_error(grads, unfused) <= 1e-13


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_exact_rules_on_block_cnns(name):
    """FixedPred (eta = 1, n_exact), Z-IL and Fa-Z-IL on the event loop: one SGD step of
    the unfused graph's backprop, to 1e-12."""
    graph = BLOCKS[name]()
    assert exact_steps(graph) == 3  # three blocks, whatever their ops
    assert trigger_steps(graph) == {"b3": 0, "b2": 1, "b1": 2}
    params, x, y = gc.random_case(graph, seed=2, batch=3, scale=1.0)
    grads = _unfused_grads(graph, params, x, y)
    for rule in (FixedPred(alpha=ALPHA, eta=1.0), ZIL(alpha=ALPHA), FaZIL(alpha=ALPHA)):
        sim = Simulator(graph, params)
        res = sim.learn(x, y, rule)
        assert not res.diverged
        for k, g in grads.items():
            expected = params[k] - ALPHA * g
            assert gc.relative_error(sim.params[k], expected) <= 1e-12, (rule, k)
            assert gc.relative_error(res.updates[k], -ALPHA * g) <= 1e-11, (rule, k)
    short = Simulator(graph, params).learn(x, y, FixedPred(alpha=ALPHA, n=2))
    assert gc.overall_error(short.updates, {k: -ALPHA * g for k, g in grads.items()}) > 1e-6


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_strict_and_il_on_block_cnns_equal_the_reference(name):
    graph = BLOCKS[name]()
    params, x, y = gc.random_case(graph, seed=3, batch=2, scale=1.0)
    for rule in (StrictPC(alpha=ALPHA, eta=0.3, n=5), IL(alpha=ALPHA, gamma=0.2, t_c=6),
                 FixedPred(alpha=ALPHA, eta=0.5, n=6)):
        ours = Simulator(graph, params).learn(x, y, rule)
        ref = run_rule(graph, params, x, y, rule)
        assert ours.diverged == ref.diverged
        np.testing.assert_allclose(ours.energy[~np.isnan(ours.energy)], ref.energy, rtol=1e-10)
        assert gc.overall_error(ours.updates, ref.updates) <= 1e-11, rule


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_zil_variants_and_fazil_firings_on_block_cnns_equal_the_reference(name):
    """Where the rules are not backprop (gamma != 1, long Fa-Z-IL runs with late firings),
    the loop's composite error neurons fire when and where the reference's do."""
    graph = BLOCKS[name]()
    params, x, y = gc.random_case(graph, seed=6, batch=2, scale=1.0)
    n = exact_steps(graph)
    for rule in (ZIL(alpha=ALPHA, gamma=0.5), FaZIL(alpha=ALPHA, ticks=n + 3),
                 FaZIL(alpha=ALPHA, ticks=n + 3, detector="feedback")):
        ours = Simulator(graph, params).learn(x, y, rule)
        ref = run_rule(graph, params, x, y, rule)
        assert gc.overall_error(ours.updates, ref.updates) <= 1e-11, rule
        rows = sorted((int(t), ref.vertices[int(k)], int(i), int(b)) for t, k, i, b in ref.firings)
        assert ours.named(ours.firings) == rows, rule


def test_the_cnn_builder_counts_blocks():
    kw = dict(input_shape=(1, 10, 10), channels=(3, 2), kernel_size=3, pool="max", pool_size=2,
              activation="relu", hidden=(4,), n_out=3, loss="ce")
    ops, blocks = cnn(**kw), cnn(**kw, granularity="block")
    assert list(blocks) == ["input", "conv1", "conv2", "fc1", "fc2"]
    assert (exact_steps(ops), exact_steps(blocks)) == (7, 4)  # 2K + M + 2 and K + M + 1
    assert trigger_steps(blocks) == {"fc2": 0, "fc1": 1, "conv2": 2, "conv1": 3}
    params, x, y = gc.random_case(ops, seed=4, batch=2, scale=1.0)
    grads = gradients(ops, params, x, y)  # the same function and parameter names at both granularities
    sim = Simulator(blocks, params)
    sim.learn(x, y, ZIL(alpha=ALPHA))
    for k, g in grads.items():
        assert gc.relative_error(sim.params[k], params[k] - ALPHA * g) <= 1e-12, k


def _single(op_attrs, parent_shape):
    """The op as a vertex, and as a chain of that one op (same parameter names)."""
    graphs = []
    for chain in (False, True):
        g = nx.DiGraph()
        g.add_node("x", op="input", shape=parent_shape)
        attrs = dict(op_attrs)
        if chain:
            if attrs["op"] in ("dense", "conv2d"):
                attrs.update(weights={"x": "v.weight"}, biases=["v.bias"])
            g.add_node("v", op="chain", ops=[attrs], loss="mse")
        else:
            g.add_node("v", **attrs, loss="mse")
        g.add_edge("x", "v")
        validate_graph(g)
        graphs.append(g)
    return graphs


@pytest.mark.parametrize("attrs, shape", [
    (dict(op="dense", size=3, activation="tanh", convention="post"), (4,)),
    (dict(op="dense", size=3, activation="tanh", convention="pre"), (4,)),
    (dict(op="conv2d", out_channels=2, kernel_size=2, stride=2, padding=1, activation="relu", convention="post"),
     (2, 4, 4)),
    (dict(op="avgpool", kernel_size=2), (2, 4, 4)),
    (dict(op="maxpool", kernel_size=2, stride=1), (2, 4, 4)),
    (dict(op="activation", activation="sigmoid"), (5,)),
], ids=["dense", "dense-pre", "conv", "avgpool", "maxpool", "activation"])
def test_a_chain_of_one_op_compiles_to_the_ops_netlist(attrs, shape):
    plain, chain = (compile_graph(g) for g in _single(attrs, shape))
    for key, value in vars(plain).items():
        other = getattr(chain, key)
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, other), key
        else:
            assert value == other, key


@pytest.mark.parametrize("ops, match", [
    ([dict(op="conv2d", out_channels=2, kernel_size=2), dict(op="conv2d", out_channels=2, kernel_size=2)],
     "second weighted op"),
    ([dict(op="conv2d", out_channels=2, kernel_size=2, activation="relu"), dict(op="activation", activation="tanh")],
     "second activation"),
    ([dict(op="conv2d", out_channels=2, kernel_size=1), dict(op="avgpool", kernel_size=2),
      dict(op="activation", activation="tanh")], "activation after an average pooling"),
    ([dict(op="maxpool", kernel_size=2), dict(op="avgpool", kernel_size=1)], "max and average pooling"),
    ([dict(op="product")], "holds the ops"),
    ([dict(op="conv2d", out_channels=2, kernel_size=9)], "op 0 .conv2d.: .*does not fit"),
    ([], "non-empty list"),
])
def test_chains_without_a_neuron_level_form_are_refused(ops, match):
    g = nx.DiGraph()
    g.add_node("x", op="input", shape=(2, 4, 4))
    g.add_node("v", op="chain", ops=ops, loss="mse")
    g.add_edge("x", "v")
    with pytest.raises(GraphError, match=match):
        validate_graph(g)


def test_every_op_lists_its_attributes():
    assert set(OP_ATTRIBUTES) == set(OPS)


# --- edge slices ------------------------------------------------------------------------------




def test_a_sliced_edge_reads_its_range():
    graph = gc.sliced_dag()
    assert graph.nodes["a"]["size"] == 3
    params, x, y = gc.random_case(graph, seed=5, batch=2)
    assert params["b.weight_h"].shape == (3, 2) and params["b.weight_x"].shape == (3, 3)
    naive = gc.naive_forward(graph, params, x)
    ours = forward(graph, params, x)
    for v in graph:
        np.testing.assert_allclose(ours[v]["v"], naive[v], rtol=1e-13, atol=1e-13)
    grads = gradients(graph, params, x, y)
    assert gc.overall_error(grads, gc.fd_gradients(graph, params, x, y)) <= 1e-7
    for rule in (FixedPred(alpha=ALPHA), ZIL(alpha=ALPHA), FaZIL(alpha=ALPHA)):
        res = Simulator(graph, params).learn(x, y, rule)
        for k, g in grads.items():
            assert gc.relative_error(res.updates[k], -ALPHA * g) <= 1e-11, (rule, k)
    for rule in (StrictPC(alpha=ALPHA, eta=0.3, n=5), IL(alpha=ALPHA, gamma=0.2, t_c=6)):
        ours, ref = Simulator(graph, params).learn(x, y, rule), run_rule(graph, params, x, y, rule)
        assert gc.overall_error(ours.updates, ref.updates) <= 1e-11


@pytest.mark.parametrize("edit, match", [
    (lambda g: g.edges["h", "a"].update(slice=(3, 9)), "0 <= start < stop <= 5"),
    (lambda g: g.edges["h", "a"].update(slice=(2, 2)), "0 <= start < stop"),
    (lambda g: g.edges["a", "s"].update(slice=(0, 2)), "only dense vertices read a slice"),
])
def test_bad_slices_are_named(edit, match):
    graph = gc.sliced_dag()
    edit(graph)
    with pytest.raises(GraphError, match=match):
        validate_graph(graph)
