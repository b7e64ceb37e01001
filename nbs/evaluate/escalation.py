"""Escalation: a baby is never sent round a loop of repeat cards.

A condition borderline (``repeat_specimen`` on a valid result) on a card whose earlier
cards of the same baby were borderline for it too, ``borderline_cards_to_refer`` cards in a
row, is referred instead (the UK congenital hypothyroidism standard refers a repeat TSH
still >= 10 mU/L). Cards without a valid result (a DNA failure that persists) count apart,
up to ``failed_cards_to_refer`` (California refers a baby with two failed SCID cards for a
blood count and flow cytometry). A negative, a referral or a card of the other kind between
them breaks the row; a card still waiting for its retests neither counts nor breaks it.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from cutoffs.model import CutoffSet

#: the calls of a baby's other cards the rule reads
PRIOR_SCHEMA = pl.Schema(
    {
        "specimen_id": pl.String(),
        "baby_id": pl.String(),
        "condition": pl.String(),
        "collected_at": pl.Datetime("us"),
        "call": pl.String(),
        "level_first": pl.Int8(),
        "level_final": pl.Int8(),
        "explanation": pl.String(),
    }
)
_DECIDED = ("negative", "repeat_specimen", "referral")


def _kind() -> pl.Expr:
    """A decided call as the row counts it: ``borderline`` or ``failed`` (a repeat card
    asked for without a valid result: DNA failure, or no usable value), else the call."""
    failed = (pl.col("explanation").str.json_path_match("$.invalid") == "true").fill_null(False) | (
        pl.col("level_first").is_null() & pl.col("level_final").is_null()
    )
    return (
        pl.when(pl.col("call") != "repeat_specimen")
        .then(pl.col("call"))
        .when(failed)
        .then(pl.lit("failed"))
        .otherwise(pl.lit("borderline"))
    )


def escalate(
    calls: pl.DataFrame,
    cards: pl.DataFrame,
    prior: pl.DataFrame | None,
    sets: tuple[CutoffSet, ...],
) -> pl.DataFrame:
    """``calls`` with the borderline calls that end a row of borderline cards made
    referrals (call, urgency, reason and explanation say so). ``cards``: these calls'
    cards (``specimen_id, collected_at``); ``prior``: the current calls of the babies'
    other cards (``PRIOR_SCHEMA``), the cards evaluated here taking their new call."""
    borderline = calls.filter(pl.col("call") == "repeat_specimen")
    if borderline.is_empty():
        return calls
    when = cards.select("specimen_id", "collected_at")
    candidates = (
        borderline.with_columns(kind=_kind())
        .select("specimen_id", "baby_id", "condition", "rule_version", "kind")
        .join(when, on="specimen_id")
    )
    # only the babies of a borderline call: a chunk holds hundreds of thousands of calls
    babies = borderline.select("baby_id").unique()
    here = (
        calls.join(babies, on="baby_id", how="semi")
        .join(when, on="specimen_id")
        .select(list(PRIOR_SCHEMA))
    )
    stored = prior if prior is not None else PRIOR_SCHEMA.to_frame()
    stored = stored.join(babies, on="baby_id", how="semi")
    history = (
        pl.concat([stored.cast(PRIOR_SCHEMA), here.cast(PRIOR_SCHEMA)])
        .unique(subset=["specimen_id", "condition"], keep="last", maintain_order=True)
        .filter(pl.col("call").is_in(_DECIDED))
        .with_columns(kind=_kind())
        .select("specimen_id", "baby_id", "condition", "collected_at", "kind")
    )
    streaks = _streaks(candidates, history)
    needed = {
        (s.version, code, kind): n
        for s in sets
        for code, cond in s.conditions.items()
        for kind, n in (
            ("borderline", cond.borderline_cards_to_refer),
            ("failed", cond.failed_cards_to_refer),
        )
    }
    urgency: dict[tuple[str, str], str] = {
        (s.version, code): cond.urgency.get("referral", "urgent")
        for s in sets
        for code, cond in s.conditions.items()
    }
    chosen = [
        row
        for row in streaks.iter_rows(named=True)
        if (n := needed.get((row["rule_version"], row["condition"], row["kind"]))) is not None
        and row["streak"] + 1 >= n
    ]
    if not chosen:
        return calls
    changes: dict[tuple[str, str], tuple[dict[str, Any], str]] = {
        (row["specimen_id"], row["condition"]): (
            row,
            urgency[(row["rule_version"], row["condition"])],
        )
        for row in chosen
    }
    key = ["specimen_id", "condition"]
    keys = pl.DataFrame(list(changes), schema=key, orient="row")
    hit = calls.join(keys, on=key, how="semi")
    return pl.concat([calls.join(keys, on=key, how="anti"), _rewritten(hit, changes)])


def _streaks(candidates: pl.DataFrame, history: pl.DataFrame) -> pl.DataFrame:
    """Per candidate: ``streak`` (the cards of its kind right before it) and ``earlier``
    (their ids, newest first)."""
    pairs = (
        candidates.join(
            history.rename(
                {"specimen_id": "earlier_id", "collected_at": "earlier_at", "kind": "was"}
            ),
            on=["baby_id", "condition"],
        )
        .filter(
            (pl.col("earlier_at") < pl.col("collected_at"))
            | (
                (pl.col("earlier_at") == pl.col("collected_at"))
                & (pl.col("earlier_id") < pl.col("specimen_id"))
            )
        )
        .sort(
            "specimen_id",
            "condition",
            "earlier_at",
            "earlier_id",
            descending=[False, False, True, True],
        )
    )
    run = (pl.col("was") == pl.col("kind")).cast(pl.Int32).cum_min()
    return pairs.group_by(
        "specimen_id", "condition", "rule_version", "kind", maintain_order=True
    ).agg(streak=run.sum(), earlier=pl.col("earlier_id").filter(run == 1))


def _rewritten(
    hit: pl.DataFrame, changes: dict[tuple[str, str], tuple[dict[str, Any], str]]
) -> pl.DataFrame:
    """The escalated calls with call, urgency, reason and explanation rewritten (a few
    rows: rewritten in Python)."""
    rows = []
    for row in hit.iter_rows(named=True):
        found, urgent = changes[(row["specimen_id"], row["condition"])]
        earlier = ", ".join(found["earlier"])
        n = int(found["streak"]) + 1
        what = "borderline" if found["kind"] == "borderline" else "no valid result"
        note = (
            f"{row['condition']} referral ({urgent}): {what} on {n} successive cards of "
            f"the baby (earlier: {earlier}): referred rather than asked for another card; "
        )
        detail = json.loads(row["explanation"]) if row["explanation"] else {}
        detail.update(
            call="referral",
            escalated={"kind": found["kind"], "cards": n, "earlier_cards": list(found["earlier"])},
        )
        rows.append(
            row
            | {
                "call": "referral",
                "urgency": urgent,
                "reason": note + row["reason"],
                "explanation": json.dumps(detail, ensure_ascii=False),
            }
        )
    return pl.DataFrame(rows, schema=hit.schema)
