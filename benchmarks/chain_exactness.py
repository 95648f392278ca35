"""Exactness on composite vertices, edge slices and the recurrent builders' options (issue 9).

For each graph family, the worst relative error ``||u - r|| / ||r||`` over the
parameters, float64, batch 3, on the event loop:

- FixedPred (``eta = 1``, ``n_exact``), Z-IL and Fa-Z-IL: ``u`` the update, ``r = -alpha
  dL/dtheta`` from backprop on an *equivalent graph without the new feature* (the chain
  unfused into one vertex per op; a slice replaced by a ``split`` vertex; the other
  LSTM granularity), so no code of the feature is on the path of ``r``;
- Strict PC (``eta = 0.3, n = 5``) and IL (``gamma = 0.2, t_c = 6``): ``r`` the
  vectorized reference's update on the same graph.

Prints the Markdown table of ``docs/graphs.md``::

    PYTHONPATH=$PWD python benchmarks/chain_exactness.py
"""

from __future__ import annotations

import sys

import networkx as nx

import common

sys.path.insert(0, str(common.REPO_ROOT / "tests"))

import graph_cases as gc  # noqa: E402

from neurosim.engine import Simulator  # noqa: E402
from neurosim.graph import cnn, exact_steps, lstm, rnn, sequential, trigger_steps, validate_graph  # noqa: E402
from neurosim.reference import gradients, run_rule  # noqa: E402
from neurosim.rules import IL, ZIL, FaZIL, FixedPred, StrictPC  # noqa: E402

ALPHA = 0.05


def _chain_case(graph):
    plain, last = gc.unfused(graph)
    return graph, lambda p, x, y: gradients(plain, p, x, {last[v]: t for v, t in y.items()})


def _sliced_dag():
    """``x -> h -> {a reads h[1:4], b reads h[0:2] and x[3:6]} -> sum -> out``, and the same
    function with ``split`` vertices in place of the slices."""
    def build(split):
        g = nx.DiGraph()
        g.add_node("x", op="input", size=6)
        g.add_node("h", op="dense", size=5, activation="tanh", convention="post")
        g.add_node("a", op="dense", size=3, activation="sigmoid", convention="post")
        g.add_node("b", op="dense", size=3, activation="linear", convention="post",
                   inputs=["h2" if split else "h", "x2" if split else "x"],
                   weights={("h2" if split else "h"): "b.weight_h", ("x2" if split else "x"): "b.weight_x"})
        g.add_node("s", op="sum")
        g.add_node("out", op="dense", size=2, activation="linear", convention="post", loss="mse")
        g.add_edges_from([("x", "h"), ("a", "s"), ("b", "s"), ("s", "out")])
        if split:
            for name, parent, cut, child in (("h1", "h", (1, 4), "a"), ("h2", "h", (0, 2), "b"), ("x2", "x", (3, 6), "b")):
                g.add_node(name, op="split", start=cut[0], stop=cut[1])
                g.add_edges_from([(parent, name), (name, child)])
            g.nodes["a"]["weights"] = {"h1": "a.weight"}
        else:
            g.add_edge("h", "a", slice=(1, 4))
            g.add_edge("h", "b", slice=(0, 2))
            g.add_edge("x", "b", slice=(3, 6))
        validate_graph(g)
        return g

    plain = build(True)
    return build(False), lambda p, x, y: gradients(plain, p, x, y)


def _lstm_slice():
    split = lstm(3, 2, 2, steps=3, granularity="cell", loss="ce")
    return lstm(3, 2, 2, steps=3, granularity="cell", loss="ce", readout="slice"), \
        lambda p, x, y: gradients(split, p, x, y)


def _lstm_h0(granularity):
    other = lstm(3, 2, 2, steps=3, granularity="gate" if granularity == "cell" else "cell", loss="mse",
                 initial_state=True)
    return lstm(3, 2, 2, steps=3, granularity=granularity, loss="mse", initial_state=True), \
        lambda p, x, y: gradients(other, p, x, y)


CASES = {
    "block CNN: [conv, relu, maxpool] x 2, [flatten, dense]": lambda: _chain_case(gc.block_cnn("relu", "max")),
    "block CNN: [conv, tanh, avgpool] x 2, mse": lambda: _chain_case(gc.block_cnn("tanh", "avg", loss="mse")),
    "block CNN: conv's own sigmoid, maxpool": lambda: _chain_case(gc.block_cnn("sigmoid", "max", separate_act=False)),
    "block CNN, pre convention, tanh, avgpool": lambda: _chain_case(
        gc.block_cnn("tanh", "avg", convention="pre", separate_act=False)),
    "cnn(granularity='block'), tanh, 2 conv blocks, hidden 4": lambda: _chain_case(
        cnn((1, 10, 10), channels=(3, 2), kernel_size=3, pool="max", pool_size=2, activation="tanh", hidden=(4,), n_out=3,
            granularity="block")),
    "sequential(): Torch2PC layout, 3 blocks": lambda: _chain_case(sequential(
        [[dict(op="conv2d", out_channels=2, kernel_size=3), dict(op="activation", activation="relu"),
          dict(op="maxpool", kernel_size=2)],
         [dict(op="conv2d", out_channels=3, kernel_size=2, padding=1), dict(op="activation", activation="tanh"),
          dict(op="avgpool", kernel_size=2)],
         [dict(op="flatten"), dict(op="dense", size=4)]], input_shape=(1, 8, 8), loss="ce")),
    "DAG with edge slices": _sliced_dag,
    "LSTM cell, readout through a slice, T = 3": _lstm_slice,
    "LSTM gate level, h0 and c0 given, T = 3": lambda: _lstm_h0("gate"),
    "LSTM cell level, h0 and c0 given, T = 3": lambda: _lstm_h0("cell"),
}


def main() -> None:
    print("| graph | n_exact | FixedPred | Z-IL | Fa-Z-IL | Strict PC vs reference | IL vs reference |")
    print("|---|---|---|---|---|---|---|")
    for name, make in CASES.items():
        graph, exact = make()
        params, x, y = gc.random_case(graph, seed=1, batch=3, scale=1.0)
        grads = exact(params, x, y)
        try:
            trigger_steps(graph)
            zil = True
        except Exception:  # noqa: BLE001 - a GraphError: no single trigger step
            zil = False

        def vs_backprop(rule: object) -> str:
            res = Simulator(graph, params).learn(x, y, rule)
            return f"{max(gc.relative_error(res.updates[k], -ALPHA * grads[k]) for k in grads):.1e}"

        def vs_reference(rule: object) -> str:
            ours, ref = Simulator(graph, params).learn(x, y, rule), run_rule(graph, params, x, y, rule)
            return f"{max(gc.relative_error(ours.updates[k], ref.updates[k]) for k in ref.updates):.1e}"

        cells = [vs_backprop(FixedPred(alpha=ALPHA, eta=1.0))]
        cells += [vs_backprop(ZIL(alpha=ALPHA)), vs_backprop(FaZIL(alpha=ALPHA))] if zil else ["not defined"] * 2
        cells += [vs_reference(StrictPC(alpha=ALPHA, eta=0.3, n=5)), vs_reference(IL(alpha=ALPHA, gamma=0.2, t_c=6))]
        print(f"| {name} | {exact_steps(graph)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
