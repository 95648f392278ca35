"""Plasticity at the end of a tick (clause S6): the synapses of the error neurons that learn
change by ``alpha sum_b g_b x_b``, shared parameters' changes are held until their last
trigger where the rule defers them, and a changed synapse wakes both of its ends.

A synapse's change reads only what arrived at it: the signal ``x`` it received (the
same inbox slot the error stage read) and its error neuron's ``pending`` g. Where a
parameter is shared, the changes of all its synapses meet in one entry of theta: the
one step that is not local (run on one thread, so that the sum has a fixed order).
"""

from __future__ import annotations

import numba
import numpy as np

from neurosim.engine.bundles import Compartments, ErrorRing, ErrorState, Inbox, Plastic, PlasticityLog, RuleArrays, Weights
from neurosim.engine.neurons import bias_signal, learning_signal
from neurosim.engine.observers import plasticity_row
from neurosim.engine.ring import block_member, block_size, wake_changed
from neurosim.engine.semantics import CAUSE_DEFERRED


@numba.njit(cache=True, inline="always")
def _change(w: Weights, defer_step: np.ndarray, p: int, d: float) -> None:
    """Entry ``p`` of theta changes by ``d``, now or, for a shared parameter whose
    last trigger is still to come, when its deferred sum is applied.

    Its first change in a presentation keeps its old value in ``theta_saved`` (to undo
    a diverged run) and starts ``applied`` afresh, so that neither needs a pass over all
    parameters per presentation.
    """
    if not w.saved[p]:
        w.saved[p] = 1
        w.theta_saved[p] = w.theta[p]
        w.applied[p] = d
    else:
        w.applied[p] += d
    if defer_step[p] >= 0:
        w.deferred[p] += d
    else:
        w.theta[p] += d


@numba.njit(cache=True, inline="always")
def _plasticity_rows(cp: Compartments, pk: Plastic, es: ErrorState, x: Inbox, pl: PlasticityLog, T: int, i: int,
                     alpha: float, cause: int) -> None:
    """The plasticity monitor's rows for error neuron ``i``'s changes this tick."""
    shared = cp.s_param.shape[0] > 0
    for c in range(cp.e_comp_ptr[i], cp.e_comp_ptr[i + 1]):
        if not pk.c_plastic[c]:
            continue
        for r in range(cp.fr_ptr[c], cp.fr_ptr[c + 1]):
            s0, p0, n, sl = cp.fr_syn[r], x.base[r], cp.fr_len[r], x.table[x.key[r]]
            for q in range(n):
                p = cp.s_param[s0 + q] if shared else s0 + q
                plasticity_row(pl, T, i, p, cause, alpha * learning_signal(es.pending, x.buf, c, sl, p0 + q))
        for q in range(cp.c_bias_ptr[c], cp.c_bias_ptr[c + 1]):
            plasticity_row(pl, T, i, cp.c_bias[q], cause, alpha * bias_signal(es.pending, c))


@numba.njit(cache=True)
def commit_block(cp: Compartments, pk: Plastic, es: ErrorState, w: Weights, x: Inbox, er: ErrorRing,
                 ra: RuleArrays, pl: PlasticityLog, T: int, block: int, blocks: int) -> None:
    """The end-of-tick plasticity of the error neurons of ``block`` (S6):
    ``w_s += alpha sum_b g_cb x_sb`` for every synapse ``s`` of a plastic compartment
    ``c``, ``bias += alpha sum_b g_cb``; the changed synapses wake both ends at ``T + 1``."""
    shared, s_param, alpha = cp.s_param.shape[0] > 0, cp.s_param, ra.alpha
    shares, defer_step, record = ra.shares, ra.defer_step, pl.pl.shape[0] > 0
    theta, saved, theta_saved, applied = w.theta, w.saved, w.theta_saved, w.applied
    nxt = er.ahead[1]
    count = block_size(es.learning.shape[0], block, blocks)
    for k in range(count):
        i = block_member(k, count, block, blocks, False)
        if i >= es.learning.shape[0] or not es.learning[i]:
            continue
        if record:  # the plasticity monitor, before anything changes
            _plasticity_rows(cp, pk, es, x, pl, T, i, alpha, ra.cause)
        # Where no entry is shared, neuron i's entries are its own: its first change in
        # the presentation is known per neuron, outside the synapse loops.
        first = not w.e_saved[i]
        w.e_saved[i] = 1
        for c in range(cp.e_comp_ptr[i], cp.e_comp_ptr[i + 1]):
            if not pk.c_plastic[c]:
                continue
            for r in range(cp.fr_ptr[c], cp.fr_ptr[c + 1]):
                s0, p0, n, sl = cp.fr_syn[r], x.base[r], cp.fr_len[r], x.table[x.key[r]]
                if shares:
                    for q in range(n):
                        _change(w, defer_step, s_param[s0 + q] if shared else s0 + q,
                                alpha * learning_signal(es.pending, x.buf, c, sl, p0 + q))
                elif first:
                    for q in range(n):
                        p = s_param[s0 + q] if shared else s0 + q
                        d = alpha * learning_signal(es.pending, x.buf, c, sl, p0 + q)
                        saved[p] = 1
                        theta_saved[p] = theta[p]
                        applied[p] = d
                        theta[p] += d
                else:
                    for q in range(n):
                        p = s_param[s0 + q] if shared else s0 + q
                        d = alpha * learning_signal(es.pending, x.buf, c, sl, p0 + q)
                        applied[p] += d
                        theta[p] += d
            for q in range(cp.c_bias_ptr[c], cp.c_bias_ptr[c + 1]):
                p, d = cp.c_bias[q], alpha * bias_signal(es.pending, c)
                if shares:
                    _change(w, defer_step, p, d)
                elif first:
                    saved[p] = 1
                    theta_saved[p] = theta[p]
                    applied[p] = d
                    theta[p] += d
                else:
                    applied[p] += d
                    theta[p] += d
        wake_changed(er, i, nxt)
        group = pk.e_share_group[i]
        if group >= 0 and not w.sg_marked[group]:  # the shared weights of every member changed
            w.sg_marked[group] = 1
            for m in range(pk.sg_ptr[group], pk.sg_ptr[group + 1]):
                wake_changed(er, pk.sg_members[m], nxt)


@numba.njit(cache=True)
def apply_deferred(w: Weights, er: ErrorRing, ra: RuleArrays, pl: PlasticityLog, T: int, t: int) -> bool:
    """At the end of learning step ``t``, the shared parameters whose last trigger it was
    take their accumulated change; the error neurons that read them wake. Returns
    False if a weight became non-finite."""
    finite = True
    applied = False
    for k in range(ra.defer_params.shape[0]):
        p = ra.defer_params[k]
        if ra.defer_step[p] == t:
            plasticity_row(pl, T, -1, p, CAUSE_DEFERRED, w.deferred[p])
            w.theta[p] += w.deferred[p]
            w.deferred[p] = 0.0
            applied = True
            if not np.isfinite(w.theta[p]):
                finite = False
    if applied:
        for k in range(ra.defer_wake.shape[0]):
            wake_changed(er, ra.defer_wake[k], er.ahead[1])
    return finite


@numba.njit(cache=True)
def weights_finite(learning: np.ndarray, cp: Compartments, pk: Plastic, theta: np.ndarray) -> bool:
    """Whether every weight of the error neurons that learned this tick is finite; clears ``learning``."""
    shared = cp.s_param.shape[0] > 0
    finite = True
    for i in range(learning.shape[0]):
        if learning[i]:
            learning[i] = 0
            for s in range(pk.in_ptr[cp.e_comp_ptr[i]], pk.in_ptr[cp.e_comp_ptr[i + 1]]):
                if not np.isfinite(theta[cp.s_param[s] if shared else s]):
                    finite = False
    return finite
