"""The kind whose limits come from the data: ``above_percentile``."""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from cutoffs.model import TierLimits
from nbs.rules.limits import KindParams, detail, limits_text, ordered, tier_level
from nbs.rules.registry import CriterionExprs, Kind, KindContext, KindRegistry, LimitRow


class PercentileParams(KindParams):
    """A rising marker whose limits are percentiles of a reference distribution."""

    marker: str
    percentiles: TierLimits
    of: Literal["run", "window"] = "window"
    window_days: int = Field(default=90, ge=1, le=730)
    min_values: int = Field(default=1000, ge=10)
    fallback: TierLimits

    @model_validator(mode="after")
    def _check(self) -> PercentileParams:
        ordered(self.percentiles, "high")
        ordered(self.fallback, "high")
        if not all(0 < p < 100 for p in self.percentiles.resolved()):
            raise ValueError("percentiles must lie strictly between 0 and 100")
        return self


def percentile_limits(
    params: PercentileParams, sample: np.ndarray
) -> tuple[tuple[float, float, float], str]:
    """The limits for a reference sample and the text that explains them.

    With at least ``min_values`` values: the percentiles of the sample (scipy, linear
    interpolation); otherwise the fixed ``fallback`` limits, and the text says so.
    """
    n = int(sample.size)
    where = "this run" if params.of == "run" else f"{params.window_days}-day window"
    if n >= params.min_values:
        # imported here: scipy.stats costs ~0.7 s to import, and most runs never need it
        from scipy.stats import scoreatpercentile

        values = tuple(float(scoreatpercentile(sample, p)) for p in params.percentiles.resolved())
        names = ("retest", "repeat", "referral")
        parts = [
            f"{name} ≥{v:.1f} (p{p:g})"
            for name, v, p in zip(names, values, params.percentiles.resolved(), strict=True)
        ]
        return (values[0], values[1], values[2]), f"{', '.join(parts)} of {where}, n={n}"
    fixed = params.fallback.resolved()
    return fixed, (
        f"{limits_text(params.fallback, 'high')}: fixed fallback, {n} values in "
        f"{where} < {params.min_values}"
    )


class AbovePercentile(Kind[PercentileParams]):
    """A rising marker with limits at percentiles of this run's or a rolling window's first
    punches (scipy), with fixed fallback limits below a minimum count (German CF protocol).

    E.g. Germany: IRT >= 99.0th percentile -> PAP, >= 99.9th -> DNA. Below ``min_values``
    reference values the fixed ``fallback`` limits apply; the reason states which limits
    were used, from how many values.
    """

    name = "above_percentile"
    params = PercentileParams

    def build(self, params: PercentileParams, ctx: KindContext) -> CriterionExprs:
        sample = (
            ctx.sample(params.marker, params.of, params.window_days)
            if ctx.sample
            else np.array([], dtype=float)
        )
        limits, text = percentile_limits(params, sample)
        value = pl.col(params.marker)
        return CriterionExprs(
            label=params.marker,
            level=tier_level(value, limits, "high"),
            value=value,
            detail=detail(
                params.marker, ctx.shown(params.marker), ctx.unit(params.marker), pl.lit(text)
            ),
            limits=pl.lit(text),
            stratum=pl.lit(None, dtype=pl.String),
            markers=(params.marker,),
        )

    def describe(self, params: PercentileParams, registry: KindRegistry) -> list[LimitRow]:
        """Two rows: the percentiles, and the fixed fallback limits."""
        where = "run" if params.of == "run" else f"{params.window_days}-day window"
        p = params.percentiles.resolved()
        f = params.fallback.resolved()
        return [
            LimitRow(params.marker, f"≥ percentile of {where}", "percentiles", *p),
            LimitRow(params.marker, "≥", f"fallback below {params.min_values} values", *f),
        ]
