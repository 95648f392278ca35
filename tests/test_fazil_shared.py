"""Fa-Z-IL on shared parameters: ``shared_updates="deferred"`` (the default) and
``"immediate"`` (Song et al.'s Algorithm 2 as written), on the event loop and the
reference, against backprop's SGD step (``neurosim.reference.backprop``, itself checked
against finite differences of an independent loss in ``test_reference_backprop.py``).

Which equals backprop (float64, 1e-12 relative):

==========================  ================  =================
graph                       deferred          immediate
==========================  ================  =================
RNN, loss at the last step  yes               no (1e-1)
cell-level LSTM             with ``feedback`` no (1e-1)
CNN (conv kernel)           yes               yes (same rule)
==========================  ================  =================

On the cell-level LSTM Song's detector fires late on the cell-state half of the last
state, whose backprop error is exactly 0 (the readout reads ``h`` only), so only the
corrected ``feedback`` detector gives backprop there. A conv kernel is read by the
neurons of one vertex, which all fire at the same step: nothing to defer.
"""

from __future__ import annotations

import pytest

import graph_cases as gc
from neurosim.engine import Simulator
from neurosim.reference.backprop import gradients
from neurosim.reference.rules import run_rule
from neurosim.rules import FaZIL

ALPHA = 0.05
GRAPHS = {
    "rnn-last": lambda: gc.rnn(3),
    "lstm-cells": lambda: gc.lstm_cells(3),
    "cnn-avg-tanh": lambda: gc.cnn("tanh", "avg"),
    "cnn-max-relu": lambda: gc.cnn("relu", "max", stride=2, padding=1),
}
# (graph, shared_updates, detector) -> equals backprop?
EXPECTED = {
    ("rnn-last", "deferred", "song"): True,
    ("rnn-last", "deferred", "feedback"): True,
    ("rnn-last", "immediate", "song"): False,
    ("rnn-last", "immediate", "feedback"): False,
    ("lstm-cells", "deferred", "song"): False,
    ("lstm-cells", "deferred", "feedback"): True,
    ("lstm-cells", "immediate", "song"): False,
    ("lstm-cells", "immediate", "feedback"): False,
    ("cnn-avg-tanh", "deferred", "song"): True,
    ("cnn-avg-tanh", "immediate", "song"): True,
    ("cnn-max-relu", "deferred", "song"): True,
    ("cnn-max-relu", "immediate", "song"): True,
}


def fazil_vs_backprop(name, shared_updates, detector, seed=3):
    """``(relative error against one SGD step, loop vs reference)`` of Fa-Z-IL's update."""
    graph = GRAPHS[name]()
    params, x, y = gc.random_case(graph, seed, batch=2)
    sgd = {n: -ALPHA * g for n, g in gradients(graph, params, x, y).items()}
    rule = FaZIL(alpha=ALPHA, shared_updates=shared_updates, detector=detector)
    ours = Simulator(graph, params).learn(x, y, rule)
    ref = run_rule(graph, params, x, y, rule)
    assert not ours.diverged and not ref.diverged
    assert ours.named(ours.firings) == ref.named(ref.firings)
    return gc.overall_error(ours.updates, sgd), gc.overall_error(ours.updates, ref.updates)


@pytest.mark.parametrize("name, shared_updates, detector", sorted(EXPECTED))
def test_which_sharing_equals_backprop(name, shared_updates, detector):
    err, loop_vs_ref = fazil_vs_backprop(name, shared_updates, detector)
    assert loop_vs_ref <= 1e-12
    if EXPECTED[name, shared_updates, detector]:
        assert err <= 1e-12
    else:
        assert err > 1e-2


def test_immediate_applies_a_shared_weight_when_phi_fires():
    """On the RNN the recurrent weight changes during the presentation (at the step its
    last vertex fires, before the presentation ends) only when ``"immediate"``."""
    graph = GRAPHS["rnn-last"]()
    params, x, y = gc.random_case(graph, 3, batch=2)
    n = 4  # trigger steps 0 (readout), 1..3 (h3, h2, h1)
    for shared_updates, changed_after_step_1 in (("immediate", True), ("deferred", False)):
        sim = Simulator(graph, params)
        pres = sim.present(x, y, FaZIL(alpha=ALPHA, shared_updates=shared_updates))
        pres.advance(2)  # steps 0 and 1: h3 fired at t = 1
        w_hh = sim.params["rnn.weight_hh"]
        assert (abs(w_hh - params["rnn.weight_hh"]).max() > 0) == changed_after_step_1
        pres.advance(n)
        assert pres.finished
