"""Rosenbaum (2022) Figs. 2 and 4: PC's parameter updates against the exact gradient.

For Strict PC (Rosenbaum's Algorithm "PC") and FixedPred ("ModPC") with step size
``eta`` and ``n`` inference steps, the update ``u_l`` of layer ``l`` (weight and bias
together, ``alpha = 1``) is compared with the exact negative gradient
``r_l = -dL/dtheta_l`` (:func:`neurosim.reference.backprop.gradients`) of the same
mini-batch and parameters:

    relative error = ||u_l - r_l|| / ||r_l||,     angle = arccos(u_l . r_l / (||u_l|| ||r_l||))

(the angle computed in the stable form of :func:`compare`)

Rosenbaum's Theorem 1: FixedPred with ``eta = 1`` and ``n >= L`` gives ``u = r``
exactly. The updates come from the vectorized reference
(:func:`neurosim.reference.rules.run_rule`, tested equal to the event loop). The
parameters are first trained by backprop for ``pretrain_epochs`` (Rosenbaum starts
from a trained model); the run is repeated in every dtype of ``dtypes`` from the same
parameters, with ``r`` computed in that dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from neurosim.errors import ConfigError
from neurosim.experiments.common import Log, Outcome, load_data, require_seeds
from neurosim.graph import mlp
from neurosim.params import init_params
from neurosim.reference.backprop import gradients, sgd_step
from neurosim.reference.rules import run_rule
from neurosim.rules import FixedPred, StrictPC, require_count, require_positive

NAME = "rosenbaum"
DESCRIPTION = "Rosenbaum 2022 Figs. 2 and 4: Strict PC and FixedPred updates vs the exact gradient, against n"
RULES = {"strict": StrictPC, "fixedpred": FixedPred}


@dataclass(frozen=True)
class Settings:
    """An MLP ``[n_in, *hidden, 10]`` (``activation``, post convention, mse) on one
    mini-batch of ``batch`` samples, after ``pretrain_epochs`` of backprop (lr
    ``pretrain_lr``, batches of ``batch``) on ``pretrain_samples`` samples; one run per
    seed of ``seeds`` (initial weights and pretraining order)."""

    dataset: str = "digits"
    data_dir: str | None = None
    hidden: tuple[int, ...] = (32, 32, 32)
    activation: str = "tanh"
    batch: int = 64
    pretrain_epochs: int = 5
    pretrain_samples: int = 1000
    pretrain_lr: float = 0.01
    n_max: int = 40
    step_sizes: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0)
    rules: tuple[str, ...] = ("strict", "fixedpred")
    dtypes: tuple[str, ...] = ("float64", "float32")
    seeds: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        require_count("batch", self.batch, 1)
        require_count("n_max", self.n_max, 1)
        require_count("pretrain_epochs", self.pretrain_epochs, 0)
        require_count("pretrain_samples", self.pretrain_samples, 1)
        require_positive("pretrain_lr", self.pretrain_lr)
        require_seeds(self.seeds)
        for eta in self.step_sizes:
            require_positive("step size", eta)
        for name in self.rules:
            if name not in RULES:
                raise ConfigError(f"rules must be among {sorted(RULES)}, got {name!r}")
        for d in self.dtypes:
            if d not in ("float64", "float32"):
                raise ConfigError(f"dtypes must be float64 or float32, got {d!r}")


def compare(u: np.ndarray, r: np.ndarray) -> tuple[float, float]:
    """``(||u - r|| / ||r||, angle in degrees)``, computed in float64.

    The angle is ``2 atan2(||u/|u| - r/|r|||, ||u/|u| + r/|r|||)``, which equals
    ``arccos`` of the cosine but keeps full precision near 0 (Kahan), so an exact update
    gives an angle of about 1e-14 degrees, not arccos's 1e-6. NaN when ``u`` or ``r`` is 0.
    """
    u, r = u.astype(np.float64), r.astype(np.float64)
    nr, nu = np.linalg.norm(r), np.linalg.norm(u)
    if nu == 0 or nr == 0:
        return float(np.linalg.norm(u - r) / nr) if nr > 0 else float("nan"), float("nan")
    a, b = u / nu, r / nr
    angle = 2.0 * np.arctan2(np.linalg.norm(a - b), np.linalg.norm(a + b))
    return float(np.linalg.norm(u - r) / nr), float(np.degrees(angle))


def _layer_vector(params: dict, layer: str) -> np.ndarray:
    return np.concatenate([params[k].ravel() for k in (f"{layer}.weight", f"{layer}.bias") if k in params])


def pretrained(graph: object, s: Settings, seed: int, x: np.ndarray, y: np.ndarray) -> dict:
    """Parameters after ``pretrain_epochs`` of backprop SGD, float64 (batches in a fixed order)."""
    params = init_params(graph, seed)
    rng = np.random.default_rng(seed)
    for _ in range(s.pretrain_epochs):
        order = rng.permutation(len(x))
        for b in range(0, len(x), s.batch):
            idx = order[b : b + s.batch]
            params = sgd_step(graph, params, x[idx], y[idx], s.pretrain_lr)
    return params


def run(s: Settings, log: Log) -> Outcome:
    """Relative error and angle per rule, dtype, step size, ``n`` and layer."""
    data = load_data(s.dataset, s.data_dir, s.pretrain_samples + s.batch, 1)
    graph = mlp([data.x_train.shape[1], *s.hidden, data.n_classes], activation=s.activation, convention="post")
    layers = [v for v in graph.nodes if graph.nodes[v]["op"] == "dense"]
    x_pre, y_pre = data.x_train[: s.pretrain_samples], data.y_train[: s.pretrain_samples]
    xb, yb = data.x_train[s.pretrain_samples :], data.y_train[s.pretrain_samples :]
    rows = []
    for seed in s.seeds:
        params64 = pretrained(graph, s, seed, x_pre, y_pre)
        for dt in s.dtypes:
            dtype = np.dtype(dt).type
            params = {k: v.astype(dtype) for k, v in params64.items()}
            x, y = xb.astype(dtype), yb.astype(dtype)
            grads = gradients(graph, params, x, y)
            for rule_name in s.rules:
                for eta in s.step_sizes:
                    for n in range(1, s.n_max + 1):
                        res = run_rule(graph, params, x, y, RULES[rule_name](alpha=1.0, eta=eta, n=n))
                        for k, layer in enumerate(layers, start=1):
                            u = _layer_vector(res.updates, layer)
                            r = -_layer_vector(grads, layer)
                            rel, angle = compare(u, r)
                            rows.append(dict(rule=rule_name, dtype=dt, step_size=eta, n=n, layer=k, seed=seed,
                                             relative_error=rel, angle=angle, diverged=res.diverged))
            log(f"seed {seed} {dt}: done")
    L = len(layers)
    marks = sorted({1, max(L - 1, 1), L, min(10, s.n_max), s.n_max})
    summary = [r for r in rows if r["n"] in marks and r["layer"] == 1 and r["seed"] == s.seeds[0]]
    return Outcome(rows=rows, figure=_figure(rows, s, L), summary=summary, notes=[
        f"MLP {'-'.join(map(str, [data.x_train.shape[1], *s.hidden, data.n_classes]))} ({s.activation}, post "
        f"convention, mse) on {s.dataset}, one batch of {s.batch} after {s.pretrain_epochs} epochs of backprop. "
        f"Summary: layer 1 (farthest from the output, L = {L}) at n in {marks}; table.csv has every layer and n.",
    ])


def _figure(rows: list[dict], s: Settings, n_layers: int):
    """Rows: each rule's relative error, then its angle; columns: the layers (first dtype, first seed)."""
    from neurosim.plots import plot_gradient_match

    metrics = ("relative_error", "angle")
    fig, axes = plt.subplots(2 * len(s.rules), n_layers, figsize=(3.4 * n_layers, 2.8 * 2 * len(s.rules)),
                             squeeze=False)
    dt, seed = s.dtypes[0], s.seeds[0]
    for i, rule_name in enumerate(s.rules):
        for layer in range(1, n_layers + 1):
            sel = [r for r in rows if r["rule"] == rule_name and r["dtype"] == dt and r["seed"] == seed
                   and r["layer"] == layer]
            table = {c: np.array([r[c] for r in sel]) for c in ("n", "step_size", *metrics)}
            for j, metric in enumerate(metrics):
                plot_gradient_match(table, metric, ax=axes[2 * i + j, layer - 1],
                                    title=f"{rule_name}, layer {layer} of {n_layers}, {dt}")
    fig.tight_layout()
    return fig
