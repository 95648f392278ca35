"""How each vertex op becomes error neurons, compartments and synapses.

For a vertex of ``n`` neurons, :func:`wire_vertex` returns a :class:`Wiring`: each
error neuron's kind (how its compartments combine, see
:mod:`neurosim.compile.netlist`), each compartment's activation, plasticity and
biases, and every synapse as (compartment, presynaptic value neuron, index in
``theta``). Learnable weights are read through the parameter references of
:mod:`neurosim.graph.spec`; the ops without parameters read constants (1, or ``1/k``
for average pooling) stored after the learnable entries.

Per op, with ``x`` the parents' value neurons (``act(v)`` for a ``pre`` child):

- dense, conv2d: one compartment per neuron, ``a = sum_s W[param(s)] x_s + sum biases``,
  activation ``act`` (post) or identity (pre); conv2d synapses follow PyTorch's
  cross-correlation, zero padding leaves the out-of-range synapses out.
- avgpool: one compartment, weights ``1/(kh kw)``; maxpool: one compartment per window
  element (weight 1), combined by ``max`` (the first maximal element, row-major, wins).
- flatten, activation, concat, split, sum: one compartment of weight-1 synapses from the
  matching parent neurons (sum: one from each parent).
- product: one weight-1 compartment per parent, combined as pair products.
- lstm: neuron ``k < H`` (``h_k``) has compartments ``f, c_prev, i, g, o``, neuron ``H + k``
  (``c_k``) has ``f, c_prev, i, g`` (without a previous state: ``i, g (, o)``); each gate
  compartment sums ``W_ih[gate H + k] x + W_hh[gate H + k] h_prev + b_ih + b_hh``
  (``h_prev``, ``c_prev`` from one parent ``[h; c]`` or from two parents ``h``, ``c``).
- chain: see :func:`_chain`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx
import numpy as np

from neurosim.activations import activation_code
from neurosim.compile.netlist import KIND_LSTM_H, KIND_MAX, KIND_MEAN, KIND_PRODUCT, KIND_SINGLE
from neurosim.graph.spec import bias_refs, conv_geometry, edge_slice, inputs_of, parent_size, weight_refs

LINEAR = activation_code("linear")
SIGMOID = activation_code("sigmoid")
TANH = activation_code("tanh")


@dataclass
class Wiring:
    """The neurons of one vertex: per neuron, per compartment (local indices), per synapse."""

    kind: np.ndarray  # (n,) KIND_* of each error neuron
    comps: np.ndarray  # (n,) compartments of each error neuron
    comp_act: np.ndarray  # (n_comp,) activation codes
    comp_plastic: np.ndarray  # (n_comp,) 1 where the compartment learns
    comp_biases: list[list[int]]  # per compartment, indices in theta
    syn_comp: np.ndarray  # (m,) local compartment of each synapse
    syn_pre: np.ndarray  # (m,) global presynaptic value neuron
    syn_param: np.ndarray  # (m,) index in theta


class _Builder:
    """Collects compartments and synapses of one vertex, neuron by neuron in order."""

    def __init__(self) -> None:
        self.kind: list[int] = []
        self.comps: list[int] = []
        self.act: list[int] = []
        self.plastic: list[int] = []
        self.biases: list[list[int]] = []
        self.syn: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add_compartments(self, act: list[int], plastic: list[int], biases: list[list[int]]) -> int:
        first = len(self.act)
        self.act += act
        self.plastic += plastic
        self.biases += biases
        return first

    def connect(self, comp: np.ndarray, pre: np.ndarray, param: np.ndarray) -> None:
        self.syn.append((np.asarray(comp, np.int64), np.asarray(pre, np.int64), np.asarray(param, np.int64)))

    def build(self) -> Wiring:
        comp, pre, param = (np.concatenate(parts) for parts in zip(*self.syn))
        order = np.argsort(comp, kind="stable")  # synapses grouped by compartment, creation order inside
        return Wiring(
            kind=np.array(self.kind, np.int8), comps=np.array(self.comps, np.int64),
            comp_act=np.array(self.act, np.int8), comp_plastic=np.array(self.plastic, np.uint8),
            comp_biases=self.biases, syn_comp=comp[order], syn_pre=pre[order], syn_param=param[order],
        )


def wire_vertex(
    graph: nx.DiGraph,
    v: object,
    lo_v: Callable[[object], int],
    param_offset: Callable[[str], int],
    constant: Callable[[float], int],
) -> Wiring:
    """The neurons, compartments and synapses of vertex ``v`` (not an input).

    ``lo_v(u)`` is the first value neuron of vertex ``u``, ``param_offset(name)`` the
    offset of a learnable parameter in ``theta``, ``constant(value)`` the index of a
    constant weight.
    """
    attrs = graph.nodes[v]
    op = attrs["op"]
    n = attrs["size"]
    parents = inputs_of(graph, v)
    b = _Builder()
    if op in ("dense", "conv2d"):
        act = activation_code(attrs["activation"], str(v)) if attrs["convention"] == "post" else LINEAR
        biases = bias_refs(graph, v)
        if op == "dense":
            rows = np.arange(n)
            bias_idx = [[param_offset(r.name) + r.row_offset + k for r in biases] for k in range(n)]
        else:
            out_c, oh, ow = attrs["shape"]
            rows = np.arange(n) // (oh * ow)  # output channel of each neuron
            bias_idx = [[param_offset(r.name) + int(c) for r in biases] for c in rows]
        b.add_compartments([act] * n, [1] * n, bias_idx)
        b.kind, b.comps = [KIND_SINGLE] * n, [1] * n
        for p, ref in weight_refs(graph, v).items():
            if op == "dense":
                start = (edge_slice(graph, p, v) or (0, 0))[0]  # a slice edge reads x[start:stop]
                _dense_synapses(b, n, parent_size(graph, p, v), lo_v(p) + start, param_offset(ref.name),
                                ref.row_offset)
            else:
                _conv_synapses(b, graph, v, p, lo_v(p), param_offset(ref.name))
        return b.build()
    if op == "lstm":
        return _lstm(graph, v, parents, lo_v, param_offset, constant)
    if op == "chain":
        return _chain(graph, v, parents, lo_v, param_offset, constant)
    if op == "maxpool":
        windows = _pool_windows(graph, v, parents[0])  # (n, k) parent positions
        k = windows.shape[1]
        b.add_compartments([LINEAR] * (n * k), [0] * (n * k), [[] for _ in range(n * k)])
        b.kind, b.comps = [KIND_MAX] * n, [k] * n
        b.connect(np.arange(n * k), lo_v(parents[0]) + windows.ravel(), np.full(n * k, constant(1.0)))
        return b.build()
    if op == "product":
        acts = attrs.get("activations") or ["linear"] * len(parents)
        k = len(parents)
        codes = [activation_code(a, str(v)) for a in acts]
        b.add_compartments(codes * n, [0] * (n * k), [[] for _ in range(n * k)])
        b.kind, b.comps = [KIND_PRODUCT] * n, [k] * n
        for j, p in enumerate(parents):
            b.connect(np.arange(n) * k + j, lo_v(p) + np.arange(n), np.full(n, constant(1.0)))
        return b.build()
    # one compartment of fixed weights per neuron
    act = activation_code(attrs.get("activation", "linear"), str(v)) if op in ("activation", "sum") else LINEAR
    b.add_compartments([act] * n, [0] * n, [[] for _ in range(n)])
    b.kind, b.comps = [KIND_SINGLE] * n, [1] * n
    one = constant(1.0)
    if op == "avgpool":
        windows = _pool_windows(graph, v, parents[0])
        k = windows.shape[1]
        b.connect(np.repeat(np.arange(n), k), lo_v(parents[0]) + windows.ravel(), np.full(n * k, constant(1.0 / k)))
    elif op in ("flatten", "activation"):
        b.connect(np.arange(n), lo_v(parents[0]) + np.arange(n), np.full(n, one))
    elif op == "sum":
        for p in parents:
            b.connect(np.arange(n), lo_v(p) + np.arange(n), np.full(n, one))
    elif op == "concat":
        start = 0
        for p in parents:
            size = graph.nodes[p]["size"]
            b.connect(start + np.arange(size), lo_v(p) + np.arange(size), np.full(size, one))
            start += size
    elif op == "split":
        b.connect(np.arange(n), lo_v(parents[0]) + attrs["start"] + np.arange(n), np.full(n, one))
    else:  # pragma: no cover - validate_graph admits no other op
        raise AssertionError(op)
    return b.build()


def _chain(
    graph: nx.DiGraph, v: object, parents: list, lo_v: Callable[[object], int],
    param_offset: Callable[[str], int], constant: Callable[[float], int],
) -> Wiring:
    """A chain (:mod:`neurosim.graph.chain`): output ``i`` has one compartment per position
    ``z`` of its window, a copy of the weighted op's compartment ``z`` (its synapses and
    biases; a weight-1 synapse from the parent where there is no weighted op), through
    the chain's activation, combined by the window's pooling (single, max or mean)."""
    from neurosim.graph.chain import chain_plan

    plan = chain_plan(graph, v)
    if plan.weighted >= 0:
        g, name = plan.graphs[plan.weighted]
        if plan.source is None:  # the weighted op reads the chain's parents
            z = wire_vertex(g, name, lo_v, param_offset, constant)
            z_pre = z.syn_pre
        else:  # through reindex ops: positions of its one input map to the parent's
            z = wire_vertex(g, name, lambda u: 0, param_offset, constant)
            z_pre = lo_v(parents[0]) + plan.source[z.syn_pre]
        z_ptr = np.concatenate([[0], np.cumsum(np.bincount(z.syn_comp, minlength=len(z.comp_act)))])
        z_plastic, z_biases, z_param = z.comp_plastic, z.comp_biases, z.syn_param
    else:  # a = the parent's value itself
        n_z = len(plan.source)
        z_ptr = np.arange(n_z + 1)
        z_pre = lo_v(parents[0]) + plan.source
        z_param = np.full(n_z, constant(1.0), np.int64)
        z_plastic, z_biases = np.zeros(n_z, np.uint8), [[] for _ in range(n_z)]
    windows = plan.windows
    n, k = windows.shape
    flat = windows.ravel()  # compartment q of output q // k copies a-position flat[q]
    counts = z_ptr[flat + 1] - z_ptr[flat]
    first = np.repeat(z_ptr[flat] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    syn = first + np.arange(int(counts.sum()))  # the copied synapses, compartment by compartment
    b = _Builder()
    b.add_compartments([activation_code(plan.activation, str(v))] * (n * k), list(z_plastic[flat]),
                       [list(z_biases[q]) for q in flat])
    b.kind = [{None: KIND_SINGLE, "max": KIND_MAX, "avg": KIND_MEAN}[plan.pool]] * n
    b.comps = [k] * n
    b.connect(np.repeat(np.arange(n * k), counts), z_pre[syn], z_param[syn])
    return b.build()


def _dense_synapses(b: _Builder, n: int, n_in: int, pre0: int, w_off: int, row_offset: int) -> None:
    """Row-major ``W[row_offset + r, q]``: compartment ``r`` reads parent neuron ``q``."""
    rows = np.repeat(np.arange(n), n_in)
    cols = np.tile(np.arange(n_in), n)
    b.connect(rows, pre0 + cols, w_off + (row_offset + rows) * n_in + cols)


def _conv_synapses(b: _Builder, graph: nx.DiGraph, v: object, parent: object, pre0: int, w_off: int) -> None:
    """PyTorch's cross-correlation: output ``(o, y, x)`` reads input ``(c, y s - p + ky, x s - p + kx)``
    through ``W[o, c, ky, kx]``; positions in the zero padding have no synapse."""
    (kh, kw), (sh, sw), (ph, pw) = conv_geometry(graph, v)
    in_c, h, w = graph.nodes[parent]["shape"]
    out_c, oh, ow = graph.nodes[v]["shape"]
    o, y, x, c, ky, kx = np.meshgrid(
        np.arange(out_c), np.arange(oh), np.arange(ow), np.arange(in_c), np.arange(kh), np.arange(kw), indexing="ij"
    )
    iy, ix = y * sh - ph + ky, x * sw - pw + kx
    valid = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    post = (o * oh + y) * ow + x
    pre = (c * h + iy) * w + ix
    param = ((o * in_c + c) * kh + ky) * kw + kx
    b.connect(post[valid], pre0 + pre[valid], w_off + param[valid])


def _pool_windows(graph: nx.DiGraph, v: object, parent: object) -> np.ndarray:
    """``(n, kh kw)``: the parent positions of each output's window, row-major."""
    (kh, kw), (sh, sw), _ = conv_geometry(graph, v)
    c_in, h, w = graph.nodes[parent]["shape"]
    _, oh, ow = graph.nodes[v]["shape"]
    c, y, x, ky, kx = np.meshgrid(
        np.arange(c_in), np.arange(oh), np.arange(ow), np.arange(kh), np.arange(kw), indexing="ij"
    )
    pos = (c * h + y * sh + ky) * w + x * sw + kx
    return pos.reshape(c_in * oh * ow, kh * kw)


def _lstm(
    graph: nx.DiGraph, v: object, parents: list, lo_v: Callable[[object], int],
    param_offset: Callable[[str], int], constant: Callable[[float], int],
) -> Wiring:
    hidden = graph.nodes[v]["hidden"]
    refs = weight_refs(graph, v)
    biases = bias_refs(graph, v)
    x, prev = parents[0], (parents[1] if len(parents) > 1 else None)
    n_in = graph.nodes[x]["size"]
    if prev is not None:  # the previous state as one parent [h; c], or as two, h then c
        c_first = lo_v(parents[2]) if len(parents) > 2 else lo_v(prev) + hidden
    gate = {"i": (0, SIGMOID), "f": (1, SIGMOID), "g": (2, TANH), "o": (3, SIGMOID)}
    cell_comps = ["f", "c_prev", "i", "g"] if prev is not None else ["i", "g"]
    b = _Builder()

    def compartments(names: list[str], k: int) -> None:
        acts, plastic, bias_idx = [], [], []
        for name in names:
            if name == "c_prev":
                acts.append(LINEAR), plastic.append(0), bias_idx.append([])
            else:
                row = gate[name][0] * hidden + k
                acts.append(gate[name][1]), plastic.append(1)
                bias_idx.append([param_offset(r.name) + row for r in biases])
        first = b.add_compartments(acts, plastic, bias_idx)
        for j, name in enumerate(names):
            comp = first + j
            if name == "c_prev":
                b.connect([comp], [c_first + k], [constant(1.0)])
                continue
            row = gate[name][0] * hidden + k
            b.connect(np.full(n_in, comp), lo_v(x) + np.arange(n_in),
                      param_offset(refs[x].name) + row * n_in + np.arange(n_in))
            if prev is not None:
                b.connect(np.full(hidden, comp), lo_v(prev) + np.arange(hidden),
                          param_offset(refs[prev].name) + row * hidden + np.arange(hidden))

    for k in range(hidden):  # h_k = sigma(o) tanh(c_k)
        compartments(cell_comps + ["o"], k)
        b.kind.append(KIND_LSTM_H), b.comps.append(len(cell_comps) + 1)
    for k in range(hidden):  # c_k = sigma(f) c_prev + sigma(i) tanh(g)
        compartments(cell_comps, k)
        b.kind.append(KIND_PRODUCT), b.comps.append(len(cell_comps))
    return b.build()
