"""A call's reason and its JSON explanation, from what :mod:`nbs.evaluate.decide` found.

The reason names the call, its urgency and basis, each marker's value with its limits,
stratum and tier, then what else the call rests on (the first punch, the second tier,
retests awaited, a failed punch, punches that disagree, the card's problem) and the cutoff
version. The JSON explanation gives the same facts structured, for the review gauges.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import polars as pl

from cutoffs.model import ConditionCutoffs, ReplicatePolicy
from nbs.evaluate.decide import (
    AGE_LIMIT_BASIS,
    CALLS_SCHEMA,
    CONSENT_UNKNOWN_BASIS,
    NO_CONSENT_BASIS,
    NOT_ASSESSABLE_BASIS,
    OUTVOTED,
    PUNCH_ERROR,
)
from nbs.evaluate.jsontext import json_object, json_scalar, json_text


def explain(
    frame: pl.DataFrame,
    code: str,
    cond: ConditionCutoffs,
    policy: ReplicatePolicy,
    first_criteria: Callable[[pl.DataFrame], pl.DataFrame],
) -> pl.DataFrame:
    """The calls of ``frame`` (as :func:`~nbs.evaluate.decide.decide` made them) for
    condition ``code`` in ``CALLS_SCHEMA`` columns, with their reasons and explanations.
    ``first_criteria`` gives the first punch's criteria (JSON) of the cards asked for."""
    markers = list(cond.markers)
    frame = frame.with_columns(disagreement=_disagreement(policy))
    columns = {
        "specimen_id": pl.col("specimen_id"),
        "baby_id": pl.col("baby_id"),
        "condition": pl.lit(code),
        "call": pl.col("call"),
        "urgency": pl.col("urgency"),
        "level_first": pl.col("first_level"),
        "level_final": pl.when(pl.col("on_final")).then(pl.col("final_level")),
        "basis": pl.col("basis"),
        "reason": _reason(code, cond, policy.retests_needed, markers),
        "explanation": _explanation(code),
        "rule_version": pl.col("cutoff_version"),
        "evidence": pl.col("evidence"),
    }
    # Explained (JSON) is every call someone acts on or reads twice: all but a negative call
    # on a satisfactory card, whose reason already gives each value, its limits, stratum
    # and cutoff version. The JSON of every negative call would cost a fifth of a run's
    # evaluation and half of its calls' bytes.
    explained = (pl.col("call") != "negative") | pl.col("card_problem").is_not_null()
    shown = frame.filter(explained)
    shown = shown.join(first_criteria(shown.select("specimen_id")), on="specimen_id", how="left")
    plain = frame.filter(~explained)
    return pl.concat(
        [
            shown.select(**columns).cast(CALLS_SCHEMA),
            plain.select(**(columns | {"explanation": pl.lit(None, dtype=pl.String)})).cast(
                CALLS_SCHEMA
            ),
        ]
    )


def _disagreement(policy: ReplicatePolicy) -> pl.Expr:
    """Rule 6's note where it raised a negative decision (empty elsewhere)."""
    kind = pl.col("disagreement_kind")
    which = (
        pl.when(pl.col("first_level") >= 3)
        .then(pl.lit("the first punch"))
        .otherwise(pl.lit("a retest punch"))
    )
    return (
        pl.when(kind == PUNCH_ERROR)
        .then(
            pl.lit(
                "; punches disagree: the first punch reached referral and every retest "
                "stayed below the retest limit: suspected punch or plate error, "
                f"{policy.punch_error} (never negative)"
            )
        )
        .when(kind == OUTVOTED)
        .then(
            pl.concat_str(
                [
                    pl.lit("; punches disagree: "),
                    which,
                    pl.lit(
                        f" reached referral, the decision on the punches did not: "
                        f"{policy.outvoted} (never negative)"
                    ),
                ]
            )
        )
        .otherwise(pl.lit(""))
    )


def _reason(code: str, cond: ConditionCutoffs, retests_needed: int, markers: list[str]) -> pl.Expr:
    """The reason of every call: why not evaluated, or the call on its values and notes."""
    call, urgency = pl.col("call"), pl.col("urgency")
    detail = (
        pl.when(pl.col("on_final")).then(pl.col("final_detail")).otherwise(pl.col("first_detail"))
    )
    return (
        pl.when(call == "not_evaluated")
        .then(_not_screened_reason(code, cond, markers))
        .otherwise(
            pl.concat_str(
                [
                    pl.lit(f"{code} "),
                    call,
                    pl.when(urgency.is_not_null())
                    .then(pl.concat_str([pl.lit(" ("), urgency, pl.lit(")")]))
                    .otherwise(pl.lit("")),
                    pl.lit(" on "),
                    pl.col("basis"),
                    pl.lit(": "),
                    detail,
                    *_notes(cond, retests_needed),
                    pl.lit(" [cutoffs "),
                    pl.col("cutoff_version"),
                    pl.lit("]"),
                ]
            )
        )
    )


def _notes(cond: ConditionCutoffs, retests_needed: int) -> list[pl.Expr]:
    """The parts of a reason after the values: second tier, retests, failures, context."""
    return [
        pl.col("report_note"),
        _first_punch_note(),
        _second_tier_note(cond),
        _retest_note(retests_needed),
        _failure_note(retests_needed),
        pl.col("disagreement"),
        _card_note(),
    ]


def _first_punch_note() -> pl.Expr:
    """Where the retests decided: what the first punch said."""
    return (
        pl.when(pl.col("on_final"))
        .then(pl.concat_str([pl.lit("; first punch: "), pl.col("first_detail")]))
        .otherwise(pl.lit(""))
    )


def _second_tier_note(cond: ConditionCutoffs) -> pl.Expr:
    """Where the second tier applies: what it decided, or that its result is awaited or
    missing."""
    call = pl.col("call")
    t2_name = cond.second_tier.name if cond.second_tier else ""
    return (
        pl.when(pl.col("t2_applies") & pl.col("t2_level").is_not_null())
        .then(pl.concat_str([pl.lit(f"; second tier {t2_name} decides: "), pl.col("t2_detail")]))
        .when(pl.col("t2_applies") & (call == "retest"))
        .then(pl.lit(f"; second tier {t2_name} needed on this card: no result yet"))
        .when(pl.col("t2_applies"))
        .then(pl.lit(f"; no second tier {t2_name} result: first tier decides"))
        .otherwise(pl.lit(""))
    )


def _retest_note(retests_needed: int) -> pl.Expr:
    """While the retests come in: how many of them are in."""
    return (
        pl.when((pl.col("call") == "retest") & (pl.col("n_retests") > 0) & ~pl.col("on_final"))
        .then(
            pl.concat_str(
                [
                    pl.lit("; "),
                    pl.col("n_retests").cast(pl.String),
                    pl.lit(f" of {retests_needed} retest punches in"),
                ]
            )
        )
        .otherwise(pl.lit(""))
    )


def _failure_note(retests_needed: int) -> pl.Expr:
    """A failed punch (DNA failure) or a punch without a usable value, and what follows."""
    call, on_final = pl.col("call"), pl.col("on_final")
    stalled = (
        ~on_final
        & (pl.col("n_retest_punches") >= retests_needed)
        & call.is_in(["repeat_specimen", "referral"])
        & pl.col("card_problem").is_null()
        & pl.col("first_level").is_not_null()
    )
    return (
        pl.when(on_final & pl.col("final_invalid"))
        .then(pl.lit("; DNA failure persists on the retest punches: a new card is needed"))
        .when(stalled)
        .then(
            pl.concat_str(
                [
                    pl.lit(
                        f"; the {retests_needed} retest punches lack a value: no decision on them"
                    ),
                    pl.when(pl.col("retest_failsafe") >= 2)
                    .then(
                        pl.concat_str(
                            [
                                pl.lit("; failsafe on the retest punches: "),
                                pl.col("retest_failsafe_detail"),
                            ]
                        )
                    )
                    .otherwise(pl.lit(": a new card")),
                ]
            )
        )
        .when(~on_final & pl.col("first_invalid").fill_null(False))
        .then(pl.lit("; DNA failure on the first punch: retest"))
        .when(pl.col("first_level").is_null() & (call == "retest"))
        .then(pl.lit("; no usable qPCR value on the first punch: re-punch"))
        .when(pl.col("first_level").is_null() & (call == "repeat_specimen") & ~on_final)
        .then(pl.lit(f"; no usable qPCR value after {retests_needed} retest punches: a new card"))
        .otherwise(pl.lit(""))
    )


def _card_note() -> pl.Expr:
    """The card's specimen problem where it changes what the call means."""
    call, on_final = pl.col("call"), pl.col("on_final")
    has_problem = pl.col("card_problem").is_not_null()
    return (
        pl.when(has_problem & (call == "negative"))
        .then(
            pl.concat_str(
                [
                    pl.lit("; not conclusive: repeat card requested ("),
                    pl.col("card_problem"),
                    pl.lit(")"),
                ]
            )
        )
        .when(has_problem & (call == "referral") & ~on_final)
        .then(pl.concat_str([pl.lit("; acted on at once ("), pl.col("card_problem"), pl.lit(")")]))
        .otherwise(pl.lit(""))
    )


def _not_screened_reason(code: str, cond: ConditionCutoffs, markers: list[str]) -> pl.Expr:
    """The reason of a call not evaluated (rule 1, or no value)."""
    fields = ", ".join(cond.requires_true)
    age_days = (pl.col("age_hours") / 24).round(0).cast(pl.Int64).cast(pl.String)
    not_assessable = (
        pl.concat_str(
            [
                pl.lit(f"{code} not evaluated: {cond.not_assessable.reason} (born at "),
                pl.col("gestational_age_weeks").cast(pl.String),
                pl.lit(" weeks, "),
                age_days,
                pl.lit(" days old)"),
            ]
        )
        if cond.not_assessable
        else pl.lit("")
    )
    too_old = (
        pl.concat_str(
            [
                pl.lit(f"{code} not evaluated: {cond.valid_until_age.reason} (collected at "),
                age_days,
                pl.lit(f" days of life; valid before {cond.valid_until_age.days:g} days)"),
            ]
        )
        if cond.valid_until_age
        else pl.lit("")
    )
    basis = pl.col("basis")
    return (
        pl.when(basis == NO_CONSENT_BASIS)
        .then(pl.lit(f"{code} not evaluated: no parental consent ({fields} not true)"))
        .when(basis == CONSENT_UNKNOWN_BASIS)
        .then(
            pl.lit(
                f"{code} not evaluated: parental consent not recorded ({fields} missing): "
                "missing information, ask the submitter"
            )
        )
        .when(basis == AGE_LIMIT_BASIS)
        .then(too_old)
        .when(basis == NOT_ASSESSABLE_BASIS)
        .then(not_assessable)
        .otherwise(pl.concat_str([pl.lit(f"{code} not evaluated: "), _missing_text(markers)]))
    )


def _explanation(code: str) -> pl.Expr:
    """The call's JSON explanation; ``first_punch`` only where the retests decided
    (otherwise it is the criteria themselves)."""
    on_final = pl.col("on_final")
    return json_object(
        {
            "condition": pl.lit(json.dumps(code)),
            "call": json_text(pl.col("call")),
            "basis": json_text(pl.col("basis")),
            "tier_first_punch": json_scalar(pl.col("first_level")),
            "tier_final": json_scalar(pl.when(on_final).then(pl.col("final_level"))),
            "tier_highest_punch": json_scalar(pl.col("highest")),
            "retest_punches": json_scalar(pl.col("n_retests")),
            "invalid": json_scalar(
                pl.when(on_final).then(pl.col("final_invalid")).otherwise(pl.col("first_invalid"))
            ),
            "criteria": pl.when(on_final)
            .then(pl.col("final_criteria"))
            .otherwise(pl.col("first_criteria"))
            .fill_null("null"),
            "first_punch": pl.when(on_final).then(pl.col("first_criteria")).fill_null("null"),
            "second_tier": pl.when(pl.col("t2_applies"))
            .then(pl.col("t2_criteria"))
            .fill_null("null"),
            "disagreement": json_text(
                pl.when(pl.col("disagreement") != "").then(
                    pl.col("disagreement").str.strip_prefix("; ")
                )
            ),
            "card_problem": json_text(pl.col("card_problem")),
            "cutoff_version": json_text(pl.col("cutoff_version")),
        }
    )


def _missing_text(markers: list[str]) -> pl.Expr:
    """Names the markers without a value on the first punch (never received, no value
    reported, or their row held in quarantine)."""
    missing = pl.concat_str(
        [
            pl.when(~pl.col("evidence").str.contains(f"(^|,){m}#1(,|$)")).then(pl.lit(m))
            for m in markers
        ],
        separator=", ",
        ignore_nulls=True,
    )
    return (
        pl.when(pl.col("evidence") == "")
        .then(pl.lit(f"awaiting {', '.join(markers)} result(s)"))
        .otherwise(
            pl.when(missing != "")
            .then(pl.concat_str([pl.lit("no first-punch result for "), missing]))
            .otherwise(pl.lit(f"no value reported for {' or '.join(markers)} on the first punch"))
        )
    )
