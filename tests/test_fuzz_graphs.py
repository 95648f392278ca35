"""Fuzz: malformed model graphs never crash neurosim, and never pass with a silent misreading.

Each case takes a small valid graph (an MLP, a CNN, an RNN, both LSTM granularities, a
residual block, a DAG of every op), applies one to three random edits (an attribute set
to junk, deleted or misspelled; an edge or a vertex added or removed) and runs
validation, then, if the graph is accepted, parameter initialization, compilation, a
prediction and a learning step. Besides "only neurosim errors", accepted graphs are
checked: no attribute outside its op's table (a misspelling such as ``strides`` or
``bais`` is refused), ``bias`` only ever a bool, no unconnected input.
A second property edits a graph under a built ``Simulator``: the next call must refuse
with "rebuild the Simulator".
"""

from __future__ import annotations

import copy

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import graph_cases as gc
from fuzz_support import warm_engine  # noqa: F401 - the fixture, used below
from fuzz_support import counts, fuzz_settings, junk, run_case, typo, valid_batch
from neurosim.engine import Simulator
from neurosim.errors import GraphError
from neurosim.graph import mlp, validate_graph
from neurosim.graph.spec import COMMON_ATTRIBUTES, OP_ATTRIBUTES, OPS
from neurosim.params import init_params
from neurosim.rules import IL, IPC, ZIL, FaZIL, FixedPred, StrictPC

BASES = {
    "mlp-post": mlp([3, 4, 2]),
    "mlp-pre-ce": mlp([3, 4, 3], activation="tanh", convention="pre", loss="ce"),
    "cnn": gc.cnn(),
    "deep-cnn": gc.deep_cnn(),
    "rnn": gc.rnn(steps=2),
    "lstm-gates": gc.lstm_gates(steps=2),
    "lstm-cells": gc.lstm_cells(steps=2),
    "residual": gc.residual(skip=True),
    "every-op": gc.every_op_dag(),
}
KNOWN_KEYS = sorted(set(COMMON_ATTRIBUTES).union(*OP_ATTRIBUTES.values()))
RULES = (IL(alpha=0.01, t_c=2), ZIL(alpha=0.01), FaZIL(alpha=0.01), StrictPC(alpha=0.01, n=2), FixedPred(alpha=0.01),
         IPC(alpha=0.01, ticks=2))

#: plausible values of the known attributes (so that edits also produce valid graphs)
plausible = st.one_of(
    st.sampled_from(list(OPS) + ["relu", "tanh", "linear", "pre", "post", "mse", "ce", (2, 2), [1, 1], 1, 2, 3,
                                 True, False, None]),
    counts,
)

#: values that fit each key (so that an edit often leaves a valid, different graph)
FITTING = {
    "activation": st.sampled_from(["relu", "tanh", "sigmoid", "linear"]),
    "convention": st.sampled_from(["pre", "post"]),
    "loss": st.sampled_from(["mse", "ce", None]),
    "bias": st.sampled_from([True, False, np.bool_(False)]),
    "size": st.integers(1, 5),
    "hidden": st.integers(1, 3),
    "out_channels": st.integers(1, 3),
    "kernel_size": st.sampled_from([1, 2, (1, 2), np.int64(2)]),
    "stride": st.sampled_from([1, 2, (2, 1)]),
    "padding": st.sampled_from([0, 1]),
    "init_fan_in": st.integers(1, 9),
}

pytestmark = pytest.mark.usefixtures("warm_engine")


def _edit(g: nx.DiGraph, data: st.DataObject) -> None:
    """One random edit of ``g`` (in place)."""
    nodes = list(g.nodes)
    how = data.draw(st.sampled_from(["set"] * 6 + ["delete", "typo", "typo", "add_edge", "remove_edge",
                                                    "add_node", "remove_node"]))
    v = data.draw(st.sampled_from(nodes)) if nodes else None
    if how == "set" and v is not None:
        own = sorted(k for k in g.nodes[v] if k in FITTING)
        key = data.draw(st.one_of(*([st.sampled_from(own)] * 3 if own else []), st.sampled_from(KNOWN_KEYS),
                                  st.text(min_size=1, max_size=6)))
        fitting = FITTING.get(key, plausible)
        g.nodes[v][key] = data.draw(st.one_of(fitting, fitting, plausible, junk))
    elif how == "delete" and v is not None and g.nodes[v]:
        del g.nodes[v][data.draw(st.sampled_from(sorted(g.nodes[v])))]
    elif how == "typo" and v is not None and g.nodes[v]:
        key = data.draw(st.sampled_from(sorted(g.nodes[v])))
        wrong = typo(key, data)
        if wrong != key:
            g.nodes[v][wrong] = g.nodes[v].pop(key)
    elif how == "add_edge" and nodes:
        u = data.draw(st.one_of(st.sampled_from(nodes), st.just("new")))
        w = data.draw(st.sampled_from(nodes))
        g.add_edge(u, w)
    elif how == "remove_edge" and g.number_of_edges():
        g.remove_edge(*data.draw(st.sampled_from(list(g.edges))))
    elif how == "add_node":
        name = data.draw(st.one_of(st.text(min_size=1, max_size=4), st.integers(0, 3), st.just(("t", 1))))
        attrs = data.draw(st.dictionaries(st.sampled_from(KNOWN_KEYS), st.one_of(plausible, junk), max_size=4))
        g.add_node(name, **attrs)
        if nodes and data.draw(st.booleans()):
            g.add_edge(data.draw(st.sampled_from(nodes)), name)
    elif how == "remove_node" and v is not None:
        g.remove_node(v)


def _exercise(g: nx.DiGraph, rule_index: int) -> None:
    """Everything a user does with a graph: validate, init, compile, predict, learn."""
    validate_graph(g)
    init_params(g, seed=1)
    sim = Simulator(g, seed=1)
    x, y = valid_batch(g, sim, hot=0)
    sim.predict(x)
    sim.learn(x, y, RULES[rule_index % len(RULES)])


@fuzz_settings(400)
@given(base=st.sampled_from(sorted(BASES)), n_edits=st.integers(1, 3), rule=st.integers(0, len(RULES) - 1), data=st.data())
def test_fuzz_malformed_graphs(base: str, n_edits: int, rule: int, data: st.DataObject) -> None:
    g = copy.deepcopy(BASES[base])
    for _ in range(n_edits):
        _edit(g, data)
    if run_case("graph", lambda: _exercise(g, rule)) == "accepted":
        # what validation accepted is well formed: a misspelled key, a bias that is not
        # a bool, an unconnected input never pass
        for v, attrs in g.nodes(data=True):
            assert set(attrs) <= set(COMMON_ATTRIBUTES) | set(OP_ATTRIBUTES[attrs["op"]]), (v, attrs)
            assert isinstance(attrs.get("bias", True), (bool, np.bool_)), (v, attrs)
            assert attrs["op"] != "input" or g.out_degree(v) > 0, v


@fuzz_settings(60)
@given(model=junk)
def test_fuzz_non_graphs(model: object) -> None:
    run_case("graph", lambda: validate_graph(model))


@pytest.mark.parametrize("model", [nx.Graph([(1, 2)]), nx.MultiDiGraph([("x", "y"), ("x", "y")]), nx.DiGraph()])
def test_other_graph_types_are_refused(model: nx.Graph) -> None:
    with pytest.raises(GraphError):
        validate_graph(model)


@fuzz_settings(80)
@given(base=st.sampled_from(["mlp-post", "cnn", "rnn", "every-op"]), data=st.data())
def test_fuzz_graph_edited_under_a_simulator(base: str, data: st.DataObject) -> None:
    g = copy.deepcopy(BASES[base])
    sim = Simulator(g)
    before = nx.to_dict_of_dicts(g), {v: dict(a) for v, a in g.nodes(data=True)}
    _edit(g, data)
    after = nx.to_dict_of_dicts(g), {v: dict(a) for v, a in g.nodes(data=True)}
    x = {v: np.zeros((1, BASES[base].nodes[v]["size"])) for v in sim.inputs}
    outcome = run_case("graph edited under a simulator", lambda: sim.predict(x))
    if repr(before) != repr(after):
        assert outcome == "GraphError", (before, after)
        with pytest.raises(GraphError, match="rebuild the Simulator"):
            sim.predict(x)
    else:
        assert outcome == "accepted"


@pytest.mark.parametrize(("op_attrs", "wrong", "right"), [
    (dict(op="conv2d", out_channels=1, kernel_size=2, activation="linear", convention="post"), "strides", "stride"),
    (dict(op="dense", size=2, activation="linear", convention="post"), "bais", "bias"),
    (dict(op="dense", size=2, activation="linear", convention="post"), "activaton", "activation"),
])
def test_misspelled_attribute_names_the_nearest_valid_one(op_attrs: dict, wrong: str, right: str) -> None:
    g = nx.DiGraph()
    g.add_node("x", op="input", shape=(1, 4, 4))
    g.add_node("f", op="flatten")
    g.add_node("v", **op_attrs, **{wrong: 2})
    g.add_node("o", op="dense", size=2, activation="linear", convention="post", loss="mse")
    if op_attrs["op"] == "conv2d":
        g.add_edges_from([("x", "v"), ("v", "f"), ("f", "o")])
    else:
        g.add_edges_from([("x", "f"), ("f", "v"), ("v", "o")])
    with pytest.raises(GraphError, match=f"unknown attribute '{wrong}' \\(did you mean '{right}'\\?\\)"):
        validate_graph(g)


def test_editing_an_input_size_after_validation_is_not_a_mismatch() -> None:
    g = mlp([3, 4, 2])  # validated: shape (3,) was written on the input
    g.nodes["input"]["size"] = 5
    validate_graph(g)
    assert g.nodes["input"]["shape"] == (5,) and init_params(g)["layer1.weight"].shape == (4, 5)
