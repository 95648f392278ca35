"""Monitors record inside the event loop without changing it; the timeline follows the schedule."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest

from neurosim.engine import Simulator
from neurosim.errors import ConfigError
from neurosim.graph import mlp, trigger_steps
from neurosim.monitors import Monitor
from neurosim.rules import IL, IPC, ZIL, FaZIL, FixedPred, StrictPC

RULES = [ZIL(alpha=0.1), FaZIL(alpha=0.1), FaZIL(alpha=0.1, detector="feedback"), IL(alpha=0.1, t_c=5),
         StrictPC(alpha=0.1, n=6), FixedPred(alpha=0.1), IPC(alpha=0.1, gamma=0.3, ticks=6)]


def _problem(seed: int = 0, batch: int = 2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, 3))
    y = np.eye(2)[rng.integers(0, 2, batch)]
    return x, y


def _rnn(steps: int = 3) -> nx.DiGraph:
    """An Elman RNN unrolled in time: W_ih and W_hh are shared across the steps."""
    g = nx.DiGraph()
    for t in range(1, steps + 1):
        g.add_node(f"x{t}", op="input", size=3)
        inputs = [f"x{t}"] + ([f"h{t - 1}"] if t > 1 else [])
        weights = {f"x{t}": "rnn.weight_ih"} | ({f"h{t - 1}": "rnn.weight_hh"} if t > 1 else {})
        g.add_node(f"h{t}", op="dense", size=4, activation="tanh", convention="post", inputs=inputs,
                   weights=weights, biases=["rnn.bias_ih", "rnn.bias_hh"])
        g.add_edges_from((p, f"h{t}") for p in inputs)
    g.add_node("out", op="dense", size=2, activation="linear", convention="post", loss="mse")
    g.add_edge(f"h{steps}", "out")
    return g


def _run(graph, rule, x, y, monitor=None, presentations=2):
    sim = Simulator(graph, seed=1)
    if monitor is not None:
        monitor.attach(sim)
    results = [sim.learn(x, y, rule) for _ in range(presentations)]
    return sim, results


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.name}-{getattr(r, 'detector', '')}")
def test_monitors_do_not_change_the_dynamics(rule):
    """Every monitor on, buffers small enough to flush many times: the same bits."""
    g = mlp([3, 5, 4, 2], activation="relu", convention="pre")
    x, y = _problem()
    plain, res_a = _run(g, rule, x, y)
    mon = Monitor(events=True, plasticity=True, firings=True, values="all", errors="all", capacity=7)
    watched, res_b = _run(g, rule, x, y, mon)
    for k in plain.params:
        assert np.array_equal(plain.params[k], watched.params[k])
    for a, b in zip(res_a, res_b):
        assert np.array_equal(a.energy, b.energy, equal_nan=True)
        assert np.array_equal(a.firings, b.firings)
    assert len(mon.table("events")["tick"]) > 0 and len(mon.table("traces")["tick"]) > 0


def test_zil_timeline_ticks_equal_the_schedule():
    """Z-IL: every change of vertex k's parameters happens at step t = l_k, caused by the schedule."""
    g = mlp([3, 5, 4, 2])
    x, y = _problem()
    mon = Monitor(plasticity=True)
    sim, results = _run(g, ZIL(alpha=0.1), x, y, mon, presentations=1)
    pl = mon.table("plasticity")
    steps = trigger_steps(g)
    vertices = mon.vertices
    assert set(pl["cause"].tolist()) == {0}
    for vertex in ("layer1", "layer2", "layer3"):
        rows = pl["vertex"] == vertices.index(vertex)
        assert rows.any() and set(pl["step"][rows].tolist()) == {steps[vertex]}
    # the timeline's changes add up to the update the presentation applied
    net = sim.netlist
    total = np.zeros(net.n_theta)
    np.add.at(total, pl["param"], pl["delta"])
    for name, (off, shape) in net.param_index.items():
        np.testing.assert_allclose(total[off : off + int(np.prod(shape))].reshape(shape),
                                   results[0].updates[name], rtol=1e-12, atol=1e-15)


def test_fazil_and_il_timeline_causes():
    g = mlp([3, 5, 2], activation="sigmoid")
    x, y = _problem()
    fa = Monitor(plasticity=True, firings=True)
    _run(g, FaZIL(alpha=0.1), x, y, fa, presentations=1)
    pl = fa.table("plasticity")
    assert set(pl["cause"].tolist()) == {1}
    steps = trigger_steps(g)
    for k, vertex in enumerate(fa.vertices):
        rows = pl["vertex"] == k
        if rows.any():
            assert set(pl["step"][rows].tolist()) == {steps[vertex]}
    assert not fa.table("firings")["late"].any()
    il = Monitor(plasticity=True)
    _run(g, IL(alpha=0.1, t_c=7), x, y, il, presentations=1)
    assert set(il.table("plasticity")["step"].tolist()) == {7}
    assert set(il.table("plasticity")["cause"].tolist()) == {2}


def test_ipc_timeline_every_synapse_at_every_step():
    """iPC: every parameter changes at every step ``0 .. ticks-1``, caused by the schedule,
    and the timeline adds up to the presentation's update."""
    g = mlp([3, 5, 4, 2], activation="tanh")
    x, y = _problem()
    mon = Monitor(plasticity=True)
    sim, results = _run(g, IPC(alpha=0.1, gamma=0.3, ticks=5), x, y, mon, presentations=1)
    pl = mon.table("plasticity")
    net = sim.netlist
    assert set(pl["cause"].tolist()) == {0}
    for t in range(5):
        assert sorted(pl["param"][pl["step"] == t].tolist()) == list(range(net.n_theta))
    total = np.zeros(net.n_theta)
    np.add.at(total, pl["param"], pl["delta"])
    for name, (off, shape) in net.param_index.items():
        np.testing.assert_allclose(total[off : off + int(np.prod(shape))].reshape(shape),
                                   results[0].updates[name], rtol=1e-12, atol=1e-15)


def test_shared_recurrent_weights_apply_after_their_last_trigger():
    """Z-IL on an RNN: W_hh (read by h2, h3) and W_ih (h1..h3) are applied, as their deferred
    sums, at the end of their last trigger step (cause 3)."""
    g = _rnn(3)
    x = {f"x{t}": np.random.default_rng(t).normal(size=(2, 3)) for t in (1, 2, 3)}
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    mon = Monitor(plasticity=True)
    sim = Simulator(g, seed=1)
    mon.attach(sim)
    sim.learn(x, y, ZIL(alpha=0.1))
    pl = mon.table("plasticity")
    net = sim.netlist
    deferred = pl["cause"] == 3
    off_hh, shape_hh = net.param_index["rnn.weight_hh"]
    off_ih, shape_ih = net.param_index["rnn.weight_ih"]
    hh = deferred & (pl["param"] >= off_hh) & (pl["param"] < off_hh + np.prod(shape_hh))
    ih = deferred & (pl["param"] >= off_ih) & (pl["param"] < off_ih + np.prod(shape_ih))
    steps = trigger_steps(g)
    assert set(pl["step"][hh].tolist()) == {max(steps["h2"], steps["h3"])}
    assert set(pl["step"][ih].tolist()) == {steps["h1"]}
    assert (pl["neuron"][deferred] == -1).all()


def test_events_match_the_traced_state_changes():
    """A value neuron emits exactly at the ticks its traced belief changed (two records
    of one run, made by different code paths)."""
    g = mlp([3, 4, 2])
    x, y = _problem(batch=1)
    mon = Monitor(events=True, values=["layer1"])
    _run(g, StrictPC(alpha=0.1, eta=0.2, n=5), x, y, mon, presentations=1)
    tr, ev = mon.table("traces"), mon.table("events")
    layer1 = mon.vertices.index("layer1")
    v = np.stack([tr[f"v[layer1:{p}]"] for p in range(4)], axis=1)
    for row in range(1, len(tr["tick"])):
        changed = set(np.flatnonzero(v[row] != v[row - 1]).tolist())
        at = (ev["tick"] == tr["tick"][row]) & (ev["kind"] == 0) & (ev["vertex"] == layer1)
        assert set(ev["pos"][at].tolist()) == changed


def test_saved_tables_read_back_with_numpy(tmp_path):
    g = mlp([3, 4, 2])
    x, y = _problem()
    mon = Monitor(events=True, plasticity=True, errors={"layer2": [0, 1]}, firings=True)
    _run(g, FaZIL(alpha=0.1), x, y, mon, presentations=1)
    out = mon.save(tmp_path / "rec", config={"rule": "fazil"})
    pl = np.genfromtxt(out / "plasticity.csv", delimiter=",", names=True)
    np.testing.assert_array_equal(pl["param"], mon.table("plasticity")["param"])
    np.testing.assert_allclose(pl["delta"], mon.table("plasticity")["delta"], rtol=1e-15)
    traces = np.genfromtxt(out / "traces.csv", delimiter=",", names=True)
    assert len(traces) == len(mon.table("traces")["tick"])
    meta = json.loads((out / "config.json").read_text())
    assert meta["run"] == {"rule": "fazil"} and meta["recording"]["vertices"] == mon.vertices
    with pytest.raises(ConfigError, match="already exists"):
        mon.save(out)


def test_bad_monitor_requests_are_named():
    sim = Simulator(mlp([3, 4, 2]), seed=0)
    with pytest.raises(ConfigError, match="'nope'"):
        Monitor(values=["nope"]).attach(sim)
    with pytest.raises(ConfigError, match="input"):
        Monitor(errors=["input"]).attach(sim)
    with pytest.raises(ConfigError, match="positions 0..3"):
        Monitor(errors={"layer1": [4]}).attach(sim)
    with pytest.raises(ConfigError, match="capacity"):
        Monitor(capacity=0)
    with pytest.raises(ConfigError, match="threads=1"):
        Monitor().attach(Simulator(mlp([3, 4, 2]), seed=0, threads=2))
    with pytest.raises(ConfigError, match="unknown monitor table"):
        Monitor().attach(sim).table("nope")
