"""neurosim.plots: each figure draws the data it is given, from dicts or DataFrames."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim import plots
from neurosim.engine import Simulator
from neurosim.errors import DataError
from neurosim.graph import mlp
from neurosim.rules import ZIL, FaZIL


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def recording() -> plots.Recording:
    sim = Simulator(mlp([4, 3, 3, 2], convention="pre"), seed=0)
    rng = np.random.default_rng(0)
    return plots.record_presentation(sim, rng.random((2, 4)), rng.random((2, 2)), FaZIL(alpha=0.1, ticks=6),
                                     trace=[("layer1", 0), ("layer2", 1)])


def test_recording_matches_the_learn_result(recording):
    # the energy read tick by tick from the state is the loop's own record
    np.testing.assert_allclose(recording.energy["energy"], recording.result.energy, rtol=1e-14)
    assert recording.wave.shape == (6, 3 + 3 + 2)
    # the error wave: layer l's errors are 0 before tick l (output l=0, layer2 l=1, layer1 l=2)
    first = [int(np.argmax(recording.wave[:, i] > 0)) for i in range(8)]
    assert first == [2, 2, 2, 1, 1, 1, 0, 0]


def test_raster(recording, tmp_path):
    ax = plots.plot_raster(recording.events, recording.vertices)
    n_points = sum(len(c.get_offsets()) for c in ax.collections)
    assert n_points == len(recording.events["tick"]) > 0
    kinds = {(int(v), int(k)) for v, k in zip(recording.events["vertex"], recording.events["kind"])}
    assert len(ax.collections) == len(kinds)
    ax.figure.savefig(tmp_path / "raster.png")
    assert (tmp_path / "raster.png").stat().st_size > 0


def test_update_timing_fazil_fires_at_l(recording, tmp_path):
    tl = plots.timeline_table(recording.result, FaZIL(ticks=6))
    ax = plots.plot_update_timing(tl, recording.vertices)
    (points,) = [c.get_offsets() for c in ax.collections]  # one cause: phi
    # sigmoid net, t_d = 4: each vertex fires at its own l only (3 - index)
    assert sorted(map(tuple, np.asarray(points).astype(int))) == [(0, 3), (1, 2), (2, 1)]
    ax.figure.savefig(tmp_path / "timing.png")


def test_update_timing_schedule():
    sim = Simulator(mlp([4, 3, 2]), seed=1)
    res = sim.learn(np.ones((1, 4)), np.array([[1.0, 0.0]]), ZIL(alpha=0.1))
    tl = plots.timeline_table(res, ZIL())
    assert set(tl["cause"]) == {0}
    ax = plots.plot_update_timing(tl, res.vertices)
    assert sorted(map(tuple, np.asarray(ax.collections[0].get_offsets()).astype(int))) == [(0, 2), (1, 1)]


def test_dataframe_tables():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"tick": [0, 1, 2], "energy": [1.0, 0.5, 0.25]})
    ax = plots.plot_energy(frame)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [1.0, 0.5, 0.25])


def test_traces_energy_wave(recording, tmp_path):
    ax = plots.plot_traces(recording.traces)
    assert len(ax.lines) == 4
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), recording.traces["eps[layer1:0]"])
    ax = plots.plot_energy(recording.energy)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), recording.energy["energy"])
    ax = plots.plot_error_wave(recording.wave, recording.neuron_vertex, recording.vertices)
    assert ax.images[0].get_array().shape == recording.wave.shape
    assert [t.get_text() for t in ax.get_xticklabels()] == ["layer1", "layer2", "layer3"]
    ax.figure.savefig(tmp_path / "wave.png")
    gif = plots.save_error_wave_gif(recording.wave, recording.neuron_vertex, recording.vertices, tmp_path / "w.gif")
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == len(recording.wave)


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


def test_bad_tables():
    with pytest.raises(DataError, match="no column"):
        plots.plot_energy({"tick": [0, 1]})
    with pytest.raises(DataError, match="different lengths"):
        plots.plot_energy({"tick": [0, 1], "energy": [1.0]})
