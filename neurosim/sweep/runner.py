"""Running a sweep's cells, on a dask cluster or one after another, into a sweep directory.

The sweep directory holds

- ``sweep.json``: the manifest, i.e. the definition (experiment, resolved settings,
  axes), every cell's id, label and overrides, and the environment that created it;
- ``cells/<id>.json``: one finished cell, its overrides, rows, seconds and host, each
  written to a temporary file and renamed into place, so a cell file is whole or absent;
- ``failed/<id>.json``: a cell that raised, with the error and traceback (removed when
  a later run finishes the cell);
- ``table.csv`` (every row of the finished cells, in cell order), ``summary.csv`` and
  ``summary.md`` (mean and t confidence interval over seeds, paired differences with
  backprop where there are any; :mod:`neurosim.sweep.stats`), rewritten every minute
  while cells finish and at the end of every run.

Running the same sweep into the same directory again resumes it: finished cells are
skipped, failed and missing ones run. A cell's id is a hash of its complete settings, so
a changed sweep of the same experiment (more seeds, another value) may reuse the
directory: it runs only its new cells, the manifest takes the new definition (the old
ones kept under ``history``) and the tables hold the new sweep's cells. A directory
holding another experiment's sweep is refused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurosim.errors import ConfigError
from neurosim.sweep.grid import Cell, SweepSpec, _plain

Log = Callable[[str], None]
MANIFEST = "sweep.json"
#: The tables are rewritten at the end of a run and, during it, at most this often.
TABLES_EVERY_S = 60.0
#: Settings that make each experiment's run tiny while touching every kernel it uses
#: (the same dtypes, rules and networks): the warm-up that compiles before fanning out.
#: None: the experiment runs no numba kernel.
WARM_SETTINGS: dict[str, Callable[[dict[str, Any]], dict[str, Any]] | None] = {
    "table3": lambda s: {"samples": s["batch"]},
    "ablations": lambda s: {"train_samples": s["batch"], "test_samples": 1, "epochs": 1},
    "rosenbaum": None,
}


@dataclass
class SweepReport:
    """What a run of a sweep did: cells finished before (``skipped``), now (``done``),
    that failed (``failed``: id, label, error line) and left for a later run (``pending``)."""

    path: Path
    total: int
    skipped: int = 0
    done: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    pending: int = 0
    seconds: float = 0.0


def run_cell(experiment: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Run one cell (the experiment on ``settings``) pinned to one thread; its rows and time.

    Runs on a worker: the experiment's ``run`` builds every row from the cell's own
    settings, seed and data, so the result does not depend on where it runs.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurosim.experiments import experiment as module_of
    from neurosim.experiments.common import build_settings
    from neurosim.sweep.cluster import pinned

    module = module_of(experiment)
    with pinned():
        t0 = time.perf_counter()
        outcome = module.run(build_settings(module.Settings, settings, f"sweep cell of {experiment}"), _quiet)
        seconds = time.perf_counter() - t0
    plt.close(outcome.figure)
    return {"rows": _plain(outcome.rows), "seconds": seconds, "host": socket.gethostname(), "pid": os.getpid()}


def warm_up(experiment: str, settings: dict[str, Any]) -> None:
    """Compile (or load from numba's cache) every kernel a cell of ``settings`` uses."""
    shrink = WARM_SETTINGS.get(experiment)
    if shrink is not None:
        run_cell(experiment, {**settings, **shrink(settings)})


def _quiet(_: str) -> None:
    """The experiments' log, silenced in cells (the sweep reports per cell)."""


def run_sweep(spec: SweepSpec, out: str | Path, *, serial: bool = False, scheduler: str | None = None,
              workers: int | None = None, max_cells: int | None = None, progress: bool = True,
              log: Log = print) -> SweepReport:
    """Run the cells of ``spec`` not yet finished in ``out``; rewrite the tables; return a report.

    ``serial``: in this process, one cell after another (no dask needed). Otherwise on the
    dask cluster at ``scheduler``, or on a new local cluster of ``workers`` processes.
    ``max_cells``: run at most this many cells now and leave the rest for a later run.
    A cell that raises is recorded in ``failed/`` and the others go on.
    """
    if max_cells is not None and (isinstance(max_cells, bool) or not isinstance(max_cells, int) or max_cells < 1):
        raise ConfigError(f"--max-cells must be an int >= 1, got {max_cells!r}")
    cells = spec.cells()
    root = Path(out)
    _claim(root, spec, cells)
    done_ids = {c.id for c in cells if (root / "cells" / f"{c.id}.json").is_file()}
    pending = [c for c in cells if c.id not in done_ids]
    todo = pending[:max_cells] if max_cells is not None else pending
    report = SweepReport(root, len(cells), skipped=len(done_ids), pending=len(pending) - len(todo))
    log(f"sweep {spec.experiment}: {len(cells)} cells, {len(done_ids)} already done, running {len(todo)}")
    t0 = time.perf_counter()
    if todo:
        bar = _progress_bar(len(cells), len(done_ids), progress)
        written = [t0]
        try:
            def finished(cell: Cell, result: dict[str, Any] | None, error: str | None) -> None:
                if result is not None:
                    _write_json(root / "cells" / f"{cell.id}.json",
                                {"id": cell.id, "label": cell.label, "overrides": cell.overrides, **result})
                    (root / "failed" / f"{cell.id}.json").unlink(missing_ok=True)
                    report.done += 1
                    line = f"cell {cell.label}: done in {result['seconds']:.1f} s"
                else:
                    _write_json(root / "failed" / f"{cell.id}.json",
                                {"id": cell.id, "label": cell.label, "overrides": cell.overrides, "error": error})
                    first = (error or "").strip().splitlines()[-1:] or ["unknown error"]
                    report.failed.append((cell.id, cell.label, first[0]))
                    line = f"cell {cell.label}: FAILED: {first[0]}"
                bar.update(1)
                if time.perf_counter() - written[0] > TABLES_EVERY_S:
                    write_tables(root, spec, cells)
                    written[0] = time.perf_counter()
                if bar.disable:
                    log(f"[{report.skipped + report.done + len(report.failed)}/{len(cells)}] {line}")
                elif result is None:
                    bar.write(line)

            runner = _run_serial if serial else _run_dask
            runner(spec, todo, finished, scheduler=scheduler, workers=workers, log=log)
        finally:
            bar.close()
            report.seconds = time.perf_counter() - t0
            write_tables(root, spec, cells)
    return report


def _run_serial(spec: SweepSpec, todo: list[Cell], finished: Callable, *, scheduler: str | None,
                workers: int | None, log: Log) -> None:
    if scheduler is not None or workers is not None:
        raise ConfigError("--serial runs here, one cell after another: drop --scheduler and --workers")
    for cell in todo:
        try:
            result = run_cell(spec.experiment, {**spec.settings, **cell.overrides})
        except Exception:  # a failed cell is reported, the others go on
            finished(cell, None, traceback.format_exc())
        else:
            finished(cell, result, None)


def _run_dask(spec: SweepSpec, todo: list[Cell], finished: Callable, *, scheduler: str | None,
              workers: int | None, log: Log) -> None:
    from neurosim.sweep.cluster import connect, require_distributed, warm_workers

    distributed = require_distributed()
    with connect(scheduler, workers) as client:
        if WARM_SETTINGS.get(spec.experiment) is not None:
            warm_workers(client, _Warm(spec.experiment, spec.settings), log)
        futures = {client.submit(run_cell, spec.experiment, {**spec.settings, **cell.overrides},
                                 key=f"neurosim-cell-{cell.id}", pure=False): cell for cell in todo}
        for future in distributed.as_completed(futures):
            cell = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # a failed cell (or a lost worker) is reported, the others go on
                tb = "".join(traceback.format_tb(future.traceback())) if future.status == "error" else ""
                finished(cell, None, f"{tb}{type(exc).__name__}: {exc}")
            else:
                finished(cell, result, None)


@dataclass(frozen=True)
class _Warm:
    """``warm_up`` of one sweep, as a picklable callable for the workers."""

    experiment: str
    settings: dict[str, Any]

    def __call__(self) -> None:
        warm_up(self.experiment, self.settings)


def _claim(root: Path, spec: SweepSpec, cells: list[Cell]) -> None:
    """Create ``root`` with its manifest, or check that the manifest there is this sweep's."""
    from neurosim.recording import environment

    path = root / MANIFEST
    definition = spec.to_json()
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the sweep manifest {path}: {exc}") from None
        previous = old.get("definition", {})
        if previous.get("experiment") != spec.experiment:
            raise ConfigError(f"{root} holds a sweep of another experiment ({previous.get('experiment')!r}, not "
                              f"{spec.experiment!r}); give another --out")
        if previous == definition:
            return
        old["history"] = [*old.get("history", []), previous]
        old.update({"definition": definition, "environment": environment(),
                    "cells": [{"id": c.id, "label": c.label, "overrides": c.overrides} for c in cells]})
        _write_json(path, old)
        return
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"{root} exists and is not a sweep directory (no {MANIFEST}); give another --out")
    try:
        (root / "cells").mkdir(parents=True, exist_ok=True)
        (root / "failed").mkdir(exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the sweep directory {root}: {exc.strerror or exc}") from None
    _write_json(path, {"definition": definition, "environment": environment(), "created": time.time(),
                       "cells": [{"id": c.id, "label": c.label, "overrides": c.overrides} for c in cells]})


def _write_json(path: Path, data: Any) -> None:
    _write_text(path, json.dumps(data, indent=1, allow_nan=True))


def _write_text(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_rows(root: str | Path, cells: Iterable[Cell] | None = None) -> list[dict[str, Any]]:
    """The rows of the finished cells of the sweep in ``root``, in cell order."""
    root = Path(root)
    if cells is None:
        manifest = json.loads((root / MANIFEST).read_text())
        cells = [Cell(c["id"], c["label"], c["overrides"]) for c in manifest["cells"]]
    rows: list[dict[str, Any]] = []
    for cell in cells:
        path = root / "cells" / f"{cell.id}.json"
        if path.is_file():
            rows.extend(json.loads(path.read_text())["rows"])
    return rows


def write_tables(root: Path, spec: SweepSpec, cells: list[Cell]) -> None:
    """``table.csv``, ``summary.csv`` and ``summary.md`` from the finished cells."""
    from neurosim.experiments.common import markdown_table
    from neurosim.sweep.stats import STAT_SPECS, summary_rows

    rows = []  # the grid axes' values as leading columns, so that the summary keeps them apart
    for cell in cells:
        rows += [{**{k: cell.overrides[k] for k in spec.grid}, **r} for r in load_rows(root, [cell])]
    done = sum((root / "cells" / f"{c.id}.json").is_file() for c in cells)
    failed = sum((root / "failed" / f"{c.id}.json").is_file() for c in cells)
    seconds = [json.loads((root / "cells" / f"{c.id}.json").read_text())["seconds"] for c in cells
               if (root / "cells" / f"{c.id}.json").is_file()]
    status = (f"{done} of {len(cells)} cells done, {failed} failed"
              + (f"; {sum(seconds):.0f} s of compute, {sum(seconds) / len(seconds):.1f} s per cell" if seconds else ""))
    if not rows:
        _write_text(root / "summary.md", f"# sweep {spec.experiment}\n\n{status}\n")
        return
    _write_text(root / "table.csv", _csv(rows))
    stat = STAT_SPECS[spec.experiment]
    stat = dataclasses.replace(stat, keys=(*spec.grid, *stat.keys))
    summary = summary_rows(rows, stat)
    _write_text(root / "summary.csv", _csv(summary))
    _write_text(root / "summary.md", f"# sweep {spec.experiment}\n\n{status}. {stat.note}\n\n" + markdown_table(summary))


def _csv(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    keys = list(rows[0])
    writer.writerow(keys)
    for row in rows:
        writer.writerow([repr(float(v)) if isinstance(v, float) and not math.isnan(v) else
                         ("nan" if isinstance(v, float) else v) for v in (row[k] for k in keys)])
    return buf.getvalue()


def _progress_bar(total: int, initial: int, progress: bool) -> Any:
    """A tqdm bar of finished cells on a terminal; disabled when asked or when stderr is not a tty."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="cell", desc="cells", disable=None if progress else True,
                dynamic_ncols=True)
