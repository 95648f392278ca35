"""``neurosim sweep``: run an experiment's grid as independent cells, on dask or serially."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click


@click.command()
@click.argument("target", metavar="NAME|CONFIG")
@click.option("--full", is_flag=True, help="Start from the paper's full setting (NAME only; a CONFIG says it itself).")
@click.option("--out", metavar="DIR", help="Sweep directory (default: runs/sweep-NAME[-full]); rerun to resume.")
@click.option("--scheduler", metavar="tcp://HOST:PORT|FILE",
              help="Use an existing dask cluster: its scheduler's address or scheduler file.")
@click.option("--workers", type=int, help="Workers of the local cluster (default: the number of cores).")
@click.option("--serial", is_flag=True, help="Run the cells here, one after another (no dask needed).")
@click.option("--max-cells", type=int, help="Run at most this many of the remaining cells; a later run resumes.")
@click.option("--split", "splits", metavar="NAME[,NAME...]", multiple=True,
              help="A list setting cut into one cell per value (repeat for more axes; NAME,NAME: one axis, "
                   "the union of the settings' values). Default: the experiment's usual axes.")
@click.option("--seed", "seeds", type=int, multiple=True, help="Seed (repeat for several); overrides the setting.")
@click.option("--set", "assignments", metavar="KEY=VALUE", multiple=True,
              help="Override one setting, VALUE in TOML syntax (e.g. --set samples=1000).")
@click.option("--no-progress", is_flag=True, help="No progress bar (on a terminal); one line per cell instead.")
@click.pass_context
def sweep(ctx: click.Context, target: str, full: bool, out: str | None, scheduler: str | None,
          workers: int | None, serial: bool, max_cells: int | None, splits: tuple[str, ...],
          seeds: tuple[int, ...], assignments: tuple[str, ...], no_progress: bool) -> None:
    """Run experiment NAME (or the sweep defined in the TOML file CONFIG) as a grid of cells.

    Cells (settings x seeds) run as independent tasks on a local dask cluster, on the
    cluster at --scheduler, or here with --serial. Each finished cell is written to the
    sweep directory at once; running the same command again skips them.
    """
    from neurosim.cli import _assignment, _one_line_errors
    from neurosim.sweep.grid import load_spec, make_spec
    from neurosim.sweep.runner import run_sweep

    with _one_line_errors(ctx):
        overrides: dict[str, Any] = dict(_assignment(a) for a in assignments)
        if seeds:
            overrides["seeds"] = list(seeds)
        split = [s.split(",") if "," in s else s for s in splits] or None
        if Path(target).suffix == ".toml" or Path(target).is_file():
            if full:
                raise click.UsageError("a sweep definition sets `full` itself; drop --full")
            spec = load_spec(target, overrides)
            if split is not None:
                spec = make_spec(spec.experiment, spec.full, {**spec.settings, **overrides}, split, spec.grid)
        else:
            spec = make_spec(target, full, overrides, split)
        root = out if out is not None else Path("runs") / f"sweep-{spec.experiment}{'-full' if spec.full else ''}"
        previous = signal.signal(signal.SIGTERM, _interrupt)  # a batch system's stop: close the cluster cleanly
        try:
            report = run_sweep(spec, root, serial=serial, scheduler=scheduler, workers=workers,
                               max_cells=max_cells, progress=not no_progress, log=click.echo)
        except KeyboardInterrupt:
            click.echo(f"error: interrupted; the finished cells are in {root}; the same command resumes the sweep",
                       err=True)
            ctx.exit(130)
        finally:
            signal.signal(signal.SIGTERM, previous)
    for cell_id, label, error in report.failed:
        click.echo(f"failed cell {cell_id} ({label}): {error}", err=True)
    finished = report.skipped + report.done
    click.echo(f"{finished} of {report.total} cells done ({report.done} now, in {report.seconds:.0f} s), "
               f"{len(report.failed)} failed, {report.pending} left; tables in {report.path}")
    if report.failed:
        ctx.exit(1)


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM as Ctrl-C: the finished cells are already on disk; the cluster is closed."""
    raise KeyboardInterrupt
