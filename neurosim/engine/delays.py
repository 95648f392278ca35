"""Delays of the asynchronous mode (clause A1 of ``docs/async.md``): one float per link.

Time is measured in *hops*, the transit time of a message over a unit-delay link. Every
synapse has a delay ``> 0``, shared by its two directions (the signal ``x`` to the error
neuron and the feedback ``g`` back), as in the synchronous mode; the private link of a
value neuron and its error neuron has its own delay (both directions). A synchronous
delay of ``d`` ticks is an asynchronous delay of ``2 d - 1`` hops (:func:`from_ticks`),
so unit delays are the synchronous limit.

Synaptic delays are given as any of (:func:`synapse_delays` turns each into one float
per synapse, in the netlist's synapse order: by error neuron, then compartment, then
the synapses of a compartment in their wiring order; for a dense layer, row ``i`` of
``W`` is the ``n_in`` synapses of error neuron ``i``, ``theta[s]`` being weight ``s``):

- a number: every synapse;
- a mapping ``{vertex: delay}``: the synapses arriving at that vertex (others 1 hop),
  as the synchronous mode's ``delays``;
- :class:`EdgeDelays`: each graph edge's attribute ``delay`` (parent -> child), for every
  synapse the edge carries;
- an array of one float per synapse;
- :class:`DelayDistribution`: one draw per synapse from a gamma or log-normal law of
  given mean and coefficient of variation, with a seed (the timing study sweeps the CV
  from 0 to about 1).

Bad input raises :class:`~neurosim.errors.ConfigError` (or
:class:`~neurosim.errors.GraphError` for an edge attribute) naming what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Union

import networkx as nx
import numpy as np

from neurosim import validation
from neurosim.compile.netlist import Netlist
from neurosim.errors import ConfigError, GraphError

DISTRIBUTIONS = ("gamma", "lognormal")


@dataclass(frozen=True)
class EdgeDelays:
    """Read each synapse's delay from the attribute ``attribute`` of the graph edge it
    belongs to; edges without it get ``default`` (``None``: every edge must have it)."""

    attribute: str = "delay"
    default: float | None = None

    def __post_init__(self) -> None:
        if self.default is not None:
            object.__setattr__(self, "default", check_delay(self.default, "EdgeDelays default"))


@dataclass(frozen=True)
class DelayDistribution:
    """One delay per synapse drawn from ``law`` with mean ``mean`` hops and coefficient of
    variation ``cv`` (standard deviation over mean), with ``numpy.random.default_rng(seed)``
    in synapse order.

    - ``gamma``: shape ``1 / cv**2``, scale ``mean cv**2`` (``cv = 1``: exponential);
    - ``lognormal``: ``exp(m + s N(0, 1))`` with ``s**2 = ln(1 + cv**2)``, ``m = ln(mean) - s**2 / 2``.

    ``cv = 0`` gives ``mean`` for every synapse, bit for bit, under either law.

    >>> d = DelayDistribution("gamma", mean=2.0, cv=0.5, seed=1)
    >>> d.draw(3).shape
    (3,)
    """

    law: str = "gamma"
    mean: float = 1.0
    cv: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.law not in DISTRIBUTIONS:
            raise ConfigError(f"unknown delay distribution {self.law!r}; choose one of {list(DISTRIBUTIONS)}")
        object.__setattr__(self, "mean", check_delay(self.mean, "the mean delay"))
        if not (validation.is_real(self.cv) and np.isfinite(self.cv) and self.cv >= 0):
            raise ConfigError(f"the delays' coefficient of variation cv must be a finite number >= 0, got {self.cv!r}")
        object.__setattr__(self, "cv", float(self.cv))
        if not validation.is_count(self.seed) or self.seed < 0:
            raise ConfigError(f"the delays' seed must be an int >= 0, got {self.seed!r}")

    def draw(self, n: int) -> np.ndarray:
        """``n`` delays (float64, all > 0)."""
        if self.cv == 0:
            return np.full(n, self.mean)
        rng = np.random.default_rng(self.seed)
        if self.law == "gamma":
            d = rng.gamma(1.0 / self.cv**2, self.mean * self.cv**2, size=n)
        else:
            s2 = np.log1p(self.cv**2)
            d = np.exp(np.log(self.mean) - s2 / 2 + np.sqrt(s2) * rng.standard_normal(n))
        if n and not (np.all(d > 0) and np.all(np.isfinite(d))):
            raise ConfigError(
                f"a {self.law} draw with mean {self.mean} and cv {self.cv} gave a delay that is 0 or not finite "
                f"(smallest {d.min()!r}); use a smaller cv")
        return d


SynapseDelays = Union[float, Mapping[str, float], EdgeDelays, DelayDistribution, np.ndarray]


def check_delay(value: object, what: str) -> float:
    """``value`` as a float delay in hops, or ConfigError naming ``what`` unless it is a
    finite number > 0."""
    if not (validation.is_real(value) and np.isfinite(value) and value > 0):
        raise ConfigError(f"{what} must be a finite number of hops > 0, got {value!r}")
    return float(value)


def from_ticks(ticks: int | np.ndarray) -> float | np.ndarray:
    """The asynchronous delay ``2 d - 1`` (hops) of a synchronous delay of ``d`` ticks:
    value emitted at the value stage of tick ``T`` (time ``2T + 1``) is read by the error
    stage of tick ``T + d`` (time ``2T + 2d``), error emitted at ``2T`` by the value stage
    of tick ``T + d - 1`` (time ``2T + 2d - 1``)."""
    return 2.0 * np.asarray(ticks, np.float64) - 1.0 if isinstance(ticks, np.ndarray) else 2.0 * float(ticks) - 1.0


def synapse_edges(netlist: Netlist) -> tuple[np.ndarray, np.ndarray]:
    """Per synapse, the graph vertex (index into ``netlist.vertices``) of its presynaptic
    value neuron and of its postsynaptic error neuron: the edge that carries it."""
    return netlist.v_vertex[netlist.s_pre].astype(np.int64), netlist.e_vertex[netlist.s_error].astype(np.int64)


def synapse_delays(spec: SynapseDelays, graph: nx.DiGraph, netlist: Netlist) -> np.ndarray:
    """One delay in hops per synapse of ``netlist`` (compiled from ``graph``), float64."""
    n = netlist.n_synapses
    if isinstance(spec, DelayDistribution):
        return spec.draw(n)
    if isinstance(spec, np.ndarray) or isinstance(spec, (list, tuple)):
        d = np.asarray(spec)
        if d.shape != (n,) or not (np.issubdtype(d.dtype, np.integer) or np.issubdtype(d.dtype, np.floating)):
            raise ConfigError(
                f"a per-synapse delay array must hold {n} numbers (one per synapse, in the netlist's synapse "
                f"order), got shape {d.shape} dtype {d.dtype}")
        d = d.astype(np.float64)
        bad = np.flatnonzero(~(np.isfinite(d) & (d > 0)))
        if bad.size:
            s = int(bad[0])
            pre, post = synapse_edges(netlist)
            raise ConfigError(
                f"{bad.size} synaptic delay(s) are not finite numbers > 0, the first at synapse {s} "
                f"({netlist.vertices[pre[s]]!r} -> {netlist.vertices[post[s]]!r}): {d[s]!r}")
        return d
    pre, post = synapse_edges(netlist)
    if isinstance(spec, Mapping):
        unknown = sorted(map(repr, set(spec) - set(graph)))
        if unknown:
            raise ConfigError(f"delays name vertices {unknown} that are not in the graph")
        per_vertex = np.array([check_delay(spec.get(v, 1.0), f"the delay of the synapses into vertex {v!r}")
                               for v in netlist.vertices])
        return per_vertex[post]
    if isinstance(spec, EdgeDelays):
        table = np.zeros((len(netlist.vertices), len(netlist.vertices)))
        index = {v: k for k, v in enumerate(netlist.vertices)}
        for u, v, attrs in graph.edges(data=True):
            if spec.attribute in attrs:
                d = attrs[spec.attribute]
                if not (validation.is_real(d) and np.isfinite(d) and d > 0):
                    raise GraphError(f"the edge {u!r} -> {v!r} has {spec.attribute}={d!r}; a delay is a finite number "
                                     "of hops > 0")
                table[index[u], index[v]] = float(d)
            elif spec.default is not None:
                table[index[u], index[v]] = spec.default
            else:
                raise GraphError(f"the edge {u!r} -> {v!r} has no {spec.attribute!r} attribute; give every edge one "
                                 f"(graph.edges[{u!r}, {v!r}][{spec.attribute!r}] = 1.0) or set EdgeDelays(default=...)")
        return table[pre, post]
    if validation.is_real(spec):
        return np.full(n, check_delay(spec, "the synaptic delay"))
    raise ConfigError(
        f"synaptic delays must be a number, a dict {{vertex: delay}}, EdgeDelays, DelayDistribution or an array of "
        f"one delay per synapse, got {type(spec).__name__}")


def own_delays(spec: float | np.ndarray, netlist: Netlist) -> np.ndarray:
    """The delay in hops of each value neuron's private link with its error neuron (both
    directions), per error neuron: a number for all, or an array of ``n_error`` numbers."""
    n = netlist.n_error
    if validation.is_real(spec):
        return np.full(n, check_delay(spec, "own_delay"))
    d = np.asarray(spec)
    if d.shape != (n,) or not (np.issubdtype(d.dtype, np.integer) or np.issubdtype(d.dtype, np.floating)):
        raise ConfigError(f"own_delay must be a number or an array of {n} numbers (one per error neuron), "
                          f"got shape {d.shape} dtype {d.dtype}")
    d = d.astype(np.float64)
    if not np.all(np.isfinite(d) & (d > 0)):
        k = int(np.flatnonzero(~(np.isfinite(d) & (d > 0)))[0])
        raise ConfigError(f"own_delay of error neuron {k} is {d[k]!r}; delays are finite numbers of hops > 0")
    return d
