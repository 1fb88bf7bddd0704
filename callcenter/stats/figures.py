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


def wait_figures(histogram: Mapping[int, int]) -> WaitFigures:
    """Percentiles, maximum and shares within the thresholds, in one pass over the sorted
    values (the dashboard does this for every day of a range, twice).

    >>> f = wait_figures({3: 2, 10: 1, 40: 1})
    >>> f.wait_p50, f.wait_p90, f.wait_max, f.within_10s
    (3, 40, 40, 0.75)
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
    shares = [share(n, answered) for n in within]
    return WaitFigures(
        answered=answered,
        wait_p50=found[0],
        wait_p90=found[1],
        wait_p95=found[2],
        wait_max=max(histogram) if histogram else None,
        within_10s=shares[0],
        within_15s=shares[1],
        within_20s=shares[2],
    )


def mask_number(number: str) -> str:
    """Keep the country and operator prefix and the last three digits."""
    if len(number) <= 8:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 9) + number[-3:]
