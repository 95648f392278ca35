"""The asynchronous mode (``Simulator(timing=Async(...))``, clauses A1..A9 of ``docs/async.md``)
against independent expectations: the synchronous mode in the lock-step limit, and the
brute-force event simulator ``tests/async_bruteforce.py`` with float delays and jitter."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from neurosim.engine import Async, Simulator
from neurosim.engine.delays import from_ticks

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("sync_identity", REPO / "benchmarks" / "sync_identity.py")
sync_identity = importlib.util.module_from_spec(_spec)
sys.modules["sync_identity"] = sync_identity  # dataclasses look their module up
_spec.loader.exec_module(sync_identity)


def _async_timing(sim: dict) -> tuple[dict, Async]:
    """The synchronous options of a case, and the asynchronous timing of the same network:
    a delay of ``d`` ticks is ``2 d - 1`` hops (``docs/async.md``)."""
    sim = dict(sim)
    delays, own = sim.pop("delays", 1), sim.pop("own_delay", 1)
    sim.pop("threads", None)  # the event driver is serial; sync's threads give sync's bits
    hops = {v: from_ticks(d) for v, d in delays.items()} if isinstance(delays, dict) else from_ticks(delays)
    return sim, Async(delays=hops, own_delay=from_ticks(own))


def _run(case, timing: Async | None) -> dict[str, np.ndarray]:
    """Every number a case produces (as ``sync_identity.run_case``, without monitors)."""
    graph = case.graph()
    opts = dict(case.sim)
    if timing is not None:
        opts, timing = _async_timing(case.sim)
    sim = Simulator(graph, seed=7, timing=timing, **opts)
    learn = {k: v for k, v in case.learn.items() if k == "chunk_ticks"}
    rng = np.random.default_rng(11)
    out: dict[str, np.ndarray] = {}
    for k in range(sync_identity.PRESENTATIONS):
        x, y = sync_identity._batch(graph, rng, case.batch, sim.dtype)
        r = sim.learn(x, y, case.rule, **learn)
        out[f"p{k}.energy"] = r.energy
        out[f"p{k}.firings"] = r.firings
        out[f"p{k}.applied"] = np.where(r.learned, r.applied, 0).astype(r.applied.dtype)
        out[f"p{k}.learned"] = r.learned
        out[f"p{k}.diverged_at"] = np.array(-1 if r.diverged_at is None else r.diverged_at, np.int64)
        out[f"p{k}.steps"] = np.array(r.steps, np.int64)
        for v, e in r.eps_at_trigger.items():
            out[f"p{k}.eps_at_trigger.{v}"] = e
    out["theta"] = sim.theta.copy()
    x, _ = sync_identity._batch(graph, rng, case.batch, sim.dtype)
    pred = sim.predict(x)
    for v, arr in (pred.items() if isinstance(pred, dict) else [("out", pred)]):
        out[f"predict.{v}"] = arr
    return out


LOCK_STEP = [c for c in sync_identity._cases() if not c.learn.get("all_active") and not c.learn.get("reverse")]


@pytest.mark.parametrize("case", LOCK_STEP, ids=lambda c: c.name)
def test_lock_step_limit_is_the_sync_mode(case) -> None:
    """Unit delays (and sync's integer delays ``d`` as ``2 d - 1`` hops), no jitter,
    event-driven clocks of latency 0: the asynchronous mode gives the synchronous mode's
    bits, for every rule, on MLPs, CNNs, RNNs, LSTMs and DAGs of every op, in float64
    and float32, chunked or not, across consecutive presentations."""
    assert sync_identity.compare(_run(case, None), _run(case, Async())) == []
