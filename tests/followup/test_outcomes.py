"""Case outcomes on a real database of the sample inbox: a confirmed case with its dates,
a ruled-out referral, a missed case against the negative card, and what is refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from nbs import store
from nbs.followup.outcomes import Outcome, OutcomeError, record_outcome
from nbs.store.outcomes import case_outcomes

TODAY = dt.date(2026, 12, 7)


@pytest.fixture
def db(screened_db: Path) -> Path:
    return screened_db


def _baby(db: Path, specimen: str) -> tuple[str, dt.date]:
    row = store.query(
        db, "SELECT baby_id, birth_at FROM specimens WHERE specimen_id = ?", [specimen]
    ).row(0)
    return str(row[0]), row[1].date()


def test_outcomes_are_kept_latest_first_and_missed_names_the_negative_card(db: Path) -> None:
    baby, born = _baby(db, "S-PKU1")
    record_outcome(
        db,
        Outcome(baby, "PKU", "confirmed", "coord.lea", specimen_id="S-PKU1",
                diagnosis_code="ORPHA:716", diagnosed_at=born + dt.timedelta(days=9),
                treatment_started_at=born + dt.timedelta(days=8)),
        today=TODAY,
    )  # fmt: skip
    # a correction is a new recording: the latest counts
    record_outcome(
        db,
        Outcome(baby, "PKU", "confirmed", "coord.ben", specimen_id="S-PKU1",
                diagnosis_code="ORPHA:716", diagnosed_at=born + dt.timedelta(days=9),
                treatment_started_at=born + dt.timedelta(days=10)),
        today=TODAY,
    )  # fmt: skip
    kept = case_outcomes(db, baby)
    assert kept.height == 1
    row = kept.row(0, named=True)
    assert (row["recorded_by"], row["treatment_started_at"]) == (
        "coord.ben",
        born + dt.timedelta(days=10),
    )
    assert store.query(db, "SELECT count(*) FROM case_outcome_events").item() == 2

    normal, born_n = _baby(db, "S-N01")
    missed = record_outcome(
        db,
        Outcome(normal, "CH", "missed", "coord.lea", diagnosed_at=born_n + dt.timedelta(days=60)),
        today=TODAY,
    )
    assert missed.specimen_id == "S-N01"


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("confirmed", {}, "needs the date of diagnosis"),
        ("ruled_out", {}, "needs the date the condition was excluded"),
        ("confirmed", {"diagnosed_at": dt.date(2027, 1, 1)}, "is in the future"),
        ("confirmed", {"diagnosed_at": dt.date(2020, 1, 1)}, "before the baby's birth"),
        ("carrier", {"treatment_started_at": dt.date(2026, 3, 1)}, "needs the date of diagnosis"),
        ("unknown", {}, "kind must be one of"),
    ],
)
def test_an_outcome_that_cannot_be_true_is_refused(
    db: Path, kind: str, fields: dict[str, dt.date], message: str
) -> None:
    baby, _ = _baby(db, "S-PKU1")
    with pytest.raises(OutcomeError, match=message):
        record_outcome(db, Outcome(baby, "PKU", kind, "coord.lea", **fields), today=TODAY)  # type: ignore[arg-type]
    assert store.query(db, "SELECT count(*) FROM case_outcome_events").item() == 0


def test_missed_needs_a_negative_card_and_a_known_condition(db: Path) -> None:
    baby, born = _baby(db, "S-PKU1")
    with pytest.raises(OutcomeError, match="recorded as confirmed, not missed"):
        record_outcome(db, Outcome(baby, "PKU", "missed", "c", diagnosed_at=born), today=TODAY)
    with pytest.raises(OutcomeError, match="condition must be one of"):
        record_outcome(db, Outcome(baby, "XYZ", "confirmed", "c", diagnosed_at=born), today=TODAY)
    with pytest.raises(OutcomeError, match="no screened baby"):
        record_outcome(db, Outcome("B-NONE", "PKU", "confirmed", "c", diagnosed_at=born))
