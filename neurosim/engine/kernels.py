"""Array bundles passed to the numba kernels.

The kernels take three named tuples of arrays, so that their signatures stay
readable and a sweep over rule settings never recompiles (settings are values, not
constants): :class:`NetArrays` (the compiled netlist, read-only), :class:`StateArrays`
(every neuron's own state plus the message lines and wake rings) and
:class:`Policy` (the learning rule and the schedule of this chunk).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

MODE_PREDICT, MODE_LEARN = 0, 1
UPDATE_NONE, UPDATE_AT_TRIGGER, UPDATE_PHI, UPDATE_HELD = 0, 1, 2, 3
STATUS_OK, STATUS_DIVERGED, STATUS_QUIET, STATUS_BUFFER_FULL, STATUS_FLUSH = 0, 1, 2, 3, 4
MSG_VALUE, MSG_ERROR, MSG_FEEDBACK = 0, 1, 2
CAUSE_SCHEDULE, CAUSE_PHI, CAUSE_RELAXED, CAUSE_DEFERRED = 0, 1, 2, 3
DETECTOR_SONG, DETECTOR_FEEDBACK = 0, 1


class NetArrays(NamedTuple):
    """The netlist's arrays (see :class:`neurosim.compile.Netlist`)."""

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
    """Every actor's own state, the message lines and the wake rings.

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
    shared), ``theta_saved`` (their values before it, to
    undo a diverged run), ``applied`` (sum of the changes made during the presentation,
    valid where ``saved``), ``deferred`` (changes of shared parameters held until their
    last trigger; empty where nothing is shared), ``pending`` (per compartment and lane, the ``g`` it learns with at
    the end of this tick, 0 where it does not), ``learning`` (error neurons that learn
    this tick), ``sg_marked`` (share groups already woken by this tick's plasticity),
    ``fired`` (phi's firings this tick). ``v_next`` is each value
    neuron's scratch row for its new belief; ``back[d]``/``ahead[d]`` hold the slots of
    ticks ``T - d`` and ``T + d`` during tick ``T``.
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


class Policy(NamedTuple):
    """The rule and the schedule of one chunk of ticks (all plain values).

    ``mode`` (predict or learn), ``fixed`` (fixed predictions), ``gamma`` (inference
    step), ``alpha`` (learning rate), ``update_kind`` and its arguments ``trigger``
    (per error neuron, learning step of its update), ``t_d`` (phi's window),
    ``detector`` (DETECTOR_SONG or DETECTOR_FEEDBACK), ``shares`` (some learnable entry
    of theta is read by several synapses or biases), ``cause`` (what triggers this
    rule's updates, ``CAUSE_*``, for the plasticity timeline), ``defer_step`` (per entry of
    theta: the learning step at whose end its accumulated changes apply, -1: at once;
    empty where nothing is shared),
    ``defer_params`` (the entries with a ``defer_step``), ``defer_wake`` (the error
    neurons that read them, woken when they change),
    ``held_step`` (learning step of the held-error update), then the schedule:
    ``tick0`` (first tick of the chunk), ``learn_tick0`` (tick of learning step 0),
    ``n_ticks``, ``last_error_only`` (the final tick runs only the error stage),
    ``force_tick`` (tick at which every error neuron emits: stimulus onset),
    ``stop_when_quiet``, ``all_active`` (compute every neuron every tick: a check of
    event-driven skipping), ``reverse`` (visit neurons in reverse order: a check of
    synchrony), ``max_energy_ratio``, ``blocks`` (how many contiguous blocks of neurons
    the stages are split into, run in parallel; the result does not depend on it).
    """

    mode: int
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
    tick0: int
    learn_tick0: int
    n_ticks: int
    last_error_only: bool
    force_tick: int
    stop_when_quiet: bool
    all_active: bool
    reverse: bool
    max_energy_ratio: float
    blocks: int


class Recorders(NamedTuple):
    """Preallocated buffers the kernel writes into (observers: nothing a neuron reads).

    Always: energy per learning tick, phi firings ``(step, error neuron, lane)``, the
    errors at each neuron's trigger, the reference energy ``E(0)`` and the number of
    firings so far. The monitors (:mod:`neurosim.monitors`), each off when its buffer
    has no rows: ``ev`` events ``(tick, MSG_*, neuron)``; ``pl`` the plasticity
    timeline ``(tick, error neuron or -1, index in theta, CAUSE_*)`` with ``pl_delta``
    the change; traces per tick ``tr_tick``, ``tr_v`` of value neurons ``tr_v_idx``,
    ``tr_mu``, ``tr_eps``, ``tr_phi`` of error neurons ``tr_e_idx``, ``tr_energy``.
    ``*_n`` count the rows written; ``reserve`` holds the most rows one tick can add to
    ``ev`` and ``pl``: a chunk stops early (STATUS_FLUSH) when a tick might not fit.
    """

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
