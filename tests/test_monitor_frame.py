"""Monitor.frame: a pandas DataFrame with the optional ``frames`` extra, a clear error without it."""

from __future__ import annotations

import builtins
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from neurosim.engine import Simulator
from neurosim.errors import ConfigError
from neurosim.graph import mlp
from neurosim.monitors import Monitor
from neurosim.rules import make_rule

REPO = Path(__file__).resolve().parents[1]


def _watched() -> Monitor:
    g = mlp([3, 4, 2])
    rng = np.random.default_rng(0)
    x, y = rng.random((2, 3)), np.eye(2)
    mon = Monitor(plasticity=True)
    sim = Simulator(g, seed=0)
    mon.attach(sim)
    sim.learn(x, y, make_rule("zil", alpha=0.1))
    return mon


def test_frame_without_pandas_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("No module named 'pandas'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "pandas", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_pandas)
    mon = _watched()
    with pytest.raises(ConfigError, match=r"pip install 'neurosim\[frames\]'.*Monitor.table"):
        mon.frame("plasticity")
    assert len(mon.table("plasticity")["tick"]) > 0


def test_frame_with_pandas() -> None:
    pd = pytest.importorskip("pandas")
    mon = _watched()
    frame = mon.frame("plasticity")
    assert isinstance(frame, pd.DataFrame)
    table = mon.table("plasticity")
    assert list(frame.columns) == list(table) and all(np.array_equal(frame[c].to_numpy(), table[c]) for c in table)


def test_the_extra_is_declared() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("pandas") for req in extras["frames"])
