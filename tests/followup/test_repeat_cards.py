"""Repeat cards answer the recalls that asked for them: a negative repeat closes the recall
(``repeat_normal``, linked to the card, audited as the pipeline), an abnormal one escalates
it, an untrusted or unfinished one leaves it open; re-running changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_samples.make_sample_inbox import write_repeat_delivery
from nbs import store
from nbs.config import ScreeningConfig
from nbs.followup.lifecycle import Change, load_followup, set_stage
from nbs.run.steps import run_local
from tests.helpers import db_state

PRETERM = {"gestational_age_weeks": 29, "birth_weight_g": 1250}


def _recall(db: Path, specimen: str, condition: str | None) -> dict[str, object]:
    where = "condition IS NULL" if condition is None else "condition = ?"
    frame = store.query(
        db,
        f"SELECT * FROM recall_list WHERE specimen_id = ? AND {where}",
        [specimen] if condition is None else [specimen, condition],
    )
    assert frame.height == 1, (specimen, condition, frame)
    return frame.row(0, named=True)


@pytest.fixture
def first_run(sample_inbox: Path, db_path: Path, config: ScreeningConfig) -> Path:
    run_local(sample_inbox, db_path, config)
    return db_path


def test_negative_repeat_cards_close_their_recalls(
    first_run: Path, tmp_path: Path, config: ScreeningConfig
) -> None:
    db = first_run
    inbox = tmp_path / "week2"
    write_repeat_delivery(
        inbox,
        [
            ("S-EARLY", "S-EARLY-R", 75, {}, {}),  # specimen-level: whole card normal
            ("S-PKU2", "S-PKU2-R", 170, {}, {"PHE": 70.0}),  # PKU borderline -> normal
        ],
    )
    summary = run_local(inbox, db, config)
    assert (summary.recalls_answered, summary.recalls_escalated) == (2, 0)
    for first, condition in (("S-EARLY", None), ("S-PKU2", "PKU")):
        row = _recall(db, first, condition)
        assert (row["status"], row["stage"], row["outcome"], row["closed_by"]) == (
            "closed",
            "closed",
            "repeat_normal",
            store.PIPELINE_ACTOR,
        )
        assert row["answered_by_specimen_id"] == f"{first}-R"
        events = store.recall_events(db, str(row["recall_id"]))
        assert events.select("actor", "field", "old_value", "new_value").rows() == [
            ("pipeline", "answered_by_specimen_id", None, f"{first}-R"),
            ("pipeline", "stage", "open", "closed"),
            ("pipeline", "outcome", None, "repeat_normal"),
        ]
        assert "screened negative" in events["note"][0]
    # the repeat cards raise no recall of their own
    assert store.query(db, "SELECT * FROM recall_list WHERE specimen_id LIKE '%-R'").height == 0


@pytest.mark.slow
def test_abnormal_repeat_card_escalates_and_gets_its_own_referral(
    first_run: Path, tmp_path: Path, config: ScreeningConfig
) -> None:
    db = first_run
    before = _recall(db, "S-CH2", "CH")
    assert before["urgency"] == "routine"
    inbox = tmp_path / "week2"
    write_repeat_delivery(inbox, [("S-CH2", "S-CH2-R", 170, {}, {"TSH": [85.0, 80.0, 90.0]})])
    summary = run_local(inbox, db, config)
    assert (summary.recalls_answered, summary.recalls_escalated) == (0, 1)
    after = _recall(db, "S-CH2", "CH")
    assert (after["status"], after["urgency"], after["answered_by_specimen_id"]) == (
        "open",
        "urgent",
        "S-CH2-R",
    )
    events = store.recall_events(db, str(after["recall_id"]))
    assert ("urgency", "routine", "urgent") in events.select(
        "field", "old_value", "new_value"
    ).rows()
    assert "still abnormal: CH referral" in events["note"][0]
    referral = _recall(db, "S-CH2-R", "CH")
    assert (referral["action"], referral["urgency"]) == ("referral", "urgent")


@pytest.mark.slow
def test_a_repeat_card_abnormal_twice_is_noted_in_text_order(
    first_run: Path, tmp_path: Path, config: ScreeningConfig
) -> None:
    """The audit note of an escalated card-level recall lists the repeat card's abnormal
    calls in text order (the same note whatever order the database aggregates them in)."""
    db = first_run
    inbox = tmp_path / "week2"
    high = {"TSH": [85.0, 80.0, 90.0], "PHE": [900.0] * 3, "TYR": [60.0] * 3}
    write_repeat_delivery(inbox, [("S-EARLY", "S-EARLY-R", 75, {}, high)])
    summary = run_local(inbox, db, config)
    assert summary.recalls_escalated == 1
    row = _recall(db, "S-EARLY", None)
    note = store.recall_events(db, str(row["recall_id"]))["note"][0]
    assert "still abnormal: CH referral, PKU referral" in note


@pytest.mark.slow
def test_untrusted_or_unfinished_repeat_cards_leave_the_recall_open(
    first_run: Path, tmp_path: Path, config: ScreeningConfig
) -> None:
    db = first_run
    inbox = tmp_path / "week2"
    write_repeat_delivery(
        inbox,
        [
            # the repeat card is unsatisfactory too: its negatives prove nothing
            ("S-UNSAT", "S-UNSAT-R", 120, {"specimen_quality": "insufficient"}, {}),
            # first punch past the retest limit: wait for the duplicate
            ("S-PRE1", "S-PRE1-R", 900, PRETERM, {"PHE": 130.0}),
            # still too premature for SCID (30 weeks + 1.8 weeks): another card is needed
            ("S-CAH3", "S-CAH3-R", 300, {"gestational_age_weeks": 30, "birth_weight_g": 1300}, {}),
        ],
    )
    summary = run_local(inbox, db, config)
    assert (summary.recalls_answered, summary.recalls_escalated) == (0, 0)
    assert _recall(db, "S-UNSAT", None)["status"] == "open"
    assert _recall(db, "S-UNSAT-R", None)["status"] == "open"  # its own repeat request
    for first in ("S-PRE1", "S-CAH3"):
        pre = _recall(db, first, None)
        assert (pre["status"], pre["answered_by_specimen_id"]) == ("open", None)

    # the duplicate punches arrive a day later and are normal: now the card answers
    later = tmp_path / "week2-retests"
    punches = {"PHE": [130, 80, 78], "TYR": [72, 70, 74]}  # Phe/Tyr: both are re-punched
    write_repeat_delivery(later, [("S-PRE1", "S-PRE1-R", 900, PRETERM, punches)])
    (later / "20260310.specimens.csv").unlink()  # the card itself is already in
    summary = run_local(later, db, config)
    assert summary.recalls_answered == 1
    pre = _recall(db, "S-PRE1", None)
    assert (pre["outcome"], pre["answered_by_specimen_id"]) == ("repeat_normal", "S-PRE1-R")


@pytest.mark.slow
def test_answering_is_idempotent_and_refuses_a_coordinators_stale_change(
    first_run: Path, tmp_path: Path, config: ScreeningConfig
) -> None:
    db = first_run
    rid = str(_recall(db, "S-TRANSF", None)["recall_id"])
    set_stage(db, rid, "contacted", "anne", "maternity informed")
    repeats = [("S-TRANSF", "S-TRANSF-R", 200, {}, {})]
    inbox = tmp_path / "week2"
    write_repeat_delivery(inbox, repeats)
    audit = "SELECT * FROM recall_events ORDER BY event_seq"
    before = store.query(db, audit)
    run_local(inbox, db, config)
    after = store.query(db, audit)
    assert after.head(before.height).equals(before)  # append-only: history never rewritten
    state = db_state(db)
    events = store.recall_events(db, rid)
    assert events["actor"].to_list() == ["anne", "pipeline", "pipeline", "pipeline"]
    assert events.filter(field="stage")["old_value"].to_list() == ["open", "contacted"]

    # the same delivery dropped again, and an escalation-looking re-run: nothing changes
    again = tmp_path / "week2-again"
    write_repeat_delivery(again, repeats)
    summary = run_local(again, db, config)
    assert (summary.recalls_answered, summary.recalls_escalated) == (0, 0)
    assert db_state(db) == state
    assert store.recall_events(db, rid).height == 4

    # a coordinator who still sees 'contacted' cannot overwrite the closure
    with pytest.raises(store.RecallChanged):
        store.change_recall(
            db, rid, "contacted", [Change("stage", "contacted", "referred")], "anne", None
        )
    assert store.recall(db, rid)["outcome"] == "repeat_normal"  # type: ignore[index]
    assert "repeat_normal" in load_followup().outcomes
