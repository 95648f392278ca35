"""What every experiment shares: settings from TOML, data, tables and the run directory.

An experiment is a module of this package with a frozen dataclass ``Settings`` (every
field has the small default; ``models/experiments/<name>.toml`` restates them under
``[default]`` and overrides some under ``[full]``) and a function
``run(settings, log) -> Outcome``. :func:`neurosim.experiments.run_experiment` writes the
outcome into an atomic :class:`~neurosim.recording.RunDirectory`: ``config.json`` (the
settings, the seeds, the environment), ``table.csv`` (every row), ``table.md`` (the
summary rows, with the notes above them) and ``figure.png``.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurosim.data import dataset_info, load_dataset, one_hot
from neurosim.errors import ConfigError

Log = Callable[[str], None]


@dataclass
class Outcome:
    """An experiment's result: all rows (``table.csv``), the summary (``table.md``), a figure."""

    rows: list[dict[str, Any]]
    figure: Any
    summary: list[dict[str, Any]] | None = None
    notes: list[str] = field(default_factory=list)


def build_settings(cls: type, values: Mapping[str, Any], source: str) -> Any:
    """``cls(**values)`` with lists turned into tuples; unknown keys raise :class:`ConfigError`."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown setting(s) {unknown}; known settings are {sorted(known)}")
    fixed = {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
             for k, v in values.items()}
    return cls(**fixed)


def require_seeds(seeds: Sequence[int]) -> None:
    """Raise :class:`ConfigError` unless ``seeds`` is a non-empty sequence of ints >= 0."""
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"seeds must be a non-empty list of ints >= 0, got {seeds!r}")


@dataclass(frozen=True)
class Data:
    """A train and a test split, inputs in ``[0, 1]`` and one-hot targets, in ``dtype``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    labels_test: np.ndarray
    n_classes: int


def load_data(dataset: str, data_dir: str | None, n_train: int | None, n_test: int | None,
              dtype: type = np.float64) -> Data:
    """The first ``n_train`` / ``n_test`` samples (all when ``None``) of the data set's splits."""
    info = dataset_info(dataset)
    x_tr, l_tr = load_dataset(info.name, data_dir, "train")
    x_te, l_te = load_dataset(info.name, data_dir, "test")
    x_tr, l_tr, x_te, l_te = x_tr[:n_train], l_tr[:n_train], x_te[:n_test], l_te[:n_test]
    return Data(x_tr.astype(dtype), one_hot(l_tr, info.n_classes, dtype), x_te.astype(dtype), l_te,
                info.n_classes)


def _cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """All rows, header from the first row's keys (every row has the same keys)."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(rows[0]))
        for row in rows:
            writer.writerow([_cell(v) for v in row.values()])


def _md_cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return ""
        if v == 0 or 1e-3 <= abs(v) < 1e5:
            return f"{v:.4g}"
        return f"{v:.3e}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A GitHub-flavoured markdown table of ``rows`` (floats to 4 significant digits, NaN blank)."""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_md_cell(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"
