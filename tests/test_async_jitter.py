"""Clause A2's jitter: a counter-based generator, the same draw whatever the call order,
with the moments of a standard normal, sensitive to its seed, link and index, and a
clipped transit that keeps every arrival after its emission."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.engine.transport import jitter as jt
from neurosim.errors import ConfigError


def _draws(seed: int, n_links: int = 50, n_index: int = 4000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    links = np.repeat(np.arange(n_links, dtype=np.int64), n_index)
    idx = np.tile(np.arange(n_index, dtype=np.int64), n_links)
    return links, idx, jt.normals(seed, links, idx)


def test_same_draw_whatever_the_call_order() -> None:
    links, idx, z = _draws(7, 20, 500)
    perm = np.random.default_rng(0).permutation(len(links))
    assert np.array_equal(jt.normals(7, links[perm], idx[perm]), z[perm])
    # one at a time, backwards, interleaved with other draws: still the same bits
    for k in range(len(links) - 1, len(links) - 50, -1):
        jt.normal(8, int(links[k]) + 1, 3)
        assert jt.normal(7, int(links[k]), int(idx[k])) == z[k]


def test_moments_of_a_standard_normal() -> None:
    _, _, z = _draws(11)  # 200,000 draws: standard errors 0.0022 (mean), 0.0032 (variance)
    n = len(z)
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs(np.mean(z**3)) < 5 * np.sqrt(15 / n)
    assert abs(np.mean(z**4) - 3) < 5 * np.sqrt(96 / n)
    # tails: P(|z| > 2) = 0.0455, P(|z| > 3) = 0.0027
    assert abs(np.mean(np.abs(z) > 2) - 0.0455) < 5 * np.sqrt(0.0455 / n)
    assert abs(np.mean(np.abs(z) > 3) - 0.0027) < 5 * np.sqrt(0.0027 / n)


def test_uniforms_are_uniform_and_inside_the_open_interval() -> None:
    u = np.array([jt.uniform(3, k % 97, k // 97, 0) for k in range(20000)])
    assert 0 < u.min() and u.max() < 1
    counts = np.histogram(u, bins=20, range=(0, 1))[0]
    chi2 = float(((counts - 1000) ** 2 / 1000).sum())
    assert chi2 < 50  # 19 degrees of freedom: P(chi2 > 50) < 2e-4


def test_seed_link_and_index_each_change_the_draws() -> None:
    links, idx, z = _draws(1, 10, 2000)
    for other in (jt.normals(2, links, idx), jt.normals(1, links + 1, idx), jt.normals(1, links, idx + 1)):
        assert not np.any(other == z)
        assert abs(np.corrcoef(other, z)[0, 1]) < 5 / np.sqrt(len(z))
    # neighbouring messages of one link are uncorrelated
    one = z[:2000]
    assert abs(np.corrcoef(one[:-1], one[1:])[0, 1]) < 5 / np.sqrt(2000)


def test_transit_clips_and_is_exact_without_jitter() -> None:
    links = np.arange(100000, dtype=np.int64) % 13
    idx = np.arange(100000, dtype=np.int64)
    delays = 0.5 + (links % 3).astype(float)
    assert np.array_equal(jt.transits(delays, 0.0, 0.05, 4, links, idx), delays)
    tau = jt.transits(delays, 2.0, 0.05, 4, links, idx)  # heavy jitter: many clipped
    assert np.all(tau > 0) and np.all(tau >= 0.05 * delays)
    clipped = tau == 0.05 * delays
    z = jt.normals(4, links, idx)
    assert np.array_equal(clipped, delays + 2.0 * z <= 0.05 * delays)
    np.testing.assert_array_equal(tau[~clipped], (delays + 2.0 * z)[~clipped])


def test_jitter_spec_validation() -> None:
    assert jt.Jitter(0.3, 5).floor == 0.05
    for kw, word in ((dict(sigma=-1.0), "sigma"), (dict(sigma=float("nan")), "sigma"), (dict(floor=0.0), "floor"),
                     (dict(floor=1.5), "floor"), (dict(seed=-1), "seed"), (dict(seed=1.5), "seed"),
                     (dict(sigma=True), "sigma")):
        with pytest.raises(ConfigError, match=word):
            jt.Jitter(**kw)
