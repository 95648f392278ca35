"""float32 against float64: what single precision costs in accuracy, and what it saves.

On ``mlp([784, 256, 256, 10], sigmoid, pre)`` the same mini-batches are presented to
two simulators started from the same weights, one in float64 and one in float32, with
Z-IL and Fa-Z-IL. Reported:

- accuracy: the relative error ``||u32 - u_bp|| / ||u_bp||`` of the float32 update
  against float64 backprop's, per parameter (worst), beside the float64 update's; this
  is the price of float32 (about 1e-7 to 1e-6), against float64's round-off (1e-13);
- speed: time per presented batch, float32 over float64, timed in interleaved rounds
  (a ratio, as every figure of this suite).

Run: ``python benchmarks/bench_float32.py [--quick]``.
"""

from __future__ import annotations

import time

import numpy as np

import common
from neurosim.engine import Simulator
from neurosim.graph import mlp
from neurosim.params import init_params
from neurosim.reference.backprop import gradients
from neurosim.rules import ZIL, FaZIL


def _rel(u: np.ndarray, r: np.ndarray) -> float:
    n = np.linalg.norm(r)
    return float(np.linalg.norm(u - r) / n) if n > 0 else float(np.linalg.norm(u))


def main() -> None:
    args = common.parser(__doc__).parse_args()
    started = time.perf_counter()
    machine = common.machine_info()
    common.header("float32 against float64", machine, args.quick)
    repeats = args.repeats or (3 if args.quick else 7)
    alpha = 1e-3
    graph = mlp([784, 256, 256, 10], activation="sigmoid", convention="pre")
    params = init_params(graph, seed=0)
    rng = np.random.default_rng(0)
    rows, results = [], {}
    for batch in (1, 20):
        xs = rng.random((repeats + 2, batch, 784))
        ys = np.eye(10)[rng.integers(0, 10, (repeats + 2, batch))]
        for rule in (ZIL(alpha=alpha), FaZIL(alpha=alpha)):
            # accuracy on one batch, from the same weights
            grads = gradients(graph, params, xs[0], ys[0])
            err = {}
            for dtype in (np.float64, np.float32):
                res = Simulator(graph, params, dtype=dtype).learn(xs[0], ys[0], rule)
                err[np.dtype(dtype).name] = max(
                    _rel(res.updates[k].astype(np.float64), -alpha * g) for k, g in grads.items()
                )
            # speed: a stream of batches on each simulator, interleaved
            sims = {name: Simulator(graph, params, dtype=dt) for name, dt in (("float64", np.float64), ("float32", np.float32))}
            counters = {name: [0] for name in sims}

            def candidate(name: str) -> common.Candidate:
                def run() -> float:
                    k = counters[name][0] % len(xs)
                    counters[name][0] += 1
                    with common.Stopwatch() as sw:
                        sims[name].learn(xs[k], ys[k], rule)
                    return sw.seconds

                return run

            times = common.interleaved({n: candidate(n) for n in sims}, repeats)
            ratio = common.paired_ratio(times["float32"], times["float64"])
            rows.append([rule.name, batch, common.fmt(err["float64"], 2), common.fmt(err["float32"], 2),
                         common.fmt(1e3 * common.median(times["float64"])), common.fmt(1e3 * common.median(times["float32"])),
                         common.fmt(ratio)])
            results[f"{rule.name}-b{batch}"] = {"rel_err": err, "times": times, "ratio_f32_f64": ratio}
    print(common.table(["rule", "batch", "rel err f64", "rel err f32", "ms f64", "ms f32", "f32/f64"], rows))
    path = common.save_results("float32", machine, {"repeats": repeats, "alpha": alpha}, results, started)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
