"""Z-IL triggered at the error front (clause A8) under heterogeneous delays and jitter,
on the brute-force asynchronous simulator (``tests/async_bruteforce.py``).

One presentation of a mini-batch of 4 on ``mlp([6, 8, 6, 3], tanh, post, mse)``; the
relative error ``||u - u_bp|| / ||u_bp||`` of the update against backprop's, for

- per-synapse delays drawn from a gamma law of mean 0.5 hop and CV 0 to 1 (the front
  is ragged: a value neuron computes when its first child's error arrives);
- layer-uniform delays (each edge's synapses share one delay, drawn per edge) with the
  commit delay of A7 at 1 hop and at the largest delay;
- unit delays with per-message jitter of sigma 0.01 to 0.3 hop.

Seeds 0..4 of the delays / jitter; the table gives the median and the largest error.
Run: ``python benchmarks/async_front_exactness.py`` (about a minute).
"""

from __future__ import annotations

import sys
import time

import numpy as np

import common

sys.path.insert(0, str(common.REPO_ROOT / "tests"))

from async_bruteforce import BruteForce  # noqa: E402
from neurosim.compile.compiler import compile_graph  # noqa: E402
from neurosim.engine.delays import DelayDistribution, synapse_delays  # noqa: E402
from neurosim.graph import mlp  # noqa: E402
from neurosim.params import init_params  # noqa: E402
from neurosim.reference.backprop import sgd_step  # noqa: E402
from neurosim.rules import ZIL  # noqa: E402


def _rel(u: dict, r: dict) -> float:
    return float(np.sqrt(sum(np.sum((u[k] - r[k]) ** 2) for k in r)) / np.sqrt(sum(np.sum(r[k] ** 2) for k in r)))


def main() -> None:
    args = common.parser(__doc__).parse_args()
    started = time.perf_counter()
    machine = common.machine_info()
    common.header("Z-IL at the error front: exactness against delays and jitter", machine, args.quick)
    g = mlp([6, 8, 6, 3], activation="tanh", loss="mse")
    net = compile_graph(g)
    p = init_params(g, 0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 6)), rng.normal(size=(4, 3))
    want = {k: v - p[k] for k, v in sgd_step(g, p, x, y, 0.05).items()}
    seeds = range(3 if args.quick else 5)
    cases = []
    for cv in (0.0, 0.01, 0.1, 0.5, 1.0):
        cases.append((f"per-synapse gamma delays, mean 0.5, CV {cv}",
                      lambda s, cv=cv: dict(delays=synapse_delays(DelayDistribution("gamma", 0.5, cv, s), g, net)), 1.0))
    for commit in ("1 hop", "max delay"):
        def layer(s: int) -> dict:
            d = np.random.default_rng(s).uniform(0.2, 3.0, 3)
            return dict(delays=synapse_delays({"layer1": d[0], "layer2": d[1], "layer3": d[2]}, g, net),
                        own_delay=float(np.random.default_rng(s + 100).uniform(0.2, 3.0)))
        cases.append((f"layer-uniform delays U(0.2, 3), commit {commit}", layer, commit))
    for sigma in (0.01, 0.1, 0.3):
        cases.append((f"unit delays, jitter sigma {sigma}", lambda s, sg=sigma: dict(sigma=sg, jitter_seed=s), 1.0))
    rows, results = [], []
    for name, make, commit in cases:
        errs = []
        for s in seeds:
            kw = make(s)
            bf = BruteForce(g, p, **kw)
            if commit == "max delay":
                bf.timing.commit_delay = float(max(kw["delays"].max(), 1.0))
            errs.append(_rel(bf.learn(x, y, ZIL(alpha=0.05), zil_trigger="front").updates, want))
        rows.append([name, f"{np.median(errs):.1e}", f"{max(errs):.1e}"])
        results.append(dict(case=name, errors=errs))
        common.progress(name)
    print(common.table(["delays", "median rel. error vs BP", "largest"], rows))
    path = common.save_results("async_front_exactness", machine, dict(seeds=list(seeds)), results, started)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
