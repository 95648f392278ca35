"""Statistics across seeds: means with t confidence intervals, and paired comparisons.

For ``n`` values ``x_1..x_n`` of one quantity, one per seed, the mean is
``m = (1/n) sum x_i``, the sample standard deviation ``s = sqrt(sum (x_i - m)^2 / (n - 1))``
and the two-sided confidence interval at level ``c`` is

    m -/+ t_{(1 + c)/2, n - 1} s / sqrt(n)

with ``t_{q, n-1}`` the ``q`` quantile of Student's t with ``n - 1`` degrees of freedom
(``scipy.stats.t.ppf``). With one seed there is no interval (NaN bounds).

Paired comparison. Where a rule trains beside backprop from the same initial weights on
the same data order (one seed fixes both: :func:`neurosim.experiments.ablations.train_pair`),
the quantity of interest is the per-seed difference ``d_i = a_i - b_i``; its mean and
t interval are the above applied to the ``d_i``. Pairing removes the between-seed
spread the rule and backprop share, so the interval is narrower than the difference of
two unpaired intervals whenever ``a`` and ``b`` move together across seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` values and its confidence interval ``[low, high]``."""

    mean: float
    low: float
    high: float
    n: int


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean of ``values`` and its two-sided Student-t interval at level ``confidence``.

    NaN bounds for a single value; NaN everywhere if any value is NaN (a seed where the
    quantity is undefined, e.g. a success rate with nothing fired, is not dropped silently).
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n == 0:
        raise ValueError("t_interval needs at least one value")
    mean = float(np.mean(x))
    if n == 1 or math.isnan(mean):
        return Interval(mean, math.nan, math.nan, n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * np.std(x, ddof=1) / math.sqrt(n))
    return Interval(mean, mean - half, mean + half, n)


def paired_interval(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean of the paired differences ``a_i - b_i`` and its t interval."""
    if len(a) != len(b):
        raise ValueError(f"paired values need the same length, got {len(a)} and {len(b)}")
    return t_interval(np.asarray(a, np.float64) - np.asarray(b, np.float64), confidence)


@dataclass(frozen=True)
class StatSpec:
    """How to summarize an experiment's rows over seeds: the columns that name a group
    (``keys``), the per-seed quantities (``metrics``) and the paired comparisons
    ``(name, rule column, backprop column)``, differences taken seed by seed (``paired``)."""

    keys: tuple[str, ...]
    metrics: tuple[str, ...]
    paired: tuple[tuple[str, str, str], ...] = ()
    note: str = ""


STAT_SPECS = {
    "table3": StatSpec(("net", "activation", "detector", "t_d"), ("success_pct", "firings_at_l_pct", "late_firings"),
                       note="Mean over seeds and 95% t interval (`_lo`, `_hi`)."),
    "ablations": StatSpec(("condition", "value", "depth"),
                          ("test_error_divergence", "weight_divergence", "final_test_error"),
                          (("final_test_error_minus_bp", "final_test_error", "bp_final_test_error"),),
                          note="Mean over seeds and 95% t interval (`_lo`, `_hi`); `final_test_error_minus_bp`: "
                               "the rule's final test error minus backprop's on the same seed (same initial "
                               "weights and data order), mean and 95% t interval of the paired differences."),
    "rosenbaum": StatSpec(("rule", "dtype", "step_size", "n", "layer"), ("relative_error", "angle"),
                          note="Mean over seeds and 95% t interval (`_lo`, `_hi`)."),
}


def summary_rows(rows: Sequence[dict[str, Any]], spec: StatSpec, confidence: float = CONFIDENCE
                 ) -> list[dict[str, Any]]:
    """One row per group of ``spec.keys`` (first-seen order): the seeds, then for each
    metric its mean and interval, then each paired difference's mean and interval."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in spec.keys), []).append(row)
    out = []
    for key, sel in groups.items():
        entry: dict[str, Any] = dict(zip(spec.keys, key))
        entry["seeds"] = len(sel)
        for metric in spec.metrics:
            iv = t_interval([r[metric] for r in sel], confidence)
            entry.update({metric: iv.mean, f"{metric}_lo": iv.low, f"{metric}_hi": iv.high})
        for name, a, b in spec.paired:
            iv = paired_interval([r[a] for r in sel], [r[b] for r in sel], confidence)
            entry.update({name: iv.mean, f"{name}_lo": iv.low, f"{name}_hi": iv.high})
        out.append(entry)
    return out
