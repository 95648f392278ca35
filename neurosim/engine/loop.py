"""The event loop: synchronous ticks over the neuron-level netlist (numba-compiled).

Tick semantics (synchronous mode)
=================================

Time advances in integer ticks. Every neuron is an actor that holds only its own
state (:class:`~neurosim.engine.kernels.StateArrays`) and receives messages in an
inbox; a message is a value a neuron *emitted* on one of its lines, read by the
receiver ``d`` ticks later, where ``d >= 1`` is the delay of the link it travels.

S1. **Two stages per tick.** Tick ``T`` runs an *error stage* (every error neuron
    that woke computes) and then a *value stage* (every value neuron that woke
    computes). With every delay equal to 1, one tick is exactly one synchronous
    inference step of the papers: state ``t`` goes in, state ``t + 1`` comes out.
S2. **What a neuron reads.** A neuron reads only its own state and its inbox: error
    neuron ``i`` reads ``theta`` of its own synapses, the signal ``x`` each of its
    synapses ``s`` received (emitted by ``s_pre[s]`` at tick ``T - d_s``) and its own
    value neuron's belief (emitted at ``T - d_own``); value neuron ``j`` reads its own
    belief, its error neuron's ``mu``/``eps`` and the ``g`` arriving over each of its
    outgoing synapses, weighted by that synapse. A delay ``d`` means the receiver
    sees the message at its ``d``-th update after the emission: value-to-error
    messages emitted in tick ``T`` are read in the error stage of ``T + d``,
    error-to-value messages emitted in tick ``T`` in the value stage of ``T + d - 1``.
S3. **Phase A, then phase B.** Within a stage every neuron computes from what it
    read (phase A); then changes commit and messages are emitted (phase B). No neuron
    reads, in a stage, anything written in that stage, so the order in which neurons
    are visited cannot change the result (``Policy.reverse`` checks this).
S4. **Who computes.** A neuron computes in a stage when a message arrived for it
    then, when the rule's schedule names it (Z-IL's trigger, the end of IL's or Strict
    PC's relaxation), or, for a value neuron, when its last update moved it (it is
    not at rest). Every other neuron keeps its state: by construction recomputing it
    would give the same bits (``Policy.all_active`` checks this). Likewise an error
    neuron recomputes its weighted input only when one of its synapses received a
    message or changed, not when only its own value neuron spoke.
S5. **Silence.** A neuron whose output did not change (in any lane of the
    mini-batch) emits nothing.
S6. **Plasticity.** The error stage decides, from the same state ``t`` as the
    inference change, which error neurons learn and with which ``g`` (per lane);
    the synapses change at the *end* of the tick, ``w_s += alpha sum_b g_b x_sb``:
    inference in tick ``T`` uses the weights from before the tick's updates. A
    synapse's change reads only what arrived at it: the signal ``x`` it received (the
    same slot the error stage read; the value stage writes only slot ``T``) and its
    error neuron's ``g``. A changed synapse wakes both of its ends for the next tick.
S7. **Phases of a presentation.** *Prediction*: the inputs are clamped (a changed
    input wakes the error neurons it feeds), the stimulus onset makes every error
    neuron emit once (recomputing only if woken), and each value neuron adopts the
    prediction ``mu`` its error neuron sends; the phase ends when no message is in
    flight (quiescence), at the feedforward equilibrium where every error is exactly
    0. *Learning*: the target is clamped on the output value neurons and learning
    step ``t`` is tick ``learn_tick0 + t``; value neurons follow
    ``v += gamma * (-eps + act'(.) * sum_s w_s g_s)``.
S8. **Divergence.** After each learning error stage the energy
    ``E = 1/2 sum eps^2`` (an observer's quantity, not a neuron's) is checked: a
    non-finite value or ``E > max_energy_ratio * E(0)`` stops the run and reports the
    tick, as does a weight made non-finite by the tick's plasticity. The
    presentation ends there (what takes effect is :mod:`neurosim.rules`' choice: the
    changes computed before the diverging step, or nothing if a weight is not finite).

Softmax cross-entropy outputs are the one lateral exchange: the error neurons of a
``ce`` output form a group that computes ``softmax(mu)`` together in the same stage.

Parallel delivery. Each stage runs in parallel over blocks of its neurons, one
block per thread (slices of 64 neurons dealt to the blocks in turn, so that the
active layer is shared out), partitioned by target: a neuron writes only its own
state, its own line slot and wake flags, which are set to 1 and never read within
the stage (a ``ce`` group is handled by the block of its first neuron). Observers (energy,
the phi record) are computed serially in neuron order. So the result does not depend
on the number of threads, bit for bit (``tests/test_parallel.py``).
"""

from __future__ import annotations

import numba
import numpy as np

from neurosim.activations import act_scalar, dact_scalar
from neurosim.compile.netlist import KIND_MAX, KIND_MEAN, KIND_PRODUCT, KIND_SINGLE, LOSS_CE, ROLE_INPUT, ROLE_OUTPUT
from neurosim.engine.kernels import (
    CAUSE_DEFERRED,
    DETECTOR_FEEDBACK,
    MODE_LEARN,
    MSG_ERROR,
    MSG_FEEDBACK,
    MSG_VALUE,
    STATUS_FLUSH,
    STATUS_BUFFER_FULL,
    STATUS_DIVERGED,
    STATUS_OK,
    STATUS_QUIET,
    UPDATE_AT_TRIGGER,
    UPDATE_HELD,
    UPDATE_PHI,
    NetArrays,
    Policy,
    Recorders,
    StateArrays,
)

_FEW_LANES = 2  # up to this many samples, sums run lane by lane
# A synapse s reads theta[s], or theta[s_param[s]] when weights are shared; the kernels
# test ``shared`` once per block, outside their loops, so that LLVM can unswitch them.


_GRANULE = 64  # neurons per slice dealt to the blocks in turn


@numba.njit(cache=True, inline="always")
def _block_size(n: int, block: int, blocks: int) -> int:
    """How many slots ``_block_member`` enumerates for ``block`` (some past ``n``)."""
    slices = (n + _GRANULE - 1) // _GRANULE
    return (slices - block + blocks - 1) // blocks * _GRANULE


@numba.njit(cache=True, inline="always")
def _block_member(k: int, count: int, block: int, blocks: int, reverse: bool) -> int:
    """The ``k``-th neuron of ``block``: slices of ``_GRANULE`` neurons are dealt to the
    blocks in turn (so that every layer is shared out, and no two threads write the same
    cache line), taken from the end when ``reverse``. May exceed the neuron count."""
    k = count - 1 - k if reverse else k
    return (block + (k // _GRANULE) * blocks) * _GRANULE + k % _GRANULE


@numba.njit(cache=True, inline="always")
def _dot(theta: np.ndarray, s0: int, step: int, line: np.ndarray, slot: int, n0: int, b: int, n: int) -> float:
    """``sum_q theta[s0 + q step] * line[slot, n0 + q, b]`` over a run of ``n`` synapses.

    Four partial sums in a fixed pattern (q mod 4), added at the end, so that the
    processor overlaps four multiply-adds instead of waiting on one chain; the order is
    fixed, so the result is the same bits on every run and thread count.
    """
    a0 = a1 = a2 = a3 = 0.0
    m = n - n % 4
    for q in range(0, m, 4):
        a0 += theta[s0 + q * step] * line[slot, n0 + q, b]
        a1 += theta[s0 + (q + 1) * step] * line[slot, n0 + q + 1, b]
        a2 += theta[s0 + (q + 2) * step] * line[slot, n0 + q + 2, b]
        a3 += theta[s0 + (q + 3) * step] * line[slot, n0 + q + 3, b]
    for q in range(m, n):
        a0 += theta[s0 + q * step] * line[slot, n0 + q, b]
    return (a0 + a1) + (a2 + a3)


@numba.njit(cache=True, inline="always")
def _wake_group(
    wake: np.ndarray, marked: np.ndarray, group_ptr: np.ndarray, members: np.ndarray, group: int, slot: int
) -> None:
    """Announce a message to every member of a wake group at ``slot``, once per slot."""
    if marked[slot, group]:
        return
    marked[slot, group] = 1
    for m in range(group_ptr[group], group_ptr[group + 1]):
        wake[slot, members[m]] = 1


@numba.njit(cache=True, parallel=True)
def _error_blocks(net: NetArrays, st: StateArrays, pol: Policy, rec: Recorders, T: int,
                  back: np.ndarray, ahead: np.ndarray) -> None:
    """The error stage of tick ``T``, its ``pol.blocks`` blocks on parallel threads."""
    for c in numba.prange(pol.blocks):
        _error_block(net, st, pol, rec, T, back, ahead, np.int64(c), pol.blocks)


@numba.njit(cache=True)
def _pair_sum(c_act: np.ndarray, a: np.ndarray, c0: int, c1: int, b: int) -> float:
    """``sum_k f(a_{c0+2k}) f(a_{c0+2k+1})`` over the compartments ``c0..c1``."""
    s = 0.0
    for c in range(c0, c1, 2):
        s += act_scalar(c_act[c], a[c, b]) * act_scalar(c_act[c + 1], a[c + 1, b])
    return s


@numba.njit(cache=True)
def _combine(kind: int, c_act: np.ndarray, a: np.ndarray, c0: int, c1: int, b: int) -> float:
    """The prediction ``mu`` of an error neuron from its compartments ``c0..c1`` (see
    :mod:`neurosim.compile.netlist` for the kinds)."""
    if kind == KIND_SINGLE:
        return act_scalar(c_act[c0], a[c0, b])
    if kind == KIND_PRODUCT:
        return _pair_sum(c_act, a, c0, c1, b)
    if kind == KIND_MAX:  # max_c f_c(a_c)
        m = act_scalar(c_act[c0], a[c0, b])
        for c in range(c0 + 1, c1):
            m = max(m, act_scalar(c_act[c], a[c, b]))
        return m
    if kind == KIND_MEAN:  # 1/n sum_c f_c(a_c)
        s = 0.0
        for c in range(c0, c1):
            s += act_scalar(c_act[c], a[c, b])
        return s / (c1 - c0)
    o = c1 - 1  # KIND_LSTM_H: f_o(a_o) tanh(C)
    return act_scalar(c_act[o], a[o, b]) * np.tanh(_pair_sum(c_act, a, c0, o, b))


@numba.njit(cache=True)
def _local_derivative(kind: int, c_act: np.ndarray, a: np.ndarray, c0: int, c1: int, c: int, b: int) -> float:
    """``d mu / d a_c``: how the prediction depends on compartment ``c`` (its Jacobian)."""
    if kind == KIND_SINGLE:
        return dact_scalar(c_act[c], a[c, b])
    if kind == KIND_MAX:  # the first maximal compartment takes the whole error
        best = c0
        top = act_scalar(c_act[c0], a[c0, b])
        for k in range(c0 + 1, c1):
            f = act_scalar(c_act[k], a[k, b])
            if f > top:
                best, top = k, f
        return dact_scalar(c_act[c], a[c, b]) if c == best else 0.0
    if kind == KIND_MEAN:
        return dact_scalar(c_act[c], a[c, b]) / (c1 - c0)
    if kind == KIND_PRODUCT:
        partner = c0 + ((c - c0) ^ 1)
        return dact_scalar(c_act[c], a[c, b]) * act_scalar(c_act[partner], a[partner, b])
    o = c1 - 1  # KIND_LSTM_H
    t = np.tanh(_pair_sum(c_act, a, c0, o, b))
    if c == o:
        return dact_scalar(c_act[o], a[o, b]) * t
    partner = c0 + ((c - c0) ^ 1)
    return (act_scalar(c_act[o], a[o, b]) * (1.0 - t * t) * dact_scalar(c_act[c], a[c, b])
            * act_scalar(c_act[partner], a[partner, b]))


@numba.njit(cache=True, inline="always")
def _weighted_inputs(net: NetArrays, st: StateArrays, i: int, back: np.ndarray) -> None:
    """Error neuron ``i``'s compartments' weighted inputs
    ``a_c = sum bias + sum_s w_s x_s``, each synapse's ``x`` read where it arrives
    (``x_line`` at ``T - d_s``)."""
    B = st.a.shape[1]
    shared, s_param, theta, x_line = net.s_param.shape[0] > 0, net.s_param, st.theta, st.x_line
    for c in range(net.e_comp_ptr[i], net.e_comp_ptr[i + 1]):
        bias = 0.0
        for q in range(net.c_bias_ptr[c], net.c_bias_ptr[c + 1]):
            bias += theta[net.c_bias[q]]
        for b in range(B):
            st.a[c, b] = bias
        for r in range(net.fr_ptr[c], net.fr_ptr[c + 1]):
            s0, p0, n, sl = net.fr_syn[r], net.fr_pre[r], net.fr_len[r], back[net.fr_delay[r]]
            if B <= _FEW_LANES:  # lanes outside: the sum stays in a register
                for b in range(B):
                    acc = 0.0
                    if shared:
                        for q in range(n):
                            acc += theta[s_param[s0 + q]] * x_line[sl, p0 + q, b]
                    else:
                        acc = _dot(theta, s0, 1, x_line, sl, p0, b, n)
                    st.a[c, b] += acc
            else:  # lanes inside: contiguous lanes
                for q in range(n):
                    w = theta[s_param[s0 + q]] if shared else theta[s0 + q]
                    for b in range(B):
                        st.a[c, b] += w * x_line[sl, p0 + q, b]


@numba.njit(cache=True)
def _error_block(net: NetArrays, st: StateArrays, pol: Policy, rec: Recorders, T: int,
                 back: np.ndarray, ahead: np.ndarray, block: int, blocks: int) -> None:
    """The error stage of tick ``T`` for the units whose first neuron is in ``block`` (S2-S6).

    A unit is one error neuron, or the error neurons of a ``ce`` output (the lateral
    softmax exchange). Error neuron ``i`` reads its synapses' weights, the signal each
    synapse received (``x_line`` at ``T - d_s``), its own value neuron's belief
    (``v_line`` at ``T - d_own``) and its own state; it writes its own state, its
    lines at slot ``T``, the wake flags of the receivers of what it emits, and, when
    it learns, its compartments' ``pending`` g (applied to their synapses at the end of
    the tick). Its compartments' weighted inputs are recomputed only when a synapse
    received a message or changed (``err_wake_in``); a unit that did not wake but must
    emit (the stimulus onset) keeps ``a`` and ``mu``: nothing they depend on changed
    (S4). ``back[d]`` and ``ahead[d]`` are the slots of ticks ``T - d`` and ``T + d``.
    """
    B = st.eps.shape[1]
    slot = back[0]
    t = T - pol.learn_tick0
    learning = pol.mode == MODE_LEARN
    forced = T == pol.force_tick
    feedback_detector = pol.detector == DETECTOR_FEEDBACK
    count = _block_size(st.eps.shape[0], block, blocks)
    for k in range(count):
        first = _block_member(k, count, block, blocks, pol.reverse)
        if first >= st.eps.shape[0]:
            continue
        lo = net.e_group_lo[first]
        if first != lo:
            continue  # members of a group are handled by its first neuron
        hi = net.e_group_hi[first]
        woken = pol.all_active
        inputs_changed = pol.all_active
        for i in range(lo, hi):
            if st.err_wake_in[slot, i]:
                woken = True
                inputs_changed = True
            if st.err_wake_own[slot, i]:
                woken = True
            st.err_wake_in[slot, i] = 0
            st.err_wake_own[slot, i] = 0
            if learning and pol.update_kind == UPDATE_AT_TRIGGER and pol.trigger[i] == t:
                woken = True  # the schedule (IL's t_c, Z-IL's t = l) is this rule's control signal
        if not (woken or forced):
            continue
        # Phase A, part 1: compartments' weighted inputs and the prediction (fixed
        # predictions keep theirs).
        if inputs_changed and not (learning and pol.fixed):
            for i in range(lo, hi):
                c0, c1 = net.e_comp_ptr[i], net.e_comp_ptr[i + 1]
                _weighted_inputs(net, st, i, back)
                for b in range(B):
                    st.mu[i, b] = _combine(net.e_kind[i], net.c_act, st.a, c0, c1, b)
        # Phase A, part 2: errors and phi; phase B: commit, emit, decide to learn.
        for i in range(lo, hi):
            own = net.e_value[i]
            c0, c1 = net.e_comp_ptr[i], net.e_comp_ptr[i + 1]
            vin_slot = back[net.own_delay[i]]
            eps_changed = False
            g_changed = False
            learns = False
            scheduled = learning and pol.update_kind == UPDATE_AT_TRIGGER and pol.trigger[i] == t
            for b in range(B):
                if learning and net.e_loss[i] == LOSS_CE:
                    m = st.mu[lo, b]
                    for k in range(lo + 1, hi):
                        m = max(m, st.mu[k, b])
                    z = 0.0
                    for k in range(lo, hi):
                        z += np.exp(st.mu[k, b] - m)
                    new_eps = st.v_line[vin_slot, own, b] - np.exp(st.mu[i, b] - m) / z
                else:
                    new_eps = st.v_line[vin_slot, own, b] - st.mu[i, b]
                phi = False
                if new_eps != st.eps[i, b]:
                    eps_changed = True
                    if learning:
                        if feedback_detector:  # once, and only while the prediction has not moved
                            phi = not st.spent[i, b] and st.mu[i, b] == st.mu0[i, b]
                        else:
                            phi = st.last_change[i, b] <= t - pol.t_d
                        st.last_change[i, b] = t
                st.eps[i, b] = new_eps
                fires = learning and pol.update_kind == UPDATE_PHI and phi and net.e_plastic[i] == 1
                if fires:
                    st.fired[i, b] = 1
                    st.spent[i, b] = 1
                    learns = True
                for c in range(c0, c1):
                    new_g = _local_derivative(net.e_kind[i], net.c_act, st.a, c0, c1, c, b) * new_eps
                    if new_g != st.g[c, b]:
                        g_changed = True
                    st.g[c, b] = new_g
                    st.pending[c, b] = new_g if (scheduled or fires) else 0.0
            learns = learns or scheduled
            mu_changed = False
            for b in range(B):
                if st.mu_line[slot, i, b] != st.mu[i, b]:
                    mu_changed = True
            if eps_changed or mu_changed or forced:
                for b in range(B):
                    st.e_line[slot, i, b] = st.eps[i, b]
                    st.mu_line[slot, i, b] = st.mu[i, b]
                st.val_wake[ahead[net.own_delay[i] - 1], own] = 1
                _event(rec, T, MSG_ERROR, i)
            if g_changed or forced:
                _event(rec, T, MSG_FEEDBACK, i)
                for c in range(c0, c1):
                    for b in range(B):
                        st.g_line[slot, c, b] = st.g[c, b]
                for q in range(net.e_vg_ptr[i], net.e_vg_ptr[i + 1]):
                    _wake_group(st.val_wake, st.vg_marked, net.vg_ptr, net.vg_members,
                                net.e_vg[q], ahead[net.e_vg_delay[q] - 1])
            if scheduled:
                for b in range(B):
                    rec.eps_at_trigger[i, b] = st.eps[i, b]
            if learns:
                st.learning[i] = 1


@numba.njit(cache=True, parallel=True)
def _value_blocks(net: NetArrays, st: StateArrays, pol: Policy, rec: Recorders, T: int,
                  back: np.ndarray, ahead: np.ndarray) -> None:
    """The value stage, its ``pol.blocks`` blocks on parallel threads."""
    for c in numba.prange(pol.blocks):
        _value_block(net, st, pol, rec, T, back, ahead, np.int64(c), pol.blocks)


@numba.njit(cache=True)
def _value_block(net: NetArrays, st: StateArrays, pol: Policy, rec: Recorders, T: int,
                 back: np.ndarray, ahead: np.ndarray, block: int, blocks: int) -> None:
    """The value stage of the tick for the value neurons of ``block`` (S2-S5, S7).

    Value neuron ``j`` reads its own belief ``v`` (``vhat`` for fixed predictions), its
    error neuron's ``mu``/``eps`` (emitted at ``T - d_own + 1``) and the ``g`` arriving
    over each outgoing synapse (emitted at ``T - d_s + 1``), weighted by the synapse;
    it writes its own belief, its lines at slot ``T`` and the wake flags of receivers.
    Predicting, it adopts ``mu``; learning, ``v += gamma (-eps + act'(v) sum_s w_s g_s)``.
    """
    B = st.v.shape[1]
    slot = back[0]
    learning = pol.mode == MODE_LEARN
    send_forward = not (learning and pol.fixed)  # fixed predictions: children do not listen
    shared, s_param, theta, g_line = net.s_param.shape[0] > 0, net.s_param, st.theta, st.g_line
    count = _block_size(st.v.shape[0], block, blocks)
    for k in range(count):
        j = _block_member(k, count, block, blocks, pol.reverse)
        if j >= st.v.shape[0]:
            continue
        if not (st.val_wake[slot, j] or pol.all_active):
            continue
        st.val_wake[slot, j] = 0
        role = net.v_role[j]
        if role == ROLE_INPUT or (role == ROLE_OUTPUT and learning):
            continue  # clamped
        k = net.v_err[j]
        rslot = back[net.own_delay[k] - 1]
        new_v = st.v_next[j]
        if not learning:
            for b in range(B):
                new_v[b] = st.mu_line[rslot, k, b]
        else:  # feedback: sum over outgoing synapses of w_s g_s
            for b in range(B):
                new_v[b] = 0.0
            for r in range(net.br_ptr[j], net.br_ptr[j + 1]):
                s0, step, i0, n = net.br_syn[r], net.br_stride[r], net.br_post[r], net.br_len[r]
                sl = back[net.br_delay[r] - 1]
                if B <= _FEW_LANES:
                    for b in range(B):
                        acc = 0.0
                        if shared:
                            for q in range(n):
                                acc += theta[s_param[s0 + q * step]] * g_line[sl, i0 + q, b]
                        else:
                            acc = _dot(theta, s0, step, g_line, sl, i0, b, n)
                        new_v[b] += acc
                else:
                    for q in range(n):
                        w = theta[s_param[s0 + q * step]] if shared else theta[s0 + q * step]
                        for b in range(B):
                            new_v[b] += w * g_line[sl, i0 + q, b]
            for b in range(B):
                at = st.vhat[j, b] if pol.fixed else st.v[j, b]
                fb = dact_scalar(net.v_out_act[j], at) * new_v[b]
                new_v[b] = st.v[j, b] + pol.gamma * (-st.e_line[rslot, k, b] + fb)
        changed = False
        for b in range(B):
            if new_v[b] != st.v[j, b]:
                changed = True
        if not changed:
            continue
        for b in range(B):
            st.v[j, b] = new_v[b]
            st.v_line[slot, j, b] = new_v[b]
            if send_forward:
                st.x_line[slot, j, b] = act_scalar(net.v_out_act[j], new_v[b])
        st.err_wake_own[ahead[net.own_delay[k]], k] = 1
        _event(rec, T, MSG_VALUE, j)
        if send_forward:
            for q in range(net.v_eg_ptr[j], net.v_eg_ptr[j + 1]):
                _wake_group(st.err_wake_in, st.eg_marked, net.eg_ptr, net.eg_members,
                            net.v_eg[q], ahead[net.v_eg_delay[q]])
        if learning:
            st.val_wake[ahead[1], j] = 1  # not at rest: keeps integrating


@numba.njit(cache=True, inline="always")
def _change(st: StateArrays, defer_step: np.ndarray, p: int, d: float) -> None:
    """Entry ``p`` of theta changes by ``d``, now or, for a shared parameter whose
    last trigger is still to come, when its deferred sum is applied.

    Its first change in a presentation keeps its old value in ``theta_saved`` (to undo
    a diverged run) and starts ``applied`` afresh, so that neither needs a pass over all
    parameters per presentation.
    """
    if not st.saved[p]:
        st.saved[p] = 1
        st.theta_saved[p] = st.theta[p]
        st.applied[p] = d
    else:
        st.applied[p] += d
    if defer_step[p] >= 0:
        st.deferred[p] += d
    else:
        st.theta[p] += d


@numba.njit(cache=True, parallel=True)
def _commit_blocks(net: NetArrays, st: StateArrays, pol: Policy, rec: Recorders, T: int,
                   back: np.ndarray, ahead: np.ndarray) -> None:
    """The end-of-tick plasticity, its ``pol.blocks`` blocks on parallel threads."""
    for c in numba.prange(pol.blocks):
        _commit_block(net, st, pol, rec, T, back, ahead[1], np.int64(c), pol.blocks)


@numba.njit(cache=True)
def _commit_block(net: NetArrays, st: StateArrays, pol: Policy, rec: Recorders, T: int, back: np.ndarray,
                  nxt: int, block: int, blocks: int) -> None:
    """The end-of-tick plasticity of the error neurons of ``block`` (S6):
    ``w_s += alpha sum_b g_cb x_sb`` for every synapse ``s`` of a plastic compartment
    ``c``, ``bias += alpha sum_b g_cb``. Where a parameter is shared, the changes of all
    its synapses meet in one entry of theta: the one step that is not local (run
    serially, so that the sum has a fixed order)."""
    shared, s_param, alpha = net.s_param.shape[0] > 0, net.s_param, pol.alpha
    shares, defer_step, record = pol.shares, pol.defer_step, rec.pl.shape[0] > 0
    theta, saved, theta_saved, applied = st.theta, st.saved, st.theta_saved, st.applied
    count = _block_size(st.learning.shape[0], block, blocks)
    for k in range(count):
        i = _block_member(k, count, block, blocks, False)
        if i >= st.learning.shape[0] or not st.learning[i]:
            continue
        if record:  # the plasticity monitor, before anything changes
            _plasticity_rows(net, st, rec, T, i, alpha, pol.cause, back)
        # Where no entry is shared, neuron i's entries are its own: its first change in
        # the presentation is known per neuron, outside the synapse loops.
        first = not st.e_saved[i]
        st.e_saved[i] = 1
        for c in range(net.e_comp_ptr[i], net.e_comp_ptr[i + 1]):
            if not net.c_plastic[c]:
                continue
            for r in range(net.fr_ptr[c], net.fr_ptr[c + 1]):
                s0, p0, n, sl = net.fr_syn[r], net.fr_pre[r], net.fr_len[r], back[net.fr_delay[r]]
                if shares:
                    for q in range(n):
                        _change(st, defer_step, s_param[s0 + q] if shared else s0 + q,
                                alpha * _learning_signal(st.pending, st.x_line, c, sl, p0 + q))
                elif first:
                    for q in range(n):
                        p = s_param[s0 + q] if shared else s0 + q
                        d = alpha * _learning_signal(st.pending, st.x_line, c, sl, p0 + q)
                        saved[p] = 1
                        theta_saved[p] = theta[p]
                        applied[p] = d
                        theta[p] += d
                else:
                    for q in range(n):
                        p = s_param[s0 + q] if shared else s0 + q
                        d = alpha * _learning_signal(st.pending, st.x_line, c, sl, p0 + q)
                        applied[p] += d
                        theta[p] += d
            for q in range(net.c_bias_ptr[c], net.c_bias_ptr[c + 1]):
                p, d = net.c_bias[q], alpha * _bias_signal(st.pending, c)
                if shares:
                    _change(st, defer_step, p, d)
                elif first:
                    saved[p] = 1
                    theta_saved[p] = theta[p]
                    applied[p] = d
                    theta[p] += d
                else:
                    applied[p] += d
                    theta[p] += d
        _wake_changed(net, st, i, nxt)
        group = net.e_share_group[i]
        if group >= 0 and not st.sg_marked[group]:  # the shared weights of every member changed
            st.sg_marked[group] = 1
            for m in range(net.sg_ptr[group], net.sg_ptr[group + 1]):
                _wake_changed(net, st, net.sg_members[m], nxt)


@numba.njit(cache=True)
def _learning_signal(pending: np.ndarray, x_line: np.ndarray, c: int, slot: int, pre: int) -> float:
    """``sum_b g_cb x_b``: what a synapse of compartment ``c`` learns from (its error
    neuron's pending ``g`` and the signal it received)."""
    acc = 0.0
    for b in range(pending.shape[1]):
        acc += pending[c, b] * x_line[slot, pre, b]
    return acc


@numba.njit(cache=True)
def _bias_signal(pending: np.ndarray, c: int) -> float:
    """``sum_b g_cb``: what a bias of compartment ``c`` learns from."""
    acc = 0.0
    for b in range(pending.shape[1]):
        acc += pending[c, b]
    return acc


@numba.njit(cache=True, inline="always")
def _plasticity_rows(net: NetArrays, st: StateArrays, rec: Recorders, T: int, i: int, alpha: float,
                     cause: int, back: np.ndarray) -> None:
    """The plasticity monitor's rows for error neuron ``i``'s changes this tick."""
    shared = net.s_param.shape[0] > 0
    for c in range(net.e_comp_ptr[i], net.e_comp_ptr[i + 1]):
        if not net.c_plastic[c]:
            continue
        for r in range(net.fr_ptr[c], net.fr_ptr[c + 1]):
            s0, p0, n, sl = net.fr_syn[r], net.fr_pre[r], net.fr_len[r], back[net.fr_delay[r]]
            for q in range(n):
                p = net.s_param[s0 + q] if shared else s0 + q
                _plasticity_row(rec, T, i, p, cause, alpha * _learning_signal(st.pending, st.x_line, c, sl, p0 + q))
        for q in range(net.c_bias_ptr[c], net.c_bias_ptr[c + 1]):
            _plasticity_row(rec, T, i, net.c_bias[q], cause, alpha * _bias_signal(st.pending, c))


@numba.njit(cache=True, inline="always")
def _wake_changed(net: NetArrays, st: StateArrays, i: int, nxt: int) -> None:
    """Error neuron ``i``'s synapses changed: it and the parents they reach wake at ``nxt``."""
    st.err_wake_in[nxt, i] = 1
    for q in range(net.e_vg_ptr[i], net.e_vg_ptr[i + 1]):
        _wake_group(st.val_wake, st.vg_marked, net.vg_ptr, net.vg_members, net.e_vg[q], nxt)


@numba.njit(cache=True, inline="always")
def _apply_deferred(net: NetArrays, st: StateArrays, pol: Policy, rec: Recorders, T: int, nxt: int) -> bool:
    """At the end of learning step ``t``, the shared parameters whose last trigger it was
    take their accumulated change; the error neurons that read them wake. Returns
    False if a weight became non-finite."""
    t = T - pol.learn_tick0
    finite = True
    applied = False
    for k in range(pol.defer_params.shape[0]):
        p = pol.defer_params[k]
        if pol.defer_step[p] == t:
            _plasticity_row(rec, T, -1, p, CAUSE_DEFERRED, st.deferred[p])
            st.theta[p] += st.deferred[p]
            st.deferred[p] = 0.0
            applied = True
            if not np.isfinite(st.theta[p]):
                finite = False
    if applied:
        for k in range(pol.defer_wake.shape[0]):
            _wake_changed(net, st, pol.defer_wake[k], nxt)
    return finite


@numba.njit(cache=True, inline="always")
def _event(rec: Recorders, T: int, kind: int, neuron: int) -> None:
    """The event monitor: neuron ``neuron`` emitted a message of kind ``kind`` at tick ``T``."""
    k = rec.ev_n[0]
    if k < rec.ev.shape[0]:
        rec.ev[k, 0] = T
        rec.ev[k, 1] = kind
        rec.ev[k, 2] = neuron
        rec.ev_n[0] = k + 1


@numba.njit(cache=True, inline="always")
def _plasticity_row(rec: Recorders, T: int, neuron: int, p: int, cause: int, d: float) -> None:
    """The plasticity monitor: entry ``p`` of theta changes by ``d`` at tick ``T``."""
    k = rec.pl_n[0]
    if k < rec.pl.shape[0]:
        rec.pl[k, 0] = T
        rec.pl[k, 1] = neuron
        rec.pl[k, 2] = p
        rec.pl[k, 3] = cause
        rec.pl_delta[k] = d
        rec.pl_n[0] = k + 1


@numba.njit(cache=True, inline="always")
def _monitors_full(rec: Recorders) -> bool:
    """Whether one more tick might not fit in a monitor's buffer (then the chunk stops
    and Python flushes the buffers)."""
    if rec.ev.shape[0] > 0 and rec.ev_n[0] + rec.reserve[0] > rec.ev.shape[0]:
        return True
    if rec.pl.shape[0] > 0 and rec.pl_n[0] + rec.reserve[1] > rec.pl.shape[0]:
        return True
    return rec.tr_tick.shape[0] > 0 and rec.tr_n[0] >= rec.tr_tick.shape[0]


@numba.njit(cache=True, inline="always")
def _trace_errors(st: StateArrays, rec: Recorders, T: int) -> None:
    """The trace monitor, after the error stage: ``mu``, ``eps``, phi's firing and the energy."""
    k = rec.tr_n[0]
    if k >= rec.tr_tick.shape[0]:
        return
    rec.tr_tick[k] = T
    for q in range(rec.tr_e_idx.shape[0]):
        i = rec.tr_e_idx[q]
        for b in range(st.eps.shape[1]):
            rec.tr_mu[k, q, b] = st.mu[i, b]
            rec.tr_eps[k, q, b] = st.eps[i, b]
            rec.tr_phi[k, q, b] = st.fired[i, b]
    rec.tr_energy[k] = _energy(st.eps)


@numba.njit(cache=True, inline="always")
def _trace_values(st: StateArrays, rec: Recorders) -> None:
    """The trace monitor, at the end of the tick: the beliefs ``v``; the row is complete."""
    k = rec.tr_n[0]
    if k >= rec.tr_tick.shape[0]:
        return
    for q in range(rec.tr_v_idx.shape[0]):
        j = rec.tr_v_idx[q]
        for b in range(st.v.shape[1]):
            rec.tr_v[k, q, b] = st.v[j, b]
    rec.tr_n[0] = k + 1


@numba.njit(cache=True, inline="always")
def _record_firings(st: StateArrays, rec: Recorders, t: int) -> int:
    """Copy this tick's phi firings into the record, in neuron then lane order (serial)."""
    status = STATUS_OK
    for i in range(st.fired.shape[0]):
        for b in range(st.fired.shape[1]):
            if st.fired[i, b]:
                st.fired[i, b] = 0
                n = rec.n_firings[0]
                if n < rec.firings.shape[0]:
                    rec.firings[n, 0] = t
                    rec.firings[n, 1] = i
                    rec.firings[n, 2] = b
                    rec.n_firings[0] = n + 1
                else:
                    status = STATUS_BUFFER_FULL
    return status


@numba.njit(cache=True)
def _any(flags: np.ndarray) -> bool:
    for k in range(flags.shape[0]):
        if flags[k]:
            return True
    return False


@numba.njit(cache=True)
def _energy(eps: np.ndarray) -> float:
    """``1/2 sum eps^2`` over every error neuron and lane, in a fixed order (an observer's quantity)."""
    e = 0.0
    for i in range(eps.shape[0]):
        for b in range(eps.shape[1]):
            e += 0.5 * eps[i, b] * eps[i, b]
    return e


@numba.njit(cache=True)
def _quiet(err_wake_in: np.ndarray, err_wake_own: np.ndarray, val_wake: np.ndarray) -> bool:
    """No message in flight: every wake ring is empty."""
    for d in range(err_wake_in.shape[0]):
        for i in range(err_wake_in.shape[1]):
            if err_wake_in[d, i] or err_wake_own[d, i]:
                return False
        for j in range(val_wake.shape[1]):
            if val_wake[d, j]:
                return False
    return True


@numba.njit(cache=True)
def _carry(line: np.ndarray, back: np.ndarray) -> None:
    """Slot ``T`` of a message line starts as slot ``T - 1``: what each neuron last emitted.

    (Explicit loops rather than slice assignment, which would compile numba's generic
    broadcasting, error messages and all: seconds of start-up.)
    """
    for n in range(line.shape[1]):
        for b in range(line.shape[2]):
            line[back[0], n, b] = line[back[1], n, b]


@numba.njit(cache=True)
def _clear(flags: np.ndarray, slot: int) -> None:
    """Clear one slot of a wake ring or a group-mark ring."""
    for n in range(flags.shape[1]):
        flags[slot, n] = 0


@numba.njit(cache=True, inline="always")
def _begin_tick(net: NetArrays, st: StateArrays, pol: Policy, rec: Recorders, T: int, step: int,
                back: np.ndarray, ahead: np.ndarray) -> bool:
    """Slot tables and carried lines of tick ``T``. At the end of Strict PC's or
    FixedPred's relaxation (learning step ``n``) every error neuron learns, with its
    errors held from state ``n - 1``, instead of computing: returns True then.

    FixedPred learns from its held ``g`` (the Jacobian at the forward pass). Strict PC
    pulls the held ``eps(n-1)`` back through the Jacobian at state ``n`` (Torch2PC's
    ``SetPCGrads``): each error neuron recomputes its compartments' weighted inputs
    ``a(n)`` from the signals its synapses receive now (where one arrived or changed,
    as in S4) and learns with ``g = dmu/da(a(n)) * eps(n-1)``; its synapses pair it
    with the same signals ``x(n)`` (Rosenbaum 2022, Algorithm "PC")."""
    D = st.err_wake_in.shape[0]
    for d in range(D + 1):
        back[d] = (T - d) % D  # slot of tick T - d
        ahead[d] = (T + d) % D  # slot of tick T + d
    slot = back[0]
    _carry(st.e_line, back)
    _carry(st.mu_line, back)
    _carry(st.g_line, back)
    held = pol.mode == MODE_LEARN and pol.update_kind == UPDATE_HELD and T - pol.learn_tick0 == pol.held_step
    if held:
        for i in range(st.learning.shape[0]):
            if not pol.fixed and (pol.all_active or st.err_wake_in[slot, i]):
                _weighted_inputs(net, st, i, back)
            st.learning[i] = 1
            st.err_wake_in[slot, i] = 0
            st.err_wake_own[slot, i] = 0
            c0, c1 = net.e_comp_ptr[i], net.e_comp_ptr[i + 1]
            for c in range(c0, c1):
                for b in range(st.g.shape[1]):
                    if pol.fixed:
                        st.pending[c, b] = st.g[c, b]
                    else:
                        st.pending[c, b] = _local_derivative(net.e_kind[i], net.c_act, st.a, c0, c1, c, b) * st.eps[i, b]
        rec.energy[step] = np.nan
    return held


@numba.njit(cache=True, inline="always")
def _after_errors(st: StateArrays, pol: Policy, rec: Recorders, T: int, step: int, back: np.ndarray,
                  held: bool) -> int:
    """The observers after the error stage, in neuron order: phi's record, the energy,
    divergence (S8). Returns STATUS_DIVERGED, STATUS_BUFFER_FULL or STATUS_OK."""
    _clear(st.eg_marked, back[0])  # this slot's arrivals at error neurons are consumed
    _trace_errors(st, rec, T)
    if pol.mode != MODE_LEARN or held:
        return STATUS_OK
    t = T - pol.learn_tick0
    status = STATUS_OK
    if pol.update_kind == UPDATE_PHI:
        status = _record_firings(st, rec, t)
    e = _energy(st.eps)
    if t == 0:
        rec.energy0[0] = e
    rec.energy[step] = e
    if not np.isfinite(e) or (rec.energy0[0] > 0 and e > pol.max_energy_ratio * rec.energy0[0]):
        return STATUS_DIVERGED
    return status


@numba.njit(cache=True, inline="always")
def _value_due(st: StateArrays, pol: Policy, step: int, back: np.ndarray) -> bool:
    """Whether this tick runs its value stage (not after the last error stage of a
    rule that ends there); carries the value lines forward in either case."""
    _carry(st.v_line, back)  # also when the stage is skipped: the next presentation
    _carry(st.x_line, back)  # reads this slot as what every value neuron last emitted
    if pol.last_error_only and step == pol.n_ticks - 1:
        _clear(st.val_wake, back[0])
        return False
    return True


@numba.njit(cache=True, inline="always")
def _end_tick(net: NetArrays, st: StateArrays, pol: Policy, rec: Recorders, T: int, back: np.ndarray,
              ahead: np.ndarray) -> int:
    """After the plasticity: shared parameters due now take their deferred change; a
    non-finite weight means divergence (S8); in the prediction phase, no message in
    flight means quiescence (S7)."""
    _clear(st.vg_marked, back[0])  # this slot's arrivals at value neurons are consumed
    for g in range(st.sg_marked.shape[0]):
        st.sg_marked[g] = 0
    finite = _weights_finite(st.learning, net.e_comp_ptr, net.in_ptr, net.s_param, st.theta)
    if pol.mode == MODE_LEARN and pol.defer_params.shape[0] > 0:
        finite = _apply_deferred(net, st, pol, rec, T, ahead[1]) and finite
    _trace_values(st, rec)
    if not finite:
        return STATUS_DIVERGED
    if pol.stop_when_quiet and _quiet(st.err_wake_in, st.err_wake_own, st.val_wake):
        return STATUS_QUIET
    return STATUS_OK


@numba.njit(cache=True)
def _weights_finite(learning: np.ndarray, e_comp_ptr: np.ndarray, in_ptr: np.ndarray, s_param: np.ndarray,
                    theta: np.ndarray) -> bool:
    """Whether every weight of the error neurons that learned this tick is finite; clears ``learning``."""
    shared = s_param.shape[0] > 0
    finite = True
    for i in range(learning.shape[0]):
        if learning[i]:
            learning[i] = 0
            for s in range(in_ptr[e_comp_ptr[i]], in_ptr[e_comp_ptr[i + 1]]):
                if not np.isfinite(theta[s_param[s] if shared else s]):
                    finite = False
    return finite


@numba.njit(cache=True)
def run_ticks(net: NetArrays, st: StateArrays, pol: Policy, rec: Recorders) -> tuple[int, int]:
    """Run ``pol.n_ticks`` ticks from ``pol.tick0`` on one thread; return ``(status, ticks_done)``.

    ``status`` is STATUS_OK, STATUS_QUIET (prediction phase reached quiescence),
    STATUS_DIVERGED (the last tick done diverged), STATUS_BUFFER_FULL, or
    STATUS_FLUSH (a monitor buffer must be flushed before the next tick).
    """
    back, ahead = st.back, st.ahead
    status = STATUS_OK
    for step in range(pol.n_ticks):
        if _monitors_full(rec):
            return STATUS_FLUSH, step
        T = pol.tick0 + step
        held = _begin_tick(net, st, pol, rec, T, step, back, ahead)
        if not held:
            _error_block(net, st, pol, rec, T, back, ahead, np.int64(0), np.int64(1))
        code = _after_errors(st, pol, rec, T, step, back, held)
        if code == STATUS_DIVERGED:
            return code, step + 1
        status = code if code != STATUS_OK else status
        if _value_due(st, pol, step, back):
            _value_block(net, st, pol, rec, T, back, ahead, np.int64(0), np.int64(1))
        if _any(st.learning):
            _commit_block(net, st, pol, rec, T, back, ahead[1], np.int64(0), np.int64(1))
        code = _end_tick(net, st, pol, rec, T, back, ahead)
        if code != STATUS_OK:
            return code, step + 1
    return status, pol.n_ticks


@numba.njit(cache=True)
def run_ticks_parallel(net: NetArrays, st: StateArrays, pol: Policy, rec: Recorders,
                       shares_params: bool) -> tuple[int, int]:
    """:func:`run_ticks` with each stage split into ``pol.blocks`` blocks on parallel
    threads: a separate entry point, so that a serial run never compiles or starts the
    thread pool. Same result, bit for bit. Where parameters are shared
    (``shares_params``), the plasticity runs on one thread."""
    back, ahead = st.back, st.ahead
    status = STATUS_OK
    for step in range(pol.n_ticks):
        if _monitors_full(rec):
            return STATUS_FLUSH, step
        T = pol.tick0 + step
        held = _begin_tick(net, st, pol, rec, T, step, back, ahead)
        if not held:
            _error_blocks(net, st, pol, rec, T, back, ahead)
        code = _after_errors(st, pol, rec, T, step, back, held)
        if code == STATUS_DIVERGED:
            return code, step + 1
        status = code if code != STATUS_OK else status
        if _value_due(st, pol, step, back):
            _value_blocks(net, st, pol, rec, T, back, ahead)
        if _any(st.learning):
            if shares_params:  # the changes of shared parameters meet: one fixed order
                _commit_block(net, st, pol, rec, T, back, ahead[1], np.int64(0), np.int64(1))
            else:
                _commit_blocks(net, st, pol, rec, T, back, ahead)
        code = _end_tick(net, st, pol, rec, T, back, ahead)
        if code != STATUS_OK:
            return code, step + 1
    return status, pol.n_ticks


@numba.njit(cache=True)
def clamp_values(net: NetArrays, st: StateArrays, neurons: np.ndarray, values: np.ndarray, T: int) -> None:
    """Clamp value neurons (inputs or targets) to ``values`` ``[len(neurons), lanes]``.

    The clamped value is written into every slot of the neuron's lines, as if it had
    been held for as long as the longest delay: this is the stimulus (or teacher)
    that the environment presents, not a neuron's own computation. Where it changed,
    the neuron's error neuron and children's error neurons are woken at tick ``T``.
    """
    D = st.err_wake_in.shape[0]
    for q in range(neurons.shape[0]):
        j = neurons[q]
        changed = False
        for b in range(values.shape[1]):
            if st.v_line[T % D, j, b] != values[q, b] or st.v[j, b] != values[q, b]:
                changed = True
            st.v[j, b] = values[q, b]
            for d in range(D):
                st.v_line[d, j, b] = values[q, b]
                st.x_line[d, j, b] = act_scalar(net.v_out_act[j], values[q, b])
        if changed:
            if net.v_err[j] >= 0:
                st.err_wake_own[T % D, net.v_err[j]] = 1
            for g in range(net.v_eg_ptr[j], net.v_eg_ptr[j + 1]):
                _wake_group(st.err_wake_in, st.eg_marked, net.eg_ptr, net.eg_members, net.v_eg[g], T % D)
