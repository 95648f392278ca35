"""The event-driven driver of the asynchronous mode (clauses A1..A9 of ``docs/async.md``).

It pops events from the queue of :mod:`neurosim.engine.transport.events` in the total
order of A5 (time, kind, target, source, sequence) and, for each:

- a **delivery** writes the message into its link's inbox unless a later emission on
  that link already arrived (A3), and asks for a computation of the receiver
  ``latency`` hops later (A4);
- a **computation** runs the same neuron updates as the synchronous stage loops
  (:mod:`neurosim.engine.neurons`: ``weighted_inputs``, ``combine``,
  ``local_derivative``, ``softmax_at``, ``phi``, ``belief_step``, ``held_update``,
  ``learning_signal``) over the per-link inboxes, read through the same
  :class:`~neurosim.engine.bundles.Inbox` views (one slot, ``base`` the run's first
  link), and emits what changed (A6): one message per link, its arrival
  ``t + transit(delay, jitter)`` (A1, A2), keyed by the link's emission index;
- a **commit** applies a plasticity change decided ``commit_delay`` hops earlier
  (A7) and wakes both ends of the changed synapses (the error end 1 hop, the value end
  2 hops later: the next error and value stages in the lock-step limit).

Several events for one neuron at one time give one computation (a computation event
is skipped when the neuron already computed at that time). Neuron ids in the order of
A5: value neurons ``0..n_v-1``, error neurons ``n_v + e``; links: ``2 s`` carries
``x`` over synapse ``s``, ``2 s + 1`` its ``g`` back, ``2 S + 2 e`` carries ``v`` to
error neuron ``e`` and ``2 S + 2 e + 1`` its ``(eps, mu)`` back.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from neurosim.activations import act_scalar, dact_scalar
from neurosim.compile.netlist import LOSS_CE, ROLE_INPUT, ROLE_OUTPUT
from neurosim.engine import neurons
from neurosim.engine.bundles import Compartments, ErrorNet, ErrorState, Inbox, Plastic, RuleArrays, ValueNet, ValueState, Weights
from neurosim.engine.observers import energy
from neurosim.engine.plasticity import _change
from neurosim.engine.semantics import (
    DETECTOR_FEEDBACK,
    MODE_LEARN,
    STATUS_DIVERGED,
    STATUS_OK,
    UPDATE_AT_TRIGGER,
    UPDATE_HELD,
    UPDATE_PHI,
)
from neurosim.engine.transport.events import COMMIT, COMPUTE, DELIVERY, EventQueue, grown, peek, pop, push
from neurosim.engine.transport.jitter import transit

STATUS_STALLED = 5  # the prediction phase did not settle within its event budget
WAKE_ERROR, WAKE_VALUE = 1.0, 2.0  # hops from a commit to the wake of a synapse's error end, value end


class LinkNet(NamedTuple):
    """The event transport's netlist (read-only): per synapse its error neuron, its
    compartment, its presynaptic value neuron, its position in the by-source order of
    the feedback inbox and its delay (hops); per error neuron its own link's delay and
    value neuron; the value-end wake groups of an error neuron's synapses (the ring's);
    the jitter ``(sigma, floor, seed)``, ``latency``, ``commit_delay`` and
    ``integration`` of A2, A4, A7."""

    s_err: np.ndarray
    s_pre: np.ndarray
    s_gpos: np.ndarray
    s_delay: np.ndarray
    own_delay: np.ndarray
    e_value: np.ndarray
    e_vg_ptr: np.ndarray
    e_vg: np.ndarray
    vg_ptr: np.ndarray
    vg_members: np.ndarray
    sigma: float
    floor: float
    seed: int
    latency: float
    commit_delay: float
    integration: float


class Boxes(NamedTuple):
    """The per-link inboxes (A3) and the transport's per-link and per-neuron state.

    ``x_in[0, s]`` (signal into synapse ``s``, synapses by target), ``g_in[0, p]``
    (feedback into the synapse at by-source position ``p``), ``v_in[0, e]``,
    ``mu_in[0, j]``/``e_in[0, j]``: the last message received on the link, with its
    emission index (``*_seq``) and front tag (``*_tag``); ``sent`` the emissions per
    link; ``dirty`` (an error neuron's synaptic input arrived or changed since it last
    computed); ``comp_time`` (time of each neuron's last computation); ``mu_sent``
    (the prediction an error neuron last emitted); ``triggered`` (Z-IL at the front:
    it has taken its update); ``dw_syn``/``dw_b`` (changes decided, not committed);
    ``commits`` (commits in flight); ``last_change`` (phi's record, learning steps)."""

    x_in: np.ndarray
    x_seq: np.ndarray
    x_tag: np.ndarray
    g_in: np.ndarray
    g_seq: np.ndarray
    g_tag: np.ndarray
    v_in: np.ndarray
    v_seq: np.ndarray
    v_tag: np.ndarray
    mu_in: np.ndarray
    e_in: np.ndarray
    me_seq: np.ndarray
    me_tag: np.ndarray
    sent: np.ndarray
    dirty: np.ndarray
    comp_time: np.ndarray
    mu_sent: np.ndarray
    triggered: np.ndarray
    dw_syn: np.ndarray
    dw_b: np.ndarray
    commits: np.ndarray


class Pool(NamedTuple):
    """The payloads of the messages in flight: ``pay[slot, 0|1, lane]`` (``eps`` and ``mu``
    for an error neuron's message to its value neuron, the value otherwise), the front
    tag, a stack of free slots."""

    pay: np.ndarray
    tag: np.ndarray
    free: np.ndarray
    n_free: np.ndarray


class Clock(NamedTuple):
    """One call of the driver: ``mode``; ``learn0`` (time of learning step 0); ``t_end``
    (the learning phase's last time, A9); ``onset`` (the stimulus onset: every error
    neuron emits; -1 when none); ``front`` (Z-IL's trigger at the error front);
    ``held_time`` (Strict PC's/FixedPred's held update, -1 when none); ``n_steps``
    (energy samples at ``learn0 + 2 t``); ``max_events`` (the prediction phase's
    budget); ``fan`` (the most events one event can push); ``t_stop`` (this call stops before
    the first event at or after it: a chunk of the learning phase); ``sample0`` (the
    next energy sample)."""

    mode: int
    learn0: float
    t_end: float
    onset: float
    front: bool
    held_time: float
    n_steps: int
    max_events: int
    fan: int
    t_stop: float
    sample0: int


class Log(NamedTuple):
    """What the driver records in float time (off when a buffer has no rows): energy per
    learning step and ``E(0)``; phi's firings ``(time, error neuron, lane)``; each
    error neuron's trigger time; the emissions ``(time, link, index, arrival)`` and
    computations ``(time, neuron id)`` (the raster); the plasticity commits
    ``(time, error neuron, entry, change)``."""

    energy: np.ndarray
    energy0: np.ndarray
    firings: np.ndarray
    n_firings: np.ndarray
    trigger_time: np.ndarray
    eps_at_trigger: np.ndarray
    emits: np.ndarray
    n_emits: np.ndarray
    computes: np.ndarray
    n_computes: np.ndarray
    plast: np.ndarray
    n_plast: np.ndarray


@numba.njit(cache=True)
def grown_pool(pool: Pool) -> Pool:
    """A copy of ``pool`` with twice the slots (the new ones free)."""
    cap = pool.pay.shape[0]
    pay = np.empty((2 * cap, pool.pay.shape[1], pool.pay.shape[2]), pool.pay.dtype)
    tag = np.zeros(2 * cap, np.uint8)
    free = np.empty(2 * cap, np.int64)
    for k in range(cap):
        for h in range(pool.pay.shape[1]):
            for b in range(pool.pay.shape[2]):
                pay[k, h, b] = pool.pay[k, h, b]
        tag[k] = pool.tag[k]
    n = pool.n_free[0]
    for k in range(n):
        free[k] = pool.free[k]
    for k in range(cap):
        free[n + k] = 2 * cap - 1 - k
    n_free = np.zeros(1, np.int64)
    n_free[0] = n + cap
    return Pool(pay, tag, free, n_free)


@numba.njit(cache=True, inline="always")
def _wake(q: EventQueue, t: float, target: int) -> None:
    push(q, t, COMPUTE, target, 0, 0, 0)


@numba.njit(cache=True)
def _emit(q: EventQueue, pool: Pool, bx: Boxes, ln: LinkNet, lg: Log, t: float, link: int, delay: float,
          target: int, src: np.ndarray, row: int, src2: np.ndarray, row2: int, tag: bool) -> None:
    """A message on ``link`` emitted at ``t`` (A1, A2): its payload ``src[row]`` (and
    ``src2[row2]`` when ``row2 >= 0``) arrives at ``target`` after its transit."""
    index = bx.sent[link]
    bx.sent[link] = index + 1
    arrival = t + transit(delay, ln.sigma, ln.floor, ln.seed, link, index)
    pool.n_free[0] -= 1
    slot = pool.free[pool.n_free[0]]
    for b in range(src.shape[1]):
        pool.pay[slot, 0, b] = src[row, b]
    if row2 >= 0:
        for b in range(src2.shape[1]):
            pool.pay[slot, 1, b] = src2[row2, b]
    pool.tag[slot] = 1 if tag else 0
    push(q, arrival, DELIVERY, target, link, index, slot)
    k = lg.n_emits[0]
    if k < lg.emits.shape[0]:
        lg.emits[k, 0], lg.emits[k, 1], lg.emits[k, 2], lg.emits[k, 3] = t, link, index, arrival
        lg.n_emits[0] = k + 1


@numba.njit(cache=True)
def _deliver(q: EventQueue, pool: Pool, bx: Boxes, ln: LinkNet, t: float, link: int, seq: int, slot: int,
             n_v: int) -> None:
    """A3: the message replaces the link's inbox unless overtaken; its receiver computes
    ``latency`` hops later (A4)."""
    S = ln.s_err.shape[0]
    B = pool.pay.shape[2]
    tag = pool.tag[slot]
    if link < 2 * S:
        s = link >> 1
        if link & 1 == 0:  # x into synapse s
            if seq > bx.x_seq[s]:
                bx.x_seq[s] = seq
                bx.x_tag[s] = tag
                for b in range(B):
                    bx.x_in[0, s, b] = pool.pay[slot, 0, b]
                e = ln.s_err[s]
                bx.dirty[e] = 1
                _wake(q, t + ln.latency, n_v + e)
        else:  # g back over synapse s
            p = ln.s_gpos[s]
            if seq > bx.g_seq[p]:
                bx.g_seq[p] = seq
                bx.g_tag[p] = tag
                for b in range(B):
                    bx.g_in[0, p, b] = pool.pay[slot, 0, b]
                _wake(q, t + ln.latency, ln.s_pre[s])
    else:
        e = (link - 2 * S) >> 1
        if link & 1 == 0:  # v into error neuron e
            if seq > bx.v_seq[e]:
                bx.v_seq[e] = seq
                bx.v_tag[e] = tag
                for b in range(B):
                    bx.v_in[0, e, b] = pool.pay[slot, 0, b]
                _wake(q, t + ln.latency, n_v + e)
        else:  # (eps, mu) into value neuron e_value[e]
            j = ln.e_value[e]
            if seq > bx.me_seq[j]:
                bx.me_seq[j] = seq
                bx.me_tag[j] = tag
                for b in range(B):
                    bx.e_in[0, j, b] = pool.pay[slot, 0, b]
                    bx.mu_in[0, j, b] = pool.pay[slot, 1, b]
                _wake(q, t + ln.latency, j)
    pool.free[pool.n_free[0]] = slot
    pool.n_free[0] += 1


@numba.njit(cache=True)
def _tagged(cp: Compartments, bx: Boxes, i: int) -> bool:
    """Whether error neuron ``i``'s inbox holds a front-tagged message (A8)."""
    if bx.v_tag[i]:
        return True
    for c in range(cp.e_comp_ptr[i], cp.e_comp_ptr[i + 1]):
        for r in range(cp.fr_ptr[c], cp.fr_ptr[c + 1]):
            for qq in range(cp.fr_len[r]):
                if bx.x_tag[cp.fr_syn[r] + qq]:
                    return True
    return False


@numba.njit(cache=True)
def _decide(q: EventQueue, cp: Compartments, pk: Plastic, es: ErrorState, bx: Boxes, x: Inbox, ln: LinkNet,
            ra: RuleArrays, t: float, i: int, n_v: int) -> None:
    """A7: error neuron ``i``'s change, ``alpha sum_b g_cb x_sb`` per synapse from what its
    synapses hold now (:func:`neurosim.engine.neurons.learning_signal`), commits at
    ``t + commit_delay``."""
    for c in range(cp.e_comp_ptr[i], cp.e_comp_ptr[i + 1]):
        if not pk.c_plastic[c]:
            continue
        for r in range(cp.fr_ptr[c], cp.fr_ptr[c + 1]):
            s0, p0 = cp.fr_syn[r], x.base[r]
            for qq in range(cp.fr_len[r]):
                bx.dw_syn[s0 + qq] += ra.alpha * neurons.learning_signal(es.pending, x.buf, c, 0, p0 + qq)
        for qq in range(cp.c_bias_ptr[c], cp.c_bias_ptr[c + 1]):
            bx.dw_b[qq] += ra.alpha * neurons.bias_signal(es.pending, c)
    bx.commits[0] += 1
    push(q, t + ln.commit_delay, COMMIT, n_v + i, 0, 0, 0)


@numba.njit(cache=True, inline="always")
def _set(w: Weights, ra: RuleArrays, p: int, d: float) -> None:
    if ra.shares:
        _change(w, ra.defer_step, p, d)
    elif not w.saved[p]:
        w.saved[p] = 1
        w.theta_saved[p] = w.theta[p]
        w.applied[p] = d
        w.theta[p] += d
    else:
        w.applied[p] += d
        w.theta[p] += d


@numba.njit(cache=True)
def _wake_changed(q: EventQueue, bx: Boxes, ln: LinkNet, t: float, i: int, n_v: int) -> None:
    """Error neuron ``i``'s synapses changed at ``t``: it recomputes ``WAKE_ERROR`` hops
    later, the value neurons they reach (its wake groups) ``WAKE_VALUE`` hops later."""
    bx.dirty[i] = 1
    _wake(q, t + WAKE_ERROR, n_v + i)
    for k in range(ln.e_vg_ptr[i], ln.e_vg_ptr[i + 1]):
        grp = ln.e_vg[k]
        for m in range(ln.vg_ptr[grp], ln.vg_ptr[grp + 1]):
            _wake(q, t + WAKE_VALUE, ln.vg_members[m])


@numba.njit(cache=True)
def _commit(q: EventQueue, cp: Compartments, pk: Plastic, w: Weights, bx: Boxes, ln: LinkNet, ra: RuleArrays,
            lg: Log, t: float, i: int, n_v: int) -> bool:
    """Apply error neuron ``i``'s decided changes (A7); returns False if a weight became
    non-finite."""
    shared = cp.s_param.shape[0] > 0
    finite = True
    rec = lg.plast.shape[0] > 0
    for c in range(cp.e_comp_ptr[i], cp.e_comp_ptr[i + 1]):
        if not pk.c_plastic[c]:
            continue
        for r in range(cp.fr_ptr[c], cp.fr_ptr[c + 1]):
            s0 = cp.fr_syn[r]
            for qq in range(cp.fr_len[r]):
                s = s0 + qq
                p = cp.s_param[s] if shared else s
                d = bx.dw_syn[s]
                bx.dw_syn[s] = 0.0
                _set(w, ra, p, d)
                finite = finite and np.isfinite(w.theta[p])
                if rec and lg.n_plast[0] < lg.plast.shape[0]:
                    k = lg.n_plast[0]
                    lg.plast[k, 0], lg.plast[k, 1], lg.plast[k, 2], lg.plast[k, 3] = t, i, p, d
                    lg.n_plast[0] = k + 1
        for qq in range(cp.c_bias_ptr[c], cp.c_bias_ptr[c + 1]):
            p = cp.c_bias[qq]
            d = bx.dw_b[qq]
            bx.dw_b[qq] = 0.0
            _set(w, ra, p, d)
            finite = finite and np.isfinite(w.theta[p])
            if rec and lg.n_plast[0] < lg.plast.shape[0]:
                k = lg.n_plast[0]
                lg.plast[k, 0], lg.plast[k, 1], lg.plast[k, 2], lg.plast[k, 3] = t, i, p, d
                lg.n_plast[0] = k + 1
    bx.commits[0] -= 1
    _wake_changed(q, bx, ln, t, i, n_v)
    grp = pk.e_share_group[i]
    if grp >= 0:  # the shared weights of every member changed
        for m in range(pk.sg_ptr[grp], pk.sg_ptr[grp + 1]):
            if pk.sg_members[m] != i:
                _wake_changed(q, bx, ln, t, pk.sg_members[m], n_v)
    return finite


@numba.njit(cache=True)
def _apply_deferred(q: EventQueue, w: Weights, bx: Boxes, ln: LinkNet, ra: RuleArrays, t: float, step: int,
                    n_v: int) -> bool:
    """At the end of learning step ``step``, the shared parameters whose last trigger it
    was take their accumulated change; the error neurons that read them wake."""
    finite = True
    for k in range(ra.defer_params.shape[0]):
        p = ra.defer_params[k]
        if ra.defer_step[p] == step:
            w.theta[p] += w.deferred[p]
            w.deferred[p] = 0.0
            finite = finite and np.isfinite(w.theta[p])
    for k in range(ra.defer_wake.shape[0]):
        _wake_changed(q, bx, ln, t, ra.defer_wake[k], n_v)
    return finite


@numba.njit(cache=True)
def _error_unit(q: EventQueue, pool: Pool, cp: Compartments, en: ErrorNet, pk: Plastic, es: ErrorState,
                theta: np.ndarray, x: Inbox, bx: Boxes, ln: LinkNet, ra: RuleArrays, ck: Clock, lg: Log, t: float,
                lo: int, hi: int, n_v: int) -> None:
    """The error neurons ``lo..hi`` (one neuron, or a ``ce`` group) compute at ``t``: the
    synchronous error stage's update (S2, S3, S6) over the per-link inboxes, then the
    emission of what changed (A6) and the decision to learn (A7)."""
    B = es.eps.shape[1]
    S = ln.s_err.shape[0]
    learning = ck.mode == MODE_LEARN
    step = (t - ck.learn0) / 2.0
    forced = t == ck.onset and not learning
    feedback_detector = ra.detector == DETECTOR_FEEDBACK
    inputs_changed = False
    for i in range(lo, hi):
        if bx.dirty[i]:
            inputs_changed = True
        bx.dirty[i] = 0
    if inputs_changed and not (learning and ra.fixed):
        for i in range(lo, hi):
            c0, c1 = cp.e_comp_ptr[i], cp.e_comp_ptr[i + 1]
            neurons.weighted_inputs(cp, theta, x, es.a, i)
            for b in range(B):
                es.mu[i, b] = neurons.combine(cp.e_kind[i], cp.c_act, es.a, c0, c1, b)
    for i in range(lo, hi):
        c0, c1 = cp.e_comp_ptr[i], cp.e_comp_ptr[i + 1]
        tagged = learning and _tagged(cp, bx, i)
        scheduled = False
        if learning and ra.update_kind == UPDATE_AT_TRIGGER and ra.trigger[i] >= 0:
            if ck.front:
                scheduled = tagged and not bx.triggered[i]
            else:
                scheduled = t == ck.learn0 + 2.0 * ra.trigger[i]
        eps_changed = False
        g_changed = False
        learns = False
        for b in range(B):
            if learning and en.e_loss[i] == LOSS_CE:
                new_eps = bx.v_in[0, i, b] - neurons.softmax_at(es.mu, i, lo, hi, b)
            else:
                new_eps = bx.v_in[0, i, b] - es.mu[i, b]
            fires = False
            if new_eps != es.eps[i, b]:
                eps_changed = True
                if learning:
                    fires = neurons.phi(feedback_detector, es.spent[i, b], es.mu[i, b], es.mu0[i, b],
                                        es.last_change[i, b], step, ra.t_d)
                    es.last_change[i, b] = step
            es.eps[i, b] = new_eps
            fires = fires and learning and ra.update_kind == UPDATE_PHI and en.e_plastic[i] == 1
            if fires:
                es.spent[i, b] = 1
                learns = True
                k = lg.n_firings[0]
                if k < lg.firings.shape[0]:
                    lg.firings[k, 0], lg.firings[k, 1], lg.firings[k, 2] = t, i, b
                    lg.n_firings[0] = k + 1
            for c in range(c0, c1):
                new_g = neurons.local_derivative(cp.e_kind[i], cp.c_act, es.a, c0, c1, c, b) * new_eps
                if new_g != es.g[c, b]:
                    g_changed = True
                es.g[c, b] = new_g
                es.pending[c, b] = new_g if (scheduled or fires) else 0.0
        learns = learns or scheduled
        mu_changed = False
        for b in range(B):
            if bx.mu_sent[i, b] != es.mu[i, b]:
                mu_changed = True
        if eps_changed or mu_changed or forced:
            for b in range(B):
                bx.mu_sent[i, b] = es.mu[i, b]
            _emit(q, pool, bx, ln, lg, t, 2 * S + 2 * i + 1, ln.own_delay[i], ln.e_value[i], es.eps, i, es.mu, i,
                  tagged)
        if g_changed or forced:
            for c in range(c0, c1):
                for r in range(cp.fr_ptr[c], cp.fr_ptr[c + 1]):
                    for qq in range(cp.fr_len[r]):
                        s = cp.fr_syn[r] + qq
                        _emit(q, pool, bx, ln, lg, t, 2 * s + 1, ln.s_delay[s], ln.s_pre[s], es.g, c, es.g, -1, tagged)
        if scheduled:
            bx.triggered[i] = 1
            lg.trigger_time[i] = t
            for b in range(B):
                lg.eps_at_trigger[i, b] = es.eps[i, b]
        if learns:
            _decide(q, cp, pk, es, bx, x, ln, ra, t, i, n_v)


@numba.njit(cache=True)
def _value_neuron(q: EventQueue, pool: Pool, vn: ValueNet, vs: ValueState, theta: np.ndarray, g: Inbox, bx: Boxes,
                  ln: LinkNet, ra: RuleArrays, ck: Clock, lg: Log, t: float, j: int) -> None:
    """Value neuron ``j`` computes at ``t``: the synchronous value stage's update (S2, S3,
    S7) over its inboxes; where its belief changed it emits ``v`` to its error neuron and
    ``x`` over its synapses (A6), and, learning, computes again ``integration`` hops
    later (A4)."""
    B = vs.v.shape[1]
    S = ln.s_err.shape[0]
    learning = ck.mode == MODE_LEARN
    role = vn.v_role[j]
    if role == ROLE_INPUT or (role == ROLE_OUTPUT and learning):
        return  # clamped
    send_forward = not (learning and ra.fixed)
    shared, s_param = vn.s_param.shape[0] > 0, vn.s_param
    new_v = vs.v_next[j]
    tagged = False
    if not learning:
        for b in range(B):
            new_v[b] = bx.mu_in[0, j, b]
    else:
        tagged = bx.me_tag[j] == 1
        for b in range(B):
            new_v[b] = 0.0
        for r in range(vn.br_ptr[j], vn.br_ptr[j + 1]):
            s0, stp, i0, n = vn.br_syn[r], vn.br_stride[r], g.base[r], vn.br_len[r]
            for qq in range(n):
                if bx.g_tag[i0 + qq]:
                    tagged = True
            if B <= neurons.FEW_LANES:
                for b in range(B):
                    acc = 0.0
                    if shared:
                        for qq in range(n):
                            acc += theta[s_param[s0 + qq * stp]] * g.buf[0, i0 + qq, b]
                    else:
                        acc = neurons.dot(theta, s0, stp, g.buf, 0, i0, b, n)
                    new_v[b] += acc
            else:
                for qq in range(n):
                    wgt = theta[s_param[s0 + qq * stp]] if shared else theta[s0 + qq * stp]
                    for b in range(B):
                        new_v[b] += wgt * g.buf[0, i0 + qq, b]
        for b in range(B):
            at = vs.vhat[j, b] if ra.fixed else vs.v[j, b]
            new_v[b] = neurons.belief_step(vs.v[j, b], bx.e_in[0, j, b], new_v[b],
                                           dact_scalar(vn.v_out_act[j], at), ra.gamma)
    changed = False
    for b in range(B):
        if new_v[b] != vs.v[j, b]:
            changed = True
    if not changed:
        return
    for b in range(B):
        vs.v[j, b] = new_v[b]
    e = vn.v_err[j]
    if e >= 0:
        _emit(q, pool, bx, ln, lg, t, 2 * S + 2 * e, ln.own_delay[e], len(vn.v_role) + e, vs.v, j, vs.v, -1, tagged)
    if send_forward and vn.br_ptr[j + 1] > vn.br_ptr[j]:
        for b in range(B):
            new_v[b] = act_scalar(vn.v_out_act[j], vs.v[j, b])
        for r in range(vn.br_ptr[j], vn.br_ptr[j + 1]):
            for qq in range(vn.br_len[r]):
                s = vn.br_syn[r] + qq * vn.br_stride[r]
                _emit(q, pool, bx, ln, lg, t, 2 * s, ln.s_delay[s], len(vn.v_role) + ln.s_err[s], vs.v_next, j,
                      vs.v_next, -1, tagged)
    if learning:
        _wake(q, t + ln.integration, j)  # not at rest: keeps integrating


@numba.njit(cache=True)
def _observe(es: ErrorState, ra: RuleArrays, ck: Clock, lg: Log, step: int) -> bool:
    """The energy at learning step ``step`` (after the error computations at its time,
    A9; NaN at the held update); False where it diverged (S8)."""
    if step == ck.n_steps:
        return True
    if ra.update_kind == UPDATE_HELD and step == ra.held_step:
        lg.energy[step] = np.nan
        return True
    e = energy(es.eps)
    if step == 0:
        lg.energy0[0] = e
    lg.energy[step] = e
    return np.isfinite(e) and not (lg.energy0[0] > 0 and e > ra.max_energy_ratio * lg.energy0[0])


@numba.njit(cache=True)
def run_events(cp: Compartments, en: ErrorNet, vn: ValueNet, pk: Plastic, es: ErrorState, vs: ValueState,
               w: Weights, x: Inbox, g: Inbox, bx: Boxes, ln: LinkNet, ra: RuleArrays, ck: Clock, lg: Log,
               q: EventQueue, pool: Pool) -> tuple[int, float, int, int, EventQueue, Pool]:
    """Run one phase (A9): the prediction phase until no event is left, the learning
    phase until ``t_end`` (or, at the front, until every error neuron has triggered and
    its change committed). Returns ``(status, time of the last event, the learning step
    at which it diverged or -1, the queue, the pool)`` (both may have grown)."""
    n_v = vs.v.shape[0]
    n_e = es.eps.shape[0]
    held_id = n_v + n_e
    learning = ck.mode == MODE_LEARN
    t_last = ck.learn0 if learning else ck.onset
    sample = ck.sample0
    events = 0
    front_done = False
    while q.size[0] > 0:
        if q.size[0] + ck.fan > q.time.shape[0]:
            q = grown(q)
        while pool.n_free[0] < ck.fan:
            pool = grown_pool(pool)
        t, kind, target, source, seq, data = peek(q)
        if learning:
            while sample < ck.n_steps and (t > ck.learn0 + 2.0 * sample
                                           or (t == ck.learn0 + 2.0 * sample and kind == COMMIT)):
                if not _observe(es, ra, ck, lg, sample):
                    return STATUS_DIVERGED, t_last, sample, sample, q, pool
                sample += 1
            if t > ck.t_end or t >= ck.t_stop:
                break
        else:
            events += 1
            if events > ck.max_events:
                return STATUS_STALLED, t_last, -1, sample, q, pool
        pop(q)
        t_last = t
        if kind == DELIVERY:
            _deliver(q, pool, bx, ln, t, source, seq, data, n_v)
        elif kind == COMPUTE:
            if target == held_id:
                for i in range(n_e):
                    neurons.held_update(cp, w.theta, x, es, i, ra.fixed, bx.dirty[i] == 1)
                    bx.dirty[i] = 0
                    _decide(q, cp, pk, es, bx, x, ln, ra, t, i, n_v)
                continue
            if bx.comp_time[target] == t:
                continue
            if learning and t >= ck.t_end:
                continue  # the learning phase ends after its last error computations (A9)
            if target < n_v:
                bx.comp_time[target] = t
                _value_neuron(q, pool, vn, vs, w.theta, g, bx, ln, ra, ck, lg, t, target)
            else:
                if learning and t == ck.held_time:
                    continue  # the held update replaces the error computations then
                i = target - n_v
                lo, hi = i, i + 1
                if learning:  # a ce group's softmax: its neurons compute together (predicting, each alone)
                    lo, hi = en.e_group_lo[i], en.e_group_hi[i]
                if bx.comp_time[n_v + lo] == t and target != n_v + lo:
                    continue
                for k in range(lo, hi):
                    bx.comp_time[n_v + k] = t
                k = lg.n_computes[0]
                if k < lg.computes.shape[0]:
                    lg.computes[k, 0], lg.computes[k, 1] = t, target
                    lg.n_computes[0] = k + 1
                _error_unit(q, pool, cp, en, pk, es, w.theta, x, bx, ln, ra, ck, lg, t, lo, hi, n_v)
        else:  # COMMIT
            if target == held_id + 1:
                ok = _apply_deferred(q, w, bx, ln, ra, t, source, n_v)
            else:
                ok = _commit(q, cp, pk, w, bx, ln, ra, lg, t, target - n_v, n_v)
            if not ok:
                return STATUS_DIVERGED, t_last, min(int((t - ck.learn0) // 2.0), ck.n_steps - 1), sample, q, pool
            if ck.front and bx.commits[0] == 0:
                done = True
                for i in range(n_e):
                    if ra.trigger[i] >= 0 and not bx.triggered[i]:
                        done = False
                if done:
                    front_done = True
                    break
    if learning and (front_done or q.size[0] == 0 or peek(q)[0] > ck.t_end):  # the phase is over: its last samples
        while sample < ck.n_steps:
            if not _observe(es, ra, ck, lg, sample):
                return STATUS_DIVERGED, t_last, sample, sample, q, pool
            sample += 1
    return STATUS_OK, t_last, -1, sample, q, pool


@numba.njit(cache=True)
def clamp_links(vn: ValueNet, ln: LinkNet, bx: Boxes, v: np.ndarray, which: np.ndarray, values: np.ndarray,
                q: EventQueue, t: float, tag: bool) -> None:
    """The environment clamps value neurons ``which`` to ``values`` ``[len(which), lanes]``
    at ``t``: their messages reach every receiver at once (the stimulus or the teacher,
    not a neuron's emission), with a new emission index on each link so that what is
    still in flight from before is discarded on arrival (A3); the receivers compute at
    ``t``. ``tag``: the teacher's messages are front-tagged (A8)."""
    S = ln.s_err.shape[0]
    n_v = v.shape[0]
    B = v.shape[1]
    for k in range(which.shape[0]):
        j = which[k]
        for b in range(B):
            v[j, b] = values[k, b]
        for r in range(vn.br_ptr[j], vn.br_ptr[j + 1]):
            for qq in range(vn.br_len[r]):
                s = vn.br_syn[r] + qq * vn.br_stride[r]
                bx.x_seq[s] = bx.sent[2 * s]
                bx.sent[2 * s] += 1
                bx.x_tag[s] = 1 if tag else 0
                for b in range(B):
                    bx.x_in[0, s, b] = act_scalar(vn.v_out_act[j], values[k, b])
                bx.dirty[ln.s_err[s]] = 1
                _wake(q, t, n_v + ln.s_err[s])
        e = vn.v_err[j]
        if e >= 0:
            link = 2 * S + 2 * e
            bx.v_seq[e] = bx.sent[link]
            bx.sent[link] += 1
            bx.v_tag[e] = 1 if tag else 0
            for b in range(B):
                bx.v_in[0, e, b] = values[k, b]
            _wake(q, t, n_v + e)
