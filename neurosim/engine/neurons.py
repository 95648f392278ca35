"""The neuron updates: what an error neuron and a value neuron compute (clauses S2, S3, S6).

Each update reads only the neuron's own state (rows of
:class:`~neurosim.engine.bundles.ErrorState`, of ``v``/``vhat``) and its inbox, and
writes only its own state. It knows nothing of how messages travel: it reads its
inputs through :class:`~neurosim.engine.bundles.Inbox` views, where the value of run
``r`` of synapses, position ``q``, lane ``b`` is ``buf[table[key[r]], base[r] + q, b]``. The ring transport (:mod:`neurosim.engine.ring`) passes its message
lines with the slot table of the tick (``key`` the link's delay); an event transport
passes per-synapse inboxes (one slot, ``base`` the synapse). Emitting (writing a line,
waking receivers) belongs to the transport: the updates report what changed.

The math is scalar loops over plain arrays, with no numpy broadcasting, so that the
same functions could compile as device functions of a GPU backend
(``docs/architecture.md``).
"""

from __future__ import annotations

import numba
import numpy as np

from neurosim.activations import act_scalar, dact_scalar
from neurosim.compile.netlist import KIND_MAX, KIND_MEAN, KIND_PRODUCT, KIND_SINGLE
from neurosim.engine.bundles import Compartments, ErrorState, Inbox
from neurosim.engine.semantics import UPDATE_AT_TRIGGER, UPDATE_EVERY_STEP

FEW_LANES = 2  # up to this many samples, sums run lane by lane


@numba.njit(cache=True, inline="always")
def dot(theta: np.ndarray, s0: int, step: int, buf: np.ndarray, slot: int, n0: int, b: int, n: int) -> float:
    """``sum_q theta[s0 + q step] * buf[slot, n0 + q, b]`` over a run of ``n`` synapses.

    Four partial sums in a fixed pattern (q mod 4), added at the end, so that the
    processor overlaps four multiply-adds instead of waiting on one chain; the order is
    fixed, so the result is the same bits on every run and thread count.
    """
    a0 = a1 = a2 = a3 = 0.0
    m = n - n % 4
    for q in range(0, m, 4):
        a0 += theta[s0 + q * step] * buf[slot, n0 + q, b]
        a1 += theta[s0 + (q + 1) * step] * buf[slot, n0 + q + 1, b]
        a2 += theta[s0 + (q + 2) * step] * buf[slot, n0 + q + 2, b]
        a3 += theta[s0 + (q + 3) * step] * buf[slot, n0 + q + 3, b]
    for q in range(m, n):
        a0 += theta[s0 + q * step] * buf[slot, n0 + q, b]
    return (a0 + a1) + (a2 + a3)


@numba.njit(cache=True)
def _pair_sum(c_act: np.ndarray, a: np.ndarray, c0: int, c1: int, b: int) -> float:
    """``sum_k f(a_{c0+2k}) f(a_{c0+2k+1})`` over the compartments ``c0..c1``."""
    s = 0.0
    for c in range(c0, c1, 2):
        s += act_scalar(c_act[c], a[c, b]) * act_scalar(c_act[c + 1], a[c + 1, b])
    return s


@numba.njit(cache=True)
def combine(kind: int, c_act: np.ndarray, a: np.ndarray, c0: int, c1: int, b: int) -> float:
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
def local_derivative(kind: int, c_act: np.ndarray, a: np.ndarray, c0: int, c1: int, c: int, b: int) -> float:
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
def weighted_inputs(cp: Compartments, theta: np.ndarray, x: Inbox, a: np.ndarray, i: int) -> None:
    """Error neuron ``i``'s compartments' weighted inputs ``a_c = sum bias + sum_s w_s x_s``,
    each synapse's ``x`` read from the inbox."""
    B = a.shape[1]
    shared, s_param, buf = cp.s_param.shape[0] > 0, cp.s_param, x.buf
    for c in range(cp.e_comp_ptr[i], cp.e_comp_ptr[i + 1]):
        bias = 0.0
        for q in range(cp.c_bias_ptr[c], cp.c_bias_ptr[c + 1]):
            bias += theta[cp.c_bias[q]]
        for b in range(B):
            a[c, b] = bias
        for r in range(cp.fr_ptr[c], cp.fr_ptr[c + 1]):
            s0, p0, n, sl = cp.fr_syn[r], x.base[r], cp.fr_len[r], x.table[x.key[r]]
            if B <= FEW_LANES:  # lanes outside: the sum stays in a register
                for b in range(B):
                    acc = 0.0
                    if shared:
                        for q in range(n):
                            acc += theta[s_param[s0 + q]] * buf[sl, p0 + q, b]
                    else:
                        acc = dot(theta, s0, 1, buf, sl, p0, b, n)
                    a[c, b] += acc
            else:  # lanes inside: contiguous lanes
                for q in range(n):
                    w = theta[s_param[s0 + q]] if shared else theta[s0 + q]
                    for b in range(B):
                        a[c, b] += w * buf[sl, p0 + q, b]


@numba.njit(cache=True, inline="always")
def softmax_at(mu: np.ndarray, i: int, lo: int, hi: int, b: int) -> float:
    """``softmax(mu)_i`` over the ``ce`` group ``lo..hi`` in lane ``b`` (the lateral
    exchange of a ``ce`` output's error neurons), shifted by the maximum."""
    m = mu[lo, b]
    for k in range(lo + 1, hi):
        m = max(m, mu[k, b])
    z = 0.0
    for k in range(lo, hi):
        z += np.exp(mu[k, b] - m)
    return np.exp(mu[i, b] - m) / z


@numba.njit(cache=True, inline="always")
def phi(feedback_detector: bool, spent: int, mu: float, mu0: float, last_change: int, t: int, t_d: int) -> bool:
    """Whether an error neuron whose error just changed at learning step ``t`` fires.

    Song et al.'s phi (2020, Algorithm 2): its error did not change in the ``t_d`` steps
    before (``last_change <= t - t_d``). The feedback detector: it has not fired in this
    presentation and its prediction has not moved since learning began (``mu == mu0``).
    """
    if feedback_detector:  # once, and only while the prediction has not moved
        return not spent and mu == mu0
    return last_change <= t - t_d


@numba.njit(cache=True, inline="always")
def belief_step(v: float, eps: float, feedback: float, slope: float, gamma: float) -> float:
    """A value neuron's inference step: ``v + gamma (-eps + act'(v) sum_s w_s g_s)``, with
    ``eps`` from its own error neuron, ``feedback = sum_s w_s g_s`` over the ``g`` its
    outgoing synapses received, and ``slope = act'(v)`` (``act'(vhat)`` with fixed
    predictions)."""
    fb = slope * feedback
    return v + gamma * (-eps + fb)


@numba.njit(cache=True, inline="always")
def scheduled(update_kind: int, trigger: np.ndarray, learning: bool, i: int, t: int) -> bool:
    """Whether the rule's schedule names error neuron ``i`` at learning step ``t`` (IL's
    ``t_c``, Z-IL's ``t = l``, every step for iPC): the rule's control signal, not a message."""
    if not learning:
        return False
    return update_kind == UPDATE_EVERY_STEP or (update_kind == UPDATE_AT_TRIGGER and trigger[i] == t)


@numba.njit(cache=True, inline="always")
def held_update(cp: Compartments, theta: np.ndarray, x: Inbox, es: ErrorState, i: int, fixed: bool,
                inputs_changed: bool) -> None:
    """Strict PC's and FixedPred's update at the end of relaxation: error neuron ``i``
    learns with its errors held from the previous state instead of computing.

    FixedPred learns from its held ``g`` (the Jacobian at the forward pass). Strict PC
    pulls the held ``eps(n-1)`` back through the Jacobian at state ``n`` (Torch2PC's
    ``SetPCGrads``): the neuron recomputes its compartments' weighted inputs ``a(n)``
    from the signals its synapses receive now (where one arrived or changed, as in S4)
    and learns with ``g = dmu/da(a(n)) * eps(n-1)`` (Rosenbaum 2022, Algorithm "PC")."""
    if not fixed and inputs_changed:
        weighted_inputs(cp, theta, x, es.a, i)
    es.learning[i] = 1
    c0, c1 = cp.e_comp_ptr[i], cp.e_comp_ptr[i + 1]
    for c in range(c0, c1):
        for b in range(es.g.shape[1]):
            if fixed:
                es.pending[c, b] = es.g[c, b]
            else:
                es.pending[c, b] = local_derivative(cp.e_kind[i], cp.c_act, es.a, c0, c1, c, b) * es.eps[i, b]


@numba.njit(cache=True)
def learning_signal(pending: np.ndarray, xbuf: np.ndarray, c: int, sl: int, pre: int) -> float:
    """``sum_b g_cb x_b``: what a synapse of compartment ``c`` learns from (its error
    neuron's pending ``g`` and the signal ``xbuf[sl, pre]`` it received, ``xbuf`` the
    buffer of its inbox)."""
    acc = 0.0
    for b in range(pending.shape[1]):
        acc += pending[c, b] * xbuf[sl, pre, b]
    return acc


@numba.njit(cache=True)
def bias_signal(pending: np.ndarray, c: int) -> float:
    """``sum_b g_cb``: what a bias of compartment ``c`` learns from."""
    acc = 0.0
    for b in range(pending.shape[1]):
        acc += pending[c, b]
    return acc
