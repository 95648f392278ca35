"""Compile a validated model graph into a :class:`~neurosim.compile.netlist.Netlist`.

Ordering is stable: vertices in lexicographic topological order (ties broken by
name), neurons by position inside a vertex, compartments in the order of
:mod:`neurosim.compile.wiring`, synapses of a compartment in creation order (a dense
vertex: the row-major order of its weight matrix ``(out, in)``). The same graph
therefore always compiles to the same arrays, and a synapse's parameter index is its
weight's position in the flattened PyTorch layout.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import numpy as np

from neurosim.activations import activation_code
from neurosim.compile.runs import backward_runs, forward_runs
from neurosim.compile.wiring import wire_vertex
from neurosim.compile.netlist import (
    LOSS_CE,
    LOSS_MSE,
    LOSS_NONE,
    ROLE_FREE,
    ROLE_INPUT,
    ROLE_OUTPUT,
    Netlist,
)
from neurosim.errors import ConfigError, GraphError
from neurosim.graph.chain import pre_activation
from neurosim.graph.spec import param_shapes
from neurosim.graph.validate import validate_graph

Delays = int | Mapping[str, int] | np.ndarray
MAX_DELAY = 1000  # ticks; the message lines hold max_delay + 1 slots per neuron


def vertex_order(graph: nx.DiGraph) -> list[str]:
    """The stable vertex order used by the compiler (lexicographic topological order)."""
    return list(nx.lexicographical_topological_sort(graph, key=str))


def _trigger_or_none(graph: nx.DiGraph) -> dict[str, int] | None:
    from neurosim.graph.spec import trigger_steps

    try:
        return trigger_steps(graph)
    except GraphError:
        return None


def compile_graph(graph: nx.DiGraph, delays: Delays = 1, own_delay: int = 1) -> Netlist:
    """Compile ``graph`` to a neuron-level netlist.

    Parameters
    ----------
    graph
        A model graph (validated here).
    delays
        Synaptic delays in ticks (>= 1): one int for every synapse, a dict mapping a
        vertex to the delay of the synapses arriving at it (others get 1), or an int
        array with one entry per synapse in netlist order.
    own_delay
        Delay of the private link between a value neuron and its error neuron.
    """
    if isinstance(own_delay, bool) or not isinstance(own_delay, (int, np.integer)) or not 1 <= own_delay <= MAX_DELAY:
        raise ConfigError(f"own_delay must be an int from 1 to {MAX_DELAY} ticks, got {own_delay!r}")
    validate_graph(graph)
    if isinstance(delays, Mapping) and set(delays) - set(graph):
        unknown = sorted(map(repr, set(delays) - set(graph)))
        raise ConfigError(f"delays name vertices {unknown} that are not in the graph")
    order = vertex_order(graph)
    index = {v: k for k, v in enumerate(order)}
    triggers = _trigger_or_none(graph)

    lo_v = np.zeros(len(order), dtype=np.int64)
    lo_e = np.full(len(order), -1, dtype=np.int64)
    n_v = n_e = 0
    for k, v in enumerate(order):
        lo_v[k] = n_v
        n_v += graph.nodes[v]["size"]
        if graph.nodes[v]["op"] != "input":
            lo_e[k] = n_e
            n_e += graph.nodes[v]["size"]

    v_vertex = np.zeros(n_v, np.int32)
    v_pos = np.zeros(n_v, np.int32)
    v_role = np.zeros(n_v, np.int8)
    v_out_act = np.zeros(n_v, np.int8)
    v_err = np.full(n_v, -1, np.int32)
    e_vertex = np.zeros(n_e, np.int32)
    e_pos = np.zeros(n_e, np.int32)
    e_value = np.zeros(n_e, np.int32)
    e_kind = np.zeros(n_e, np.int8)
    e_comps = np.zeros(n_e, np.int64)
    e_loss = np.zeros(n_e, np.int8)
    e_group_lo = np.zeros(n_e, np.int32)
    e_group_hi = np.zeros(n_e, np.int32)
    e_trigger = np.full(n_e, -1, np.int32)

    shapes = param_shapes(graph)
    param_index: dict[str, tuple[int, tuple[int, ...]]] = {}
    offset = 0
    # Weights first, in synapse order, so that an MLP's synapse s reads theta[s]; biases after.
    for name in sorted(shapes, key=lambda n: len(shapes[n]) == 1):
        param_index[name] = (offset, shapes[name])
        offset += int(np.prod(shapes[name]))
    n_params = offset
    constants: dict[float, int] = {}

    def constant(value: float) -> int:
        return n_params + constants.setdefault(value, len(constants))

    c_vertex, c_act, c_plastic, c_biases = [], [], [], []
    pre_list, post_list, param_list, delay_list = [], [], [], []
    n_c = 0
    for k, v in enumerate(order):
        attrs = graph.nodes[v]
        size = attrs["size"]
        vs = slice(lo_v[k], lo_v[k] + size)
        v_vertex[vs] = k
        v_pos[vs] = np.arange(size)
        pre_acts = [(c, pre_activation(graph, c)) for c in graph.successors(v)]
        pre_acts = [(c, a) for c, a in pre_acts if a is not None]
        if pre_acts:
            v_out_act[vs] = activation_code(pre_acts[0][1], str(pre_acts[0][0]))
        if attrs["op"] == "input":
            v_role[vs] = ROLE_INPUT
            continue
        v_role[vs] = ROLE_OUTPUT if attrs.get("loss") is not None else ROLE_FREE
        es = slice(lo_e[k], lo_e[k] + size)
        v_err[vs] = np.arange(lo_e[k], lo_e[k] + size)
        e_vertex[es] = k
        e_pos[es] = np.arange(size)
        e_value[es] = np.arange(lo_v[k], lo_v[k] + size)
        loss = attrs.get("loss")
        e_loss[es] = {None: LOSS_NONE, "mse": LOSS_MSE, "ce": LOSS_CE}[loss]
        if loss == "ce":
            e_group_lo[es] = lo_e[k]
            e_group_hi[es] = lo_e[k] + size
        else:
            e_group_lo[es] = np.arange(lo_e[k], lo_e[k] + size)
            e_group_hi[es] = e_group_lo[es] + 1
        if triggers is not None and v in triggers:
            e_trigger[es] = triggers[v]
        w = wire_vertex(graph, v, lambda u: int(lo_v[index[u]]), lambda n: param_index[n][0], constant)
        e_kind[es] = w.kind
        e_comps[es] = w.comps
        c_vertex.append(np.full(len(w.comp_act), k, np.int32))
        c_act.append(w.comp_act)
        c_plastic.append(w.comp_plastic)
        c_biases += w.comp_biases
        pre_list.append(w.syn_pre)
        post_list.append(n_c + w.syn_comp)
        param_list.append(w.syn_param)
        delay_list.append(np.full(len(w.syn_pre), _vertex_delay(delays, v), dtype=np.int16))
        n_c += len(w.comp_act)

    def cat(parts: list, dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    s_pre, s_post, s_param = cat(pre_list, np.int32), cat(post_list, np.int32), cat(param_list, np.int32)
    s_delay = cat(delay_list, np.int16)
    if isinstance(delays, np.ndarray):
        s_delay = _check_delay_array(delays, len(s_pre))
    c_err = np.repeat(np.arange(n_e, dtype=np.int32), e_comps)
    e_comp_ptr = np.concatenate([[0], np.cumsum(e_comps)]).astype(np.int64)
    c_bias_ptr = np.concatenate([[0], np.cumsum([len(b) for b in c_biases], dtype=np.int64)]).astype(np.int64)
    c_bias = np.array([i for b in c_biases for i in b], np.int64)
    c_vertex_arr = cat(c_vertex, np.int32)

    # Who reads each entry of theta: for weight sharing and Z-IL's deferred updates.
    n_theta = n_params + len(constants)
    readers_c = np.concatenate([s_post, np.repeat(np.arange(n_c), np.diff(c_bias_ptr))]).astype(np.int64)
    readers_p = np.concatenate([s_param, c_bias]).astype(np.int64)
    shares = bool(np.any(np.bincount(readers_p[readers_p < n_params], minlength=n_params) > 1))
    # per parameter (a named tensor): the first and last trigger, and how many vertices read it
    n_tensors = len(param_index)
    learn = readers_p < n_params
    tensor = np.repeat(np.arange(n_tensors), [int(np.prod(s)) for _, s in param_index.values()])[readers_p[learn]]
    trig = e_trigger[c_err[readers_c[learn]]].astype(np.int64)
    t_lo = np.full(n_tensors, np.iinfo(np.int32).max, np.int64)
    t_hi = np.full(n_tensors, -1, np.int64)
    np.minimum.at(t_lo, tensor, trig)
    np.maximum.at(t_hi, tensor, trig)
    t_lo[t_hi < 0] = -1
    pairs = np.unique(np.stack([tensor, c_vertex_arr[readers_c[learn]].astype(np.int64)]), axis=1)
    t_vertices = np.bincount(pairs[0], minlength=n_tensors).astype(np.int32)

    share_group, sg_ptr, sg_members = share_groups(n_e, c_err[readers_c], readers_p, n_params)

    if np.array_equal(s_param, np.arange(len(s_param))):
        s_param = np.zeros(0, np.int32)  # no sharing: synapse s reads theta[s]

    # Synapses were created grouped by their compartment: CSR by target needs no index array.
    in_ptr = np.zeros(n_c + 1, np.int64)
    np.add.at(in_ptr, s_post.astype(np.int64) + 1, 1)
    in_ptr = np.cumsum(in_ptr)
    out_syn = np.argsort(s_pre, kind="stable").astype(np.int32)
    out_ptr = np.zeros(n_v + 1, np.int64)
    np.add.at(out_ptr, s_pre.astype(np.int64) + 1, 1)
    out_ptr = np.cumsum(out_ptr)

    e_wake = receiver_groups(in_ptr[e_comp_ptr], np.arange(len(s_pre)), s_pre, s_delay)
    v_wake = receiver_groups(out_ptr, out_syn, c_err[s_post], s_delay)
    fr = forward_runs(in_ptr, s_pre, s_delay)
    br = backward_runs(out_ptr, out_syn, s_post, s_delay)
    return Netlist(
        vertices=order, vertex_lo_v=lo_v, vertex_lo_e=lo_e,
        v_vertex=v_vertex, v_pos=v_pos, v_role=v_role, v_out_act=v_out_act, v_err=v_err,
        e_vertex=e_vertex, e_pos=e_pos, e_value=e_value, e_kind=e_kind, e_comp_ptr=e_comp_ptr,
        e_loss=e_loss, e_group_lo=e_group_lo, e_group_hi=e_group_hi, e_trigger=e_trigger,
        e_share_group=share_group, sg_ptr=sg_ptr, sg_members=sg_members,
        e_plastic=np.maximum.reduceat(cat(c_plastic, np.uint8), e_comp_ptr[:-1]) if n_e else np.zeros(0, np.uint8),
        c_err=c_err, c_act=cat(c_act, np.int8), c_plastic=cat(c_plastic, np.uint8),
        c_bias_ptr=c_bias_ptr, c_bias=c_bias,
        s_param=s_param, in_ptr=in_ptr,
        fr_ptr=fr[0], fr_syn=fr[1], fr_pre=fr[2], fr_len=fr[3], fr_delay=fr[4],
        br_ptr=br[0], br_syn=br[1], br_stride=br[2], br_post=br[3], br_len=br[4], br_delay=br[5],
        own_delay=np.full(n_e, int(own_delay), np.int32),
        n_params=n_params, param_index=param_index,
        constants=np.array(sorted(constants, key=constants.get), np.float64),
        shares_params=shares, triggers_defined=triggers is not None,
        param_trigger_lo=t_lo.astype(np.int32), param_trigger_hi=t_hi.astype(np.int32), param_vertices=t_vertices,
        vg_ptr=e_wake[0], vg_members=e_wake[1], e_vg_ptr=e_wake[2], e_vg=e_wake[3], e_vg_delay=e_wake[4],
        eg_ptr=v_wake[0], eg_members=v_wake[1], v_eg_ptr=v_wake[2], v_eg=v_wake[3], v_eg_delay=v_wake[4],
    )


def share_groups(n_e: int, neuron: np.ndarray, param: np.ndarray, n_params: int) -> tuple:
    """Groups of error neurons linked by the learnable parameters they read (``neuron[k]``
    reads ``param[k]``): the connected components of the neuron-parameter graph. A change
    of a shared parameter changes the weighted input of every member, so all of them
    wake. Returns per neuron its group (-1 alone) and the groups as CSR."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    learnable = param < n_params
    rows, cols = neuron[learnable].astype(np.int64), n_e + param[learnable].astype(np.int64)
    n = n_e + n_params
    adj = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, label = connected_components(adj, directed=False)
    label = label[:n_e]
    counts = np.bincount(label, minlength=label.max() + 1 if n_e else 0)
    shared = counts[label] > 1 if n_e else np.zeros(0, bool)
    ids = {lab: k for k, lab in enumerate(np.unique(label[shared]))}
    group = np.array([ids[lab] if s else -1 for lab, s in zip(label, shared)], np.int32)
    members = np.argsort(np.where(group >= 0, group, len(ids)), kind="stable")[: int(shared.sum())].astype(np.int32)
    ptr = np.concatenate([[0], np.cumsum(np.bincount(group[group >= 0], minlength=len(ids)))]).astype(np.int64)
    return group, ptr, members


def receiver_groups(
    ptr: np.ndarray, links: np.ndarray, receiver: np.ndarray, delay: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Group the receivers of each sender's messages, for waking them once per tick.

    Sender ``n`` reaches ``receiver[links[ptr[n]:ptr[n+1]]]`` with the links' delays. For
    each distinct delay, its receivers form a *group*; identical groups are shared
    (every error neuron of a dense layer reaches the same parent population), so a
    tick wakes a group once however many of its senders emit. Returns the groups as CSR
    (``group_ptr``, ``members``) and, per sender, CSR ``(sender_ptr, group ids, delays)``.
    """
    ids: dict[bytes, int] = {}
    members: list[np.ndarray] = []
    sender_ptr = np.zeros(len(ptr), np.int64)
    groups: list[int] = []
    delays: list[int] = []
    for n in range(len(ptr) - 1):
        own = links[ptr[n] : ptr[n + 1]]
        recv, dl = receiver[own], delay[own]
        for d in np.unique(dl):
            m = np.unique(recv[dl == d]).astype(np.int32)
            key = m.tobytes()
            if key not in ids:
                ids[key] = len(members)
                members.append(m)
            groups.append(ids[key])
            delays.append(int(d))
        sender_ptr[n + 1] = len(groups)
    group_ptr = np.zeros(len(members) + 1, np.int64)
    group_ptr[1:] = np.cumsum([len(m) for m in members])
    flat = np.concatenate(members) if members else np.zeros(0, np.int32)
    return group_ptr, flat, sender_ptr, np.array(groups, np.int32), np.array(delays, np.int32)


def _vertex_delay(delays: Delays, vertex: str) -> int:
    if isinstance(delays, np.ndarray):
        return 1
    if isinstance(delays, Mapping):
        d = delays.get(vertex, 1)
    else:
        d = delays
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 1 <= d <= MAX_DELAY:
        raise ConfigError(
            f"the delay of the synapses into vertex {vertex!r} is {d!r}; delays are ints from 1 to {MAX_DELAY} ticks"
        )
    return int(d)


def _check_delay_array(delays: np.ndarray, n: int) -> np.ndarray:
    d = np.asarray(delays)
    if d.shape != (n,) or not np.issubdtype(d.dtype, np.integer) or (n and (d.min() < 1 or d.max() > MAX_DELAY)):
        raise ConfigError(
            f"a per-synapse delay array must hold {n} ints from 1 to {MAX_DELAY}, got shape {d.shape} dtype {d.dtype}"
        )
    return d.astype(np.int16)
