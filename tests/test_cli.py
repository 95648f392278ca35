"""The command line: the main job, its run directory, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from neurosim.cli import main
from neurosim.training import TrainConfig

REPO = Path(__file__).resolve().parents[1]
MODELS = sorted((REPO / "models").glob("*.toml"))


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CliRunner whose working directory is an empty temporary folder."""
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def _invoke(runner: CliRunner, *args: str, **kw):
    return runner.invoke(main, ["train", *args], catch_exceptions=False, **kw)


def _lines(output: str) -> list[str]:
    """Output lines, with the progress bar's carriage-return frames split off."""
    return [line.strip() for line in re.split(r"[\r\n]+", output) if line.strip()]


def _assert_clean_error(result, *fragments: str, alone: bool = True) -> None:
    lines = _lines(result.output)
    assert result.exit_code == 2, result.output
    assert lines[-1].startswith("error: ") and "Traceback" not in result.output, result.output
    if alone:  # errors in the configuration or the data come before any output
        assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in lines[-1]
    assert not Path("runs").exists()


def _run_dirs() -> list[Path]:
    return sorted(Path("runs").iterdir()) if Path("runs").exists() else []


def test_default_train_on_a_small_run(runner: CliRunner) -> None:
    result = _invoke(runner, "--limit", "60", "--epochs", "1")
    assert result.exit_code == 0, result.output
    (run,) = _run_dirs()
    assert run.name.endswith("-digits-fazil")
    assert sorted(p.name for p in run.iterdir()) == [
        "config.json", "metrics.csv", "params_backprop.npz", "params_fazil.npz", "params_init.npz",
    ]
    lines = _lines(result.output)
    assert lines[0].startswith("training a 64-32-10 sigmoid MLP (pre convention")
    assert any(line.startswith("epoch 1/1: ") for line in lines)
    assert lines[-1] == f"run saved to {Path('runs') / run.name}"
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["sizes"] == [64, 32, 10] and config["rule"]["rule"] == "fazil"
    assert config["config"]["epochs"] == 1 and config["config"]["limit"] == 60
    assert (run / "metrics.csv").read_text().count("\n") == 2  # header and one epoch


@pytest.mark.parametrize(
    "args, sizes",
    [(["--hidden", "16", "8"], [64, 16, 8, 10]), (["--hidden", "12,6"], [64, 12, 6, 10]),
     (["--hidden=20"], [64, 20, 10]), (["--hidden"], [64, 10])],
)
def test_hidden_takes_several_widths(runner: CliRunner, args: list[str], sizes: list[int]) -> None:
    result = _invoke(runner, *args, "--epochs", "1", "--limit", "40", "--out", "r", "--no-progress")
    assert result.exit_code == 0, result.output
    assert json.loads(Path("r/config.json").read_text())["model"]["sizes"] == sizes


def test_options_are_passed_through(runner: CliRunner) -> None:
    result = _invoke(runner, "--rule", "zil", "--activation", "tanh", "--convention", "post", "--loss", "ce",
                     "--epochs", "2", "--batch", "10", "--lr", "0.02", "--seed", "5", "--dtype", "float32",
                     "--limit", "30", "--out", "r", "--no-progress")
    assert result.exit_code == 0, result.output
    config = json.loads(Path("r/config.json").read_text())
    assert config["rule"]["rule"] == "zil" and config["rule"]["alpha"] == 0.02
    assert {k: config["config"][k] for k in ("activation", "convention", "loss", "batch", "seed", "dtype")} == {
        "activation": "tanh", "convention": "post", "loss": "ce", "batch": 10, "seed": 5, "dtype": "float32"}


def test_config_file_with_overrides(runner: CliRunner) -> None:
    result = _invoke(runner, "--config", str(REPO / "models" / "digits_fazil.toml"), "--epochs", "1",
                     "--limit", "40", "--t-d", "5", "--out", "r", "--no-progress")
    assert result.exit_code == 0, result.output
    config = json.loads(Path("r/config.json").read_text())
    assert config["config"]["lr"] == 0.015 and config["config"]["epochs"] == 1
    assert config["rule"]["t_d"] == 5


@pytest.mark.parametrize("path", MODELS, ids=[p.name for p in MODELS])
def test_model_files_are_valid(path: Path) -> None:
    from neurosim.cli import _load_toml

    config = TrainConfig.from_dict(_load_toml(str(path)), source=str(path))
    config.make_rule()
    if config.model is None:
        assert config.sizes()[0] in (64, 784)
    else:  # the builder accepts the table's arguments and gives a graph
        from neurosim.tasks import BUILDERS

        args = {k: v for k, v in config.model.items() if k != "builder"}
        graph = BUILDERS[config.model["builder"]](**args)
        assert graph.number_of_nodes() > 2


def test_unknown_rule(runner: CliRunner) -> None:
    _assert_clean_error(_invoke(runner, "--rule", "nope"), "unknown rule 'nope'", "fazil")


def test_bad_data_dir(runner: CliRunner) -> None:
    result = _invoke(runner, "--dataset", "mnist", "--data-dir", "missing")
    _assert_clean_error(result, str(Path("missing") / "mnist" / "train-images-idx3-ubyte.gz"), "--data-dir",
                        "NEUROSIM_DATA_DIR")


def test_nan_data(runner: CliRunner, fake_idx_data) -> None:
    root = fake_idx_data("mnist", float_images=True, nan=True)
    _assert_clean_error(_invoke(runner, "--dataset", "mnist", "--data-dir", str(root)), "NaN")


def test_data_dir_from_the_environment(runner: CliRunner, fake_idx_data) -> None:
    root = fake_idx_data("fashion-mnist", n_train=20, n_test=10)
    result = _invoke(runner, "--dataset", "fashion-mnist", "--epochs", "1", "--no-progress", "--out", "r",
                     env={"NEUROSIM_DATA_DIR": str(root)})
    assert result.exit_code == 0, result.output
    config = json.loads(Path("r/config.json").read_text())
    assert config["data"]["data_dir"] == str(root.resolve()) and config["data"]["n_train"] == 20


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--epochs", "0"], "epochs must be an int >= 1"),
        (["--dtype", "float16"], "dtype must be one of"),
        (["--dataset", "cifar"], "unknown data set 'cifar'"),
        (["--activation", "swish"], "unknown activation 'swish'"),
        (["--rule", "zil", "--t-d", "3"], "takes no option(s) ['t_d']"),
        (["--config", "missing.toml"], "config file missing.toml not found"),
    ],
)
def test_errors_are_one_line(runner: CliRunner, args: list[str], fragment: str) -> None:
    _assert_clean_error(_invoke(runner, *args, "--no-progress"), fragment)


def test_divergence(runner: CliRunner) -> None:
    result = _invoke(runner, "--lr", "5", "--epochs", "1", "--out", "r")
    _assert_clean_error(result, "fazil diverged", "smaller --lr", alone=False)
    assert not Path("r").exists() and list(Path(".").iterdir()) == []


def test_bad_config_files(runner: CliRunner) -> None:
    Path("typo.toml").write_text('rule = "fazil"\nhiden = [32]\n')
    _assert_clean_error(_invoke(runner, "--config", "typo.toml"), "typo.toml", "unknown key(s) ['hiden']")
    Path("broken.toml").write_text("rule = \n")
    _assert_clean_error(_invoke(runner, "--config", "broken.toml"), "broken.toml is not valid TOML")


def test_existing_out_is_refused(runner: CliRunner) -> None:
    Path("taken").mkdir()
    result = _invoke(runner, "--out", "taken", "--epochs", "1", "--limit", "20")
    _assert_clean_error(result, "taken already exists")
    assert list(Path("taken").iterdir()) == []


def test_python_dash_m(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    version = subprocess.run([sys.executable, "-m", "neurosim", "--version"], capture_output=True, text=True,
                             env=env, cwd=tmp_path, check=True)
    assert version.stdout.startswith("neurosim, version ")
    bad = subprocess.run([sys.executable, "-m", "neurosim", "train", "--rule", "nope"], capture_output=True,
                         text=True, env=env, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("error: unknown rule 'nope'") and bad.stderr.count("\n") == 1
    assert not (tmp_path / "runs").exists()
