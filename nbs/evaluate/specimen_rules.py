"""Specimen-level rules: cards that need a repeat card whatever their results say.

Vectorised over all cards of a run. The card is still evaluated for every condition; the
evaluator uses ``card_problem`` to act at once on clearly abnormal results and to mark
negative results as not conclusive.

The same rules decide whether a later card can answer a request for a repeat card: a card
that breaks any of them itself (unsatisfactory, too early, too soon after a transfusion,
before the preterm protocol's age) answers nothing (``answer_blocker``), whether or not it
is the baby's first card.
"""

from __future__ import annotations

import polars as pl

from cutoffs.model import SpecimenRules

#: Columns this module adds to the cards frame.
FINDING_COLUMNS = ("card_problem", "card_problem_urgency", "answer_blocker")
#: how the transit rule's problem begins: a card the submitter called ``ok`` is found by
#: this text in its card-level recall and counted as ``too_old`` in the statistics
#: (the view too_old_cards, ``nbs/store/views/007_too_old_cards.sql``)
TOO_OLD_TEXT = "unsatisfactory card (too_old: received "


def _fmt(expr: pl.Expr, decimals: int = 1) -> pl.Expr:
    return expr.round(decimals).cast(pl.String).str.strip_suffix(".0")


def _days(later: str, earlier: str) -> pl.Expr:
    return (pl.col(later) - pl.col(earlier)).dt.total_seconds() / 86400.0


def _findings(rules: SpecimenRules) -> list[tuple[pl.Expr, pl.Expr, bool, str]]:
    """Each rule as (broken, text, first card only, urgency): ``broken`` is evaluated on
    every card; the first-card-only rules make a request only from a baby's first card."""
    found: list[tuple[pl.Expr, pl.Expr, bool, str]] = []
    if rules.unsatisfactory is not None:
        rule = rules.unsatisfactory
        text = pl.concat_str(
            [pl.lit("unsatisfactory card ("), pl.col("specimen_quality"), pl.lit(")")]
        )
        found.append((pl.col("specimen_quality") != "ok", text, rule.first_card_only, rule.urgency))
    if rules.transit is not None:
        limit = rules.transit.max_days
        transit = _days("received_at", "collected_at")
        text = pl.concat_str(
            [
                pl.lit(TOO_OLD_TEXT),
                _fmt(transit),
                pl.lit(f" days after collection, > {limit:g})"),
            ]
        )
        found.append((transit > limit, text, False, rules.transit.urgency))
    if rules.early_collection is not None:
        rule = rules.early_collection
        text = pl.concat_str(
            [
                pl.lit("collected at "),
                _fmt(pl.col("age_hours")),
                pl.lit(f" h of life (< {rule.min_age_hours:g} h)"),
            ]
        )
        broken = pl.col("age_hours") < rule.min_age_hours
        found.append((broken, text, rule.first_card_only, rule.urgency))
    if rules.transfusion is not None:
        found.append(_transfusion(rules))
    if rules.preterm is not None:
        found.append(_preterm(rules))
    return found


def _transfusion(rules: SpecimenRules) -> tuple[pl.Expr, pl.Expr, bool, str]:
    """Collected after a transfusion: within ``repeat_after_days`` of the last one, or
    transfused with no date given (the date is what shows the card is valid again)."""
    rule = rules.transfusion
    assert rule is not None
    since = _days("collected_at", "last_transfusion_at")
    dated = pl.col("last_transfusion_at").is_not_null() & (since >= 0)
    transfused = pl.col("transfusion").fill_null(False) | dated
    broken = transfused & (~dated | (since < rule.repeat_after_days))
    text = (
        pl.when(dated)
        .then(
            pl.concat_str(
                [
                    pl.lit("collected "),
                    _fmt(since),
                    pl.lit(
                        f" days after the last transfusion (< {rule.repeat_after_days:g}; "
                        "transfusion before collection)"
                    ),
                ]
            )
        )
        .otherwise(pl.lit("transfusion before collection"))
    )
    return broken, text, rule.first_card_only, rule.urgency


def _preterm(rules: SpecimenRules) -> tuple[pl.Expr, pl.Expr, bool, str]:
    """On the preterm / very-low-birth-weight protocol (by gestation or by weight) and not
    yet at the age from which a card answers it."""
    rule = rules.preterm
    assert rule is not None
    weeks = pl.col("gestational_age_weeks")
    on_protocol = (weeks < rule.below_weeks).fill_null(False)
    if rule.below_grams is not None:
        on_protocol = on_protocol | (pl.col("birth_weight_g") < rule.below_grams).fill_null(False)
    postmenstrual = weeks + pl.col("age_hours") / 168.0
    too_young = (
        pl.when(weeks.is_not_null())
        .then(postmenstrual < rule.answer_weeks)
        .otherwise(pl.col("age_hours") / 24.0 < rule.repeat_at_age_days)
    ).fill_null(True)
    why: pl.Expr = pl.when(weeks < rule.below_weeks).then(
        pl.concat_str(
            [pl.lit("born at "), weeks.cast(pl.String), pl.lit(f" weeks (< {rule.below_weeks})")]
        )
    )
    if rule.below_grams is not None:
        why = (
            pl.when(weeks < rule.below_weeks)
            .then(why)
            .when(pl.col("birth_weight_g") < rule.below_grams)
            .then(
                pl.concat_str(
                    [
                        pl.lit("birth weight "),
                        pl.col("birth_weight_g").cast(pl.String),
                        pl.lit(f" g (< {rule.below_grams} g)"),
                    ]
                )
            )
        )
    until = (
        pl.when(weeks.is_not_null())
        .then(
            pl.concat_str(
                [
                    pl.lit("; postmenstrual age "),
                    _fmt(postmenstrual),
                    pl.lit(f" weeks, a card from {rule.answer_weeks:g} weeks answers"),
                ]
            )
        )
        .otherwise(
            pl.concat_str(
                [
                    pl.lit("; "),
                    _fmt(pl.col("age_hours") / 24.0),
                    pl.lit(f" days old, a card from day {rule.repeat_at_age_days:g} answers"),
                ]
            )
        )
    )
    text = pl.concat_str([why, until])
    return on_protocol & too_young, text, rule.first_card_only, rule.urgency


def specimen_findings(cards: pl.DataFrame, rules: SpecimenRules) -> pl.DataFrame:
    """Add ``card_problem`` (text naming every problem that makes this card request a
    repeat card, null if none), its urgency, and ``answer_blocker`` (text naming every
    rule this card breaks itself, null if none: such a card answers no request).

    Expects ``specimen_quality``, ``age_hours``, ``received_at``, ``collected_at``,
    ``transfusion``, ``last_transfusion_at``, ``gestational_age_weeks``,
    ``birth_weight_g`` and ``is_first_card`` columns.
    """
    first = pl.col("is_first_card").fill_null(True)
    found = _findings(rules)
    if not found:
        return cards.with_columns(
            card_problem=pl.lit(None, dtype=pl.String),
            card_problem_urgency=pl.lit(None, dtype=pl.String),
            answer_blocker=pl.lit(None, dtype=pl.String),
        )
    problems, blockers, urgent = [], [], []
    for broken, text, first_only, urgency in found:
        hit = broken.fill_null(False)
        requests = hit & first if first_only else hit
        problems.append(pl.when(requests).then(text))
        blockers.append(pl.when(hit).then(text))
        urgent.append(requests & pl.lit(urgency == "urgent"))
    problem = pl.concat_str(problems, separator="; ", ignore_nulls=True)
    blocker = pl.concat_str(blockers, separator="; ", ignore_nulls=True)
    any_urgent = pl.any_horizontal(urgent)
    return cards.with_columns(
        card_problem=pl.when(problem != "").then(problem),
        answer_blocker=pl.when(blocker != "").then(blocker),
    ).with_columns(
        card_problem_urgency=pl.when(pl.col("card_problem").is_not_null()).then(
            pl.when(any_urgent).then(pl.lit("urgent")).otherwise(pl.lit("routine"))
        ),
    )
