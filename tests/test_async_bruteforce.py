"""The brute-force asynchronous simulator (tests/async_bruteforce.py), validated against
independent references before any engine is compared with it:

- unit delays, no jitter: the synchronous event loop's parameter changes, to round-off,
  for every rule, over consecutive presentations (the synchronous limit of A1);
- delays of ``2 d - 1`` hops: the synchronous loop with integer delays ``d``;
- Z-IL equals backprop (clocked, and triggered at the error front, A8);
- the lock-step schedule: error neurons compute at even hops, value neurons at odd hops.
"""

from __future__ import annotations

import numpy as np
import pytest

from async_bruteforce import BruteForce
from neurosim.compile.compiler import compile_graph
from neurosim.engine import Simulator
from neurosim.engine.delays import DelayDistribution, from_ticks, synapse_delays
from neurosim.graph import mlp
from neurosim.params import init_params
from neurosim.reference.backprop import sgd_step
from neurosim.rules import IL, ZIL, FaZIL, FixedPred, StrictPC


def _rel(u: dict, r: dict) -> float:
    num = np.sqrt(sum(np.sum((u[k] - r[k]) ** 2) for k in r))
    return float(num / np.sqrt(sum(np.sum(r[k] ** 2) for k in r)))


RULES = [
    ZIL(alpha=0.1),
    IL(alpha=0.1, gamma=0.2, t_c=6),
    FaZIL(alpha=0.1, t_d=2, ticks=6),
    FaZIL(alpha=0.1, detector="feedback", ticks=6),
    StrictPC(alpha=0.1, eta=0.2, n=5),
    FixedPred(alpha=0.1),
]
NETS = [("post", "mse", "sigmoid"), ("pre", "mse", "tanh"), ("post", "ce", "tanh"), ("pre", "ce", "sigmoid")]


def _data(g, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = [g.nodes[v]["size"] for v in ("input", list(g)[-1])]
    x = rng.normal(size=(n, sizes[0]))
    if g.nodes[list(g)[-1]]["loss"] == "ce":
        y = np.eye(sizes[1])[rng.integers(0, sizes[1], n)]
    else:
        y = rng.normal(size=(n, sizes[1]))
    return x, y


@pytest.mark.parametrize("conv, loss, act", NETS)
@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.name}-{getattr(r, 'detector', '')}")
def test_unit_delays_reproduce_the_sync_loop(conv: str, loss: str, act: str, rule) -> None:
    g = mlp([3, 4, 3, 2], activation=act, convention=conv, loss=loss)
    p = init_params(g, 1)
    x, y = _data(g, 6)
    sim, bf = Simulator(g, p), BruteForce(g, p)
    for k in range(3):  # consecutive presentations: state carried over from one to the next
        r = sim.learn(x[2 * k: 2 * k + 2], y[2 * k: 2 * k + 2], rule)
        rb = bf.learn(x[2 * k: 2 * k + 2], y[2 * k: 2 * k + 2], rule)
        assert _rel(rb.updates, r.updates) < 1e-13
    assert _rel(bf.params(), sim.params) < 1e-14


HETERO_RULES = [  # phases long enough for the delayed waves to arrive
    ZIL(alpha=0.1),
    IL(alpha=0.1, gamma=0.2, t_c=8),
    FaZIL(alpha=0.1, t_d=2, ticks=9),
    FaZIL(alpha=0.1, detector="feedback", ticks=9),
    StrictPC(alpha=0.1, eta=0.2, n=7),
    FixedPred(alpha=0.1, n=6),
]


@pytest.mark.parametrize("rule", HETERO_RULES, ids=lambda r: f"{r.name}-{getattr(r, 'detector', '')}")
def test_delays_2d_minus_1_reproduce_sync_integer_delays(rule) -> None:
    g = mlp([3, 4, 3, 2], activation="tanh", convention="post", loss="mse")
    p = init_params(g, 2)
    x, y = _data(g, 6, 1)
    ticks = {"layer1": 2, "layer2": 3, "layer3": 1}
    hops = synapse_delays({v: from_ticks(d) for v, d in ticks.items()}, g, compile_graph(g))
    sim, bf = Simulator(g, p, delays=ticks, own_delay=2), BruteForce(g, p, delays=hops, own_delay=from_ticks(2))
    for k in range(3):
        r = sim.learn(x[2 * k: 2 * k + 2], y[2 * k: 2 * k + 2], rule)
        rb = bf.learn(x[2 * k: 2 * k + 2], y[2 * k: 2 * k + 2], rule)
        assert _rel(rb.updates, r.updates) < 1e-13


@pytest.mark.parametrize("conv, loss, act", NETS)
@pytest.mark.parametrize("trigger", ["clock", "front"])
def test_zil_equals_backprop(conv: str, loss: str, act: str, trigger: str) -> None:
    g = mlp([4, 5, 4, 3], activation=act, convention=conv, loss=loss)
    p = init_params(g, 3)
    x, y = _data(g, 3, 2)
    bp = sgd_step(g, p, x, y, 0.05)
    res = BruteForce(g, p).learn(x, y, ZIL(alpha=0.05), zil_trigger=trigger)
    assert _rel(res.updates, {k: bp[k] - p[k] for k in p}) < 1e-12
    # the front reaches layer k at learning step L - k (Song's C2)
    assert {key: t - res.learn0 for key, t in res.triggers.items()} == {
        (k, i): 2.0 * (3 - k) for k in (1, 2, 3) for i in range(g.nodes[f"layer{k}"]["size"])}


def test_lock_step_schedule() -> None:
    """Unit delays: errors compute at even hops, values at odd hops, commits at odd hops."""
    g = mlp([3, 4, 2], activation="tanh")
    bf = BruteForce(g, init_params(g, 0))
    x, y = _data(g, 1)
    res = bf.learn(x, y, FaZIL(alpha=0.1, ticks=5))
    rows = [r for r in bf.schedule if r[1] in ("compute", "commit")]
    assert rows
    for t, what, kind, _ in rows:
        parity = 0 if (what == "compute" and kind == "e") else 1
        assert t % 2 == parity, (t, what, kind)
    learned = [r for r in rows if r[0] >= res.learn0]
    assert max(r[0] for r in learned) <= res.learn0 + 2 * 4 + 1
    emits = [r for r in bf.schedule if r[1] == "emit"]
    assert all(arr == t + 1 for t, _, _, _, arr in emits)


def test_front_zil_exact_with_layer_uniform_delays() -> None:
    """A8's front stays ordered layer by layer when the synapses of one edge share a
    delay (own links alike) and each feedback message arrives before its synapse's
    change commits (delay <= the commit delay, A7): Z-IL is then backprop."""
    g = mlp([3, 4, 3, 2], activation="tanh", loss="mse")
    net = compile_graph(g)
    p = init_params(g, 1)
    x, y = _data(g, 2)
    want = {k: v - p[k] for k, v in sgd_step(g, p, x, y, 0.1).items()}
    short = synapse_delays({"layer1": 0.7, "layer2": 0.9, "layer3": 0.4}, g, net)
    assert _rel(BruteForce(g, p, delays=short, own_delay=1.3).learn(x, y, ZIL(alpha=0.1), "front").updates,
                want) < 1e-12
    long = synapse_delays({"layer1": 0.7, "layer2": 2.3, "layer3": 1.4}, g, net)
    slow = BruteForce(g, p, delays=long, own_delay=1.3)
    slow.timing.commit_delay = 3.0
    assert _rel(slow.learn(x, y, ZIL(alpha=0.1), "front").updates, want) < 1e-12
    # the same delays with the default commit delay: the feedback in flight meets a changed weight
    assert _rel(BruteForce(g, p, delays=long, own_delay=1.3).learn(x, y, ZIL(alpha=0.1), "front").updates,
                want) > 1e-3


@pytest.mark.parametrize("cv", [0.01, 0.3])
def test_front_zil_not_exact_when_the_front_is_ragged(cv: float) -> None:
    """Per-synapse delays: a value neuron computes when the first of its children's
    errors arrives, and its error neuron triggers on that partial sum."""
    g = mlp([3, 4, 3, 2], activation="tanh", loss="mse")
    p = init_params(g, 1)
    x, y = _data(g, 2)
    want = {k: v - p[k] for k, v in sgd_step(g, p, x, y, 0.1).items()}
    d = synapse_delays(DelayDistribution("gamma", 0.5, cv, 5), g, compile_graph(g))
    assert _rel(BruteForce(g, p, delays=d).learn(x, y, ZIL(alpha=0.1), "front").updates, want) > 1e-3


def test_overtaken_messages_are_discarded() -> None:
    """A3 with heavy jitter: some messages arrive after a later one on their link; each
    inbox ends holding the highest emission index that arrived."""
    g = mlp([2, 3, 2], activation="tanh")
    bf = BruteForce(g, init_params(g, 0), sigma=0.8, jitter_seed=1)
    x, y = _data(g, 1)
    bf.learn(x, y, FaZIL(alpha=0.1, ticks=8))
    emits = [r for r in bf.schedule if r[1] == "emit"]
    arrived: dict[int, list[tuple[float, int]]] = {}
    for _, _, link, index, arrival in emits:
        arrived.setdefault(link, []).append((arrival, index))
    overtaken = sum(1 for msgs in arrived.values() for (a1, i1) in msgs for (a2, i2) in msgs if i2 > i1 and a2 < a1)
    assert overtaken > 0
    S = len(bf.syn)
    for e in bf.error.values():
        for s, box in e["x_in"].items():
            seen = [i for a, i in arrived.get(2 * s, []) if a <= bf.t_end]
            if seen:
                assert box[0] == max(seen)
        seen = [i for a, i in arrived.get(2 * S + 2 * e["n"], []) if a <= bf.t_end]
        if seen:
            assert e["v_in"][0] >= max(seen)  # the teacher's clamp may be later still
