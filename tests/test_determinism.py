"""Reproducibility: the same seed gives the same bits, however the run is chunked."""

import numpy as np
import pytest

from exact_backprop import rel_err
from neurosim.engine import Simulator
from neurosim.graph import mlp
from neurosim.params import init_params
from neurosim.rules import IL, IPC, ZIL, FaZIL, FixedPred, StrictPC

RULES = [IL(alpha=0.1, gamma=0.3, t_c=9), ZIL(alpha=0.1), FaZIL(alpha=0.1, t_d=2, ticks=7),
         StrictPC(alpha=0.1, eta=0.4, n=8), FixedPred(alpha=0.1), IPC(alpha=0.1, gamma=0.3, ticks=9)]


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(4, 5)), rng.normal(size=(4, 3))


def _train(rule, chunk, seed=3):
    g = mlp([5, 6, 4, 3], activation="tanh", convention="pre")
    sim = Simulator(g, seed=seed)
    for k in range(3):
        x, y = _data(k)
        sim.learn(x, y, rule, chunk_ticks=chunk)
    return np.concatenate([v.ravel() for _, v in sorted(sim.params.items())])


def test_same_seed_same_parameters():
    g = mlp([5, 6, 3])
    a, b, c = init_params(g, seed=11), init_params(g, seed=11), init_params(g, seed=12)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["layer1.weight"], c["layer1.weight"])


@pytest.mark.parametrize("rule", RULES)
def test_same_seed_same_bits_whatever_the_chunking(rule):
    whole = _train(rule, None)
    assert np.array_equal(whole, _train(rule, None))
    for chunk in (1, 2, 5):
        assert np.array_equal(whole, _train(rule, chunk)), chunk


def test_minibatch_update_is_the_sum_of_its_samples():
    g = mlp([5, 6, 4, 3], activation="sigmoid")
    x, y = _data(1)
    batch = Simulator(g, seed=2).learn(x, y, ZIL(alpha=0.1)).updates
    single = [Simulator(g, seed=2).learn(x[i : i + 1], y[i : i + 1], ZIL(alpha=0.1)).updates for i in range(4)]
    for name in batch:
        assert rel_err(batch[name], sum(s[name] for s in single)) <= 1e-12
