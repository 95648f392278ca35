"""What a model graph contains: vertex ops, their attributes, their parameters.

A model is a :class:`networkx.DiGraph`. Each node is a *vertex*, a population of
scalar neurons holding a tensor of shape ``shape`` (flattened row-major into
``size`` neurons); each edge ``parent -> child`` is a data dependency. A vertex
computes its prediction ``mu = f(parents; theta)`` from its parents' values, taken in
the order of its ``inputs`` attribute (default: the order in which the edges were
added). Validation (:func:`neurosim.graph.validate_graph`) infers every vertex's
``shape`` and ``size`` and writes them on the node.

Ops and their attributes (``x``, ``x1``, ``x2``... are the parents' values):

``input``
    A clamped population: ``size`` (int) or ``shape`` (tuple). No parents. Optional
    ``default`` (a number): the data may leave this input out, and it is then clamped
    to that value (the recurrent builders' initial states ``h0``, ``c0``: zeros).
``dense``
    ``mu = act(sum_p W_p x_p + sum_b b)`` (``convention="post"``, Rosenbaum) or
    ``mu = sum_p W_p act(x_p) + sum_b b`` (``convention="pre"``, Whittington and
    Bogacz 2017, Song et al. 2020: the activation belongs to the *input*). Attributes
    ``size``, ``activation``, ``convention``, ``bias`` (default True); several parents
    are allowed (their maps are summed, as in ``W_ih x_t + W_hh h_{t-1}``). Optional
    ``init_fan_in`` sets the default init bound ``1/sqrt(init_fan_in)``.
``conv2d``
    Cross-correlation as PyTorch's ``nn.Conv2d``: parent of shape ``(C, H, W)``,
    attributes ``out_channels``, ``kernel_size`` (int or pair), ``stride`` (default 1),
    ``padding`` (zeros, default 0), ``activation``, ``convention``, ``bias``. Output
    ``(out_channels, H', W')`` with ``H' = (H + 2 padding - kh) // stride + 1``.
``avgpool`` / ``maxpool``
    Over windows ``kernel_size`` (int or pair) with ``stride`` (default: the kernel
    size), no padding, per channel of a ``(C, H, W)`` parent. ``maxpool`` routes the
    error to the *first* maximal input of the window in row-major order (ties are
    broken towards the lower index).
``flatten``
    ``(C, H, W)`` to ``(C*H*W,)``, row-major (PyTorch's ``flatten``).
``activation``
    Elementwise ``mu = act(x)``; attribute ``activation``.
``sum``
    Elementwise ``mu = act(x1 + x2 + ...)`` of parents of one shape; optional
    ``activation`` (default ``linear``).
``product``
    Elementwise sum of products of consecutive parent pairs,
    ``mu = f1(x1) f2(x2) + f3(x3) f4(x4) + ...`` (two parents: the plain product;
    four: the LSTM cell ``f * c_prev + i * g``); optional ``activations``, one per
    parent (default ``linear``), e.g. ``("linear", "tanh")`` for ``o * tanh(c)``.
``concat``
    The parents' values concatenated (flattened, in input order).
``split``
    The slice ``x[start:stop]`` of the (flattened) parent: attributes ``start``, ``stop``.
``lstm``
    One LSTM step as a single population, the *cell-level* granularity: value
    ``[h_t; c_t]`` (size ``2 hidden``), inputs ``x_t`` and optionally the previous
    state ``[h_{t-1}; c_{t-1}]`` (absent: zeros). Gates in PyTorch's order
    ``i, f, g, o``: ``gates = W_ih x_t + W_hh h_{t-1} + b_ih + b_hh``,
    ``c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g)``, ``h_t = sigmoid(o) tanh(c_t)``.
    Attribute ``hidden``. The previous state may also be two parents, ``h_{t-1}`` and
    ``c_{t-1}`` (size ``hidden`` each; inputs ``[x_t, h_{t-1}, c_{t-1}]``).
``chain``
    A composite vertex: the composition of the ops in ``ops`` (a list of op attribute
    dicts, e.g. conv2d, activation, maxpool), computed by one population with one
    value and one error neuron per output; see :mod:`neurosim.graph.chain`.

An edge ``parent -> v`` into a dense vertex may carry ``slice=(start, stop)``: ``v``
then reads only ``x_parent[start:stop]`` (its weight has ``stop - start`` columns).

Any vertex but an input may carry ``loss`` (``mse`` or ``ce``), which makes it an
output; only sinks do, and every sink does. ``ce`` is softmax cross-entropy over the
vertex (the softmax at an output). Losses are sums over output neurons and samples,
never means (``mse: 1/2 sum (mu - y)^2``, ``ce: -sum y log softmax(mu)``).

Parameters. ``dense``, ``conv2d`` and ``lstm`` vertices (and chains holding one)
own parameters, named by
*references*: the optional attribute ``weights`` maps a parent to a parameter name
(or ``(name, row_offset)``: the vertex uses rows ``row_offset ...`` of that matrix),
and ``biases`` lists the bias references (their values are summed). Two vertices that
name the same parameter *share* it: a recurrent weight across time steps, the gate
rows of one LSTM matrix. Defaults:

- dense with one parent: ``<v>.weight`` ``(out, in)``; with several, ``<v>.weight_<parent>``;
  bias ``<v>.bias`` ``(out,)``;
- conv2d: ``<v>.weight`` ``(out_c, in_c, kh, kw)``, ``<v>.bias`` ``(out_c,)``;
- lstm: ``<v>.weight_ih`` ``(4H, in)``, ``<v>.weight_hh`` ``(4H, H)``, biases
  ``<v>.bias_ih``, ``<v>.bias_hh`` ``(4H,)`` (PyTorch's ``nn.LSTM`` layout).

A dense parameter's rows are the largest ``row_offset + size`` of its references.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx

from neurosim.errors import GraphError
from neurosim.validation import is_count

OPS = (
    "input", "dense", "conv2d", "avgpool", "maxpool", "flatten", "activation",
    "sum", "product", "concat", "split", "lstm", "chain",
)
#: ops whose vertices own parameters (a ``chain`` owns them when one of its ops does)
PARAMETRIZED_OPS = ("dense", "conv2d", "lstm")
#: attributes every vertex may carry (``shape`` and ``size`` are also inferred by validation)
COMMON_ATTRIBUTES = ("op", "loss", "inputs", "shape", "size")
#: the attributes each op reads, besides :data:`COMMON_ATTRIBUTES`: the one list of
#: valid vertex attributes (a member of a ``chain`` takes those of its op, without ``loss``
#: and ``inputs``)
OP_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "input": ("default",),
    "dense": ("activation", "convention", "bias", "weights", "biases", "init_fan_in", "in_features"),
    "conv2d": ("out_channels", "kernel_size", "stride", "padding", "activation", "convention", "bias",
               "weights", "biases"),
    "avgpool": ("kernel_size", "stride", "padding"),
    "maxpool": ("kernel_size", "stride", "padding"),
    "flatten": (),
    "activation": ("activation",),
    "sum": ("activation",),
    "product": ("activations",),
    "concat": (),
    "split": ("start", "stop"),
    "lstm": ("hidden", "bias", "weights", "biases"),
    "chain": ("ops",),
}
#: attributes an edge may carry: ``slice=(start, stop)``, the child reads ``x[start:stop]``;
#: ``delay``, the edge's synaptic delay in hops for the asynchronous mode (neurosim.engine.delays)
EDGE_ATTRIBUTES = ("slice", "delay")
CONVENTIONS = ("post", "pre")
LOSSES = ("mse", "ce")


@dataclass(frozen=True)
class ParamRef:
    """Vertex ``vertex`` reads parameter ``name`` from row ``row_offset`` on."""

    name: str
    row_offset: int = 0


@dataclass(frozen=True)
class ParamSpec:
    """A parameter's shape (PyTorch layout) and the bound of its default uniform init."""

    shape: tuple[int, ...]
    init_bound: float


def inputs_of(graph: nx.DiGraph, v: object) -> list:
    """The parents of ``v`` in the order its op reads them (``inputs`` or edge order)."""
    given = graph.nodes[v].get("inputs")
    if given is None:
        return list(graph.predecessors(v))
    if not isinstance(given, (list, tuple)) or not all(p in graph for p in given):
        raise GraphError(f"vertex {v!r}: inputs must be a list of its parents, got {given!r}")
    return list(given)


def pair(value: object, what: str, v: object) -> tuple[int, int]:
    """An int or a pair of ints as a pair (kernel sizes, strides, paddings)."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        out = tuple(value)
    else:
        out = (value, value)
    if not all(is_count(k) for k in out):
        raise GraphError(f"vertex {v!r}: {what} must be an int or a pair of ints, got {value!r}")
    return int(out[0]), int(out[1])


def conv_geometry(graph: nx.DiGraph, v: object) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """``(kernel, stride, padding)`` of a conv2d or pooling vertex, as pairs."""
    attrs = graph.nodes[v]
    kernel = pair(attrs.get("kernel_size"), "kernel_size", v)
    default_stride = 1 if attrs["op"] == "conv2d" else kernel
    stride = pair(attrs.get("stride", default_stride), "stride", v)
    padding = pair(attrs.get("padding", 0), "padding", v)
    return kernel, stride, padding


def _ref(value: object, v: object) -> ParamRef:
    if isinstance(value, str):
        return ParamRef(value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], str) \
            and is_count(value[1]) and value[1] >= 0:
        return ParamRef(value[0], int(value[1]))
    raise GraphError(
        f"vertex {v!r}: a parameter reference is a name or (name, row_offset), got {value!r}"
    )


def _whole(ref: ParamRef, v: object, op: str) -> ParamRef:
    if ref.row_offset and op in ("conv2d", "lstm"):
        raise GraphError(
            f"{op} vertex {v!r} names parameter {ref.name!r} at row offset {ref.row_offset}; a {op} "
            "reads whole parameters, so give a plain name"
        )
    return ref


def weight_refs(graph: nx.DiGraph, v: object) -> dict[object, ParamRef]:
    """The weight parameter each parent of a parametrized vertex is read through."""
    attrs = graph.nodes[v]
    parents = inputs_of(graph, v)
    op = attrs["op"]
    if op == "lstm":  # a third parent (the previous cell state c) is read without weights
        parents = parents[:2]
        default = {parents[0]: f"{v}.weight_ih"}
        if len(parents) > 1:
            default[parents[1]] = f"{v}.weight_hh"
    elif op == "dense" and len(parents) > 1:
        default = {p: f"{v}.weight_{p}" for p in parents}
    else:
        default = {p: f"{v}.weight" for p in parents}
    given = attrs.get("weights") or {}
    if not isinstance(given, Mapping):
        raise GraphError(f"vertex {v!r}: weights must map parents to parameter names, got {given!r}")
    unknown = [p for p in given if p not in parents]
    if unknown:
        raise GraphError(f"vertex {v!r} names weights for {unknown}, which are not among its inputs {parents}")
    return {p: _whole(_ref(given.get(p, default[p]), v), v, op) for p in parents}


def bias_refs(graph: nx.DiGraph, v: object) -> list[ParamRef]:
    """The bias parameters of a parametrized vertex (their values are summed)."""
    attrs = graph.nodes[v]
    if attrs.get("biases") is not None:
        if not isinstance(attrs["biases"], (list, tuple)):
            raise GraphError(f"vertex {v!r}: biases must be a list of parameter names, got {attrs['biases']!r}")
        return [_whole(_ref(b, v), v, attrs["op"]) for b in attrs["biases"]]
    if not attrs.get("bias", True):
        return []
    if attrs["op"] == "lstm":
        return [ParamRef(f"{v}.bias_ih"), ParamRef(f"{v}.bias_hh")]
    return [ParamRef(f"{v}.bias")]


def output_vertices(graph: nx.DiGraph) -> list[str]:
    """Vertices carrying a ``loss`` attribute, in topological order."""
    return [v for v in nx.topological_sort(graph) if graph.nodes[v].get("loss") is not None]


def edge_slice(graph: nx.DiGraph, parent: object, v: object) -> tuple[int, int] | None:
    """The range ``(start, stop)`` of ``parent``'s outputs that ``v`` reads, or None (all of them)."""
    given = graph.edges[parent, v].get("slice")
    return None if given is None else (int(given[0]), int(given[1]))


def parent_shape(graph: nx.DiGraph, parent: object, v: object) -> tuple[int, ...]:
    """The shape of what ``v`` reads from ``parent``: its shape, or ``(stop - start,)`` through a slice."""
    cut = edge_slice(graph, parent, v)
    return tuple(graph.nodes[parent]["shape"]) if cut is None else (cut[1] - cut[0],)


def parent_size(graph: nx.DiGraph, parent: object, v: object) -> int:
    """How many of ``parent``'s outputs ``v`` reads."""
    cut = edge_slice(graph, parent, v)
    return int(graph.nodes[parent]["size"]) if cut is None else cut[1] - cut[0]


def is_parametrized(graph: nx.DiGraph, v: object) -> bool:
    """Whether vertex ``v`` owns parameters (a dense, conv2d or lstm op, or a chain holding one)."""
    attrs = graph.nodes[v]
    if attrs["op"] == "chain":
        return any(isinstance(m, dict) and m.get("op") in PARAMETRIZED_OPS for m in attrs.get("ops") or ())
    return attrs["op"] in PARAMETRIZED_OPS


def param_specs(graph: nx.DiGraph) -> dict[str, ParamSpec]:
    """Every parameter of a validated graph: shape and default init bound, in
    topological order of first use.

    Init bounds follow PyTorch: ``1/sqrt(fan_in)`` for ``nn.Linear`` (fan_in: the
    parent's size) and ``nn.Conv2d`` (``in_c kh kw``), ``1/sqrt(hidden)`` for ``nn.LSTM``.
    A dense vertex's optional ``init_fan_in`` overrides its fan-in (the recurrent
    builders give ``hidden``, as ``nn.RNN`` and ``nn.LSTM`` do); a shared parameter
    takes the bound of its first user. A chain's parameters are those of its
    parametrized op, whose fan-in is the size of what that op reads.
    """
    rows: dict[str, int] = {}
    specs: dict[str, tuple[tuple[int, ...], float, str]] = {}  # name -> (trailing shape, bound, kind)

    def claim(name: str, kind: str, rows_needed: int, tail: tuple[int, ...], bound: float, v: object) -> None:
        if name in specs:
            old_tail, _, old_kind = specs[name]
            if old_kind != kind or old_tail != tail:
                raise GraphError(
                    f"vertex {v!r} uses parameter {name!r} as a {kind} of trailing shape {tail}, but "
                    f"another vertex uses it as a {old_kind} of trailing shape {old_tail}"
                )
        else:
            specs[name] = (tail, bound, kind)
        rows[name] = max(rows.get(name, 0), rows_needed)

    for v in nx.topological_sort(graph):
        if graph.nodes[v]["op"] == "chain":
            from neurosim.graph.chain import parametrized_member

            found = parametrized_member(graph, v)
            if found is not None:
                _claim_vertex(*found, claim)
        elif graph.nodes[v]["op"] in PARAMETRIZED_OPS:
            _claim_vertex(graph, v, claim)
    return {name: ParamSpec((rows[name], *tail), bound) for name, (tail, bound, _) in specs.items()}


def _claim_vertex(graph: nx.DiGraph, v: object, claim) -> None:
    """Declare the parameters of the parametrized (dense, conv2d, lstm) vertex ``v`` through ``claim``."""
    attrs = graph.nodes[v]
    op = attrs["op"]
    wrefs = weight_refs(graph, v)
    if op == "conv2d":
        (kh, kw), _, _ = conv_geometry(graph, v)
        (parent,) = wrefs
        in_c = graph.nodes[parent]["shape"][0]
        out_c = attrs["out_channels"]
        bound = 1.0 / math.sqrt(in_c * kh * kw)
        claim(wrefs[parent].name, "conv weight", out_c, (in_c, kh, kw), bound, v)
        for b in bias_refs(graph, v):
            claim(b.name, "conv bias", out_c, (), bound, v)
        return
    if op == "lstm":
        hidden = attrs["hidden"]
        bound = 1.0 / math.sqrt(hidden)
        parents = list(wrefs)
        claim(wrefs[parents[0]].name, "weight", 4 * hidden, (graph.nodes[parents[0]]["size"],), bound, v)
        if len(parents) > 1:
            claim(wrefs[parents[1]].name, "weight", 4 * hidden, (hidden,), bound, v)
        for b in bias_refs(graph, v):
            claim(b.name, "bias", 4 * hidden, (), bound, v)
        return
    size = attrs["size"]
    fan_in = attrs.get("init_fan_in") or sum(parent_size(graph, p, v) for p in wrefs)
    bound = 1.0 / math.sqrt(fan_in)
    for p, ref in wrefs.items():
        claim(ref.name, "weight", ref.row_offset + size, (parent_size(graph, p, v),), bound, v)
    for b in bias_refs(graph, v):
        claim(b.name, "bias", b.row_offset + size, (), bound, v)


def param_shapes(graph: nx.DiGraph) -> dict[str, tuple[int, ...]]:
    """Name and shape (PyTorch layout) of every parameter of the graph."""
    return {name: spec.shape for name, spec in param_specs(graph).items()}


def _path_lengths(graph: nx.DiGraph) -> dict[object, set[int]]:
    """For every vertex, the lengths (in edges) of its paths to the outputs."""
    lengths: dict[object, set[int]] = {}
    for v in reversed(list(nx.topological_sort(graph))):
        own = {0} if graph.nodes[v].get("loss") is not None else set()
        for child in graph.successors(v):
            own |= {d + 1 for d in lengths[child]}
        lengths[v] = own
    return lengths


def trigger_steps(graph: nx.DiGraph) -> dict[str, int]:
    """Z-IL's trigger step of every non-input vertex with a single path length to the outputs.

    Song et al.'s condition C2 updates the parameters of vertex ``j`` at inference
    step ``t = l``, the number of edges from ``j`` to the output (the output's at 0).
    Z-IL is defined only where every *parametrized* vertex has a single such length
    (then so does every vertex below it) and its update still reads its inputs'
    forward-pass values: a parent of a parametrized vertex ``j`` must have no path to
    the outputs shorter than the one through ``j`` (it would move before ``t = l_j``).
    Otherwise a :class:`GraphError` says which vertex breaks this. Vertices without
    parameters and several lengths get no step.
    """
    lengths = _path_lengths(graph)
    steps: dict[str, int] = {}
    for v, ls in lengths.items():
        op = graph.nodes[v]["op"]
        if op == "input":
            continue
        if len(ls) == 1:
            steps[v] = next(iter(ls))
        elif is_parametrized(graph, v):
            raise GraphError(
                f"vertex {v!r} reaches the outputs along paths of lengths {sorted(ls)}: Z-IL and "
                "Fa-Z-IL need a single trigger step per parametrized vertex (Song et al. condition "
                "C2); use IL, Strict PC or FixedPred on this graph"
            )
    for v in lengths:
        if not is_parametrized(graph, v):
            continue
        for p in graph.predecessors(v):
            if graph.nodes[p]["op"] != "input" and min(lengths[p]) < steps[v] + 1:
                raise GraphError(
                    f"vertex {p!r} reaches the outputs along paths of lengths {sorted(lengths[p])}: it "
                    f"has moved by step {min(lengths[p])}, when its child {v!r} updates at step {steps[v]} "
                    "and needs its forward-pass value, so Z-IL and Fa-Z-IL have no single trigger step here "
                    "(Song et al. condition C2); use IL, Strict PC or FixedPred on this graph"
                )
    return steps


def exact_steps(graph: nx.DiGraph) -> int:
    """``n_exact = 1 +`` the longest path (in edges) from a parametrized vertex to an output.

    Rosenbaum (2022, Theorem 1): FixedPred with ``eta = 1`` and ``n >= n_exact``
    iterations gives the exact gradient; ``n_exact = L`` for a chain of ``L`` layers.
    """
    lengths = _path_lengths(graph)
    params = [max(lengths[v]) for v in graph if is_parametrized(graph, v) and lengths[v]]
    return 1 + max(params, default=0)
