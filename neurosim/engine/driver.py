"""The driver: the order of the stages of a tick (clauses S1, S6-S8), written once.

:func:`run_ticks` and :func:`run_ticks_parallel` are two compilations of the one
definition below: each stage loops over ``blocks`` blocks of neurons with
``numba.prange``, which the serial instance (``parallel=False``) runs as a plain loop
(``blocks = 1``) and the parallel instance on numba's thread pool. They are built at
module level, not by a factory closing over other compiled functions, so that numba
caches both on disk (a closure over dispatchers misses the cache in every new
process); each instance compiles only when a run uses it, so a serial run never
compiles or starts the thread pool.

One tick ``T``: the slot tables and carried error lines (:func:`ring.begin_tick`); the
error stage, or Strict PC's/FixedPred's held update at its step; the observers after
the errors (traces, phi's record, the energy, divergence: S8); the value stage (not
after the last error stage of a rule that ends there); the plasticity of the error
neurons that learn (S6; on one thread where parameters are shared); the end of the
tick (deferred sums, non-finite weights, quiescence: S7, S8).
"""

from __future__ import annotations

import types

import numba
import numpy as np

from neurosim.engine.bundles import (
    Compartments,
    ErrorNet,
    ErrorRing,
    ErrorState,
    Events,
    Inbox,
    Plastic,
    PlasticityLog,
    Record,
    RuleArrays,
    Schedule,
    Traces,
    ValueNet,
    ValueRing,
    ValueState,
    Weights,
)
from neurosim.engine.observers import energy, monitors_full, record_firings, trace_errors, trace_values
from neurosim.engine.plasticity import apply_deferred, commit_block, weights_finite
from neurosim.engine.ring import begin_tick, carry_values, clear, error_block, held_stage, quiet, value_block
from neurosim.engine.semantics import (
    MODE_LEARN,
    STATUS_DIVERGED,
    STATUS_FLUSH,
    STATUS_OK,
    STATUS_QUIET,
    UPDATE_HELD,
    UPDATE_PHI,
)


@numba.njit(cache=True)
def _any(flags: np.ndarray) -> bool:
    for k in range(flags.shape[0]):
        if flags[k]:
            return True
    return False


@numba.njit(cache=True)
def _after_errors(es: ErrorState, vr: ValueRing, ra: RuleArrays, sch: Schedule, rec: Record, tr: Traces, T: int,
                  step: int, held: bool) -> int:
    """The observers after the error stage, in neuron order: traces, phi's record, the
    energy, divergence (S8). Returns STATUS_DIVERGED, STATUS_BUFFER_FULL or STATUS_OK."""
    clear(vr.eg_marked, vr.back[0])  # this slot's arrivals at error neurons are consumed
    trace_errors(es.mu, es.eps, es.fired, tr, T)
    if sch.mode != MODE_LEARN or held:
        return STATUS_OK
    t = T - sch.learn_tick0
    status = STATUS_OK
    if ra.update_kind == UPDATE_PHI:
        status = record_firings(es.fired, rec, t)
    e = energy(es.eps)
    if t == 0:
        rec.energy0[0] = e
    rec.energy[step] = e
    if not np.isfinite(e) or (rec.energy0[0] > 0 and e > ra.max_energy_ratio * rec.energy0[0]):
        return STATUS_DIVERGED
    return status


@numba.njit(cache=True)
def _end_tick(cp: Compartments, pk: Plastic, es: ErrorState, vs: ValueState, w: Weights, er: ErrorRing,
              ra: RuleArrays, sch: Schedule, pl: PlasticityLog, tr: Traces, T: int) -> int:
    """After the plasticity: shared parameters due now take their deferred change; a
    non-finite weight means divergence (S8); in the prediction phase, no message in
    flight means quiescence (S7)."""
    clear(er.vg_marked, er.back[0])  # this slot's arrivals at value neurons are consumed
    for g in range(w.sg_marked.shape[0]):
        w.sg_marked[g] = 0
    finite = weights_finite(es.learning, cp, pk, w.theta)
    if sch.mode == MODE_LEARN and ra.defer_params.shape[0] > 0:
        finite = apply_deferred(w, er, ra, pl, T, T - sch.learn_tick0) and finite
    trace_values(vs.v, tr)
    if not finite:
        return STATUS_DIVERGED
    if sch.stop_when_quiet and quiet(er):
        return STATUS_QUIET
    return STATUS_OK


def _run_ticks(cp: Compartments, en: ErrorNet, vn: ValueNet, pk: Plastic, es: ErrorState, vs: ValueState,
               w: Weights, x: Inbox, own: Inbox, g: Inbox, mu_in: Inbox, e_in: Inbox, er: ErrorRing,
               vr: ValueRing, ra: RuleArrays, sch: Schedule, rec: Record, ev: Events, pl: PlasticityLog,
               tr: Traces) -> tuple[int, int]:
    """Run ``sch.n_ticks`` ticks from ``sch.tick0``; return ``(status, ticks_done)``.

    ``status`` is STATUS_OK, STATUS_QUIET (prediction phase reached quiescence),
    STATUS_DIVERGED (the last tick done diverged), STATUS_BUFFER_FULL, or
    STATUS_FLUSH (a monitor buffer must be flushed before the next tick).
    """
    status = STATUS_OK
    learning = sch.mode == MODE_LEARN
    blocks = sch.blocks
    commit_blocks = 1 if ra.shares else blocks  # shared parameters' changes meet: one fixed order
    for step in range(sch.n_ticks):
        if monitors_full(ev, pl, tr):
            return STATUS_FLUSH, step
        T = sch.tick0 + step
        begin_tick(er, T)
        held = learning and ra.update_kind == UPDATE_HELD and T - sch.learn_tick0 == ra.held_step
        if held:
            held_stage(cp, w.theta, x, es, er, ra.fixed, sch.all_active)
            rec.energy[step] = np.nan
        else:
            for c in numba.prange(blocks):
                error_block(cp, en, es, w.theta, x, own, er, ra, sch, ev, rec, T, c, blocks)
        code = _after_errors(es, vr, ra, sch, rec, tr, T, step, held)
        if code == STATUS_DIVERGED:
            return code, step + 1
        status = code if code != STATUS_OK else status
        carry_values(vr)
        if sch.last_error_only and step == sch.n_ticks - 1:
            clear(vr.val_wake, vr.back[0])
        else:
            for c in numba.prange(blocks):
                value_block(vn, vs, w.theta, g, mu_in, e_in, vr, ra, sch, ev, T, c, blocks)
        if _any(es.learning):
            for c in numba.prange(commit_blocks):
                commit_block(cp, pk, es, w, x, er, ra, pl, T, c, commit_blocks)
        code = _end_tick(cp, pk, es, vs, w, er, ra, sch, pl, tr, T)
        if code != STATUS_OK:
            return code, step + 1
    return status, sch.n_ticks


def _instance(f: types.FunctionType, name: str) -> types.FunctionType:
    """A copy of ``f`` under another name: numba names its cache files after the
    function's qualified name, so that two compilations of one definition (serial and
    parallel) keep separate caches."""
    copy = types.FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
    copy.__qualname__ = name
    copy.__doc__ = f.__doc__
    copy.__module__ = f.__module__
    return copy


run_ticks = numba.njit(cache=True)(_instance(_run_ticks, "run_ticks"))
run_ticks_parallel = numba.njit(cache=True, parallel=True)(_instance(_run_ticks, "run_ticks_parallel"))
