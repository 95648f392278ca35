"""Rules become policies in one module (neurosim.engine.policy): every event-loop rule has
one, a rule without one is refused by name, and registering one is all a new rule needs."""

from dataclasses import dataclass

import numpy as np
import pytest

from neurosim.engine import Simulator
from neurosim.engine import policy
from neurosim.errors import ConfigError
from neurosim.graph import mlp
from neurosim.rules import BP, RULES, ZIL


def test_every_event_loop_rule_has_a_policy():
    for name, cls in RULES.items():
        if cls is BP:
            with pytest.raises(ConfigError, match="BP is the reference"):
                policy.builder(cls())
        else:
            assert policy.builder(cls()) is not None, name


def test_a_rule_without_a_policy_is_refused_by_name():
    @dataclass(frozen=True)
    class Unplanned(ZIL):
        name = "unplanned"

    sim = Simulator(mlp([3, 4, 2]), seed=0)
    with pytest.raises(ConfigError, match="no policy for rule Unplanned"):
        sim.learn(np.ones((1, 3)), np.array([[1.0, 0.0]]), Unplanned(alpha=0.1))


def test_registering_a_policy_is_all_a_new_rule_needs():
    """A new rule class whose policy is Z-IL's, halving the step it is given: it runs on
    the loop and changes the weights as Z-IL with half the learning rate does."""

    @dataclass(frozen=True)
    class HalfZIL(ZIL):
        name = "halfzil"

    @policy.policy_for(HalfZIL)
    def _half(rule, network):
        plan = policy.builder(ZIL())(rule, network)
        return policy.Plan(plan.rule._replace(alpha=rule.alpha / 2), plan.n_ticks, plan.perturb)

    try:
        x, y = np.ones((1, 3)), np.array([[1.0, 0.0]])
        new = Simulator(mlp([3, 4, 2]), seed=0).learn(x, y, HalfZIL(alpha=0.2))
        ref = Simulator(mlp([3, 4, 2]), seed=0).learn(x, y, ZIL(alpha=0.1))
        for name, delta in ref.updates.items():
            assert np.array_equal(new.updates[name], delta), name
    finally:
        policy._BUILDERS.pop(HalfZIL)
