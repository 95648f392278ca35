"""Compilation: stable arrays, a map back to (vertex, position), CSR by target and by source."""

import numpy as np
import pytest

from neurosim.compile import compile_graph
from neurosim.errors import ConfigError
from neurosim.graph import mlp


def test_same_graph_same_arrays():
    a = compile_graph(mlp([5, 3, 4], convention="pre", loss="ce"))
    b = compile_graph(mlp([5, 3, 4], convention="pre", loss="ce"))
    for name in ("s_pre", "s_post", "synapse_params", "in_ptr", "out_ptr", "out_syn", "e_trigger", "v_out_act"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_synapses_match_the_weight_layout():
    net = compile_graph(mlp([3, 2, 2]))
    assert net.n_value == 7 and net.n_error == 4 and net.n_synapses == 3 * 2 + 2 * 2
    offset, shape = net.param_index["layer1.weight"]
    for s in range(net.n_synapses):
        post_vertex, row = net.where("error", int(net.s_post[s]))
        pre_vertex, col = net.where("value", int(net.s_pre[s]))
        off, (n_out, n_in) = net.param_index[f"{post_vertex}.weight"]
        assert net.synapse_params[s] == off + row * n_in + col
    # CSR by target lists, for each error neuron, exactly the synapses ending there
    for i in range(net.n_error):
        syn = range(net.in_ptr[i], net.in_ptr[i + 1])
        assert set(syn) == set(np.flatnonzero(net.s_post == i))
    for j in range(net.n_value):
        syn = net.out_syn[net.out_ptr[j] : net.out_ptr[j + 1]]
        assert set(syn) == set(np.flatnonzero(net.s_pre == j))
    assert net.where("value", net.value_neuron("layer2", 1)) == ("layer2", 1)
    assert net.where("error", net.error_neuron("layer1", 0)) == ("layer1", 0)


def test_delays():
    net = compile_graph(mlp([3, 2, 2]), delays={"layer2": 3})
    assert set(net.s_delay[net.s_post >= 2]) == {3} and set(net.s_delay[net.s_post < 2]) == {1}
    assert net.max_delay == 3
    with pytest.raises(ConfigError, match="layer1"):
        compile_graph(mlp([3, 2, 2]), delays={"layer1": 0})
    with pytest.raises(ConfigError, match="per-synapse"):
        compile_graph(mlp([3, 2, 2]), delays=np.ones(3, int))
