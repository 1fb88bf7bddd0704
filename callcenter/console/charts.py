"""Bar charts as plain SVG shapes computed on the server: no chart library, no script, offline.

Each bar carries its value as text too (a ``<title>`` and a table beside the chart), and the
stacked segments differ by pattern as well as colour, so colour is never the only signal.
The SVG text is written here, not by a template loop: a year of daily bars is some 13,000
template expressions (most of the supervisor page's time), and a few f-strings.

>>> [(b.label, b.height) for b in bars([("a", 5), ("b", 10)], height=100).bars]
[('a', 50.0), ('b', 100.0)]
>>> bars([], height=100).bars
[]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape


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


def _frame(chart: Chart, element_id: str, label: str, groups: list[str]) -> Markup:
    return Markup(
        f'<svg id="{escape(element_id)}" class="chart" viewBox="0 -14 {chart.width:g} '
        f'{chart.height + 32:g}" role="img" aria-label="{escape(label)}">{"".join(groups)}</svg>'
    )


def _texts(chart: Chart, bar: Bar) -> str:
    middle = f"{bar.x + chart.bar_width / 2:.2f}"
    value = f'<text x="{middle}" y="{bar.y - 2:.2f}" class="val">{bar.value}</text>'
    return (
        value if bar.value else ""
    ) + f'<text x="{middle}" y="{chart.height + 14:g}" class="lbl">{escape(bar.label)}</text>'


def bars_svg(chart: Chart, element_id: str, label: str, number: Callable[[int], str]) -> Markup:
    """``bars`` drawn: a ``<title>`` per bar says its label and value (``number`` formats it).

    >>> svg = bars_svg(bars([("a", 2)], width=10, height=10), "c", "Calls", str)
    >>> svg.startswith('<svg id="c" class="chart" viewBox="0 -14 10 42" role="img"')
    True
    >>> '<g><title>a: 2</title><rect x="1.50" y="0.00" width="7.00" height="10.00"' in svg
    True
    """
    width = f"{chart.bar_width:.2f}"
    return _frame(
        chart,
        element_id,
        label,
        [
            f"<g><title>{escape(b.label)}: {escape(number(b.value))}</title>"
            f'<rect x="{b.x:.2f}" y="{b.y:.2f}" width="{width}" height="{b.height:.2f}" '
            f'class="bar"></rect>{_texts(chart, b)}</g>'
            for b in chart.bars
        ],
    )


def stacked_svg(chart: Chart, element_id: str, label: str, name: Callable[[str], str]) -> Markup:
    """``stacked`` drawn: segment classes ``seg seg-<key>``, the title names each part."""
    width = f"{chart.bar_width:.2f}"
    keys = {s.key for b in chart.bars for s in b.segments}
    names = {k: escape(name(k)) for k in keys}
    classes = {k: f"seg seg-{escape(k)}" for k in keys}
    groups = []
    for b in chart.bars:
        parts = "".join(f"{names[s.key]} {s.value}; " for s in b.segments)
        rects = "".join(
            f'<rect x="{b.x:.2f}" y="{s.y:.2f}" width="{width}" height="{s.height:.2f}" '
            f'class="{classes[s.key]}"></rect>'
            for s in b.segments
            if s.height > 0
        )
        groups.append(f"<g><title>{escape(b.label)}: {parts}</title>{rects}{_texts(chart, b)}</g>")
    return _frame(chart, element_id, label, groups)
