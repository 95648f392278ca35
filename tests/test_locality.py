"""Locality: a neuron's update reads only its own state and its inbox.

The test is a light cone. Take a network in the middle of learning, change one
neuron's *own state* without it emitting anything, and run one more tick. If every
update reads only its own state and the messages in its inbox, the change can reach,
within that tick, only the neuron itself and the receivers of the messages it emits
in that tick which are read in the same tick: for an error neuron, its own value
neuron and its parents' value neurons (error-to-value messages of delay 1 are read
in the value stage of the same tick); for a value neuron, nobody (its messages are
read at the next tick). Every other neuron's state must come out bit-for-bit the
same as in an untouched twin. An implementation that let a value neuron read its
error neuron's ``eps`` array (instead of the message it sent), or an error neuron read
a parent's ``v`` directly, fails here.
"""

import copy

import numpy as np
import pytest

import graph_cases as gc
from neurosim.engine import Simulator
from neurosim.graph import cnn, mlp
from neurosim.rules import IPC, FaZIL, FixedPred, StrictPC, ZIL

VALUE_FIELDS = ("v", "vhat")  # per value neuron
ERROR_FIELDS = ("mu", "eps", "last_change", "mu0", "spent")  # per error neuron
COMPARTMENT_FIELDS = ("a", "g", "pending")  # per compartment of an error neuron


def _poke(array, row):
    """Change one row of a neuron's own state, whatever its type."""
    if array.dtype == np.uint8:
        array[row] ^= 1
    elif array.dtype.kind == "i":
        array[row] += 3
    else:
        array[row] += 0.5


def _reach(graph, net, kind, index, emitted):
    """Neurons a poke may reach within one tick: (value neurons, error neurons), read off
    the networkx graph, not the netlist under test.

    An error neuron of vertex ``V`` at position ``p`` speaks to its own value neuron
    (``V``, ``p``) and, through its synapses, to value neurons of ``V``'s parents in the
    graph (every position of each parent: the op decides which, the graph's edges bound
    it); with unit delays both read it in the value stage of the same tick. A value
    neuron's messages are read at the next tick. ``emitted`` tells whether the poked
    error neuron's messages of this tick differ from the untouched twin's; if they do
    not, nobody else may notice the poke.
    """
    if kind == "value":
        return {index}, set()
    if not emitted:
        return set(), {index}
    vertex, pos = net.where("error", index)
    values = {net.value_neuron(vertex, pos)}
    for parent in graph.predecessors(vertex):
        values |= {net.value_neuron(parent, q) for q in range(graph.nodes[parent]["size"])}
    return values, {index}


def _others_equal(graph, s1, s2, net, kind, index):
    emitted = False
    if kind == "error":
        D = s1.e_line.shape[0]
        comps = slice(net.e_comp_ptr[index], net.e_comp_ptr[index + 1])
        emitted = any(
            not np.array_equal(getattr(s1, line)[d, rows], getattr(s2, line)[d, rows])
            for line, rows in (("e_line", index), ("mu_line", index), ("g_line", comps)) for d in range(D)
        )
    values, errors = _reach(graph, net, kind, index, emitted)
    compartments = {c for i in errors for c in range(net.e_comp_ptr[i], net.e_comp_ptr[i + 1])}
    for names, allowed, what in ((VALUE_FIELDS, values, "value"), (ERROR_FIELDS, errors, "error"),
                                 (COMPARTMENT_FIELDS, compartments, "compartment")):
        for name in names:
            a, b = getattr(s1, name), getattr(s2, name)
            mask = np.ones(a.shape[0], bool)
            mask[list(allowed)] = False
            if not np.array_equal(a[mask], b[mask]):
                return f"{name} of a {what} neuron outside the light cone changed"
    return None


GRAPHS = {
    "mlp-post": lambda: mlp([3, 4, 3, 2], activation="tanh", convention="post"),
    "mlp-pre": lambda: mlp([3, 4, 3, 2], activation="tanh", convention="pre"),
    "cnn-max": lambda: cnn((1, 4, 4), channels=(2,), kernel_size=2, pool="max", pool_size=2, activation="tanh",
                           n_out=2, loss="mse"),
    "lstm-cells": lambda: gc.lstm_cells(2, hidden=2),
    "lstm-gates": lambda: gc.lstm_gates(2, hidden=2),
}


@pytest.mark.parametrize("rule", [StrictPC(alpha=0.1, eta=0.3, n=6), FixedPred(alpha=0.1, n=4),
                                  FaZIL(alpha=0.1, ticks=6), ZIL(alpha=0.1), IPC(alpha=0.1, gamma=0.3, ticks=6)])
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_light_cone_of_one_tick(rule, name):
    """Every field of every neuron's and compartment's own state poked in turn, on MLPs
    and on graphs with products, max-pooling and LSTM cells (whose shared weights change
    only at the end of a tick)."""
    g = GRAPHS[name]()
    if name == "lstm-gates" and isinstance(rule, (ZIL, FaZIL)):
        pytest.skip("Z-IL is not defined on the gate-level LSTM")
    _, x, y = gc.random_case(g, seed=7)
    for warmup in (1, 2):
        base = Simulator(g, seed=2)
        pres = base.present(x, y, rule)
        pres.advance(warmup)
        untouched = copy.deepcopy(pres)
        untouched.advance(1)
        net = base.netlist
        targets = [("value", j, j, f) for j in range(net.n_value) for f in VALUE_FIELDS]
        targets += [("error", i, i, f) for i in range(net.n_error) for f in ERROR_FIELDS]
        targets += [("error", int(net.c_err[c]), c, f) for c in range(net.n_compartments) for f in COMPARTMENT_FIELDS]
        for kind, neuron, row, field in targets:
            twin = copy.deepcopy(pres)
            _poke(getattr(twin.engine.state, field), row)  # own state changed, nothing emitted
            twin.advance(1)
            problem = _others_equal(g, twin.engine.state, untouched.engine.state, net, kind, neuron)
            assert problem is None, f"poking {field}[{row}] of {kind} neuron {neuron}: {problem}"


def test_light_cone_is_sensitive():
    """The same probe does see a change when it travels as a message (the control)."""
    rng = np.random.default_rng(7)
    g = mlp([3, 4, 2], activation="tanh")
    x, y = rng.normal(size=(1, 3)), rng.normal(size=(1, 2))
    pres = Simulator(g, seed=2).present(x, y, StrictPC(alpha=0.1, eta=0.3, n=6))
    pres.advance(1)
    untouched = copy.deepcopy(pres)
    untouched.advance(1)
    twin = copy.deepcopy(pres)
    engine = twin.engine
    j = engine.netlist.value_neuron("layer1", 0)
    slot = (engine.tick - 1) % engine.state.v_line.shape[0]
    engine.state.v_line[slot, j] += 0.5  # the message its error neuron will read
    engine.state.err_wake_own[engine.tick % engine.state.v_line.shape[0], engine.netlist.v_err[j]] = 1
    twin.advance(1)
    assert _others_equal(g, engine.state, untouched.engine.state, engine.netlist, "value", j) is not None
