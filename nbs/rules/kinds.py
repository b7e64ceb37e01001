"""The built-in rule kinds.

Every kind follows the limits convention of the cutoff files: a value equal to a limit
reaches it (``>=`` for a marker that rises in disease, ``<=`` for one that falls), and a
condition reaches a tier when all its criteria reach it. A missing input gives a null
level, which the evaluator reports as ``not_evaluated``, never as ``negative``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cutoffs.model import TierLimits
from nbs.rules.registry import CriterionExprs, KindContext, RuleKind

Limit = float | pl.Expr


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _num(x: float) -> str:
    return f"{x:g}"


def _ordered(limits: TierLimits, direction: Literal["high", "low"]) -> TierLimits:
    values = limits.resolved()
    ok = list(values) == sorted(values, reverse=direction == "low")
    if not ok:
        order = "<=" if direction == "high" else ">="
        raise ValueError(
            f"limits must satisfy retest {order} repeat_specimen {order} referral, got {values}"
        )
    return limits


def limits_text(limits: TierLimits, direction: Literal["high", "low"]) -> str:
    """Human text of the three tier limits, e.g. ``retest ≥120, repeat ≥150, referral ≥240``."""
    sign = "≥" if direction == "high" else "≤"
    retest, repeat, referral = limits.resolved()
    return (
        f"retest {sign}{_num(retest)}, repeat {sign}{_num(repeat)}, referral {sign}{_num(referral)}"
    )


def tier_level(
    value: pl.Expr, limits: tuple[Limit, Limit, Limit], direction: Literal["high", "low"]
) -> pl.Expr:
    """Int8 tier reached by ``value`` against (retest, repeat, referral); null if no value."""
    retest, repeat, referral = limits

    def past(limit: Limit) -> pl.Expr:
        return value >= limit if direction == "high" else value <= limit

    return (
        pl.when(value.is_null() | value.is_nan())
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


def _detail(label: str, value_text: pl.Expr, unit: str, bracket: pl.Expr) -> pl.Expr:
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


class ThresholdParams(_Params):
    """``marker`` compared with one limit per tier."""

    marker: str
    limits: TierLimits


class AboveParams(ThresholdParams):
    """A rising marker: limits ordered retest <= repeat_specimen <= referral."""

    @model_validator(mode="after")
    def _order(self) -> AboveParams:
        _ordered(self.limits, "high")
        return self


class BelowParams(ThresholdParams):
    """A falling marker: limits ordered retest >= repeat_specimen >= referral."""

    @model_validator(mode="after")
    def _order(self) -> BelowParams:
        _ordered(self.limits, "low")
        return self


def _threshold(
    params: ThresholdParams, ctx: KindContext, direction: Literal["high", "low"]
) -> CriterionExprs:
    value = pl.col(params.marker)
    text = limits_text(params.limits, direction)
    return CriterionExprs(
        label=params.marker,
        level=tier_level(value, params.limits.resolved(), direction),
        value=value,
        detail=_detail(
            params.marker, ctx.fmt(value, params.marker), ctx.unit(params.marker), pl.lit(text)
        ),
        limits=pl.lit(text),
        stratum=pl.lit(None, dtype=pl.String),
        markers=(params.marker,),
    )


def build_above(params: AboveParams, ctx: KindContext) -> CriterionExprs:
    """A marker that rises in disease: the tier is the highest limit with value >= limit."""
    return _threshold(params, ctx, "high")


def build_below(params: BelowParams, ctx: KindContext) -> CriterionExprs:
    """A marker that falls in disease (e.g. TREC): the tier is the highest limit with
    value <= limit (limits ordered retest >= repeat_specimen >= referral)."""
    return _threshold(params, ctx, "low")


class RatioParams(_Params):
    """``numerator / denominator`` compared with one limit per tier."""

    numerator: str
    denominator: str
    limits: TierLimits

    @model_validator(mode="after")
    def _order(self) -> RatioParams:
        _ordered(self.limits, "high")
        return self


def build_ratio_above(params: RatioParams, ctx: KindContext) -> CriterionExprs:
    """The ratio of two markers rises in disease (e.g. Phe/Tyr in PKU): the tier is the
    highest limit with ratio >= limit. A zero denominator gives an infinite ratio
    (flagged); 0/0 is no value (not evaluated)."""
    ratio = (pl.col(params.numerator) / pl.col(params.denominator)).fill_nan(None)
    label = f"{params.numerator}/{params.denominator}"
    text = limits_text(params.limits, "high")
    return CriterionExprs(
        label=label,
        level=tier_level(ratio, params.limits.resolved(), "high"),
        value=ratio,
        detail=_detail(label, ctx.fmt(ratio, decimals=2), "", pl.lit(text)),
        limits=pl.lit(text),
        stratum=pl.lit(None, dtype=pl.String),
        markers=(params.numerator, params.denominator),
    )


class AgeBand(_Params):
    """Ages at collection [from_hours, to_hours) with their tier limits."""

    from_hours: float = Field(ge=0)
    to_hours: float | None = None
    limits: TierLimits

    @model_validator(mode="after")
    def _order(self) -> AgeBand:
        if self.to_hours is not None and self.to_hours <= self.from_hours:
            raise ValueError(f"age band to_hours {self.to_hours} <= from_hours {self.from_hours}")
        _ordered(self.limits, "high")
        return self

    @property
    def label(self) -> str:
        """``0-72 h`` or ``≥120 h``."""
        if self.to_hours is None:
            return f"≥{_num(self.from_hours)} h"
        return f"{_num(self.from_hours)}-{_num(self.to_hours)} h"


class AgeBandedParams(_Params):
    """A rising marker whose limits depend on the age at collection (``age_hours``)."""

    marker: str
    bands: tuple[AgeBand, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _contiguous(self) -> AgeBandedParams:
        bands = sorted(self.bands, key=lambda b: b.from_hours)
        if bands[0].from_hours != 0:
            raise ValueError("age bands must start at 0 hours")
        for before, after in itertools.pairwise(bands):
            if before.to_hours != after.from_hours:
                raise ValueError(
                    f"age bands must be contiguous: {before.label} is followed by {after.label}"
                )
        if bands[-1].to_hours is not None:
            raise ValueError("the last age band must be open-ended (no to_hours)")
        return self


def build_above_by_age(params: AgeBandedParams, ctx: KindContext) -> CriterionExprs:
    """A rising marker with limits stratified by age at collection in hours (e.g. TSH:
    Germany < 20 mU/L to day 3, < 15 to day 5, < 10 after). Bands are [from, to): a card
    collected at exactly 72 h belongs to the band starting at 72 h."""
    age = pl.col("age_hours")
    bands = sorted(params.bands, key=lambda b: b.from_hours)

    def by_band(items: Sequence[object]) -> pl.Expr:
        """The item of the band each row's age falls in (null when age is null)."""
        expr: pl.Expr = pl.lit(None)
        for band, item in reversed(list(zip(bands, items, strict=True))):
            cond = age >= band.from_hours
            if band.to_hours is not None:
                cond = cond & (age < band.to_hours)
            expr = pl.when(cond).then(pl.lit(item)).otherwise(expr)
        return expr

    resolved = [b.limits.resolved() for b in bands]
    limit_exprs = tuple(by_band([r[i] for r in resolved]) for i in range(3))
    texts = [limits_text(b.limits, "high") for b in bands]
    strata = [f"age band {b.label}" for b in bands]
    value = pl.col(params.marker)
    level = (
        pl.when(age.is_null())
        .then(None)
        .otherwise(tier_level(value, (limit_exprs[0], limit_exprs[1], limit_exprs[2]), "high"))
    )
    stratum = by_band(strata)
    bracket = pl.concat_str(
        [
            pl.lit("age "),
            ctx.fmt(age, decimals=1).str.strip_suffix(".0"),
            pl.lit(" h, "),
            stratum,
            pl.lit(": "),
            by_band(texts),
        ]
    )
    return CriterionExprs(
        label=params.marker,
        level=level.cast(pl.Int8),
        value=value,
        detail=_detail(
            params.marker, ctx.fmt(value, params.marker), ctx.unit(params.marker), bracket
        ),
        limits=by_band(texts),
        stratum=stratum,
        markers=(params.marker,),
    )


def builtin_kinds() -> tuple[RuleKind, ...]:
    """The kinds the core provides; conditions' plug-ins may add more."""
    return (
        RuleKind("above", AboveParams, build_above),
        RuleKind("below", BelowParams, build_below),
        RuleKind("ratio_above", RatioParams, build_ratio_above),
        RuleKind("above_by_age", AgeBandedParams, build_above_by_age),
    )
