"""Server-side SVG charts for the dashboard: no script, no font or file from elsewhere.

Each chart is a string of SVG markup that scales to its card (``viewBox``, ``width: 100%``), with a
``<title>`` for screen readers and a legend in text. Labels are escaped here: callers pass plain text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

# Colour-blind-aware palette (after Okabe and Ito's, the light ones darkened): every colour has at least
# 3:1 contrast against white, as WCAG asks of graphics (tests/web check it).
PALETTE = (
    "#0072b2",
    "#d55e00",
    "#009e73",
    "#cc79a7",
    "#8a6d00",
    "#1b8a9e",
    "#6a3d9a",
    "#b22222",
    "#4d4d4d",
    "#1b7837",
    "#b36b00",
    "#762a83",
)
DOWN = "#b3261e"


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def nice_ceiling(v: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above ``v`` (round axis ends, round ticks in quarters)."""
    if v <= 0:
        return 1.0
    k = float(10.0 ** math.floor(math.log10(v)))
    for m in (1, 2, 2.5, 5, 10):
        if m * k >= v:
            return float(m * k)
    return float(10 * k)  # pragma: no cover


def _legend(names: Sequence[str]) -> str:
    items = "".join(
        f'<li><span class="swatch" style="background:{colour(i)}"></span>{escape(n)}</li>'
        for i, n in enumerate(names)
    )
    return f'<ul class="legend">{items}</ul>'


def line_chart(
    title: str,
    xs: Sequence[float],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    x_label: Callable[[float], str],
    y_max: float = 1.0,
    y_format: Callable[[float], str] = lambda v: f"{v:.0%}",
    width: int = 640,
    height: int = 220,
) -> str:
    """Lines over a shared x axis (time); y from 0 to ``y_max``."""
    left, right, top, bottom = 48, 10, 10, 28
    w, h = width - left - right, height - top - bottom
    x0, x1 = (xs[0], xs[-1]) if xs else (0.0, 1.0)
    span = (x1 - x0) or 1.0

    def px(x: float) -> float:
        return left + (x - x0) / span * w

    def py(y: float) -> float:
        return top + h - min(max(y, 0.0), y_max) / (y_max or 1.0) * h

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}"'
        f' xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for k in range(5):
        y = y_max * k / 4
        parts.append(
            f'<line x1="{left}" x2="{left + w}" y1="{py(y):.1f}" y2="{py(y):.1f}" class="grid"/>'
            f'<text x="{left - 4}" y="{py(y) + 4:.1f}" class="tick" text-anchor="end">{escape(y_format(y))}</text>'
        )
    if xs:
        for k in range(5):
            x = x0 + span * k / 4
            anchor = "start" if k == 0 else "end" if k == 4 else "middle"
            parts.append(
                f'<text x="{px(x):.1f}" y="{height - 8}" class="tick" text-anchor="{anchor}">'
                f"{escape(x_label(x))}</text>"
            )
    for i, (_, ys) in enumerate(series):
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=False))
        if pts:
            parts.append(f'<polyline fill="none" stroke="{colour(i)}" stroke-width="2" points="{pts}"/>')
    parts.append("</svg>")
    return "".join(parts) + _legend([n for n, _ in series])


def stacked_bars(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    *,
    y_format: Callable[[float], str],
    width: int = 640,
    height: int = 220,
) -> str:
    """One bar per label (a day), stacked by series (a tenant or type)."""
    left, right, top, bottom = 64, 10, 10, 28
    w, h = width - left - right, height - top - bottom
    totals = [sum(s[1][i] for s in series) for i in range(len(labels))]
    y_max = nice_ceiling(max(totals, default=0))
    n = max(len(labels), 1)
    bw = w / n
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}"'
        f' xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for k in range(5):
        y = top + h - h * k / 4
        parts.append(
            f'<line x1="{left}" x2="{left + w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
            f"{escape(y_format(y_max * k / 4))}</text>"
        )
    for i in range(len(labels)):
        base = 0.0
        for s, (_, vals) in enumerate(series):
            v = vals[i]
            if v <= 0:
                continue
            bh = v / y_max * h
            y = top + h - base - bh
            parts.append(
                f'<rect x="{left + i * bw + 1:.1f}" y="{y:.1f}" width="{max(bw - 2, 1):.1f}" height="{bh:.1f}"'
                f' fill="{colour(s)}"/>'
            )
            base += bh
    step = max(1, len(labels) // 6)
    for i in range(0, len(labels), step):
        parts.append(
            f'<text x="{left + (i + 0.5) * bw:.1f}" y="{height - 8}" class="tick" text-anchor="middle">'
            f"{escape(labels[i])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts) + _legend([n for n, _ in series])
