"""What a batch's calls make for the laboratory: the retest worklist, the recall list
(condition recalls and specimen-level repeat cards) and the coordinator's warnings."""

from __future__ import annotations

import polars as pl

from nbs.evaluate.decide import AGE_LIMIT_BASIS

RECALL_SCHEMA = pl.Schema(
    {
        "baby_id": pl.String,
        "specimen_id": pl.String,
        "condition": pl.String,
        "action": pl.String,
        "urgency": pl.String,
        "reason": pl.String,
        "rule_version": pl.String,
    }
)

WORKLIST_SCHEMA = pl.Schema(
    {
        "specimen_id": pl.String,
        "condition": pl.String,
        "reason": pl.String,
        "priority": pl.String,
        "rule_version": pl.String,
    }
)


FINDINGS_SCHEMA = pl.Schema(
    {
        "specimen_id": pl.String,
        "baby_id": pl.String,
        "card_problem": pl.String,
        "card_problem_urgency": pl.String,
        "answer_blocker": pl.String,
        "cutoff_version": pl.String,
    }
)
WARNINGS_SCHEMA = pl.Schema(
    {"specimen_id": pl.String, "column_name": pl.String, "reason": pl.String}
)


def warnings_of(calls: pl.DataFrame) -> pl.DataFrame:
    """A condition not screened because the card is too old for its marker: the
    coordinator must know (the baby may need another test, e.g. a sweat test for CF)."""
    return (
        calls.filter(pl.col("basis") == AGE_LIMIT_BASIS)
        .select("specimen_id", column_name=pl.col("condition"), reason=pl.col("reason"))
        .cast(WARNINGS_SCHEMA)
    )


def worklist_of(calls: pl.DataFrame) -> pl.DataFrame:
    """The punches the laboratory must repeat: every ``retest`` call."""
    return (
        calls.filter(pl.col("call") == "retest")
        .select(
            "specimen_id",
            "condition",
            "reason",
            priority=pl.col("urgency"),
            rule_version="rule_version",
        )
        .cast(WORKLIST_SCHEMA)
    )


def recalls_of(calls: pl.DataFrame, findings: pl.DataFrame) -> pl.DataFrame:
    """Actions that reach a baby: condition recalls and specimen-level repeat cards."""
    condition_level = calls.filter(pl.col("call").is_in(["repeat_specimen", "referral"])).select(
        "baby_id",
        "specimen_id",
        "condition",
        action=pl.col("call"),
        urgency="urgency",
        reason="reason",
        rule_version="rule_version",
    )
    specimen_level = findings.filter(pl.col("card_problem").is_not_null()).select(
        "baby_id",
        "specimen_id",
        condition=pl.lit(None, dtype=pl.String),
        action=pl.lit("repeat_specimen"),
        urgency=pl.col("card_problem_urgency"),
        reason=pl.concat_str(
            [
                pl.lit("repeat card needed: "),
                pl.col("card_problem"),
                pl.lit(" [cutoffs "),
                pl.col("cutoff_version"),
                pl.lit("]"),
            ]
        ),
        rule_version=pl.col("cutoff_version"),
    )
    return pl.concat(
        [
            condition_level.cast(RECALL_SCHEMA),
            specimen_level.cast(RECALL_SCHEMA),
        ]
    ).sort("specimen_id", "condition", nulls_last=False)
