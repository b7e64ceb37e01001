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


class KrecPanelReader:
    """A vendor adapter as a plug-in reader (entry point group ``nbs.readers``): the
    synthetic "KREC panel" export, a first line ``#KREC-PANEL v1 PLATE <id> AT <time>``,
    then ``card;copies`` per well."""

    name = "krec-panel"

    def recognise(self, head: str) -> bool:
        return head.startswith("#KREC-PANEL v1")

    def read(self, text: str, file_name: str) -> pl.DataFrame:
        first, *lines = text.splitlines()
        words = first.split()
        plate, at = words[words.index("PLATE") + 1], words[words.index("AT") + 1]
        cards = [line.split(";") for line in lines if line.strip()]
        n = len(cards)
        return pl.DataFrame(
            {
                "specimen_id": [c[0] for c in cards],
                "analyte": ["KREC"] * n,
                "value": [c[1] for c in cards],
                "unit": ["copies/µL"] * n,
                "measured_at": [at] * n,
                "instrument": ["KREC-PANEL"] * n,
                "plate_id": [plate] * n,
                "well": [f"A{i + 1}" for i in range(n)],
                "replicate": [None] * n,
                "flag": [None] * n,
                "sample_type": ["specimen"] * n,
                "material": [None] * n,
                "material_level": [None] * n,
                "material_lot": [None] * n,
                "nominal": [None] * n,
                "ct": [None] * n,
            },
            schema_overrides={c: pl.String for c in ("replicate", "flag", "material")},
        )


reader = KrecPanelReader()
