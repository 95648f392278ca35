"""Online learning: time per presented mini-batch of each rule, as a ratio to backprop.

What is measured
----------------
``mlp([784, 256, 256, 10], activation="sigmoid", convention="pre")`` (mse loss,
float64) learns from a stream of MNIST training samples (one-hot targets) when the
data are found (``--data-dir``, else ``$NEUROSIM_DATA_DIR``, else ``../shared/data`` of
a developer checkout), otherwise from random inputs in ``[0, 1]`` with random one-hot
targets; the report says which. Each call presents the *next* mini-batch of the
stream (every candidate walks the same sequence, never the same batch twice in a
row), with

- ``BP``: :func:`neurosim.reference.backprop.sgd_step` (vectorized numpy backprop),
- ``Z-IL``: ``ZIL(alpha=1e-3)``, ``Fa-Z-IL``: ``FaZIL(alpha=1e-3)``,
- ``FixedPred``: ``FixedPred(alpha=1e-3, eta=1, n=3)``,
- ``IL``: ``IL(alpha=1e-3, gamma=0.1, t_c=20)``,
- ``iPC``: ``IPC(alpha=1e-3, gamma=0.1, ticks=20)`` (IL's budget: every step also
  changes every synapse),
- ``PyTorch`` (when ``torch`` is importable; skipped otherwise): the peer a user would
  pick instead, autograd backprop SGD on the same network in float64
  (``Sigmoid, Linear`` per layer: the pre convention), loss ``1/2 sum (out - y)^2``,
  one ``backward`` and an in-place step per call; the table adds Z-IL over PyTorch,

each rule through :meth:`Simulator.learn` (prediction phase, learning phase, update),
at batch sizes 1, 20 and 64. BP is timed twice, with numpy's BLAS as loaded and with
one BLAS thread: on the shared 2-core machine a 2-thread BLAS stalls for whole
scheduler quanta whenever another process holds a core (seen: 57 ms instead of 2.6 ms
per batch of 64), so the reference of every ratio is the faster BP of each round. A
timed repeat is a block of consecutive calls; the figure is the median over repeats
of the block time divided by the number of calls.

Why a ratio
-----------
Milliseconds per batch move with the machine's load; the ratio of a rule's time to
BP's time in the same round does not, much. Targets: Z-IL and Fa-Z-IL at most 1.5x
BP at batch 1. For reference, Song et al. (2020, Table 4, CPU, ms per update) report
BP 3.1, IL 19.2, Z-IL 3.6, Fa-Z-IL 3.6 (Z-IL 1.16x BP, IL 6.2x) and Rosenbaum (2022)
reports FixedPred at about 1.7x BP; iPC has no published ratio here (the table shows "-").

Run ``python benchmarks/bench_online.py [--quick] [--data-dir DIR]``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (puts the repository root on sys.path)
import numpy as np  # noqa: E402

from neurosim.data import load_dataset, one_hot  # noqa: E402
from neurosim.engine import Simulator  # noqa: E402
from neurosim.graph import mlp  # noqa: E402
from neurosim.params import init_params  # noqa: E402
from neurosim.reference.backprop import sgd_step  # noqa: E402
from neurosim.rules import IL, IPC, ZIL, FaZIL, FixedPred, Rule  # noqa: E402

SIZES = [784, 256, 256, 10]
ALPHA = 1e-3
RULES: dict[str, Rule] = {
    "Z-IL": ZIL(alpha=ALPHA),
    "Fa-Z-IL": FaZIL(alpha=ALPHA),
    "FixedPred": FixedPred(alpha=ALPHA, eta=1, n=3),
    "IL": IL(alpha=ALPHA, gamma=0.1, t_c=20),
    "iPC": IPC(alpha=ALPHA, gamma=0.1, ticks=20),
}
# Published ratios to BP (CPU): Song et al. 2020 Table 4; Rosenbaum 2022 for FixedPred.
PAPER_RATIO = {"BP": 1.0, "Z-IL": 3.6 / 3.1, "Fa-Z-IL": 3.6 / 3.1, "IL": 19.2 / 3.1, "FixedPred": 1.7}
TARGET = {"Z-IL": 1.5, "Fa-Z-IL": 1.5}  # at batch 1
FULL_CALLS = {1: 50, 20: 10, 64: 4}  # calls per timed block
QUICK_CALLS = {1: 5, 20: 1, 64: 1}


class Stream:
    """Consecutive mini-batches from a fixed permutation of the samples (wrapping around)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, seed: int) -> None:
        self.x, self.y = x, y
        self.order = np.random.default_rng(seed).permutation(len(x))
        self.pos = 0

    def next(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``batch`` samples ``(x, y)``."""
        idx = self.order[(self.pos + np.arange(batch)) % len(self.order)]
        self.pos = (self.pos + batch) % len(self.order)
        return self.x[idx], self.y[idx]


def find_data(data_dir: str | None, limit: int) -> tuple[np.ndarray, np.ndarray, str]:
    """MNIST training samples and one-hot targets if found, else random ones; and a description."""
    candidates = [data_dir, os.environ.get("NEUROSIM_DATA_DIR"), str(common.REPO_ROOT.parent / "shared" / "data")]
    for d in candidates:
        if not d or not (Path(d) / "mnist").is_dir():
            continue
        try:
            x, labels = load_dataset("mnist", d, "train")
        except Exception as exc:  # noqa: BLE001 - any failure: try the next folder, say so
            print(f"note: could not read MNIST from {d}: {exc}")
            continue
        return x[:limit], one_hot(labels[:limit], 10), f"MNIST train ({min(limit, len(x))} samples, {d})"
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (limit, SIZES[0]))
    y = one_hot(rng.integers(0, 10, limit), 10)
    return x, y, f"random inputs in [0, 1], random one-hot targets ({limit} samples): MNIST not found"


def block(
    step: Callable[[np.ndarray, np.ndarray], None], stream: Stream, batch: int, calls: int, blas: int | None = None
) -> common.Candidate:
    """A candidate timing ``calls`` consecutive steps on the next batches of ``stream``
    (with numpy's BLAS limited to ``blas`` threads, if given)."""

    def run() -> float:
        batches = [stream.next(batch) for _ in range(calls)]
        with common.limit_blas(blas), common.Stopwatch() as sw:
            for x, y in batches:
                step(x, y)
        return sw.seconds

    return run


def torch_stepper(params0: dict[str, np.ndarray]) -> Callable[[np.ndarray, np.ndarray], None] | None:
    """Autograd backprop SGD on the benchmark's network in float64 (None without torch)."""
    try:
        import torch
    except ImportError:
        return None
    layers = []
    for k in range(1, len(SIZES)):
        linear = torch.nn.Linear(SIZES[k - 1], SIZES[k]).double()
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(params0[f"layer{k}.weight"]))
            linear.bias.copy_(torch.from_numpy(params0[f"layer{k}.bias"]))
        layers += [torch.nn.Sigmoid(), linear]  # pre convention: W act(v) + b
    model = torch.nn.Sequential(*layers)

    def step(xb: np.ndarray, yb: np.ndarray) -> None:
        out = model(torch.from_numpy(xb))
        loss = 0.5 * ((out - torch.from_numpy(yb)) ** 2).sum()
        model.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-ALPHA)

    return step


def measure_batch(
    graph: Any, params0: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, batch: int, n_calls: int, repeats: int
) -> dict[str, Any]:
    """Time BP and every rule at one batch size, interleaved; summaries and raw block times.

    BP runs twice, with numpy's BLAS as loaded (``BP``) and limited to one thread
    (``BP-1``, when the BLAS has more): on a shared 2-core machine a multithreaded BLAS
    stalls whenever another process holds a core. Every ratio is to the faster BP of
    the same round.
    """
    diverged: dict[str, int] = {name: 0 for name in RULES}

    def bp_stepper() -> Callable[[np.ndarray, np.ndarray], None]:
        state = {"params": {k: v.copy() for k, v in params0.items()}}

        def step(xb: np.ndarray, yb: np.ndarray) -> None:
            state["params"] = sgd_step(graph, state["params"], xb, yb, ALPHA)

        return step

    def rule_step(name: str) -> Callable[[np.ndarray, np.ndarray], None]:
        sim = Simulator(graph, params0)
        rule = RULES[name]

        def step(xb: np.ndarray, yb: np.ndarray) -> None:
            if sim.learn(xb, yb, rule).diverged:
                diverged[name] += 1

        return step

    candidates = {"BP": block(bp_stepper(), Stream(x, y, seed=1), batch, n_calls)}
    if (common.blas_threads() or 1) > 1:
        candidates["BP-1"] = block(bp_stepper(), Stream(x, y, seed=1), batch, n_calls, blas=1)
    for name in RULES:
        candidates[name] = block(rule_step(name), Stream(x, y, seed=1), batch, n_calls)
    peer = torch_stepper(params0)
    if peer is not None:
        candidates["PyTorch"] = block(peer, Stream(x, y, seed=1), batch, n_calls)
    times = common.interleaved(candidates, repeats, label=f"batch {batch}")
    per_batch = {k: [t / n_calls for t in v] for k, v in times.items()}
    best_bp = common.best_of(*(per_batch[k] for k in ("BP", "BP-1") if k in per_batch))
    entry: dict[str, Any] = {"calls_per_block": n_calls, "raw_block_seconds": times, "methods": {},
                             "best_bp_seconds_per_batch": best_bp}
    for name, ts in per_batch.items():
        med = common.median(ts)
        entry["methods"][name] = {
            "ms_per_batch": 1e3 * med, "ms_per_sample": 1e3 * med / batch,
            "ratio_to_bp": common.paired_ratio(ts, best_bp),
            "summary_seconds_per_batch": common.spread(ts),
            "target_ratio": TARGET.get(name) if batch == 1 else None,
            "diverged_calls": diverged.get(name, 0),
        }
    if "PyTorch" in per_batch:
        entry["zil_over_pytorch"] = common.paired_ratio(per_batch["Z-IL"], per_batch["PyTorch"])
    if any(diverged.values()):
        print(f"warning: diverged presentations at batch {batch}: {diverged}")
    return entry


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=None, help="folder holding mnist/ (default: $NEUROSIM_DATA_DIR)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 20, 64], help="batch sizes (default 1 20 64)")
    args = p.parse_args(argv)
    started = time.perf_counter()
    quick = args.quick
    repeats = args.repeats or (5 if quick else 7)
    calls = QUICK_CALLS if quick else FULL_CALLS
    machine = common.machine_info()
    common.header("Online learning: ms per mini-batch, ratio to backprop", machine, quick)
    x, y, source = find_data(args.data_dir, 10000)
    graph = mlp(SIZES, activation="sigmoid", convention="pre")
    params0 = init_params(graph, 0, np.float64)
    print(f"network: mlp({SIZES}, sigmoid, pre), mse, float64; data: {source}; median of {repeats} blocks")
    sys.stdout.flush()

    results: dict[str, Any] = {"data": source, "by_batch": {}}
    for batch in args.batches:
        n_calls = calls.get(batch, max(1, 64 // batch))
        results["by_batch"][str(batch)] = measure_batch(graph, params0, x, y, batch, n_calls, repeats)
    threads = common.blas_threads()
    labels = {"BP": f"BP (BLAS {threads} thr.)" if threads else "BP", "BP-1": "BP (BLAS 1 thr.)"}
    rows = []
    for batch in args.batches:
        for name, m in results["by_batch"][str(batch)]["methods"].items():
            target, ratio = m["target_ratio"], m["ratio_to_bp"]
            paper = PAPER_RATIO.get("BP" if name == "BP-1" else name)
            rows.append([
                batch, labels.get(name, name), common.fmt(m["ms_per_batch"]), common.fmt(m["ms_per_sample"]),
                common.fmt(ratio),
                "-" if target is None else (f"<= {target}: " + ("yes" if ratio <= target else "no")),
                "-" if paper is None else common.fmt(paper),
                f"{100 * m['summary_seconds_per_batch']['rel_spread']:.0f}",
            ])
    print()
    print(common.table(
        ["batch", "method", "ms/batch", "ms/sample", "x BP", "target (batch 1)", "paper x BP", "+-%"], rows
    ))
    for batch in args.batches:
        ratio = results["by_batch"][str(batch)].get("zil_over_pytorch")
        print(f"batch {batch}: Z-IL over PyTorch autograd: " + ("torch not installed (skipped)" if ratio is None
                                                                 else common.fmt(ratio)))
    print("paper x BP: Song et al. 2020 Table 4 (CPU ms per update: BP 3.1, IL 19.2, Z-IL 3.6, Fa-Z-IL 3.6); "
          "FixedPred: Rosenbaum 2022 (about 1.7x). x BP: over the faster BP of each round. "
          "+-%: half the range of the repeats over the median")
    settings = {
        "quick": quick, "sizes": SIZES, "activation": "sigmoid", "convention": "pre", "loss": "mse",
        "dtype": "float64", "rules": {k: v.to_dict() for k, v in RULES.items()}, "bp_alpha": ALPHA,
        "batches": args.batches, "calls_per_block": calls, "repeats": repeats, "warmup": 1, "data": source,
        "paper_ratio": PAPER_RATIO, "targets_batch1": TARGET, "bp_reference": "per round, the faster of BP "
        "with the BLAS as loaded and BP with 1 BLAS thread",
    }
    path = common.save_results("online", machine, settings, results, started)
    print(f"\nsaved {path.relative_to(common.REPO_ROOT)} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
