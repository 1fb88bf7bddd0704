"""Bar charts as plain SVG shapes computed on the server: no chart library, no script, offline.

Each bar carries its value as text too (a ``<title>`` and a table beside the chart), and the
stacked segments differ by pattern as well as colour, so colour is never the only signal.

>>> [(b.label, b.height) for b in bars([("a", 5), ("b", 10)], height=100).bars]
[('a', 50.0), ('b', 100.0)]
>>> bars([], height=100).bars
[]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Segment:
    key: str
    value: int
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    height: float
    segments: list[Segment] = field(default_factory=list)


@dataclass(frozen=True)
class Chart:
    width: float
    height: float
    bar_width: float
    peak: int
    bars: list[Bar]


def _slot(count: int, width: float) -> tuple[float, float]:
    slot = width / max(count, 1)
    return slot, max(slot * 0.7, 1.0)


def bars(values: Sequence[tuple[str, int]], *, width: float = 640, height: float = 140) -> Chart:
    peak = max((v for _, v in values), default=0)
    slot, bar_width = _slot(len(values), width)
    out = []
    for n, (label, value) in enumerate(values):
        h = height * value / peak if peak else 0.0
        out.append(Bar(label, value, n * slot + (slot - bar_width) / 2, height - h, h))
    return Chart(width, height, bar_width, peak, out)


def stacked(
    rows: Sequence[tuple[str, Sequence[tuple[str, int]]]],
    *,
    width: float = 640,
    height: float = 140,
) -> Chart:
    """One bar per row, its parts stacked bottom up in the order given."""
    totals = [sum(v for _, v in parts) for _, parts in rows]
    peak = max(totals, default=0)
    slot, bar_width = _slot(len(rows), width)
    out = []
    for n, ((label, parts), total) in enumerate(zip(rows, totals, strict=True)):
        top = height
        segments = []
        for key, value in parts:
            h = height * value / peak if peak else 0.0
            top -= h
            segments.append(Segment(key, value, top, h))
        x = n * slot + (slot - bar_width) / 2
        out.append(Bar(label, total, x, top, height - top, segments))
    return Chart(width, height, bar_width, peak, out)
