"""Checks a model graph before compilation; every failure names the vertex at fault.

Validation also infers every vertex's ``shape`` (and ``size``, the number of its
neurons) from its parents and writes both on the node; a ``size`` or ``shape`` the
user gave must agree with the inferred one.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np

from neurosim import validation
from neurosim.activations import ACTIVATIONS
from neurosim.errors import GraphError
from neurosim.graph.spec import (
    COMMON_ATTRIBUTES,
    CONVENTIONS,
    EDGE_ATTRIBUTES,
    LOSSES,
    OP_ATTRIBUTES,
    OPS,
    conv_geometry,
    inputs_of,
    param_specs,
    parent_shape,
    parent_size,
)

_REQUIRED = {
    "input": (),
    "dense": ("size", "activation", "convention"),
    "conv2d": ("out_channels", "kernel_size", "activation", "convention"),
    "avgpool": ("kernel_size",),
    "maxpool": ("kernel_size",),
    "flatten": (),
    "activation": ("activation",),
    "sum": (),
    "product": (),
    "concat": (),
    "split": ("start", "stop"),
    "lstm": ("hidden",),
    "chain": ("ops",),
}
#: graph attribute holding the shapes and sizes validation wrote on the vertices
_INFERRED = "neurosim_inferred"
#: how many parents each op takes: (fewest, most)
_ARITY = {
    "input": (0, 0), "dense": (1, None), "conv2d": (1, 1), "avgpool": (1, 1), "maxpool": (1, 1),
    "flatten": (1, 1), "activation": (1, 1), "sum": (1, None), "product": (2, None),
    "concat": (1, None), "split": (1, 1), "lstm": (1, 3), "chain": (1, None),
}


def validate_graph(graph: nx.DiGraph) -> None:
    """Raise :class:`GraphError` unless ``graph`` is a model neurosim can compile.

    Checked: the graph is a non-empty ``networkx.DiGraph`` without cycles; every vertex
    has a known ``op``, its required attributes with valid values and the number of
    parents its op takes; shapes agree along every edge; inputs have no parents; every
    sink carries a loss and only sinks do; all children of a vertex agree on the signal
    they read from it (a value neuron sends one signal, ``v`` or, to ``pre``-convention
    dense and conv children, ``act(v)``); shared parameters are used consistently; an
    edge ``slice`` is a valid range read by a dense vertex; a chain's ops are valid and
    have a neuron-level form (:mod:`neurosim.graph.chain`); an input's ``default`` is a
    finite number.
    Every vertex and edge attribute is one its op reads (a misspelling is named, with the
    nearest valid attribute), every input feeds some vertex, and the graph fits the size
    budgets of :mod:`neurosim.validation` (neurons, synapses, parameters).
    """
    if not isinstance(graph, nx.DiGraph) or graph.is_multigraph():
        raise GraphError(f"a model must be a networkx.DiGraph, got {type(graph).__name__}")
    if graph.number_of_nodes() == 0:
        raise GraphError("the model graph has no vertices; build one with neurosim.graph.mlp(...)")
    if not nx.is_directed_acyclic_graph(graph):
        cycle = nx.find_cycle(graph)
        raise GraphError(
            f"the model graph has a cycle through vertex {cycle[0][0]!r} ({cycle}); unroll "
            "recurrences in time so that the graph is acyclic"
        )
    for v in nx.topological_sort(graph):
        _check_vertex(graph, v, graph.nodes[v])
    if not any(graph.nodes[v]["op"] == "input" for v in graph):
        raise GraphError("the model graph has no input vertex (op='input')")
    for v in graph:
        _check_signal(graph, v)
    specs = param_specs(graph)  # raises where a shared parameter is used inconsistently
    _check_budgets(graph, sum(math.prod(spec.shape) for spec in specs.values()))


def _synapses(graph: nx.DiGraph, v: object) -> int:
    """How many synapses vertex ``v`` compiles to (at most; padding is not subtracted)."""
    attrs = graph.nodes[v]
    op, size = attrs["op"], attrs["size"]
    parents = inputs_of(graph, v)
    if op in ("dense", "lstm", "chain"):  # an LSTM of hidden size H (size 2H) reads 4H x (inputs) weights
        return (2 if op == "lstm" else 1) * size * sum(graph.nodes[p]["size"] for p in parents)
    if op in ("conv2d", "avgpool", "maxpool"):
        (kh, kw), _, _ = conv_geometry(graph, v)
        return size * kh * kw * (graph.nodes[parents[0]]["shape"][0] if op == "conv2d" else 1)
    return size * max(len(parents), 1)


def _check_budgets(graph: nx.DiGraph, n_params: int) -> None:
    """Refuse a graph larger than the budgets of :mod:`neurosim.validation`."""
    hint = "build a smaller model or raise the budget"
    neurons = sum(2 * graph.nodes[v]["size"] for v in graph)
    validation.require_budget(neurons, validation.MAX_NEURONS, "the number of neurons of this graph", hint,
                              GraphError, "MAX_NEURONS")
    synapses = sum(_synapses(graph, v) for v in graph)
    validation.require_budget(synapses, validation.MAX_SYNAPSES, "the number of synapses of this graph", hint,
                              GraphError, "MAX_SYNAPSES")
    validation.require_budget(n_params, validation.MAX_PARAMETERS, "the number of parameters of this graph", hint,
                              GraphError, "MAX_PARAMETERS")


def _is_pre(graph: nx.DiGraph, v: object) -> bool:
    from neurosim.graph.chain import pre_activation

    return pre_activation(graph, v) is not None


def _check_signal(graph: nx.DiGraph, v: object) -> None:
    children = list(graph.successors(v))
    pre = [c for c in children if _is_pre(graph, c)]
    if pre and len(pre) != len(children):
        raise GraphError(
            f"the children of vertex {v!r} mix the 'pre' convention ({pre}) with others; a value "
            "neuron sends one signal to all its children, act(v) for 'pre' or v otherwise"
        )
    from neurosim.graph.chain import pre_activation

    pre_acts = {pre_activation(graph, c) for c in pre}
    if len(pre_acts) > 1:
        raise GraphError(
            f"the 'pre'-convention children of vertex {v!r} apply different activations "
            f"{sorted(pre_acts)} to it; give them the same activation"
        )


def _positive_int(value: object) -> bool:
    return validation.is_count(value) and value >= 1


def _check_activation(v: object, name: object, what: str = "activation") -> None:
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise GraphError(f"vertex {v!r} has unknown {what} {name!r}; choose one of {sorted(ACTIVATIONS)}")


def _check_vertex(graph: nx.DiGraph, v: object, attrs: dict) -> None:
    op = attrs.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise GraphError(f"vertex {v!r} has unknown op {op!r}{validation.suggestion(op, OPS)}; known ops: {list(OPS)}")
    _check_known(f"vertex {v!r} (op={op!r})", op, attrs, COMMON_ATTRIBUTES + OP_ATTRIBUTES.get(op, ()))
    for key in _REQUIRED[op]:
        if attrs.get(key) is None:
            raise GraphError(f"vertex {v!r} (op={op!r}) is missing the attribute {key!r}")
    if "bias" in attrs and not isinstance(attrs["bias"], (bool, np.bool_)):
        raise GraphError(f"vertex {v!r}: bias must be True or False, got {attrs['bias']!r}")
    if attrs.get("init_fan_in") is not None and not _positive_int(attrs["init_fan_in"]):
        raise GraphError(f"vertex {v!r}: init_fan_in must be a positive int, got {attrs['init_fan_in']!r}")
    loss = attrs.get("loss")
    if loss is not None and (not isinstance(loss, str) or loss not in LOSSES):
        raise GraphError(f"vertex {v!r} has unknown loss {loss!r}; choose one of {list(LOSSES)}")
    if not isinstance(attrs.get("convention", "post"), str):
        raise GraphError(f"vertex {v!r} has unknown convention {attrs['convention']!r}; choose 'post' or 'pre'")
    parents = inputs_of(graph, v)
    actual = set(graph.predecessors(v))
    if set(parents) != actual or len(parents) != len(actual):
        raise GraphError(
            f"vertex {v!r} lists inputs {parents} but its parents in the graph are {sorted(map(str, actual))}"
        )
    _check_arity(v, op, parents)
    _check_slices(graph, v, op, parents)
    children = list(graph.successors(v))
    if op == "input":
        if attrs.get("loss") is not None:
            raise GraphError(f"input vertex {v!r} carries a loss; put the loss on an output layer")
        if not children:
            raise GraphError(f"input vertex {v!r} feeds no vertex; connect it or remove it")
        default = attrs.get("default")
        if default is not None and (not validation.is_real(default) or not math.isfinite(default)):
            raise GraphError(
                f"input vertex {v!r} has default {default!r}; the value clamped when the data leave an input "
                "out is a finite number (e.g. 0.0 for an initial state)"
            )
    else:
        if loss is not None and children:
            raise GraphError(f"output vertex {v!r} has children {children}; a vertex with a loss must be a sink")
        if loss is None and not children:
            raise GraphError(
                f"vertex {v!r} has no children and no loss, so no error can reach it; "
                "give it loss='mse' or loss='ce', or connect it"
            )
    _check_op_attributes(v, op, attrs)
    # What an earlier validation wrote is inferred, not declared: infer it again (the
    # graph may have changed since).
    inferred = graph.graph.setdefault(_INFERRED, {})
    earlier = inferred.get(v, {})
    unchanged = [key for key, value in earlier.items() if _same(attrs.get(key), value)]
    # an input whose size or shape the user changed: the other one is stale
    edited = op == "input" and any(attrs.get(key) is not None and key not in unchanged for key in earlier)
    for key in unchanged:
        if edited or not (op == "input" or (op == "dense" and key == "size")):
            del attrs[key]
    for key in ("shape", "size"):
        if attrs.get(key) is not None and not (_positive_int(attrs[key]) if key == "size" else _is_shape(attrs[key])):
            raise GraphError(
                f"vertex {v!r} has {key} {attrs[key]!r}; a size is a positive int, a shape a tuple of positive ints"
            )
    shape = _infer_shape(graph, v, attrs, parents)
    given_shape = attrs.get("shape")
    if given_shape is not None and tuple(given_shape) != shape:
        raise GraphError(f"shape mismatch at vertex {v!r}: it declares shape {tuple(given_shape)}, its inputs give {shape}")
    size = math.prod(shape)
    given = attrs.get("size")
    if given is not None and given != size:
        raise GraphError(f"shape mismatch at vertex {v!r}: it declares size {given}, its inputs give {size} {shape}")
    attrs["shape"] = shape
    attrs["size"] = size
    inferred[v] = {"shape": shape, "size": size}


def _check_known(what: str, op: str, attrs: dict, valid: tuple[str, ...]) -> None:
    """Refuse an attribute outside ``valid`` (:data:`~neurosim.graph.spec.OP_ATTRIBUTES`),
    naming the nearest valid one: a misspelled optional attribute is never ignored."""
    for key in attrs:
        if op in OP_ATTRIBUTES and key not in valid:
            raise GraphError(
                f"{what} has unknown attribute {key!r}{validation.suggestion(key, valid)}; "
                f"the valid ones are {sorted(valid)}"
            )


def _same(given: object, inferred: object) -> bool:
    """Whether an attribute still holds what validation inferred (a tuple may have become a list)."""
    if isinstance(given, (list, tuple)) and isinstance(inferred, tuple):
        return tuple(given) == inferred
    return _positive_int(given) and given == inferred


def _is_shape(value: object) -> bool:
    return isinstance(value, (tuple, list)) and len(value) > 0 and all(_positive_int(k) for k in value)


def _check_arity(v: object, op: str, parents: list) -> None:
    lo, hi = _ARITY[op]
    if len(parents) < lo or (hi is not None and len(parents) > hi):
        want = f"exactly {lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
        raise GraphError(f"{op} vertex {v!r} has {len(parents)} parents {parents}; it needs {want}")


def _check_op_attributes(v: object, op: str, attrs: dict) -> None:
    if op in ("dense", "conv2d", "activation"):
        _check_activation(v, attrs["activation"])
    if op in ("dense", "conv2d") and attrs["convention"] not in CONVENTIONS:
        raise GraphError(f"vertex {v!r} has unknown convention {attrs['convention']!r}; choose 'post' or 'pre'")
    if op == "sum":
        _check_activation(v, attrs.get("activation", "linear"))


def _check_slices(graph: nx.DiGraph, v: object, op: str, parents: list) -> None:
    """An edge's ``slice=(start, stop)``: a contiguous range of the parent, read by a dense vertex."""
    for p in parents:
        _check_known(f"the edge {p!r} -> {v!r}", op, graph.edges[p, v], EDGE_ATTRIBUTES)
        cut = graph.edges[p, v].get("slice")
        if cut is None:
            continue
        if op != "dense":
            raise GraphError(
                f"the edge {p!r} -> {v!r} has a slice, but {op} vertices read whole parents; only dense "
                "vertices read a slice (use a split vertex otherwise)"
            )
        n = graph.nodes[p]["size"]
        ok = isinstance(cut, (list, tuple)) and len(cut) == 2 and all(
            isinstance(k, int) and not isinstance(k, bool) for k in cut)
        if not ok or not 0 <= cut[0] < cut[1] <= n:
            raise GraphError(
                f"the edge {p!r} -> {v!r} has slice {cut!r}; give (start, stop) with 0 <= start < stop <= {n} "
                f"(the size of {p!r})"
            )


def check_member(graph: nx.DiGraph, v: object) -> None:
    """Check op ``v`` of a chain in its small graph (see :func:`neurosim.graph.chain.member_graphs`):
    required attributes, arity, activations, shapes. Writes its ``shape`` and ``size``."""
    attrs = graph.nodes[v]
    op = attrs["op"]
    _check_known(f"op {op!r}", op, attrs, ("op", "inputs", "shape", "size") + OP_ATTRIBUTES.get(op, ()))
    for key in _REQUIRED[op]:
        if attrs.get(key) is None:
            raise GraphError(f"op {op!r} is missing the attribute {key!r}")
    parents = inputs_of(graph, v)
    _check_arity(v, op, parents)
    _check_op_attributes(v, op, attrs)
    shape = _infer_shape(graph, v, attrs, parents)
    given = attrs.get("size")
    if op == "dense" or given is None or given == math.prod(shape):
        attrs["shape"], attrs["size"] = shape, math.prod(shape)
        return
    raise GraphError(f"op {op!r} declares size {given}, its input gives {math.prod(shape)} {shape}")


def _parent_shapes(graph: nx.DiGraph, parents: list, v: object) -> list[tuple[int, ...]]:
    return [parent_shape(graph, p, v) for p in parents]


def _infer_shape(graph: nx.DiGraph, v: object, attrs: dict, parents: list) -> tuple[int, ...]:
    op = attrs["op"]
    shapes = _parent_shapes(graph, parents, v)
    if op == "chain":
        from neurosim.graph.chain import chain_plan

        plan = chain_plan(graph, v)
        g, last = plan.graphs[-1]
        return tuple(g.nodes[last]["shape"])
    if op == "input":
        if attrs.get("shape") is not None:
            return tuple(int(k) for k in attrs["shape"])
        size = attrs.get("size")
        if not _positive_int(size):
            raise GraphError(f"vertex {v!r} has size {size!r}; a size must be a positive int")
        return (int(size),)
    if op == "dense":
        if not _positive_int(attrs["size"]):
            raise GraphError(f"vertex {v!r} has size {attrs['size']!r}; a size must be a positive int")
        in_features = attrs.get("in_features")
        if in_features is not None and (not _positive_int(in_features) or in_features != parent_size(graph, parents[0], v)):
            raise GraphError(
                f"shape mismatch at vertex {v!r}: in_features={in_features} but its parent "
                f"{parents[0]!r} gives {parent_size(graph, parents[0], v)}"
            )
        return (int(attrs["size"]),)
    if op in ("conv2d", "avgpool", "maxpool"):
        (shape,) = shapes
        if len(shape) != 3:
            raise GraphError(
                f"{op} vertex {v!r} needs a (channels, height, width) parent, but {parents[0]!r} has "
                f"shape {shape}; give the input vertex shape=(C, H, W)"
            )
        (kh, kw), (sh, sw), (ph, pw) = conv_geometry(graph, v)
        if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0:
            raise GraphError(f"vertex {v!r}: kernel_size and stride must be >= 1 and padding >= 0")
        if op != "conv2d" and (ph or pw):
            raise GraphError(f"pooling vertex {v!r} has padding {ph, pw}; pooling takes no padding")
        c, h, w = shape
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if oh < 1 or ow < 1:
            raise GraphError(f"vertex {v!r}: kernel {kh, kw} does not fit its input of shape {shape}")
        if op == "conv2d":
            if not _positive_int(attrs["out_channels"]):
                raise GraphError(f"vertex {v!r} has out_channels {attrs['out_channels']!r}; give a positive int")
            return (int(attrs["out_channels"]), oh, ow)
        return (c, oh, ow)
    if op == "flatten":
        return (math.prod(shapes[0]),)
    if op == "activation":
        return shapes[0]
    if op in ("sum", "product"):
        if len(set(shapes)) != 1:
            raise GraphError(f"shape mismatch at {op} vertex {v!r}: its inputs {parents} have shapes {shapes}")
        if op == "product":
            if len(parents) % 2:
                raise GraphError(
                    f"product vertex {v!r} has {len(parents)} inputs; it multiplies consecutive pairs "
                    "(and sums the products), so it needs an even number"
                )
            acts = attrs.get("activations") or ["linear"] * len(parents)
            if not isinstance(acts, (list, tuple)) or len(acts) != len(parents):
                raise GraphError(
                    f"product vertex {v!r} has {len(parents)} inputs; activations must list one per input, got {acts!r}"
                )
            for a in acts:
                _check_activation(v, a, "factor activation")
        return shapes[0]
    if op == "concat":
        return (sum(math.prod(s) for s in shapes),)
    if op == "split":
        n = math.prod(shapes[0])
        start, stop = attrs["start"], attrs["stop"]
        if not (validation.is_count(start) and validation.is_count(stop) and 0 <= start < stop <= n):
            raise GraphError(f"split vertex {v!r} takes [{start}:{stop}] of a parent of size {n}; need 0 <= start < stop <= {n}")
        return (int(stop - start),)
    if op == "lstm":
        hidden = attrs["hidden"]
        if not _positive_int(hidden):
            raise GraphError(f"lstm vertex {v!r} has hidden {hidden!r}; give a positive int")
        if len(parents) == 2 and graph.nodes[parents[1]]["size"] != 2 * hidden:
            raise GraphError(
                f"shape mismatch at lstm vertex {v!r}: its previous state {parents[1]!r} has size "
                f"{graph.nodes[parents[1]]['size']}, expected 2 * hidden = {2 * hidden} ([h; c])"
            )
        for p in parents[1:] if len(parents) == 3 else ():
            if graph.nodes[p]["size"] != hidden:
                raise GraphError(
                    f"shape mismatch at lstm vertex {v!r}: its previous state is read as [x, h, c] and "
                    f"{p!r} has size {graph.nodes[p]['size']}, expected hidden = {hidden}"
                )
        return (2 * int(hidden),)
    raise AssertionError(op)  # pragma: no cover - every op is handled above
