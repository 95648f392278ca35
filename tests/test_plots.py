"""neurosim.plots draws a Monitor's tables: each figure holds exactly the recorded data."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from neurosim import plots
from neurosim.engine import Simulator
from neurosim.errors import DataError
from neurosim.graph import mlp, rnn
from neurosim.monitors import Monitor
from neurosim.rules import ZIL, FaZIL


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def run() -> SimpleNamespace:
    """One Fa-Z-IL presentation of two samples on a sigmoid net, every monitor on."""
    sim = Simulator(mlp([4, 3, 3, 2], convention="pre"), seed=0)
    mon = Monitor(events=True, plasticity=True, firings=True, errors="all", values=["layer1"]).attach(sim)
    rng = np.random.default_rng(0)
    result = sim.learn(rng.random((2, 4)), rng.random((2, 2)), FaZIL(alpha=0.1, ticks=6))
    return SimpleNamespace(mon=mon, result=result, vertices=mon.vertices)


def _points(ax) -> list[tuple[int, int]]:
    return sorted(tuple(p) for c in ax.collections for p in np.asarray(c.get_offsets()).astype(int).tolist())


def test_energy_is_the_learn_result_energy(run):
    ax = plots.plot_energy(run.mon.table("traces"))
    np.testing.assert_allclose(ax.lines[0].get_ydata(), run.result.energy, rtol=1e-14)
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), np.arange(6))
    # against tick: the prediction phase comes first, then the same learning curve
    traces = run.mon.table("traces")
    ax = plots.plot_energy(traces, x="tick")
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), traces["tick"])
    np.testing.assert_allclose(ax.lines[0].get_ydata()[traces["step"] >= 0], run.result.energy, rtol=1e-14)


def test_error_wave_reaches_layer_l_at_step_l(run, tmp_path):
    wave, neuron_vertex = plots.error_wave(run.mon.table("traces"), run.vertices)
    assert wave.shape == (6, 3 + 3 + 2)
    np.testing.assert_array_equal(neuron_vertex, [1, 1, 1, 2, 2, 2, 3, 3])
    traces = run.mon.table("traces")
    learning = traces["step"] >= 0
    np.testing.assert_array_equal(wave[:, 0], np.abs(traces["eps[layer1:0]"][learning]))
    lane1, _ = plots.error_wave(traces, run.vertices, lane=1)
    np.testing.assert_array_equal(lane1[:, 7], np.abs(traces["eps[layer3:1]@1"][learning]))
    # layer1 (l = 2), layer2 (l = 1), layer3 (l = 0): first nonzero |eps| exactly at step l
    first = {run.vertices[k]: int(np.argmax(np.any(wave[:, neuron_vertex == k] > 0, axis=1))) for k in (1, 2, 3)}
    assert first == {"layer1": 2, "layer2": 1, "layer3": 0}
    assert all(np.all(wave[:first[run.vertices[k]], neuron_vertex == k] == 0) for k in (1, 2, 3))

    ax = plots.plot_error_wave(wave, neuron_vertex, run.vertices)
    np.testing.assert_array_equal(ax.images[0].get_array(), np.maximum(wave, wave.max() * 1e-12))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["layer1", "layer2", "layer3"]
    ax.figure.savefig(tmp_path / "wave.png")
    gif = plots.save_error_wave_gif(wave, neuron_vertex, run.vertices, tmp_path / "w.gif")
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == len(wave)


def test_raster_draws_one_point_per_event(run, tmp_path):
    events = run.mon.table("events")
    ax = plots.plot_raster(events, run.vertices)
    drawn = np.concatenate([np.asarray(c.get_offsets()) for c in ax.collections])
    assert len(drawn) == len(events["tick"]) > 0
    np.testing.assert_array_equal(np.sort(drawn[:, 0]), np.sort(events["tick"]))
    # one scatter per (vertex, kind) recorded; rows stack the vertices: layer1 0-2, layer2 3-5, layer3 6-7
    assert sorted(c.get_label() for c in ax.collections) == sorted(
        {f"{run.vertices[v]} {plots.KINDS[k][0]}" for v, k in zip(events["vertex"], events["kind"])})
    np.testing.assert_array_equal(np.sort(drawn[:, 1]), np.sort(np.array([0, 0, 3, 6])[events["vertex"]] + events["pos"]))
    assert set(events["kind"].tolist()) == {0, 1, 2}
    # the dashed line: learning step 0
    (mark,) = ax.lines
    assert mark.get_xdata()[0] == events["tick"][events["step"] == 0][0]
    ax.figure.savefig(tmp_path / "raster.png")
    assert (tmp_path / "raster.png").stat().st_size > 0


def test_update_timing_sigmoid_fazil_fires_at_l(run, tmp_path):
    ax = plots.plot_update_timing(run.mon.table("plasticity"), run.vertices)
    (scatter,) = ax.collections  # one cause: phi
    assert scatter.get_label() == plots.CAUSES[1]
    # sigmoid net: each vertex's weights change at its own step l only (3 - index)
    assert _points(ax) == [(0, 3), (1, 2), (2, 1)]
    assert [t.get_text() for t in ax.get_yticklabels()] == run.vertices
    ax.figure.savefig(tmp_path / "timing.png")


def test_update_timing_marker_area_follows_delta(run):
    pl = run.mon.table("plasticity")
    ax = plots.plot_update_timing(pl, run.vertices)
    sums = {int(s): np.abs(pl["delta"][pl["step"] == s]).sum() for s in (0, 1, 2)}
    top = max(sums.values())
    order = np.argsort(np.asarray(ax.collections[0].get_offsets())[:, 0])
    np.testing.assert_allclose(ax.collections[0].get_sizes()[order], [15 + 85 * sums[s] / top for s in (0, 1, 2)])
    flat = plots.plot_update_timing(pl, run.vertices, size_by_delta=False)
    assert set(flat.collections[0].get_sizes().tolist()) == {40.0}


def test_update_timing_zil_rnn_shows_deferred_sums():
    sim = Simulator(rnn(3, 4, 2, steps=3, loss="mse"), seed=1)
    mon = Monitor(plasticity=True).attach(sim)
    x = {f"x{t}": np.random.default_rng(t).normal(size=(2, 3)) for t in (1, 2, 3)}
    sim.learn(x, np.array([[1.0, 0.0], [0.0, 1.0]]), ZIL(alpha=0.1))
    pl = mon.table("plasticity")
    assert np.any(pl["cause"] == 3)
    ax = plots.plot_update_timing(pl, mon.vertices)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == mon.vertices + [plots.DEFERRED_LABEL]
    by_cause = {c.get_label(): sorted(map(tuple, np.asarray(c.get_offsets()).astype(int).tolist()))
                for c in ax.collections}
    deferred_row = len(mon.vertices)
    expected = sorted({(int(s), deferred_row) for s in pl["step"][pl["cause"] == 3]})
    assert by_cause[plots.CAUSES[3]] == expected
    # Z-IL's schedule: out (l = 0), h3 (1), h2 (2), h1 (3)
    assert by_cause[plots.CAUSES[0]] == [(0, 6), (1, 5), (2, 3), (3, 1)]


def test_traces(run):
    traces = run.mon.table("traces")
    ax = plots.plot_traces(traces, names=["v[layer1:0]", "eps[layer2:1]@1"])
    assert [line.get_label() for line in ax.lines[:2]] == ["v[layer1:0]", "eps[layer2:1]@1"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), traces["tick"])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), traces["eps[layer2:1]@1"])
    ax = plots.plot_traces(traces, names=["mu[layer3:0]"], x="step")
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), np.arange(6))
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), traces["mu[layer3:0]"][traces["step"] >= 0])
    everything = plots.plot_traces(traces)
    states = [c for c in traces if c not in ("tick", "step", "energy")]
    assert [line.get_label() for line in everything.lines[:-1]] == states  # the last line marks step 0


def test_dataframe_tables(run):
    pd = pytest.importorskip("pandas")
    ax = plots.plot_energy(run.mon.frame("traces"))
    np.testing.assert_allclose(ax.lines[0].get_ydata(), run.result.energy, rtol=1e-14)
    ax = plots.plot_raster(run.mon.frame("events"), run.vertices)
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(run.mon.frame("events"))
    assert isinstance(run.mon.frame("events"), pd.DataFrame)


def test_gradient_match():
    table = {"n": np.array([1, 2, 3, 1, 2, 3]), "step_size": np.array([0.1] * 3 + [1.0] * 3),
             "relative_error": np.array([0.9, 0.5, 0.2, 0.5, 0.0, 0.0]), "angle": np.arange(6.0)}
    ax = plots.plot_gradient_match(table, "relative_error")
    assert len(ax.lines) == 2
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [0.5, 1e-17, 1e-17])
    ax = plots.plot_gradient_match(table, "angle")
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [0, 1, 2])
    with pytest.raises(DataError, match="metric"):
        plots.plot_gradient_match(table, "cosine")


def test_bad_tables(run):
    with pytest.raises(DataError, match="no column"):
        plots.plot_energy({"tick": [0, 1], "step": [0, 1]})
    with pytest.raises(DataError, match="different lengths"):
        plots.plot_energy({"tick": [0, 1], "step": [0, 1], "energy": [1.0]})
    with pytest.raises(DataError, match="x must be"):
        plots.plot_energy(run.mon.table("traces"), x="time")
    with pytest.raises(DataError, match="no eps"):
        plots.error_wave({"tick": [0], "step": [0], "energy": [1.0]}, run.vertices)
    with pytest.raises(DataError, match="no vertex"):
        plots.error_wave({"tick": [0], "step": [0], "eps[nope:0]": [1.0]}, run.vertices)
    with pytest.raises(DataError, match="no column"):
        plots.plot_traces(run.mon.table("traces"), names=["eps[layer9:0]"])
