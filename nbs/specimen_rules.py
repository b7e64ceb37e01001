"""Specimen-level rules: cards that need a repeat card whatever their results say.

Vectorised over all cards of a run. The card is still evaluated for every condition; the
evaluator uses ``card_problem`` to act at once on clearly abnormal results and to mark
negative results as not conclusive.
"""

from __future__ import annotations

import polars as pl

from cutoffs.model import SpecimenRules

#: Columns this module adds to the cards frame.
FINDING_COLUMNS = ("card_problem", "card_problem_urgency")


def _fmt(expr: pl.Expr, decimals: int = 1) -> pl.Expr:
    return expr.round(decimals).cast(pl.String).str.strip_suffix(".0")


def specimen_findings(cards: pl.DataFrame, rules: SpecimenRules) -> pl.DataFrame:
    """Add ``card_problem`` (text naming every problem, null if none) and its urgency.

    Expects ``specimen_quality``, ``age_hours``, ``transfusion``,
    ``gestational_age_weeks`` and ``is_first_card`` columns.
    """
    first = pl.col("is_first_card").fill_null(True)
    parts: list[pl.Expr] = []
    urgent: list[pl.Expr] = []

    if rules.unsatisfactory is not None:
        hit = pl.col("specimen_quality") != "ok"
        if rules.unsatisfactory.first_card_only:
            hit = hit & first
        parts.append(
            pl.when(hit).then(
                pl.concat_str(
                    [pl.lit("unsatisfactory card ("), pl.col("specimen_quality"), pl.lit(")")]
                )
            )
        )
        urgent.append(hit & pl.lit(rules.unsatisfactory.urgency == "urgent"))
    if rules.early_collection is not None:
        limit = rules.early_collection.min_age_hours
        hit = pl.col("age_hours") < limit
        if rules.early_collection.first_card_only:
            hit = hit & first
        parts.append(
            pl.when(hit).then(
                pl.concat_str(
                    [
                        pl.lit("collected at "),
                        _fmt(pl.col("age_hours")),
                        pl.lit(f" h of life (< {limit:g} h)"),
                    ]
                )
            )
        )
        urgent.append(hit & pl.lit(rules.early_collection.urgency == "urgent"))
    if rules.transfusion is not None:
        hit = pl.col("transfusion").fill_null(False)
        if rules.transfusion.first_card_only:
            hit = hit & first
        parts.append(pl.when(hit).then(pl.lit("transfusion before collection")))
        urgent.append(hit & pl.lit(rules.transfusion.urgency == "urgent"))
    if rules.preterm is not None:
        weeks = rules.preterm.below_weeks
        hit = pl.col("gestational_age_weeks") < weeks
        if rules.preterm.first_card_only:
            hit = hit & first
        hit = hit.fill_null(False)
        parts.append(
            pl.when(hit).then(
                pl.concat_str(
                    [
                        pl.lit("born at "),
                        pl.col("gestational_age_weeks").cast(pl.String),
                        pl.lit(f" weeks (< {weeks})"),
                    ]
                )
            )
        )
        urgent.append(hit & pl.lit(rules.preterm.urgency == "urgent"))

    if not parts:
        return cards.with_columns(
            card_problem=pl.lit(None, dtype=pl.String),
            card_problem_urgency=pl.lit(None, dtype=pl.String),
        )
    problem = pl.concat_str(parts, separator="; ", ignore_nulls=True)
    any_urgent = pl.any_horizontal([u.fill_null(False) for u in urgent])
    return cards.with_columns(
        card_problem=pl.when(problem != "").then(problem),
    ).with_columns(
        card_problem_urgency=pl.when(pl.col("card_problem").is_not_null()).then(
            pl.when(any_urgent).then(pl.lit("urgent")).otherwise(pl.lit("routine"))
        ),
    )
