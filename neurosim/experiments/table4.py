"""Song et al. (2020) Table 4: time per weight update of BP, IL, Z-IL and Fa-Z-IL.

One weight update is one mini-batch: for BP, :func:`neurosim.reference.backprop.sgd_step`
(vectorized numpy); for IL (``t_c`` inference steps, Whittington and Bogacz 2017),
Z-IL and Fa-Z-IL, :meth:`neurosim.engine.Simulator.learn` on the event loop (prediction
phase included). The methods are timed in the same run, interleaved batch by batch
(after one warm-up batch each, which also compiles the kernels), and the median of
``repeats`` batches is reported with its ratio to BP's, beside Song et al.'s CPU
figures. Song et al. time GPU-style dense implementations on ImageNet; the ratios,
not the milliseconds, are comparable, and even they measure a different machine:
here BP is a few matrix products while the PC rules simulate every neuron.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from neurosim.engine import Simulator
from neurosim.experiments.common import Log, Outcome, load_data, require_seeds
from neurosim.graph import mlp
from neurosim.params import init_params
from neurosim.reference.backprop import sgd_step
from neurosim.rules import IL, ZIL, FaZIL, require_count, require_positive

NAME = "table4"
DESCRIPTION = "Song et al. 2020 Table 4: time per weight update of BP, IL, Z-IL and Fa-Z-IL"
#: Song et al. (2020) Table 4, CPU, milliseconds per weight update.
SONG_CPU_MS = {"bp": 3.1, "il": 19.2, "zil": 3.6, "fazil": 3.6}


@dataclass(frozen=True)
class Settings:
    """An MLP ``[n_in, *hidden, 10]`` (sigmoid, pre convention), batches of ``batch``,
    ``repeats`` timed batches, IL with ``t_c`` steps of size ``il_gamma``; the initial
    weights from the first of ``seeds``."""

    dataset: str = "digits"
    data_dir: str | None = None
    hidden: tuple[int, ...] = (32,)
    batch: int = 20
    repeats: int = 20
    t_c: int = 20
    il_gamma: float = 0.1
    lr: float = 0.001
    seeds: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        require_count("batch", self.batch, 1)
        require_count("repeats", self.repeats, 1)
        require_count("t_c", self.t_c, 0)
        require_positive("il_gamma", self.il_gamma)
        require_positive("lr", self.lr)
        require_seeds(self.seeds)


def run(s: Settings, log: Log) -> Outcome:
    """Median milliseconds per update of each method, and the ratio to BP."""
    data = load_data(s.dataset, s.data_dir, s.batch * (s.repeats + 1), 1)
    sizes = [data.x_train.shape[1], *s.hidden, data.n_classes]
    graph = mlp(sizes, activation="sigmoid", convention="pre")
    params = init_params(graph, s.seeds[0])
    rules = {"il": IL(alpha=s.lr, t_c=s.t_c, gamma=s.il_gamma), "zil": ZIL(alpha=s.lr), "fazil": FaZIL(alpha=s.lr)}
    sims = {name: Simulator(graph, params) for name in rules}
    bp_params = params
    times: dict[str, list[float]] = {"bp": [], **{name: [] for name in rules}}
    for b in range(s.repeats + 1):
        x, y = data.x_train[b * s.batch : (b + 1) * s.batch], data.y_train[b * s.batch : (b + 1) * s.batch]
        t0 = time.perf_counter()
        bp_params = sgd_step(graph, bp_params, x, y, s.lr)
        times["bp"].append(time.perf_counter() - t0)
        for name, rule in rules.items():
            t0 = time.perf_counter()
            sims[name].learn(x, y, rule)
            times[name].append(time.perf_counter() - t0)
    medians = {name: 1e3 * float(np.median(t[1:])) for name, t in times.items()}  # the warm-up batch dropped
    rows = [dict(method=name, median_ms=ms, ratio_to_bp=ms / medians["bp"], song_cpu_ms=SONG_CPU_MS[name],
                 song_ratio=SONG_CPU_MS[name] / SONG_CPU_MS["bp"]) for name, ms in medians.items()]
    for r in rows:
        log(f"{r['method']}: {r['median_ms']:.3f} ms ({r['ratio_to_bp']:.2f} x BP; Song {r['song_ratio']:.2f} x)")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    pos = np.arange(len(rows))
    ax.bar(pos - 0.2, [r["ratio_to_bp"] for r in rows], 0.4, label="neurosim")
    ax.bar(pos + 0.2, [r["song_ratio"] for r in rows], 0.4, label="Song et al. CPU")
    ax.set_xticks(pos, [r["method"] for r in rows])
    ax.set_yscale("log")
    ax.set_ylabel("time per update / BP's")
    ax.set_title(f"time per weight update, MLP {'-'.join(map(str, sizes))}, batch {s.batch}")
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    return Outcome(rows=rows, figure=fig, notes=[
        f"MLP {'-'.join(map(str, sizes))} (sigmoid, pre), batch {s.batch}, {s.dataset}; median of {s.repeats} "
        f"interleaved batches after one warm-up; IL t_c = {s.t_c}. BP: vectorized numpy; PC rules: event loop.",
    ])
