"""Training tasks: a model graph together with the data that fit it.

:func:`make_task` turns a run's model and data set into a :class:`Task`:

- no ``model`` table: an MLP ``[n_features, *hidden, n_classes]``
  (:func:`neurosim.graph.mlp`) on an image data set (``digits``, ``mnist``,
  ``fashion-mnist``), the input flattened;
- ``model = {"builder": "cnn" | "rnn" | "lstm" | "mlp", ...}``: that builder of
  :mod:`neurosim.graph` with the table's other keys as its arguments, on an image data
  set (the CNN's input is the ``(1, 28, 28)`` image, flattened row-major) or a sequence
  data set (``names``, ``tinyshakespeare``: inputs ``x1..xT``, one-hot). With the loss on
  every step, output ``out_t`` is trained on the symbol after step ``t``.

Targets are one-hot; accuracy is the fraction of argmax predictions equal to the label,
averaged over the output vertices.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from neurosim.data import dataset_info, load_dataset, load_sequences, one_hot
from neurosim.data.sequences import SEQUENCE_DATASETS
from neurosim.errors import ConfigError, DataError
from neurosim.graph import builders
from neurosim.graph.spec import output_vertices

Batch = np.ndarray | dict[str, np.ndarray]
BUILDERS: dict[str, Callable[..., nx.DiGraph]] = {
    "mlp": builders.mlp, "cnn": builders.cnn, "rnn": builders.rnn, "lstm": builders.lstm,
}


@dataclass
class Split:
    """One split of a task: inputs by input vertex, labels by output vertex."""

    inputs: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    n_classes: dict[str, int]
    dtype: type = np.float64

    def __len__(self) -> int:
        return len(next(iter(self.labels.values())))

    def x(self, rows: np.ndarray | slice) -> Batch:
        """The inputs of ``rows`` (an array when the graph has one input vertex)."""
        out = {v: a[rows] for v, a in self.inputs.items()}
        return next(iter(out.values())) if len(out) == 1 else out

    def y(self, rows: np.ndarray | slice) -> Batch:
        """One-hot targets of ``rows`` (an array when the graph has one output vertex)."""
        out = {o: one_hot(l[rows], self.n_classes[o], self.dtype) for o, l in self.labels.items()}
        return next(iter(out.values())) if len(out) == 1 else out


@dataclass
class Task:
    """A graph, its train and test splits, and a one-line description."""

    graph: nx.DiGraph
    train: Split
    test: Split
    description: str
    record: dict[str, Any] = field(default_factory=dict)

    def accuracy(self, predict: Callable[[Batch], Any], split: Split, chunk: int = 1000) -> float:
        """Mean over output vertices of the fraction of argmax predictions equal to the label."""
        outputs = list(split.labels)
        hits = dict.fromkeys(outputs, 0)
        for start in range(0, len(split), chunk):
            rows = slice(start, start + chunk)
            pred = predict(split.x(rows))
            if not isinstance(pred, Mapping):
                pred = {outputs[0]: pred}
            for o in outputs:
                hits[o] += int(np.sum(np.argmax(np.asarray(pred[o]), axis=1) == split.labels[o][rows]))
        return float(np.mean([hits[o] / len(split) for o in outputs]))


def make_task(dataset: str, model: Mapping[str, Any] | None, mlp_options: Mapping[str, Any],
              data_dir: str | None, limit: int | None, dtype: type) -> Task:
    """The task of a run (see the module docstring); ``mlp_options`` (``hidden``,
    ``activation``, ``convention``, ``loss``) define the MLP when there is no ``model``."""
    sequences = sequence_dataset(dataset)
    graph, name, model = _build(dataset, model, mlp_options)
    outputs = output_vertices(graph)
    inputs = [v for v in graph if graph.nodes[v]["op"] == "input"]
    if sequences is None:
        info = dataset_info(dataset)
        splits = []
        for split in ("train", "test"):
            x, labels = load_dataset(info.name, data_dir, split)
            if limit is not None:
                x, labels = x[:limit], labels[:limit]
            if len(inputs) != 1 or graph.nodes[inputs[0]]["size"] != x.shape[1] or len(outputs) != 1:
                raise ConfigError(
                    f"the {name} model does not fit {info.name}: it needs one input of size "
                    f"{x.shape[1]} and one output of size {info.n_classes}"
                )
            splits.append(Split({inputs[0]: x.astype(dtype)}, {outputs[0]: labels},
                                {outputs[0]: info.n_classes}, dtype))
        data_name = info.name
    else:
        steps = model.get("steps")
        splits = []
        for split in ("train", "test"):
            seqs = load_sequences(sequences, data_dir, split, steps=steps, limit=limit)
            splits.append(_sequence_split(graph, seqs, inputs, outputs, name, dtype))
        data_name = sequences
    train, test = splits
    sizes = {v: graph.nodes[v]["size"] for v in graph}
    description = (f"a {name} model ({graph.number_of_nodes()} vertices, {sum(sizes.values())} neurons) "
                   f"on {data_name} ({len(train)} train / {len(test)} test samples)")
    record = {"builder": f"neurosim.graph.{name}", **model}
    return Task(graph, train, test, description, record)


def build_graph(dataset: str, model: Mapping[str, Any] | None, mlp_options: Mapping[str, Any]) -> nx.DiGraph:
    """The graph of a run, without loading its data (see :func:`make_task`)."""
    return _build(dataset, model, mlp_options)[0]


def _build(dataset: str, model: Mapping[str, Any] | None,
           mlp_options: Mapping[str, Any]) -> tuple[nx.DiGraph, str, dict[str, Any]]:
    """The graph, the builder's name and its arguments (the ``[model]`` table without ``builder``)."""
    if model is None:
        if sequence_dataset(dataset) is not None:
            raise ConfigError(f"data set {dataset!r} is a sequence set: give a [model] table with builder 'rnn' or 'lstm'")
        info = dataset_info(dataset)
        kwargs: dict[str, Any] = dict(mlp_options)
        kwargs["sizes"] = [info.n_features, *kwargs.pop("hidden"), info.n_classes]
        model = {"builder": "mlp", **kwargs}
    model = dict(model)
    name = model.pop("builder", None)
    if name not in BUILDERS:
        raise ConfigError(f"[model] builder {name!r} is unknown; choose one of {sorted(BUILDERS)}")
    try:
        graph = BUILDERS[name](**model)
    except TypeError as exc:
        raise ConfigError(f"[model] arguments do not fit neurosim.graph.{name}: {exc}") from None
    return graph, name, model


def sequence_dataset(dataset: str) -> str | None:
    """The canonical name of a sequence data set (``names``, ``tinyshakespeare``), or None."""
    key = str(dataset).lower().replace("-", "").replace("_", "")
    key = "tinyshakespeare" if key == "shakespeare" else key
    return key if key in SEQUENCE_DATASETS else None


def _sequence_split(graph: nx.DiGraph, seqs: Any, inputs: list, outputs: list, name: str, dtype: type) -> Split:
    """Inputs ``x1..xT``; labels: the class (one output) or the next symbol after each step."""
    x = seqs.inputs()
    if sorted(x) != sorted(inputs) or any(graph.nodes[v]["size"] != seqs.n_symbols for v in inputs):
        raise ConfigError(
            f"the {name} model does not fit the sequences: it needs inputs x1..x{seqs.steps} of size "
            f"{seqs.n_symbols} (set steps = {seqs.steps} and n_in = {seqs.n_symbols}), it has {sorted(inputs)}"
        )
    if len(outputs) == 1:
        labels = {outputs[0]: seqs.labels}
    elif len(outputs) == seqs.steps and seqs.targets is not None:
        labels = {o: seqs.targets[:, t] for t, o in enumerate(outputs)}
    else:
        raise DataError(f"this data set has no per-step targets for the {len(outputs)} outputs of the {name} model; "
                        "use loss_on = 'last'")
    n_out = {o: graph.nodes[o]["size"] for o in outputs}
    if any(n != seqs.n_classes for n in n_out.values()):
        raise ConfigError(f"the {name} model's outputs have sizes {sorted(set(n_out.values()))}, the data set "
                          f"has {seqs.n_classes} classes: set n_out = {seqs.n_classes}")
    return Split({v: a.astype(dtype) for v, a in x.items()}, labels, n_out, dtype)
