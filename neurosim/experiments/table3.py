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
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from neurosim.engine import Simulator
from neurosim.errors import ConfigError
from neurosim.experiments.common import Log, Outcome, load_data, require_seeds
from neurosim.graph import mlp
from neurosim.graph.spec import trigger_steps
from neurosim.rules import DETECTORS, FaZIL, require_count, require_positive

NAME = "table3"
DESCRIPTION = "Song et al. 2020 Table 3: phi's success rate at detecting t = l, against t_d"
#: Song et al. (2020) Table 3, success rate in percent, by t_d.
SONG = {1: 93.4, 2: 92.4, 3: 99.6, 4: 100.0, 5: 100.0, 6: 100.0, 7: 100.0, 8: 100.0, 16: 100.0}


@dataclass(frozen=True)
class Settings:
    """Networks ``[n_in, *h, 10]`` for ``h`` in ``hidden`` (``activation``, pre convention)
    and ``[n_in, *late_hidden, 10]`` with ``late_activation``; ``samples`` training samples
    (the first ones of the split) in batches of ``batch``; ``ticks`` learning steps per
    batch; learning rate ``lr``; one run per seed of ``seeds`` (the initial weights)."""

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

    def __post_init__(self) -> None:
        require_count("samples", self.samples, 1)
        require_count("batch", self.batch, 1)
        require_count("ticks", self.ticks, 1)
        require_positive("lr", self.lr)
        require_seeds(self.seeds)
        for t_d in self.t_d:
            require_count("t_d", t_d, 1)
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


def _measure(sizes: list[int], activation: str, s: Settings, x: np.ndarray, y: np.ndarray,
             detector: str, t_d: int, seed: int) -> dict:
    graph = mlp(sizes, activation=activation, convention="pre")
    sim = Simulator(graph, seed=seed)
    l_of = trigger_steps(graph)
    levels = np.array([l_of.get(v, -1) for v in sim.netlist.vertices], np.int64)
    rule = FaZIL(alpha=s.lr, t_d=t_d, ticks=s.ticks, detector=detector)
    fired = success = on_time = late = 0
    for b in range(0, len(x), s.batch):
        res = sim.learn(x[b : b + s.batch], y[b : b + s.batch], rule)
        n, ok, at_l = detection_counts(res, levels)
        fired, success, on_time, late = fired + n, success + ok, on_time + at_l, late + len(res.late_firings)
    return dict(net="-".join(map(str, sizes)), activation=activation, detector=detector, t_d=t_d, seed=seed,
                pairs_fired=fired, pairs_exact=success,
                success_pct=100.0 * success / fired if fired else float("nan"),
                song_pct=SONG.get(t_d, float("nan")) if activation == s.activation else float("nan"),
                firings_at_l_pct=100.0 * on_time / (on_time + late) if on_time + late else float("nan"),
                late_firings=late)


def run(s: Settings, log: Log) -> Outcome:
    """Measure the success rate for every network, detector, ``t_d`` and seed."""
    data = load_data(s.dataset, s.data_dir, s.samples, 1)
    n_in, n_out = data.x_train.shape[1], data.n_classes
    nets = [([n_in, *h, n_out], s.activation) for h in s.hidden] + [([n_in, *s.late_hidden, n_out], s.late_activation)]
    rows = []
    for sizes, act in nets:
        for detector in s.detectors:
            for t_d in s.t_d:
                for seed in s.seeds:
                    rows.append(_measure(sizes, act, s, data.x_train, data.y_train, detector, t_d, seed))
                    r = rows[-1]
                    log(f"{r['net']} {act} {detector} t_d={t_d} seed={seed}: success {r['success_pct']:.1f}% "
                        f"({r['pairs_exact']}/{r['pairs_fired']}), late firings {r['late_firings']}")
    return Outcome(rows=rows, figure=_figure(rows, s), notes=[
        f"Success rate of phi over {s.samples} {s.dataset} samples (batches of {s.batch}, {s.ticks} learning "
        f"ticks each, lr {s.lr}, pre convention): among (error neuron, sample) pairs whose phi fires, the "
        "percentage that fire exactly once, at t = l (`success_pct`); `firings_at_l_pct`: the percentage of all "
        "firings that are at t = l; `song_pct`: Song et al. 2020, Table 3.",
    ])


def _figure(rows: list[dict], s: Settings):
    fig, (ax, ax_late) = plt.subplots(1, 2, figsize=(11, 4))
    groups = sorted({(r["net"], r["activation"], r["detector"]) for r in rows})
    for net, act, det in groups:
        sel = [r for r in rows if (r["net"], r["activation"], r["detector"]) == (net, act, det)]
        t_ds = sorted({r["t_d"] for r in sel})
        mean = [np.mean([r["success_pct"] for r in sel if r["t_d"] == t]) for t in t_ds]
        ax.plot(t_ds, mean, marker="o", label=f"{net} {act} {det}", ls="-" if det == "song" else "--")
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
