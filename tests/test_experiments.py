"""neurosim experiment: each one runs from the CLI in seconds, writes its files, and its
numbers agree with something independent of it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from neurosim.cli import main
from neurosim.experiments import EXPERIMENTS, settings_for
from neurosim.experiments.rosenbaum import compare

FILES = {"config.json", "table.csv", "table.md", "figure.png"}


def _run(tmp_path, name: str, *options: str, out: str = "run") -> tuple[list[dict], object]:
    result = CliRunner().invoke(main, ["experiment", name, "--out", str(tmp_path / out), *options])
    assert result.exit_code == 0, result.output
    folder = tmp_path / out
    assert {p.name for p in folder.iterdir()} == FILES
    with open(folder / "table.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows, folder


def test_list():
    result = CliRunner().invoke(main, ["experiment", "--list"])
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == list(EXPERIMENTS)


def test_every_definition_loads_in_both_settings():
    for name in EXPERIMENTS:
        small, full = settings_for(name), settings_for(name, full=True)
        assert small != full


def test_table3_sigmoid_detects_every_moment(tmp_path):
    rows, folder = _run(tmp_path, "table3", "--dataset", "digits", "--set", "samples=40", "--set", "hidden=[[8]]",
                        "--set", "late_hidden=[8]", "--set", "t_d=[1, 4]", "--set", "ticks=6")
    by = {(r["activation"], r["detector"], int(r["t_d"])): r for r in rows}
    for act in ("sigmoid", "relu"):  # the feedback detector fires once per sample, never late
        for t_d in (1, 4):
            assert float(by[act, "feedback", t_d]["success_pct"]) == 100.0
            assert int(by[act, "feedback", t_d]["late_firings"]) == 0
    # Song's phi: errors change at every tick, so t_d = 1 refires at each; t_d = 4 never refires
    assert float(by["sigmoid", "song", 4]["success_pct"]) == 100.0  # in 6 ticks no error pauses 4 ticks
    assert int(by["sigmoid", "song", 4]["late_firings"]) == 0
    assert float(by["sigmoid", "song", 1]["success_pct"]) < 100.0
    assert float(by["sigmoid", "song", 4]["song_pct"]) == 100.0
    # ReLU, pre convention: Song's phi fires late where the backprop error is 0
    assert int(by["relu", "song", 4]["late_firings"]) > 0
    # the RNN (loss at the last step): deferred shared updates are backprop's, immediate ones are not
    rnn = {(r["detector"], r["shared_updates"]): r for r in rows if r["net"].startswith("rnn")}
    assert set(rnn) == {(d, u) for d in ("song", "feedback") for u in ("deferred", "immediate")}
    for detector in ("song", "feedback"):
        assert float(rnn[detector, "deferred"]["bp_rel_err"]) <= 1e-12
        assert float(rnn[detector, "immediate"]["bp_rel_err"]) > 1e-4
    config = json.loads((folder / "config.json").read_text())
    assert config["settings"]["samples"] == 40 and config["experiment"] == "table3"


def test_detection_counts_by_hand():
    from types import SimpleNamespace

    from neurosim.experiments.table3 import detection_counts

    levels = np.array([-1, 1, 0])  # input, hidden (l = 1), output (l = 0)
    firings = np.array([[0, 2, 0, 0],   # output neuron 0, sample 0: at l, once -> success
                        [1, 1, 0, 0],   # hidden 0, sample 0: at l ...
                        [3, 1, 0, 0],   # ... and again at 3 -> failure
                        [2, 1, 1, 0],   # hidden 1, sample 0: late only -> failure
                        [1, 1, 0, 1]])  # hidden 0, sample 1: at l, once -> success
    assert detection_counts(SimpleNamespace(firings=firings), levels) == (4, 2, 3)


def test_rosenbaum_fixedpred_is_exact_from_n_equals_L(tmp_path):
    rows, _ = _run(tmp_path, "rosenbaum", "--set", "hidden=[8, 8]", "--set", "n_max=4", "--set", "step_sizes=[0.5, 1.0]",
                   "--set", "dtypes=['float64']", "--set", "pretrain_epochs=1", "--set", "pretrain_samples=100",
                   "--set", "batch=16")
    L = 3
    fixed = [r for r in rows if r["rule"] == "fixedpred" and r["step_size"] == "1.0"]
    for r in fixed:  # Rosenbaum 2022, Theorem 1
        rel = float(r["relative_error"])
        if int(r["n"]) >= L:
            assert rel < 1e-12 and float(r["angle"]) < 1e-9
        elif int(r["n"]) == L - 1 and r["layer"] == "1":
            assert rel > 1e-3
    # below step 1 the layer farthest from the output is not exact (the output layer is, from n = 1)
    assert all(float(r["relative_error"]) > 1e-6 for r in rows if r["step_size"] == "0.5" and r["layer"] == "1")


def test_compare_against_hand_computed_values():
    rel, angle = compare(np.array([1.0, 1.0]), np.array([1.0, 0.0]))
    assert rel == pytest.approx(1.0) and angle == pytest.approx(45.0)
    rel, angle = compare(np.array([2.0, 0.0]), np.array([-1.0, 0.0]))
    assert rel == pytest.approx(3.0) and angle == pytest.approx(180.0)
    u = np.array([0.3, -1.7, 2.9])
    assert compare(u, u)[1] == 0.0 and compare(1e-3 * u, u)[1] < 1e-12


def test_table4_ratios(tmp_path):
    rows, _ = _run(tmp_path, "table4", "--set", "repeats=3", "--set", "hidden=[8]")
    assert [r["method"] for r in rows] == ["bp", "il", "zil", "fazil"]
    assert float(rows[0]["ratio_to_bp"]) == 1.0
    assert float(rows[1]["song_ratio"]) == pytest.approx(19.2 / 3.1)
    assert all(float(r["median_ms"]) > 0 for r in rows)


def test_ablations_zero_divergence_only_at_gamma_one(tmp_path):
    options = ["--dataset", "digits", "--set", "train_samples=40", "--set", "test_samples=40",
               "--set", "noise=[0, 0.1]", "--set", "update_step=['l', 0, 4]", "--set", "gamma=[0.5, 1.0]",
               "--set", "width=8"]
    rows, folder = _run(tmp_path, "ablations", *options)
    by = {(r["condition"], r["value"]): float(r["weight_divergence"]) for r in rows}
    exact = {("C1", "0"), ("C2", "l"), ("C3", "1.0")}  # Z-IL itself: backprop to round-off
    assert all(by[key] < 1e-12 for key in exact)
    assert all(div > 1e-6 for key, div in by.items() if key not in exact)  # one condition broken
    assert all(float(r["test_error_divergence"]) == 0.0 for r in rows if (r["condition"], r["value"]) in exact)
    _, again = _run(tmp_path, "ablations", *options, out="again")  # same seed, same bits
    assert (folder / "table.csv").read_bytes() == (again / "table.csv").read_bytes()


@pytest.mark.parametrize("args, message", [
    (["nope"], "unknown experiment 'nope'"),
    (["table3", "--set", "bogus=1"], "unknown setting(s) ['bogus']"),
    (["table3", "--set", "t_d=[0]"], "t_d must be an int >= 1"),
    (["table3", "--data-dir", "/nonexistent/data"], "not found"),
    ([], "name an experiment"),
])
def test_errors(tmp_path, args, message):
    result = CliRunner().invoke(main, ["experiment", *args, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "error: " in result.output and message in result.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "assignment, message",
    [("t_d=0", "setting t_d must be a non-empty list of integers, got 0"),
     ("hidden=0", "setting hidden must be a non-empty list of non-empty lists of integers, got 0"),
     ("t_d=[]", "setting t_d must be a non-empty list of integers, got []"),
     ("lr=true", "setting lr must be a number, got True"),
     ("samples=2.5", "setting samples must be an integer, got 2.5"),
     ("detectors=[1]", "setting detectors must be a non-empty list of strings")],
)
def test_set_values_are_checked_against_each_setting_type(tmp_path, assignment, message):
    result = CliRunner().invoke(main, ["experiment", "table3", "--set", assignment, "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and result.output.startswith("error: ") and result.output.count("\n") == 1
    assert message in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_definitions_ship_with_the_package():
    # the definitions are package data next to the code (pyproject.toml), not files of the checkout
    from importlib.resources import files

    import neurosim.experiments as pkg

    folder = files("neurosim.experiments") / "definitions"
    assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".toml")) == sorted(
        f"{name}.toml" for name in EXPERIMENTS)
    assert pkg.DEFINITIONS.parent == Path(pkg.__file__).parent
    shown = CliRunner().invoke(main, ["experiment", "table4", "--show"])
    assert shown.exit_code == 0 and shown.output == (pkg.DEFINITIONS / "table4.toml").read_text()
