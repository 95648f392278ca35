"""Checks a model graph before compilation; every failure names the vertex at fault."""

from __future__ import annotations

import networkx as nx

from neurosim.activations import ACTIVATIONS
from neurosim.errors import GraphError
from neurosim.graph.spec import CONVENTIONS, LOSSES, OPS

_REQUIRED = {
    "input": ("size",),
    "dense": ("size", "activation", "convention"),
}


def validate_graph(graph: nx.DiGraph) -> None:
    """Raise :class:`GraphError` unless ``graph`` is a model neurosim can compile.

    Checked: the graph is a non-empty ``networkx.DiGraph`` without cycles; every vertex
    has a known ``op`` and its required attributes with valid values; every dense
    vertex has exactly one parent; inputs have no parents; every sink carries a loss
    and only sinks do; all children of a vertex agree on the convention (a value
    neuron sends one signal, ``v`` or ``act(v)``, to all its children).
    """
    if not isinstance(graph, nx.DiGraph):
        raise GraphError(f"a model must be a networkx.DiGraph, got {type(graph).__name__}")
    if graph.number_of_nodes() == 0:
        raise GraphError("the model graph has no vertices; build one with neurosim.graph.mlp(...)")
    if not nx.is_directed_acyclic_graph(graph):
        cycle = nx.find_cycle(graph)
        raise GraphError(
            f"the model graph has a cycle through vertex {cycle[0][0]!r} ({cycle}); unroll "
            "recurrences in time so that the graph is acyclic"
        )
    for v, attrs in graph.nodes(data=True):
        _check_vertex(graph, v, attrs)
    if not any(graph.nodes[v]["op"] == "input" for v in graph):
        raise GraphError("the model graph has no input vertex (op='input')")
    for v in graph:
        children = list(graph.successors(v))
        conventions = {graph.nodes[c]["convention"] for c in children}
        if len(conventions) > 1:
            raise GraphError(
                f"the children of vertex {v!r} mix conventions {sorted(conventions)}; "
                "a vertex's children must all use 'post' or all use 'pre'"
            )
        pre_acts = {graph.nodes[c]["activation"] for c in children if graph.nodes[c]["convention"] == "pre"}
        if len(pre_acts) > 1:
            raise GraphError(
                f"the 'pre'-convention children of vertex {v!r} apply different activations "
                f"{sorted(pre_acts)} to it; give them the same activation"
            )


def _check_vertex(graph: nx.DiGraph, v: object, attrs: dict) -> None:
    op = attrs.get("op")
    if op not in OPS:
        raise GraphError(f"vertex {v!r} has unknown op {op!r}; known ops: {list(OPS)}")
    for key in _REQUIRED[op]:
        if attrs.get(key) is None:
            raise GraphError(f"vertex {v!r} (op={op!r}) is missing the attribute {key!r}")
    size = attrs["size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise GraphError(f"vertex {v!r} has size {size!r}; a size must be a positive int")
    parents = list(graph.predecessors(v))
    children = list(graph.successors(v))
    if op == "input":
        if parents:
            raise GraphError(f"input vertex {v!r} has parents {parents}; inputs must have none")
        if attrs.get("loss") is not None:
            raise GraphError(f"input vertex {v!r} carries a loss; put the loss on an output layer")
        return
    if attrs["activation"] not in ACTIVATIONS:
        raise GraphError(
            f"vertex {v!r} has unknown activation {attrs['activation']!r}; choose one of {sorted(ACTIVATIONS)}"
        )
    if attrs["convention"] not in CONVENTIONS:
        raise GraphError(
            f"vertex {v!r} has unknown convention {attrs['convention']!r}; choose 'post' or 'pre'"
        )
    if len(parents) != 1:
        raise GraphError(f"dense vertex {v!r} has {len(parents)} parents {parents}; it needs exactly one")
    loss = attrs.get("loss")
    if loss is not None and loss not in LOSSES:
        raise GraphError(f"vertex {v!r} has unknown loss {loss!r}; choose one of {list(LOSSES)}")
    if loss is not None and children:
        raise GraphError(f"output vertex {v!r} has children {children}; a vertex with a loss must be a sink")
    if loss is None and not children:
        raise GraphError(
            f"vertex {v!r} has no children and no loss, so no error can reach it; "
            "give it loss='mse' or loss='ce', or connect it"
        )
    in_features = attrs.get("in_features")
    if in_features is not None and in_features != graph.nodes[parents[0]]["size"]:
        raise GraphError(
            f"shape mismatch at vertex {v!r}: in_features={in_features} but its parent "
            f"{parents[0]!r} has size {graph.nodes[parents[0]]['size']}"
        )
