"""Vectorized backprop on a neurosim graph: the reference every PC rule is measured against.

A graph (see :mod:`neurosim.graph.spec`) is any DAG of the spec's ops. The forward pass
walks it in topological order, backprop in reverse; what each vertex computes and its
vector-Jacobian products live in :mod:`neurosim.reference.ops`. Rows of every array are
independent samples ``b = 1..B``; every vertex's value is a flat ``(B, size)`` array
(row-major, as data and targets are laid out).

Forward pass: ``mu_k = f_k(v_p; theta)`` for the parents ``p`` of ``k`` in input order,
and every belief is set to its prediction, ``v_k = mu_k`` (``vhat``). For a dense
vertex with one parent (Rosenbaum 2022 and Torch2PC ``post``; Whittington and Bogacz
2017 and Song et al. 2020 ``pre``):

- ``post``: ``x_k = v_p``,      ``a_k = x_k W_k^T + b_k``, ``mu_k = act_k(a_k)``;
- ``pre``:  ``x_k = act_k(v_p)``, ``a_k = x_k W_k^T + b_k``, ``mu_k = a_k``;

``x_k`` is the *presynaptic signal* that vertex ``k`` receives from its parent.

Losses are sums over output neurons and samples, never means (``docs/rules.md``):

- ``mse``: ``L = 1/2 sum (mu_out - y)^2``,  ``-dL/dmu_out = y - mu_out``;
- ``ce``:  ``L = -sum y log_softmax(mu_out)``, ``-dL/dmu_out = y - softmax(mu_out)``
  (exact because each row of ``y`` is validated to be a probability distribution).

Backward pass, in reverse topological order, with ``delta_k = dL/dv_k`` (for an output,
``dL/dmu_k``) summed over the children of ``k``: ``delta_p += J_kp^T delta_k`` for every
parent ``p`` and ``dL/dtheta += J_theta^T delta_k`` for every parameter ``k`` reads
(summed over the vertices that share it). For dense ``k``: ``d_k = act_k'(a_k) delta_k``
(post) or ``delta_k`` (pre), ``dL/dW_k = d_k^T x_k``, ``dL/db_k = sum_b d_k``,
``delta_p += d_k W_k`` (post) or ``act_k'(v_p) (d_k W_k)`` (pre).

Every function takes an array namespace ``xp`` (``None``: numpy; ``cupy`` to run on a
GPU; :mod:`neurosim.arrays`) and calls no ``numpy`` function on its arrays: data enter
through ``xp.asarray`` (:func:`check_params`, :func:`check_inputs`,
:func:`check_targets`) and results are ``xp`` arrays. Arithmetic stays in the dtype of
the parameters (float64 or float32).

The building blocks :func:`network`, :func:`check_params`, :func:`check_inputs`,
:func:`check_targets`, :func:`prepare`, :func:`forward_pass`, :func:`linearize_all`,
:func:`accumulate`, :func:`backward`, :func:`output_error` and :func:`loss_terms` are
shared with :mod:`neurosim.reference.rules`, so the PC rules and backprop agree on the
data checks and on what a vertex computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy

from neurosim.arrays import namespace
from neurosim.errors import DataError, GraphError, ParameterError
from neurosim.graph.spec import ParamRef, param_shapes
from neurosim.graph.validate import validate_graph
from neurosim.reference.ops import Linearization, Vertex, input_vjps, linearize, param_vjps, preact_grad, vertex

Array = Any
Params = dict[str, Array]


@dataclass(frozen=True)
class Network:
    """What the reference needs to know about a validated graph.

    Attributes
    ----------
    inputs, vertices, outputs, hidden
        Vertex names in topological order: input vertices, every other vertex,
        vertices with a loss, and non-input vertices without one.
    parametrized
        The vertices that own parameters (dense, conv2d, lstm), in topological order.
    nodes
        The :class:`neurosim.reference.ops.Vertex` of every non-input vertex.
    children
        The children of every vertex, in topological order.
    attrs
        The node attributes of every vertex.
    """

    inputs: tuple[str, ...]
    vertices: tuple[str, ...]
    outputs: tuple[str, ...]
    hidden: tuple[str, ...]
    parametrized: tuple[str, ...]
    nodes: dict[str, Vertex]
    children: dict[str, tuple[str, ...]]
    attrs: dict[str, dict]


def network(graph: nx.DiGraph) -> Network:
    """Validate ``graph`` and list its vertices by role, in topological order."""
    validate_graph(graph)
    order = list(nx.topological_sort(graph))
    position = {v: i for i, v in enumerate(order)}
    attrs = {v: dict(graph.nodes[v]) for v in order}
    vertices = tuple(v for v in order if attrs[v]["op"] != "input")
    if not any(attrs[v].get("loss") is not None for v in vertices):
        raise GraphError("the model graph has no output vertex (a vertex with loss='mse' or 'ce')")
    nodes = {v: vertex(graph, v) for v in vertices}
    return Network(
        inputs=tuple(v for v in order if attrs[v]["op"] == "input"),
        vertices=vertices,
        outputs=tuple(v for v in vertices if attrs[v].get("loss") is not None),
        hidden=tuple(v for v in vertices if attrs[v].get("loss") is None),
        parametrized=tuple(v for v in vertices if nodes[v].weights or nodes[v].biases),
        nodes=nodes,
        children={v: tuple(sorted(graph.successors(v), key=position.__getitem__)) for v in order},
        attrs=attrs,
    )


def check_params(graph: nx.DiGraph, params: Mapping[str, Array], xp: Any = None) -> Params:
    """Copies of ``params`` as ``xp`` arrays of one floating dtype, checked against ``graph``.

    The dtype is the common dtype of the given arrays (float64 if they are not floating
    point). Raises :class:`ParameterError` naming a missing, unexpected, misshapen or
    non-finite parameter.
    """
    xp = namespace(xp)
    expected = param_shapes(graph)
    if not isinstance(params, Mapping):
        raise ParameterError(f"parameters must be a dict of arrays, got {type(params).__name__}")
    unknown = sorted(map(repr, set(params) - set(expected)))
    if unknown:
        raise ParameterError(f"unexpected parameters {unknown}; this graph has {sorted(expected)}")
    missing = [name for name in expected if name not in params]
    if missing:
        raise ParameterError(f"missing parameters {missing}; expected shapes {[expected[m] for m in missing]}")
    arrays = {}
    for name in expected:
        try:
            arrays[name] = xp.asarray(params[name])
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"parameter {name!r} is not an array of numbers: {exc}") from None
        if numpy.dtype(arrays[name].dtype).kind not in "iuf":
            raise ParameterError(f"parameter {name!r} must hold real numbers, got dtype {arrays[name].dtype}")
    dtype = xp.result_type(*arrays.values()) if arrays else numpy.dtype(numpy.float64)
    if numpy.dtype(dtype).kind != "f":
        dtype = numpy.dtype(numpy.float64)
    out: Params = {}
    for name, shape in expected.items():
        arr = xp.array(arrays[name], dtype=dtype, copy=True)
        if tuple(arr.shape) != shape:
            raise ParameterError(
                f"parameter {name!r} has shape {tuple(arr.shape)}, expected {shape} (layout (out, in))"
            )
        if not bool(xp.all(xp.isfinite(arr))):
            raise ParameterError(f"parameter {name!r} contains NaN or infinite values")
        out[name] = arr
    return out


def param_dtype(params: Params) -> Any:
    """The floating dtype of checked parameters (float64 for a graph without parameters)."""
    return next(iter(params.values())).dtype if params else numpy.dtype(numpy.float64)


def _data_array(value: Any, vertex: str, what: str, size: int, dtype: Any, xp: Any) -> Array:
    """``value`` as a finite ``(B, size)`` array of ``dtype``; DataError naming ``vertex`` otherwise."""
    try:
        arr = xp.asarray(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} for vertex {vertex!r} is not a numeric array: {exc}") from None
    if numpy.dtype(arr.dtype).kind not in "iuf":  # no strings, objects, bools; no complex cast to real
        raise DataError(f"{what} for vertex {vertex!r} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(dtype, copy=False)
    if arr.ndim != 2 or arr.shape[1] != size or arr.shape[0] < 1:
        raise DataError(
            f"{what} for vertex {vertex!r} has shape {tuple(arr.shape)}, expected (B, {size}) with B >= 1"
        )
    if not bool(xp.all(xp.isfinite(arr))):
        raise DataError(f"{what} for vertex {vertex!r} contains NaN or infinite values")
    return arr


def _by_vertex(data: Any, vertices: tuple[str, ...], what: str) -> dict[str, Any]:
    """Map ``data`` (an array, or a dict keyed by vertex) onto ``vertices``."""
    if isinstance(data, Mapping):
        if set(data) != set(vertices):
            raise DataError(
                f"{what} must be given for exactly the vertices {list(vertices)}, got keys {sorted(map(str, data))}"
            )
        return {v: data[v] for v in vertices}
    if len(vertices) != 1:
        raise DataError(f"this graph has several {what} vertices {list(vertices)}: pass a dict keyed by vertex")
    return {vertices[0]: data}


def check_inputs(net: Network, x: Any, dtype: Any, xp: Any = None) -> dict[str, Array]:
    """The clamped inputs as finite ``(B, size)`` arrays of ``dtype``, keyed by input vertex.

    ``x`` is a ``(B, n_in)`` array for a single-input graph or a dict ``{vertex: array}``;
    an input with a ``default`` (an initial state) may be left out and is then filled
    with it. Raises :class:`DataError` naming the vertex and the expected shape.
    """
    xp = namespace(xp)
    defaults = {v: net.attrs[v].get("default") for v in net.inputs}
    left_out = [v for v, d in defaults.items() if d is not None and not (isinstance(x, Mapping) and v in x)]
    given = tuple(v for v in net.inputs if v not in left_out)
    arrays = {
        v: _data_array(value, v, "input", net.attrs[v]["size"], dtype, xp)
        for v, value in _by_vertex(x, given, "input").items()
    }
    _same_batch(arrays)
    batch = int(next(iter(arrays.values())).shape[0]) if arrays else 1
    for v in left_out:  # an initial state left out of the data: its default
        arrays[v] = xp.full((batch, net.attrs[v]["size"]), defaults[v], dtype=dtype)
    return {v: arrays[v] for v in net.inputs}


def check_targets(net: Network, y: Any, batch: int, dtype: Any, xp: Any = None) -> dict[str, Array]:
    """The targets as finite ``(batch, size)`` arrays of ``dtype``, keyed by output vertex.

    ``y`` is a ``(B, n_out)`` array for a single-output graph or a dict ``{vertex: array}``.
    For a ``ce`` output every row must be a probability distribution (non-negative,
    summing to 1 within ``sqrt(machine epsilon)``), e.g. one-hot, so that
    ``y - softmax(mu)`` is exactly ``-dL/dmu``. Raises :class:`DataError` naming the vertex.
    """
    xp = namespace(xp)
    arrays = {
        v: _data_array(value, v, "target", net.attrs[v]["size"], dtype, xp)
        for v, value in _by_vertex(y, net.outputs, "output").items()
    }
    for v, arr in arrays.items():
        if arr.shape[0] != batch:
            raise DataError(f"target for vertex {v!r} has {arr.shape[0]} samples, the inputs have {batch}")
        if net.attrs[v]["loss"] == "ce":
            tol = float(numpy.sqrt(numpy.finfo(numpy.dtype(dtype)).eps))
            if bool(xp.any(arr < 0)) or bool(xp.any(xp.abs(arr.sum(axis=1) - 1) > tol)):
                raise DataError(
                    f"target for the ce output {v!r} must have non-negative rows summing to 1 (one-hot labels)"
                )
    return arrays


def _same_batch(arrays: Mapping[str, Array]) -> None:
    sizes = {v: int(a.shape[0]) for v, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        raise DataError(f"inputs disagree on the batch size: {sizes}")


def _log_softmax(mu: Array, xp: Any) -> Array:
    z = mu - xp.max(mu, axis=1, keepdims=True)
    return z - xp.log(xp.sum(xp.exp(z), axis=1, keepdims=True))


def output_error(loss_name: str, mu: Array, y: Array, xp: Any = None) -> Array:
    """``-dL/dmu`` of an output: ``y - mu`` (mse) or ``y - softmax(mu)`` (ce)."""
    xp = namespace(xp)
    if loss_name == "mse":
        return y - mu
    return y - xp.exp(_log_softmax(mu, xp))


def loss_terms(loss_name: str, mu: Array, y: Array, xp: Any = None) -> Array:
    """The summed loss of one output as a 0-d array: mse ``1/2 sum (mu-y)^2``, ce ``-sum y log_softmax(mu)``."""
    xp = namespace(xp)
    if loss_name == "mse":
        diff = mu - y
        return 0.5 * xp.sum(diff * diff)
    return -xp.sum(y * _log_softmax(mu, xp))


def linearize_all(
    net: Network, params: Params, values: Mapping[str, Array], xp: Any = None
) -> dict[str, Linearization]:
    """Every non-input vertex's prediction from the parents' ``values`` (one state, in parallel)."""
    xp = namespace(xp)
    return {
        k: linearize(net.nodes[k], params, [values[p] for p in net.nodes[k].parents], xp) for k in net.vertices
    }


def forward_pass(
    net: Network, params: Params, inputs: Mapping[str, Array], xp: Any = None
) -> tuple[dict[str, Array], dict[str, Linearization]]:
    """The forward pass: every value ``v_k = mu_k`` (inputs clamped) and every vertex's linearization."""
    xp = namespace(xp)
    values: dict[str, Array] = dict(inputs)
    lins: dict[str, Linearization] = {}
    for k in net.vertices:
        lins[k] = linearize(net.nodes[k], params, [values[p] for p in net.nodes[k].parents], xp)
        values[k] = lins[k].mu
    return values, lins


def _public_states(
    net: Network, values: dict[str, Array], lins: dict[str, Linearization]
) -> dict[str, dict[str, Array]]:
    states: dict[str, dict[str, Array]] = {v: {"v": values[v]} for v in net.inputs}
    for k in net.vertices:
        vx, lin = net.nodes[k], lins[k]
        state = {"mu": lin.mu, "v": values[k]}
        if vx.op in ("dense", "conv2d"):
            state["a"] = lin.a
            if len(vx.parents) == 1:
                state["x"] = lin.signals[0]
            else:
                state.update({f"x_{p}": s for p, s in zip(vx.parents, lin.signals)})
        states[k] = state
    return states


def forward(
    graph: nx.DiGraph, params: Mapping[str, Array], x: Any, xp: Any = None
) -> dict[str, dict[str, Array]]:
    """The forward pass (state 0 of every PC rule, before the target is clamped).

    Parameters
    ----------
    graph
        A neurosim model graph.
    params
        ``{"<vertex>.weight": (out, in), "<vertex>.bias": (out,)}``; their dtype sets the
        dtype of the computation.
    x
        ``(B, n_in)`` for a single-input graph, or ``{input_vertex: (B, size)}``.
    xp
        Array namespace: None (numpy) or ``cupy``; the returned arrays are ``xp`` arrays.

    Returns
    -------
    dict
        Per vertex, a dict of flat ``(B, size)`` arrays. Input vertices: ``{"v": x}``.
        Every other vertex: ``"mu"`` its prediction and ``"v"`` its belief, equal to
        ``mu`` at the forward pass. Dense and conv2d vertices also give ``"a"``, the
        argument of the activation (``x W^T + b``; ``mu = act(a)`` post, ``a`` pre), and
        their presynaptic signal: ``"x"`` (``v_p`` post, ``act(v_p)`` pre) for one
        parent, ``"x_<parent>"`` for each of several.
    """
    xp = namespace(xp)
    net = network(graph)
    checked = check_params(graph, params, xp)
    values, lins = forward_pass(net, checked, check_inputs(net, x, param_dtype(checked), xp), xp)
    return _public_states(net, values, lins)


def prepare(
    graph: nx.DiGraph, params: Mapping[str, Array], x: Any, y: Any, xp: Any = None
) -> tuple[Network, Params, dict[str, Array], dict[str, Linearization], dict[str, Array]]:
    """Check everything and run the forward pass: ``(network, params, values, linearizations, targets)``."""
    xp = namespace(xp)
    net = network(graph)
    checked = check_params(graph, params, xp)
    dtype = param_dtype(checked)
    inputs = check_inputs(net, x, dtype, xp)
    batch = int(next(iter(inputs.values())).shape[0])
    values, lins = forward_pass(net, checked, inputs, xp)
    return net, checked, values, lins, check_targets(net, y, batch, dtype, xp)


def loss(graph: nx.DiGraph, params: Mapping[str, Array], x: Any, y: Any, xp: Any = None) -> float:
    """The loss ``L`` summed over samples and over every output vertex.

    ``y`` is ``(B, n_out)`` for a single-output graph (one-hot rows for ``ce``) or
    ``{output_vertex: array}``.
    """
    xp = namespace(xp)
    net, _, _, lins, targets = prepare(graph, params, x, y, xp)
    return sum(float(loss_terms(net.attrs[o]["loss"], lins[o].mu, targets[o], xp)) for o in net.outputs)


def accumulate(
    into: Params, vx: Vertex, g: Array, signals: tuple[Array, ...], scale: float, xp: Any = None
) -> None:
    """Add ``scale * J_theta^T e`` of vertex ``vx`` (from ``g`` and ``signals``) to ``into``, in place.

    ``into`` maps parameter names to full-shape arrays (created as zeros where absent);
    a reference with a row offset adds to its rows only, and a parameter referenced
    several times (by one vertex or by several) receives the sum.
    """
    xp = namespace(xp)
    for ref, rows in param_vjps(vx, g, signals, xp):
        _add_rows(into, ref, scale * rows, xp)


def _add_rows(into: Params, ref: ParamRef, rows: Array, xp: Any) -> None:
    into[ref.name][ref.row_offset : ref.row_offset + rows.shape[0]] += rows


def zeros_like_params(params: Params, xp: Any = None) -> Params:
    """A zero array for every parameter (the accumulators of :func:`accumulate`)."""
    xp = namespace(xp)
    return {n: xp.zeros_like(p) for n, p in params.items()}


def backward(
    net: Network, params: Params, lins: dict[str, Linearization], targets: dict[str, Array], xp: Any = None
) -> dict[str, Array]:
    """``dL/dtheta`` from the forward pass's linearizations, equations in the module docstring."""
    xp = namespace(xp)
    delta = {o: -output_error(net.attrs[o]["loss"], lins[o].mu, targets[o], xp) for o in net.outputs}
    grads = zeros_like_params(params, xp)
    for k in reversed(net.vertices):
        vx, d = net.nodes[k], delta.pop(k)
        if k in net.parametrized:
            accumulate(grads, vx, preact_grad(vx, lins[k], d, xp), lins[k].signals, 1.0, xp)
        if all(net.attrs[p]["op"] == "input" for p in vx.parents):
            continue
        for p, back in zip(vx.parents, input_vjps(vx, params, lins[k], d, xp)):
            if net.attrs[p]["op"] != "input":
                delta[p] = delta[p] + back if p in delta else back
    return grads


def gradients(graph: nx.DiGraph, params: Mapping[str, Array], x: Any, y: Any, xp: Any = None) -> dict[str, Array]:
    """``dL/dtheta`` for every parameter (sums over samples), by reverse-mode backprop.

    Returns a dict with the keys and shapes of the parameters, in their dtype.
    """
    xp = namespace(xp)
    net, checked, _, lins, targets = prepare(graph, params, x, y, xp)
    return backward(net, checked, lins, targets, xp)


def sgd_step(
    graph: nx.DiGraph, params: Mapping[str, Array], x: Any, y: Any, alpha: float, xp: Any = None
) -> dict[str, Array]:
    """One backprop SGD step ``theta - alpha * dL/dtheta``, as new arrays (``params`` is not mutated)."""
    xp = namespace(xp)
    net, checked, _, lins, targets = prepare(graph, params, x, y, xp)
    grads = backward(net, checked, lins, targets, xp)
    return {name: checked[name] - alpha * grads[name] for name in checked}


def predict(graph: nx.DiGraph, params: Mapping[str, Array], x: Any, xp: Any = None) -> Array:
    """The prediction ``mu`` of the single output vertex at the forward pass, ``(B, n_out)``."""
    xp = namespace(xp)
    net = network(graph)
    if len(net.outputs) != 1:
        raise GraphError(f"predict needs a graph with one output; this one has {list(net.outputs)}: use forward()")
    return forward(graph, params, x, xp)[net.outputs[0]]["mu"]
