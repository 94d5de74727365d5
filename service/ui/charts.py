"""Small plots drawn on the server as SVG (no script, no style attribute: the CSP holds).

Each plot is an ``<svg role="img">`` with a ``<title>`` that says in words what it shows, so a
screen reader gets the figures; bars carry their own ``<title>`` for a tooltip.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from markupsafe import Markup, escape

BAR = "#1f5f99"
AXIS = "#555555"
TEXT = "#222222"


def bars_per_day(days: Sequence[dt.date], counts: dict[dt.date, int], label: str) -> Markup:
    """A small bar chart of a count per day.

    Args:
        days: the days shown, in order.
        counts: day -> count (missing days are 0).
        label: what is counted, for the accessible title (``"charts coded by A. Coder"``).

    Returns:
        The SVG element.
    """
    width, height, pad = 320, 90, 18
    top = max([counts.get(d, 0) for d in days] + [1])
    step = (width - 2 * pad) / max(1, len(days))
    bar = max(1.0, step * 0.7)
    total = sum(counts.get(d, 0) for d in days)
    first, last = (days[0].isoformat(), days[-1].isoformat()) if days else ("", "")
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg" aria-labelledby="t-{id(counts)}">',
        f'<title id="t-{id(counts)}">{escape(label)}: {total} from {first} to {last}, at most {top} a day</title>',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="{AXIS}"/>',
    ]
    for i, day in enumerate(days):
        value = counts.get(day, 0)
        h = (height - 2 * pad) * value / top
        x = pad + i * step + (step - bar) / 2
        y = height - pad - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{BAR}">'
            f"<title>{day.isoformat()}: {value}</title></rect>"
        )
    parts.append(f'<text x="{pad}" y="{height - 4}" font-size="10" fill="{TEXT}">{first}</text>')
    parts.append(
        f'<text x="{width - pad}" y="{height - 4}" font-size="10" fill="{TEXT}" text-anchor="end">{last}</text>'
    )
    parts.append(f'<text x="{pad}" y="12" font-size="10" fill="{TEXT}">max {top}/day</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def hbars(rows: Sequence[tuple[str, float | None]], label: str, unit: str, scale: float | None = None) -> Markup:
    """A small horizontal bar chart, one bar per row (a coder).

    Args:
        rows: (name, value) pairs; None is drawn as "no data".
        label: what the bars show, for the accessible title.
        unit: printed after each value (``"%"``, ``" min"``).
        scale: the value of a full bar (the largest value when None).

    Returns:
        The SVG element.
    """
    width, row_h, name_w = 320, 20, 110
    height = row_h * max(1, len(rows)) + 6
    top = scale or max([v for _, v in rows if v is not None] + [1.0])
    summary = "; ".join(f"{name}: {'no data' if v is None else f'{v:.0f}{unit}'}" for name, v in rows)
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}: {escape(summary)}</title>'
    ]
    for i, (name, value) in enumerate(rows):
        y = 3 + i * row_h
        parts.append(f'<text x="0" y="{y + 14}" font-size="11" fill="{TEXT}">{escape(name[:18])}</text>')
        if value is None:
            parts.append(f'<text x="{name_w}" y="{y + 14}" font-size="11" fill="{AXIS}">no data</text>')
            continue
        w = (width - name_w - 60) * min(1.0, value / top) if top else 0
        parts.append(f'<rect x="{name_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{BAR}"/>')
        parts.append(
            f'<text x="{name_w + w + 4:.1f}" y="{y + 14}" font-size="11" fill="{TEXT}">{value:.0f}{unit}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
