"""Reproductions of the papers' tables and figures, one command each.

``neurosim experiment NAME [--full]`` runs :func:`run_experiment`. The experiments:

- ``table3``: Song et al. (2020) Table 3, phi's success rate against ``t_d``
  (:mod:`neurosim.experiments.table3`);
- ``rosenbaum``: Rosenbaum (2022) Figs. 2 and 4, Strict PC's and FixedPred's updates
  against the exact gradient (:mod:`neurosim.experiments.rosenbaum`);
- ``table4``: Song et al. (2020) Table 4, time per weight update
  (:mod:`neurosim.experiments.table4`);
- ``ablations``: Song et al. (2020) Fig. 3, divergence from backprop when C1, C2 or C3
  is broken (:mod:`neurosim.experiments.ablations`).

Each one's settings live in ``neurosim/experiments/definitions/<name>.toml``, shipped
with the package (``neurosim experiment NAME --show`` prints it): ``[default]`` (small,
seconds to minutes) and ``[full]`` (the paper's setting, applied over the default).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from neurosim.errors import ConfigError
from neurosim.experiments import ablations, rosenbaum, table3, table4
from neurosim.experiments.common import Log, build_settings, markdown_table, write_csv

EXPERIMENTS: dict[str, ModuleType] = {m.NAME: m for m in (table3, rosenbaum, table4, ablations)}
#: Where the experiments' TOML definitions live: package data, so an installed neurosim has them.
DEFINITIONS = Path(__file__).resolve().parent / "definitions"


def experiment(name: str) -> ModuleType:
    """The module of experiment ``name``; :class:`ConfigError` listing the known ones otherwise."""
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; choose one of {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def load_definition(name: str, definitions: Path = DEFINITIONS) -> dict[str, Any]:
    """The parsed ``<definitions>/<name>.toml`` (keys ``description``, ``default``, ``full``)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10 only
        import tomli as tomllib
    path = definitions / f"{name}.toml"
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"experiment definition {path} not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"experiment definition {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"experiment definition {path} is not valid TOML: {exc}") from None
    extra = sorted(set(data) - {"description", "default", "full"})
    if extra:
        raise ConfigError(f"{path}: unknown top-level key(s) {extra}; expected description, [default], [full]")
    return data


def settings_for(name: str, full: bool = False, overrides: Mapping[str, Any] | None = None) -> Any:
    """The experiment's ``Settings``: TOML ``[default]``, then ``[full]`` if asked, then ``overrides``."""
    module = experiment(name)
    data = load_definition(name)
    values = dict(data.get("default", {}))
    if full:
        values.update(data.get("full", {}))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return build_settings(module.Settings, values, f"experiment {name}")


def run_experiment(name: str, out: str | Path, full: bool = False, overrides: Mapping[str, Any] | None = None,
                   log: Log = print) -> Path:
    """Run experiment ``name`` and write its run directory ``out``; return the directory.

    Settings are resolved (and checked) and ``out`` is claimed before any work, so a bad
    option fails at once; an error during the run leaves nothing behind.
    """
    import matplotlib.pyplot as plt

    from neurosim.recording import RunDirectory, environment

    module = experiment(name)
    settings = settings_for(name, full, overrides)
    run = RunDirectory(out)
    with run:
        outcome = module.run(settings, log)
        run.write_config({"experiment": name, "full": full, "settings": dataclasses.asdict(settings), "environment": environment()})
        write_csv(run.path / "table.csv", outcome.rows)
        notes = "".join(f"{line}\n" for line in outcome.notes)
        (run.path / "table.md").write_text(f"# {name}\n\n{notes}\n" + markdown_table(outcome.summary or outcome.rows))
        outcome.figure.savefig(run.path / "figure.png", dpi=100, bbox_inches="tight")
        plt.close(outcome.figure)
    return run.target
