"""Exactness of the rules on computation graphs, on the event loop, in float64.

For each graph of ``tests/graph_cases.py`` (CNNs, RNNs, LSTMs at both granularities, a
residual block, a DAG of every op), the worst relative error ``||u - r|| / ||r||`` over
the parameters between the event loop's update ``u`` and ``r = -alpha dL/dtheta`` from
the vectorized reference's backprop: FixedPred at ``n_exact`` and one step short,
Z-IL, and Z-IL applying shared updates at once, Fa-Z-IL (Song's phi, then the feedback
detector) with shared updates deferred and immediate. Prints the Markdown table of
``docs/results.md``:

    python benchmarks/exact_graphs.py
"""

from __future__ import annotations

import sys

import common

sys.path.insert(0, str(common.REPO_ROOT / "tests"))

import graph_cases as gc  # noqa: E402

from neurosim.engine import Simulator  # noqa: E402
from neurosim.errors import GraphError  # noqa: E402
from neurosim.graph import exact_steps  # noqa: E402
from neurosim.reference.backprop import gradients  # noqa: E402
from neurosim.rules import ZIL, FaZIL, FixedPred  # noqa: E402

ALPHA = 0.05
CASES = {
    "CNN, avg pool, tanh": lambda: gc.cnn("tanh", "avg"),
    "CNN, max pool, relu, stride 2, padding 1": lambda: gc.cnn("relu", "max", stride=2, padding=1),
    "two convolutions, two poolings": gc.deep_cnn,
    "Elman RNN, T = 3, loss on the last step": lambda: gc.rnn(3),
    "Elman RNN, loss on every step": lambda: gc.rnn(3, loss_every=True),
    "LSTM, cell level, T = 3": lambda: gc.lstm_cells(3),
    "LSTM, gate level, T = 2": lambda: gc.lstm_gates(2),
    "residual block, equal branches": gc.residual,
    "a DAG of every op": gc.every_op_dag,
}


def main() -> None:
    print("| graph | n_exact | FixedPred, n = n_exact | FixedPred, n_exact - 1 | Z-IL | Z-IL, shared updates immediate "
          "| Fa-Z-IL deferred (song / feedback) | Fa-Z-IL immediate (song / feedback) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, make in CASES.items():
        graph = make()
        params, x, y = gc.random_case(graph, seed=1, batch=3, scale=1.0)
        grads = gradients(graph, params, x, y)
        n = exact_steps(graph)

        def error(rule: object) -> str:
            try:
                result = Simulator(graph, params).learn(x, y, rule)
            except GraphError:
                return "not defined"
            return f"{max(gc.relative_error(result.updates[k], -ALPHA * grads[k]) for k in grads):.1e}"

        print(f"| {name} | {n} | {error(FixedPred(alpha=ALPHA, n=n))} | {error(FixedPred(alpha=ALPHA, n=n - 1))} | "
              f"{error(ZIL(alpha=ALPHA))} | {error(ZIL(alpha=ALPHA, shared_updates='immediate'))} | "
              + " | ".join(" / ".join(error(FaZIL(alpha=ALPHA, shared_updates=s, detector=d)) for d in ("song", "feedback"))
                           for s in ("deferred", "immediate")) + " |")


if __name__ == "__main__":
    main()
