"""Escalation: a baby is never sent round a loop of repeat cards.

A condition borderline (``repeat_specimen`` on a valid result) on a card whose earlier
cards of the same baby were borderline for it too, ``borderline_cards_to_refer`` cards in a
row, is referred instead (the UK congenital hypothyroidism standard refers a repeat TSH
still >= 10 mU/L). Cards without a valid result (a DNA failure that persists) count apart,
up to ``failed_cards_to_refer`` (California refers a baby with two failed SCID cards for a
blood count and flow cytometry). A negative, a referral or a card of the other kind between
them breaks such a row. Whatever the reasons, a new card asked for on
``repeat_cards_to_refer`` successive cards (borderline and failed mixed) refers: the cap.
A card still waiting for its retests, or not evaluated, neither counts nor breaks a row.
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
#: the kinds of a new card asked for: every one counts towards the cap
_REPEAT_KINDS = ("borderline", "failed")
_WORDS = {"borderline": "borderline", "failed": "no valid result"}


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
    """``calls`` with the new-card calls that end a row of such cards (see above) made
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
    changes = _chosen(_streaks(candidates, history), sets)
    if not changes:
        return calls
    key = ["specimen_id", "condition"]
    keys = pl.DataFrame(list(changes), schema=key, orient="row")
    hit = calls.join(keys, on=key, how="semi")
    return pl.concat([calls.join(keys, on=key, how="anti"), _rewritten(hit, changes)])


def _chosen(
    streaks: pl.DataFrame, sets: tuple[CutoffSet, ...]
) -> dict[tuple[str, str], tuple[dict[str, Any], str]]:
    """The calls to refer, by (card, condition): the streak row (``rule``: ``kind``, a row
    of one kind long enough, or ``cap``, a row of new cards of any kind) and the urgency."""
    conds = {(s.version, code): cond for s in sets for code, cond in s.conditions.items()}
    changes: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
    for row in streaks.iter_rows(named=True):
        cond = conds.get((row["rule_version"], row["condition"]))
        if cond is None:
            continue
        n = {
            "borderline": cond.borderline_cards_to_refer,
            "failed": cond.failed_cards_to_refer,
        }[row["kind"]]
        if n is not None and row["streak"] + 1 >= n:
            rule = "kind"
        elif row["repeats"] + 1 >= cond.repeat_cards_to_refer:
            rule = "cap"
        else:
            continue
        urgent = cond.urgency.get("referral", "urgent")
        changes[(row["specimen_id"], row["condition"])] = (row | {"rule": rule}, urgent)
    return changes


def _streaks(candidates: pl.DataFrame, history: pl.DataFrame) -> pl.DataFrame:
    """Per candidate: ``streak`` (the cards of its kind right before it) and ``earlier``
    (their ids, newest first); ``repeats``, ``repeat_cards`` and ``repeat_kinds``: the
    same for the new cards asked for of any kind."""
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
    same = (pl.col("was") == pl.col("kind")).cast(pl.Int32).cum_min()
    repeat = pl.col("was").is_in(_REPEAT_KINDS).cast(pl.Int32).cum_min()
    return pairs.group_by(
        "specimen_id", "condition", "rule_version", "kind", maintain_order=True
    ).agg(
        streak=same.sum(),
        earlier=pl.col("earlier_id").filter(same == 1),
        repeats=repeat.sum(),
        repeat_cards=pl.col("earlier_id").filter(repeat == 1),
        repeat_kinds=pl.col("was").filter(repeat == 1),
    )


def _rewritten(
    hit: pl.DataFrame, changes: dict[tuple[str, str], tuple[dict[str, Any], str]]
) -> pl.DataFrame:
    """The escalated calls with call, urgency, reason and explanation rewritten (a few
    rows: rewritten in Python)."""
    rows = []
    for row in hit.iter_rows(named=True):
        found, urgent = changes[(row["specimen_id"], row["condition"])]
        if found["rule"] == "kind":
            earlier = list(found["earlier"])
            kinds = [found["kind"]] * len(earlier)
            n = len(earlier) + 1
            what = f"{_WORDS[found['kind']]} on {n} successive cards of the baby"
            shown = "earlier: " + ", ".join(earlier)
        else:
            earlier, kinds = list(found["repeat_cards"]), list(found["repeat_kinds"])
            n = len(earlier) + 1
            what = f"a new card asked for on {n} successive cards of the baby"
            # oldest first, each card with why a new card was asked for
            cards = [*reversed(earlier), "this card"]
            named = zip(cards, [*reversed(kinds), found["kind"]], strict=True)
            shown = ", ".join(f"{c}: {_WORDS[k]}" for c, k in named)
        note = (
            f"{row['condition']} referral ({urgent}): {what} ({shown}): referred rather than "
            "asked for another card; "
        )
        detail = json.loads(row["explanation"]) if row["explanation"] else {}
        detail.update(
            call="referral",
            escalated={
                "kind": found["kind"] if found["rule"] == "kind" else "repeat_cards",
                "cards": n,
                "earlier_cards": earlier,
                "earlier_kinds": kinds,
            },
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
