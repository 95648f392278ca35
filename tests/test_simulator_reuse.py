"""A reused :class:`Simulator` starts every presentation at the forward equilibrium of
its current parameters, whatever ran before.

One simulator goes through a random sequence of ``learn`` calls with different rules,
``set_params``, ``predict``, presentations abandoned half-way and batch-size changes;
every ``learn`` must give the same bits (updates, energies, firings, divergence) as a
fresh simulator built with the parameters of that moment.
"""

from __future__ import annotations

import numpy as np
import pytest

import graph_cases as gc
from neurosim.engine import Simulator
from neurosim.graph import mlp
from neurosim.rules import IL, IPC, ZIL, FaZIL, FixedPred, StrictPC

RULES = [ZIL(alpha=0.1), ZIL(alpha=0.1, gamma=0.5), ZIL(alpha=0.1, init_noise=0.2), FaZIL(alpha=0.1),
         FaZIL(alpha=0.1, ticks=7, detector="feedback"), IL(alpha=0.1, gamma=0.3, t_c=4),
         StrictPC(alpha=0.1, eta=0.3, n=3), FixedPred(alpha=0.1), IPC(alpha=0.1, gamma=0.3, ticks=4)]
GRAPHS = {
    "mlp-pre-relu": lambda: mlp([4, 6, 6, 3], activation="relu", convention="pre", loss="mse"),
    "rnn-last": lambda: gc.rnn(3),
    "cnn-max-relu": lambda: gc.cnn("relu", "max", stride=2, padding=1),
}


def _same(a, b):
    assert a.diverged == b.diverged and a.diverged_at == b.diverged_at and a.steps == b.steps
    np.testing.assert_array_equal(a.energy, b.energy)
    np.testing.assert_array_equal(a.firings, b.firings)
    for name in b.updates:
        np.testing.assert_array_equal(a.updates[name], b.updates[name])


@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize("delays", [1, 2])
def test_a_reused_simulator_gives_the_bits_of_a_fresh_one(name, delays):
    graph = GRAPHS[name]()
    rng = np.random.default_rng(len(name) + delays)
    pool = [gc.random_case(graph, s, batch=3)[0] for s in range(3)]
    data = [gc.random_case(graph, 10 + s, batch=b)[1:] for s, b in enumerate((3, 3, 1))]
    sim = Simulator(graph, pool[0], delays=delays)
    learned = 0
    # the reported sequence first: learn Z-IL, set the parameters back, learn again
    ops = [3, 0, 3] + list(rng.integers(0, 5, size=14))
    for k, op in enumerate(ops):
        x, y = data[0] if k < 3 else data[rng.integers(0, len(data))]
        if op == 0:
            sim.set_params(pool[0 if k < 3 else rng.integers(0, 3)])
        elif op == 1:
            sim.predict(x)
        elif op == 2:  # a presentation abandoned half-way
            pres = sim.present(x, y, RULES[rng.integers(0, len(RULES))])
            pres.advance(int(rng.integers(1, 3)))
        else:
            rule = RULES[0 if k < 3 else rng.integers(0, len(RULES))]
            fresh = Simulator(graph, sim.params, delays=delays).learn(x, y, rule)
            _same(sim.learn(x, y, rule), fresh)
            learned += 1
    assert learned >= 5
