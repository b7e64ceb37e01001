"""A small real plug-in: KREC-based B-cell deficiency screening, with its own rule kind.

Used by tests/rules/test_plugins.py, which installs this package and runs the pipeline with a
cutoff set naming KREC, without any change to the core code.
"""

import polars as pl
from pydantic import BaseModel, ConfigDict

from nbs.conditions import ConditionPlugin
from nbs.rules.kinds import CriterionExprs, Kind, KindContext, KindRegistry, LimitRow, reaches


class KrecParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: float


class KrecLow(Kind[KrecParams]):
    """KREC copies/µL at or below ``limit`` reach the referral tier (no amplification
    counts as zero); a value above it is tier 0; no value is not evaluated."""

    name = "krec_low"
    params = KrecParams

    def build(self, params: KrecParams, ctx: KindContext) -> CriterionExprs:
        value = pl.col("KREC")
        # reaches: at the limit counts, up to float noise, as in every built-in kind
        undetermined = value.is_null() & (pl.col("KREC__flag") == "undetermined")
        low = reaches(value, params.limit, "low") | undetermined
        level = pl.when(low.fill_null(False)).then(3).when(value.is_not_null()).then(0)
        text = f"referral ≤{params.limit:g}"
        return CriterionExprs(
            label="KREC",
            level=level.otherwise(None).cast(pl.Int8),
            value=value,
            detail=pl.concat_str(
                [
                    pl.lit("KREC "),
                    value.cast(pl.String).fill_null("no value"),
                    pl.lit(f" copies/µL ({text})"),
                ]
            ),
            limits=pl.lit(text),
            stratum=pl.lit(None, dtype=pl.String),
            markers=("KREC",),
        )

    def describe(self, params: KrecParams, registry: KindRegistry) -> list[LimitRow]:
        return [LimitRow("KREC", "≤", referral=params.limit)]


krec = ConditionPlugin(
    code="KREC",
    name="B-cell deficiency (KREC)",
    version="0.1.0",
    kinds=(KrecLow,),
)
