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

The default run is a 64-32-10 tanh MLP in the post convention with cross-entropy,
``lr = 0.04``, 40 epochs: 97.21% test accuracy for both copies, above a logistic
regression fit on the same split (:func:`baseline_accuracy`, 96.66%).

A copy has *diverged* when a value becomes non-finite, the event loop's energy
explodes, its largest absolute weight passes :data:`WEIGHT_BOUND` times
``max(1, largest initial weight)`` (checked after every mini-batch) or its training
loss passes :data:`LOSS_BOUND` times the initial weights' loss (after every epoch).
The run then stops with a :class:`~neurosim.errors.DivergenceError` naming the likely
cause: the learning rate when backprop, at the same ``lr`` on the same batches,
diverged too; the rule's inference step (``gamma``, ``eta``) when it did not.

With a run directory, a checkpoint (:mod:`neurosim.checkpoint`) is written before the
first epoch and after each one; SIGINT or SIGTERM stops the run with
:class:`RunInterrupted`, and ``train(resume=run_dir)`` continues it to the same bits
as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurosim.checkpoint import Checkpoint, load_checkpoint, rng_from_state, save_checkpoint
from neurosim.data import dataset_info, resolve_data_dir
from neurosim.errors import ConfigError, DivergenceError
from neurosim.graph.spec import output_vertices
from neurosim.params import init_params
from neurosim.recording import RunDirectory, environment
from neurosim.rules import Rule, make_rule, require_count, require_positive
from neurosim.tasks import Task, make_task, sequence_dataset
from neurosim.validation import MAX_EPOCHS

#: Epochs of the default run (``neurosim train``): Fa-Z-IL on digits, 97.21% test accuracy.
DEFAULT_EPOCHS = 40
#: Learning rate of the default run; losses are sums over the batch, so it is per sample.
DEFAULT_LR = 0.04
#: Largest batch passed to one prediction call when evaluating accuracy.
EVAL_CHUNK = 1000
#: The baseline is fit by default when the training inputs hold at most this many values.
BASELINE_AUTO_MAX = 5_000_000
#: A copy has diverged when its training loss passes this multiple of the initial weights' loss.
LOSS_BOUND = 100.0
#: ... or when its largest absolute weight passes this multiple of ``max(1, largest initial one)``.
WEIGHT_BOUND = 1000.0

_RULE_OPTIONS = ("t_d", "ticks", "gamma", "t_c", "eta", "n")
_MLP_OPTIONS = ("hidden", "activation", "convention", "loss")
_DTYPES = ("float64", "float32")
_NUMBERS = ("lr", "gamma", "eta")
_INFERENCE_STEP = {"il": "gamma", "zil": "gamma", "fazil": "gamma", "strict": "eta", "fixedpred": "eta",
                   "ipc": "gamma"}


class RunInterrupted(KeyboardInterrupt):
    """A resumable run stopped by SIGINT or SIGTERM after saving its checkpoint.

    ``run_dir`` is the run directory to pass to ``neurosim train --resume`` (or to
    :func:`train`'s ``resume``); ``epochs_done`` the epochs the checkpoint holds.
    """

    def __init__(self, run_dir: Path, epochs_done: int, epochs: int, signal_name: str) -> None:
        self.run_dir, self.epochs_done, self.epochs, self.signal_name = run_dir, epochs_done, epochs, signal_name
        super().__init__(
            f"{signal_name}: stopped after {epochs_done} of {epochs} epochs; checkpoint saved; "
            f"resume with: neurosim train --resume {run_dir}"
        )


@dataclass
class TrainConfig:
    """Everything that defines a training run (see :func:`train`).

    Rule options (``t_d``, ``ticks``, ``gamma``, ``t_c``, ``eta``, ``n``) are ``None``
    for the rule's own default (Fa-Z-IL: ``t_d = 4``, ``gamma = 1``, one tick per
    layer); giving one the rule does not take raises :class:`ConfigError`.
    ``hidden``, ``activation``, ``convention`` and ``loss`` define the MLP; with a
    ``model`` table they do not apply and must be left at ``None`` (the model's own
    keys hold them). ``limit`` keeps the first ``limit`` samples of each split.
    ``threads`` is the event loop's thread count (the result is the same bits for any
    value). ``out`` is the run directory to write (``None``: write nothing).
    """

    dataset: str = "digits"
    data_dir: str | None = None
    rule: str = "fazil"
    hidden: tuple[int, ...] | None = (32,)
    activation: str | None = "tanh"
    convention: str | None = "post"
    loss: str | None = "ce"
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
    threads: int = 1
    out: str | None = None
    model: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.model is not None:
            if not isinstance(self.model, Mapping) or "builder" not in self.model:
                raise ConfigError(f"model must be a table with a 'builder' key (cnn, rnn, lstm, mlp), got {self.model!r}")
            self.model = dict(self.model)
            defaults = {f.name: f.default for f in dataclasses.fields(self)}
            given = [k for k in _MLP_OPTIONS
                     if getattr(self, k) is not None and not _same(getattr(self, k), defaults[k])]
            if given:
                raise ConfigError(
                    f"{', '.join(given)} do(es) not apply to a run with a [model] table: set "
                    f"{' and '.join(given)} inside [model] instead"
                )
            for k in _MLP_OPTIONS:
                setattr(self, k, None)
        else:
            for k in _MLP_OPTIONS:
                if getattr(self, k) is None:
                    setattr(self, k, {f.name: f.default for f in dataclasses.fields(self)}[k])
            if isinstance(self.hidden, (int, np.integer)) and not isinstance(self.hidden, (bool, np.bool_)):
                self.hidden = (int(self.hidden),)
            if isinstance(self.hidden, str) or not hasattr(self.hidden, "__iter__"):
                raise ConfigError(f"hidden must be a list of layer widths, got {self.hidden!r}")
            self.hidden = tuple(self.hidden)
            for width in self.hidden:
                require_count("hidden layer width", width, 1)
            for name in ("activation", "convention", "loss"):
                if not isinstance(getattr(self, name), str):
                    raise ConfigError(f"{name} must be a string, got {getattr(self, name)!r}")
        for name in _NUMBERS:
            if isinstance(getattr(self, name), (bool, np.bool_)):
                raise ConfigError(f"{name} must be a number, got {getattr(self, name)!r}")
        require_count("epochs", self.epochs, 1, MAX_EPOCHS)
        require_count("batch", self.batch, 1)
        require_count("seed", self.seed, 0)
        require_count("threads", self.threads, 1)
        if self.limit is not None:
            require_count("limit", self.limit, 1)
        require_positive("lr", self.lr)
        if str(self.dtype) not in _DTYPES:
            raise ConfigError(f"dtype must be one of {list(_DTYPES)}, got {self.dtype!r}")
        for name in ("dataset", "rule"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a string, got {getattr(self, name)!r}")
        if self.data_dir is not None:
            self.data_dir = str(self.data_dir)
        if self.out is not None:
            self.out = str(self.out)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "configuration") -> TrainConfig:
        """A config from a dict (e.g. a parsed ``models/*.toml``); unknown keys raise ConfigError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {unknown}; known keys are {sorted(known)}")
        if values.get("model") is not None:
            given = [k for k in _MLP_OPTIONS if values.get(k) is not None]
            if given:
                raise ConfigError(f"{source}: {', '.join(given)} do(es) not apply with a [model] table; "
                                  f"set them inside [model]")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict (``hidden`` as a list; the MLP keys ``None`` with a model)."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden) if self.hidden is not None else None
        return d

    def make_rule(self) -> Rule:
        """The :class:`neurosim.rules.Rule` this config asks for, with ``alpha = lr``."""
        options = {k: getattr(self, k) for k in _RULE_OPTIONS}
        return make_rule(self.rule, alpha=float(self.lr), **options)

    def sizes(self) -> list[int]:
        """Layer widths ``[n_in, *hidden, n_classes]`` for the data set (an MLP run)."""
        if self.hidden is None:
            raise ConfigError("sizes() is for MLP runs; this run's model is a [model] table")
        info = dataset_info(self.dataset)
        return [info.n_features, *self.hidden, info.n_classes]

    def mlp_options(self) -> dict[str, Any]:
        """The MLP's options (``hidden``, ``activation``, ``convention``, ``loss``)."""
        return {k: getattr(self, k) for k in _MLP_OPTIONS}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


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
    baseline: dict[str, Any] | None = None

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
    sys.stdout.flush()  # in order with the errors on stderr, and timely in a log file


def _max_abs_diff(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)))) for k in a)


def _predict_all(graph: Any, params: Mapping[str, np.ndarray], x: Any) -> dict[str, np.ndarray]:
    """Backprop's forward-pass prediction of every output vertex."""
    from neurosim.reference import backprop

    states = backprop.forward(graph, params, x)
    return {o: states[o]["mu"] for o in output_vertices(graph)}


def train(
    config: TrainConfig | None = None,
    progress: bool | None = True,
    log: Callable[[str], None] | None = _echo,
    *,
    resume: str | Path | None = None,
    baseline: bool | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Train ``config.rule`` on the event loop and backprop from the same initial weights.

    Parameters
    ----------
    config
        The run (default: ``TrainConfig()``, Fa-Z-IL on a 64-32-10 tanh MLP on digits).
    progress
        Show a tqdm progress bar over mini-batches on stderr; ``None``: only when
        stderr is a terminal (no carriage returns flooding a log file).
    log
        Called with one line per epoch and a closing line (default: print to stdout);
        ``None`` prints nothing.
    resume
        Continue the interrupted run whose directory (``config.out``) this is; its saved
        configuration is used and ``config`` must be ``None``.
    baseline
        Also fit scikit-learn's logistic regression on the same training split and
        report its test accuracy (:func:`baseline_accuracy`), to judge the run by.
        ``None`` (default): only when the training split has at most
        :data:`BASELINE_AUTO_MAX` values (seconds on the digits; minutes on MNIST).
    threads
        The event loop's threads (overrides ``config.threads``; same bits for any value).

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError, GraphError, DataError
        For an invalid configuration, model or data, before any training.
    DivergenceError
        When either copy diverges (a non-finite value, the loss or the weights past
        :data:`LOSS_BOUND` / :data:`WEIGHT_BOUND`); no run directory is left behind.
    RunInterrupted
        On SIGINT or SIGTERM once a checkpoint exists; the partial run is kept for ``resume``.
    """
    say = log if log is not None else (lambda message: None)
    started = time.perf_counter()
    if resume is not None:
        if config is not None:
            raise ConfigError("resume continues a run with its saved configuration; pass no config")
        run = RunDirectory.resume(resume)
        record = json.loads((run.path / "config.json").read_text())
        config = TrainConfig.from_dict(record["config"], source=f"{run.path / 'config.json'}")
        state: Checkpoint | None = load_checkpoint(run.path)
    else:
        config = TrainConfig() if config is None else config
        run = RunDirectory(config.out, resumable=True) if config.out is not None else None  # refuses an existing folder now
        record, state = None, None
    if threads is not None:
        require_count("threads", threads, 1)
        config.threads = threads

    rule = config.make_rule()
    dtype = np.dtype(config.dtype).type
    task = make_task(config.dataset, config.model, config.mlp_options(), config.data_dir, config.limit, dtype)
    graph = task.graph
    sizes = config.sizes() if config.model is None else []
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
    size = sum(int(np.prod(np.shape(a))) for a in task.train.inputs.values())
    if baseline is None and size > BASELINE_AUTO_MAX:
        say(f"baseline: skipped for a training split of {size:,} values (--baseline fits it; minutes)")
    if baseline or (baseline is None and size <= BASELINE_AUTO_MAX):
        result.baseline = baseline_accuracy(task)
        if result.baseline is not None:
            say(f"baseline: {result.baseline['model']} on the same split, test accuracy "
                f"{result.baseline['test_acc']:.2%}")
    bounds = _Bounds(backprop.loss(graph, params_init, x_all, y_all) / n, params_init)

    with ExitStack() as stack:
        # A diverging copy overflows before it is caught below; the check, not numpy's warning, reports it.
        stack.enter_context(np.errstate(over="ignore", invalid="ignore", divide="ignore"))
        if run is not None:
            stack.enter_context(run)
            if state is None:
                record = _run_record(config, rule, task.record, n, n_test)
                if result.baseline is not None:
                    record["baseline"] = result.baseline
                run.write_config(record)
                run.save_params("init", params_init)
                state = Checkpoint(0, params_init, params_init,
                                   np.random.default_rng(config.seed).bit_generator.state, [])
                save_checkpoint(run.path, state)
            else:
                assert record is not None
                record.setdefault("resumed", []).append(
                    {"at_epoch": state.epoch, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
                run.write_config(record)
                run.rewrite_metrics(state.history)
                say(f"resuming {run.target} after epoch {state.epoch} of {config.epochs}")
            stopper = stack.enter_context(_stop_on_signals())
        else:
            stopper = None

        start_pc = params_init if state is None else state.params_pc
        sim = Simulator(graph, start_pc, dtype=dtype, threads=config.threads)
        params_bp = {k: v.copy() for k, v in (params_init if state is None else state.params_bp).items()}
        rng = np.random.default_rng(config.seed) if state is None else rng_from_state(state.rng_state)
        first = 1 if state is None else state.epoch + 1
        if state is not None:
            result.history = [dict(r) for r in state.history]
        n_batches = -(-n // config.batch)
        bar = _progress_bar(config, rule, n_batches, progress, (first - 1) * n_batches)
        stack.callback(bar.close)

        try:
            for epoch in range(first, config.epochs + 1):
                t0 = time.perf_counter()
                order = rng.permutation(n)
                late = 0
                for b in range(n_batches):
                    idx = order[b * config.batch : (b + 1) * config.batch]
                    xb, yb = task.train.x(idx), task.train.y(idx)
                    res = sim.learn(xb, yb, rule)
                    params_bp = backprop.sgd_step(graph, params_bp, xb, yb, config.lr)
                    where = f"at epoch {epoch}, mini-batch {b + 1}"
                    bp_bad = bounds.weights_exceeded(params_bp)
                    if res.diverged:
                        raise DivergenceError(
                            f"{rule.name} diverged on the event loop {where} (learning step {res.diverged_at}): "
                            f"a state became non-finite or the energy exploded; "
                            f"{_cause(config, rule, bp_bad, pc_weights_ok=bounds.weights_exceeded(sim.params) is None)}"
                        )
                    pc_bad = bounds.weights_exceeded(sim.params)
                    if pc_bad is not None:
                        raise DivergenceError(f"{rule.name} diverged {where}: {pc_bad}; {_cause(config, rule, bp_bad)}")
                    if bp_bad is not None:
                        raise DivergenceError(f"backprop diverged {where}: {bp_bad}; {_lr_hint(config)}")
                    late += len(res.late_firings)
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
                bp_bad = bounds.loss_exceeded(row["train_loss_bp"])
                pc_bad = bounds.loss_exceeded(row["train_loss_pc"])
                if pc_bad is not None:
                    raise DivergenceError(f"{rule.name} diverged by epoch {epoch}: {pc_bad}; {_cause(config, rule, bp_bad)}")
                if bp_bad is not None:
                    raise DivergenceError(f"backprop diverged by epoch {epoch}: {bp_bad}; {_lr_hint(config)}")
                result.history.append(row)
                if run is not None:
                    run.log_metrics(row)
                    save_checkpoint(run.path, Checkpoint(epoch, params_pc, params_bp, rng.bit_generator.state,
                                                         result.history))
                say(_epoch_line(row, config.epochs, rule.name))
        except KeyboardInterrupt:
            if run is None:
                raise
            bar.close()
            run.keep()
            done = len(result.history)
            name = stopper.received if stopper is not None and stopper.received else "interrupted"
            raise RunInterrupted(run.target, done, config.epochs, name) from None

        result.params_pc, result.params_bp = sim.params, params_bp
        if run is not None:
            run.save_params(rule.name, result.params_pc)
            run.save_params("backprop", params_bp)
            (run.path / "checkpoint.npz").unlink()
        bar.close()

    result.run_dir = run.target if run is not None else None
    result.seconds = time.perf_counter() - started
    final = result.history[-1]
    versus = ""
    if result.baseline is not None:
        versus = f"; {result.baseline['name']} {result.baseline['test_acc']:.2%}"
    say(
        f"done in {result.seconds:.1f} s: test accuracy {rule.name} {final['test_acc_pc']:.2%}, "
        f"backprop {final['test_acc_bp']:.2%}{versus}; max |W_{rule.name} - W_bp| = {final['max_weight_diff']:.3g}"
    )
    return result


class _Bounds:
    """The stated divergence bounds (:data:`LOSS_BOUND`, :data:`WEIGHT_BOUND`) of one run."""

    def __init__(self, initial_loss: float, params_init: Mapping[str, np.ndarray]) -> None:
        self.initial_loss = initial_loss
        self.max_loss = LOSS_BOUND * initial_loss
        self.initial_weight = max(float(np.max(np.abs(v))) for v in params_init.values())
        self.max_weight = WEIGHT_BOUND * max(1.0, self.initial_weight)

    def weights_exceeded(self, params: Mapping[str, np.ndarray]) -> str | None:
        """Why ``params`` are out of bounds (non-finite, or too large), or None."""
        largest = max(float(np.max(np.abs(v))) for v in params.values())
        if not math.isfinite(largest):
            return "its weights became non-finite"
        if largest > self.max_weight:
            return (f"its largest weight is {largest:.3g}, past {WEIGHT_BOUND:g} x max(1, initial "
                    f"{self.initial_weight:.3g})")
        return None

    def loss_exceeded(self, loss: float) -> str | None:
        """Why a training loss is out of bounds (non-finite, or too large), or None."""
        if not math.isfinite(loss):
            return f"its training loss is {loss}"
        if loss > self.max_loss:
            return f"its training loss {loss:.3g} passed {LOSS_BOUND:g} x the initial {self.initial_loss:.3g}"
        return None


def _lr_hint(config: TrainConfig) -> str:
    return f"the likely cause is the learning rate: try a smaller --lr (now {config.lr})"


def _cause(config: TrainConfig, rule: Rule, bp_bad: str | None, pc_weights_ok: bool = False) -> str:
    """The likely cause of the rule's divergence: the learning rate, or the inference step.

    When backprop, trained at the same ``--lr`` on the same batches, has diverged too,
    the learning rate is too large for the model. When it has not, the rule's own
    inference dynamics are the suspect: its step (``--gamma``, ``--eta``), or for a
    blow-up of the event loop's energy while the weights are still bounded, surely so.
    """
    step = _INFERENCE_STEP.get(rule.name)
    if bp_bad is not None or step is None:
        return f"backprop at the same --lr diverged too, so {_lr_hint(config)}"
    value = getattr(rule, step)
    given = "" if getattr(config, step) is not None else ", the rule's default"
    first = "the inference step" if pc_weights_ok else "most likely the inference step"
    return (f"backprop at the same --lr (now {config.lr}) stays bounded, so {first} is the cause: "
            f"try a smaller --{step} (now {value}{given})"
            + ("" if pc_weights_ok else f", or a smaller --lr"))


def baseline_accuracy(task: Task) -> dict[str, Any] | None:
    """Test accuracy of scikit-learn's logistic regression fit on the task's training split.

    The inputs are flattened and concatenated; ``None`` for a task with several outputs.
    A plain, well-understood model on the same split, to judge a run's accuracy by.
    """
    if len(task.train.labels) != 1:
        return None
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    def flat(split: Any) -> np.ndarray:
        return np.concatenate([np.asarray(a, np.float64).reshape(len(a), -1) for a in split.inputs.values()], axis=1)

    labels_train = next(iter(task.train.labels.values()))
    labels_test = next(iter(task.test.labels.values()))
    if len(np.unique(labels_train)) < 2:
        return None
    t0 = time.perf_counter()
    with threadpool_limits(1), _quiet_convergence():
        model = LogisticRegression(max_iter=1000).fit(flat(task.train), labels_train)
    acc = float(np.mean(model.predict(flat(task.test)) == labels_test))
    return {"name": "logistic regression", "model": "sklearn LogisticRegression(max_iter=1000)",
            "test_acc": acc, "seconds": time.perf_counter() - t0}


@contextmanager
def _quiet_convergence() -> Iterator[None]:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


class _SignalStop:
    """Which signal stopped the run (``SIGINT``, ``SIGTERM``), if any."""

    received: str | None = None


@contextmanager
def _stop_on_signals() -> Iterator[_SignalStop]:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the training loop (main thread only).

    The event loop runs in compiled code, so the signal is acted on between mini-batches;
    the handlers are restored on exit.
    """
    stop = _SignalStop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: Any) -> None:
        stop.received = signal.Signals(signum).name
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


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


def _progress_bar(config: TrainConfig, rule: Rule, n_batches: int, progress: bool | None, done: int):
    from tqdm import tqdm

    if progress is None:
        progress = sys.stderr.isatty()
    return tqdm(
        total=config.epochs * n_batches,
        initial=done,
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
