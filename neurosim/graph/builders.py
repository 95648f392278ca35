"""Builders for the usual models, returning validated ``networkx.DiGraph`` objects."""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx

from neurosim.graph.validate import validate_graph


def mlp(
    sizes: Sequence[int],
    activation: str | Sequence[str] = "sigmoid",
    convention: str = "post",
    bias: bool = True,
    loss: str = "mse",
    output_activation: str | None = None,
) -> nx.DiGraph:
    """A multilayer perceptron as a chain ``input -> layer1 -> ... -> layerL``.

    Parameters
    ----------
    sizes
        Widths ``[n_in, n_1, ..., n_L]``; ``L = len(sizes) - 1`` dense layers.
    activation
        One name for every layer, or one per dense layer. In the **post** convention
        layer ``k`` computes ``act_k(W_k v_{k-1} + b_k)``; in the **pre** convention
        ``W_k act_k(v_{k-1}) + b_k`` (so the input passes through ``act_1`` and the
        output is linear, as in Whittington and Bogacz 2017 and Song et al. 2020).
    convention
        ``"post"`` or ``"pre"``.
    bias
        Whether every dense layer has a bias.
    loss
        ``"mse"`` or ``"ce"`` (softmax cross-entropy), on the output vertex.
    output_activation
        Post convention only: the last layer's activation (default: the same as
        ``activation``). Use ``"linear"`` for an unsquashed output.

    Examples
    --------
    >>> g = mlp([4, 3, 2], activation="tanh", convention="pre", loss="ce")
    >>> list(g.nodes)
    ['input', 'layer1', 'layer2']
    """
    n_layers = len(sizes) - 1
    if isinstance(activation, str):
        acts = [activation] * n_layers
    else:
        acts = list(activation)
    if output_activation is not None and acts:
        acts[-1] = output_activation
    g = nx.DiGraph(name=f"mlp-{'-'.join(str(s) for s in sizes)}")
    g.add_node("input", op="input", size=sizes[0] if sizes else 0)
    prev = "input"
    for k in range(1, n_layers + 1):
        name = f"layer{k}"
        attrs = dict(op="dense", size=sizes[k], activation=acts[k - 1] if k - 1 < len(acts) else None,
                     convention=convention, bias=bias)
        if k == n_layers:
            attrs["loss"] = loss
        g.add_node(name, **attrs)
        g.add_edge(prev, name)
        prev = name
    validate_graph(g)
    return g
