"""The asynchronous mode's speed against the synchronous mode on the same graph.

With unit delays both modes do the same computations and send the same messages (the
lock-step limit is bit for bit the sync mode, ``tests/test_async_mode.py``), so the
ratio of their times per presentation is the ratio of their synaptic events per second.
With heterogeneous delays (gamma, cv 0.5) the async time per presentation shows what the
queue costs. Interleaved rounds, median; prints a table and saves JSON.

    python benchmarks/bench_async.py [--sizes 64,48,48,10] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from neurosim.engine import Async, Simulator
from neurosim.engine.delays import DelayDistribution
from neurosim.graph import mlp
from neurosim.rules import ZIL


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="64,48,48,10")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--presentations", type=int, default=20)
    ap.add_argument("--hetero", action="store_true", help="also gamma delays (cv 0.5)")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    g = mlp(sizes)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(a.presentations, sizes[0])), rng.normal(size=(a.presentations, sizes[-1]))
    probe = Simulator(g, seed=0)
    S = probe.netlist.n_synapses
    modes = {
        "sync": lambda: Simulator(g, seed=0),
        "async unit delays": lambda: Simulator(g, seed=0, timing=Async()),
        "async gamma delays cv 0.5": lambda: Simulator(
            g, seed=0, timing=Async(delays=DelayDistribution("gamma", 1.0, 0.5, seed=1))),
    }
    if not a.hetero:
        del modes["async gamma delays cv 0.5"]
    times: dict[str, list[float]] = {k: [] for k in modes}
    for _ in range(a.rounds + 1):  # the first round warms the compiled code up
        for name, make in modes.items():
            sim = make()
            t = time.perf_counter()
            for k in range(a.presentations):
                sim.learn(x[k:k + 1], y[k:k + 1], ZIL(alpha=0.01))
            times[name].append((time.perf_counter() - t) / a.presentations)
    med = {k: float(np.median(v[1:])) for k, v in times.items()}
    print(f"mlp {sizes}, {S} synapses, batch 1, Z-IL, {a.presentations} presentations x {a.rounds} rounds")
    print(f"| mode | ms / presentation | sync / mode (synaptic events/s ratio) |")
    print("|---|---|---|")
    for k, v in med.items():
        print(f"| {k} | {1e3 * v:.3f} | {med['sync'] / v:.3f} |")
    out = Path(__file__).parent / "results" / "bench_async.json"
    out.write_text(json.dumps(dict(sizes=sizes, synapses=S, ms_per_presentation={k: 1e3 * v for k, v in med.items()},
                                   ratio_to_sync={k: med["sync"] / v for k, v in med.items()}), indent=1))


if __name__ == "__main__":
    main()
