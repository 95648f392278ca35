"""The ``neurosim`` command line.

``neurosim train`` with no arguments trains a 64-32-10 tanh MLP (post convention,
cross-entropy) on the bundled 8x8 digits with Fa-Z-IL on the event loop and, from the
same initial weights, with backprop; it prints a logistic regression's accuracy on the
same split to judge by, one line per epoch and where the run was saved. Settings come
from the defaults of :class:`neurosim.training.TrainConfig`, then a ``--config`` file
(``models/*.toml``: keys are the option names with ``_`` for ``-``), then the options
given on the command line. An option that cannot apply to the run (``--activation``
for a ``[model]`` run, ``--data-dir`` for the bundled digits, a rule option the rule
does not take) is refused, so ``config.json`` records exactly what ran.

A run checkpoints after every epoch; Ctrl-C or SIGTERM stops it with a checkpoint and
prints the command that resumes it (``neurosim train --resume RUN_DIR``). ``neurosim
eval`` and ``neurosim predict`` use a finished run's weights.

Every error, neurosim's own (a :class:`~neurosim.errors.NeurosimError`) or the
parser's (an unknown option, a malformed value), is printed as one line
``error: ...`` on stderr with exit status 2, never as a traceback.
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
EXIT_INTERRUPTED = 130
_NONE = ("", "none")


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
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return {str(k).replace("-", "_"): v for k, v in data.items()}


class _Hidden(click.ParamType):
    """Hidden layer widths: one or more positive integers (``32``, ``32,32``), or ``none``/``""``."""

    name = "WIDTHS"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        text = str(value).strip()
        if text.lower() in _NONE:
            return ()
        widths = []
        for part in text.replace(",", " ").split():
            if not part.isdigit() or int(part) < 1:
                self.fail(f"{part!r} is not a layer width (a positive integer); give widths such as "
                          f"'--hidden 32 32', or 'none' for no hidden layer", param, ctx)
            widths.append(int(part))
        return tuple(widths)


class _TrainCommand(click.Command):
    """``--hidden`` takes one or more values: ``--hidden 32 32`` (click options take one).

    The grammar: ``--hidden W [W ...]`` where each ``W`` is a positive integer or a
    comma-separated list of them, ``--hidden none`` or ``--hidden ""`` for no hidden
    layer, or ``--hidden=W,W``. The values run to the next argument starting with
    ``--``; ``--hidden`` with no value is an error, not an empty network.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(args):
            if args[i] == "--":
                out.extend(args[i:])
                break
            if args[i] == "--hidden":
                values = []
                i += 1
                while i < len(args) and not args[i].startswith("--") and args[i] not in ("-h",):
                    values.append(args[i])
                    i += 1
                if not values:
                    raise click.BadOptionUsage("hidden", "--hidden needs layer widths (e.g. --hidden 32 32), "
                                                         "or 'none' for no hidden layer")
                if len(values) > 1 and any(v.strip().lower() in _NONE for v in values):
                    raise click.BadOptionUsage("hidden", f"--hidden: 'none' cannot be mixed with widths, got {values}")
                out.append("--hidden=" + ",".join(values))
                continue
            out.append(args[i])
            i += 1
        return super().parse_args(ctx, out)


class _Group(click.Group):
    """The command group; the parser's own errors are one ``error: ...`` line too (exit status 2)."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            hint = ""
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                hint = f" (see: {exc.ctx.command_path} --help)"
            click.echo(f"error: {_one_line_text(exc.format_message())}{hint}", err=True)
            sys.exit(EXIT_ERROR)
        except click.Abort:
            click.echo("error: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="neurosim")
def main() -> None:
    """neurosim: an event-driven simulator of predictive coding networks."""


@main.command(cls=_TrainCommand)
@click.option("--config", "config_file", metavar="FILE", help="Run definition (models/*.toml); options given here override it.")
@click.option("--dataset", metavar="NAME", help="digits (bundled, default), mnist or fashion-mnist.")
@click.option("--data-dir", metavar="DIR", help="Folder holding mnist/ and fashion-mnist/ (default: $NEUROSIM_DATA_DIR).")
@click.option("--rule", metavar="RULE", help="fazil (default), zil, il, strict, fixedpred or ipc.")
@click.option("--hidden", type=_Hidden(), metavar="W [W...]|none", help="Hidden layer widths (default: 32); 'none' for no hidden layer.")
@click.option("--activation", metavar="NAME", help="tanh (default), sigmoid, relu or linear.")
@click.option("--convention", metavar="pre|post", help="post (default): act(W v + b); pre (Song et al.): W act(v) + b.")
@click.option("--loss", metavar="mse|ce", help="Loss summed over the batch (default: ce).")
@click.option("--epochs", type=int, help="Passes over the training set (default: 40).")
@click.option("--batch", type=int, help="Mini-batch size (default: 20).")
@click.option("--lr", type=float, help="Learning rate alpha, per sample (losses are sums over the batch; default 0.04).")
@click.option("--seed", type=int, help="Seed of the initial weights and of the shuffling (default: 0).")
@click.option("--dtype", metavar="float64|float32", help="Floating type of the simulation (default: float64).")
@click.option("--t-d", "t_d", type=int, help="Fa-Z-IL: the change detector's window (rule default: 4).")
@click.option("--ticks", type=int, help="Fa-Z-IL, iPC: learning ticks per mini-batch (rule default: Fa-Z-IL one per layer, iPC 20).")
@click.option("--gamma", type=float, help="IL, Z-IL, Fa-Z-IL, iPC: inference step size.")
@click.option("--t-c", "t_c", type=int, help="IL: inference steps before the update.")
@click.option("--eta", type=float, help="Strict PC, FixedPred: inference step size.")
@click.option("--n", "n", type=int, help="Strict PC, FixedPred: inference steps.")
@click.option("--limit", type=int, help="Use only the first LIMIT samples of each split.")
@click.option("--threads", type=int, help="Threads of the event loop (default 1; the same bits for any number).")
@click.option("--out", metavar="DIR", help="Run directory to create (default: runs/<time>-<dataset>-<rule>).")
@click.option("--resume", metavar="RUN_DIR", help="Continue an interrupted run from its last checkpoint (no other run options).")
@click.option("--baseline/--no-baseline", default=None,
              help="Fit a logistic regression on the same split to compare (default: on for small data sets such as digits).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar (it is hidden anyway when stderr is not a terminal).")
@click.pass_context
def train(ctx: click.Context, config_file: str | None, resume: str | None, baseline: bool | None, no_progress: bool,
          threads: int | None, **options: Any) -> None:
    """Train a PC rule on the event loop beside backprop, from the same weights.

    With no options: a 64-32-10 tanh MLP (post convention, cross-entropy) on the
    bundled digits, Fa-Z-IL and backprop side by side, beside a logistic regression;
    the run (config.json, metrics.csv, params_*.npz) is saved under runs/.
    """
    from neurosim.training import RunInterrupted

    progress = False if no_progress else None
    with _one_line_errors(ctx):
        try:
            if resume is not None:
                given = [f"--{k.replace('_', '-')}" for k, v in options.items() if v is not None]
                given += ["--config"] if config_file is not None else []
                if given:
                    raise ConfigError(f"--resume continues a run with its saved settings; {', '.join(given)} "
                                      "cannot apply (only --threads, --no-progress and --no-baseline can)")
                from neurosim.training import train as run_training

                result = run_training(None, progress=progress, resume=resume, baseline=baseline, threads=threads)
            else:
                result = _train(config_file, options, progress, baseline, threads)
        except RunInterrupted as stop:
            click.echo(f"{stop.signal_name}: stopped after {stop.epochs_done} of {stop.epochs} epochs; the checkpoint "
                       f"is saved. Resume with:", err=True)
            click.echo(f"  neurosim train --resume {stop.run_dir}", err=True)
            ctx.exit(EXIT_INTERRUPTED)
    click.echo(f"run saved to {result.run_dir}")


@main.command(name="eval")
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("--dataset", metavar="NAME", help="Evaluate on this data set instead of the run's (same input layout).")
@click.option("--data-dir", metavar="DIR", help="Folder holding mnist/ and fashion-mnist/ (default: the run's, $NEUROSIM_DATA_DIR).")
@click.option("--limit", type=int, help="The first LIMIT samples of each split (default: the run's).")
@click.pass_context
def eval_(ctx: click.Context, run_dir: str, dataset: str | None, data_dir: str | None, limit: int | None) -> None:
    """Loss and accuracy of each weight set of a finished run, on both splits."""
    from neurosim.runs import evaluate, load_run

    with _one_line_errors(ctx):
        run = load_run(run_dir)
        rows = evaluate(run, dataset=dataset, data_dir=data_dir, limit=limit)
    click.echo(f"{run.path}: {rows[0]['dataset']} ({rows[0]['n_train']} train / {rows[0]['n_test']} test samples)")
    for row in rows:
        click.echo(f"{row['params']:>10s}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.2%} | "
                   f"test loss {row['test_loss']:.4f} acc {row['test_acc']:.2%}")


@main.command()
@click.argument("run_dir", metavar="RUN_DIR")
@click.argument("inputs", metavar="INPUT.npy|INPUT.npz")
@click.option("--out", required=True, metavar="OUT.npz", help="File to write (must not exist).")
@click.option("--params", "which", metavar="NAME", help="Weight set: the rule's (default), backprop or init.")
@click.pass_context
def predict(ctx: click.Context, run_dir: str, inputs: str, out: str, which: str | None) -> None:
    """Predictions of a finished run's model for the samples in INPUT, written to OUT.npz.

    INPUT.npy: one array, rows are samples (for a model with one input). INPUT.npz: one
    array per input vertex, by name (x1..xT for the recurrent models). OUT.npz holds one
    array per output vertex (e.g. 'out': the output layer's values, one row per sample).
    """
    from neurosim.runs import load_run, predict_file

    with _one_line_errors(ctx):
        run = load_run(run_dir)
        path, shapes = predict_file(run, inputs, out, which)
    click.echo(f"predictions of {shapes} written to {path}")


@main.command()
@click.argument("name", required=False)
@click.option("--list", "list_", is_flag=True, help="List the experiments and exit.")
@click.option("--full", is_flag=True, help="The paper's full setting (the definition's [full] table).")
@click.option("--show", is_flag=True, help="Print the experiment's definition (TOML) and exit.")
@click.option("--out", metavar="DIR", help="Run directory to create (default: runs/<time>-experiment-NAME).")
@click.option("--data-dir", metavar="DIR", help="Folder holding mnist/ (default: $NEUROSIM_DATA_DIR).")
@click.option("--dataset", metavar="NAME", help="Override the experiment's data set (e.g. digits, bundled).")
@click.option("--seed", "seeds", type=int, multiple=True, help="Seed (repeat for several); overrides the setting.")
@click.option("--set", "assignments", metavar="KEY=VALUE", multiple=True,
              help="Override one setting, VALUE in TOML syntax (e.g. --set samples=40 --set 't_d=[1, 4]').")
@click.pass_context
def experiment(ctx: click.Context, name: str | None, list_: bool, full: bool, show: bool, out: str | None,
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
        if show:
            from neurosim.experiments import DEFINITIONS, experiment as find

            find(name)
            click.echo((DEFINITIONS / f"{name}.toml").read_text(encoding="utf-8"), nl=False)
            return
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
        ctx.exit(EXIT_INTERRUPTED)


def _one_line(exc: BaseException) -> str:
    return _one_line_text(str(exc)) or type(exc).__name__


def _one_line_text(text: str) -> str:
    return " ".join(text.split())


def _train(config_file: str | None, options: dict[str, Any], progress: bool | None, baseline: bool | None,
           threads: int | None):
    from neurosim.recording import default_run_dir
    from neurosim.tasks import sequence_dataset
    from neurosim.training import TrainConfig, train

    values: dict[str, Any] = {}
    given = {k: v for k, v in options.items() if v is not None}
    if config_file is not None:
        values.update(_load_toml(config_file))
        TrainConfig.from_dict(values, source=f"config file {config_file}")  # unknown keys, bad values
        if values.get("model") is not None:
            refused = [k for k in ("hidden", "activation", "convention", "loss") if k in given]
            if refused:
                option = "--" + refused[0]
                raise ConfigError(f"{option} does not apply: {config_file} defines the model in its [model] table; "
                                  f"set {refused[0]} there (or use a config without [model])")
    values.update(given)
    if threads is not None:
        values["threads"] = threads
    if values.get("data_dir") is not None and sequence_dataset(str(values.get("dataset", "digits"))) is None:
        from neurosim.data import dataset_info

        if not dataset_info(str(values.get("dataset", "digits"))).needs_data_dir:
            where = "--data-dir" if "data_dir" in given else f"data_dir in {config_file}"
            raise ConfigError(f"{where} does not apply: {values.get('dataset', 'digits')} is bundled with "
                              "scikit-learn (drop it, or choose --dataset mnist or fashion-mnist)")
    config = TrainConfig.from_dict(values)
    if config.out is None:
        config.out = str(default_run_dir(f"{config.dataset}-{config.rule}", Path("runs")))
    return train(config, progress=progress, baseline=baseline)


from neurosim.sweep.cli import sweep as _sweep  # noqa: E402  (its own module; click loads it lazily)

main.add_command(_sweep)

if __name__ == "__main__":  # pragma: no cover
    main(prog_name="neurosim")
