"""Z-IL and backprop at batch 1, timed for several checkouts of neurosim on this machine.

``python benchmarks/compare_checkouts.py PATH [PATH ...]``: each PATH is a checkout (for
example ``git worktree add /tmp/old COMMIT``); each is timed in its own process, with
its own numba cache, so that a change in speed can be told from a change of machine.
Network: 784-256-256-10 (sigmoid, pre), one random sample; 5 warm-up calls, then the
mean of 50 ``Simulator.learn(x, y, ZIL(alpha=1e-3))`` and ``reference.sgd_step`` calls.
"""

from __future__ import annotations

import os
import subprocess
import sys

SNIPPET = """
import time, numpy as np
from neurosim.graph import mlp
from neurosim.engine import Simulator
from neurosim.rules import ZIL
from neurosim.reference.backprop import sgd_step
g = mlp([784, 256, 256, 10], activation="sigmoid", convention="pre")
sim = Simulator(g, seed=0)
rng = np.random.default_rng(0)
x, y = rng.random((1, 784)), np.eye(10)[[3]]
rule = ZIL(alpha=1e-3)
p = sim.params
for _ in range(5):
    sim.learn(x, y, rule)
    sgd_step(g, p, x, y, 1e-3)
t = time.perf_counter(); [sim.learn(x, y, rule) for _ in range(50)]; zil = (time.perf_counter() - t) / 50e-3
t = time.perf_counter(); [sgd_step(g, p, x, y, 1e-3) for _ in range(50)]; bp = (time.perf_counter() - t) / 50e-3
print(f"{zil:.2f} {bp:.2f}")
"""


def main(paths: list[str]) -> None:
    print("| checkout | Z-IL ms/sample | BP ms/sample | Z-IL / BP |\n|---|---|---|---|")
    for path in paths:
        env = {**os.environ, "PYTHONPATH": os.path.abspath(path)}
        out = subprocess.run([sys.executable, "-c", SNIPPET], env=env, cwd=path, check=True,
                             capture_output=True, text=True).stdout.split()
        zil, bp = map(float, out[-2:])
        print(f"| {path} | {zil:.2f} | {bp:.2f} | {zil / bp:.2f} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
