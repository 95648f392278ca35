"""One forward rule and its vector-Jacobian products (VJPs) per vertex op, vectorized.

Every value is a flat ``(B, size)`` array (row-major, the layout of data and targets);
ops on images reshape to ``(B, C, H, W)`` internally. For vertex ``k`` with parents
``p`` (in :func:`neurosim.graph.spec.inputs_of` order) and parameters ``theta``,
:func:`linearize` computes the prediction ``mu_k = f_k(x_p; theta)`` and keeps what
the VJPs need; :func:`input_vjps` gives ``J_kp^T e`` for every parent and
:func:`param_vjps` ``J_theta^T e`` for a vector ``e`` on the vertex's neurons. The same
functions serve backprop (``e = dL/dmu``) and predictive coding (``e = eps``, the
feedback ``sum_k J_kj^T eps_k`` of Whittington and Bogacz 2017 and the weight update
``J_theta^T eps``; ``docs/rules.md``).

Parametrized ops (``dense``, ``conv2d``, ``lstm``) are affine in their parameters
through a pre-activation ``a = sum_p W_p * s_p + sum b``, where ``s_p`` is the
*presynaptic signal* of parent ``p``: ``x_p`` (``post``, Rosenbaum 2022) or
``act(x_p)`` (``pre``, Whittington and Bogacz 2017, Song et al. 2020); for ``lstm``
``a`` are the gates and the signals ``x_t`` and ``h_{t-1}``. Their parameter VJP
factorizes as ``g = J_a^T e`` (:func:`preact_grad`, the error-neuron side) times the
signals (:func:`param_vjps`). The ops:

- ``dense``: ``a = sum_p s_p W_p[r]^T + sum b[r]`` with ``r = row_offset : row_offset
  + size``; post ``mu = act(a)``, ``g = act'(a) e``; pre ``mu = a``, ``g = e``;
  ``J_p^T e = g W_p[r]`` (pre: times ``act'(x_p)``); ``dW_p[r] = g^T s_p``,
  ``db[r] = sum_b g``.
- ``conv2d``: PyTorch's cross-correlation, ``a[b,o,y,z] = sum_{c,i,j} W[o,c,i,j]
  s_pad[b,c,y sh+i,z sw+j] + bias[o]`` with zero padding; conventions as dense.
- ``avgpool``: the window mean; ``maxpool``: the window maximum, whose VJP routes
  ``e`` to the first maximal element of the window in row-major order.
- ``flatten``: the identity on flat arrays; ``activation``: ``act(x)``;
  ``sum``: ``act(sum_p x_p)``; ``product``: ``sum_m f_{2m}(x_{2m}) f_{2m+1}(x_{2m+1})``;
  ``concat``: the parents side by side; ``split``: ``x[:, start:stop]``.
- ``lstm``: value ``[h; c]``; ``gates = x W_ih^T + h_prev W_hh^T + b_ih + b_hh``
  split into ``i, f, g, o`` (PyTorch's order), ``c = sigma(f) c_prev + sigma(i)
  tanh(g)``, ``h = sigma(o) tanh(c)``; the previous state is one parent ``[h_prev;
  c_prev]`` or two, ``h_prev`` and ``c_prev``; without one ``h_prev = c_prev = 0``.
- ``chain``: its ops in turn (:mod:`neurosim.graph.chain`); the VJPs go back through
  them, and a chain's parameter VJP is its parametrized op's, after ``e`` is pulled
  back onto that op's output.

A sliced edge (``slice=(start, stop)``) hands the vertex ``x[:, start:stop]``; the VJP
onto that parent is zero outside the slice.

Every function computes in the array namespace ``xp`` (``None``: numpy; ``cupy`` on a
GPU; :mod:`neurosim.arrays`) and calls no ``numpy`` function on its arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from neurosim.activations import apply, derivative
from neurosim.arrays import namespace
from neurosim.graph.spec import (
    PARAMETRIZED_OPS,
    ParamRef,
    bias_refs,
    conv_geometry,
    edge_slice,
    inputs_of,
    parent_shape,
    weight_refs,
)

Array = Any


@dataclass(frozen=True)
class Vertex:
    """What a vertex computes: op, attributes, parents and parameter references.

    ``weights`` holds one reference per parent of a parametrized op (for ``lstm``:
    ``weight_ih`` for ``x_t``, then ``weight_hh`` for the previous state), ``biases``
    the bias references, whose values are summed.
    """

    name: str
    op: str
    attrs: dict
    parents: tuple[str, ...]
    parent_shapes: tuple[tuple[int, ...], ...]
    shape: tuple[int, ...]
    size: int
    weights: tuple[ParamRef, ...] = ()
    biases: tuple[ParamRef, ...] = ()
    geometry: tuple = ()
    slices: tuple[tuple[int, int] | None, ...] = ()
    parent_sizes: tuple[int, ...] = ()
    members: tuple["Vertex", ...] = ()
    weighted: int = -1


def vertex(graph: nx.DiGraph, v: str) -> Vertex:
    """The :class:`Vertex` of ``v`` in a validated graph.

    ``slices`` holds, per parent, the range ``(start, stop)`` the vertex reads through a
    sliced edge (None: the whole parent; ``parent_shapes`` are what it reads,
    ``parent_sizes`` the parents' full sizes); a chain holds its ops as ``members``
    and the position of the one that owns parameters as ``weighted``.
    """
    attrs = dict(graph.nodes[v])
    parents = tuple(inputs_of(graph, v))
    weights: tuple[ParamRef, ...] = ()
    biases: tuple[ParamRef, ...] = ()
    members: tuple[Vertex, ...] = ()
    weighted = -1
    if attrs["op"] in PARAMETRIZED_OPS:
        refs = weight_refs(graph, v)
        weights = tuple(refs[p] for p in parents if p in refs)
        biases = tuple(bias_refs(graph, v))
    if attrs["op"] == "chain":
        from neurosim.graph.chain import member_graphs

        members = tuple(vertex(g, name) for g, name in member_graphs(graph, v))
        for k, m in enumerate(members):
            if m.op in PARAMETRIZED_OPS:
                weighted, weights, biases = k, m.weights, m.biases
    geometry = conv_geometry(graph, v) if attrs["op"] in ("conv2d", "avgpool", "maxpool") else ()
    return Vertex(
        slices=tuple(edge_slice(graph, p, v) for p in parents),
        parent_sizes=tuple(int(graph.nodes[p]["size"]) for p in parents),
        members=members,
        weighted=weighted,
        name=v,
        op=attrs["op"],
        attrs=attrs,
        parents=parents,
        parent_shapes=tuple(parent_shape(graph, p, v) for p in parents),
        shape=tuple(attrs["shape"]),
        size=int(attrs["size"]),
        weights=weights,
        biases=biases,
        geometry=geometry,
    )


@dataclass
class Linearization:
    """Vertex ``k`` at one state: its prediction and what its VJPs need.

    ``inputs`` are the parents' values, ``signals`` the presynaptic signals of a
    parametrized op (see the module docstring), ``a`` the argument of the activation
    (dense, conv2d, sum; the gates for lstm), ``cache`` op-specific intermediates.
    """

    mu: Array
    inputs: tuple[Array, ...]
    signals: tuple[Array, ...] = ()
    a: Array | None = None
    cache: dict = field(default_factory=dict)


def _rows(params: Mapping[str, Array], ref: ParamRef, n: int) -> Array:
    return params[ref.name][ref.row_offset : ref.row_offset + n]


def _bias_sum(vx: Vertex, params: Mapping[str, Array], n: int) -> Array | float:
    total: Array | float = 0.0
    for ref in vx.biases:
        total = total + _rows(params, ref, n)
    return total


def _signal(vx: Vertex, x: Array, xp: Any) -> Array:
    """``s = x`` (post) or ``act(x)`` (pre)."""
    return x if vx.attrs["convention"] == "post" else apply(vx.attrs["activation"], x, xp)


def _post_grad(vx: Vertex, a: Array, e: Array, xp: Any) -> Array:
    """``g = act'(a) e`` (post) or ``e`` (pre)."""
    return derivative(vx.attrs["activation"], a, xp) * e if vx.attrs["convention"] == "post" else e


def _pre_factor(vx: Vertex, x: Array, back: Array, xp: Any) -> Array:
    """A pre-convention input VJP carries ``act'(x)``; a post one is unchanged."""
    return back if vx.attrs["convention"] == "post" else derivative(vx.attrs["activation"], x, xp) * back


# --- image geometry -------------------------------------------------------------------


def _windows(vx: Vertex) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
    """``(kernel, stride, padding, output (H', W'))`` of a conv2d or pooling vertex."""
    kernel, stride, padding = vx.geometry
    return kernel, stride, padding, (vx.shape[1], vx.shape[2])


def _offset_slice(i: int, j: int, stride: tuple[int, int], out_hw: tuple[int, int]) -> tuple[slice, ...]:
    """The strided slice of a (padded) image that kernel offset ``(i, j)`` reads for every output."""
    (sh, sw), (oh, ow) = stride, out_hw
    return (slice(None), slice(None), slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw))


def _pad(x: Array, padding: tuple[int, int], xp: Any) -> Array:
    ph, pw = padding
    if not (ph or pw):
        return x
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _image(x: Array, shape: tuple[int, ...]) -> Array:
    return x.reshape((x.shape[0], *shape))


# --- forward ----------------------------------------------------------------------------


def linearize(
    vx: Vertex, params: Mapping[str, Array], inputs: list[Array] | tuple[Array, ...], xp: Any = None
) -> Linearization:
    """The prediction ``mu`` of ``vx`` from its parents' values ``inputs`` (flat arrays).

    Where an edge is sliced, the vertex reads (and ``Linearization.inputs`` holds) the
    slice ``x[:, start:stop]`` of that parent. A chain applies its ops in turn and keeps
    their linearizations (``cache["members"]``); its ``signals`` and ``a`` are those of
    its parametrized op.
    """
    xp = namespace(xp)
    cuts = vx.slices or (None,) * len(inputs)
    inputs = tuple(x if cut is None else x[:, cut[0] : cut[1]] for x, cut in zip(inputs, cuts))
    op = vx.op
    if op == "chain":
        lins, xs = [], inputs
        for m in vx.members:
            lins.append(linearize(m, params, xs, xp))
            xs = (lins[-1].mu,)
        inner = lins[vx.weighted] if vx.weighted >= 0 else Linearization(mu=None, inputs=())
        return Linearization(mu=xs[0], inputs=inputs, signals=inner.signals, a=inner.a, cache={"members": lins})
    if op == "dense":
        signals = tuple(_signal(vx, x, xp) for x in inputs)
        a = _bias_sum(vx, params, vx.size)
        for s, ref in zip(signals, vx.weights):
            a = a + s @ _rows(params, ref, vx.size).T
        mu = apply(vx.attrs["activation"], a, xp) if vx.attrs["convention"] == "post" else a
        return Linearization(mu=mu, inputs=inputs, signals=signals, a=a)
    if op == "conv2d":
        (x,) = inputs
        s = _signal(vx, x, xp)
        (kh, kw), stride, padding, out_hw = _windows(vx)
        out_c = vx.shape[0]
        w = _rows(params, vx.weights[0], out_c)
        spad = _pad(_image(s, vx.parent_shapes[0]), padding, xp)
        a = 0.0
        for i in range(kh):
            for j in range(kw):
                a = a + xp.einsum("bcpq,oc->bopq", spad[_offset_slice(i, j, stride, out_hw)], w[:, :, i, j])
        bias = _bias_sum(vx, params, out_c)
        if vx.biases:
            a = a + bias[None, :, None, None]
        a = a.reshape(x.shape[0], vx.size)
        mu = apply(vx.attrs["activation"], a, xp) if vx.attrs["convention"] == "post" else a
        return Linearization(mu=mu, inputs=inputs, signals=(s,), a=a)
    if op in ("avgpool", "maxpool"):
        (x,) = inputs
        (kh, kw), stride, _, out_hw = _windows(vx)
        img = _image(x, vx.parent_shapes[0])
        if op == "avgpool":
            total = 0.0
            for i in range(kh):
                for j in range(kw):
                    total = total + img[_offset_slice(i, j, stride, out_hw)]
            return Linearization(mu=(total / (kh * kw)).reshape(x.shape[0], vx.size), inputs=inputs)
        best = img[_offset_slice(0, 0, stride, out_hw)]
        where = xp.zeros(best.shape, dtype=xp.int64)
        for k in range(1, kh * kw):
            window = img[_offset_slice(k // kw, k % kw, stride, out_hw)]
            better = window > best  # strict: ties stay with the earlier (row-major) element
            best = xp.where(better, window, best)
            where = xp.where(better, k, where)
        return Linearization(mu=best.reshape(x.shape[0], vx.size), inputs=inputs, cache={"argmax": where})
    if op == "flatten":
        return Linearization(mu=inputs[0], inputs=inputs)
    if op == "activation":
        return Linearization(mu=apply(vx.attrs["activation"], inputs[0], xp), inputs=inputs)
    if op == "sum":
        a = inputs[0]
        for x in inputs[1:]:
            a = a + x
        return Linearization(mu=apply(vx.attrs.get("activation", "linear"), a, xp), inputs=inputs, a=a)
    if op == "product":
        acts = _factor_activations(vx)
        factors = tuple(apply(f, x, xp) for f, x in zip(acts, inputs))
        mu = 0.0
        for m in range(0, len(factors), 2):
            mu = mu + factors[m] * factors[m + 1]
        return Linearization(mu=mu, inputs=inputs, cache={"factors": factors})
    if op == "concat":
        return Linearization(mu=xp.concatenate(inputs, axis=1), inputs=inputs)
    if op == "split":
        return Linearization(mu=inputs[0][:, vx.attrs["start"] : vx.attrs["stop"]], inputs=inputs)
    if op == "lstm":
        return _lstm_forward(vx, params, inputs, xp)
    raise AssertionError(op)  # pragma: no cover - validation admits only the ops above


def _factor_activations(vx: Vertex) -> tuple[str, ...]:
    return tuple(vx.attrs.get("activations") or ("linear",) * len(vx.parents))


def _lstm_forward(vx: Vertex, params: Mapping[str, Array], inputs: tuple[Array, ...], xp: Any) -> Linearization:
    hidden = vx.attrs["hidden"]
    x = inputs[0]
    if len(inputs) > 2:  # [x, h_prev, c_prev]
        h_prev, c_prev = inputs[1], inputs[2]
        signals = (x, h_prev)
    elif len(inputs) > 1:  # [x, [h_prev; c_prev]]
        h_prev, c_prev = inputs[1][:, :hidden], inputs[1][:, hidden:]
        signals = (x, h_prev)
    else:
        c_prev = xp.zeros((x.shape[0], hidden), dtype=x.dtype)
        signals = (x,)
    gates = _bias_sum(vx, params, 4 * hidden)
    for s, ref in zip(signals, vx.weights):
        gates = gates + s @ _rows(params, ref, 4 * hidden).T
    i = apply("sigmoid", gates[:, :hidden], xp)
    f = apply("sigmoid", gates[:, hidden : 2 * hidden], xp)
    g = apply("tanh", gates[:, 2 * hidden : 3 * hidden], xp)
    o = apply("sigmoid", gates[:, 3 * hidden :], xp)
    c = f * c_prev + i * g
    tanh_c = apply("tanh", c, xp)
    h = o * tanh_c
    cache = {"i": i, "f": f, "g": g, "o": o, "c_prev": c_prev, "tanh_c": tanh_c}
    return Linearization(mu=xp.concatenate([h, c], axis=1), inputs=inputs, signals=signals, a=gates, cache=cache)


# --- VJPs -------------------------------------------------------------------------------


def _lstm_backward(vx: Vertex, lin: Linearization, e: Array, xp: Any) -> tuple[Array, Array]:
    """``(J_gates^T e, J_{c_prev}^T e)`` for ``e = [e_h; e_c]`` on the value ``[h; c]``."""
    hidden = vx.attrs["hidden"]
    cache = lin.cache
    i, f, g, o, tanh_c = cache["i"], cache["f"], cache["g"], cache["o"], cache["tanh_c"]
    e_h, e_c = e[:, :hidden], e[:, hidden:]
    d_c = e_c + e_h * o * (1.0 - tanh_c * tanh_c)
    d_gates = xp.concatenate(
        [
            d_c * g * i * (1.0 - i),
            d_c * cache["c_prev"] * f * (1.0 - f),
            d_c * i * (1.0 - g * g),
            e_h * tanh_c * o * (1.0 - o),
        ],
        axis=1,
    )
    return d_gates, d_c * f


def _chain_back(vx: Vertex, params: Mapping[str, Array], lin: Linearization, e: Array, down_to: int,
                xp: Any) -> Array:
    """``e`` pulled back through the ops of a chain after op ``down_to``, onto that op's output
    (the ops after the parametrized one have no parameters: ``params`` may be empty there)."""
    lins = lin.cache["members"]
    for k in range(len(vx.members) - 1, down_to, -1):
        (e,) = input_vjps(vx.members[k], params, lins[k], e, xp)
    return e


def preact_grad(vx: Vertex, lin: Linearization, e: Array, xp: Any = None) -> Array:
    """``g = J_a^T e`` of a parametrized vertex: the error-neuron factor of its updates.

    For a chain, ``e`` is first pulled back through the ops after its parametrized op."""
    xp = namespace(xp)
    if vx.op == "chain":
        inner = vx.members[vx.weighted]
        return preact_grad(inner, lin.cache["members"][vx.weighted], _chain_back(vx, {}, lin, e, vx.weighted, xp), xp)
    if vx.op == "lstm":
        return _lstm_backward(vx, lin, e, xp)[0]
    return _post_grad(vx, lin.a, e, xp)


def param_vjps(vx: Vertex, g: Array, signals: tuple[Array, ...], xp: Any = None) -> list[tuple[ParamRef, Array]]:
    """``J_theta^T e`` as ``(reference, rows)`` pairs, from ``g`` and the presynaptic ``signals``.

    Each pair gives the rows ``ref.row_offset ...`` of parameter ``ref.name``; a
    parameter referenced several times gets the sum of its pairs.
    """
    xp = namespace(xp)
    if vx.op == "chain":
        return param_vjps(vx.members[vx.weighted], g, signals, xp)
    if vx.op == "conv2d":
        (kh, kw), stride, padding, out_hw = _windows(vx)
        out_c = vx.shape[0]
        in_c = vx.parent_shapes[0][0]
        g_img = _image(g, vx.shape)
        spad = _pad(_image(signals[0], vx.parent_shapes[0]), padding, xp)
        dw = xp.zeros((out_c, in_c, kh, kw), dtype=g.dtype)
        for i in range(kh):
            for j in range(kw):
                dw[:, :, i, j] = xp.einsum("bopq,bcpq->oc", g_img, spad[_offset_slice(i, j, stride, out_hw)])
        db = g_img.sum(axis=(0, 2, 3))
        return [(vx.weights[0], dw)] + [(ref, db) for ref in vx.biases]
    out = [(ref, g.T @ s) for ref, s in zip(vx.weights, signals)]
    db = g.sum(axis=0)
    return out + [(ref, db) for ref in vx.biases]


def input_vjps(
    vx: Vertex, params: Mapping[str, Array], lin: Linearization, e: Array, xp: Any = None
) -> list[Array]:
    """``J_kp^T e`` for every parent ``p`` of ``vx``, flat ``(B, size_p)``, in input order.

    Through a sliced edge the VJP is zero outside the slice (the parent's full size)."""
    xp = namespace(xp)
    if vx.op == "chain":
        lins = lin.cache["members"]
        back = _input_vjps(vx.members[0], params, lins[0], _chain_back(vx, params, lin, e, 0, xp), xp)
    else:
        back = _input_vjps(vx, params, lin, e, xp)
    for k, cut in enumerate(vx.slices):
        if cut is not None:
            full = xp.zeros((e.shape[0], vx.parent_sizes[k]), dtype=e.dtype)
            full[:, cut[0] : cut[1]] = back[k]
            back[k] = full
    return back


def _input_vjps(vx: Vertex, params: Mapping[str, Array], lin: Linearization, e: Array, xp: Any) -> list[Array]:
    op = vx.op
    batch = e.shape[0]
    if op == "dense":
        g = _post_grad(vx, lin.a, e, xp)
        return [
            _pre_factor(vx, x, g @ _rows(params, ref, vx.size), xp) for x, ref in zip(lin.inputs, vx.weights)
        ]
    if op == "conv2d":
        (kh, kw), stride, padding, out_hw = _windows(vx)
        out_c = vx.shape[0]
        w = _rows(params, vx.weights[0], out_c)
        g_img = _image(_post_grad(vx, lin.a, e, xp), vx.shape)
        c, h, wd = vx.parent_shapes[0]
        ph, pw = padding
        back = xp.zeros((batch, c, h + 2 * ph, wd + 2 * pw), dtype=e.dtype)
        for i in range(kh):
            for j in range(kw):
                back[_offset_slice(i, j, stride, out_hw)] += xp.einsum("bopq,oc->bcpq", g_img, w[:, :, i, j])
        back = back[:, :, ph : ph + h, pw : pw + wd].reshape(batch, c * h * wd)
        return [_pre_factor(vx, lin.inputs[0], back, xp)]
    if op in ("avgpool", "maxpool"):
        (kh, kw), stride, _, out_hw = _windows(vx)
        e_img = _image(e, vx.shape)
        back = xp.zeros((batch, *vx.parent_shapes[0]), dtype=e.dtype)
        for k in range(kh * kw):
            window = _offset_slice(k // kw, k % kw, stride, out_hw)
            if op == "avgpool":
                back[window] += e_img / (kh * kw)
            else:
                back[window] += xp.where(lin.cache["argmax"] == k, e_img, 0.0)
        return [back.reshape(batch, -1)]
    if op == "flatten":
        return [e]
    if op == "activation":
        return [derivative(vx.attrs["activation"], lin.inputs[0], xp) * e]
    if op == "sum":
        g = derivative(vx.attrs.get("activation", "linear"), lin.a, xp) * e
        return [g for _ in vx.parents]
    if op == "product":
        acts = _factor_activations(vx)
        factors = lin.cache["factors"]
        partner = [factors[m + 1 if m % 2 == 0 else m - 1] for m in range(len(factors))]
        return [derivative(f, x, xp) * p * e for f, x, p in zip(acts, lin.inputs, partner)]
    if op == "concat":
        out, start = [], 0
        for shape in vx.parent_shapes:
            n = math.prod(shape)
            out.append(e[:, start : start + n])
            start += n
        return out
    if op == "split":
        back = xp.zeros((batch, math.prod(vx.parent_shapes[0])), dtype=e.dtype)
        back[:, vx.attrs["start"] : vx.attrs["stop"]] = e
        return [back]
    if op == "lstm":
        hidden = vx.attrs["hidden"]
        d_gates, d_c_prev = _lstm_backward(vx, lin, e, xp)
        out = [d_gates @ _rows(params, vx.weights[0], 4 * hidden)]
        if len(vx.parents) > 1:
            d_h_prev = d_gates @ _rows(params, vx.weights[1], 4 * hidden)
            out += [d_h_prev, d_c_prev] if len(vx.parents) > 2 else [xp.concatenate([d_h_prev, d_c_prev], axis=1)]
        return out
    raise AssertionError(op)  # pragma: no cover - validation admits only the ops above
