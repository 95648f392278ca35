"""Graph definition and validation: every malformed graph gives one clear message naming the vertex."""

import networkx as nx
import numpy as np
import pytest

from neurosim.engine import Simulator
from neurosim.errors import DataError, GraphError, ParameterError
from neurosim.graph import mlp, param_shapes, trigger_steps, validate_graph
from neurosim.params import check_params, init_params


def _chain(**layer_attrs):
    g = nx.DiGraph()
    g.add_node("x", op="input", size=3)
    attrs = dict(op="dense", size=2, activation="tanh", convention="post", bias=True, loss="mse")
    attrs.update(layer_attrs)
    g.add_node("out", **{k: v for k, v in attrs.items() if v is not None})
    g.add_edge("x", "out")
    return g


def test_mlp_builder_layout_and_params():
    g = mlp([5, 7, 3], activation=["relu", "tanh"], convention="pre", bias=False, loss="ce")
    assert list(g.nodes) == ["input", "layer1", "layer2"]
    assert g.nodes["layer2"]["loss"] == "ce" and g.nodes["layer1"]["activation"] == "relu"
    assert param_shapes(g) == {"layer1.weight": (7, 5), "layer2.weight": (3, 7)}
    assert trigger_steps(g) == {"layer2": 0, "layer1": 1}
    post = mlp([4, 3, 2], activation="sigmoid", output_activation="linear")
    assert post.nodes["layer2"]["activation"] == "linear" and post.nodes["layer1"]["activation"] == "sigmoid"


@pytest.mark.parametrize(
    "graph, words",
    [
        (_chain(op="conv9"), ["'out'", "unknown op"]),
        (_chain(activation="swish"), ["'out'", "activation"]),
        (_chain(convention="sideways"), ["'out'", "convention"]),
        (_chain(size=None), ["'out'", "size"]),
        (_chain(size=0), ["'out'", "size"]),
        (_chain(loss="hinge"), ["'out'", "loss"]),
        (_chain(in_features=5), ["'out'", "shape mismatch"]),
        (_chain(loss=None), ["'out'", "no children and no loss"]),
    ],
)
def test_malformed_vertex_is_named(graph, words):
    with pytest.raises(GraphError) as err:
        validate_graph(graph)
    for w in words:
        assert w in str(err.value)


def test_cycle_and_structure_errors():
    g = _chain()
    g.add_node("h", op="dense", size=2, activation="tanh", convention="post")
    g.add_edge("out", "h")
    g.add_edge("h", "out")
    with pytest.raises(GraphError, match="cycle"):
        validate_graph(g)
    two_parents = _chain()
    two_parents.add_node("y", op="input", size=3)
    two_parents.add_node("act", op="activation", activation="tanh", loss="mse")
    two_parents.add_edge("y", "act")
    two_parents.add_edge("x", "act")
    with pytest.raises(GraphError, match="'act'.*2 parents.*exactly 1"):
        validate_graph(two_parents)
    with pytest.raises(GraphError, match="networkx.DiGraph"):
        validate_graph({"a": 1})
    with pytest.raises(GraphError, match="no vertices"):
        validate_graph(nx.DiGraph())


def test_missing_and_misshaped_parameters_are_named():
    g = mlp([3, 4, 2])
    p = init_params(g, seed=1)
    bad = dict(p)
    del bad["layer2.bias"]
    with pytest.raises(ParameterError, match="layer2.bias"):
        check_params(g, bad)
    bad = dict(p, **{"layer1.weight": np.zeros((3, 4))})
    with pytest.raises(ParameterError, match=r"layer1.weight.*\(3, 4\).*\(4, 3\)"):
        Simulator(g, bad)
    bad = dict(p, **{"layer1.weight": np.full((4, 3), np.nan)})
    with pytest.raises(ParameterError, match="NaN"):
        Simulator(g, bad)


def test_input_without_data_and_bad_data_are_named():
    sim = Simulator(mlp([3, 2]))
    with pytest.raises(DataError, match="'input'.*shape"):
        sim.predict(np.ones((2, 4)))
    with pytest.raises(DataError, match="NaN"):
        sim.predict(np.array([[1.0, np.nan, 0.0]]))
    with pytest.raises(DataError, match="no input data for vertex 'input'"):
        sim.predict({"other": np.ones((1, 3))})


def test_zil_needs_parents_that_do_not_move_before_their_child_updates():
    """A parameter-free vertex with a shorter second path to an output moves before its
    parametrized child's trigger step: Z-IL would read a moved input, so it is refused."""
    from neurosim.graph import trigger_steps

    g = nx.DiGraph()
    g.add_node("x", op="input", size=3)
    g.add_node("p", op="activation", activation="tanh")
    g.add_node("k", op="dense", size=2, activation="linear", convention="post")
    g.add_node("o1", op="dense", size=2, activation="linear", convention="post", loss="mse")
    g.add_node("o2", op="activation", activation="linear", loss="mse")
    g.add_edges_from([("x", "p"), ("p", "k"), ("k", "o1"), ("p", "o2")])
    with pytest.raises(GraphError, match="'p'.*has moved by step 1, when its child 'k' updates at step 1"):
        trigger_steps(g)


def test_conv_and_lstm_read_whole_parameters():
    g = nx.DiGraph()
    g.add_node("x", op="input", shape=(1, 4, 4))
    g.add_node("c", op="conv2d", out_channels=2, kernel_size=3, activation="tanh", convention="post",
               loss="mse", weights={"x": ("k", 2)})
    g.add_edge("x", "c")
    with pytest.raises(GraphError, match="'c'.*row offset 2.*plain name"):
        validate_graph(g)
