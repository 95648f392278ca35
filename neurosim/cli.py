"""The ``neurosim`` command line.

``neurosim train`` with no arguments trains a 64-32-10 sigmoid MLP on the bundled 8x8
digits with Fa-Z-IL on the event loop and, from the same initial weights, with
backprop; it prints one line per epoch and where the run was saved. Settings come from
the defaults of :class:`neurosim.training.TrainConfig`, then a ``--config`` file
(``models/*.toml``: keys are the option names with ``_`` for ``-``), then the options
given on the command line.

Every error neurosim raises on purpose (a :class:`~neurosim.errors.NeurosimError`) is
printed as one line ``error: ...`` on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from neurosim import __version__
from neurosim.errors import ConfigError, NeurosimError

EXIT_ERROR = 2
_NUMBER = "0123456789"


def _load_toml(path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return {str(k).replace("-", "_"): v for k, v in data.items()}


class _Hidden(click.ParamType):
    """Hidden layer widths: ``"32"``, ``"32,32"`` or ``"32 32"``; ``""`` for none."""

    name = "WIDTHS"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        parts = str(value).replace(",", " ").split()
        try:
            return tuple(int(p) for p in parts)
        except ValueError:
            self.fail(f"{value!r} is not a list of layer widths such as '32 32'", param, ctx)


class _TrainCommand(click.Command):
    """Lets ``--hidden`` take several widths: ``--hidden 32 32`` (click options take one value)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(args):
            if args[i] == "--":
                out.extend(args[i:])
                break
            if args[i] == "--hidden":
                widths = []
                i += 1
                while i < len(args) and args[i] and all(c in _NUMBER + "," for c in args[i]):
                    widths.append(args[i])
                    i += 1
                out.append("--hidden=" + ",".join(widths))
                continue
            out.append(args[i])
            i += 1
        return super().parse_args(ctx, out)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="neurosim")
def main() -> None:
    """neurosim: an event-driven simulator of predictive coding networks."""


@main.command(cls=_TrainCommand)
@click.option("--config", "config_file", metavar="FILE", help="Run definition (models/*.toml); options given here override it.")
@click.option("--dataset", metavar="NAME", help="digits (bundled, default), mnist or fashion-mnist.")
@click.option("--data-dir", metavar="DIR", help="Folder holding mnist/ and fashion-mnist/ (default: $NEUROSIM_DATA_DIR).")
@click.option("--rule", metavar="RULE", help="fazil (default), zil, il, strict or fixedpred.")
@click.option("--hidden", type=_Hidden(), metavar="N [N...]", help="Hidden layer widths (default: 32).")
@click.option("--activation", metavar="NAME", help="sigmoid (default), tanh, relu or linear.")
@click.option("--convention", metavar="pre|post", help="pre (Song et al., default): W act(v) + b; post: act(W v + b).")
@click.option("--loss", metavar="mse|ce", help="Loss summed over the batch (default: mse).")
@click.option("--epochs", type=int, help="Passes over the training set.")
@click.option("--batch", type=int, help="Mini-batch size (default: 20).")
@click.option("--lr", type=float, help="Learning rate alpha, per sample (losses are sums over the batch).")
@click.option("--seed", type=int, help="Seed of the initial weights and of the shuffling (default: 0).")
@click.option("--dtype", metavar="float64|float32", help="Floating type of the simulation (default: float64).")
@click.option("--t-d", "t_d", type=int, help="Fa-Z-IL: the change detector's window (rule default: 4).")
@click.option("--ticks", type=int, help="Fa-Z-IL: learning ticks per mini-batch (rule default: one per layer).")
@click.option("--gamma", type=float, help="IL, Z-IL, Fa-Z-IL: inference step size.")
@click.option("--t-c", "t_c", type=int, help="IL: inference steps before the update.")
@click.option("--eta", type=float, help="Strict PC, FixedPred: inference step size.")
@click.option("--n", "n", type=int, help="Strict PC, FixedPred: inference steps.")
@click.option("--limit", type=int, help="Use only the first LIMIT samples of each split.")
@click.option("--out", metavar="DIR", help="Run directory to create (default: runs/<time>-<dataset>-<rule>).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar (per-epoch lines are still printed).")
@click.pass_context
def train(ctx: click.Context, config_file: str | None, no_progress: bool, **options: Any) -> None:
    """Train a PC rule on the event loop beside backprop, from the same weights.

    With no options: a 64-32-10 sigmoid MLP on the bundled digits, Fa-Z-IL and
    backprop side by side; the run (config.json, metrics.csv, params_*.npz) is saved
    under runs/.
    """
    with _one_line_errors(ctx):
        result = _train(config_file, options, progress=not no_progress)
    click.echo(f"run saved to {result.run_dir}")


@main.command()
@click.argument("name", required=False)
@click.option("--list", "list_", is_flag=True, help="List the experiments and exit.")
@click.option("--full", is_flag=True, help="The paper's full setting (models/experiments/NAME.toml [full]).")
@click.option("--out", metavar="DIR", help="Run directory to create (default: runs/<time>-experiment-NAME).")
@click.option("--data-dir", metavar="DIR", help="Folder holding mnist/ (default: $NEUROSIM_DATA_DIR).")
@click.option("--dataset", metavar="NAME", help="Override the experiment's data set (e.g. digits, bundled).")
@click.option("--seed", "seeds", type=int, multiple=True, help="Seed (repeat for several); overrides the setting.")
@click.option("--set", "assignments", metavar="KEY=VALUE", multiple=True,
              help="Override one setting, VALUE in TOML syntax (e.g. --set samples=40 --set 't_d=[1, 4]').")
@click.pass_context
def experiment(ctx: click.Context, name: str | None, list_: bool, full: bool, out: str | None,
               data_dir: str | None, dataset: str | None, seeds: tuple[int, ...],
               assignments: tuple[str, ...]) -> None:
    """Run experiment NAME (a paper's table or figure); writes table.csv, table.md, figure.png, config.json."""
    from neurosim.experiments import EXPERIMENTS, run_experiment
    from neurosim.recording import default_run_dir

    if list_:
        for key, module in EXPERIMENTS.items():
            click.echo(f"{key:10s} {module.DESCRIPTION}")
        return
    with _one_line_errors(ctx):
        if name is None:
            raise ConfigError(f"name an experiment ({', '.join(EXPERIMENTS)}) or pass --list")
        overrides = dict(_assignment(a) for a in assignments)
        overrides.update({k: v for k, v in (("data_dir", data_dir), ("dataset", dataset),
                                            ("seeds", list(seeds) or None)) if v is not None})
        target = out if out is not None else default_run_dir(f"experiment-{name}", Path("runs"))
        path = run_experiment(name, target, full=full, overrides=overrides, log=click.echo)
    click.echo(f"run saved to {path}")


def _assignment(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE parsed as TOML (a bare word is taken as a string)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set takes KEY=VALUE, got {text!r}")
    try:
        parsed = _load_toml_text(f"v = {value}")["v"]
    except ConfigError:
        parsed = value.strip()
    return key.strip().replace("-", "_"), parsed


def _load_toml_text(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(exc)) from None


@contextlib.contextmanager
def _one_line_errors(ctx: click.Context) -> Iterator[None]:
    """A neurosim error becomes one ``error: ...`` line and exit status 2; an interrupt, 130."""
    try:
        yield
    except NeurosimError as exc:
        click.echo(f"error: {_one_line(exc)}", err=True)
        ctx.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        click.echo("error: interrupted; no run directory was written", err=True)
        ctx.exit(130)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _train(config_file: str | None, options: dict[str, Any], progress: bool):
    from neurosim.recording import default_run_dir
    from neurosim.training import TrainConfig, train

    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(_load_toml(config_file))
        TrainConfig.from_dict(values, source=f"config file {config_file}")  # unknown keys, bad values
    values.update({k: v for k, v in options.items() if v is not None})
    config = TrainConfig.from_dict(values)
    if config.out is None:
        config.out = str(default_run_dir(f"{config.dataset}-{config.rule}", Path("runs")))
    return train(config, progress=progress)


from neurosim.sweep.cli import sweep as _sweep  # noqa: E402  (its own module; click loads it lazily)

main.add_command(_sweep)

if __name__ == "__main__":  # pragma: no cover
    main(prog_name="neurosim")
