"""Song et al. (2020) Fig. 3: Z-IL's divergence from backprop when one condition breaks.

Z-IL equals backprop under three conditions (Song et al. 2020, section 3): C1, the
hidden beliefs start at the forward pass; C2, vertex ``j`` updates at ``t = l_j``; C3,
inference step ``gamma = 1``. Each sweep breaks one, with the others kept
(:class:`neurosim.rules.ZIL`):

- C1: ``init_noise = sigma``, Gaussian noise on the hidden beliefs at ``t = 0``;
- C2: ``update_step = t``, every vertex updates at step ``t`` (``"l"``: C2 itself);
- C3: ``gamma``.

A rule and backprop train from the same initial weights on the same mini-batches
(shuffled by ``numpy.random.default_rng(seed)`` each epoch). As in Song et al.: the
divergence of the test error is ``(1/E) sum_e |err_rule(e) - err_bp(e)|`` over the
``E`` epochs (test error in percent after each epoch), and the divergence of the final
weights ``sum_p ||theta_p,rule - theta_p,bp||_2`` over the parameters ``p``
(Frobenius norms). A mini-batch on which the rule diverges (see :mod:`neurosim.rules`)
applies no update and is counted in ``diverged_batches``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import matplotlib.pyplot as plt
import numpy as np

from neurosim.engine import Simulator
from neurosim.errors import ConfigError
from neurosim.experiments.common import Data, Log, Outcome, load_data, require_seeds
from neurosim.graph import mlp
from neurosim.params import init_params
from neurosim.reference.backprop import predict, sgd_step
from neurosim.rules import ZIL, require_count, require_positive

NAME = "ablations"
DESCRIPTION = "Song et al. 2020 Fig. 3: divergence of ablated Z-IL (C1 noise, C2 update step, C3 gamma) from BP"
CONDITIONS = ("C1", "C2", "C3")


@dataclass(frozen=True)
class Settings:
    """MLPs ``[n_in, 32 x d, 10]`` for ``d`` in ``depths`` (sigmoid, pre convention), trained
    for ``epochs`` on ``train_samples`` samples (batch ``batch``, lr ``lr``), test error on
    ``test_samples``, for each seed and each value of the three sweeps."""

    dataset: str = "mnist"
    data_dir: str | None = None
    train_samples: int = 200
    test_samples: int = 200
    epochs: int = 1
    depths: tuple[int, ...] = (1,)
    width: int = 32
    batch: int = 20
    lr: float = 0.001
    #: each sweep may be empty (that ablation is skipped), not all three
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset({"noise", "update_step", "gamma"})
    noise: tuple[float, ...] = (0.0, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)
    update_step: tuple[int | str, ...] = ("l", 0, 1, 2, 3, 4, 16, 64)
    gamma: tuple[float, ...] = (0.01, 0.1, 0.5, 1.0, 5.0, 10.0)
    seeds: tuple[int, ...] = (1482555873,)

    def __post_init__(self) -> None:
        for name in ("train_samples", "test_samples", "epochs", "width", "batch"):
            require_count(name, getattr(self, name), 1)
        for d in self.depths:
            require_count("depth", d, 1)
        require_positive("lr", self.lr)
        require_seeds(self.seeds)
        for v in self.update_step:
            if v != "l":
                require_count("update_step", v)
        for sigma in self.noise:
            ZIL(init_noise=sigma)
        for gamma in self.gamma:
            ZIL(gamma=gamma)
        if not (self.noise or self.update_step or self.gamma):
            raise ConfigError("every sweep (noise, update_step, gamma) is empty")


def variants(s: Settings) -> list[tuple[str, object, ZIL]]:
    """``(condition, swept value, rule)`` for every point of the three sweeps."""
    out = [("C1", sigma, ZIL(alpha=s.lr, init_noise=sigma)) for sigma in s.noise]
    out += [("C2", t, ZIL(alpha=s.lr, update_step=None if t == "l" else t)) for t in s.update_step]
    out += [("C3", g, ZIL(alpha=s.lr, gamma=g)) for g in s.gamma]
    return out


def _test_error(graph: object, params: dict, data: Data) -> float:
    return 100.0 * float(np.mean(np.argmax(predict(graph, params, data.x_test), axis=1) != data.labels_test))


def train_pair(graph: object, params: dict, data: Data, rule: ZIL | None, s: Settings, seed: int
               ) -> tuple[list[float], dict, int]:
    """Test errors after each epoch, final parameters and diverged batches, for ``rule``
    on the event loop (``None``: backprop), from ``params``, batches shuffled by ``seed``."""
    rng = np.random.default_rng(seed)
    sim = Simulator(graph, params) if rule is not None else None
    current, errors, diverged = params, [], 0
    n = len(data.x_train)
    for _ in range(s.epochs):
        order = rng.permutation(n)
        for b in range(0, n, s.batch):
            idx = order[b : b + s.batch]
            x, y = data.x_train[idx], data.y_train[idx]
            if sim is None:
                current = sgd_step(graph, current, x, y, s.lr)
            else:
                diverged += int(sim.learn(x, y, rule).diverged)
        if sim is not None:
            current = sim.params
        errors.append(_test_error(graph, current, data))
    return errors, current, diverged


def run(s: Settings, log: Log) -> Outcome:
    """Both divergences for every depth, seed and sweep value."""
    data = load_data(s.dataset, s.data_dir, s.train_samples, s.test_samples)
    rows = []
    for depth in s.depths:
        graph = mlp([data.x_train.shape[1], *[s.width] * depth, data.n_classes], activation="sigmoid", convention="pre")
        for seed in s.seeds:
            params = init_params(graph, seed)
            bp_err, bp_params, _ = train_pair(graph, params, data, None, s, seed)
            for cond, value, rule in variants(s):
                err, final, diverged = train_pair(graph, params, data, rule, s, seed)
                rows.append(dict(
                    condition=cond, value=str(value), depth=depth, seed=seed,
                    test_error_divergence=float(np.mean(np.abs(np.array(err) - np.array(bp_err)))),
                    weight_divergence=float(sum(np.linalg.norm(final[k] - bp_params[k]) for k in final)),
                    final_test_error=err[-1], bp_final_test_error=bp_err[-1], diverged_batches=diverged))
                r = rows[-1]
                log(f"depth {depth} seed {seed} {cond}={value}: test-error divergence "
                    f"{r['test_error_divergence']:.4g}, weight divergence {r['weight_divergence']:.4g}")
    summary = []
    for key in dict.fromkeys((r["condition"], r["value"], r["depth"]) for r in rows):
        sel = [r for r in rows if (r["condition"], r["value"], r["depth"]) == key]
        summary.append(dict(condition=key[0], value=key[1], depth=key[2], seeds=len(sel),
                            test_error_divergence=float(np.mean([r["test_error_divergence"] for r in sel])),
                            weight_divergence=float(np.mean([r["weight_divergence"] for r in sel])),
                            diverged_batches=int(sum(r["diverged_batches"] for r in sel))))
    return Outcome(rows=rows, summary=summary, figure=_figure(summary, s), notes=[
        f"{s.dataset}, {s.train_samples} training / {s.test_samples} test samples, {s.epochs} epoch(s), batch "
        f"{s.batch}, lr {s.lr}, sigmoid pre convention, hidden layers of {s.width}; means over seeds {list(s.seeds)}.",
    ])


def _figure(summary: list[dict], s: Settings):
    fig, axes = plt.subplots(2, 3, figsize=(12, 6), squeeze=False)
    titles = {"C1": "C1: init noise sigma", "C2": "C2: update step t", "C3": "C3: gamma"}
    for j, cond in enumerate(CONDITIONS):
        for depth in s.depths:
            sel = [r for r in summary if r["condition"] == cond and r["depth"] == depth]
            labels = [r["value"] for r in sel]
            for i, metric in enumerate(("test_error_divergence", "weight_divergence")):
                ax = axes[i, j]
                values = np.array([r[metric] for r in sel])
                if metric == "weight_divergence":  # log scale; an exact 0 is drawn at 1e-17
                    values = np.maximum(values, 1e-17)
                    ax.set_yscale("log")
                ax.plot(np.arange(len(sel)), values, marker="o", label=f"{depth} hidden")
                ax.set_xticks(np.arange(len(sel)), labels, fontsize="x-small")
                ax.set_ylabel("test error divergence (points)" if i == 0 else "weight divergence")
        axes[0, j].set_title(titles[cond])
        axes[0, j].legend(fontsize="x-small")
    fig.tight_layout()
    return fig
