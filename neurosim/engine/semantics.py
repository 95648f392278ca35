"""The event loop's contract: the tick semantics S1..S8, and the codes the kernels share.

Tick semantics (synchronous mode)
=================================

Time advances in integer ticks. Every neuron is an actor that holds only its own
state (:class:`~neurosim.engine.bundles.ErrorState`, :class:`~neurosim.engine.bundles.ValueState`) and receives messages in an
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
    are visited cannot change the result (``Schedule.reverse`` checks this).
S4. **Who computes.** A neuron computes in a stage when a message arrived for it
    then, when the rule's schedule names it (Z-IL's trigger, the end of IL's or Strict
    PC's relaxation, every step of iPC), or, for a value neuron, when its last update
    moved it (it is not at rest). Every other neuron keeps its state: by construction
    recomputing it would give the same bits (``Schedule.all_active`` checks this).
    Likewise an error neuron recomputes its weighted input only when one of its
    synapses received a message or changed, not when only its own value neuron spoke.
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

Where each clause lives: S2, S3 and S6's per-synapse change in the neuron updates
(:mod:`neurosim.engine.neurons`), read through inbox views; S4 and S5 in the ring
transport (:mod:`neurosim.engine.ring`: who wakes, what is emitted); S1 and the order
of the stages in the driver (:mod:`neurosim.engine.driver`, written once for one
thread and for parallel blocks); S6's commit in :mod:`neurosim.engine.plasticity`;
S8's observers in :mod:`neurosim.engine.observers`; S7's phases in
:mod:`neurosim.engine.presentation`.
"""

MODE_PREDICT, MODE_LEARN = 0, 1
UPDATE_NONE, UPDATE_AT_TRIGGER, UPDATE_PHI, UPDATE_HELD, UPDATE_EVERY_STEP = 0, 1, 2, 3, 4
STATUS_OK, STATUS_DIVERGED, STATUS_QUIET, STATUS_BUFFER_FULL, STATUS_FLUSH = 0, 1, 2, 3, 4
MSG_VALUE, MSG_ERROR, MSG_FEEDBACK = 0, 1, 2
CAUSE_SCHEDULE, CAUSE_PHI, CAUSE_RELAXED, CAUSE_DEFERRED = 0, 1, 2, 3
DETECTOR_SONG, DETECTOR_FEEDBACK = 0, 1
