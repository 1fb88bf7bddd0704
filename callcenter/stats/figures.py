"""Pure arithmetic on rollup figures: percentiles from histograms, shares, masked numbers.

>>> percentile({3: 2, 10: 1, 40: 1}, 50)
3
>>> percentile({3: 2, 10: 1, 40: 1}, 95)
40
>>> share(1, 3)
0.3333
>>> mask_number("+6281234567890")
'+62812*****890'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

# NENA call answering standard: 90% within 15 s, 95% within 20 s.
ANSWER_THRESHOLDS = (10, 15, 20)
PERCENTILES = (50, 90, 95)


def percentile(histogram: Mapping[int, int], p: float) -> int | None:
    """Nearest-rank percentile of whole seconds: the least value with ``p``% at or below it."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(p / 100 * total))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    raise AssertionError("unreachable: rank is at most the total")


def share(part: int, whole: int) -> float | None:
    """part / whole as a fraction rounded to 4 places; None when there is nothing to divide."""
    return None if whole == 0 else round(part / whole, 4)


@dataclass(frozen=True)
class WaitFigures:
    answered: int
    wait_p50: int | None
    wait_p90: int | None
    wait_p95: int | None
    wait_max: int | None
    within_10s: float | None
    within_15s: float | None
    within_20s: float | None


@dataclass(frozen=True)
class HistogramFigures:
    """A histogram's figures in whole numbers, as ``stats_times_daily`` keeps one day's."""

    count: int
    p50: int | None
    p90: int | None
    p95: int | None
    max: int | None
    within: tuple[int, ...]  # calls at or below each of ANSWER_THRESHOLDS

    def shares(self) -> WaitFigures:
        within = [share(n, self.count) for n in self.within]
        return WaitFigures(
            answered=self.count,
            wait_p50=self.p50,
            wait_p90=self.p90,
            wait_p95=self.p95,
            wait_max=self.max,
            within_10s=within[0],
            within_15s=within[1],
            within_20s=within[2],
        )


def histogram_figures(histogram: Mapping[int, int]) -> HistogramFigures:
    """Percentiles, maximum and counts within the thresholds, in one pass over the sorted
    values.

    >>> histogram_figures({3: 2, 10: 1, 40: 1})
    HistogramFigures(count=4, p50=3, p90=40, p95=40, max=40, within=(3, 3, 3))
    """
    answered = sum(histogram.values())
    ranks = [max(1, math.ceil(p / 100 * answered)) for p in PERCENTILES]
    found: list[int | None] = [None] * len(PERCENTILES)
    within = [0] * len(ANSWER_THRESHOLDS)
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        for n, threshold in enumerate(ANSWER_THRESHOLDS):
            if value <= threshold:
                within[n] = seen
        for n, rank in enumerate(ranks):
            if found[n] is None and seen >= rank:
                found[n] = value
    if answered == 0:
        found = [None] * len(PERCENTILES)
    return HistogramFigures(
        count=answered,
        p50=found[0],
        p90=found[1],
        p95=found[2],
        max=max(histogram) if histogram else None,
        within=tuple(within),
    )


def wait_figures(histogram: Mapping[int, int]) -> WaitFigures:
    """Percentiles, maximum and shares within the thresholds.

    >>> f = wait_figures({3: 2, 10: 1, 40: 1})
    >>> f.wait_p50, f.wait_p90, f.wait_max, f.within_10s
    (3, 40, 40, 0.75)
    """
    return histogram_figures(histogram).shares()


def mask_number(number: str) -> str:
    """Keep the country and operator prefix and the last three digits."""
    if len(number) <= 8:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 9) + number[-3:]
