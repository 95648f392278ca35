"""Parallel delivery: any number of threads gives the serial run's bits."""

import numba
import numpy as np
import pytest

from neurosim.engine import Simulator
from neurosim.engine.driver import run_ticks_parallel
from neurosim.graph import mlp
from neurosim.rules import IL, IPC, ZIL, FaZIL, FixedPred, StrictPC

THREADS = [t for t in (2, 3, 4) if t <= numba.config.NUMBA_NUM_THREADS]


def _run(rule, threads, convention, loss):
    rng = np.random.default_rng(5)
    g = mlp([6, 9, 7, 4], activation="tanh", convention=convention, loss=loss)
    sim = Simulator(g, seed=1, threads=threads)
    energies = []
    for _ in range(3):
        x = rng.normal(size=(3, 6))
        y = np.eye(4)[rng.integers(0, 4, 3)] if loss == "ce" else rng.normal(size=(3, 4))
        res = sim.learn(x, y, rule)
        energies.append(res.energy)
    flat = np.concatenate([v.ravel() for _, v in sorted(sim.params.items())])
    return flat, np.concatenate(energies), res.firings


@pytest.mark.skipif(not THREADS, reason="numba has a single thread here")
@pytest.mark.parametrize("rule", [ZIL(alpha=0.1), FaZIL(alpha=0.1, t_d=2, ticks=6), IL(alpha=0.1, gamma=0.3, t_c=7),
                                  StrictPC(alpha=0.1, eta=0.3, n=6), FixedPred(alpha=0.1),
                                  IPC(alpha=0.1, gamma=0.3, ticks=6)])
@pytest.mark.parametrize("convention, loss", [("post", "mse"), ("pre", "ce")])
def test_parallel_equals_serial(rule, convention, loss):
    serial = _run(rule, 1, convention, loss)
    for threads in THREADS:
        parallel = _run(rule, threads, convention, loss)
        for a, b in zip(serial, parallel):
            assert np.array_equal(a, b, equal_nan=True), threads
    assert run_ticks_parallel.signatures  # the parallel entry point did run


def test_thread_count_is_checked():
    from neurosim.errors import ConfigError

    with pytest.raises(ConfigError, match="threads"):
        Simulator(mlp([2, 2]), threads=0)
