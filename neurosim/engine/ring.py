"""The ring transport: integer delays as message lines and wake rings (clauses S2, S4, S5).

A message line holds ``D = max_delay + 1`` slots ``[slot, neuron, lane]``, slot
``T % D`` being what each neuron emitted as of tick ``T``; a wake ring ``[slot,
neuron]`` flags the neurons a message reaches at that tick. A receiver reads the
emission of ``d`` ticks ago at slot ``back[d]``: the ring hands the neuron updates
(:mod:`neurosim.engine.neurons`) inbox views ``(line, back, delay, sender)`` and does
their emitting: it writes the sender's slot and wakes the receivers (each wake group
once per slot) when an output changed (S5).

The stage loops are here too: which neurons compute in a stage is the transport's
business (S4: a message arrived, the schedule names them, or a value neuron is not at
rest). Each stage loop covers one block of neurons (slices of 64 dealt to the blocks
in turn); the driver (:mod:`neurosim.engine.driver`) runs the blocks on one thread or
in parallel.
"""

from __future__ import annotations

import numba
import numpy as np

from neurosim.activations import act_scalar, dact_scalar
from neurosim.compile.netlist import LOSS_CE, ROLE_INPUT, ROLE_OUTPUT
from neurosim.engine import neurons
from neurosim.engine.bundles import (
    Compartments,
    ErrorNet,
    ErrorRing,
    ErrorState,
    Events,
    Inbox,
    Record,
    RuleArrays,
    Schedule,
    ValueNet,
    ValueRing,
    ValueState,
)
from neurosim.engine.observers import event
from neurosim.engine.semantics import DETECTOR_FEEDBACK, MODE_LEARN, MSG_ERROR, MSG_FEEDBACK, MSG_VALUE, UPDATE_PHI

_GRANULE = 64  # neurons per slice dealt to the blocks in turn


@numba.njit(cache=True, inline="always")
def block_size(n: int, block: int, blocks: int) -> int:
    """How many slots ``block_member`` enumerates for ``block`` (some past ``n``)."""
    slices = (n + _GRANULE - 1) // _GRANULE
    return (slices - block + blocks - 1) // blocks * _GRANULE


@numba.njit(cache=True, inline="always")
def block_member(k: int, count: int, block: int, blocks: int, reverse: bool) -> int:
    """The ``k``-th neuron of ``block``: slices of ``_GRANULE`` neurons are dealt to the
    blocks in turn (so that every layer is shared out, and no two threads write the same
    cache line), taken from the end when ``reverse``. May exceed the neuron count."""
    k = count - 1 - k if reverse else k
    return (block + (k // _GRANULE) * blocks) * _GRANULE + k % _GRANULE


@numba.njit(cache=True, inline="always")
def wake_group(wake: np.ndarray, marked: np.ndarray, group_ptr: np.ndarray, members: np.ndarray, group: int,
               slot: int) -> None:
    """Announce a message to every member of a wake group at ``slot``, once per slot."""
    if marked[slot, group]:
        return
    marked[slot, group] = 1
    for m in range(group_ptr[group], group_ptr[group + 1]):
        wake[slot, members[m]] = 1


@numba.njit(cache=True, inline="always")
def wake_changed(er: ErrorRing, i: int, nxt: int) -> None:
    """Error neuron ``i``'s synapses changed: it and the parents they reach wake at ``nxt``."""
    er.err_wake_in[nxt, i] = 1
    for q in range(er.e_vg_ptr[i], er.e_vg_ptr[i + 1]):
        wake_group(er.val_wake, er.vg_marked, er.vg_ptr, er.vg_members, er.e_vg[q], nxt)


@numba.njit(cache=True)
def carry(line: np.ndarray, back: np.ndarray) -> None:
    """Slot ``T`` of a message line starts as slot ``T - 1``: what each neuron last emitted.

    (Explicit loops rather than slice assignment, which would compile numba's generic
    broadcasting, error messages and all: seconds of start-up.)
    """
    for n in range(line.shape[1]):
        for b in range(line.shape[2]):
            line[back[0], n, b] = line[back[1], n, b]


@numba.njit(cache=True)
def clear(flags: np.ndarray, slot: int) -> None:
    """Clear one slot of a wake ring or a group-mark ring."""
    for n in range(flags.shape[1]):
        flags[slot, n] = 0


@numba.njit(cache=True)
def begin_tick(er: ErrorRing, T: int) -> None:
    """The slot tables of tick ``T`` (``back[d]``, ``ahead[d]``: slots of ``T - d``,
    ``T + d``), and the error lines carried into slot ``T``."""
    D = er.err_wake_in.shape[0]
    for d in range(D + 1):
        er.back[d] = (T - d) % D
        er.ahead[d] = (T + d) % D
    carry(er.e_line, er.back)
    carry(er.mu_line, er.back)
    carry(er.g_line, er.back)


@numba.njit(cache=True)
def carry_values(vr: ValueRing) -> None:
    """The value lines carried into slot ``T`` (also when the value stage is skipped:
    the next presentation reads this slot as what every value neuron last emitted)."""
    carry(vr.v_line, vr.back)
    carry(vr.x_line, vr.back)


@numba.njit(cache=True)
def held_stage(cp: Compartments, theta: np.ndarray, x: Inbox, es: ErrorState, er: ErrorRing, fixed: bool,
               all_active: bool) -> None:
    """Every error neuron takes its held update (:func:`neurosim.engine.neurons.held_update`),
    recomputing its weighted inputs where a synapse received a message or changed."""
    slot = er.back[0]
    for i in range(es.learning.shape[0]):
        neurons.held_update(cp, theta, x, es, i, fixed, all_active or er.err_wake_in[slot, i] == 1)
        er.err_wake_in[slot, i] = 0
        er.err_wake_own[slot, i] = 0


@numba.njit(cache=True)
def error_block(cp: Compartments, en: ErrorNet, es: ErrorState, theta: np.ndarray, x: Inbox, own: Inbox,
                er: ErrorRing, ra: RuleArrays, sch: Schedule, ev: Events, rec: Record, T: int, block: int,
                blocks: int) -> None:
    """The error stage of tick ``T`` for the units whose first neuron is in ``block`` (S2-S6).

    A unit is one error neuron, or the error neurons of a ``ce`` output (the lateral
    softmax exchange). It computes when a message arrived for one of its neurons, the
    schedule names one, or at the stimulus onset (``force_tick``: every unit emits).
    Its compartments' weighted inputs are recomputed only when a synapse received a
    message or changed (``err_wake_in``); a unit that did not wake but must emit keeps
    ``a`` and ``mu``: nothing they depend on changed (S4). It emits ``mu``/``eps`` to
    its value neuron when either changed, ``g`` to its parents when it changed (S5).
    """
    B = es.eps.shape[1]
    slot = er.back[0]
    t = T - sch.learn_tick0
    learning = sch.mode == MODE_LEARN
    forced = T == sch.force_tick
    feedback_detector = ra.detector == DETECTOR_FEEDBACK
    count = block_size(es.eps.shape[0], block, blocks)
    for k in range(count):
        first = block_member(k, count, block, blocks, sch.reverse)
        if first >= es.eps.shape[0]:
            continue
        lo = en.e_group_lo[first]
        if first != lo:
            continue  # members of a group are handled by its first neuron
        hi = en.e_group_hi[first]
        woken = sch.all_active
        inputs_changed = sch.all_active
        for i in range(lo, hi):
            if er.err_wake_in[slot, i]:
                woken = True
                inputs_changed = True
            if er.err_wake_own[slot, i]:
                woken = True
            er.err_wake_in[slot, i] = 0
            er.err_wake_own[slot, i] = 0
            if neurons.scheduled(ra.update_kind, ra.trigger, learning, i, t):
                woken = True
        if not (woken or forced):
            continue
        # Phase A, part 1: compartments' weighted inputs and the prediction (fixed
        # predictions keep theirs).
        if inputs_changed and not (learning and ra.fixed):
            for i in range(lo, hi):
                c0, c1 = cp.e_comp_ptr[i], cp.e_comp_ptr[i + 1]
                neurons.weighted_inputs(cp, theta, x, es.a, i)
                for b in range(B):
                    es.mu[i, b] = neurons.combine(cp.e_kind[i], cp.c_act, es.a, c0, c1, b)
        # Phase A, part 2: errors, phi and g (written out here, not called per neuron:
        # numba copies a bundle argument with a reference-count update per array).
        for i in range(lo, hi):
            c0, c1 = cp.e_comp_ptr[i], cp.e_comp_ptr[i + 1]
            sl, base = own.table[own.key[i]], own.base[i]
            scheduled = neurons.scheduled(ra.update_kind, ra.trigger, learning, i, t)
            eps_changed = False
            g_changed = False
            learns = False
            for b in range(B):
                if learning and en.e_loss[i] == LOSS_CE:
                    new_eps = own.buf[sl, base, b] - neurons.softmax_at(es.mu, i, lo, hi, b)
                else:
                    new_eps = own.buf[sl, base, b] - es.mu[i, b]
                phi = False
                if new_eps != es.eps[i, b]:
                    eps_changed = True
                    if learning:
                        phi = neurons.phi(feedback_detector, es.spent[i, b], es.mu[i, b], es.mu0[i, b],
                                          es.last_change[i, b], t, ra.t_d)
                        es.last_change[i, b] = t
                es.eps[i, b] = new_eps
                fires = learning and ra.update_kind == UPDATE_PHI and phi and en.e_plastic[i] == 1
                if fires:
                    es.fired[i, b] = 1
                    es.spent[i, b] = 1
                    learns = True
                for c in range(c0, c1):
                    new_g = neurons.local_derivative(cp.e_kind[i], cp.c_act, es.a, c0, c1, c, b) * new_eps
                    if new_g != es.g[c, b]:
                        g_changed = True
                    es.g[c, b] = new_g
                    es.pending[c, b] = new_g if (scheduled or fires) else 0.0
            learns = learns or scheduled
            # Phase B: emit what changed (S5), decide to learn.
            mu_changed = False
            for b in range(B):
                if er.mu_line[slot, i, b] != es.mu[i, b]:
                    mu_changed = True
            if eps_changed or mu_changed or forced:
                for b in range(B):
                    er.e_line[slot, i, b] = es.eps[i, b]
                    er.mu_line[slot, i, b] = es.mu[i, b]
                er.val_wake[er.ahead[er.own_delay[i] - 1], er.e_value[i]] = 1
                event(ev, T, MSG_ERROR, i)
            if g_changed or forced:
                event(ev, T, MSG_FEEDBACK, i)
                for c in range(cp.e_comp_ptr[i], cp.e_comp_ptr[i + 1]):
                    for b in range(B):
                        er.g_line[slot, c, b] = es.g[c, b]
                for q in range(er.e_vg_ptr[i], er.e_vg_ptr[i + 1]):
                    wake_group(er.val_wake, er.vg_marked, er.vg_ptr, er.vg_members, er.e_vg[q],
                               er.ahead[er.e_vg_delay[q] - 1])
            if scheduled:
                for b in range(B):
                    rec.eps_at_trigger[i, b] = es.eps[i, b]
            if learns:
                es.learning[i] = 1


@numba.njit(cache=True)
def value_block(vn: ValueNet, vs: ValueState, theta: np.ndarray, g: Inbox, mu_in: Inbox, e_in: Inbox,
                vr: ValueRing, ra: RuleArrays, sch: Schedule, ev: Events, T: int, block: int, blocks: int) -> None:
    """The value stage of the tick for the value neurons of ``block`` (S2-S5, S7): a woken
    free neuron updates (:func:`neurosim.engine.neurons.value_update`); where its belief
    changed it emits ``v`` to its error neuron and ``x`` (``v`` or ``act(v)``) to its
    children (who do not listen with fixed predictions), and, learning, wakes itself
    for the next tick (not at rest)."""
    B = vs.v.shape[1]
    slot = vr.back[0]
    learning = sch.mode == MODE_LEARN
    send_forward = not (learning and ra.fixed)  # fixed predictions: children do not listen
    shared, s_param = vn.s_param.shape[0] > 0, vn.s_param
    count = block_size(vs.v.shape[0], block, blocks)
    for k in range(count):
        j = block_member(k, count, block, blocks, sch.reverse)
        if j >= vs.v.shape[0]:
            continue
        if not (vr.val_wake[slot, j] or sch.all_active):
            continue
        vr.val_wake[slot, j] = 0
        role = vn.v_role[j]
        if role == ROLE_INPUT or (role == ROLE_OUTPUT and learning):
            continue  # clamped
        # The neuron's update (written out here, not called per neuron: numba copies a
        # bundle argument with a reference-count update per array).
        new_v = vs.v_next[j]
        sl, base = mu_in.table[mu_in.key[j]], mu_in.base[j]
        if not learning:  # predicting: adopt the prediction mu its error neuron sent
            for b in range(B):
                new_v[b] = mu_in.buf[sl, base, b]
        else:  # learning: the feedback over outgoing synapses, sum_s w_s g_s
            for b in range(B):
                new_v[b] = 0.0
            for r in range(vn.br_ptr[j], vn.br_ptr[j + 1]):
                s0, step, i0, n, gs = vn.br_syn[r], vn.br_stride[r], g.base[r], vn.br_len[r], g.table[g.key[r]]
                if B <= neurons.FEW_LANES:
                    for b in range(B):
                        acc = 0.0
                        if shared:
                            for q in range(n):
                                acc += theta[s_param[s0 + q * step]] * g.buf[gs, i0 + q, b]
                        else:
                            acc = neurons.dot(theta, s0, step, g.buf, gs, i0, b, n)
                        new_v[b] += acc
                else:
                    for q in range(n):
                        w = theta[s_param[s0 + q * step]] if shared else theta[s0 + q * step]
                        for b in range(B):
                            new_v[b] += w * g.buf[gs, i0 + q, b]
            esl, ebase = e_in.table[e_in.key[j]], e_in.base[j]
            for b in range(B):
                at = vs.vhat[j, b] if ra.fixed else vs.v[j, b]
                new_v[b] = neurons.belief_step(vs.v[j, b], e_in.buf[esl, ebase, b], new_v[b],
                                               dact_scalar(vn.v_out_act[j], at), ra.gamma)
        changed = False
        for b in range(B):
            if new_v[b] != vs.v[j, b]:
                changed = True
        if not changed:
            continue
        for b in range(B):
            vs.v[j, b] = new_v[b]
        for b in range(B):
            vr.v_line[slot, j, b] = vs.v[j, b]
            if send_forward:
                vr.x_line[slot, j, b] = act_scalar(vn.v_out_act[j], vs.v[j, b])
        own = vn.v_err[j]
        vr.err_wake_own[vr.ahead[vr.own_delay[own]], own] = 1
        event(ev, T, MSG_VALUE, j)
        if send_forward:
            for q in range(vr.v_eg_ptr[j], vr.v_eg_ptr[j + 1]):
                wake_group(vr.err_wake_in, vr.eg_marked, vr.eg_ptr, vr.eg_members, vr.v_eg[q],
                           vr.ahead[vr.v_eg_delay[q]])
        if learning:
            vr.val_wake[vr.ahead[1], j] = 1  # not at rest: keeps integrating


@numba.njit(cache=True)
def quiet(er: ErrorRing) -> bool:
    """No message in flight: every wake ring is empty."""
    for d in range(er.err_wake_in.shape[0]):
        for i in range(er.err_wake_in.shape[1]):
            if er.err_wake_in[d, i] or er.err_wake_own[d, i]:
                return False
        for j in range(er.val_wake.shape[1]):
            if er.val_wake[d, j]:
                return False
    return True


@numba.njit(cache=True)
def clamp_values(vn: ValueNet, vr: ValueRing, v: np.ndarray, neurons: np.ndarray, values: np.ndarray,
                 T: int) -> None:
    """Clamp value neurons (inputs or targets) to ``values`` ``[len(neurons), lanes]``.

    The clamped value is written into every slot of the neuron's lines, as if it had
    been held for as long as the longest delay: this is the stimulus (or teacher)
    that the environment presents, not a neuron's own computation. Where it changed,
    the neuron's error neuron and children's error neurons are woken at tick ``T``.
    """
    D = vr.err_wake_in.shape[0]
    for q in range(neurons.shape[0]):
        j = neurons[q]
        changed = False
        for b in range(values.shape[1]):
            if vr.v_line[T % D, j, b] != values[q, b] or v[j, b] != values[q, b]:
                changed = True
            v[j, b] = values[q, b]
            for d in range(D):
                vr.v_line[d, j, b] = values[q, b]
                vr.x_line[d, j, b] = act_scalar(vn.v_out_act[j], values[q, b])
        if changed:
            if vn.v_err[j] >= 0:
                vr.err_wake_own[T % D, vn.v_err[j]] = 1
            for g in range(vr.v_eg_ptr[j], vr.v_eg_ptr[j + 1]):
                wake_group(vr.err_wake_in, vr.eg_marked, vr.eg_ptr, vr.eg_members, vr.v_eg[g], T % D)
