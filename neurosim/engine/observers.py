"""Observers: the energy, divergence's check and the monitors' rows (nothing a neuron reads).

They run serially in neuron order, so that what they record does not depend on the
thread count (clause S8 and the monitors of :mod:`neurosim.monitors`).
"""

from __future__ import annotations

import numba
import numpy as np

from neurosim.engine.bundles import Events, PlasticityLog, Record, Traces
from neurosim.engine.semantics import STATUS_BUFFER_FULL, STATUS_OK


@numba.njit(cache=True, inline="always")
def event(ev: Events, T: int, kind: int, neuron: int) -> None:
    """The event monitor: neuron ``neuron`` emitted a message of kind ``kind`` at tick ``T``."""
    k = ev.ev_n[0]
    if k < ev.ev.shape[0]:
        ev.ev[k, 0] = T
        ev.ev[k, 1] = kind
        ev.ev[k, 2] = neuron
        ev.ev_n[0] = k + 1


@numba.njit(cache=True, inline="always")
def plasticity_row(pl: PlasticityLog, T: int, neuron: int, p: int, cause: int, d: float) -> None:
    """The plasticity monitor: entry ``p`` of theta changes by ``d`` at tick ``T``."""
    k = pl.pl_n[0]
    if k < pl.pl.shape[0]:
        pl.pl[k, 0] = T
        pl.pl[k, 1] = neuron
        pl.pl[k, 2] = p
        pl.pl[k, 3] = cause
        pl.pl_delta[k] = d
        pl.pl_n[0] = k + 1


@numba.njit(cache=True)
def monitors_full(ev: Events, pl: PlasticityLog, tr: Traces) -> bool:
    """Whether one more tick might not fit in a monitor's buffer (then the chunk stops
    and Python flushes the buffers)."""
    if ev.ev.shape[0] > 0 and ev.ev_n[0] + ev.reserve[0] > ev.ev.shape[0]:
        return True
    if pl.pl.shape[0] > 0 and pl.pl_n[0] + ev.reserve[1] > pl.pl.shape[0]:
        return True
    return tr.tr_tick.shape[0] > 0 and tr.tr_n[0] >= tr.tr_tick.shape[0]


@numba.njit(cache=True)
def energy(eps: np.ndarray) -> float:
    """``1/2 sum eps^2`` over every error neuron and lane, in a fixed order (an observer's quantity)."""
    e = 0.0
    for i in range(eps.shape[0]):
        for b in range(eps.shape[1]):
            e += 0.5 * eps[i, b] * eps[i, b]
    return e


@numba.njit(cache=True)
def trace_errors(mu: np.ndarray, eps: np.ndarray, fired: np.ndarray, tr: Traces, T: int) -> None:
    """The trace monitor, after the error stage: ``mu``, ``eps``, phi's firing and the energy."""
    k = tr.tr_n[0]
    if k >= tr.tr_tick.shape[0]:
        return
    tr.tr_tick[k] = T
    for q in range(tr.tr_e_idx.shape[0]):
        i = tr.tr_e_idx[q]
        for b in range(eps.shape[1]):
            tr.tr_mu[k, q, b] = mu[i, b]
            tr.tr_eps[k, q, b] = eps[i, b]
            tr.tr_phi[k, q, b] = fired[i, b]
    tr.tr_energy[k] = energy(eps)


@numba.njit(cache=True)
def trace_values(v: np.ndarray, tr: Traces) -> None:
    """The trace monitor, at the end of the tick: the beliefs ``v``; the row is complete."""
    k = tr.tr_n[0]
    if k >= tr.tr_tick.shape[0]:
        return
    for q in range(tr.tr_v_idx.shape[0]):
        j = tr.tr_v_idx[q]
        for b in range(v.shape[1]):
            tr.tr_v[k, q, b] = v[j, b]
    tr.tr_n[0] = k + 1


@numba.njit(cache=True)
def record_firings(fired: np.ndarray, rec: Record, t: int) -> int:
    """Copy this tick's phi firings into the record, in neuron then lane order (serial)."""
    status = STATUS_OK
    for i in range(fired.shape[0]):
        for b in range(fired.shape[1]):
            if fired[i, b]:
                fired[i, b] = 0
                n = rec.n_firings[0]
                if n < rec.firings.shape[0]:
                    rec.firings[n, 0] = t
                    rec.firings[n, 1] = i
                    rec.firings[n, 2] = b
                    rec.n_firings[0] = n + 1
                else:
                    status = STATUS_BUFFER_FULL
    return status
