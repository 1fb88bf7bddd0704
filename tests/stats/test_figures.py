"""The one-pass histogram figures equal the plain definitions (nearest rank, shares)."""

from __future__ import annotations

import random

from callcenter.stats.figures import ANSWER_THRESHOLDS, percentile, share, wait_figures


def test_wait_figures_equal_percentiles_and_shares_computed_one_by_one() -> None:
    rng = random.Random(112)
    for _ in range(5000):
        histogram = {rng.randint(0, 60): rng.randint(1, 50) for _ in range(rng.randint(0, 12))}
        answered = sum(histogram.values())
        figures = wait_figures(histogram)
        assert (figures.wait_p50, figures.wait_p90, figures.wait_p95) == tuple(
            percentile(histogram, p) for p in (50, 90, 95)
        )
        assert figures.wait_max == (max(histogram) if histogram else None)
        assert figures.answered == answered
        assert (figures.within_10s, figures.within_15s, figures.within_20s) == tuple(
            share(sum(n for wait, n in histogram.items() if wait <= t), answered)
            for t in ANSWER_THRESHOLDS
        )
