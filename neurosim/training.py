"""Train a predictive coding rule on the event loop beside backprop, from the same weights.

:func:`train` builds an MLP ``[n_in, *hidden, n_classes]`` for the data set, draws its
initial parameters with :func:`neurosim.params.init_params` (seed ``config.seed``) and
trains two copies on the same mini-batches, in the same order:

- the chosen rule (``config.rule``, default Fa-Z-IL) on the numba event loop
  (:class:`neurosim.engine.Simulator`), and
- plain backprop SGD from the vectorized reference
  (:func:`neurosim.reference.backprop.sgd_step`), with the same learning rate.

The training set is shuffled once per epoch by ``numpy.random.default_rng(seed)``;
the mini-batches are consecutive slices of that order (the last one may be smaller).
Losses are sums over a mini-batch (never means), so ``lr`` is a per-sample step size.

After every epoch it records, for both copies, the training loss (the loss of the
final parameters over the whole training set, divided by its size), the test accuracy
(argmax of the prediction), the largest absolute difference between the two copies'
weights, and the number of Fa-Z-IL *late firings* (phi firings at a step other than
the neuron's Z-IL trigger step, which make Fa-Z-IL differ from backprop).

Exact rules (Z-IL, Fa-Z-IL where every backprop error is nonzero, FixedPred with
``eta = 1``) keep the weight difference at round-off (about 1e-15 in float64).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurosim.data import dataset_info, resolve_data_dir
from neurosim.errors import ConfigError, DivergenceError
from neurosim.graph.spec import output_vertices
from neurosim.params import init_params
from neurosim.recording import RunDirectory, environment
from neurosim.rules import Rule, make_rule, require_count, require_positive
from neurosim.tasks import make_task, sequence_dataset

#: Epochs of the default run (``neurosim train``): Fa-Z-IL on digits, > 80% test accuracy.
DEFAULT_EPOCHS = 100
#: Learning rate of the default run; losses are sums over the batch, so it is per sample.
DEFAULT_LR = 0.015
#: Largest batch passed to one prediction call when evaluating accuracy.
EVAL_CHUNK = 1000

_RULE_OPTIONS = ("t_d", "ticks", "gamma", "t_c", "eta", "n")
_DTYPES = ("float64", "float32")


@dataclass
class TrainConfig:
    """Everything that defines a training run (see :func:`train`).

    Rule options (``t_d``, ``ticks``, ``gamma``, ``t_c``, ``eta``, ``n``) are ``None``
    for the rule's own default (Fa-Z-IL: ``t_d = 4``, ``gamma = 1``, one tick per
    layer); giving one the rule does not take raises :class:`ConfigError`.
    ``limit`` keeps the first ``limit`` samples of each split. ``out`` is the run
    directory to write (``None``: write nothing).
    """

    dataset: str = "digits"
    data_dir: str | None = None
    rule: str = "fazil"
    hidden: tuple[int, ...] = (32,)
    activation: str = "sigmoid"
    convention: str = "pre"
    loss: str = "mse"
    epochs: int = DEFAULT_EPOCHS
    batch: int = 20
    lr: float = DEFAULT_LR
    seed: int = 0
    dtype: str = "float64"
    t_d: int | None = None
    ticks: int | None = None
    gamma: float | None = None
    t_c: int | None = None
    eta: float | None = None
    n: int | None = None
    limit: int | None = None
    out: str | None = None
    model: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.hidden, (int, np.integer)) and not isinstance(self.hidden, bool):
            self.hidden = (int(self.hidden),)
        if isinstance(self.hidden, str) or not hasattr(self.hidden, "__iter__"):
            raise ConfigError(f"hidden must be a list of layer widths, got {self.hidden!r}")
        self.hidden = tuple(self.hidden)
        for width in self.hidden:
            require_count("hidden layer width", width, 1)
        from neurosim.validation import MAX_EPOCHS

        require_count("epochs", self.epochs, 1, MAX_EPOCHS)
        require_count("batch", self.batch, 1)
        require_count("seed", self.seed, 0)
        if self.limit is not None:
            require_count("limit", self.limit, 1)
        require_positive("lr", self.lr)
        if str(self.dtype) not in _DTYPES:
            raise ConfigError(f"dtype must be one of {list(_DTYPES)}, got {self.dtype!r}")
        for name in ("dataset", "rule", "activation", "convention", "loss"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a string, got {getattr(self, name)!r}")
        if self.data_dir is not None:
            self.data_dir = str(self.data_dir)
        if self.out is not None:
            self.out = str(self.out)
        if self.model is not None:
            if not isinstance(self.model, Mapping) or "builder" not in self.model:
                raise ConfigError(f"model must be a table with a 'builder' key (cnn, rnn, lstm, mlp), got {self.model!r}")
            self.model = dict(self.model)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "configuration") -> TrainConfig:
        """A config from a dict (e.g. a parsed ``models/*.toml``); unknown keys raise ConfigError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {unknown}; known keys are {sorted(known)}")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict (``hidden`` as a list)."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    def make_rule(self) -> Rule:
        """The :class:`neurosim.rules.Rule` this config asks for, with ``alpha = lr``."""
        options = {k: getattr(self, k) for k in _RULE_OPTIONS}
        return make_rule(self.rule, alpha=float(self.lr), **options)

    def sizes(self) -> list[int]:
        """Layer widths ``[n_in, *hidden, n_classes]`` for the data set."""
        info = dataset_info(self.dataset)
        return [info.n_features, *self.hidden, info.n_classes]


@dataclass
class TrainResult:
    """What :func:`train` returns.

    ``history`` holds one dict per epoch (the rows of ``metrics.csv``); ``params_init``,
    ``params_pc`` (the rule on the event loop) and ``params_bp`` (backprop) are the
    weight sets; ``run_dir`` is where the run was saved (``None`` without ``out``).
    """

    config: TrainConfig
    rule: dict[str, Any]
    sizes: list[int]
    history: list[dict[str, float]] = field(default_factory=list)
    params_init: dict[str, np.ndarray] = field(default_factory=dict)
    params_pc: dict[str, np.ndarray] = field(default_factory=dict)
    params_bp: dict[str, np.ndarray] = field(default_factory=dict)
    run_dir: Path | None = None
    seconds: float = 0.0

    @property
    def test_acc_pc(self) -> float:
        """Final test accuracy of the rule on the event loop."""
        return self.history[-1]["test_acc_pc"]

    @property
    def test_acc_bp(self) -> float:
        """Final test accuracy of backprop."""
        return self.history[-1]["test_acc_bp"]

    @property
    def max_weight_diff(self) -> float:
        """Largest absolute difference between the two final weight sets."""
        return self.history[-1]["max_weight_diff"]


def _echo(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(message, file=sys.stdout)


def _max_abs_diff(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)))) for k in a)


def _predict_all(graph: Any, params: Mapping[str, np.ndarray], x: Any) -> dict[str, np.ndarray]:
    """Backprop's forward-pass prediction of every output vertex."""
    from neurosim.reference import backprop

    states = backprop.forward(graph, params, x)
    return {o: states[o]["mu"] for o in output_vertices(graph)}


def train(
    config: TrainConfig | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = _echo,
) -> TrainResult:
    """Train ``config.rule`` on the event loop and backprop from the same initial weights.

    Parameters
    ----------
    config
        The run (default: ``TrainConfig()``, Fa-Z-IL on a 64-32-10 sigmoid MLP on digits).
    progress
        Show a tqdm progress bar over mini-batches (on stderr).
    log
        Called with one line per epoch and a closing line (default: print to stdout);
        ``None`` prints nothing.

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError, GraphError, DataError
        For an invalid configuration, model or data, before any training.
    DivergenceError
        When either copy diverges; no run directory is left behind.
    """
    config = TrainConfig() if config is None else config
    say = log if log is not None else (lambda message: None)
    started = time.perf_counter()

    rule = config.make_rule()
    dtype = np.dtype(config.dtype).type
    mlp_options = dict(hidden=config.hidden, activation=config.activation, convention=config.convention,
                       loss=config.loss)
    task = make_task(config.dataset, config.model, mlp_options, config.data_dir, config.limit, dtype)
    graph = task.graph
    sizes = config.sizes() if config.model is None else []
    run = RunDirectory(config.out) if config.out is not None else None  # refuses an existing folder now
    n, n_test = len(task.train), len(task.test)
    x_all, y_all = task.train.x(slice(None)), task.train.y(slice(None))

    from neurosim.engine import Simulator
    from neurosim.reference import backprop

    params_init = init_params(graph, config.seed, dtype)
    shown = {k: v for k, v in rule.to_dict().items() if k not in ("rule", "max_energy_ratio") and v is not None}
    options = ", ".join(f"{k}={v}" for k, v in shown.items())
    if config.model is None:
        what = (f"a {'-'.join(map(str, sizes))} {config.activation} MLP ({config.convention} convention, "
                f"{config.loss} loss, {config.dtype}) on {dataset_info(config.dataset).name} ({n} train / "
                f"{n_test} test samples)")
    else:
        what = f"{task.description}, {config.dtype}"
    say(
        f"training {what}, seed {config.seed}: {rule.name} ({options}) on the event loop and backprop "
        f"(alpha={config.lr}) from the same weights, batch {config.batch}, {config.epochs} epochs"
    )
    result = TrainResult(config=config, rule=rule.to_dict(), sizes=sizes, params_init=params_init)

    with ExitStack() as stack:
        # A diverging copy overflows before it is caught below; the check, not numpy's warning, reports it.
        stack.enter_context(np.errstate(over="ignore", invalid="ignore"))
        if run is not None:
            stack.enter_context(run)
            run.write_config(_run_record(config, rule, task.record, n, n_test))
            run.save_params("init", params_init)

        sim = Simulator(graph, params_init, dtype=dtype)
        params_bp = {k: v.copy() for k, v in params_init.items()}
        rng = np.random.default_rng(config.seed)
        n_batches = -(-n // config.batch)
        bar = _progress_bar(config, rule, n_batches, progress)
        stack.callback(bar.close)

        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            order = rng.permutation(n)
            late = 0
            for b in range(n_batches):
                idx = order[b * config.batch : (b + 1) * config.batch]
                xb, yb = task.train.x(idx), task.train.y(idx)
                res = sim.learn(xb, yb, rule)
                if res.diverged:
                    raise DivergenceError(
                        f"{rule.name} diverged on the event loop at epoch {epoch}, mini-batch {b + 1} "
                        f"(learning step {res.diverged_at}): a state became non-finite or the energy "
                        f"exploded; try a smaller --lr (now {config.lr})"
                    )
                late += len(res.late_firings)
                params_bp = backprop.sgd_step(graph, params_bp, xb, yb, config.lr)
                if not all(np.all(np.isfinite(p)) for p in params_bp.values()):
                    raise DivergenceError(
                        f"backprop diverged at epoch {epoch}, mini-batch {b + 1}: its weights became "
                        f"non-finite; try a smaller --lr (now {config.lr})"
                    )
                bar.update(1)

            params_pc = sim.params
            row = {
                "epoch": epoch,
                "train_loss_pc": backprop.loss(graph, params_pc, x_all, y_all) / n,
                "train_loss_bp": backprop.loss(graph, params_bp, x_all, y_all) / n,
                "test_acc_pc": task.accuracy(sim.predict, task.test, EVAL_CHUNK),
                "test_acc_bp": task.accuracy(lambda xs: _predict_all(graph, params_bp, xs), task.test, EVAL_CHUNK),
                "max_weight_diff": _max_abs_diff(params_pc, params_bp),
                "late_firings": late,
                "seconds": time.perf_counter() - t0,
            }
            for key in ("train_loss_pc", "train_loss_bp"):
                if not math.isfinite(row[key]):
                    who = rule.name if key.endswith("pc") else "backprop"
                    raise DivergenceError(
                        f"{who} diverged: its training loss after epoch {epoch} is {row[key]}; "
                        f"try a smaller --lr (now {config.lr})"
                    )
            result.history.append(row)
            if run is not None:
                run.log_metrics(row)
            say(_epoch_line(row, config.epochs, rule.name))

        result.params_pc, result.params_bp = params_pc, params_bp
        if run is not None:
            run.save_params(rule.name, params_pc)
            run.save_params("backprop", params_bp)
        bar.close()

    result.run_dir = Path(config.out) if config.out is not None else None
    result.seconds = time.perf_counter() - started
    final = result.history[-1]
    say(
        f"done in {result.seconds:.1f} s: test accuracy {rule.name} {final['test_acc_pc']:.2%}, "
        f"backprop {final['test_acc_bp']:.2%}; max |W_{rule.name} - W_bp| = {final['max_weight_diff']:.3g}"
    )
    return result


def _run_record(config: TrainConfig, rule: Rule, model: dict[str, Any], n_train: int, n_test: int) -> dict[str, Any]:
    """The content of a run's ``config.json``."""
    sequences = sequence_dataset(config.dataset)
    if sequences is None:
        info = dataset_info(config.dataset)
        name, needs_dir = info.name, info.needs_data_dir
    else:
        name, needs_dir = sequences, True
    data_dir = resolve_data_dir(config.data_dir) if needs_dir else None
    return {
        "config": config.to_dict(),
        "seed": config.seed,
        "rule": rule.to_dict(),
        "model": {"bias": True, **model} if config.model is None else model,
        "data": {
            "dataset": name,
            "data_dir": str(data_dir.resolve()) if data_dir is not None else None,
            "n_train": n_train,
            "n_test": n_test,
            "shuffle": "numpy.random.default_rng(seed).permutation per epoch",
        },
        "environment": environment(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _progress_bar(config: TrainConfig, rule: Rule, n_batches: int, progress: bool):
    from tqdm import tqdm

    return tqdm(
        total=config.epochs * n_batches,
        desc=f"{rule.name} vs bp on {config.dataset}",
        unit="batch",
        disable=not progress,
        leave=False,
        file=sys.stderr,
        dynamic_ncols=True,
    )


def _epoch_line(row: Mapping[str, float], epochs: int, rule_name: str) -> str:
    return (
        f"epoch {int(row['epoch'])}/{epochs}: loss {rule_name} {row['train_loss_pc']:.4f} "
        f"bp {row['train_loss_bp']:.4f} | test acc {rule_name} {row['test_acc_pc']:.2%} "
        f"bp {row['test_acc_bp']:.2%} | max|dW| {row['max_weight_diff']:.2e} | "
        f"late firings {int(row['late_firings'])} | {row['seconds']:.1f} s"
    )
