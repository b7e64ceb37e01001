"""Small inline SVG pictures: where a value sits against its tier limits.

Server-drawn, so the page needs no chart library and no network. The scale runs from 0 to
a little past the referral limit or the value, whichever is larger; the bands are the
tiers (normal, retest, repeat card, referral) in the rule's direction.
"""

from __future__ import annotations

from html import escape

from nbs.rules.kinds import parse_limits_text

WIDTH, HEIGHT, BAR_Y, BAR_H = 320, 34, 8, 12
BAND_COLOURS = ("#cfe8cf", "#fbe7a1", "#f6c08b", "#ee8b8b")  # normal, retest, repeat, referral
BAND_NAMES = ("normal", "retest", "repeat card", "referral")


def value_gauge(value: float | None, limits_text: str | None, label: str) -> str | None:
    """An SVG gauge of ``value`` against the limits in ``limits_text``; None when the
    limits are not numeric tiers (qualitative rules) or the value is missing."""
    parsed = parse_limits_text(limits_text or "")
    if parsed is None or value is None:
        return None
    direction, retest, repeat, referral = parsed
    top = max(referral, retest, value) * 1.25 or 1.0

    def x(v: float) -> float:
        return round(max(0.0, min(v, top)) / top * WIDTH, 1)

    cuts = [0.0, retest, repeat, referral, top]
    colours = BAND_COLOURS if direction == "high" else tuple(reversed(BAND_COLOURS))
    if direction == "low":  # falling marker: referral lowest, normal highest
        cuts = [0.0, referral, repeat, retest, top]
    rects = []
    for i, colour in enumerate(colours):
        x0, x1 = x(cuts[i]), x(cuts[i + 1])
        if x1 > x0:
            name = BAND_NAMES[i] if direction == "high" else BAND_NAMES[3 - i]
            rects.append(
                f'<rect x="{x0}" y="{BAR_Y}" width="{round(x1 - x0, 1)}" height="{BAR_H}" '
                f'fill="{colour}"><title>{name}</title></rect>'
            )
    vx = x(value)
    return (
        f'<svg class="gauge" role="img" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" aria-label="{escape(label)} {value:g} against '
        f'{escape(limits_text or "")}" data-value="{value:g}">'
        + "".join(rects)
        + f'<line x1="{vx}" x2="{vx}" y1="2" y2="{BAR_Y + BAR_H + 4}" stroke="#111" '
        f'stroke-width="2"/>'
        f'<text x="{min(vx + 3, WIDTH - 40)}" y="{HEIGHT - 1}" font-size="10">{value:g}</text>'
        "</svg>"
    )
