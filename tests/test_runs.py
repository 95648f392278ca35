"""Runs that survive interruption, and finished runs used again as models.

Resuming is checked against the independent reference: an uninterrupted run of the
same configuration, bit for bit (weights and every metric but the wall-clock seconds).
Evaluation is checked against the numbers the run itself printed and saved, and
prediction against the reference forward pass run by hand.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import neurosim
from neurosim.checkpoint import load_checkpoint
from neurosim.cli import main
from neurosim.data import load_dataset
from neurosim.errors import ConfigError, DataError
from neurosim.recording import RunDirectory, load_params, partial_folder, read_metrics, sweep_stale_partials
from neurosim.reference import backprop
from neurosim.training import RunInterrupted, TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
CONFIG = {"epochs": 4, "limit": 120}
COLUMNS = ("epoch", "train_loss_pc", "train_loss_bp", "test_acc_pc", "test_acc_bp", "max_weight_diff", "late_firings")


def _train(out: Path, **kw):
    return train(TrainConfig(out=str(out), **{**CONFIG, **kw}), progress=False, log=None, baseline=False)


def _same_run(a: Path, b: Path) -> None:
    """Two finished run directories hold the same weights and metrics, bit for bit."""
    for name in ("init", "fazil", "backprop"):
        pa, pb = load_params(a, name), load_params(b, name)
        assert set(pa) == set(pb) and all(np.array_equal(pa[k], pb[k]) for k in pa), name
    ra, rb = read_metrics(a), read_metrics(b)
    assert [[r[c] for c in COLUMNS] for r in ra] == [[r[c] for c in COLUMNS] for r in rb]


class _StopAfter:
    """A log callback that interrupts the run (as Ctrl-C would) after epoch ``k``'s line."""

    def __init__(self, k: int) -> None:
        self.k = k

    def __call__(self, line: str) -> None:
        if line.startswith(f"epoch {self.k}/"):
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run, to compare resumed ones with."""
    out = tmp_path_factory.mktemp("ref") / "run"
    _train(out)
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_interrupted_at_any_epoch_resumes_bit_for_bit(tmp_path: Path, reference: Path, k: int) -> None:
    out = tmp_path / "run"
    with pytest.raises(RunInterrupted) as stop:
        train(TrainConfig(out=str(out), **CONFIG), progress=False, log=_StopAfter(k), baseline=False)
    assert stop.value.epochs_done == k and f"neurosim train --resume {out}" in str(stop.value)
    assert not out.exists() and load_checkpoint(partial_folder(out)).epoch == k
    assert len(read_metrics(partial_folder(out) / "metrics.csv")) == k
    result = train(None, progress=False, log=None, resume=out, baseline=False)
    assert result.run_dir == out and not partial_folder(out).exists()
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "metrics.csv", "params_backprop.npz", "params_fazil.npz", "params_init.npz"]
    assert json.loads((out / "config.json").read_text())["resumed"][0]["at_epoch"] == k
    _same_run(out, reference)


def test_resume_twice_and_a_torn_metrics_file(tmp_path: Path, reference: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(RunInterrupted):
        train(TrainConfig(out=str(out), **CONFIG), progress=False, log=_StopAfter(1), baseline=False)
    with pytest.raises(RunInterrupted):
        train(None, progress=False, log=_StopAfter(2), resume=out, baseline=False)
    # a crash between the metrics row and the checkpoint: the row is dropped on resume
    with open(partial_folder(out) / "metrics.csv", "a") as fh:
        fh.write("3,9,9,9,9,9,9,9\n")
    train(None, progress=False, log=None, resume=partial_folder(out), baseline=False)
    _same_run(out, reference)


def _start(tmp_path: Path, out: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen(
        [sys.executable, "-m", "neurosim", "train", "--epochs", "30", "--limit", "120", "--no-baseline",
         "--out", out, *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_real_signal_stops_with_a_checkpoint_and_the_resume_command(tmp_path: Path, sig: int) -> None:
    proc = _start(tmp_path, "run")
    for line in proc.stdout:  # wait for a finished epoch, then signal the process
        if line.startswith("epoch 2/"):
            break
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert f"{signal.Signals(sig).name}: stopped after" in err and "neurosim train --resume run" in err
    assert "Traceback" not in err
    done = load_checkpoint(tmp_path / ".run.partial").epoch
    assert 2 <= done < 30
    # the uninterrupted run, and the resumed one, from the CLI
    runner = CliRunner()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        resumed = runner.invoke(main, ["train", "--resume", "run", "--no-progress", "--no-baseline"])
        assert resumed.exit_code == 0, resumed.output
        assert f"resuming run after epoch {done} of 30" in resumed.output
        whole = runner.invoke(main, ["train", "--epochs", "30", "--limit", "120", "--no-baseline", "--out", "whole"])
        assert whole.exit_code == 0, whole.output
    finally:
        os.chdir(cwd)
    _same_run(tmp_path / "run", tmp_path / "whole")


def test_leftover_partial_folders_are_never_left_silently(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    dead = _dead_pid()
    owner = json.dumps({"pid": dead, "host": __import__("socket").gethostname()})
    # killed (SIGKILL) after a checkpoint: resumable, and reported as such
    with pytest.raises(RunInterrupted):
        train(TrainConfig(out=str(tmp_path / "a"), **CONFIG), progress=False, log=_StopAfter(1), baseline=False)
    (partial_folder(tmp_path / "a") / ".owner").write_text(owner)
    # killed before any checkpoint: removed
    early = tmp_path / ".b.partial"
    early.mkdir()
    (early / ".owner").write_text(owner)
    (early / "config.json").write_text("{}")
    # an experiment's temporary folder, killed
    temp = tmp_path / ".c.x1y2.partial"
    temp.mkdir()
    (temp / ".owner").write_text(owner)
    sweep_stale_partials(tmp_path)
    err = capsys.readouterr().err
    assert f"resume it with: neurosim train --resume {tmp_path / 'a'}" in err
    assert f"removed {early}" in err and f"removed {temp}" in err
    assert not early.exists() and not temp.exists() and partial_folder(tmp_path / "a").exists()
    # a new run of the same target refuses to overwrite the resumable one
    with pytest.raises(ConfigError, match="an interrupted run of .* resume it with"):
        _train(tmp_path / "a")
    # a live writer is respected
    live = tmp_path / ".d.partial"
    live.mkdir()
    (live / ".owner").write_text(json.dumps({"pid": os.getpid(), "host": __import__("socket").gethostname()}))
    with pytest.raises(ConfigError, match="being written by another process"):
        RunDirectory(tmp_path / "d", resumable=True)
    sweep_stale_partials(tmp_path)
    assert live.exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_resume_errors(tmp_path: Path, reference: Path) -> None:
    with pytest.raises(ConfigError, match="no interrupted run"):
        train(None, resume=tmp_path / "nothing", log=None)
    with pytest.raises(ConfigError, match="is finished; nothing to resume"):
        train(None, resume=reference, log=None)
    with pytest.raises(ConfigError, match="pass no config"):
        train(TrainConfig(), resume=reference, log=None)


# ---- finished runs as models ---------------------------------------------------------
def test_load_eval_round_trip(tmp_path: Path, reference: Path) -> None:
    run = neurosim.load_run(reference)
    assert run.rule == "fazil" and set(run.params) == {"init", "fazil", "backprop"}
    assert run.config == TrainConfig(out=str(reference), **CONFIG)
    assert [run.graph.nodes[v]["size"] for v in ("input", "layer1", "layer2")] == [64, 32, 10]
    last = read_metrics(reference)[-1]
    rows = {r["params"]: r for r in neurosim.runs.evaluate(run)}
    assert rows["fazil"]["train_loss"] == last["train_loss_pc"] and rows["backprop"]["train_loss"] == last["train_loss_bp"]
    assert rows["fazil"]["test_acc"] == last["test_acc_pc"] and rows["backprop"]["test_acc"] == last["test_acc_bp"]
    # the CLI prints the same numbers as the run's last epoch line
    result = CliRunner().invoke(main, ["eval", str(reference)])
    assert result.exit_code == 0, result.output
    fazil = next(line for line in result.output.splitlines() if line.strip().startswith("fazil:"))
    assert f"train loss {last['train_loss_pc']:.4f}" in fazil and f"acc {last['test_acc_pc']:.2%}" in fazil
    # another limit, computed by hand with the reference
    x, labels = load_dataset("digits", None, "test")
    acc = float(np.mean(np.argmax(backprop.predict(run.graph, run.params["backprop"], x), axis=1) == labels))
    full = {r["params"]: r for r in neurosim.runs.evaluate(run, limit=10**6)}
    assert full["backprop"]["test_acc"] == acc and full["backprop"]["n_test"] == len(labels)


def test_predict_writes_the_forward_pass(tmp_path: Path, reference: Path) -> None:
    x, _ = load_dataset("digits", None, "test")
    np.save(tmp_path / "x.npy", x[:7])
    np.savez(tmp_path / "x.npz", input=x[:3].reshape(3, 8, 8))
    run = neurosim.load_run(reference)
    runner = CliRunner()
    for source, n, which in (("x.npy", 7, None), ("x.npz", 3, "backprop")):
        args = ["predict", str(reference), str(tmp_path / source), "--out", str(tmp_path / f"p{n}.npz")]
        result = runner.invoke(main, args + (["--params", which] if which else []))
        assert result.exit_code == 0, result.output
        with np.load(tmp_path / f"p{n}.npz") as saved:
            assert list(saved.files) == ["layer2"]
            expected = backprop.predict(run.graph, run.params[which or "fazil"], x[:n])
            assert np.array_equal(saved["layer2"], expected)


@pytest.mark.parametrize(
    "content, fragment",
    [(np.zeros((2, 5)), "has shape (2, 5); the model takes rows of 64"),
     (np.full((2, 64), np.nan), "NaN or infinite"), (np.array(["a", "b"]), "dtype <U1"),
     (np.zeros((0, 64)), "at least one sample"), (b"not an array", "is not a .npy or .npz")],
)
def test_predict_bad_input(tmp_path: Path, reference: Path, content, fragment: str) -> None:
    path = tmp_path / "x.npy"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        np.save(path, content)
    result = CliRunner().invoke(main, ["predict", str(reference), str(path), "--out", str(tmp_path / "p.npz")])
    assert result.exit_code == 2 and result.output.startswith("error: ") and fragment in result.output
    assert result.output.count("\n") == 1 and not (tmp_path / "p.npz").exists()


def test_load_run_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no run directory"):
        neurosim.load_run(tmp_path / "none")
    (tmp_path / "junk").mkdir()
    with pytest.raises(ConfigError, match="not a training run directory"):
        neurosim.load_run(tmp_path / "junk")
    with pytest.raises(RunInterrupted):
        train(TrainConfig(out=str(tmp_path / "half"), **CONFIG), progress=False, log=_StopAfter(1), baseline=False)
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "half")])
    assert result.exit_code == 2 and "is not finished: resume it with" in result.output


def test_eval_on_another_data_set_needs_its_data(tmp_path: Path, reference: Path, no_data_env: None) -> None:
    with pytest.raises(DataError, match="needs a data directory"):
        neurosim.runs.evaluate(neurosim.load_run(reference), dataset="mnist")
