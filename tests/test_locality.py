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

from neurosim.engine import Simulator
from neurosim.graph import mlp
from neurosim.rules import FaZIL, FixedPred, StrictPC, ZIL

VALUE_FIELDS = ("v", "vhat")
ERROR_FIELDS = ("a", "mu", "eps", "g")


def _reach(net, kind, index, emitted):
    """Neurons a poke may reach within one tick: (value neurons, error neurons).

    ``emitted`` tells whether the poked error neuron's messages of this tick differ
    from the untouched twin's; if they do not, nobody else may notice the poke.
    """
    if kind == "value":
        return {index}, set()
    if not emitted:
        return set(), {index}
    parents = {int(net.s_pre[s]) for s in range(net.in_ptr[index], net.in_ptr[index + 1]) if net.s_delay[s] == 1}
    own = {int(net.e_value[index])} if net.own_delay[index] == 1 else set()
    return parents | own, {index}


def _others_equal(s1, s2, net, kind, index):
    emitted = False
    if kind == "error":
        D = s1.e_line.shape[0]
        emitted = any(
            not np.array_equal(getattr(s1, line)[d, index], getattr(s2, line)[d, index])
            for line in ("e_line", "mu_line", "g_line") for d in range(D)
        )
    values, errors = _reach(net, kind, index, emitted)
    for names, allowed, what in ((VALUE_FIELDS, values, "value"), (ERROR_FIELDS, errors, "error")):
        for name in names:
            a, b = getattr(s1, name), getattr(s2, name)
            mask = np.ones(a.shape[0], bool)
            mask[list(allowed)] = False
            if not np.array_equal(a[mask], b[mask]):
                return f"{name} of a {what} neuron outside the light cone changed"
    return None


@pytest.mark.parametrize("rule", [StrictPC(alpha=0.1, eta=0.3, n=6), FixedPred(alpha=0.1, n=4),
                                  FaZIL(alpha=0.1, ticks=6), ZIL(alpha=0.1)])
@pytest.mark.parametrize("convention", ["post", "pre"])
def test_light_cone_of_one_tick(rule, convention):
    rng = np.random.default_rng(7)
    g = mlp([3, 4, 3, 2], activation="tanh", convention=convention)
    x, y = rng.normal(size=(2, 3)), rng.normal(size=(2, 2))
    for warmup in (1, 2):
        base = Simulator(g, seed=2)
        pres = base.present(x, y, rule)
        pres.advance(warmup)
        untouched = copy.deepcopy(pres)
        untouched.advance(1)
        n_v, n_e = base.state.v.shape[0], base.state.eps.shape[0]
        targets = [("value", j, f) for j in range(n_v) for f in VALUE_FIELDS]
        targets += [("error", i, f) for i in range(n_e) for f in ERROR_FIELDS]
        for kind, index, field in targets:
            twin = copy.deepcopy(pres)
            getattr(twin.sim.state, field)[index] += 0.5  # own state changed, nothing emitted
            twin.advance(1)
            problem = _others_equal(twin.sim.state, untouched.sim.state, base.netlist, kind, index)
            assert problem is None, f"poking {field} of {kind} neuron {index}: {problem}"


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
    j = twin.sim.netlist.value_neuron("layer1", 0)
    slot = (twin.sim.tick - 1) % twin.sim.state.v_line.shape[0]
    twin.sim.state.v_line[slot, j] += 0.5  # the message its error neuron will read
    twin.sim.state.err_wake_own[twin.sim.tick % twin.sim.state.v_line.shape[0], twin.sim.netlist.v_err[j]] = 1
    twin.advance(1)
    assert _others_equal(twin.sim.state, untouched.sim.state, twin.sim.netlist, "value", j) is not None
