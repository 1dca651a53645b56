"""Geometry of the "Sinyal" page's charts, drawn as inline SVG by the template.

Server-rendered SVG needs no script and no CDN, prints, and works on a phone; the
template draws these shapes with Jinja's autoescaping, so a village name typed by a
citizen is text in the chart, never markup.
"""
from __future__ import annotations

from dataclasses import dataclass

BAR_HEIGHT = 22
BAR_GAP = 6
LABEL_WIDTH = 190
CHART_WIDTH = 640
COLUMN_HEIGHT = 160
AXIS_SPACE = 36


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float
    href: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    maximum: int


def horizontal_bars(items: list[tuple[str, int, str]]) -> Chart:
    """One bar per (label, value, link), longest first as given; the scale starts at zero."""
    maximum = max((value for _, value, _ in items), default=0)
    span = CHART_WIDTH - LABEL_WIDTH - 50
    bars = [
        Bar(
            label=label,
            value=value,
            x=LABEL_WIDTH,
            y=i * (BAR_HEIGHT + BAR_GAP),
            width=span * value / maximum if maximum else 0,
            height=BAR_HEIGHT,
            href=href,
        )
        for i, (label, value, href) in enumerate(items)
    ]
    return Chart(CHART_WIDTH, max(1, len(items)) * (BAR_HEIGHT + BAR_GAP), bars, maximum)


def columns(items: list[tuple[str, int, str]]) -> Chart:
    """One column per (label, value, link), left to right: a weekly trend."""
    maximum = max((value for _, value, _ in items), default=0)
    slot = CHART_WIDTH / max(1, len(items))
    bars = []
    for i, (label, value, href) in enumerate(items):
        height = COLUMN_HEIGHT * value / maximum if maximum else 0
        bars.append(Bar(
            label=label,
            value=value,
            x=i * slot + slot * 0.15,
            y=COLUMN_HEIGHT - height + 16,
            width=slot * 0.7,
            height=height,
            href=href,
        ))
    return Chart(CHART_WIDTH, COLUMN_HEIGHT + 16 + AXIS_SPACE, bars, maximum)
