"""From a condition's scored punches to its call, urgency and basis (the reason and the
JSON explanation are built from them by :mod:`nbs.evaluate.explain`).

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

import polars as pl

from cutoffs.model import ConditionCutoffs, ReplicatePolicy
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

#: ``disagreement_kind`` of a negative decision raised by rule 6: a first punch at referral
#: with every retest below the retest limit (suspected punch or plate error), or any other
#: punch at referral that the decision on the punches did not reach
PUNCH_ERROR = "punch_error"
OUTVOTED = "outvoted"


def decide(
    frame: pl.DataFrame,
    cond: ConditionCutoffs,
    policy: ReplicatePolicy,
    basis_text: str,
    qpcr: bool,
) -> pl.DataFrame:
    """The call of every card of ``frame`` for the condition ``cond``: ``frame`` with
    ``call``, ``urgency``, ``basis`` and the facts the rules read (for the explanation).
    ``qpcr``: the condition reads a qPCR marker (rule 4)."""
    markers = list(cond.markers)
    frame = _screened(frame, cond, policy, markers, qpcr)
    frame = frame.with_columns(base_call=_first_tier_call(policy, qpcr))
    frame = _second_tier_call(frame, cond)
    frame = _never_outvoted(frame, policy)
    frame = _not_screened(frame, basis_text)
    return frame.with_columns(urgency=_urgency(cond))


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
    retest limit (a suspected punch or plate error), at least ``policy.punch_error``.
    ``disagreement_kind``: which of the two applied (``PUNCH_ERROR`` or ``OUTVOTED``)."""
    # also before the retests are all in: a retest punch at referral is never waved through
    # by a normal first punch
    outvoted = ((pl.col("call") == "negative") & (pl.col("highest") >= 3)).fill_null(False)
    punch_error = outvoted & (pl.col("first_level") >= 3) & (pl.col("max_retest_level") == 0)
    punch_error = punch_error & ~pl.col("first_invalid").fill_null(False)
    call = (
        pl.when(punch_error)
        .then(pl.lit(policy.punch_error))
        .when(outvoted)
        .then(pl.lit(policy.outvoted))
        .otherwise(pl.col("call"))
    )
    kind = pl.when(punch_error).then(pl.lit(PUNCH_ERROR)).when(outvoted).then(pl.lit(OUTVOTED))
    return frame.with_columns(call=call, disagreement_kind=kind)


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
