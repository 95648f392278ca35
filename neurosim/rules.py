"""The learning rules, as configurations shared by the event loop and the reference.

Conventions follow ``docs/rules.md`` (errors ``eps = v - mu``, output error
``-dL/dmu``, losses summed over samples). State ``t`` is the network after ``t``
inference steps; state 0 is the forward pass with the target clamped. One inference
step computes every error and every change from state ``t`` and applies them together:

    v_j  += gamma * ( -eps_j + sum_{k in children(j)} J_kj^T eps_k )
    theta_j += alpha * J_theta^T eps_j            (only when the rule's trigger fires)

``J_theta^T eps`` is ``g x^T`` with ``g = act'(a) * eps`` (post) or ``g = eps`` (pre)
and ``x`` the presynaptic signal (``v`` for post, ``act(v)`` for pre).

- :class:`BP`: plain backprop SGD, ``theta -= alpha dL/dtheta``.
- :class:`IL` (Whittington and Bogacz 2017; Song et al. 2020 Algorithm 1): ``t_c`` steps
  of size ``gamma``, then one update from the errors and beliefs of state ``t_c``.
- :class:`ZIL` (Song et al. 2020): C1 (start at state 0), C3 (``gamma = 1``), C2 (vertex
  ``j`` updates once, at step ``t = l_j``, its path length to the output). Equals BP.
- :class:`FaZIL` (Song et al. 2020 Algorithm 2): C1, C3, updates at every step with rate
  ``alpha * phi_i`` per error neuron, ``phi_i(t) = 1`` iff
  ``eps_i(t) != eps_i(t-1) == ... == eps_i(t - t_d)`` (exact comparison; before ``t = 0``
  every error is 0). Runs for ``ticks`` steps (default: one per trigger step).
- :class:`StrictPC` (Rosenbaum 2022 Algorithm "PC", Torch2PC ``Strict``): ``n`` steps of
  size ``eta`` with predictions and Jacobians from the current beliefs; the update pulls
  the errors of state ``n - 1`` back through each vertex's parameter Jacobian at the
  beliefs of state ``n`` (dense post: ``(act'(W x(n) + b) * eps(n-1)) x(n)^T``).
- :class:`FixedPred` (Rosenbaum 2022 "ModPC"; Millidge et al. 2020): errors against the
  forward-pass predictions, Jacobians at the forward pass, output error fixed at
  ``-dL/dvhat``; update from the errors of state ``n - 1`` and the forward-pass inputs.
  With ``eta = 1`` and ``n >= n_exact`` it equals the exact gradient (Theorem 1).
- :class:`IPC` (Salvatori et al. 2024, incremental PC): ``ticks`` steps in which values
  (step ``gamma``) and weights (rate ``alpha``) both descend the energy from state ``t``.

A run *diverges* at step ``t`` when an error is not finite, or when the energy
``E(t) = 1/2 sum eps^2`` (over all error neurons and samples) exceeds
``max_energy_ratio * E(0)``; the presentation ends there and reports ``t``. Every change
computed from the states before ``t`` takes effect, nothing computed from state ``t``:
the changes Z-IL and Fa-Z-IL made at earlier steps stay (a synapse that has changed
stays changed; a Fa-Z-IL run kept going past its last trigger keeps its exact update)
and the sums held back for shared parameters are applied, as at a normal end; IL,
Strict PC and FixedPred, which update at the end, apply nothing. A run in which an
update makes a parameter non-finite also diverges, at that step, and the whole
presentation is undone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from neurosim import validation
from neurosim.errors import ConfigError

DEFAULT_MAX_ENERGY_RATIO = 1e12


def require_positive(name: str, value: float, allow_inf: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a positive finite number (a Python
    or numpy int or float, not a bool; ``allow_inf``: or ``+inf``)."""
    if not (validation.is_real(value) and value > 0 and (allow_inf or value != float("inf"))):
        raise ConfigError(f"{name} must be a positive {'' if allow_inf else 'finite '}number, got {value!r}")


def require_count(name: str, value: int, minimum: int = 0, maximum: int | None = None) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an int (Python's or numpy's, not a
    bool) from ``minimum`` to ``maximum``."""
    if not validation.is_count(value) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {value!r}")


def require_steps(name: str, value: int, minimum: int = 0) -> None:
    """:func:`require_count` bounded by :data:`neurosim.validation.MAX_STEPS` (the budget
    of inference steps of one presentation)."""
    require_count(name, value, minimum)
    if value > validation.MAX_STEPS:
        raise ConfigError(
            f"{name} is {value}, over the budget of {validation.MAX_STEPS} inference steps per presentation "
            "(neurosim.validation.MAX_STEPS); use fewer steps or raise the budget"
        )


def require_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {list(choices)}, got {value!r}")


SHARED_UPDATES = ("deferred", "immediate")
DETECTORS = ("song", "feedback")


@dataclass(frozen=True)
class Rule:
    """Base class: every rule has a learning rate ``alpha``."""

    alpha: float = 0.001

    name = "rule"

    def __post_init__(self) -> None:
        for f in fields(self):  # numpy scalars are accepted and stored as Python numbers
            object.__setattr__(self, f.name, validation.plain(getattr(self, f.name)))
        require_positive("alpha", self.alpha)
        if hasattr(self, "max_energy_ratio"):
            require_positive("max_energy_ratio", self.max_energy_ratio, allow_inf=True)

    def to_dict(self) -> dict:
        """The rule as a JSON-ready dict, with its name under ``"rule"``."""
        return {"rule": self.name, **asdict(self)}


@dataclass(frozen=True)
class BP(Rule):
    """Backprop SGD: ``theta -= alpha * dL/dtheta`` (the reference)."""

    name = "bp"


@dataclass(frozen=True)
class IL(Rule):
    """Inference learning: ``t_c`` steps of size ``gamma``, then one update at state ``t_c``."""

    gamma: float = 0.1
    t_c: int = 20
    max_energy_ratio: float = DEFAULT_MAX_ENERGY_RATIO
    name = "il"

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive("gamma", self.gamma)
        require_steps("t_c", self.t_c)


@dataclass(frozen=True)
class ZIL(Rule):
    """Zero-divergence IL: vertex ``j`` updates at step ``l_j`` (its path length to the output).

    A parameter shared by vertices with different trigger steps (a recurrent weight
    unrolled in time) accumulates their updates and applies the sum at the end of its
    last trigger step (``shared_updates="deferred"``, exact); ``"immediate"`` applies
    each vertex's part at its own step, so that later steps see changed weights (not
    backprop: shown by the tests, for comparison).

    Song et al.'s ablations (Fig. 3) break one condition at a time: ``gamma != 1``
    breaks C3; ``update_step = t`` updates every vertex at step ``t`` instead of its own
    ``l`` (C2; ``None`` is C2 itself); ``init_noise = sigma`` adds Gaussian noise of
    standard deviation ``sigma`` to every hidden belief at the start of learning, drawn
    from ``numpy.random.default_rng(noise_seed)`` (C1).
    """

    gamma: float = 1.0
    shared_updates: str = "deferred"
    update_step: int | None = None
    init_noise: float = 0.0
    noise_seed: int = 0
    max_energy_ratio: float = DEFAULT_MAX_ENERGY_RATIO
    name = "zil"

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive("gamma", self.gamma)
        require_choice("shared_updates", self.shared_updates, SHARED_UPDATES)
        if self.update_step is not None:
            require_steps("update_step", self.update_step)
        if not (validation.is_real(self.init_noise) and 0 <= self.init_noise < float("inf")):
            raise ConfigError(f"init_noise must be a finite number >= 0, got {self.init_noise!r}")
        require_count("noise_seed", self.noise_seed)


@dataclass(frozen=True)
class FaZIL(Rule):
    """Fully autonomous Z-IL: updates gated by the change detector phi with window ``t_d``.

    ``detector="song"`` is Song et al.'s phi as written. ``detector="feedback"`` is
    neurosim's corrected variant, keyed on the arrival of feedback: error neuron ``i``
    fires at most once per presented sample, at the first change of its error while its
    prediction ``mu_i`` has not moved since the sample's learning phase began (a change
    that only its own value neuron's feedback can cause). It never fires late where the
    backprop error is exactly 0 (ReLU in the pre convention, max-pool).

    A parameter shared by several vertices (a recurrent weight unrolled in time) either
    accumulates its changes over the presentation and applies the sum at its end
    (``shared_updates="deferred"``: there is no schedule to say when its last trigger
    is; equals backprop on an RNN with the loss at the last step and on a cell-level
    LSTM) or changes each time one of its synapses' error neurons fires
    (``"immediate"``, Song et al.'s Algorithm 2 as written: later firings see changed
    weights, which is not backprop there). Parameters read by one vertex only (a conv
    kernel, a dense layer) change when phi fires in either setting.
    """

    t_d: int = 4
    ticks: int | None = None
    gamma: float = 1.0
    detector: str = "song"
    shared_updates: str = "deferred"
    max_energy_ratio: float = DEFAULT_MAX_ENERGY_RATIO
    name = "fazil"

    def __post_init__(self) -> None:
        super().__post_init__()
        require_choice("detector", self.detector, DETECTORS)
        require_choice("shared_updates", self.shared_updates, SHARED_UPDATES)
        require_steps("t_d", self.t_d, 1)
        if self.ticks is not None:
            require_steps("ticks", self.ticks, 1)
        require_positive("gamma", self.gamma)


@dataclass(frozen=True)
class StrictPC(Rule):
    """Strict predictive coding (Torch2PC ``Strict``): ``n`` steps of size ``eta``, then the
    errors of state ``n-1`` pulled back through the parameter Jacobians at state ``n``."""

    eta: float = 0.1
    n: int = 20
    max_energy_ratio: float = DEFAULT_MAX_ENERGY_RATIO
    name = "strict"

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive("eta", self.eta)
        require_steps("n", self.n, 1)


@dataclass(frozen=True)
class FixedPred(Rule):
    """Fixed-prediction PC: exact for ``eta = 1``, ``n >= n_exact`` (default ``n = n_exact``)."""

    eta: float = 1.0
    n: int | None = None
    max_energy_ratio: float = DEFAULT_MAX_ENERGY_RATIO
    name = "fixedpred"

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive("eta", self.eta)
        if self.n is not None:
            require_steps("n", self.n, 1)


@dataclass(frozen=True)
class IPC(Rule):
    """Incremental predictive coding (Salvatori et al., "A stable, fast, and fully
    automatic learning algorithm for predictive coding networks", ICLR 2024).

    The weights change at every inference step, together with the values, by the same
    local gradient of the energy that IL applies once after relaxing. With
    ``F = sum_hidden 1/2 ||eps_j||^2 + L(mu_out, y)`` (``= 1/2 sum eps^2`` for mse), every
    step ``t = 0 .. ticks-1`` reads state ``t`` only (errors ``eps(t)`` from the values
    ``v(t)`` and the weights ``theta(t)``; presynaptic signals ``x(t)``) and applies

        v_j(t+1)     = v_j(t)     + gamma * ( -eps_j(t) + sum_{k in children(j)} J_kj(t)^T eps_k(t) )
                                  = v_j(t) - gamma * dF/dv_j
        theta_k(t+1) = theta_k(t) + alpha * J_theta(t)^T eps_k(t)
                                  = theta_k(t) - alpha * dF/dtheta_k

    (dense: ``dW_k = alpha g_k(t) x_k(t)^T``). Both are computed before either is written
    (Jacobi in values and weights): the feedback ``J_kj(t)`` carries the weights of
    before the step's own update. A parameter several vertices share takes the sum of
    their contributions at every step. State 0 is the forward pass with the target
    clamped, as for every rule. ``ticks`` defaults to 20 steps with ``gamma = 0.1``,
    the budget of :class:`IL`'s defaults, so that the two compare at equal cost.
    """

    gamma: float = 0.1
    ticks: int = 20
    max_energy_ratio: float = DEFAULT_MAX_ENERGY_RATIO
    name = "ipc"

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive("gamma", self.gamma)
        require_steps("ticks", self.ticks, 1)


RULES: dict[str, type[Rule]] = {cls.name: cls for cls in (BP, IL, ZIL, FaZIL, StrictPC, FixedPred, IPC)}


def make_rule(name: str, **options: object) -> Rule:
    """Build a rule from its name (``bp``, ``il``, ``zil``, ``fazil``, ``strict``, ``fixedpred``,
    ``ipc``).

    Options not used by that rule are ignored only when they are ``None``; any other
    unknown option raises :class:`ConfigError` naming it.
    """
    key = str(name).lower().replace("-", "").replace("_", "")
    aliases = {"backprop": "bp", "strictpc": "strict", "pc": "strict", "modpc": "fixedpred",
               "incremental": "ipc", "incrementalpc": "ipc"}
    key = aliases.get(key, key)
    if key not in RULES:
        raise ConfigError(f"unknown rule {name!r}; choose one of {sorted(RULES)}")
    cls = RULES[key]
    known = {f.name for f in fields(cls)}
    given = {k: v for k, v in options.items() if v is not None}
    extra = sorted(set(given) - known)
    if extra:
        raise ConfigError(f"rule {key!r} takes no option(s) {extra}; its options are {sorted(known)}")
    return cls(**given)
