"""The small bundles of arrays the kernels take (named tuples of arrays and plain values).

Each kernel takes only the bundles holding what it reads, so that numba types a few
short tuples per function instead of one bundle of everything (the cold start), and
so that each bundle belongs to one seam of the engine (``docs/architecture.md``):

=====================  =========================================================
netlist (read-only)    :class:`Compartments`, :class:`ErrorNet`, :class:`ValueNet`,
                       :class:`Plastic`
neurons' own state     :class:`ErrorState`, :class:`ValueState`
parameters             :class:`Weights`
inboxes                :class:`Inbox` (a view the transport fills)
ring transport         :class:`ErrorRing`, :class:`ValueRing`
policy and schedule    :class:`RuleArrays` (built by :mod:`neurosim.engine.policy`),
                       :class:`Schedule`
observers              :class:`Record`, :class:`Events`, :class:`PlasticityLog`,
                       :class:`Traces`
=====================  =========================================================

Settings are values, not compile-time constants, so that a sweep over rule settings
never recompiles. :class:`NetArrays`, :class:`StateArrays` and :class:`Recorders` are
the Python-side containers the bundles are cut from.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Inbox(NamedTuple):
    """What a neuron may read on one kind of input link: the value of run ``r`` (of
    synapses, or of a neuron's own link), position ``q``, lane ``b`` is
    ``buf[table[key[r]], base[r] + q, b]``.

    The ring transport passes a message line as ``buf``, the slot table of the tick as
    ``table``, the link's delay as ``key`` and the sender as ``base``; an event
    transport passes a per-link inbox ``buf[None]`` laid out in the order of the runs
    (synapses by target for the signals into error neurons, by source for the feedback
    into value neurons, so that a run is contiguous), ``table = [0]``, ``key = 0`` and
    the run's first link as ``base``.
    """

    buf: np.ndarray
    table: np.ndarray
    key: np.ndarray
    base: np.ndarray


class Compartments(NamedTuple):
    """Error neurons' compartments and the synapses arriving at them, by run (read-only)."""

    e_comp_ptr: np.ndarray
    e_kind: np.ndarray
    c_act: np.ndarray
    c_bias_ptr: np.ndarray
    c_bias: np.ndarray
    fr_ptr: np.ndarray
    fr_syn: np.ndarray
    fr_len: np.ndarray
    s_param: np.ndarray


class ErrorNet(NamedTuple):
    """Per error neuron: its loss, whether it learns, its ``ce`` group ``lo..hi``."""

    e_loss: np.ndarray
    e_plastic: np.ndarray
    e_group_lo: np.ndarray
    e_group_hi: np.ndarray


class ValueNet(NamedTuple):
    """Per value neuron: role, output activation, own error neuron, outgoing synapse runs."""

    v_role: np.ndarray
    v_out_act: np.ndarray
    v_err: np.ndarray
    br_ptr: np.ndarray
    br_syn: np.ndarray
    br_stride: np.ndarray
    br_len: np.ndarray
    s_param: np.ndarray


class Plastic(NamedTuple):
    """What plasticity reads of the netlist besides :class:`Compartments`."""

    c_plastic: np.ndarray
    in_ptr: np.ndarray
    e_share_group: np.ndarray
    sg_ptr: np.ndarray
    sg_members: np.ndarray


class ErrorState(NamedTuple):
    """Error neurons' own state (rows: neurons or compartments; columns: lanes); see
    :class:`StateArrays`."""

    a: np.ndarray
    mu: np.ndarray
    eps: np.ndarray
    g: np.ndarray
    last_change: np.ndarray
    mu0: np.ndarray
    spent: np.ndarray
    pending: np.ndarray
    fired: np.ndarray
    learning: np.ndarray


class ValueState(NamedTuple):
    """Value neurons' own state: belief ``v``, ``vhat`` and the scratch row ``v_next``."""

    v: np.ndarray
    vhat: np.ndarray
    v_next: np.ndarray


class Weights(NamedTuple):
    """``theta`` and the bookkeeping of its changes in a presentation (see :class:`StateArrays`)."""

    theta: np.ndarray
    theta_saved: np.ndarray
    saved: np.ndarray
    e_saved: np.ndarray
    applied: np.ndarray
    deferred: np.ndarray
    sg_marked: np.ndarray


class ErrorRing(NamedTuple):
    """The ring transport as the error neurons see it: their lines, the wake rings they
    read and write, and where their messages go (wake groups by delay)."""

    e_line: np.ndarray
    mu_line: np.ndarray
    g_line: np.ndarray
    err_wake_in: np.ndarray
    err_wake_own: np.ndarray
    val_wake: np.ndarray
    vg_marked: np.ndarray
    own_delay: np.ndarray
    e_value: np.ndarray
    e_vg_ptr: np.ndarray
    e_vg: np.ndarray
    e_vg_delay: np.ndarray
    vg_ptr: np.ndarray
    vg_members: np.ndarray
    back: np.ndarray
    ahead: np.ndarray


class ValueRing(NamedTuple):
    """The ring transport as the value neurons see it."""

    v_line: np.ndarray
    x_line: np.ndarray
    val_wake: np.ndarray
    err_wake_own: np.ndarray
    err_wake_in: np.ndarray
    eg_marked: np.ndarray
    own_delay: np.ndarray
    v_eg_ptr: np.ndarray
    v_eg: np.ndarray
    v_eg_delay: np.ndarray
    eg_ptr: np.ndarray
    eg_members: np.ndarray
    back: np.ndarray
    ahead: np.ndarray


class RuleArrays(NamedTuple):
    """A learning rule as data (built by :mod:`neurosim.engine.policy`; plain values).

    ``fixed`` (fixed predictions), ``gamma`` (inference step), ``alpha`` (learning
    rate), ``update_kind`` (``UPDATE_*``) and its arguments ``trigger`` (per error
    neuron, learning step of its update), ``t_d`` (phi's window), ``detector``
    (``DETECTOR_*``), ``shares`` (some learnable entry of theta is read by several
    synapses or biases), ``cause`` (``CAUSE_*``, for the plasticity timeline),
    ``defer_step`` (per entry of theta: the learning step at whose end its accumulated
    changes apply, -1: at once; empty where nothing is shared), ``defer_params`` (the
    entries with a ``defer_step``), ``defer_wake`` (the error neurons that read them),
    ``held_step`` (learning step of the held-error update), ``max_energy_ratio`` (S8).
    """

    fixed: bool
    gamma: float
    alpha: float
    update_kind: int
    trigger: np.ndarray
    t_d: int
    detector: int
    shares: bool
    cause: int
    defer_step: np.ndarray
    defer_params: np.ndarray
    defer_wake: np.ndarray
    held_step: int
    max_energy_ratio: float


class Schedule(NamedTuple):
    """One kernel call: ``mode`` (``MODE_*``), ``tick0`` (first tick), ``learn_tick0``
    (tick of learning step 0), ``n_ticks``, ``last_error_only`` (the final tick runs
    only the error stage), ``force_tick`` (tick at which every error neuron emits:
    stimulus onset), ``stop_when_quiet``, ``all_active`` (compute every neuron every
    tick: a check of S4), ``reverse`` (visit neurons in reverse order: a check of S3),
    ``blocks`` (contiguous blocks of neurons per stage, run in parallel; the result does
    not depend on it)."""

    mode: int
    tick0: int
    learn_tick0: int
    n_ticks: int
    last_error_only: bool
    force_tick: int
    stop_when_quiet: bool
    all_active: bool
    reverse: bool
    blocks: int


class Record(NamedTuple):
    """Always recorded: energy per tick, phi's firings ``(step, error neuron, lane)`` and
    their count, the errors at each neuron's trigger, the reference energy ``E(0)``."""

    energy: np.ndarray
    firings: np.ndarray
    n_firings: np.ndarray
    eps_at_trigger: np.ndarray
    energy0: np.ndarray


class Events(NamedTuple):
    """The event monitor's buffer: rows ``(tick, MSG_*, neuron)``, ``ev_n`` written;
    ``reserve`` the most rows one tick can add (events, plasticity rows)."""

    ev: np.ndarray
    ev_n: np.ndarray
    reserve: np.ndarray


class PlasticityLog(NamedTuple):
    """The plasticity monitor's buffer: rows ``(tick, error neuron or -1, entry, CAUSE_*)``
    with the change in ``pl_delta``."""

    pl: np.ndarray
    pl_delta: np.ndarray
    pl_n: np.ndarray


class Traces(NamedTuple):
    """The trace monitor's buffer: per tick, ``v`` of ``tr_v_idx``, ``mu``/``eps``/phi of
    ``tr_e_idx``, the energy."""

    tr_v_idx: np.ndarray
    tr_e_idx: np.ndarray
    tr_tick: np.ndarray
    tr_v: np.ndarray
    tr_mu: np.ndarray
    tr_eps: np.ndarray
    tr_phi: np.ndarray
    tr_energy: np.ndarray
    tr_n: np.ndarray


class NetArrays(NamedTuple):
    """The netlist's arrays the kernels read (see :class:`neurosim.compile.Netlist`)."""

    v_role: np.ndarray
    v_out_act: np.ndarray
    v_err: np.ndarray
    e_value: np.ndarray
    e_kind: np.ndarray
    e_comp_ptr: np.ndarray
    e_plastic: np.ndarray
    e_share_group: np.ndarray
    sg_ptr: np.ndarray
    sg_members: np.ndarray
    e_loss: np.ndarray
    e_group_lo: np.ndarray
    e_group_hi: np.ndarray
    c_err: np.ndarray
    c_act: np.ndarray
    c_plastic: np.ndarray
    c_bias_ptr: np.ndarray
    c_bias: np.ndarray
    s_param: np.ndarray
    in_ptr: np.ndarray
    fr_ptr: np.ndarray
    fr_syn: np.ndarray
    fr_pre: np.ndarray
    fr_len: np.ndarray
    fr_delay: np.ndarray
    br_ptr: np.ndarray
    br_syn: np.ndarray
    br_stride: np.ndarray
    br_post: np.ndarray
    br_len: np.ndarray
    br_delay: np.ndarray
    own_delay: np.ndarray
    vg_ptr: np.ndarray
    vg_members: np.ndarray
    e_vg_ptr: np.ndarray
    e_vg: np.ndarray
    e_vg_delay: np.ndarray
    eg_ptr: np.ndarray
    eg_members: np.ndarray
    v_eg_ptr: np.ndarray
    v_eg: np.ndarray
    v_eg_delay: np.ndarray


class StateArrays(NamedTuple):
    """Every actor's own state, the message lines and the wake rings (Python side).

    Own state (rows are neurons, columns are the samples of the mini-batch, "lanes"):
    value neurons ``v`` (belief), ``vhat`` (belief at the end of the prediction
    phase); error neurons ``mu`` (prediction), ``eps`` (error), ``last_change``
    (tick of the last change of ``eps``, for phi), ``mu0`` (prediction when learning
    began) and ``spent`` (already fired in this presentation), for the feedback
    detector; per compartment ``a`` (weighted input) and ``g`` (error times the
    compartment's local derivative ``dmu/da``, sent to the parents).

    Message lines, ``[slot, neuron, lane]`` with ``slot = tick % D``: what a neuron
    emitted, as of that tick. ``v_line`` (value neuron -> own error neuron: ``v``),
    ``x_line`` (value neuron -> synapses to its children: ``v`` or ``act(v)``),
    ``mu_line`` and ``e_line`` (error neuron -> own value neuron: ``mu``, ``eps``),
    ``g_line`` (error neuron -> synapses to its parents: each compartment's ``g``). Wake rings
    ``[slot, neuron]``, 1 when a message arrives then: ``err_wake_in`` (over a synapse,
    or a synapse changed: the weighted input must be recomputed), ``err_wake_own``
    (from the neuron's own value neuron), ``val_wake``; ``eg_marked``/``vg_marked``
    ``[slot, group]``: the wake group is already woken then.

    Plasticity: ``theta`` (parameters, then constants), ``saved`` (entries of theta
    that changed in this presentation; ``e_saved`` per error neuron, where no entry is
    shared), ``theta_saved`` (their values before it, to undo a diverged run),
    ``applied`` (sum of the changes made during the presentation, valid where
    ``saved``), ``deferred`` (changes of shared parameters held until their last
    trigger; empty where nothing is shared), ``pending`` (per compartment and lane, the
    ``g`` it learns with at the end of this tick, 0 where it does not), ``learning``
    (error neurons that learn this tick), ``sg_marked`` (share groups already woken by
    this tick's plasticity), ``fired`` (phi's firings this tick). ``v_next`` is each
    value neuron's scratch row for its new belief; ``back[d]``/``ahead[d]`` hold the
    slots of ticks ``T - d`` and ``T + d`` during tick ``T``.
    """

    v: np.ndarray
    vhat: np.ndarray
    a: np.ndarray
    mu: np.ndarray
    eps: np.ndarray
    g: np.ndarray
    last_change: np.ndarray
    mu0: np.ndarray
    spent: np.ndarray
    v_line: np.ndarray
    x_line: np.ndarray
    mu_line: np.ndarray
    e_line: np.ndarray
    g_line: np.ndarray
    err_wake_in: np.ndarray
    err_wake_own: np.ndarray
    val_wake: np.ndarray
    eg_marked: np.ndarray
    vg_marked: np.ndarray
    theta: np.ndarray
    theta_saved: np.ndarray
    saved: np.ndarray
    e_saved: np.ndarray
    applied: np.ndarray
    deferred: np.ndarray
    pending: np.ndarray
    learning: np.ndarray
    sg_marked: np.ndarray
    fired: np.ndarray
    v_next: np.ndarray
    back: np.ndarray
    ahead: np.ndarray


class Recorders(NamedTuple):
    """Every observer buffer of a chunk (Python side; cut into :class:`Record`,
    :class:`Events`, :class:`PlasticityLog` and :class:`Traces` for the kernel). The
    monitors (:mod:`neurosim.monitors`) are off when their buffer has no rows; ``*_n``
    count the rows written; a chunk stops early (STATUS_FLUSH) when a tick might not fit."""

    energy: np.ndarray
    firings: np.ndarray
    n_firings: np.ndarray
    eps_at_trigger: np.ndarray
    energy0: np.ndarray
    ev: np.ndarray
    ev_n: np.ndarray
    pl: np.ndarray
    pl_delta: np.ndarray
    pl_n: np.ndarray
    tr_v_idx: np.ndarray
    tr_e_idx: np.ndarray
    tr_tick: np.ndarray
    tr_v: np.ndarray
    tr_mu: np.ndarray
    tr_eps: np.ndarray
    tr_phi: np.ndarray
    tr_energy: np.ndarray
    tr_n: np.ndarray
    reserve: np.ndarray


def cut(cls: type, *sources: object, **given: object) -> NamedTuple:
    """Bundle ``cls`` with each field taken from ``given`` or the first source that has it."""
    values = {}
    for name in cls._fields:
        if name in given:
            values[name] = given[name]
        else:
            values[name] = next(getattr(s, name) for s in sources if hasattr(s, name))
    return cls(**values)
