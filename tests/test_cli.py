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
    assert lines[0].startswith("training a 64-32-10 tanh MLP (post convention, ce loss")
    assert lines[1].startswith("baseline: sklearn LogisticRegression") and "test accuracy" in lines[1]
    assert any(line.startswith("epoch 1/1: ") for line in lines)
    assert "\r" not in result.output  # not a terminal: no progress bar frames
    assert lines[-1] == f"run saved to {Path('runs') / run.name}"
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["sizes"] == [64, 32, 10] and config["rule"]["rule"] == "fazil"
    assert config["config"]["epochs"] == 1 and config["config"]["limit"] == 60
    assert (run / "metrics.csv").read_text().count("\n") == 2  # header and one epoch


@pytest.mark.parametrize(
    "args, sizes",
    [(["--hidden", "16", "8"], [64, 16, 8, 10]), (["--hidden", "12,6"], [64, 12, 6, 10]),
     (["--hidden=20"], [64, 20, 10]), (["--hidden", "none"], [64, 10]), (["--hidden", ""], [64, 10]),
     (["--hidden", "8", "--epochs", "1"], [64, 8, 10])],
)
def test_hidden_takes_several_widths(runner: CliRunner, args: list[str], sizes: list[int]) -> None:
    result = _invoke(runner, *args, "--epochs", "1", "--limit", "40", "--out", "r", "--no-progress")
    assert result.exit_code == 0, result.output
    assert json.loads(Path("r/config.json").read_text())["model"]["sizes"] == sizes


@pytest.mark.parametrize(
    "args, fragment",
    [(["--hidden"], "--hidden needs layer widths"), (["--hidden", "--epochs", "1"], "--hidden needs layer widths"),
     (["--hidden", "-5"], "'-5' is not a layer width"), (["--hidden", "0"], "'0' is not a layer width"),
     (["--hidden", "3.5"], "'3.5' is not a layer width"), (["--hidden", "32", "x"], "'x' is not a layer width"),
     (["--hidden", "none", "32"], "'none' cannot be mixed")],
)
def test_hidden_grammar_errors(runner: CliRunner, args: list[str], fragment: str) -> None:
    _assert_clean_error(_invoke(runner, *args), fragment)


def test_options_are_passed_through(runner: CliRunner) -> None:
    result = _invoke(runner, "--rule", "zil", "--activation", "sigmoid", "--convention", "pre", "--loss", "mse",
                     "--epochs", "2", "--batch", "10", "--lr", "0.02", "--seed", "5", "--dtype", "float32",
                     "--limit", "30", "--out", "r", "--no-progress")
    assert result.exit_code == 0, result.output
    config = json.loads(Path("r/config.json").read_text())
    assert config["rule"]["rule"] == "zil" and config["rule"]["alpha"] == 0.02
    assert {k: config["config"][k] for k in ("activation", "convention", "loss", "batch", "seed", "dtype")} == {
        "activation": "sigmoid", "convention": "pre", "loss": "mse", "batch": 10, "seed": 5, "dtype": "float32"}


def test_config_file_with_overrides(runner: CliRunner) -> None:
    result = _invoke(runner, "--config", str(REPO / "models" / "digits_song2020.toml"), "--epochs", "1",
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


SONG = ["--activation", "sigmoid", "--convention", "pre", "--loss", "mse"]


@pytest.mark.parametrize(
    "args, fragments",
    [(["--lr", "5"], ["fazil diverged", "backprop at the same --lr diverged too", "smaller --lr (now 5.0)"]),
     (["--rule", "il", "--gamma", "2.5", "--limit", "400"],
      ["il diverged", "largest weight", "stays bounded", "smaller --gamma (now 2.5)"]),
     (["--rule", "strict", "--eta", "5", "--limit", "100"],
      ["strict diverged on the event loop", "the inference step is the cause", "smaller --eta (now 5.0)"])],
)
def test_divergence(runner: CliRunner, args: list[str], fragments: list[str]) -> None:
    # Blow-ups that stay finite are caught by the stated bounds, and the message names the likely cause.
    result = _invoke(runner, *SONG, *args, "--epochs", "2", "--no-baseline", "--out", "r")
    _assert_clean_error(result, *fragments, alone=False)
    assert not Path("r").exists() and list(Path(".").iterdir()) == []


def test_bad_config_files(runner: CliRunner) -> None:
    Path("typo.toml").write_text('rule = "fazil"\nhiden = [32]\n')
    _assert_clean_error(_invoke(runner, "--config", "typo.toml"), "typo.toml", "unknown key(s) ['hiden']")
    Path("broken.toml").write_text("rule = \n")
    _assert_clean_error(_invoke(runner, "--config", "broken.toml"), "broken.toml is not valid TOML")


def test_what_cannot_apply_is_refused(runner: CliRunner) -> None:
    rnn = str(REPO / "models" / "rnn_names.toml")
    for option, value in (("--activation", "relu"), ("--hidden", "64"), ("--convention", "post"), ("--loss", "mse")):
        _assert_clean_error(_invoke(runner, "--config", rnn, option, value), f"{option} does not apply",
                            "[model] table")
    _assert_clean_error(_invoke(runner, "--data-dir", "somewhere"), "--data-dir does not apply", "bundled")
    Path("mixed.toml").write_text('activation = "tanh"\n[model]\nbuilder = "rnn"\n')
    _assert_clean_error(_invoke(runner, "--config", "mixed.toml"), "activation do(es) not apply with a [model]")
    _assert_clean_error(_invoke(runner, "--resume", "r", "--lr", "0.1"), "--resume continues a run", "--lr")


@pytest.mark.parametrize(
    "text, fragment",
    [("lr = true\n", "lr must be a number, got True"), ("gamma = false\n", "gamma must be a number"),
     ("threads = 0\n", "threads must be an int >= 1")],
)
def test_config_values_are_typed(runner: CliRunner, text: str, fragment: str) -> None:
    Path("c.toml").write_text(text)
    _assert_clean_error(_invoke(runner, "--config", "c.toml"), fragment)


def test_non_utf8_config(runner: CliRunner) -> None:
    Path("latin1.toml").write_bytes('rule = "fazil" # caf\xe9\n'.encode("latin-1"))
    _assert_clean_error(_invoke(runner, "--config", "latin1.toml"), "latin1.toml is not UTF-8 text")
    Path("folder.toml").mkdir()
    _assert_clean_error(_invoke(runner, "--config", "folder.toml"), "folder.toml is a directory")


@pytest.mark.parametrize(
    "args, fragment",
    [(["train", "--epochs", "abc"], "'abc' is not a valid integer"), (["train", "--bogus"], "No such option"),
     (["eval"], "Missing argument 'RUN_DIR'"), (["nope"], "No such command 'nope'"),
     (["predict", "r", "x.npy"], "Missing option '--out'"), (["train", "--threads", "0"], "threads must be")],
)
def test_parser_errors_are_one_line(runner: CliRunner, args: list[str], fragment: str) -> None:
    result = runner.invoke(main, args)
    _assert_clean_error(result, fragment)


def test_threads_apply(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    # --threads reaches the event loop (recorded here; run on one thread, the same bits by test_parallel.py)
    import neurosim.engine

    asked = []

    class Recording(neurosim.engine.Simulator):
        def __init__(self, *args, threads: int = 1, **kw):
            asked.append(threads)
            super().__init__(*args, **kw)

    monkeypatch.setattr(neurosim.engine, "Simulator", Recording)
    result = _invoke(runner, "--threads", "2", "--epochs", "1", "--limit", "40", "--no-baseline", "--out", "r")
    assert result.exit_code == 0, result.output
    assert asked == [2] and json.loads(Path("r/config.json").read_text())["config"]["threads"] == 2


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
