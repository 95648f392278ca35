"""Run directories: content, and atomicity (an error never leaves a half-written run)."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numba
import numpy as np
import pytest

import neurosim
from neurosim.errors import ConfigError
from neurosim.recording import RunDirectory, default_run_dir, environment, load_params, read_metrics


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_run_directory_content(tmp_path: Path) -> None:
    params = {"layer1.weight": np.arange(6.0).reshape(2, 3), "layer1.bias": np.array([0.5, -1.0])}
    with RunDirectory(tmp_path / "run") as run:
        run.write_config({"seed": 7, "hidden": (32, 16), "path": tmp_path, "x": np.float64(0.25)})
        run.log_metrics({"epoch": 1, "loss": 0.5, "acc": 0.1})
        run.log_metrics({"epoch": 2, "loss": 1 / 3, "acc": 0.2})
        run.save_params("fazil", params)
        assert not (tmp_path / "run").exists()  # nothing visible before the commit
    run_dir = tmp_path / "run"
    assert _listing(tmp_path) == ["run", "run/config.json", "run/metrics.csv", "run/params_fazil.npz"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config == {"seed": 7, "hidden": [32, 16], "path": str(tmp_path), "x": 0.25}
    rows = read_metrics(run_dir)
    assert rows == [{"epoch": 1.0, "loss": 0.5, "acc": 0.1}, {"epoch": 2.0, "loss": 1 / 3, "acc": 0.2}]
    assert (run_dir / "metrics.csv").read_text().splitlines()[0] == "epoch,loss,acc"
    back = load_params(run_dir, "fazil")
    assert set(back) == set(params)
    assert all(np.array_equal(back[k], params[k]) for k in params)


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_error_mid_run_leaves_nothing(tmp_path: Path, exc: BaseException) -> None:
    target = tmp_path / "a" / "b" / "run"
    with pytest.raises(type(exc)):
        with RunDirectory(target) as run:
            run.write_config({"seed": 0})
            run.log_metrics({"epoch": 1})
            run.save_params("init", {"w": np.zeros(3)})
            assert run.path.parent == target.parent and run.path.exists()
            raise exc
    assert _listing(tmp_path) == []  # neither the run, its temporary folder, nor the parents it made


def test_abort_keeps_existing_parents(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "older").mkdir()
    with pytest.raises(ValueError):
        with RunDirectory(tmp_path / "runs" / "new") as run:
            run.write_config({})
            raise ValueError
    assert _listing(tmp_path) == ["runs", "runs/older"]


def test_existing_target_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    with pytest.raises(ConfigError, match="already exists"):
        RunDirectory(tmp_path / "run")


def test_metrics_columns_are_fixed_by_the_first_row(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="columns"):
        with RunDirectory(tmp_path / "run") as run:
            run.log_metrics({"epoch": 1, "loss": 0.1})
            run.log_metrics({"epoch": 2})
    assert not (tmp_path / "run").exists()


def test_environment_versions() -> None:
    env = environment()
    assert env["python"] == platform.python_version()
    assert env["numpy"] == np.__version__ and env["numba"] == numba.__version__
    assert env["neurosim"] == neurosim.__version__
    assert env["platform"]


def test_default_run_dir_is_fresh(tmp_path: Path) -> None:
    first = default_run_dir("digits-fazil", tmp_path)
    assert first.parent == tmp_path and first.name.endswith("-digits-fazil")
    first.mkdir()
    second = default_run_dir("digits-fazil", tmp_path)
    assert second != first and not second.exists()
