"""Finished runs as models: load one, evaluate it, predict with it.

:func:`load_run` reads a run directory written by :func:`neurosim.train` (or
``neurosim train``) back into the graph it trained, every saved weight set
(``init``, the rule's, ``backprop``) and its :class:`~neurosim.training.TrainConfig`:

>>> run = neurosim.load_run("runs/20261204-101500-digits-fazil")   # doctest: +SKIP
>>> neurosim.reference.backprop.predict(run.graph, run.params["fazil"], x)  # doctest: +SKIP

:func:`evaluate` gives each weight set's loss (summed over the split, divided by its
size, as the run's ``metrics.csv``) and accuracy (argmax of the forward pass's
prediction) on the train and test splits; ``neurosim eval RUN_DIR`` prints them.
:func:`predict_file` is ``neurosim predict``: inputs from ``.npy``/``.npz``, predictions
(each output vertex's forward-pass value ``mu``, one row per sample) to ``.npz``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from neurosim.errors import ConfigError, DataError


@dataclass
class Run:
    """A finished run: its ``graph``, weight sets by name, ``config`` and ``config.json`` (``record``)."""

    path: Path
    graph: nx.DiGraph
    params: dict[str, dict[str, np.ndarray]]
    config: Any
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def rule(self) -> str:
        """The name of the rule trained on the event loop (the key of its weight set)."""
        return str(self.record["rule"]["rule"])


def load_run(path: str | os.PathLike) -> Run:
    """The run saved in directory ``path``: graph, parameters of each copy, configuration.

    Raises :class:`ConfigError` when ``path`` is not a finished run directory (an
    interrupted run says how to resume it).
    """
    from neurosim.recording import load_params, partial_folder
    from neurosim.tasks import build_graph
    from neurosim.training import TrainConfig

    path = Path(path)
    if not path.is_dir():
        if partial_folder(path).is_dir():
            raise ConfigError(f"run {path} is not finished: resume it with 'neurosim train --resume {path}'")
        raise ConfigError(f"no run directory {path}")
    if path.name.endswith(".partial"):
        raise ConfigError(f"{path} is an unfinished run; resume it with 'neurosim train --resume {path}'")
    try:
        record = json.loads((path / "config.json").read_text(encoding="utf-8"))
        values = dict(record["config"])
    except FileNotFoundError:
        raise ConfigError(f"{path} is not a training run directory (no config.json)") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ConfigError(f"{path / 'config.json'} is not a training run's configuration") from None
    config = TrainConfig.from_dict(values, source=str(path / "config.json"))
    graph = build_graph(config.dataset, config.model, config.mlp_options())
    params = {}
    for file in sorted(path.glob("params_*.npz")):
        name = file.name[len("params_"):-len(".npz")]
        try:
            params[name] = load_params(file)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {file}: {exc}") from None
    rule = str(record.get("rule", {}).get("rule", config.rule))
    if rule not in params or "backprop" not in params:
        raise ConfigError(f"{path} lacks params_{rule}.npz or params_backprop.npz; the run did not finish")
    return Run(path, graph, params, config, record)


def evaluate(run: Run, dataset: str | None = None, data_dir: str | None = None,
             limit: int | None = None) -> list[dict[str, Any]]:
    """Loss and accuracy of every weight set of ``run``, on the run's data (or ``dataset``).

    The run's own ``limit`` applies unless ``limit`` is given, so with no arguments the
    numbers are those of the run's last ``metrics.csv`` row (``train_loss_*``,
    ``test_acc_*``). One dict per weight set, the rule's first.
    """
    from neurosim.reference import backprop
    from neurosim.rules import require_count
    from neurosim.tasks import make_task

    config = run.config
    if limit is not None:
        require_count("limit", limit, 1)
    dtype = np.dtype(config.dtype).type
    task = make_task(dataset or config.dataset, config.model, config.mlp_options(),
                     data_dir if data_dir is not None else config.data_dir,
                     limit if limit is not None else config.limit, dtype)
    sizes = {v: run.graph.nodes[v]["size"] for v in run.graph if run.graph.nodes[v]["op"] == "input"}
    fits = {v: task.graph.nodes[v]["size"] for v in task.graph if task.graph.nodes[v]["op"] == "input"}
    if sizes != fits:
        raise ConfigError(f"the run's model takes inputs {sizes}; data set {dataset or config.dataset} gives {fits}")
    order = [run.rule, "backprop", *sorted(set(run.params) - {run.rule, "backprop"})]
    rows = []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for name in order:
            params = run.params[name]
            row: dict[str, Any] = {"params": name, "dataset": dataset or config.dataset,
                                   "n_train": len(task.train), "n_test": len(task.test)}
            for split_name, split in (("train", task.train), ("test", task.test)):
                x, y = split.x(slice(None)), split.y(slice(None))
                row[f"{split_name}_loss"] = backprop.loss(run.graph, params, x, y) / len(split)
                row[f"{split_name}_acc"] = task.accuracy(lambda xs, p=params: _outputs(run.graph, p, xs), split)
            rows.append(row)
    return rows


def _outputs(graph: nx.DiGraph, params: dict[str, np.ndarray], x: Any) -> dict[str, np.ndarray]:
    from neurosim.graph.spec import output_vertices
    from neurosim.reference import backprop

    states = backprop.forward(graph, params, x)
    return {o: states[o]["mu"] for o in output_vertices(graph)}


def predict_file(run: Run, inputs: str | os.PathLike, out: str | os.PathLike,
                 which: str | None = None) -> tuple[Path, dict[str, tuple[int, ...]]]:
    """Write the predictions of ``run``'s weight set ``which`` (default: the rule's) for ``inputs``.

    ``inputs``: a ``.npy`` array (rows are samples; one row alone is a batch of one) for
    a model with one input vertex, or a ``.npz`` with one array per input vertex. The
    output ``.npz`` (written atomically; ``out`` must not exist) holds one array per
    output vertex. Returns the path and the shapes written.
    """
    from neurosim.graph.spec import output_vertices

    which = run.rule if which is None else which
    if which not in run.params:
        raise ConfigError(f"--params {which!r}: this run has weight sets {sorted(run.params)}")
    out = Path(out)
    if out.suffix != ".npz":
        raise ConfigError(f"--out {out} must end in .npz")
    if out.exists():
        raise ConfigError(f"{out} already exists; choose another --out or remove it")
    x = _read_inputs(run.graph, Path(inputs), np.dtype(run.config.dtype))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        pred = _outputs(run.graph, run.params[which], x)
    arrays = {o: np.asarray(pred[o]) for o in output_vertices(run.graph)}
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"folder {parent} of --out does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out, {k: tuple(v.shape) for k, v in arrays.items()}


def _read_inputs(graph: nx.DiGraph, path: Path, dtype: np.dtype) -> Any:
    """The input batch in ``path``, checked against the graph's input vertices (names, sizes, values)."""
    inputs = {v: graph.nodes[v]["size"] for v in graph if graph.nodes[v]["op"] == "input"}
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"input file {path} not found") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"input file {path} is not a .npy or .npz array file ({_short(exc)})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            arrays = {k: loaded[k] for k in loaded.files}
        if len(arrays) == 1 and len(inputs) == 1:
            arrays = {next(iter(inputs)): next(iter(arrays.values()))}
        if sorted(arrays) != sorted(inputs):
            raise DataError(f"{path} has arrays {sorted(arrays)}; the model's inputs are {sorted(inputs)}")
    else:
        if len(inputs) != 1:
            raise DataError(f"the model has inputs {sorted(inputs)}: give a .npz with one array per input")
        arrays = {next(iter(inputs)): loaded}
    checked = {}
    batch = None
    for name, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise DataError(f"input {name!r} in {path} has dtype {a.dtype}; numbers are expected")
        a = a.reshape(1, -1) if a.ndim == 1 else a.reshape(len(a), -1) if a.ndim > 2 else a
        if a.ndim != 2 or a.shape[1] != inputs[name] or a.shape[0] == 0:
            raise DataError(f"input {name!r} in {path} has shape {arrays[name].shape}; the model takes rows of "
                            f"{inputs[name]} values (one per sample, at least one sample)")
        if not np.all(np.isfinite(a)):
            raise DataError(f"input {name!r} in {path} holds NaN or infinite values")
        if batch is not None and len(a) != batch:
            raise DataError(f"the inputs in {path} have different numbers of samples")
        batch = len(a)
        checked[name] = a.astype(dtype)
    return next(iter(checked.values())) if len(checked) == 1 else checked


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
