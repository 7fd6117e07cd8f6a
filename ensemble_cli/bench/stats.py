"""The statistics of a bench report, from scipy rather than hand-written tests.

- accuracy: the Wilson score interval (``scipy.stats.binomtest(...).proportion_ci(method="wilson")``);
- paired difference from the baseline on the same items: an exact McNemar test, i.e. a two-sided binomial
  test on the discordant pairs (``binomtest(b, b + c, 0.5)``), and a 95% paired bootstrap percentile
  interval of the difference in accuracy (``scipy.stats.bootstrap(..., paired=True)``, fixed seed);
- the Pareto frontier of accuracy (higher is better) against cost per item (lower is better).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 9999
SEED = 0


def wilson(correct: int, total: int) -> tuple[float, float]:
    """The 95% Wilson score interval of ``correct`` out of ``total`` (0..1 when there are no items)."""
    if total == 0:
        return 0.0, 1.0
    ci = stats.binomtest(correct, total).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class Paired:
    """An arm against the baseline on the items both answered."""

    items: int
    difference: float
    low: float
    high: float
    only_arm: int
    """Items the arm got right and the baseline wrong (discordant pairs one way)."""
    only_baseline: int
    p_value: float


def mcnemar_exact(only_arm: int, only_baseline: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs against 1/2."""
    discordant = only_arm + only_baseline
    if discordant == 0:
        return 1.0
    return float(stats.binomtest(only_arm, discordant, 0.5).pvalue)


def paired(arm: Sequence[bool], baseline: Sequence[bool]) -> Paired:
    """The paired difference ``accuracy(arm) - accuracy(baseline)`` over the same items, in order."""
    a = np.asarray(arm, dtype=float)
    b = np.asarray(baseline, dtype=float)
    n = len(a)
    only_arm = int(np.sum((a == 1) & (b == 0)))
    only_baseline = int(np.sum((a == 0) & (b == 1)))
    difference = float(a.mean() - b.mean()) if n else 0.0
    if n < 2 or only_arm + only_baseline == 0:
        low = high = difference  # every resample gives the same difference
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = stats.bootstrap((a, b), lambda x, y, axis=-1: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                                     paired=True, vectorized=True, confidence_level=CONFIDENCE,
                                     n_resamples=RESAMPLES, method="percentile", rng=np.random.default_rng(SEED))
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return Paired(n, difference, low, high, only_arm, only_baseline, mcnemar_exact(only_arm, only_baseline))


def pareto(points: Sequence[tuple[float, float | None]]) -> list[bool]:
    """For each (accuracy, cost) point, whether no other point is at least as accurate and at most as costly,
    and strictly better in one. A point without a cost is never on the frontier."""
    marks = []
    for i, (accuracy, cost) in enumerate(points):
        if cost is None:
            marks.append(False)
            continue
        dominated = any(
            j != i and other_cost is not None and other_acc >= accuracy and other_cost <= cost
            and (other_acc > accuracy or other_cost < cost)
            for j, (other_acc, other_cost) in enumerate(points)
        )
        marks.append(not dominated)
    return marks


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else None
