"""A sweep's definition and its cells.

A sweep runs one experiment of :mod:`neurosim.experiments` over a grid. Its definition
(:class:`SweepSpec`) holds the experiment's resolved settings (TOML ``[default]``, then
``[full]`` if asked, then overrides) and says how to cut them into cells:

- ``split``: settings whose value is a list (``t_d``, ``depths``, ``seeds``...), each
  cut into one value per cell; a group of names (``["noise", "update_step", "gamma"]``)
  is one axis whose cells each take one value of one of the group's settings and leave
  the others empty (the union of the ablations' three sweeps, not their product);
- ``grid``: settings given a list of values, one per cell.

The cells are the product of the ``grid`` axes, the ``split`` axes and the seeds (always
split), in that order. A cell is the overrides it applies to the base settings; its id
is a hash of the experiment and the cell's complete settings, so it does not depend on
the cell's position or on the rest of the grid: a resumed sweep, or a grown one (more
seeds, more values), finds its finished cells by id. Each cell is an independent run of the experiment's
``run(settings, log)``: the experiments build each row from its own seed and data order,
so the rows of all cells are the rows of one serial run (``tests/test_sweep.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurosim.errors import ConfigError

#: How ``neurosim sweep NAME`` cuts each experiment when no ``split`` is given.
DEFAULT_SPLIT: dict[str, tuple[str | tuple[str, ...], ...]] = {
    "table3": ("detectors", "t_d"),
    "ablations": ("depths", ("noise", "update_step", "gamma")),
    "rosenbaum": ("dtypes", "rules", "step_sizes"),
}
#: Experiments a sweep refuses, with the reason.
REFUSED = {"table4": "table4 measures time per update; cells running side by side would distort it. "
                     "Run it alone: neurosim experiment table4"}
_SPEC_KEYS = {"experiment", "full", "settings", "split", "grid", "seeds"}


@dataclass(frozen=True)
class Cell:
    """One task of a sweep: ``overrides`` applied to the base settings."""

    id: str
    label: str
    overrides: dict[str, Any]


@dataclass(frozen=True)
class SweepSpec:
    """An experiment's resolved ``settings`` and the axes that cut them into cells."""

    experiment: str
    full: bool
    settings: dict[str, Any]
    split: tuple[str | tuple[str, ...], ...]
    grid: dict[str, list[Any]]

    def to_json(self) -> dict[str, Any]:
        """The definition as plain JSON values (tuples as lists)."""
        return _plain({"experiment": self.experiment, "full": self.full, "settings": self.settings,
                       "split": [list(a) if isinstance(a, tuple) else a for a in self.split], "grid": self.grid})

    def cells(self) -> list[Cell]:
        """Every cell, in grid, split, then seed order."""
        axes: list[list[dict[str, Any]]] = [[{k: v} for v in values] for k, values in self.grid.items()]
        for axis in self.split:
            names = (axis,) if isinstance(axis, str) else axis
            options = []
            for name in names:
                for value in self.settings[name]:
                    options.append({n: ([value] if n == name else []) for n in names})
            axes.append(options)
        axes.append([{"seeds": [seed]} for seed in self.settings["seeds"]])
        out = []
        for combo in itertools.product(*axes):
            overrides: dict[str, Any] = _plain({k: v for part in combo for k, v in part.items()})
            key = json.dumps({"experiment": self.experiment, "settings": _plain({**self.settings, **overrides})},
                             sort_keys=True)
            label = " ".join(f"{k}={_short(v)}" for k, v in overrides.items() if v != [])
            out.append(Cell(hashlib.sha1(key.encode()).hexdigest()[:12], label, overrides))
        return out


def make_spec(experiment: str, full: bool = False, overrides: Mapping[str, Any] | None = None,
              split: Sequence[str | Sequence[str]] | None = None,
              grid: Mapping[str, Sequence[Any]] | None = None) -> SweepSpec:
    """Resolve ``experiment``'s settings and check the axes; :class:`ConfigError` on bad input."""
    from neurosim.experiments import settings_for

    if experiment in REFUSED:
        raise ConfigError(REFUSED[experiment])
    grid = {k: list(v) for k, v in (grid or {}).items()}
    settings = dataclasses.asdict(settings_for(experiment, full, overrides))
    for key, values in grid.items():
        if key not in settings or key == "seeds":
            raise ConfigError(f"grid setting {key!r} is not a setting of {experiment} other than seeds; "
                              f"known: {sorted(k for k in settings if k != 'seeds')}")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid setting {key!r} needs a non-empty list of values")
        for value in values:  # every grid value must make valid settings
            settings_for(experiment, full, {**(overrides or {}), key: value})
    axes = tuple(tuple(a) if not isinstance(a, str) else a
                 for a in (DEFAULT_SPLIT.get(experiment, ()) if split is None else split))
    seen: set[str] = set(grid)
    for axis in axes:
        for name in (axis,) if isinstance(axis, str) else axis:
            if name not in settings or not isinstance(settings[name], tuple) or name == "seeds":
                raise ConfigError(f"split setting {name!r} of {experiment} is not a list setting other than seeds; "
                                  f"list settings: {sorted(k for k, v in settings.items() if isinstance(v, tuple))}")
            if name in seen:
                raise ConfigError(f"setting {name!r} appears on two axes of the sweep")
            seen.add(name)
    return SweepSpec(experiment, full, settings, axes, grid)


def load_spec(path: str | Path, overrides: Mapping[str, Any] | None = None) -> SweepSpec:
    """A sweep definition from a TOML file (keys ``experiment``, ``full``, ``seeds``,
    ``split``, ``[settings]``, ``[grid]``); ``overrides`` take precedence over ``[settings]``."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10 only
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read sweep definition {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sweep definition {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown or "experiment" not in data:
        raise ConfigError(f"sweep definition {path}: needs 'experiment'; unknown key(s) {unknown}; "
                          f"known: {sorted(_SPEC_KEYS)}")
    values = dict(data.get("settings", {}))
    if "seeds" in data:
        values["seeds"] = data["seeds"]
    values.update(overrides or {})
    return make_spec(str(data["experiment"]), bool(data.get("full", False)), values, data.get("split"),
                     data.get("grid"))


def _plain(value: Any) -> Any:
    """JSON-ready copy: tuples to lists, numpy scalars to Python numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def _short(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1:
        return _short(value[0])
    return json.dumps(value).replace(" ", "")
