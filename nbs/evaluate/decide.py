"""From a condition's scored punches to its call, urgency, reason and explanation.

The order of the rules (README, "How the engine decides"):

1. Not screened: no parental consent (or consent not recorded), a card older than the
   marker's age limit, a baby too premature for the marker: ``not_evaluated``, saying why.
2. Once the retest punches are in, they decide (their mean, or the tier k punches reach);
   a DNA failure that persists asks for a new card.
3. Before that the first punch decides: at a retest limit the card is re-punched in
   duplicate; on a card with a specimen problem a referral-level punch refers at once.
4. A qPCR condition with results but no usable value is re-punched, then a new card is
   asked for: a card with qPCR results never ends ``not_evaluated`` without an action.
5. A configured second tier decides positives from its tier on (failsafe: a first tier at
   referral refers whatever it says).
6. A punch at the referral tier is never outvoted into a negative: at least a new card.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import polars as pl

from cutoffs.model import ConditionCutoffs, ReplicatePolicy
from nbs.evaluate.jsontext import json_object, json_scalar, json_text
from nbs.rules.kinds import reaches

CALL_BY_LEVEL = {0: "negative", 1: "negative", 2: "repeat_specimen", 3: "referral"}

CALLS_SCHEMA = pl.Schema(
    {
        "specimen_id": pl.String,
        "baby_id": pl.String,
        "condition": pl.String,
        "call": pl.String,
        "urgency": pl.String,
        "level_first": pl.Int8,
        "level_final": pl.Int8,
        "basis": pl.String,
        "reason": pl.String,
        "explanation": pl.String,
        "rule_version": pl.String,
        "evidence": pl.String,
    }
)

#: ``basis`` of a call withheld because the baby is too premature for the marker: the
#: card answers nothing for that condition, a later card is needed
NOT_ASSESSABLE_BASIS = "not assessable"
#: ``basis`` of calls not evaluated for a reason no later card of the baby changes (the
#: parents' choice, a marker not valid at the baby's age): they do not keep a repeat-card
#: request open
NO_CONSENT_BASIS = "no consent"
CONSENT_UNKNOWN_BASIS = "consent not recorded"
AGE_LIMIT_BASIS = "beyond age limit"
SETTLED_BASES = (NO_CONSENT_BASIS, CONSENT_UNKNOWN_BASIS, AGE_LIMIT_BASIS)


def decide(
    frame: pl.DataFrame,
    code: str,
    cond: ConditionCutoffs,
    policy: ReplicatePolicy,
    basis_text: str,
    qpcr: bool,
    first_criteria: Callable[[pl.DataFrame], pl.DataFrame],
) -> pl.DataFrame:
    """The call of every card of ``frame`` for condition ``code`` (``CALLS_SCHEMA`` columns
    plus nothing else). ``qpcr``: the condition reads a qPCR marker (rule 4).
    ``first_criteria`` gives the first punch's criteria (JSON) of the cards asked for."""
    markers = list(cond.markers)
    frame = _screened(frame, cond, policy, markers, qpcr)
    frame = frame.with_columns(base_call=_first_tier_call(policy, qpcr))
    frame = _second_tier_call(frame, cond)
    frame = _never_outvoted(frame, policy)
    frame = _not_screened(frame, basis_text)
    frame = frame.with_columns(urgency=_urgency(cond))
    return _output(frame, code, cond, policy.retests_needed, markers, first_criteria)


def _screened(
    frame: pl.DataFrame,
    cond: ConditionCutoffs,
    policy: ReplicatePolicy,
    markers: list[str],
    qpcr: bool,
) -> pl.DataFrame:
    """Whether the condition is screened on each card, and the facts the rules below read:
    ``on_final`` (the retests decide), ``first_row`` (the first punch has a row of a
    marker), ``highest`` (the highest tier any punch reached)."""
    fields = [pl.col(f) for f in cond.requires_true]
    age_days = pl.col("age_hours") / 24.0
    return frame.with_columns(
        on_final=(
            (pl.col("n_retests") >= policy.retests_needed) & pl.col("final_level").is_not_null()
        ).fill_null(False),
        consent_no=pl.any_horizontal([f == False for f in fields]).fill_null(False)  # noqa: E712
        if fields
        else pl.lit(False),
        consent_unknown=pl.any_horizontal([f.is_null() for f in fields])
        if fields
        else pl.lit(False),
        assessable=reaches(
            pl.col("gestational_age_weeks") + pl.col("age_hours") / 168.0,
            cond.not_assessable.below_postmenstrual_weeks,
            "high",
        ).fill_null(True)
        if cond.not_assessable
        else pl.lit(True),
        in_age=(age_days < cond.valid_until_age.days).fill_null(True)
        if cond.valid_until_age
        else pl.lit(True),
        # read by the qPCR rule only: other conditions spare every row the text search
        first_row=pl.any_horizontal(
            [
                pl.concat_str([pl.lit(","), pl.col("evidence"), pl.lit(",")]).str.contains(
                    f",{m}#1,", literal=True
                )
                for m in markers
            ]
        )
        if qpcr
        else pl.lit(False),
        # the highest tier a valid punch reached (a DNA failure says nothing of the marker)
        highest=pl.max_horizontal(
            pl.when(~pl.col("first_invalid").fill_null(False)).then(pl.col("first_level")),
            "max_retest_level",
        ),
    )


def _first_tier_call(policy: ReplicatePolicy, qpcr: bool) -> pl.Expr:
    """Rules 2-4: the call from the first tier alone. Retest punches that are all in but
    lack a marker never keep a card waiting: a new card, or what a failsafe on them says."""
    lf, lfin, on_final = pl.col("first_level"), pl.col("final_level"), pl.col("on_final")
    incomplete = pl.lit(qpcr) & pl.col("first_row")
    punched = pl.col("n_retest_punches") >= policy.retests_needed
    stalled = punched & (pl.col("first_invalid") | (lf >= 1))
    return (
        pl.when(on_final & pl.col("final_invalid"))
        .then(pl.lit("repeat_specimen"))
        .when(on_final)
        .then(lfin.replace_strict(CALL_BY_LEVEL, return_dtype=pl.String))
        .when(lf.is_null() & incomplete & punched)
        .then(pl.lit("repeat_specimen"))
        .when(lf.is_null() & incomplete)
        .then(pl.lit("retest"))
        .when(lf.is_null())
        .then(pl.lit("not_evaluated"))
        .when(pl.col("card_problem").is_not_null() & (lf == 3))
        .then(pl.lit("referral"))
        .when(stalled & (pl.col("retest_failsafe") >= 3))
        .then(pl.lit("referral"))
        .when(stalled)
        .then(pl.lit("repeat_specimen"))
        .when(pl.col("first_invalid"))
        .then(pl.lit("retest"))
        .when(lf >= 1)
        .then(pl.lit("retest"))
        .otherwise(pl.lit("negative"))
    )


def _second_tier_call(frame: pl.DataFrame, cond: ConditionCutoffs) -> pl.DataFrame:
    """Rule 5: from its tier on, a configured second tier decides positives."""
    tier2 = cond.second_tier
    if tier2 is None:
        return frame.with_columns(t2_applies=pl.lit(False), call=pl.col("base_call"))
    on_final = pl.col("on_final")
    from_level = 3 if tier2.from_tier == "referral" else 2
    positive = pl.col("base_call").is_in(["repeat_specimen", "referral"]) & ~(
        on_final & pl.col("final_invalid")
    )
    tier = pl.when(on_final).then(pl.col("final_level")).otherwise(pl.col("first_level"))
    reached = (tier >= from_level) & (tier < 3)  # failsafe: a referral tier refers
    applies = (positive & reached).fill_null(False)
    t2 = pl.col("t2_level")
    second = (
        pl.when(~applies)
        .then(pl.col("base_call"))
        .when(t2.is_not_null() & ~pl.col("t2_invalid"))
        .then(t2.replace_strict(CALL_BY_LEVEL, return_dtype=pl.String))
        .when(pl.lit(tier2.required))
        .then(pl.lit("retest"))
        .otherwise(pl.col("base_call"))
    )
    return frame.with_columns(t2_applies=applies, call=second)


def _never_outvoted(frame: pl.DataFrame, policy: ReplicatePolicy) -> pl.DataFrame:
    """Rule 6: a negative decision on a card where a punch reached referral becomes at
    least ``policy.outvoted``; where the first punch did and every retest stayed below the
    retest limit (a suspected punch or plate error), at least ``policy.punch_error``."""
    # also before the retests are all in: a retest punch at referral is never waved through
    # by a normal first punch
    outvoted = ((pl.col("call") == "negative") & (pl.col("highest") >= 3)).fill_null(False)
    punch_error = outvoted & (pl.col("first_level") >= 3) & (pl.col("max_retest_level") == 0)
    punch_error = punch_error & ~pl.col("first_invalid").fill_null(False)
    which = (
        pl.when(pl.col("first_level") >= 3)
        .then(pl.lit("the first punch"))
        .otherwise(pl.lit("a retest punch"))
    )
    note = (
        pl.when(punch_error)
        .then(
            pl.lit(
                "; punches disagree: the first punch reached referral and every retest "
                "stayed below the retest limit: suspected punch or plate error, "
                f"{policy.punch_error} (never negative)"
            )
        )
        .when(outvoted)
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
    call = (
        pl.when(punch_error)
        .then(pl.lit(policy.punch_error))
        .when(outvoted)
        .then(pl.lit(policy.outvoted))
        .otherwise(pl.col("call"))
    )
    return frame.with_columns(call=call, disagreement=note)


def _not_screened(frame: pl.DataFrame, basis_text: str) -> pl.DataFrame:
    """Rule 1, and the ``basis`` every call names."""
    settled = (
        pl.when(pl.col("consent_no"))
        .then(pl.lit(NO_CONSENT_BASIS))
        .when(pl.col("consent_unknown"))
        .then(pl.lit(CONSENT_UNKNOWN_BASIS))
        .when(~pl.col("in_age"))
        .then(pl.lit(AGE_LIMIT_BASIS))
        .when(~pl.col("assessable"))
        .then(pl.lit(NOT_ASSESSABLE_BASIS))
    )
    basis = (
        pl.when(settled.is_not_null())
        .then(settled)
        .when(pl.col("on_final"))
        .then(
            pl.concat_str(
                [pl.lit(basis_text + ": "), pl.col("n_retests").cast(pl.String), pl.lit(" in")]
            )
        )
        .when(pl.col("first_level").is_not_null() | (pl.col("base_call") != "not_evaluated"))
        .then(pl.lit("first punch"))
    )
    return frame.with_columns(
        call=pl.when(settled.is_not_null()).then(pl.lit("not_evaluated")).otherwise("call"),
        basis=basis,
    )


def _urgency(cond: ConditionCutoffs) -> pl.Expr:
    call = pl.col("call")
    return (
        pl.when(call == "referral")
        .then(pl.lit(cond.urgency.get("referral", "urgent")))
        .when(call == "repeat_specimen")
        .then(pl.lit(cond.urgency.get("repeat_specimen", "routine")))
        .when(call == "retest")
        .then(
            # a qPCR punch with no usable value may be an export that dropped
            # "Undetermined": as urgent as an absent target
            pl.when(
                (pl.col("first_level") == 3)
                | pl.col("t2_applies")
                | pl.col("first_level").is_null()
            )
            .then(pl.lit("urgent"))
            .otherwise(pl.lit("routine"))
        )
    )


def _notes(cond: ConditionCutoffs, retests_needed: int) -> list[pl.Expr]:
    """The parts of a reason after the values: second tier, retests, failures, context."""
    call, on_final = pl.col("call"), pl.col("on_final")
    has_problem = pl.col("card_problem").is_not_null()
    t2_name = cond.second_tier.name if cond.second_tier else ""
    t2_note = (
        pl.when(pl.col("t2_applies") & pl.col("t2_level").is_not_null())
        .then(pl.concat_str([pl.lit(f"; second tier {t2_name} decides: "), pl.col("t2_detail")]))
        .when(pl.col("t2_applies") & (call == "retest"))
        .then(pl.lit(f"; second tier {t2_name} needed on this card: no result yet"))
        .when(pl.col("t2_applies"))
        .then(pl.lit(f"; no second tier {t2_name} result: first tier decides"))
        .otherwise(pl.lit(""))
    )
    retest_note = (
        pl.when((call == "retest") & (pl.col("n_retests") > 0) & ~on_final)
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
    stalled = (
        ~on_final
        & (pl.col("n_retest_punches") >= retests_needed)
        & call.is_in(["repeat_specimen", "referral"])
        & pl.col("card_problem").is_null()
        & pl.col("first_level").is_not_null()
    )
    invalid_note = (
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
    context = (
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
    first_note = (
        pl.when(on_final)
        .then(pl.concat_str([pl.lit("; first punch: "), pl.col("first_detail")]))
        .otherwise(pl.lit(""))
    )
    return [
        pl.col("report_note"),
        first_note,
        t2_note,
        retest_note,
        invalid_note,
        pl.col("disagreement"),
        context,
    ]


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


def _reason(code: str, cond: ConditionCutoffs, retests_needed: int, markers: list[str]) -> pl.Expr:
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


def _output(
    frame: pl.DataFrame,
    code: str,
    cond: ConditionCutoffs,
    retests_needed: int,
    markers: list[str],
    first_criteria: Callable[[pl.DataFrame], pl.DataFrame],
) -> pl.DataFrame:
    columns = {
        "specimen_id": pl.col("specimen_id"),
        "baby_id": pl.col("baby_id"),
        "condition": pl.lit(code),
        "call": pl.col("call"),
        "urgency": pl.col("urgency"),
        "level_first": pl.col("first_level"),
        "level_final": pl.when(pl.col("on_final")).then(pl.col("final_level")),
        "basis": pl.col("basis"),
        "reason": _reason(code, cond, retests_needed, markers),
        "explanation": _explanation(code),
        "rule_version": pl.col("cutoff_version"),
        "evidence": pl.col("evidence"),
    }
    # Explained (JSON) is every call someone acts on or reads twice: all but a negative call
    # on a satisfactory card, whose reason already gives each value, its limits, stratum
    # and cutoff version. Building and storing the JSON of every negative call was a fifth
    # of a run's evaluation and half of its calls' bytes.
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
