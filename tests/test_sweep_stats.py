"""Statistics across seeds against values worked out by hand.

Student-t quantiles from printed tables: t_{0.975, 2} = 4.302652730,
t_{0.975, 3} = 3.182446305, t_{0.95, 4} = 2.131846786.
"""

from __future__ import annotations

import math

import pytest

from neurosim.sweep.stats import STAT_SPECS, paired_interval, summary_rows, t_interval


def test_t_interval_by_hand():
    # 1, 2, 3, 4: mean 2.5, s^2 = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3, half width t s / 2.
    iv = t_interval([1.0, 2.0, 3.0, 4.0])
    half = 3.182446305 * math.sqrt(5 / 3) / 2
    assert iv.n == 4 and iv.mean == 2.5
    assert iv.low == pytest.approx(2.5 - half, rel=1e-9) and iv.high == pytest.approx(2.5 + half, rel=1e-9)
    # 90%, five values 0, 0, 0, 0, 5: mean 1, s^2 = (4 + 16) / 4 = 5, half width t sqrt(5) / sqrt(5) = t.
    iv = t_interval([0, 0, 0, 0, 5], confidence=0.90)
    assert (iv.low, iv.high) == pytest.approx((1 - 2.131846786, 1 + 2.131846786), rel=1e-9)


def test_t_interval_edge_cases():
    one = t_interval([3.5])
    assert one.mean == 3.5 and math.isnan(one.low) and math.isnan(one.high)
    assert math.isnan(t_interval([1.0, float("nan"), 2.0]).mean)  # an undefined seed is not dropped
    same = t_interval([7.0, 7.0, 7.0])
    assert (same.low, same.high) == (7.0, 7.0)
    with pytest.raises(ValueError):
        t_interval([])


def test_paired_interval_by_hand_is_narrower_than_unpaired():
    a, b = [10.0, 12.0, 15.0], [9.0, 10.0, 14.0]
    # differences 1, 2, 1: mean 4/3, s^2 = (1/9 + 4/9 + 1/9) / 2 = 1/3, half width t sqrt(1/3) / sqrt(3) = t / 3.
    iv = paired_interval(a, b)
    assert iv.mean == pytest.approx(4 / 3, rel=1e-15)
    assert (iv.low, iv.high) == pytest.approx((4 / 3 - 4.302652730 / 3, 4 / 3 + 4.302652730 / 3), rel=1e-9)
    ia, ib = t_interval(a), t_interval(b)
    assert iv.high - iv.low < (ia.high - ia.low) + (ib.high - ib.low)
    with pytest.raises(ValueError):
        paired_interval([1.0], [1.0, 2.0])


def test_summary_rows_group_and_pair():
    rows = [dict(condition="C1", value="0.1", depth=1, seed=s, test_error_divergence=d, weight_divergence=w,
                 final_test_error=e, bp_final_test_error=bp, diverged_batches=0)
            for s, d, w, e, bp in [(1, 1.0, 0.5, 10.0, 9.0), (2, 2.0, 0.5, 12.0, 10.0), (3, 3.0, 0.5, 15.0, 14.0)]]
    rows.append(dict(rows[0], condition="C3", value="1.0", weight_divergence=0.0, final_test_error=9.0))
    out = summary_rows(rows, STAT_SPECS["ablations"])
    assert [(r["condition"], r["seeds"]) for r in out] == [("C1", 3), ("C3", 1)]
    c1 = out[0]
    assert c1["test_error_divergence"] == 2.0  # mean of 1, 2, 3; s = 1, half width t / sqrt(3)
    assert c1["test_error_divergence_hi"] == pytest.approx(2.0 + 4.302652730 / math.sqrt(3), rel=1e-9)
    assert (c1["weight_divergence_lo"], c1["weight_divergence_hi"]) == (0.5, 0.5)
    assert c1["final_test_error_minus_bp"] == pytest.approx(4 / 3, rel=1e-15)
    assert c1["final_test_error_minus_bp_lo"] == pytest.approx(4 / 3 - 4.302652730 / 3, rel=1e-9)
    assert out[1]["final_test_error_minus_bp"] == 0.0 and math.isnan(out[1]["final_test_error_minus_bp_lo"])
