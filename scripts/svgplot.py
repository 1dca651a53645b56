"""A latency-over-time scatter plot written as SVG by hand: no plotting library to install.

One panel per run, stacked, sharing the y axis (milliseconds, square-root scale so
both the bulk and the slow tail stay readable); a panel whose waits are of another
order (a burst's backlog, in minutes) has a y axis of its own. Each point is one
message, placed at the second it was sent.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

WIDTH = 900
PANEL_HEIGHT = 190
MARGIN_LEFT = 70
MARGIN_RIGHT = 20
MARGIN_TOP = 40
PANEL_GAP = 45
COLOURS = {
    "ok": "#1f77b4", "late": "#2ca02c", "apology": "#ff7f0e", "limited": "#9467bd", "error": "#d62728",
    "timeout": "#8c564b",
}


@dataclass(frozen=True)
class Point:
    sent_at: float  # seconds since the run started
    latency_ms: float
    outcome: str  # a key of COLOURS


@dataclass(frozen=True)
class Panel:
    title: str
    points: Sequence[Point]
    # Scaled to its own points rather than sharing the others' axes.
    own_scale: bool = False


def _time_ticks(top: float) -> list[float]:
    """Round tick values up to `top`, about five of them."""
    step = 10 ** math.floor(math.log10(max(top, 1) / 5))
    for factor in (1, 2, 5, 10):
        if top / (step * factor) <= 6:
            step *= factor
            break
    return [step * i for i in range(int(top // step) + 1)]


def _latency_ticks(top: float) -> list[float]:
    """Ticks that spread out on a square-root scale: dense near zero, sparse above."""
    ladder = [0, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 20000, 30000, 60000, 120000, 300000, 600000]
    return [tick for tick in ladder if tick <= top]


def _tops(panels: Sequence[Panel]) -> tuple[float, float]:
    """The x (seconds) and y (milliseconds) ranges that hold every point of `panels`."""
    points = [p for panel in panels for p in panel.points]
    return (
        max((p.sent_at for p in points), default=1.0) * 1.02,
        max((p.latency_ms for p in points), default=1.0) * 1.05,
    )


def latency_plot(title: str, panels: Sequence[Panel]) -> str:
    """The SVG document for `panels`, with shared axes (but for `own_scale` panels)."""
    shared = _tops([panel for panel in panels if not panel.own_scale])
    plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    height = MARGIN_TOP + len(panels) * (PANEL_HEIGHT + PANEL_GAP)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>',
    ]
    for index, panel in enumerate(panels):
        x_top, y_top = _tops([panel]) if panel.own_scale else shared
        top = MARGIN_TOP + index * (PANEL_HEIGHT + PANEL_GAP)
        bottom = top + PANEL_HEIGHT

        def y(ms: float) -> float:
            return bottom - math.sqrt(ms / y_top) * PANEL_HEIGHT

        def x(seconds: float) -> float:
            return MARGIN_LEFT + seconds / x_top * plot_width

        parts.append(f'<text x="{MARGIN_LEFT}" y="{top - 6}" font-size="12">{escape(panel.title)}</text>')
        parts.append(
            f'<rect x="{MARGIN_LEFT}" y="{top}" width="{plot_width}" height="{PANEL_HEIGHT}" '
            'fill="none" stroke="#999"/>'
        )
        last_label = math.inf
        for tick in _latency_ticks(y_top):
            if last_label - y(tick) < 14:
                continue  # too close to the label below it
            last_label = y(tick)
            parts.append(
                f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y(tick):.1f}" '
                f'y2="{y(tick):.1f}" stroke="#eee"/>'
                f'<text x="{MARGIN_LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g} ms</text>'
            )
        for tick in _time_ticks(x_top):
            parts.append(
                f'<text x="{x(tick):.1f}" y="{bottom + 14}" text-anchor="middle">{tick:g} s</text>'
            )
        for point in panel.points:
            colour = COLOURS.get(point.outcome, COLOURS["error"])
            parts.append(
                f'<circle cx="{x(point.sent_at):.1f}" cy="{y(point.latency_ms):.1f}" r="1.6" '
                f'fill="{colour}" fill-opacity="0.6"/>'
            )
    legend_y = height - 8
    for offset, (outcome, colour) in enumerate(COLOURS.items()):
        lx = MARGIN_LEFT + offset * 110
        parts.append(
            f'<circle cx="{lx}" cy="{legend_y - 4}" r="4" fill="{colour}"/>'
            f'<text x="{lx + 8}" y="{legend_y}">{outcome}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
