"""Compile a validated model graph into a :class:`~neurosim.compile.netlist.Netlist`.

Ordering is stable: vertices in lexicographic topological order (ties broken by
name), neurons by position inside a vertex, synapses of a dense vertex in the
row-major order of its weight matrix ``(out, in)``. The same graph therefore always
compiles to the same arrays, and a synapse's parameter index is its weight's
position in the flattened PyTorch layout.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import numpy as np

from neurosim.activations import activation_code
from neurosim.compile.runs import backward_runs, forward_runs
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
    validate_graph(graph)
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
    e_act = np.zeros(n_e, np.int8)
    e_loss = np.zeros(n_e, np.int8)
    e_bias = np.full(n_e, -1, np.int64)
    e_group_lo = np.zeros(n_e, np.int32)
    e_group_hi = np.zeros(n_e, np.int32)
    e_trigger = np.full(n_e, -1, np.int32)

    shapes = param_shapes(graph)
    param_index: dict[str, tuple[int, tuple[int, ...]]] = {}
    offset = 0
    # Weights first, in synapse order, so that synapse s reads theta[s]; biases after.
    for name in sorted(shapes, key=lambda n: not n.endswith(".weight")):
        param_index[name] = (offset, shapes[name])
        offset += int(np.prod(shapes[name]))

    pre_list, post_list, param_list, delay_list = [], [], [], []
    for k, v in enumerate(order):
        attrs = graph.nodes[v]
        size = attrs["size"]
        vs = slice(lo_v[k], lo_v[k] + size)
        v_vertex[vs] = k
        v_pos[vs] = np.arange(size)
        children = list(graph.successors(v))
        pre_children = [c for c in children if graph.nodes[c]["convention"] == "pre"]
        if pre_children:
            v_out_act[vs] = activation_code(graph.nodes[pre_children[0]]["activation"], str(pre_children[0]))
        if attrs["op"] == "input":
            v_role[vs] = ROLE_INPUT
            continue
        v_role[vs] = ROLE_OUTPUT if attrs.get("loss") is not None else ROLE_FREE
        es = slice(lo_e[k], lo_e[k] + size)
        v_err[vs] = np.arange(lo_e[k], lo_e[k] + size)
        e_vertex[es] = k
        e_pos[es] = np.arange(size)
        e_value[es] = np.arange(lo_v[k], lo_v[k] + size)
        code = activation_code(attrs["activation"], str(v))
        e_act[es] = code if attrs["convention"] == "post" else 0
        loss = attrs.get("loss")
        e_loss[es] = {None: LOSS_NONE, "mse": LOSS_MSE, "ce": LOSS_CE}[loss]
        if loss == "ce":
            e_group_lo[es] = lo_e[k]
            e_group_hi[es] = lo_e[k] + size
        else:
            e_group_lo[es] = np.arange(lo_e[k], lo_e[k] + size)
            e_group_hi[es] = e_group_lo[es] + 1
        if triggers is not None:
            e_trigger[es] = triggers[v]
        if attrs.get("bias", True):
            e_bias[es] = param_index[f"{v}.bias"][0] + np.arange(size)
        (parent,) = graph.predecessors(v)
        p = index[parent]
        n_in = graph.nodes[parent]["size"]
        w_off = param_index[f"{v}.weight"][0]
        rows = np.repeat(np.arange(size), n_in)
        cols = np.tile(np.arange(n_in), size)
        pre_list.append(lo_v[p] + cols)
        post_list.append(lo_e[k] + rows)
        param_list.append(w_off + rows * n_in + cols)
        delay_list.append(np.full(size * n_in, _vertex_delay(delays, v), dtype=np.int16))

    s_pre = np.concatenate(pre_list).astype(np.int32) if pre_list else np.zeros(0, np.int32)
    s_post = np.concatenate(post_list).astype(np.int32) if post_list else np.zeros(0, np.int32)
    s_param = np.concatenate(param_list).astype(np.int32) if param_list else np.zeros(0, np.int32)
    if np.array_equal(s_param, np.arange(len(s_param))):
        s_param = np.zeros(0, np.int32)  # no sharing: synapse s reads theta[s]
    s_delay = np.concatenate(delay_list) if delay_list else np.zeros(0, np.int16)
    if isinstance(delays, np.ndarray):
        s_delay = _check_delay_array(delays, len(s_pre))

    # Synapses were created grouped by their target: CSR by target needs no index array.
    in_ptr = np.zeros(n_e + 1, np.int64)
    np.add.at(in_ptr, s_post.astype(np.int64) + 1, 1)
    in_ptr = np.cumsum(in_ptr)
    out_syn = np.argsort(s_pre, kind="stable").astype(np.int32)
    out_ptr = np.zeros(n_v + 1, np.int64)
    np.add.at(out_ptr, s_pre.astype(np.int64) + 1, 1)
    out_ptr = np.cumsum(out_ptr)

    e_wake = receiver_groups(in_ptr, np.arange(len(s_pre)), s_pre, s_delay)
    v_wake = receiver_groups(out_ptr, out_syn, s_post, s_delay)
    fr = forward_runs(in_ptr, s_pre, s_delay)
    br = backward_runs(out_ptr, out_syn, s_post, s_delay)
    if isinstance(own_delay, bool) or not isinstance(own_delay, (int, np.integer)) or own_delay < 1:
        raise ConfigError(f"own_delay must be an int >= 1 tick, got {own_delay!r}")
    return Netlist(
        vertices=order, vertex_lo_v=lo_v, vertex_lo_e=lo_e,
        v_vertex=v_vertex, v_pos=v_pos, v_role=v_role, v_out_act=v_out_act, v_err=v_err,
        e_vertex=e_vertex, e_pos=e_pos, e_value=e_value, e_act=e_act, e_loss=e_loss, e_bias=e_bias,
        e_group_lo=e_group_lo, e_group_hi=e_group_hi, e_trigger=e_trigger,
        s_param=s_param, in_ptr=in_ptr,
        fr_ptr=fr[0], fr_syn=fr[1], fr_pre=fr[2], fr_len=fr[3], fr_delay=fr[4],
        br_ptr=br[0], br_syn=br[1], br_stride=br[2], br_post=br[3], br_len=br[4], br_delay=br[5],
        own_delay=np.full(n_e, int(own_delay), np.int32),
        n_params=offset, param_index=param_index,
        vg_ptr=e_wake[0], vg_members=e_wake[1], e_vg_ptr=e_wake[2], e_vg=e_wake[3], e_vg_delay=e_wake[4],
        eg_ptr=v_wake[0], eg_members=v_wake[1], v_eg_ptr=v_wake[2], v_eg=v_wake[3], v_eg_delay=v_wake[4],
    )


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
