"""Cards kept but flagged for the coordinator: essential information missing, a birth
weight implausible for the gestation, a result reported beyond the plausible range."""

from __future__ import annotations

import polars as pl

from analytes import Catalogue

#: Birth weight (g) plausible for completed weeks of gestation: (from_weeks, min_g, max_g).
#: Wide bands (beyond about +/-4 SD of the Fenton charts); outside -> a warning, not a hold.
WEIGHT_FOR_GESTATION = (
    (20, 250, 1200),
    (26, 350, 2200),
    (30, 600, 3300),
    (34, 1000, 4500),
    (37, 1400, 6500),
)


def specimen_warnings(cards: pl.DataFrame) -> pl.DataFrame:
    """Cards kept but flagged: missing essential information (weight, gestation, the CF
    consent), weight implausible for gestation. Columns: specimen_id, column_name, reason."""
    band_min = pl.lit(None, dtype=pl.Int64)
    band_max = pl.lit(None, dtype=pl.Int64)
    for weeks, lo, hi in WEIGHT_FOR_GESTATION:
        in_band = pl.col("gestational_age_weeks") >= weeks
        band_min = pl.when(in_band).then(pl.lit(lo)).otherwise(band_min)
        band_max = pl.when(in_band).then(pl.lit(hi)).otherwise(band_max)
    weight = pl.col("birth_weight_g")
    checks = [
        (
            pl.col("birth_weight_g").is_null(),
            "birth_weight_g",
            pl.lit("missing essential information: birth weight"),
        ),
        (
            pl.col("gestational_age_weeks").is_null(),
            "gestational_age_weeks",
            pl.lit("missing essential information: gestational age"),
        ),
        (
            # missing is not "no": CF is screened only with the parents' recorded consent
            pl.col("consent_cf").is_null(),
            "consent_cf",
            pl.lit("missing essential information: CF consent (not screened for CF)"),
        ),
        (
            (weight < band_min) | (weight > band_max),
            "birth_weight_g",
            pl.concat_str(
                [
                    pl.lit("birth weight "),
                    weight.cast(pl.String),
                    pl.lit(" g implausible at "),
                    pl.col("gestational_age_weeks").cast(pl.String),
                    pl.lit(" weeks (expected "),
                    band_min.cast(pl.String),
                    pl.lit("-"),
                    band_max.cast(pl.String),
                    pl.lit(" g): check the card"),
                ]
            ),
        ),
    ]
    frames = [
        cards.filter(hit.fill_null(False)).select(
            "specimen_id", column_name=pl.lit(col), reason=text
        )
        for hit, col, text in checks
    ]
    return pl.concat(frames).sort("specimen_id", "column_name")


def result_warnings(results: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    """Cards with a censored result whose bound lies past the analyte's plausible range
    (TSH ``>3000`` above 2000): kept and acted on (at least / at most the bound, never below
    zero), but an instrument or unit error is possible. ``results``: validated results
    (value in the catalogue unit). Columns: specimen_id, column_name (the analyte), reason."""
    value, sign = pl.col("value"), pl.col("censored")
    beyond = ((sign == ">") & (value > pl.col("plausible_max"))) | (
        (sign == "<") & (value < pl.col("plausible_min"))
    )
    ranges = {
        a.code: f"{a.plausible.min:g}-{a.plausible.max:g} {a.unit}" for a in catalogue.analytes
    }
    hits = (
        results.filter(sign.is_not_null())
        .select(pl.col("specimen_id", "analyte").cast(pl.String), "value", "censored")
        .join(catalogue.plausible_frame(), on="analyte")
        .filter(beyond)
    )
    return (
        hits.group_by("specimen_id", "analyte")
        .agg(shown=pl.concat_str([sign, value.round(6).cast(pl.String)]).unique().sort())
        .select(
            "specimen_id",
            column_name=pl.col("analyte"),
            reason=pl.concat_str(
                [
                    pl.col("analyte"),
                    pl.lit(" reported as "),
                    pl.col("shown").list.join(", "),
                    pl.lit(", past its plausible range ("),
                    pl.col("analyte").replace_strict(ranges, default=""),
                    pl.lit("): kept and acted on; check the instrument and the unit"),
                ]
            ),
        )
        .sort("specimen_id", "column_name")
    )
