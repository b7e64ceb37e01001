"""Repeat cards answering open repeat-card recalls: the rule, once.

A run's commit reads the open repeat-card recalls of the run's babies (those the run
creates included) and the run's calls of those babies (:func:`nbs.store.answer_repeat_cards`),
asks :func:`verdicts`, and applies the verdicts with their audit events in the same
transaction. Only babies with an open repeat-card recall are read: a few per thousand.

* A recall of the whole card (no condition) is answered by a later card of the baby that
  meets the specimen rules itself (not unsatisfactory, not too early, not too soon after a
  transfusion, old enough for the preterm protocol) and has every condition answered:
  closed if nothing on it is abnormal, escalated if something is.
* A borderline recall of one condition is answered by that condition's call on a later
  card: closed by a negative call on a card that meets the specimen rules, escalated by a
  repeat-card or referral call.

Of a recall's answers the escalating one counts first, then the latest card (then the
smaller card id). A recall already linked to the card that would escalate it again is
left alone (the rule is idempotent).
"""

from __future__ import annotations

import polars as pl

from nbs.evaluate.decide import SETTLED_BASES

#: calls that ask for more than a repeat card would answer
ABNORMAL = ("repeat_specimen", "referral")

#: the verdicts' columns, as the store applies them
VERDICT_SCHEMA = pl.Schema(
    {
        "recall_id": pl.String(),
        "stage": pl.String(),
        "urgency": pl.String(),
        "answered_before": pl.String(),
        "answer": pl.String(),
        "verdict": pl.String(),
        "detail": pl.String(),
    }
)


def verdicts(recalls: pl.DataFrame, calls: pl.DataFrame) -> pl.DataFrame:
    """The open recalls later cards answer, each with its verdict (``close`` or
    ``escalate``), the answering card and what was abnormal on it (``detail``).

    ``recalls``: ``recall_id, baby_id, condition, stage, urgency, answered_by_specimen_id,
    card_collected_at`` (open repeat-card recalls, with the collection time of their card);
    ``calls``: ``specimen_id, baby_id, condition, call, basis, collected_at,
    answer_blocker`` (the run's calls of those babies; ``answer_blocker``: why the card
    cannot answer a recall, or null)."""
    # one time unit on both sides of the comparisons (the database's and the parts')
    recalls = recalls.rename({"answered_by_specimen_id": "answered_before"}).cast(
        {"card_collected_at": pl.Datetime("us")}
    )
    calls = calls.cast({"collected_at": pl.Datetime("us")})
    candidates = pl.concat(
        [_card_answers(recalls, calls), _condition_answers(recalls, calls)], how="vertical"
    )
    return (
        candidates.filter(
            pl.col("verdict").is_not_null()
            & (
                (pl.col("verdict") == "close")
                | pl.col("answered_before").ne_missing(pl.col("answer"))
            )
        )
        .sort(
            pl.col("verdict") == "escalate",
            "collected_at",
            "answer",
            descending=[True, True, False],
        )
        .unique("recall_id", keep="first", maintain_order=True)
        .select(VERDICT_SCHEMA.names())
        .cast(VERDICT_SCHEMA)
    )


def _cards(calls: pl.DataFrame) -> pl.DataFrame:
    """Each later card as a whole: abnormal, still pending, blocked."""
    abnormal = pl.col("call").is_in(ABNORMAL)
    # a condition the card has not answered yet: retests or a second tier awaited, too
    # premature for the marker, or a result still missing; a condition not screened for a
    # reason no card changes (no consent, too old for the marker) does not hold it back
    pending = (pl.col("call") == "retest") | (
        (pl.col("call") == "not_evaluated") & ~pl.col("basis").fill_null("").is_in(SETTLED_BASES)
    )
    return calls.group_by("specimen_id", "baby_id").agg(
        pl.col("collected_at").drop_nulls().first(),
        blocker=pl.col("answer_blocker").drop_nulls().first(),
        abnormal=abnormal.any(),
        # in text order: the note an audit event keeps must not depend on row order
        abnormal_calls=pl.concat_str("condition", pl.lit(" "), "call")
        .filter(abnormal)
        .unique()
        .sort()
        .str.join(", "),
        pending=pending.any(),
    )


def _card_answers(recalls: pl.DataFrame, calls: pl.DataFrame) -> pl.DataFrame:
    """Candidate answers to recalls of the whole card: every later card of the baby."""
    cards = _cards(calls)
    return (
        recalls.filter(pl.col("condition").is_null())
        .join(cards, on="baby_id")
        .filter(pl.col("collected_at") > pl.col("card_collected_at"))
        .select(
            "recall_id",
            "stage",
            "urgency",
            "answered_before",
            answer=pl.col("specimen_id"),
            collected_at=pl.col("collected_at"),
            verdict=pl.when(pl.col("abnormal"))
            .then(pl.lit("escalate"))
            .when(pl.col("pending") | pl.col("blocker").is_not_null())
            .then(pl.lit(None, pl.String))
            .otherwise(pl.lit("close")),
            detail=pl.col("abnormal_calls").fill_null(""),
        )
    )


def _condition_answers(recalls: pl.DataFrame, calls: pl.DataFrame) -> pl.DataFrame:
    """Candidate answers to a condition's recall: that condition's calls on later cards."""
    call = pl.col("call")
    return (
        recalls.filter(pl.col("condition").is_not_null())
        .join(calls, on=["baby_id", "condition"])
        .filter(pl.col("collected_at") > pl.col("card_collected_at"))
        .select(
            "recall_id",
            "stage",
            "urgency",
            "answered_before",
            answer=pl.col("specimen_id"),
            collected_at=pl.col("collected_at"),
            verdict=pl.when(call.is_in(ABNORMAL))
            .then(pl.lit("escalate"))
            .when((call == "negative") & pl.col("answer_blocker").is_null())
            .then(pl.lit("close"))
            .otherwise(pl.lit(None, pl.String)),
            detail=pl.concat_str("condition", pl.lit(" "), call),
        )
    )
