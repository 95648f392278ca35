"""Clause A1's delays: every way to give them resolves to one float > 0 per synapse in
the netlist's synapse order, and bad input is refused with a neurosim error naming it."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.compile.compiler import compile_graph
from neurosim.engine.delays import DelayDistribution, EdgeDelays, from_ticks, own_delays, synapse_delays
from neurosim.errors import ConfigError, GraphError
from neurosim.graph import mlp


@pytest.fixture()
def net3():
    g = mlp([3, 4, 2])
    return g, compile_graph(g)


def test_synapse_order_is_the_weight_layout(net3) -> None:
    """Synapse s of an MLP reads theta[s]: row i of W_k is error neuron i's n_in synapses."""
    g, net = net3
    pre, post = net.s_pre, net.s_error
    assert net.n_synapses == 3 * 4 + 4 * 2
    # layer1: error neuron i (0..3) gets input j (0..2) at synapse 3 i + j
    assert np.array_equal(post[:12], np.repeat(np.arange(4), 3))
    assert np.array_equal(pre[:12], np.tile(np.arange(3), 4))
    d = synapse_delays({"layer2": 2.5}, g, net)
    assert np.array_equal(d, np.r_[np.ones(12), np.full(8, 2.5)])


def test_constant_edge_and_array(net3) -> None:
    g, net = net3
    assert np.array_equal(synapse_delays(0.75, g, net), np.full(20, 0.75))
    g.edges["input", "layer1"]["delay"] = 3.0
    g.edges["layer1", "layer2"]["delay"] = 0.5
    assert np.array_equal(synapse_delays(EdgeDelays(), g, net), np.r_[np.full(12, 3.0), np.full(8, 0.5)])
    arr = np.linspace(0.1, 2.0, 20)
    assert np.array_equal(synapse_delays(arr, g, net), arr)
    assert compile_graph(g).n_synapses == 20  # the graph validator accepts the attribute


def test_edge_default_and_missing_attribute(net3) -> None:
    g, net = net3
    g.edges["layer1", "layer2"]["delay"] = 2.0
    assert np.array_equal(synapse_delays(EdgeDelays(default=1.5), g, net), np.r_[np.full(12, 1.5), np.full(8, 2.0)])
    with pytest.raises(GraphError, match="'input' -> 'layer1' has no 'delay'"):
        synapse_delays(EdgeDelays(), g, net)
    g.edges["input", "layer1"]["delay"] = -1.0
    with pytest.raises(GraphError, match="'input' -> 'layer1' has delay=-1.0"):
        synapse_delays(EdgeDelays(), g, net)


@pytest.mark.parametrize("law", ["gamma", "lognormal"])
def test_distribution_mean_cv_and_seed(law: str) -> None:
    d = DelayDistribution(law, mean=2.0, cv=0.5, seed=3).draw(200000)
    assert np.all(d > 0)
    assert abs(d.mean() - 2.0) < 0.02 and abs(d.std() / d.mean() - 0.5) < 0.01
    assert np.array_equal(d, DelayDistribution(law, 2.0, 0.5, 3).draw(200000))  # same seed, same bits
    assert not np.array_equal(d, DelayDistribution(law, 2.0, 0.5, 4).draw(200000))
    assert np.array_equal(DelayDistribution(law, 2.0, 0.0, 3).draw(5), np.full(5, 2.0))


def test_from_ticks_is_the_sync_limit() -> None:
    assert from_ticks(1) == 1.0 and from_ticks(3) == 5.0
    assert np.array_equal(from_ticks(np.array([1, 2, 4])), [1.0, 3.0, 7.0])


@pytest.mark.parametrize(
    "spec, word",
    [
        (0.0, "synaptic delay"),
        (-1, "synaptic delay"),
        (float("nan"), "synaptic delay"),
        (float("inf"), "synaptic delay"),
        (True, "a number"),
        ("1", "a number"),
        (np.ones(19), "20 numbers"),
        (np.array(["a"] * 20), "20 numbers"),
        (np.r_[np.ones(19), 0.0], "synapse 19 \\('layer1' -> 'layer2'\\)"),
        (np.r_[np.nan, np.ones(19)], "synapse 0 \\('input' -> 'layer1'\\)"),
        ({"nope": 1.0}, "not in the graph"),
        ({"layer1": 0}, "vertex 'layer1'"),
    ],
)
def test_bad_synaptic_delays_are_named(net3, spec: object, word: str) -> None:
    g, net = net3
    with pytest.raises(ConfigError, match=word):
        synapse_delays(spec, g, net)


@pytest.mark.parametrize(
    "kw, word",
    [(dict(law="weibull"), "unknown delay distribution 'weibull'"), (dict(mean=0.0), "mean delay"),
     (dict(cv=-0.1), "coefficient of variation"), (dict(cv=float("nan")), "coefficient of variation"),
     (dict(seed=-2), "seed")],
)
def test_bad_distributions_are_named(kw: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        DelayDistribution(**kw)


def test_own_delays(net3) -> None:
    _, net = net3
    assert np.array_equal(own_delays(2.0, net), np.full(6, 2.0))
    assert np.array_equal(own_delays(np.arange(1, 7), net), np.arange(1.0, 7.0))
    with pytest.raises(ConfigError, match="error neuron 2"):
        own_delays(np.array([1, 1, 0, 1, 1, 1.0]), net)
    with pytest.raises(ConfigError, match="6 numbers"):
        own_delays(np.ones(3), net)
    with pytest.raises(ConfigError, match="own_delay"):
        own_delays(-1.0, net)
