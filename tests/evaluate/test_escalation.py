"""No loop of repeat cards (:mod:`nbs.evaluate.escalation`): a row of borderline cards, a
row of failed cards, and the cap on new cards of any kind, on one baby's cards."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError

from cutoffs.model import ConditionCutoffs, CutoffSet
from nbs.config import ScreeningConfig
from nbs.evaluate.decide import CALLS_SCHEMA
from nbs.evaluate.escalation import PRIOR_SCHEMA, escalate

DAY = dt.datetime(2026, 3, 3, 8, 0)
VERSION = "LNS-2026.1"

#: a call as the row counts it: (call, valid result)
KINDS = {
    "borderline": ("repeat_specimen", False),
    "failed": ("repeat_specimen", True),
    "negative": ("negative", False),
    "referral": ("referral", False),
    "retest": ("retest", False),
    "not_evaluated": ("not_evaluated", False),
}


def _set(config: ScreeningConfig, condition: str, **settings: Any) -> tuple[CutoffSet, ...]:
    """The 2026 cutoff set with ``settings`` changed on one condition."""
    base = next(s for s in config.cutoff_sets if s.version == VERSION)
    cond = base.conditions[condition].model_copy(update=settings)
    return (base.model_copy(update={"conditions": {**base.conditions, condition: cond}}),)


def _call(n: int, condition: str, kind: str) -> dict[str, Any]:
    call, invalid = KINDS[kind]
    return {
        "specimen_id": f"C{n}",
        "baby_id": "B1",
        "condition": condition,
        "call": call,
        "urgency": "routine" if call == "repeat_specimen" else None,
        "level_first": None if invalid else 2,
        "level_final": None if invalid else 2,
        "basis": "first punch",
        "reason": f"{condition} {call} on first punch",
        "explanation": json.dumps({"call": call, "invalid": invalid}),
        "rule_version": VERSION,
        "evidence": "",
    }


def _escalated(sets: tuple[CutoffSet, ...], condition: str, kinds: list[str]) -> dict[str, Any]:
    """The last card's call after escalation, the earlier cards' calls stored."""
    rows = [_call(n, condition, k) for n, k in enumerate(kinds, start=1)]
    when = {f"C{n}": DAY + dt.timedelta(days=7 * n) for n in range(1, len(kinds) + 1)}
    prior = pl.DataFrame(
        [r | {"collected_at": when[r["specimen_id"]]} for r in rows[:-1]],
        schema=PRIOR_SCHEMA,
        orient="row",
    ) if len(rows) > 1 else PRIOR_SCHEMA.to_frame()  # fmt: skip
    calls = pl.DataFrame(rows[-1:], schema=CALLS_SCHEMA, orient="row")
    cards = pl.DataFrame(
        {"specimen_id": list(when), "collected_at": list(when.values())},
        schema={"specimen_id": pl.String, "collected_at": pl.Datetime("us")},
    )
    out = escalate(calls, cards, prior.select(list(PRIOR_SCHEMA)), sets)
    assert out.height == 1
    return out.row(0, named=True)


def test_a_mixed_row_of_failed_and_borderline_cards_refers_at_the_cap(
    config: ScreeningConfig,
) -> None:
    """SCID refers two failed or two borderline cards in a row; alternating, each row is
    broken by the other, and the cap (three new cards) refers the third."""
    sets = _set(config, "SCID")
    assert _escalated(sets, "SCID", ["failed", "borderline"])["call"] == "repeat_specimen"
    got = _escalated(sets, "SCID", ["failed", "borderline", "failed"])
    assert (got["call"], got["urgency"]) == ("referral", "urgent")
    assert (
        "a new card asked for on 3 successive cards of the baby (C1: no valid result, "
        "C2: borderline, this card: no valid result)"
    ) in got["reason"]
    escalated = json.loads(got["explanation"])["escalated"]
    assert escalated == {
        "kind": "repeat_cards",
        "cards": 3,
        "earlier_cards": ["C2", "C1"],
        "earlier_kinds": ["borderline", "failed"],
    }


@pytest.mark.parametrize(
    ("cap", "kinds", "call"),
    [
        (4, ["failed", "borderline", "failed"], "repeat_specimen"),
        (4, ["borderline", "failed", "borderline", "failed"], "referral"),
        (2, ["failed", "borderline"], "referral"),
    ],
)
def test_the_cap_is_a_setting_of_the_condition(
    config: ScreeningConfig, cap: int, kinds: list[str], call: str
) -> None:
    sets = _set(config, "SCID", repeat_cards_to_refer=cap)
    assert _escalated(sets, "SCID", kinds)["call"] == call


@pytest.mark.parametrize(
    ("setting", "second", "third", "words"),
    [
        (2, "referral", None, "borderline on 2 successive cards"),
        (3, "repeat_specimen", "referral", "borderline on 3 successive cards"),
        # never by the row of borderline cards: the cap still refers the third
        (None, "repeat_specimen", "referral", "a new card asked for on 3 successive cards"),
    ],
)
def test_borderline_cards_to_refer_counts_the_borderline_cards(
    config: ScreeningConfig, setting: int | None, second: str, third: str | None, words: str
) -> None:
    sets = _set(config, "CH", borderline_cards_to_refer=setting)
    got = _escalated(sets, "CH", ["borderline", "borderline"])
    assert got["call"] == second
    if third is not None:
        got = _escalated(sets, "CH", ["borderline", "borderline", "borderline"])
        assert got["call"] == third
    assert words in got["reason"]


def test_a_negative_card_breaks_the_row_an_unfinished_one_does_not(
    config: ScreeningConfig,
) -> None:
    sets = _set(config, "SCID")
    broken = ["failed", "borderline", "negative", "failed"]
    assert _escalated(sets, "SCID", broken)["call"] == "repeat_specimen"
    for between in ("retest", "not_evaluated"):
        kinds = ["failed", "borderline", between, "failed"]
        assert _escalated(sets, "SCID", kinds)["call"] == "referral", between


def test_the_cap_is_always_set() -> None:
    base = {"name": "x", "markers": ["TSH"], "criteria": [{"kind": "above"}], "sources": ["s"]}
    assert ConditionCutoffs.model_validate(base).repeat_cards_to_refer == 3
    for wrong in (None, 1, 6):
        with pytest.raises(ValidationError, match="repeat_cards_to_refer"):
            ConditionCutoffs.model_validate(base | {"repeat_cards_to_refer": wrong})
