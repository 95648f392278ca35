"""What every experiment shares: settings from TOML, data, tables and the run directory.

An experiment is a module of this package with a frozen dataclass ``Settings`` (every
field has the small default; ``neurosim/experiments/definitions/<name>.toml`` restates them under
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
import types
import typing
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
    """``cls(**values)`` with every value checked against the field's type.

    Unknown keys, and values of the wrong type (a bool where a number is expected, a
    number where a list is expected, an empty list unless the setting is named in the
    class's ``MAY_BE_EMPTY``), raise :class:`ConfigError` naming the setting and the
    type it takes; lists become tuples.
    """
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown setting(s) {unknown}; known settings are {sorted(known)}")
    hints = typing.get_type_hints(cls)
    may_be_empty = getattr(cls, "MAY_BE_EMPTY", frozenset())
    fixed = {k: _typed(v, hints[k], f"{source}: setting {k}", k in may_be_empty) for k, v in values.items()}
    return cls(**fixed)


def _type_name(hint: Any, plural: bool = False, empty_ok: bool = False) -> str:
    """``int`` -> 'an integer', ``tuple[int, ...]`` -> 'a non-empty list of integers'..."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a, plural) for a in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        inner = _type_name(typing.get_args(hint)[0], plural=True)
        return f"{'' if plural else 'a '}{'' if empty_ok else 'non-empty '}list{'s' if plural else ''} of {inner}"
    names = {int: ("an integer", "integers"), float: ("a number", "numbers"), str: ("a string", "strings"),
             bool: ("true or false", "booleans"), type(None): ("absent", "absent")}
    return names.get(hint, (str(hint), str(hint)))[plural]


def _typed(value: Any, hint: Any, what: str, empty_ok: bool = False) -> Any:
    """``value`` as type ``hint`` (lists as tuples, empty only with ``empty_ok``);
    :class:`ConfigError` when it is not one."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _typed(value, option, what)
            except ConfigError:
                continue
    elif origin is tuple:
        item = typing.get_args(hint)[0]
        if isinstance(value, (list, tuple)) and (len(value) > 0 or empty_ok):
            try:
                return tuple(_typed(v, item, what) for v in value)
            except ConfigError:
                pass
    elif hint is float:
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
            return value  # an int stays an int (as typing reads float), so tables print it as given
    elif hint is int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return int(value)
    elif hint is type(None):
        if value is None:
            return None
    elif isinstance(value, hint):
        return value
    raise ConfigError(f"{what} must be {_type_name(hint, empty_ok=empty_ok)}, got {value!r}")


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
