"""A rule's configuration (:mod:`neurosim.rules`) turned into its policy: the one place that
knows what each rule means to the event loop.

A policy is data (:class:`~neurosim.engine.bundles.RuleArrays`): when error neurons
learn (``update_kind``: at a scheduled step, when phi fires, with held errors at
the end of relaxation, or at every step), the per-neuron trigger steps, the detector,
the deferral of shared parameters' changes, the inference step; plus the number of
learning ticks and, for Song et al.'s broken C1, the beliefs' perturbation. The kernels branch on these
values only, never on a rule's type.

Adding a rule: its configuration class in :mod:`neurosim.rules`, and one function here
registered with ``@policy_for(TheRule)`` that returns a :class:`Plan`. Nothing else
names rules.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from neurosim.compile.netlist import Netlist
from neurosim.engine.bundles import RuleArrays
from neurosim.engine.semantics import (
    CAUSE_PHI,
    CAUSE_RELAXED,
    CAUSE_SCHEDULE,
    DETECTOR_FEEDBACK,
    DETECTOR_SONG,
    UPDATE_AT_TRIGGER,
    UPDATE_EVERY_STEP,
    UPDATE_HELD,
    UPDATE_NONE,
    UPDATE_PHI,
)
from neurosim.errors import ConfigError
from neurosim.graph.spec import trigger_steps
from neurosim.rules import BP, IL, IPC, ZIL, FaZIL, FixedPred, Rule, StrictPC


@dataclass(frozen=True)
class Plan:
    """What one presentation under a rule does: ``rule`` (the kernels' policy),
    ``n_ticks`` (learning ticks), ``perturb`` (``(sigma, seed)``: Gaussian noise on every
    hidden belief when learning starts, or None)."""

    rule: RuleArrays
    n_ticks: int
    perturb: tuple[float, int] | None = None


@dataclass
class Network:
    """What a policy reads of the network: its graph, netlist and exact step count, with
    the deferral plans cached per setting."""

    graph: nx.DiGraph
    netlist: Netlist
    n_exact: int
    _deferrals: dict = field(default_factory=dict)

    def deferral(self, by_trigger: bool, ticks: int = 0) -> dict:
        """Fields holding back shared parameters' changes (none where nothing is shared).

        ``by_trigger`` (Z-IL): a parameter read at several trigger steps applies its sum
        at the end of the last one. Otherwise (Fa-Z-IL: no schedule says when a shared
        parameter's last trigger is) a parameter read by several vertices applies its sum
        at the end of the presentation (``ticks``).
        """
        net = self.netlist
        if not net.shares_params:
            return {}
        key = (by_trigger, ticks)
        if key not in self._deferrals:
            if by_trigger:
                shared = net.per_entry(net.param_trigger_lo != net.param_trigger_hi, False)
                step = net.per_entry(net.param_trigger_hi, -1)
            else:
                shared = net.per_entry(net.param_vertices > 1, False)
                step = np.full(net.n_theta, ticks - 1)
            readers = np.zeros(net.n_error, bool)
            readers[net.s_error[shared[net.synapse_params]]] = True
            bias_comp = np.repeat(np.arange(net.n_compartments), np.diff(net.c_bias_ptr))
            readers[net.c_err[bias_comp[shared[net.c_bias]]]] = True
            self._deferrals[key] = dict(defer_step=np.where(shared, step, -1).astype(np.int64),
                                        defer_params=np.flatnonzero(shared).astype(np.int64),
                                        defer_wake=np.flatnonzero(readers).astype(np.int64))
        return self._deferrals[key]

    @functools.cached_property
    def idle(self) -> RuleArrays:
        """The policy of the prediction phase (:func:`neutral`)."""
        return neutral(self.netlist)

    def require_triggers(self) -> None:
        """Raise the GraphError that says why Z-IL's trigger steps are not defined here."""
        if not self.netlist.triggers_defined:
            trigger_steps(self.graph)


def neutral(net: Netlist) -> RuleArrays:
    """The policy of the prediction phase: no learning, no deferral."""
    return RuleArrays(
        fixed=False, gamma=1.0, alpha=0.0, update_kind=UPDATE_NONE, trigger=np.full(net.n_error, -1, np.int64),
        t_d=1, detector=DETECTOR_SONG, shares=bool(net.shares_params), cause=CAUSE_SCHEDULE,
        defer_step=np.full(net.n_theta if net.shares_params else 0, -1, np.int64),
        defer_params=np.zeros(0, np.int64), defer_wake=np.zeros(0, np.int64), held_step=-1,
        max_energy_ratio=float("inf"),
    )


_BUILDERS: dict[type, Callable[[Rule, Network], Plan]] = {}
_REFUSED = {BP: "BP is the reference, not an event-loop rule; use neurosim.reference.backprop.sgd_step"}


def policy_for(cls: type) -> Callable:
    """Register the function that plans a presentation under rule class ``cls``."""
    def register(build: Callable[[Rule, Network], Plan]) -> Callable[[Rule, Network], Plan]:
        _BUILDERS[cls] = build
        return build
    return register


def builder(rule: Rule) -> Callable[[Rule, Network], Plan]:
    """The function that plans presentations under ``rule`` (ConfigError if the loop
    cannot run it): registered for its own class, a subclass being a new rule."""
    if not isinstance(rule, Rule):
        raise ConfigError(f"rule must be a neurosim.rules.Rule, got {type(rule).__name__}")
    if type(rule) in _REFUSED:
        raise ConfigError(_REFUSED[type(rule)])
    build = _BUILDERS.get(type(rule))
    if build is None:
        raise ConfigError(f"the event loop has no policy for rule {type(rule).__name__}")
    return build


def plan(rule: Rule, network: Network) -> Plan:
    """The plan of one presentation under ``rule`` on ``network``."""
    return builder(rule)(rule, network)


def _rule(network: Network, rule: Rule, **fields: object) -> RuleArrays:
    """The neutral policy with a learning rule's fields set (plain Python values, so
    that no setting compiles a new specialization of the kernels)."""
    base = network.idle._asdict()
    base.update(alpha=rule.alpha, max_energy_ratio=rule.max_energy_ratio, **fields)
    for key in ("gamma", "alpha", "max_energy_ratio"):
        base[key] = float(base[key])
    for key in ("fixed", "shares"):
        base[key] = bool(base[key])
    for key in ("update_kind", "t_d", "detector", "cause", "held_step"):
        base[key] = int(base[key])
    return RuleArrays(**base)




@policy_for(IL)
def _il(rule: IL, network: Network) -> Plan:
    """Every error neuron updates at step ``t_c``, the end of relaxation."""
    trigger = np.full(network.netlist.n_error, rule.t_c, np.int64)
    return Plan(_rule(network, rule, gamma=rule.gamma, update_kind=UPDATE_AT_TRIGGER, trigger=trigger,
                      cause=CAUSE_RELAXED), rule.t_c + 1)


@policy_for(ZIL)
def _zil(rule: ZIL, network: Network) -> Plan:
    """Vertex ``j`` updates at its own step ``l_j`` (C2), or every vertex at ``update_step``."""
    network.require_triggers()
    e_trigger = network.netlist.e_trigger
    if rule.update_step is None:  # C2: vertex j at its own step l_j
        trig = e_trigger.astype(np.int64)
    else:  # C2 broken (Song et al. Fig. 3): every vertex at one step
        trig = np.where(e_trigger >= 0, rule.update_step, -1).astype(np.int64)
    defer = network.deferral(True) if rule.shared_updates == "deferred" and rule.update_step is None else {}
    perturb = (rule.init_noise, rule.noise_seed) if rule.init_noise > 0 else None
    return Plan(_rule(network, rule, gamma=rule.gamma, update_kind=UPDATE_AT_TRIGGER, trigger=trig, **defer),
                int(trig.max()) + 1, perturb)


@policy_for(FaZIL)
def _fazil(rule: FaZIL, network: Network) -> Plan:
    """Updates wherever phi fires, for ``ticks`` steps (default: one per trigger step)."""
    network.require_triggers()
    ticks = rule.ticks if rule.ticks is not None else network.n_exact
    defer = network.deferral(False, ticks) if rule.shared_updates == "deferred" else {}
    detector = DETECTOR_FEEDBACK if rule.detector == "feedback" else DETECTOR_SONG
    return Plan(_rule(network, rule, gamma=rule.gamma, update_kind=UPDATE_PHI, t_d=rule.t_d, detector=detector,
                      cause=CAUSE_PHI, **defer), ticks)


@policy_for(StrictPC)
def _strict(rule: StrictPC, network: Network) -> Plan:
    """``n`` steps, then the held update with the errors of state ``n - 1``."""
    return Plan(_rule(network, rule, gamma=rule.eta, update_kind=UPDATE_HELD, held_step=rule.n,
                      cause=CAUSE_RELAXED), rule.n + 1)


@policy_for(FixedPred)
def _fixedpred(rule: FixedPred, network: Network) -> Plan:
    """Fixed predictions: ``n`` steps (default ``n_exact``), then the held update."""
    n = rule.n if rule.n is not None else network.n_exact
    return Plan(_rule(network, rule, gamma=rule.eta, update_kind=UPDATE_HELD, held_step=n, fixed=True,
                      cause=CAUSE_RELAXED), n + 1)


@policy_for(IPC)
def _ipc(rule: IPC, network: Network) -> Plan:
    """Every error neuron learns at every step ``t = 0 .. ticks-1`` with its ``g(t)`` and
    the ``x(t)`` its synapses received; S6's end-of-tick commit gives the reference's
    timing (feedback through the weights of before the step, the step's change seen at
    ``t + 1``). Shared parameters take their summed change at every step: no deferral."""
    return Plan(_rule(network, rule, gamma=rule.gamma, update_kind=UPDATE_EVERY_STEP), rule.ticks)
