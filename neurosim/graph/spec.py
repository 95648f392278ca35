"""What a model graph contains: vertex ops, their attributes, their parameters.

A model is a :class:`networkx.DiGraph`. Each node is a *vertex*, a population of
scalar neurons; each edge ``parent -> child`` is a data dependency. Node attributes:

``op="input"``
    A clamped input population. Attributes: ``size`` (int). No parents.
``op="dense"``
    A dense layer with exactly one parent. Attributes: ``size`` (int),
    ``activation`` (``linear``, ``sigmoid``, ``tanh``, ``relu``), ``convention``
    and ``bias`` (bool). Optional ``loss`` (``mse`` or ``ce``) marks an output vertex.

    - ``convention="post"`` (Rosenbaum, Torch2PC): ``mu = act(W v_parent + b)``
    - ``convention="pre"`` (Whittington and Bogacz 2017, Song et al. 2020):
      ``mu = W act(v_parent) + b``; the activation belongs to the *input* of the layer.

Parameters of a dense vertex ``name`` are ``name.weight`` with PyTorch's layout
``(out, in)`` and, if ``bias``, ``name.bias`` with shape ``(out,)``.

Losses are sums over output neurons and samples, never means
(``mse: 1/2 sum (mu - y)^2``, ``ce: -sum y log softmax(mu)``).
"""

from __future__ import annotations

import networkx as nx

OPS = ("input", "dense")
CONVENTIONS = ("post", "pre")
LOSSES = ("mse", "ce")


def output_vertices(graph: nx.DiGraph) -> list[str]:
    """Vertices carrying a ``loss`` attribute, in topological order."""
    return [v for v in nx.topological_sort(graph) if graph.nodes[v].get("loss") is not None]


def param_shapes(graph: nx.DiGraph) -> dict[str, tuple[int, ...]]:
    """Name and shape (PyTorch layout) of every parameter of the graph, in topological order."""
    shapes: dict[str, tuple[int, ...]] = {}
    for v in nx.topological_sort(graph):
        attrs = graph.nodes[v]
        if attrs["op"] == "dense":
            (parent,) = graph.predecessors(v)
            shapes[f"{v}.weight"] = (attrs["size"], graph.nodes[parent]["size"])
            if attrs.get("bias", True):
                shapes[f"{v}.bias"] = (attrs["size"],)
    return shapes


def trigger_steps(graph: nx.DiGraph) -> dict[str, int]:
    """Z-IL's trigger step of every parametrized vertex: its path length to the outputs.

    Song et al.'s condition C2 updates the parameters of vertex ``j`` at inference
    step ``t = l``, the number of edges from ``j`` to the output (the output's at 0).
    Z-IL is defined only where that length is unique; a vertex with several path
    lengths to the outputs raises a :class:`~neurosim.errors.GraphError`.
    """
    from neurosim.errors import GraphError

    lengths: dict[str, set[int]] = {}
    for v in reversed(list(nx.topological_sort(graph))):
        own = {0} if graph.nodes[v].get("loss") is not None else set()
        for child in graph.successors(v):
            own |= {d + 1 for d in lengths[child]}
        lengths[v] = own
    steps: dict[str, int] = {}
    for v, ls in lengths.items():
        if graph.nodes[v]["op"] == "input":
            continue
        if len(ls) != 1:
            raise GraphError(
                f"vertex {v!r} reaches the outputs along paths of lengths {sorted(ls)}: Z-IL "
                "needs a single trigger step per vertex (Song et al. condition C2); use IL, "
                "Strict PC or FixedPred on this graph"
            )
        steps[v] = next(iter(ls))
    return steps


def exact_steps(graph: nx.DiGraph) -> int:
    """``n_exact = 1 +`` the longest path (in edges) from a parametrized vertex to an output.

    Rosenbaum (2022, Theorem 1): FixedPred with ``eta = 1`` and ``n >= n_exact``
    iterations gives the exact gradient; ``n_exact = L`` for a chain of ``L`` layers.
    """
    longest: dict[str, int] = {}
    for v in reversed(list(nx.topological_sort(graph))):
        outs = [longest[c] + 1 for c in graph.successors(v) if longest[c] >= 0]
        own = 0 if graph.nodes[v].get("loss") is not None else -1
        longest[v] = max([own, *outs])
    return 1 + max(longest[v] for v in graph if graph.nodes[v]["op"] != "input")
