"""Levey-Jennings charts: a control series against its target's mean and ±1, 2, 3 SD, one
point per result in run order, results that broke a rule in red with the rule's name.

Written as plain SVG (no plotting library): the same input gives the same bytes, so a
chart can be a golden file, and it opens offline in the review application and the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 40


@dataclass(frozen=True)
class Point:
    """One control result: its plate, value and the rules it broke ('' none)."""

    plate_id: str
    value: float
    rules: str = ""


def _y(z: float) -> float:
    """Screen y of a z-score (the band shows -4 to +4 SD)."""
    z = max(-4.0, min(4.0, z))
    return TOP + (4 - z) / 8 * (HEIGHT - TOP - BOTTOM)


def levey_jennings(title: str, points: Sequence[Point], mean: float, sd: float) -> str:
    """The chart as an SVG document."""
    inner = WIDTH - LEFT - RIGHT
    step = inner / max(len(points), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="16" font-weight="bold">{escape(title)}</text>',
    ]
    for z, colour in ((3, "#c0392b"), (2, "#e67e22"), (1, "#bbb"), (0, "#333")):
        for sign in (1, -1) if z else (1,):
            y = _y(sign * z)
            label = "mean" if z == 0 else f"{sign * z:+d} SD"
            parts.append(
                f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                f'stroke="{colour}" stroke-dasharray="{"" if z == 0 else "4 3"}"/>'
                f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>'
            )
    parts.append(
        f'<text x="{LEFT}" y="{HEIGHT - 8}">target {mean:g} ± {sd:g} (n = {len(points)})</text>'
    )
    xy = [(LEFT + step * (i + 0.5), _y((p.value - mean) / sd)) for i, p in enumerate(points)]
    if len(xy) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#2c3e50"/>')
    for (x, y), point in zip(xy, points, strict=True):
        broken = bool(point.rules)
        tip = f"{point.plate_id}: {point.value:g}" + (f" ({point.rules})" if broken else "")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{4 if broken else 3}" '
            f'fill="{"#c0392b" if broken else "#2c3e50"}"><title>{escape(tip)}</title></circle>'
        )
        if broken:
            parts.append(
                f'<text x="{x:.1f}" y="{y - 7:.1f}" text-anchor="middle" fill="#c0392b">'
                f"{escape(point.rules)}</text>"
            )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
