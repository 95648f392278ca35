"""Song et al. (2020) Table 3: how often phi detects the inference moment ``t = l``.

Fa-Z-IL (Song et al. 2020, Algorithm 2) gates each error neuron's update with
``phi_i(t) = 1`` iff ``eps_i(t) != eps_i(t-1) == ... == eps_i(t - t_d)``. Under C1 the
error of a neuron at path length ``l`` from the output first leaves its stable value at
exactly ``t = l`` (Song et al., Lemma A3), so phi should fire there and nowhere else.

Success rate, as measured here (Song et al. do not define it beyond "detecting
inference moments t = l"): over the error neurons and samples of every presented
mini-batch whose phi fires at least once in the ``ticks`` learning steps (under C1 every
error that changes at all fires at its first change, so these are the errors that
change), the fraction that fire exactly once, at ``t = l``. A neuron that fires late
(at ``t != l``, e.g. again after its error stayed constant for ``t_d`` steps) is a
failure. The table also gives the fraction of all firings that happen at ``t = l``
(``firings_at_l_pct``). The network learns as it goes (Fa-Z-IL updates on every firing), as in
training.

Rows are reported for ``detector="song"`` (phi as written) and ``detector="feedback"``
(neurosim's variant, see :class:`neurosim.rules.FaZIL`), for each network of
``hidden`` and each ``t_d``, beside Song et al.'s numbers; the ``late_hidden`` network
(ReLU in the pre convention, where backprop errors are exactly 0 for inactive units
and Song's phi fires late) shows the late firings per detector.

The ``rnn`` rows run Fa-Z-IL on an Elman RNN (:func:`neurosim.graph.rnn`, post
convention, loss at the last step) reading each image as ``rnn_steps`` consecutive
chunks of pixels, once per ``shared_updates`` setting of :class:`neurosim.rules.FaZIL`:
``"deferred"`` (the recurrent weights' changes held until the end of the presentation)
and ``"immediate"`` (Song's rule as written: each change applied when phi fires).
Every row also gives ``bp_rel_err``, the relative error of the first mini-batch's update
against one SGD step of backprop from the same weights, and ``diverged_batches``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import matplotlib.pyplot as plt
import numpy as np

from neurosim.engine import Simulator
from neurosim.errors import ConfigError
from neurosim.experiments.common import Log, Outcome, load_data, require_seeds
from neurosim.graph import mlp, rnn
from neurosim.graph.spec import trigger_steps
from neurosim.reference.backprop import gradients
from neurosim.rules import DETECTORS, SHARED_UPDATES, FaZIL, require_count, require_positive

NAME = "table3"
DESCRIPTION = "Song et al. 2020 Table 3: phi's success rate at detecting t = l, against t_d"
#: Song et al. (2020) Table 3, success rate in percent, by t_d.
SONG = {1: 93.4, 2: 92.4, 3: 99.6, 4: 100.0, 5: 100.0, 6: 100.0, 7: 100.0, 8: 100.0, 16: 100.0}


@dataclass(frozen=True)
class Settings:
    """Networks ``[n_in, *h, 10]`` for ``h`` in ``hidden`` (``activation``, pre convention)
    and ``[n_in, *late_hidden, 10]`` with ``late_activation``; ``samples`` training samples
    (the first ones of the split) in batches of ``batch``; ``ticks`` learning steps per
    batch; learning rate ``lr``; one run per seed of ``seeds`` (the initial weights).
    The RNN rows: ``rnn_steps`` time steps (``rnn_steps`` must divide the input size),
    ``rnn_hidden`` units with ``rnn_activation``, for each ``t_d`` of ``rnn_t_d`` and each
    setting of ``shared_updates`` (no RNN rows if ``rnn_t_d`` is empty)."""

    dataset: str = "mnist"
    data_dir: str | None = None
    samples: int = 200
    batch: int = 20
    hidden: tuple[tuple[int, ...], ...] = ((32,), (32, 32), (32, 32, 32))
    activation: str = "sigmoid"
    late_hidden: tuple[int, ...] = (32,)
    late_activation: str = "relu"
    t_d: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 16)
    detectors: tuple[str, ...] = DETECTORS
    ticks: int = 32
    lr: float = 0.001
    seeds: tuple[int, ...] = (0,)
    rnn_steps: int = 4
    rnn_hidden: int = 32
    rnn_activation: str = "tanh"
    rnn_t_d: tuple[int, ...] = (4,)
    #: no RNN rows when empty
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset({"rnn_t_d"})
    shared_updates: tuple[str, ...] = SHARED_UPDATES

    def __post_init__(self) -> None:
        require_count("samples", self.samples, 1)
        require_count("batch", self.batch, 1)
        require_count("ticks", self.ticks, 1)
        require_positive("lr", self.lr)
        require_seeds(self.seeds)
        for t_d in (*self.t_d, *self.rnn_t_d):
            require_count("t_d", t_d, 1)
        require_count("rnn_steps", self.rnn_steps, 1)
        require_count("rnn_hidden", self.rnn_hidden, 1)
        for setting in self.shared_updates:
            FaZIL(shared_updates=setting)  # raises ConfigError for an unknown setting
        if not self.detectors:
            raise ConfigError("detectors must name at least one of " + ", ".join(DETECTORS))
        for d in self.detectors:
            FaZIL(detector=d)  # raises ConfigError for an unknown detector


def detection_counts(result: object, levels: np.ndarray) -> tuple[int, int, int]:
    """``(pairs that fired, pairs that fired exactly once at t = l, firings at t = l)`` of
    one LearnResult. ``levels[k]`` is vertex ``k``'s trigger step ``l``; a pair is an
    (error neuron, sample)."""
    f = result.firings
    if len(f) == 0:
        return 0, 0, 0
    keys, first, counts = np.unique(f[:, 1:4], axis=0, return_index=True, return_counts=True)
    at_l = f[first, 0] == levels[keys[:, 0]]
    return len(keys), int(np.sum((counts == 1) & at_l)), int(np.sum(f[:, 0] == levels[f[:, 1]]))


def _batch(graph: object, x: np.ndarray, steps: int) -> dict[str, np.ndarray] | np.ndarray:
    """The inputs of ``graph``: ``x`` itself, or for the RNN its ``steps`` chunks ``x1..xT``."""
    if steps == 0:
        return x
    return {f"x{t + 1}": chunk for t, chunk in enumerate(np.split(x, steps, axis=1))}


def _measure(graph: object, net: str, activation: str, s: Settings, x: np.ndarray, y: np.ndarray,
             detector: str, t_d: int, seed: int, shared_updates: str = "deferred", steps: int = 0) -> dict:
    sim = Simulator(graph, seed=seed)
    l_of = trigger_steps(graph)
    levels = np.array([l_of.get(v, -1) for v in sim.netlist.vertices], np.int64)
    rule = FaZIL(alpha=s.lr, t_d=t_d, ticks=s.ticks, detector=detector, shared_updates=shared_updates)
    fired = success = on_time = late = diverged = 0
    bp_rel_err = float("nan")
    for b in range(0, len(x), s.batch):
        xb, yb = _batch(graph, x[b : b + s.batch], steps), y[b : b + s.batch]
        before = sim.params
        res = sim.learn(xb, yb, rule)
        if b == 0:
            sgd = np.concatenate([-s.lr * g.ravel() for _, g in sorted(gradients(graph, before, xb, yb).items())])
            made = np.concatenate([u.ravel() for _, u in sorted(res.updates.items())])
            bp_rel_err = float(np.linalg.norm(made - sgd) / np.linalg.norm(sgd))
        n, ok, at_l = detection_counts(res, levels)
        fired, success, on_time, late = fired + n, success + ok, on_time + at_l, late + len(res.late_firings)
        diverged += int(res.diverged)
    return dict(net=net, activation=activation, detector=detector, t_d=t_d, seed=seed,
                shared_updates=shared_updates if steps else "-", pairs_fired=fired, pairs_exact=success,
                success_pct=100.0 * success / fired if fired else float("nan"),
                song_pct=SONG.get(t_d, float("nan")) if activation == s.activation else float("nan"),
                firings_at_l_pct=100.0 * on_time / (on_time + late) if on_time + late else float("nan"),
                late_firings=late, bp_rel_err=bp_rel_err, diverged_batches=diverged)


def run(s: Settings, log: Log) -> Outcome:
    """Measure the success rate for every network, detector, ``t_d`` and seed."""
    data = load_data(s.dataset, s.data_dir, s.samples, 1)
    n_in, n_out = data.x_train.shape[1], data.n_classes
    nets = [([n_in, *h, n_out], s.activation) for h in s.hidden] + [([n_in, *s.late_hidden, n_out], s.late_activation)]
    if s.rnn_t_d and n_in % s.rnn_steps:
        raise ConfigError(f"rnn_steps = {s.rnn_steps} must divide the input size {n_in} of {s.dataset}")
    runs = [(mlp(sizes, activation=act, convention="pre"), "-".join(map(str, sizes)), act, t_d, shared, 0)
            for sizes, act in nets for t_d in s.t_d for shared in ("deferred",)]
    recurrent = rnn(n_in // s.rnn_steps, s.rnn_hidden, n_out, s.rnn_steps, activation=s.rnn_activation)
    runs += [(recurrent, f"rnn-T{s.rnn_steps}-{s.rnn_hidden}", s.rnn_activation, t_d, shared, s.rnn_steps)
             for t_d in s.rnn_t_d for shared in s.shared_updates]
    rows = []
    for graph, net, act, t_d, shared, steps in runs:
        for detector in s.detectors:
            for seed in s.seeds:
                rows.append(_measure(graph, net, act, s, data.x_train, data.y_train, detector, t_d, seed, shared, steps))
                r = rows[-1]
                log(f"{net} {act} {detector} t_d={t_d} {r['shared_updates']} seed={seed}: success "
                    f"{r['success_pct']:.1f}% ({r['pairs_exact']}/{r['pairs_fired']}), late firings "
                    f"{r['late_firings']}, update vs backprop {r['bp_rel_err']:.1e}")
    return Outcome(rows=rows, figure=_figure(rows, s), notes=[
        f"Success rate of phi over {s.samples} {s.dataset} samples (batches of {s.batch}, {s.ticks} learning "
        f"ticks each, lr {s.lr}, pre convention): among (error neuron, sample) pairs whose phi fires, the "
        "percentage that fire exactly once, at t = l (`success_pct`); `firings_at_l_pct`: the percentage of all "
        "firings that are at t = l; `song_pct`: Song et al. 2020, Table 3; `bp_rel_err`: relative error of the "
        "first mini-batch's update against one SGD step of backprop; `shared_updates` (RNN rows): when the "
        "recurrent weights' changes apply.",
    ])


def _figure(rows: list[dict], s: Settings):
    fig, (ax, ax_late) = plt.subplots(1, 2, figsize=(11, 4))
    key = lambda r: (r["net"], r["activation"], r["detector"], r["shared_updates"])  # noqa: E731
    for group in sorted({key(r) for r in rows}):
        sel = [r for r in rows if key(r) == group]
        t_ds = sorted({r["t_d"] for r in sel})
        mean = [np.mean([r["success_pct"] for r in sel if r["t_d"] == t]) for t in t_ds]
        net, act, det, shared = group
        label = f"{net} {act} {det}" + ("" if shared == "-" else f" {shared}")
        ax.plot(t_ds, mean, marker="o", label=label, ls="-" if det == "song" else "--")
    ax.plot(list(SONG), list(SONG.values()), "k*", ms=10, label="Song et al. Table 3")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("t_d")
    ax.set_ylabel("success rate (%)")
    ax.set_title("phi detects t = l")
    ax.legend(fontsize="x-small")
    late = [r for r in rows if r["activation"] == s.late_activation]
    for k, det in enumerate(s.detectors):
        sel = [r for r in late if r["detector"] == det]
        t_ds = sorted({r["t_d"] for r in sel})
        counts = [sum(r["late_firings"] for r in sel if r["t_d"] == t) for t in t_ds]
        pos = np.arange(len(t_ds)) + (k - (len(s.detectors) - 1) / 2) * 0.8 / max(len(s.detectors), 1)
        ax_late.bar(pos, counts, width=0.8 / max(len(s.detectors), 1), label=det)
        ax_late.set_xticks(np.arange(len(t_ds)), [str(t) for t in t_ds])
    ax_late.set_xlabel("t_d")
    ax_late.set_ylabel("late firings")
    ax_late.set_title(f"late firings, {s.late_activation} (pre convention)")
    ax_late.legend(fontsize="x-small")
    fig.tight_layout()
    return fig
