"""Composite vertices: a ``chain`` of ops computed by one population.

Torch2PC (Rosenbaum 2022) makes each element of an ``nn.Sequential`` one
predictive-coding layer, and that element is often a block such as
``Sequential(Conv2d, ReLU, MaxPool2d)``; Millidge, Tschantz and Buckley (2020) choose
the granularity of their computation graphs freely. A vertex ``op="chain"`` with
``ops=[{"op": "conv2d", ...}, {"op": "activation", ...}, {"op": "maxpool", ...}]``
computes the composition ``f = f_m o ... o f_1`` of its ops: it has one value neuron
and one error neuron per output of the last op, and its error ``eps = v - f(parents)``
is pulled back through the Jacobian of the whole composition.

Each op is written as a vertex of that op would be (the same attributes, without
``loss`` and ``inputs``); a ``dense`` or ``conv2d`` op defaults to ``activation="linear"``
and ``convention="post"``. The first op reads the chain's parents (in the chain's
``inputs`` order), every later op the previous op's output. Parameters are named after
the chain and the op's position, ``<v>.<k>.weight`` and ``<v>.<k>.bias`` (PyTorch's
``state_dict`` keys of an ``nn.Sequential`` block ``<v>`` whose ``k``-th module is the
layer), unless the op names its own ``weights``/``biases``.

A chain is compiled into one error neuron per output (:mod:`neurosim.compile.wiring`)
whose prediction is ``mu_i = P_{c in W(i)} f(a_c)``: ``a_c`` is an output of the
chain's one *weighted* op (a dense, conv2d, average pooling or sum over its parents,
or the parent itself when there is none), ``f`` the chain's one activation, and ``P``
the identity, a maximum or a mean over the window ``W(i)`` of ``a``'s positions
that the pooling ops gather. So a chain is any sequence of ops of the form::

    [reindex...] [weighted op] [reindex...] [activation] [reindex...] [pooling...] [reindex...]

where a *reindex* op (``flatten``, ``split``, a one-parent ``concat`` or linear ``sum``)
only moves values, a weighted op's own ``activation`` (post convention) counts as the
activation, the pooling ops are all ``maxpool`` or all ``avgpool``, and an activation
may also follow a ``maxpool`` (every activation neurosim knows is non-decreasing, so
``act(max a) = max act(a)`` and the first maximal element is the same). Other chains
(two weighted ops, two activations, an activation after an average pooling, products,
LSTM cells) raise a :class:`~neurosim.errors.GraphError` that says so; make them two
vertices instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from neurosim.errors import GraphError
from neurosim.graph.spec import PARAMETRIZED_OPS, conv_geometry, edge_slice, inputs_of

#: ops a chain may hold
MEMBER_OPS = ("dense", "conv2d", "avgpool", "maxpool", "flatten", "activation", "sum", "concat", "split")
_WEIGHTED = ("dense", "conv2d", "avgpool", "sum", "concat")


def members(graph: nx.DiGraph, v: object) -> list[dict]:
    """The ops of chain ``v`` as attribute dicts, with the defaults of chain members filled in."""
    ops = graph.nodes[v].get("ops")
    if not isinstance(ops, (list, tuple)) or not ops:
        raise GraphError(
            f"chain vertex {v!r} needs ops=[{{'op': ...}}, ...], a non-empty list of op attribute dicts; got {ops!r}"
        )
    out = []
    for k, m in enumerate(ops):
        if not isinstance(m, dict) or m.get("op") not in MEMBER_OPS:
            got = m.get("op") if isinstance(m, dict) else m
            raise GraphError(
                f"chain vertex {v!r}: op {k} is {got!r}; a chain holds the ops {list(MEMBER_OPS)} "
                "(given as dicts with an 'op' key)"
            )
        for key in ("loss", "inputs"):
            if key in m:
                raise GraphError(f"chain vertex {v!r}: op {k} carries {key!r}; put it on the chain vertex itself")
        m = dict(m)
        if m["op"] in ("dense", "conv2d"):
            m.setdefault("activation", "linear")
            m.setdefault("convention", "post")
        out.append(m)
    return out


def member_name(v: object, k: int) -> str:
    """The name of op ``k`` of chain ``v`` in its own small graph (its default parameter prefix)."""
    return f"{v}.{k}"


def member_graphs(graph: nx.DiGraph, v: object) -> list[tuple[nx.DiGraph, str]]:
    """For each op of chain ``v``: a small validated graph holding the op as a vertex and
    its parents as inputs of the right shapes, and the op's name in it.

    The first op's parents are the chain's parents; op ``k > 0`` reads one input,
    named as op ``k - 1``. Shapes are inferred along the way, so a bad op raises a
    :class:`GraphError` naming the chain and the op.
    """
    from neurosim.graph.validate import check_member

    parents = inputs_of(graph, v)
    if any(edge_slice(graph, p, v) is not None for p in parents):
        raise GraphError(f"chain vertex {v!r} reads a slice of a parent; slices are read by dense vertices only")
    out: list[tuple[nx.DiGraph, str]] = []
    prev_shapes = [(p, tuple(graph.nodes[p]["shape"])) for p in parents]
    for k, m in enumerate(members(graph, v)):
        g = nx.DiGraph()
        for p, shape in prev_shapes:
            g.add_node(p, op="input", shape=shape, size=int(np.prod(shape)))
        name = member_name(v, k)
        g.add_node(name, **m, inputs=[p for p, _ in prev_shapes])
        g.add_edges_from((p, name) for p, _ in prev_shapes)
        try:
            check_member(g, name)
        except GraphError as exc:
            raise GraphError(f"chain vertex {v!r}, op {k} ({m['op']}): {exc}") from None
        out.append((g, name))
        prev_shapes = [(name, tuple(g.nodes[name]["shape"]))]
    return out


def parametrized_member(graph: nx.DiGraph, v: object) -> tuple[nx.DiGraph, str] | None:
    """The small graph and name of the op of chain ``v`` that owns parameters, if any."""
    for g, name in member_graphs(graph, v):
        if g.nodes[name]["op"] in PARAMETRIZED_OPS:
            return g, name
    return None


@dataclass(frozen=True)
class ChainPlan:
    """How chain ``v`` is computed neuron by neuron (see the module docstring).

    ``graphs`` are the ops' small graphs; ``weighted`` the index of the weighted op
    (-1: none, ``a`` is the parent itself); ``source`` maps the positions the weighted
    op reads (or ``a``'s positions, without one) to the positions of the chain's single
    parent, through the reindex ops before it (None where the weighted op reads the
    parents directly); ``activation`` is ``f``; ``pool`` is ``None``, ``"max"`` or
    ``"avg"``; ``windows[i]`` lists the positions of ``a`` that output ``i`` gathers.
    """

    graphs: list[tuple[nx.DiGraph, str]]
    weighted: int
    source: np.ndarray | None
    activation: str
    pool: str | None
    windows: np.ndarray


def _pool_windows(in_shape: tuple[int, ...], out_shape: tuple[int, ...], kernel, stride) -> np.ndarray:
    """``(n_out, kh kw)``: the input positions of each pooling output's window, row-major."""
    (kh, kw), (sh, sw) = kernel, stride
    c_in, h, w = in_shape
    _, oh, ow = out_shape
    c, y, x, ky, kx = np.meshgrid(
        np.arange(c_in), np.arange(oh), np.arange(ow), np.arange(kh), np.arange(kw), indexing="ij"
    )
    return ((c * h + y * sh + ky) * w + x * sw + kx).reshape(c_in * oh * ow, kh * kw)


def _reindex(g: nx.DiGraph, name: str, n_parents: int) -> slice | None:
    """The positions a reindex op keeps of its input, or None if the op is not a reindex."""
    m = g.nodes[name]
    op = m["op"]
    if op == "flatten" or (op == "concat" and n_parents == 1) or (
            op == "sum" and n_parents == 1 and m.get("activation", "linear") == "linear") or (
            op == "activation" and m["activation"] == "linear"):
        return slice(None)
    if op == "split":
        return slice(m["start"], m["stop"])
    return None


def chain_plan(graph: nx.DiGraph, v: object) -> ChainPlan:
    """The :class:`ChainPlan` of chain ``v``; a :class:`GraphError` if the chain has no such form."""
    graphs = member_graphs(graph, v)
    parents = inputs_of(graph, v)
    single = len(parents) == 1
    source = np.arange(graph.nodes[parents[0]]["size"]) if single else None
    weighted = None
    act = "linear"
    pool: str | None = None
    windows: np.ndarray | None = None

    def refuse(k: int, why: str) -> GraphError:
        return GraphError(
            f"chain vertex {v!r}, op {k} ({graphs[k][0].nodes[graphs[k][1]]['op']}): {why}; a chain is "
            "[reindex] [weighted op] [reindex] [activation] [reindex] [pooling] [reindex] (see "
            "neurosim.graph.chain), so split it into two vertices"
        )

    for k, (g, name) in enumerate(graphs):
        m = g.nodes[name]
        op = m["op"]
        n_in = len(inputs_of(g, name))
        keep = _reindex(g, name, n_in)
        if windows is None:  # before the weighted op
            if keep is not None and source is not None:
                source = source[keep]
                continue
            if op in _WEIGHTED:
                weighted = k
                if op in ("dense", "conv2d") and m["convention"] == "post":
                    act = m["activation"]
                elif op == "sum":
                    act = m.get("activation", "linear")
                windows = np.arange(m["size"])[:, None]
                if k == 0:
                    source = None
                continue
            if op in ("activation", "maxpool"):
                weighted = -1
                windows = np.arange(len(source))[:, None]
            else:  # pragma: no cover - every member op is handled above
                raise refuse(k, "this op cannot open a chain")
        if k == weighted:
            continue
        if keep is not None:
            windows = windows[keep]
        elif op in ("activation", "sum"):
            name_act = m.get("activation", "linear")
            if act != "linear":
                raise refuse(k, f"a second activation ({act} is already applied)")
            if pool == "avg":
                raise refuse(k, "an activation after an average pooling")
            act = name_act
        elif op in ("maxpool", "avgpool"):
            kind = op[:3]
            if pool not in (None, kind):
                raise refuse(k, "max and average pooling in one chain")
            kernel, stride, _ = conv_geometry(g, name)
            (p,) = inputs_of(g, name)
            win = _pool_windows(g.nodes[p]["shape"], m["shape"], kernel, stride)
            windows = windows[win].reshape(win.shape[0], -1)
            pool = kind
        else:
            raise refuse(k, "a second weighted op (a chain holds one dense, conv2d, avgpool or sum over its "
                            "parents, before its activation and pooling)")
    if windows is None:  # only reindex ops: a = the parent itself
        weighted = -1
        windows = np.arange(len(source))[:, None]
    return ChainPlan(graphs=graphs, weighted=weighted, source=source, activation=act, pool=pool, windows=windows)


def pre_activation(graph: nx.DiGraph, v: object) -> str | None:
    """The activation a ``pre``-convention vertex applies to its parents' values, or None.

    For a dense or conv2d vertex in the ``pre`` convention, its ``activation``; for a
    chain whose weighted op is such a vertex (reading the parents, possibly through
    reindex ops), that op's activation.
    """
    attrs = graph.nodes[v]
    if attrs["op"] in ("dense", "conv2d"):
        return attrs["activation"] if attrs["convention"] == "pre" else None
    if attrs["op"] != "chain":
        return None
    plan = chain_plan(graph, v)
    if plan.weighted < 0:
        return None
    g, name = plan.graphs[plan.weighted]
    m = g.nodes[name]
    if m["op"] in ("dense", "conv2d") and m["convention"] == "pre":
        return m["activation"]
    return None
