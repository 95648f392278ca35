"""Per-message jitter from a counter-based generator (clause A2 of ``docs/async.md``).

A message's transit time is its link's delay plus a jitter, drawn not from a random
stream consumed in visiting order but from a hash of ``(seed, link, emission index)``:
the ``k``-th message a link carries gets the same jitter whatever the order in which
neurons are visited, the number of threads, the chunking of the run or the monitors
attached (the counter-based idea of Salmon et al., "Parallel random numbers: as easy as
1, 2, 3", SC 2011, with the SplitMix64 mixer of Steele, Lea and Flood, OOPSLA 2014).

The generator
-------------
``h = M(M(M(seed + G) ^ (link + G)) ^ (index + 2G))`` with ``M`` the SplitMix64
finalizer (a bijection of 64-bit words) and ``G`` the golden-ratio increment; for a
fixed seed, distinct ``(link, index)`` pairs of one link give distinct words. Two
words ``h_s = M(h ^ (s + 3G))``, ``s = 0, 1``, give two uniforms
``u_s = (top 53 bits of h_s + 1/2) 2**-53``, strictly inside (0, 1), and Box-Muller
gives one standard normal ``z = sqrt(-2 ln u_0) cos(2 pi u_1)``.

The jitter distribution and its clipping
----------------------------------------
The transit time of message ``k`` on a link of delay ``d`` is

    ``tau = max(d + sigma z, floor d)``,   ``z ~ N(0, 1)`` as above,

so the arrival ``emission + tau`` is strictly after the emission (A2) as long as
``floor > 0``. ``sigma`` is in hops (the study's "jitter relative to the mean delay" is
``sigma / mean delay``); ``floor`` (default 0.05) is the shortest transit as a fraction
of the delay. Clipping leaves ``N(d, sigma^2)`` unchanged except for a mass
``Phi((floor - 1) d / sigma)`` at ``floor d``: 8e-4 for ``sigma = 0.3 d``, 1.7e-2 for
``sigma = 0.45 d``. With ``sigma = 0`` the transit is exactly ``d``, bit for bit.
A message overtaken by a later one on its link is discarded on arrival (A3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from neurosim import validation
from neurosim.errors import ConfigError

_G = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TWO_G, _THREE_G = np.uint64(0x3C6EF372FE94F82A), np.uint64(0xDAA66D2C7DDF743F)  # 2G, 3G mod 2**64
_ULP53 = 2.0**-53


@numba.njit(cache=True, inline="always")
def mix64(x: np.uint64) -> np.uint64:
    """SplitMix64's finalizer: a bijection of 64-bit words that scatters every input bit."""
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


@numba.njit(cache=True, inline="always")
def counter_hash(seed: int, link: int, index: int, stream: int) -> np.uint64:
    """The 64-bit word of draw ``stream`` for message ``index`` of ``link`` (all ints >= 0)."""
    h = mix64(np.uint64(seed) + _G)
    h = mix64(h ^ (np.uint64(link) + _G))
    h = mix64(h ^ (np.uint64(index) + _TWO_G))
    return mix64(h ^ (np.uint64(stream) + _THREE_G))


@numba.njit(cache=True, inline="always")
def uniform(seed: int, link: int, index: int, stream: int) -> float:
    """A uniform draw strictly inside (0, 1), a pure function of its arguments."""
    return (float(counter_hash(seed, link, index, stream) >> _S11) + 0.5) * _ULP53


@numba.njit(cache=True, inline="always")
def normal(seed: int, link: int, index: int) -> float:
    """A standard normal draw for message ``index`` of ``link`` (Box-Muller on streams 0, 1)."""
    u0 = uniform(seed, link, index, 0)
    u1 = uniform(seed, link, index, 1)
    return np.sqrt(-2.0 * np.log(u0)) * np.cos(2.0 * np.pi * u1)


@numba.njit(cache=True, inline="always")
def transit(delay: float, sigma: float, floor: float, seed: int, link: int, index: int) -> float:
    """The transit time ``max(delay + sigma z, floor delay)`` of message ``index`` of ``link``;
    exactly ``delay`` when ``sigma == 0``."""
    if sigma == 0.0:
        return delay
    return max(delay + sigma * normal(seed, link, index), floor * delay)


@numba.njit(cache=True)
def normals(seed: int, links: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """:func:`normal` for each ``(links[k], indices[k])`` (a vectorized helper)."""
    out = np.empty(links.shape[0])
    for k in range(links.shape[0]):
        out[k] = normal(seed, links[k], indices[k])
    return out


@numba.njit(cache=True)
def transits(delays: np.ndarray, sigma: float, floor: float, seed: int, links: np.ndarray,
             indices: np.ndarray) -> np.ndarray:
    """:func:`transit` for each message ``(links[k], indices[k])`` of a link of delay ``delays[k]``."""
    out = np.empty(links.shape[0])
    for k in range(links.shape[0]):
        out[k] = transit(delays[k], sigma, floor, seed, links[k], indices[k])
    return out


@dataclass(frozen=True)
class Jitter:
    """Per-message jitter of standard deviation ``sigma`` hops, clipped at ``floor`` times
    the link's delay, drawn with ``seed`` (see the module's docstring).

    >>> Jitter(sigma=0.2, seed=1).sigma
    0.2
    """

    sigma: float = 0.0
    seed: int = 0
    floor: float = 0.05

    def __post_init__(self) -> None:
        for name in ("sigma", "floor"):
            value = getattr(self, name)
            if not (validation.is_real(value) and np.isfinite(value)):
                raise ConfigError(f"jitter {name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.sigma < 0:
            raise ConfigError(f"jitter sigma must be >= 0 hops, got {self.sigma!r}")
        if not 0 < self.floor <= 1:
            raise ConfigError(
                f"jitter floor must be in (0, 1] (the shortest transit as a fraction of the delay, which keeps "
                f"every arrival after its emission), got {self.floor!r}")
        if not validation.is_count(self.seed) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"jitter seed must be an int from 0 to 2**63 - 1, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
