"""Sync-mode identity: a fixed set of runs whose every number must not change.

The engine's refactors (issue 11: the cut at its seams) must leave the synchronous mode
identical bit for bit. This script runs a fixed set of cases, every rule and its
options on every kind of graph, with the monitors on where they can be, and keeps every
number each produces: the parameters after the presentations, each
:class:`~neurosim.engine.LearnResult`'s energy, firings, late firings, errors at the
trigger, applied changes, learned mask and divergence step, the predictions after
learning, and the monitors' tables (events, plasticity timeline, firings, traces).

``--save DIR`` writes one ``<case>.npz`` per case (the reference set, kept in
``tests/data/sync_identity/``, was saved from commit 964303a, the code before the cut);
``--check DIR`` runs the cases again and compares every array with ``np.array_equal``,
dtype and shape included, and lists every difference. ``--only NAME`` runs the cases
whose name contains ``NAME``.

Run ``PYTHONPATH=$PWD python benchmarks/sync_identity.py --check tests/data/sync_identity``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import graph_cases  # noqa: E402

from neurosim.engine import Simulator  # noqa: E402
from neurosim.graph import cnn, lstm, mlp, rnn  # noqa: E402
from neurosim.monitors import Monitor  # noqa: E402
from neurosim.rules import IL, ZIL, FaZIL, FixedPred, Rule, StrictPC  # noqa: E402

PRESENTATIONS = 2


@dataclass(frozen=True)
class Case:
    """One run: a graph, the simulator's options, a rule, a batch and how to present it."""

    name: str
    graph: Callable[[], Any]
    rule: Rule
    batch: int = 1
    sim: dict = field(default_factory=dict)
    learn: dict = field(default_factory=dict)
    monitor: bool = True


def _cases() -> list[Case]:
    small = lambda: mlp([5, 6, 4, 3], activation="tanh")  # noqa: E731
    pre = lambda: mlp([5, 6, 4, 3], activation="sigmoid", convention="pre")  # noqa: E731
    ce = lambda: mlp([5, 6, 3], activation="relu", loss="ce")  # noqa: E731
    conv = lambda: cnn(input_shape=(1, 6, 6), channels=(2,), kernel_size=3, pool="max", n_out=3)  # noqa: E731
    block = lambda: graph_cases.block_cnn()  # noqa: E731
    recur = lambda: rnn(2, 3, 2, steps=3, loss="mse")  # noqa: E731
    gates = lambda: lstm(2, 2, 2, steps=2, granularity="gate", loss="mse")  # noqa: E731
    cells = lambda: lstm(2, 2, 2, steps=2, granularity="cell", loss="mse")  # noqa: E731
    sliced = graph_cases.sliced_dag
    every = graph_cases.every_op_dag
    fz = dict(alpha=0.05)
    return [
        Case("mlp_il", small, IL(alpha=0.05, gamma=0.2, t_c=6)),
        Case("mlp_il_b3", small, IL(alpha=0.05, gamma=0.2, t_c=6), batch=3),
        Case("mlp_zil", small, ZIL(alpha=0.05)),
        Case("mlp_zil_pre_b3", pre, ZIL(alpha=0.05), batch=3),
        Case("mlp_zil_ce", ce, ZIL(alpha=0.05)),
        Case("mlp_zil_update_step", small, ZIL(alpha=0.05, update_step=1)),
        Case("mlp_zil_noise", small, ZIL(alpha=0.05, init_noise=0.1, noise_seed=3)),
        Case("mlp_zil_gamma", small, ZIL(alpha=0.05, gamma=0.7)),
        Case("mlp_fazil_song", small, FaZIL(**fz)),
        Case("mlp_fazil_song_relu_pre", lambda: mlp([5, 6, 4, 3], activation="relu", convention="pre"), FaZIL(**fz)),
        Case("mlp_fazil_feedback_ce_b3", ce, FaZIL(detector="feedback", **fz), batch=3),
        Case("mlp_strict", small, StrictPC(alpha=0.05, eta=0.2, n=5)),
        Case("mlp_fixedpred_pre", pre, FixedPred(alpha=0.05)),
        Case("mlp_zil_f32", small, ZIL(alpha=0.05), batch=3, sim=dict(dtype=np.float32)),
        Case("mlp_fazil_f32", small, FaZIL(**fz), sim=dict(dtype=np.float32)),
        Case("mlp_zil_threads2", small, ZIL(alpha=0.05), batch=3, sim=dict(threads=2), monitor=False),
        Case("mlp_fazil_threads2", ce, FaZIL(**fz), sim=dict(threads=2), monitor=False),
        Case("mlp_il_chunked", small, IL(alpha=0.05, gamma=0.2, t_c=6), learn=dict(chunk_ticks=2)),
        Case("mlp_fazil_chunked", small, FaZIL(**fz), batch=3, learn=dict(chunk_ticks=1)),
        Case("mlp_delays", small, ZIL(alpha=0.05), sim=dict(delays={"layer1": 2, "layer3": 3}, own_delay=2)),
        Case("mlp_delays_fazil", small, FaZIL(**fz), batch=3,
             sim=dict(delays={"layer1": 2, "layer3": 3}, own_delay=2)),
        Case("mlp_delays_il", small, IL(alpha=0.05, gamma=0.2, t_c=8), sim=dict(delays=2, own_delay=2)),
        Case("mlp_diverge", small, IL(alpha=0.05, gamma=3.0, t_c=30, max_energy_ratio=10.0)),
        Case("mlp_all_active", small, FaZIL(**fz), learn=dict(all_active=True)),
        Case("mlp_reverse", ce, ZIL(alpha=0.05), batch=3, learn=dict(reverse=True)),
        Case("mlp_all_active_strict", small, StrictPC(alpha=0.05, eta=0.2, n=4), learn=dict(all_active=True, reverse=True)),
        Case("cnn_zil", conv, ZIL(alpha=0.05)),
        Case("cnn_fazil_b3", conv, FaZIL(**fz), batch=3),
        Case("cnn_fixedpred", conv, FixedPred(alpha=0.05)),
        Case("block_cnn_zil", block, ZIL(alpha=0.05)),
        Case("block_cnn_strict_b3", block, StrictPC(alpha=0.05, eta=0.2, n=4), batch=3),
        Case("block_cnn_fazil_feedback", block, FaZIL(detector="feedback", **fz)),
        Case("rnn_zil_deferred", recur, ZIL(alpha=0.05)),
        Case("rnn_zil_immediate", recur, ZIL(alpha=0.05, shared_updates="immediate")),
        Case("rnn_fazil_deferred_b3", recur, FaZIL(**fz), batch=3),
        Case("rnn_fazil_immediate", recur, FaZIL(shared_updates="immediate", **fz)),
        Case("rnn_fazil_feedback", recur, FaZIL(detector="feedback", **fz)),
        Case("rnn_il", recur, IL(alpha=0.05, gamma=0.2, t_c=6)),
        Case("rnn_zil_threads2", recur, ZIL(alpha=0.05), batch=3, sim=dict(threads=2), monitor=False),
        Case("lstm_gate_il", gates, IL(alpha=0.05, gamma=0.2, t_c=6)),
        Case("lstm_gate_fixedpred_b3", gates, FixedPred(alpha=0.05), batch=3),
        Case("lstm_gate_strict", gates, StrictPC(alpha=0.05, eta=0.2, n=4)),
        Case("lstm_cell_zil", cells, ZIL(alpha=0.05)),
        Case("lstm_cell_fazil_feedback", cells, FaZIL(detector="feedback", **fz)),
        Case("lstm_cell_fixedpred_b3", cells, FixedPred(alpha=0.05), batch=3),
        Case("dag_sliced_zil", sliced, ZIL(alpha=0.05)),
        Case("dag_sliced_fazil_b3", sliced, FaZIL(**fz), batch=3),
        Case("dag_every_strict_b3", every, StrictPC(alpha=0.05, eta=0.2, n=4), batch=3),
        Case("dag_every_fixedpred", every, FixedPred(alpha=0.05)),
        Case("dag_every_il", every, IL(alpha=0.05, gamma=0.2, t_c=5)),
        Case("dag_every_delays", every, IL(alpha=0.05, gamma=0.2, t_c=7), sim=dict(delays=2, own_delay=2)),
    ]


def _batch(graph: Any, rng: np.random.Generator, lanes: int, dtype: type) -> tuple[dict, dict]:
    """Inputs ``N(0, 1)``; targets ``N(0, 1)`` (mse) or one-hot (ce)."""
    x, y = {}, {}
    for v in graph:
        node = graph.nodes[v]
        if node["op"] == "input" and node.get("default") is None:
            x[v] = rng.normal(size=(lanes, node["size"])).astype(dtype)
        if node.get("loss") == "mse":
            y[v] = rng.normal(size=(lanes, node["size"])).astype(dtype)
        elif node.get("loss") == "ce":
            y[v] = np.eye(node["size"], dtype=dtype)[rng.integers(0, node["size"], size=lanes)]
    return x, y


def run_case(case: Case) -> dict[str, np.ndarray]:
    """Every number ``case`` produces, by name."""
    graph = case.graph()
    sim = Simulator(graph, seed=7, **case.sim)
    monitor = Monitor(events=True, plasticity=True, firings=True, values="all", errors="all", energy=True,
                      capacity=5000).attach(sim) if case.monitor else None
    rng = np.random.default_rng(11)
    out: dict[str, np.ndarray] = {}
    for k in range(PRESENTATIONS):
        x, y = _batch(graph, rng, case.batch, sim.dtype)
        r = sim.learn(x, y, case.rule, **case.learn)
        out[f"p{k}.energy"] = r.energy
        out[f"p{k}.firings"] = r.firings
        out[f"p{k}.late_firings"] = r.late_firings
        out[f"p{k}.applied"] = np.where(r.learned, r.applied, 0).astype(r.applied.dtype)
        out[f"p{k}.learned"] = r.learned
        out[f"p{k}.diverged_at"] = np.array(-1 if r.diverged_at is None else r.diverged_at, np.int64)
        out[f"p{k}.steps"] = np.array(r.steps, np.int64)
        for v, e in r.eps_at_trigger.items():
            out[f"p{k}.eps_at_trigger.{v}"] = e
    out["theta"] = sim.theta.copy()
    x, _ = _batch(graph, rng, case.batch, sim.dtype)
    pred = sim.predict(x)
    for v, arr in (pred.items() if isinstance(pred, dict) else [("out", pred)]):
        out[f"predict.{v}"] = arr
    if monitor is not None:
        for table in ("events", "plasticity", "firings", "traces"):
            columns = {col: np.asarray(arr) for col, arr in monitor.table(table).items()}
            for dtype in sorted({arr.dtype.str for arr in columns.values()}):  # one array per dtype: a small file
                names = [col for col, arr in columns.items() if arr.dtype.str == dtype]
                out[f"monitor.{table}.{dtype}"] = np.stack([columns[col] for col in names])
                out[f"monitor.{table}.{dtype}.columns"] = np.array(names)
    return out


def compare(ref: dict[str, np.ndarray], new: dict[str, np.ndarray]) -> list[str]:
    """Every difference between two result sets, as lines (empty: identical bit for bit)."""
    diffs = [f"missing {k}" for k in sorted(set(ref) - set(new))]
    diffs += [f"extra {k}" for k in sorted(set(new) - set(ref))]
    for k in sorted(set(ref) & set(new)):
        a, b = ref[k], new[k]
        if a.dtype != b.dtype or a.shape != b.shape:
            diffs.append(f"{k}: {a.dtype}{a.shape} -> {b.dtype}{b.shape}")
        elif not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
            diffs.append(f"{k}: values differ")
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path, help="write the reference set into this folder")
    group.add_argument("--check", type=Path, help="compare with the reference set in this folder")
    parser.add_argument("--only", default="", help="run only the cases whose name contains this")
    args = parser.parse_args(argv)
    failed = 0
    for case in _cases():
        if args.only not in case.name:
            continue
        new = run_case(case)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(args.save / f"{case.name}.npz", **new)
            print(f"saved {case.name}: {len(new)} arrays")
            continue
        with np.load(args.check / f"{case.name}.npz") as f:
            ref = {k: f[k] for k in f.files}
        diffs = compare(ref, new)
        failed += bool(diffs)
        print(f"{'ok  ' if not diffs else 'DIFF'} {case.name}" + "".join(f"\n     {d}" for d in diffs[:10]))
    if args.check:
        print("identical bit for bit" if not failed else f"{failed} case(s) differ")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
