"""The repeat-card rule on its own: which open recalls the run's later cards answer, with
which verdict, card and detail (:func:`nbs.followup.answers.verdicts`)."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from nbs.evaluate.decide import NOT_ASSESSABLE_BASIS, SETTLED_BASES
from nbs.followup.answers import VERDICT_SCHEMA, verdicts

DAY = dt.datetime(2026, 3, 3, 8, 0)

RECALL_SCHEMA = {
    "recall_id": pl.String,
    "baby_id": pl.String,
    "condition": pl.String,
    "stage": pl.String,
    "urgency": pl.String,
    "answered_by_specimen_id": pl.String,
    "card_collected_at": pl.Datetime("us"),
}
CALL_SCHEMA = {
    "specimen_id": pl.String,
    "baby_id": pl.String,
    "condition": pl.String,
    "call": pl.String,
    "basis": pl.String,
    "collected_at": pl.Datetime("us"),
    "answer_blocker": pl.String,
}


def _recall(recall_id: str, condition: str | None = None, **row: object) -> dict[str, object]:
    return {
        "recall_id": recall_id,
        "baby_id": "B1",
        "condition": condition,
        "stage": "open",
        "urgency": "routine",
        "answered_by_specimen_id": None,
        "card_collected_at": DAY,
        **row,
    }


def _call(
    specimen: str, condition: str, call: str, days: int = 7, **row: object
) -> dict[str, object]:
    return {
        "specimen_id": specimen,
        "baby_id": "B1",
        "condition": condition,
        "call": call,
        "basis": None,
        "collected_at": DAY + dt.timedelta(days=days),
        "answer_blocker": None,
        **row,
    }


def _verdicts(recalls: list[dict[str, object]], calls: list[dict[str, object]]) -> list[tuple]:
    out = verdicts(
        pl.DataFrame(recalls, schema=RECALL_SCHEMA), pl.DataFrame(calls, schema=CALL_SCHEMA)
    )
    assert out.schema == VERDICT_SCHEMA
    return out.sort("recall_id").select("recall_id", "verdict", "answer", "detail").rows()


def test_a_normal_later_card_closes_a_recall_of_the_whole_card() -> None:
    calls = [_call("R1", "PKU", "negative"), _call("R1", "CH", "negative")]
    assert _verdicts([_recall("A")], calls) == [("A", "close", "R1", "")]


def test_an_earlier_card_answers_nothing() -> None:
    calls = [_call("R1", "PKU", "negative", days=-1), _call("R1", "CH", "referral", days=-1)]
    assert _verdicts([_recall("A"), _recall("P", "PKU")], calls) == []


def test_an_unfinished_or_blocked_card_leaves_the_recall_open() -> None:
    retest = [_call("R1", "PKU", "negative"), _call("R1", "CH", "retest")]
    missing = [_call("R1", "PKU", "negative"), _call("R1", "CH", "not_evaluated", basis="x")]
    blocked = [_call("R1", "PKU", "negative", answer_blocker="unsatisfactory")]
    for calls in (retest, missing, blocked):
        assert _verdicts([_recall("A")], calls) == []


def test_a_condition_not_screened_for_a_settled_reason_does_not_hold_the_card_back() -> None:
    settled = SETTLED_BASES[0]
    calls = [_call("R1", "PKU", "negative"), _call("R1", "CF", "not_evaluated", basis=settled)]
    assert _verdicts([_recall("A")], calls) == [("A", "close", "R1", "")]


def test_an_abnormal_card_escalates_even_when_blocked_noting_its_calls_in_text_order() -> None:
    calls = [
        _call("R1", "PKU", "referral", answer_blocker="too early"),
        _call("R1", "CH", "repeat_specimen", answer_blocker="too early"),
        _call("R1", "CF", "retest", answer_blocker="too early"),
    ]
    assert _verdicts([_recall("A")], calls) == [
        ("A", "escalate", "R1", "CH repeat_specimen, PKU referral")
    ]


def test_a_condition_recall_is_answered_by_that_condition_only() -> None:
    recalls = [_recall("P", "PKU"), _recall("C", "CH"), _recall("F", "CF")]
    calls = [
        _call("R1", "PKU", "negative"),
        _call("R1", "CH", "referral"),
        _call("R1", "CF", "negative", answer_blocker="transfused"),
    ]
    assert _verdicts(recalls, calls) == [
        ("C", "escalate", "R1", "CH referral"),
        ("P", "close", "R1", "PKU negative"),
    ]


def test_an_escalation_counts_first_then_the_latest_card() -> None:
    calls = [
        _call("R1", "PKU", "repeat_specimen", days=5),
        _call("R2", "PKU", "negative", days=9),
        _call("R3", "PKU", "negative", days=12),
    ]
    assert _verdicts([_recall("P", "PKU")], calls) == [
        ("P", "escalate", "R1", "PKU repeat_specimen")
    ]
    assert _verdicts([_recall("P", "PKU")], calls[1:]) == [("P", "close", "R3", "PKU negative")]


def test_a_recall_linked_to_the_card_is_not_escalated_again_but_may_close() -> None:
    linked = _recall("P", "PKU", answered_by_specimen_id="R1", urgency="urgent")
    assert _verdicts([linked], [_call("R1", "PKU", "referral")]) == []
    assert _verdicts([linked], [_call("R1", "PKU", "negative")]) == [
        ("P", "close", "R1", "PKU negative")
    ]


def test_another_babys_card_answers_nothing() -> None:
    calls = [_call("R1", "PKU", "negative", baby_id="B2")]
    assert _verdicts([_recall("A"), _recall("P", "PKU")], calls) == []


# -- the rule as a property -------------------------------------------------------------

CONDITIONS = ("PKU", "CH", "CF", "SCID")
#: a later card's call of a condition: (call, basis)
LATER_CALL = st.one_of(
    st.tuples(st.sampled_from(["negative", "repeat_specimen", "referral"]), st.none()),
    st.tuples(st.just("retest"), st.sampled_from([None, "first punch", "plate_held"])),
    st.tuples(
        st.just("not_evaluated"),
        st.sampled_from([None, "first punch", NOT_ASSESSABLE_BASIS, *SETTLED_BASES]),
    ),
)
LATER_CARD = st.tuples(
    st.fixed_dictionaries({c: LATER_CALL for c in CONDITIONS}),
    st.sampled_from([None, None, "unsatisfactory", "too early"]),
)


@settings(max_examples=200, deadline=None)
@given(
    condition=st.sampled_from([None, *CONDITIONS]),
    later=st.lists(LATER_CARD, min_size=1, max_size=3),
)
def test_a_repeat_card_closes_a_request_only_when_it_answers_every_cause(
    condition: str | None, later: list[tuple[dict[str, tuple[str, str | None]], str | None]]
) -> None:
    """A request closes only on a later card that decided every condition that caused it
    (no retest awaited; not ``not_evaluated`` unless for a reason no card changes, and
    never for the condition of a condition's request), with nothing abnormal and no
    specimen rule broken; an abnormal cause escalates it instead."""
    calls = [
        _call(f"R{n}", cond, call, days=3 + n, basis=basis, answer_blocker=blocker)
        for n, (per_condition, blocker) in enumerate(later, start=1)
        for cond, (call, basis) in per_condition.items()
    ]
    found = _verdicts([_recall("Q", condition)], calls)
    causes = CONDITIONS if condition is None else (condition,)
    for _, verdict, answer, _ in found:
        per_condition, blocker = later[int(answer[1:]) - 1]
        caused = {c: per_condition[c] for c in causes}
        if verdict == "close":
            assert blocker is None
            for call, basis in caused.values():
                settled = condition is None and call == "not_evaluated" and basis in SETTLED_BASES
                assert call == "negative" or settled, (condition, per_condition)
        else:
            assert any(call in ("repeat_specimen", "referral") for call, _ in caused.values())
    # a card that left a cause pending or not evaluated is never the one that closes it
    for n, (per_condition, _) in enumerate(later, start=1):
        for cause in causes:
            call, basis = per_condition[cause]
            if call == "retest" or (call == "not_evaluated" and basis not in SETTLED_BASES):
                assert ("Q", "close", f"R{n}") not in [f[:3] for f in found]
            if call == "not_evaluated" and condition is not None:
                assert ("Q", "close", f"R{n}") not in [f[:3] for f in found]
