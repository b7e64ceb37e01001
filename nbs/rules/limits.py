"""What every rule kind shares: reaching a limit, the tier reached, and limits as text.

The limits convention of the cutoff files: a value equal to a limit reaches it (``>=`` for a
marker that rises in disease, ``<=`` for one that falls), up to float noise
(:func:`reaches`), and a condition reaches a tier when all its criteria reach it. A missing
input gives a null level, which the evaluator reports as ``not_evaluated``, never as
``negative``.
"""

from __future__ import annotations

import math
import re
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict

from cutoffs.model import TierLimits
from nbs.rules.registry import LimitRow

Limit = float | pl.Expr


class KindParams(BaseModel):
    """Base of the built-in kinds' parameter models: frozen, no unknown keys."""

    # an infinite or NaN limit is a typing error in a cutoff file, never a setting
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def num(x: float) -> str:
    """A number as the cutoff texts write it (``240``, ``1.7``)."""
    return f"{x:g}"


def ordered(limits: TierLimits, direction: Literal["high", "low"]) -> TierLimits:
    """The limits, checked to grow towards referral (fall, for a ``low`` marker)."""
    values = limits.resolved()
    ok = list(values) == sorted(values, reverse=direction == "low")
    if not ok:
        order = "<=" if direction == "high" else ">="
        raise ValueError(
            f"limits must satisfy retest {order} repeat_specimen {order} referral, got {values}"
        )
    return limits


def limits_text(limits: TierLimits, direction: Literal["high", "low"]) -> str:
    """Human text of the three tier limits, e.g. ``retest ≥120, repeat ≥150, referral ≥240``,
    or ``≥1.6`` where one limit serves every tier."""
    sign = "≥" if direction == "high" else "≤"
    retest, repeat, referral = limits.resolved()
    if retest == repeat == referral:
        return f"{sign}{num(referral)}"
    return f"retest {sign}{num(retest)}, repeat {sign}{num(repeat)}, referral {sign}{num(referral)}"


_LIMITS_TEXT = re.compile(
    r"^retest (?P<sign>[≥≤])(?P<retest>[-+.\deE]+), repeat [≥≤](?P<repeat>[-+.\deE]+), "
    r"referral [≥≤](?P<referral>[-+.\deE]+)$"
)
_ONE_LIMIT_TEXT = re.compile(r"^(?P<sign>[≥≤])(?P<limit>[-+.\deE]+)$")


def parse_limits_text(text: str) -> tuple[Literal["high", "low"], float, float, float] | None:
    """The inverse of :func:`limits_text`: (direction, retest, repeat, referral), or None
    for a text of another shape (qualitative rules). Used to draw a value against its
    limits from a stored explanation."""
    one = _ONE_LIMIT_TEXT.match(text.strip())
    if one:
        limit = float(one["limit"])
        return ("high" if one["sign"] == "≥" else "low"), limit, limit, limit
    match = _LIMITS_TEXT.match(text.strip())
    if not match:
        return None
    direction: Literal["high", "low"] = "high" if match["sign"] == "≥" else "low"
    return direction, float(match["retest"]), float(match["repeat"]), float(match["referral"])


#: a value within this many units in the last place of a limit is at the limit. Values are
#: decimals held in binary: Phe 557.77 / Tyr 328.10 is exactly 1.7 but computes as
#: 1.6999999999999997, and a mean of retests can land a hair under the limit it reaches.
#: Wide enough for a mean of ~15 punches, far narrower than any reported digit.
LIMIT_NOISE_ULPS = 8
#: the same, relative to the number: what a comparison or a rounding may treat as noise
FLOAT_NOISE = LIMIT_NOISE_ULPS * float(np.finfo(np.float64).eps)


def reaches(value: pl.Expr, limit: Limit, direction: Literal["high", "low"]) -> pl.Expr:
    """``value`` reaches ``limit``: ``>=`` for a rising marker (``high``), ``<=`` for a
    falling one, inclusive up to float noise (``LIMIT_NOISE_ULPS``), so that a value at the
    limit in decimals is never read as short of it. Plug-in kinds compare with this too."""
    # an infinite limit has no noise (inf - inf would be NaN, which polars orders above
    # every number): it compares exactly
    if isinstance(limit, pl.Expr):
        slack: Limit = pl.when(limit.is_finite()).then(limit.abs() * FLOAT_NOISE).otherwise(0.0)
    else:
        slack = abs(limit) * FLOAT_NOISE if math.isfinite(limit) else 0.0
    return value >= limit - slack if direction == "high" else value <= limit + slack


def tier_level(
    value: pl.Expr, limits: tuple[Limit, Limit, Limit], direction: Literal["high", "low"]
) -> pl.Expr:
    """Int8 tier reached by ``value`` against (retest, repeat, referral); null if no value,
    or no limit (a limit computed per card, e.g. by a plug-in, that comes out null: not
    evaluated, never negative)."""
    retest, repeat, referral = limits

    def past(limit: Limit) -> pl.Expr:
        return reaches(value, limit, direction)

    unknown = value.is_null() | value.is_nan()
    for limit in limits:
        if isinstance(limit, pl.Expr):
            unknown = unknown | limit.is_null()
    return (
        pl.when(unknown)
        .then(None)
        .when(past(referral))
        .then(3)
        .when(past(repeat))
        .then(2)
        .when(past(retest))
        .then(1)
        .otherwise(0)
        .cast(pl.Int8)
    )


def detail(label: str, value_text: pl.Expr, unit: str, bracket: pl.Expr) -> pl.Expr:
    """A reason's text for one criterion: ``PHE 250 µmol/L (retest ≥120, ...)``."""
    unit_part = f" {unit}" if unit else ""
    return pl.concat_str(
        [
            pl.lit(f"{label} "),
            value_text.fill_null("no value"),
            pl.lit(f"{unit_part} ("),
            bracket,
            pl.lit(")"),
        ]
    )


def limit_row(marker: str, rule: str, limits: TierLimits, stratum: str = "") -> LimitRow:
    """A row of the resolved cutoff table from a marker's three tier limits."""
    retest, repeat, referral = limits.resolved()
    return LimitRow(marker, rule, stratum, retest, repeat, referral)
