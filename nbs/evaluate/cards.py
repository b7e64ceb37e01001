"""A batch's cards made ready for the rules: optional columns, age and maturity at
collection, the cutoff set in force."""

from __future__ import annotations

import polars as pl

from cutoffs.model import CutoffSet

#: optional card columns the rules read, added empty where a caller's cards lack them
OPTIONAL_CARD_COLUMNS = {"last_transfusion_at": pl.Datetime("us"), "received_at": pl.Datetime("us")}


def prepare_cards(cards: pl.DataFrame) -> pl.DataFrame:
    """Add ``age_hours`` (birth to collection) and ``postmenstrual_weeks`` (gestation plus
    age at collection) used by age- and maturity-dependent rules."""
    missing = [
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in OPTIONAL_CARD_COLUMNS.items()
        if name not in cards.columns
    ]
    return (
        cards.with_columns(*missing)
        .with_columns(
            age_hours=(pl.col("collected_at") - pl.col("birth_at")).dt.total_seconds() / 3600.0,
        )
        .with_columns(
            postmenstrual_weeks=pl.col("gestational_age_weeks") + pl.col("age_hours") / 168.0,
        )
    )


def assign_cutoff_version(cards: pl.DataFrame, sets: tuple[CutoffSet, ...]) -> pl.DataFrame:
    """Add ``cutoff_version``: the newest set in force on the card's collection date."""
    date = pl.col("collected_at").dt.date()
    expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for s in sorted(sets, key=lambda s: s.effective_from):
        expr = pl.when(date >= s.effective_from).then(pl.lit(s.version)).otherwise(expr)
    return cards.with_columns(cutoff_version=expr)


#: the card columns rules may read as covariates (strata by age, maturity, weight)
COVARIATES = (
    "specimen_id",
    "age_hours",
    "gestational_age_weeks",
    "postmenstrual_weeks",
    "birth_weight_g",
)
