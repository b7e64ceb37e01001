"""Kinds that compare one number with one limit per tier: ``above``, ``below``,
``ratio_above``."""

from __future__ import annotations

import math
from typing import Literal

import polars as pl
from pydantic import model_validator

from cutoffs.model import TierLimits
from nbs.rules.limits import KindParams, detail, limit_row, limits_text, ordered, tier_level
from nbs.rules.registry import CriterionExprs, Kind, KindContext, KindRegistry, LimitRow


class ThresholdParams(KindParams):
    """``marker`` compared with one limit per tier."""

    marker: str
    limits: TierLimits


class AboveParams(ThresholdParams):
    """A rising marker: limits ordered retest <= repeat_specimen <= referral."""

    @model_validator(mode="after")
    def _order(self) -> AboveParams:
        ordered(self.limits, "high")
        return self


class BelowParams(ThresholdParams):
    """A falling marker: limits ordered retest >= repeat_specimen >= referral."""

    @model_validator(mode="after")
    def _order(self) -> BelowParams:
        ordered(self.limits, "low")
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
        detail=detail(
            params.marker, ctx.shown(params.marker), ctx.unit(params.marker), pl.lit(text)
        ),
        limits=pl.lit(text),
        stratum=pl.lit(None, dtype=pl.String),
        markers=(params.marker,),
    )


class Above(Kind[AboveParams]):
    """A marker that rises in disease (e.g. Phe, C8).

    The tier is the highest limit with value >= limit.
    """

    name = "above"
    params = AboveParams

    def build(self, params: AboveParams, ctx: KindContext) -> CriterionExprs:
        return _threshold(params, ctx, "high")

    def describe(self, params: AboveParams, registry: KindRegistry) -> list[LimitRow]:
        """One row: the marker with its three limits."""
        return [limit_row(params.marker, "≥", params.limits)]


class Below(Kind[BelowParams]):
    """A marker that falls in disease (e.g. TREC).

    The tier is the highest limit with value <= limit (limits ordered retest >=
    repeat_specimen >= referral).
    """

    name = "below"
    params = BelowParams

    def build(self, params: BelowParams, ctx: KindContext) -> CriterionExprs:
        return _threshold(params, ctx, "low")

    def describe(self, params: BelowParams, registry: KindRegistry) -> list[LimitRow]:
        """One row: the marker with its three limits."""
        return [limit_row(params.marker, "≤", params.limits)]


class RatioParams(KindParams):
    """``numerator / denominator`` compared with one limit per tier."""

    numerator: str
    denominator: str
    limits: TierLimits

    @model_validator(mode="after")
    def _order(self) -> RatioParams:
        ordered(self.limits, "high")
        return self


class RatioAbove(Kind[RatioParams]):
    """The ratio of two markers, rising in disease (Phe/Tyr, C8/C10).

    The tier is the highest limit with ratio >= limit. A zero denominator gives an infinite
    ratio (flagged); 0/0 is no value (not evaluated).
    """

    name = "ratio_above"
    params = RatioParams

    def build(self, params: RatioParams, ctx: KindContext) -> CriterionExprs:
        ratio = (pl.col(params.numerator) / pl.col(params.denominator)).fill_nan(None)
        label = f"{params.numerator}/{params.denominator}"
        text = limits_text(params.limits, "high")
        # two significant digits past the smallest limit: C8/C2 0.017 must not read as 0.02
        positive = [v for v in params.limits.resolved() if v > 0]
        smallest = min(positive) if positive else 1.0
        decimals = max(2, 1 - math.floor(math.log10(smallest)))
        return CriterionExprs(
            label=label,
            level=tier_level(ratio, params.limits.resolved(), "high"),
            value=ratio,
            detail=detail(label, ctx.fmt(ratio, decimals=decimals), "", pl.lit(text)),
            limits=pl.lit(text),
            stratum=pl.lit(None, dtype=pl.String),
            markers=(params.numerator, params.denominator),
        )

    def describe(self, params: RatioParams, registry: KindRegistry) -> list[LimitRow]:
        """One row: the ratio with its three limits."""
        return [limit_row(f"{params.numerator}/{params.denominator}", "≥", params.limits)]
